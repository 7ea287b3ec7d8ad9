"""What a run is pointed at on disk: the desired files, and where each cluster's state lives.

Every command takes one desired file or a directory of them (a fleet: one cluster a file).
All of a fleet's files are read before anything else happens, so that every error of every
file is reported at once. This module only reads and writes local files (and opens state
backends); it never talks to vCenter.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from reconciler.errors import MscsError, SpecError
from reconciler.findings import Finding, has_errors
from reconciler.loader import LoadedFile, load_file
from reconciler.spec import FailoverCluster, with_defaults
from state import StateBackend, open_backend, resolve_state_path
from state.model import State, desired_file_hash

STATE_DIR_NAME = ".mscsctl"


@dataclass
class Desired:
    """One desired file, read and shape-checked, with its defaults filled."""

    path: Path
    loaded: LoadedFile
    cluster: FailoverCluster  # with defaults filled
    hash: str

    @property
    def name(self) -> str:
        return self.cluster.name

    def locate(self, finding: Finding) -> Finding:
        return self.loaded.place([finding])[0]


@dataclass
class Targets:
    """What a run was pointed at: one file, or a directory (fleet) of files."""

    root: Path
    is_fleet: bool
    desired: list[Desired]


def desired_files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
        if not files:
            raise MscsError(f"{path}: no desired files (*.yaml, *.yml) in this directory")
        return files
    if not path.exists():
        raise MscsError(f"{path}: no such file or directory")
    return [path]


def load_desired(path: str | Path) -> Desired:
    """One desired file, shape-checked; any finding that is an error stops here (exit 1)."""
    loaded = load_file(path)
    if loaded.cluster is None or has_errors(loaded.findings):
        raise SpecError(loaded.findings)
    raw = Path(path).read_bytes()
    return Desired(Path(path), loaded, with_defaults(loaded.cluster), desired_file_hash(raw))


def load_targets(path: str | Path) -> Targets:
    """Every desired file of a file or directory; all errors of all files at once."""
    root = Path(path)
    findings: list[Finding] = []
    desired: list[Desired] = []
    for file in desired_files(root):
        try:
            desired.append(load_desired(file))
        except SpecError as exc:
            findings += exc.findings
    if findings:
        raise SpecError(findings)
    names: dict[str, Path] = {}
    for d in desired:
        if d.name in names:
            raise MscsError(f"{d.path}: cluster {d.name!r} is also described by {names[d.name]}: one file a cluster")
        names[d.name] = d.path
    return Targets(root, root.is_dir(), desired)


def targets_of_files(paths: list[Path]) -> Targets:
    """The targets of the desired files a saved plan names: a fleet when there are several."""
    desired = [load_desired(p) for p in paths]
    fleet_root = desired[0].path.parent if len(desired) > 1 else None
    return Targets(fleet_root or desired[0].path, fleet_root is not None, desired)


@dataclass(frozen=True)
class StateLocation:
    """Where each cluster's state lives, as `--state` and `--state-dir` say (or the defaults).

    A fleet (or `state_dir`) keeps one file per cluster name in the state directory
    (default `.mscsctl/` next to the files); a single file uses `state`, `MSCSCTL_STATE`,
    or `mscsctl.state.json` beside it. A `postgresql://` URL holds every cluster, by name.
    """

    state: str | None = None
    state_dir: str | None = None
    fleet_root: Path | None = None

    @classmethod
    def for_targets(cls, targets: Targets, *, state: str | None = None, state_dir: str | None = None) -> StateLocation:
        if state and targets.is_fleet and "://" not in state:
            raise MscsError(
                "--state names one file: for a directory of clusters use --state-dir (or a postgresql:// URL)"
            )
        return cls(state, state_dir, targets.root if targets.is_fleet else None)

    def backend(self, desired: Desired) -> StateBackend:
        location: Path | str
        if self.state and "://" in self.state:
            location = self.state
        elif self.state_dir or self.fleet_root is not None:
            base = self.fleet_root or desired.path.parent
            directory = Path(self.state_dir) if self.state_dir else base / STATE_DIR_NAME
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            location = directory / f"{desired.name}.state.json"
        else:
            location = self.state or os.environ.get("MSCSCTL_STATE") or resolve_state_path(desired.path, None)
        return open_backend(location, cluster=desired.name)


def recorded_state(file: Path | None, *, state: str | None = None, state_dir: str | None = None) -> StateBackend:
    """The state `show` and `force-unlock` act on: a desired file's, or the one `state` names."""
    if file is not None:
        return StateLocation(state, state_dir).backend(load_desired(file))
    if state is None:
        raise MscsError("say which state: a desired FILE, or --state PATH")
    return open_backend(state)


def read_state(backend: StateBackend, desired: Desired) -> State | None:
    """The cluster's recorded state; one that belongs to another cluster is refused."""
    state = backend.read()
    if state is not None and state.cluster != desired.name:
        raise MscsError(
            f"{backend.describe()} holds the state of cluster {state.cluster!r}, not {desired.name!r}: "
            "give each cluster its own state (--state, or --state-dir for many)"
        )
    return state


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read (plans carry what vCenter showed), atomically."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise MscsError(f"cannot write {path}: {exc}") from None
