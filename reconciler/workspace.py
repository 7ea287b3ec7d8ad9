"""What a run is pointed at on disk: the desired files, and where each cluster's state lives.

Every command takes one desired file or a directory of them (a fleet: one cluster a file).
All of a fleet's files are read before anything else happens, so that every error of every
file is reported at once. This module only reads and writes local files (and opens state
backends); it never talks to vCenter.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from reconciler.errors import MscsError, SpecError
from reconciler.findings import Finding, has_errors
from reconciler.loader import LoadedFile, load_file
from reconciler.spec import FailoverCluster, with_defaults
from state import STATE_DIR_NAME as STATE_DIR_NAME  # where `show` looks
from state import (
    STATE_ENV,
    LocalFileBackend,
    StateBackend,
    cluster_state_path,
    is_database_location,
    move_old_state,
    open_backend,
    parse_lock_id,
    split_cluster,
)
from state.location import old_state_path
from state.model import State, desired_file_hash


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
    """One desired file, shape-checked; any finding that is an error stops here (exit 1).

    The hash is of the very bytes that were parsed: the file is read once.
    """
    loaded = load_file(path)
    if loaded.cluster is None or has_errors(loaded.findings):
        raise SpecError(loaded.findings)
    return Desired(Path(path), loaded, with_defaults(loaded.cluster), desired_file_hash(loaded.raw))


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

    One rule for a single file and a directory (state/location.py): each cluster's state is
    `NAME.state.json` in the state directory, `--state-dir` or `.mscsctl/` beside its desired
    file. A single file may name its own with `--state` or `MSCSCTL_STATE`. A database
    location (a `postgresql://` URL or a libpq keyword string, given or in `MSCSCTL_STATE`)
    holds every cluster, by name. An older version's `mscsctl.state.json` beside a desired
    file is moved to its place the first time the cluster's state is opened, and said so
    through `notify` (a warning on the `mscsctl` logger when none is given).
    """

    state: str | None = None
    state_dir: str | None = None
    fleet_root: Path | None = None
    notify: Callable[[str], None] | None = field(default=None, compare=False, repr=False)
    _told: set[str] = field(default_factory=set, compare=False, repr=False)

    @classmethod
    def for_targets(
        cls,
        targets: Targets,
        *,
        state: str | None = None,
        state_dir: str | None = None,
        notify: Callable[[str], None] | None = None,
    ) -> StateLocation:
        """The locations of a run's states, refused before anything else happens if unsafe.

        A state directory that group or others can write is refused here, naming it, so a
        run stops before it reads vCenter rather than after.
        """
        if state and targets.is_fleet and not _is_remote(state):
            raise MscsError(
                "--state names one file: for a directory of clusters use --state-dir "
                "(or a postgresql:// URL or libpq connection string)"
            )
        location = cls(state, state_dir, targets.root if targets.is_fleet else None, notify)
        for desired in targets.desired:
            path = location.state_file(desired)
            if path is not None:
                LocalFileBackend(path).check_directories()
        return location

    def chosen(self) -> str | None:
        """`--state`, else `MSCSCTL_STATE` where it applies: one file's state, or a database for any run."""
        if self.state:
            return self.state
        env = os.environ.get(STATE_ENV) or None
        if env is None or self.state_dir or (self.fleet_root is not None and not _is_remote(env)):
            return None
        return env

    def state_file(self, desired: Desired) -> Path | None:
        """The file that holds the cluster's state, or None when it is in a database."""
        chosen = self.chosen()
        if chosen is not None:
            return None if _is_remote(chosen) else Path(chosen)
        return cluster_state_path(desired.path, desired.name, state_dir=self.state_dir)

    def backend(self, desired: Desired) -> StateBackend:
        path = self.state_file(desired)
        if path is None:
            return open_backend(self.chosen() or "", cluster=desired.name)
        if self.chosen() is not None:
            return open_backend(path, cluster=desired.name)
        if not self.state_dir:
            self._move_old_state(desired, path)
        return LocalFileBackend(path, make_directory=True)

    def _move_old_state(self, desired: Desired, path: Path) -> None:
        moved = move_old_state(desired.path, desired.name, path)
        old = old_state_path(desired.path)
        if moved is not None:
            self._tell(f"moved the state of cluster {desired.name} from {moved} to {path} (one state layout)")
        elif path.exists() and old.is_file() and old.stat().st_size and _holds(old, desired.name):
            self._tell(
                f"{old} also holds a state of cluster {desired.name}, from an older version; {path} is the one "
                f"used: remove {old} once you have checked it is not needed"
            )

    def _tell(self, message: str) -> None:
        if message in self._told:
            return
        self._told.add(message)
        if self.notify is not None:
            self.notify(message)
        else:
            logging.getLogger("mscsctl").warning(message)


def _holds(path: Path, cluster: str) -> bool:
    try:
        state = LocalFileBackend(path).read()
    except MscsError:
        return False
    return state is not None and state.cluster == cluster


def _is_remote(location: str) -> bool:
    """A database location, or a URL of a backend `open_backend` refuses by its scheme."""
    return is_database_location(location) or "://" in location


def recorded_state(file: Path | None, *, state: str | None = None, state_dir: str | None = None) -> StateBackend:
    """The state `show` and `force-unlock` act on: a desired file's, or the one `state` names."""
    if file is not None:
        return StateLocation(state, state_dir).backend(load_desired(file))
    if state is None:
        raise MscsError("say which state: a desired FILE, or --state PATH")
    return open_backend(state)


def locked_state(
    lock_id: str, file: Path | None = None, *, state: str | None = None, state_dir: str | None = None
) -> tuple[StateBackend, str]:
    """The state a lock ID locks and the lock's UUID, for `mscsctl force-unlock ID`.

    An ID printed by mscsctl (`UUID@LOCATION`) names its state, so nothing else is needed;
    a bare UUID needs a desired FILE or `--state`. A database location in an ID carries no
    password: the connection is the one `state` (or `MSCSCTL_STATE`) gives when it points
    at the same database, else the ID's own URL (libpq then reads PGPASSWORD or ~/.pgpass).
    """
    lock_uuid, location = parse_lock_id(lock_id)
    if location is None:
        return recorded_state(file, state=state, state_dir=state_dir), lock_uuid
    backend = _database_of_lock(location, state) if is_database_location(location) else open_backend(location)
    if file is not None or state_dir or (state and not is_database_location(state)):
        named = recorded_state(file, state=state, state_dir=state_dir)
        if not _same_state(named, backend):
            raise MscsError(
                f"lock ID {lock_id} is for state {backend.describe()}, but the options name state "
                f"{named.describe()}: give the lock ID alone"
            )
    return backend, lock_uuid


def _database_of_lock(location: str, state: str | None) -> StateBackend:
    from state.postgres import describe_database

    dsn, cluster = split_cluster(location)
    given = state or os.environ.get(STATE_ENV) or None
    if given is not None and is_database_location(given):
        given_dsn, _ = split_cluster(given)
        if describe_database(given_dsn) == describe_database(dsn):
            dsn = given_dsn  # the same database, with the credentials the ID leaves out
        elif state:
            raise MscsError(
                f"lock ID is for database {describe_database(dsn)}, but --state points at "
                f"{describe_database(given_dsn)}: give the lock ID alone, or --state for that database"
            )
    return open_backend(dsn, cluster=cluster)


def _same_state(a: StateBackend, b: StateBackend) -> bool:
    if isinstance(a, LocalFileBackend) and isinstance(b, LocalFileBackend):
        return os.path.realpath(a.path) == os.path.realpath(b.path)
    return a.location() == b.location()


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
