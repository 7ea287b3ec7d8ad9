"""The I/O steps the commands share: read desired files, connect, observe, open the states.

Kept out of the command modules so that plan, apply and drift read the world the same way.
Every command takes one desired file or a directory of them (a fleet: one cluster a file);
a fleet is observed together, in one session and a constant number of round trips per
datacenter.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.errors import MscsError, SpecError
from reconciler.findings import Finding, has_errors
from reconciler.loader import LoadedFile, load_file
from reconciler.observed import Observed
from reconciler.spec import FailoverCluster, with_defaults
from state import StateBackend, open_backend, resolve_state_path
from state.model import desired_file_hash

STATE_DIR_NAME = ".mscsctl"


@dataclass
class Desired:
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
    """What a command was pointed at: one file, or a directory (fleet) of files."""

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


def is_saved_plan(path: str | Path) -> bool:
    """A saved plan is JSON with a `format_version` and `actions` (or `plans`); anything else is a desired file."""
    if Path(path).is_dir():
        return False
    try:
        data = json.loads(Path(path).read_bytes()[:50_000_000])
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and "format_version" in data and ("actions" in data or "plans" in data)


def state_backend(
    desired: Desired, *, state: str | None = None, state_dir: str | None = None, fleet_root: Path | None = None
) -> StateBackend:
    """Where a cluster's state lives.

    A fleet (or `--state-dir`) keeps one file per cluster name in the state directory
    (default `.mscsctl/` next to the files); a single file uses `--state`, `MSCSCTL_STATE`,
    or `mscsctl.state.json` beside it. A `postgresql://` URL holds every cluster, by name.
    """
    location: Any
    if state and "://" in state:
        location = state
    elif state_dir or fleet_root is not None:
        directory = Path(state_dir) if state_dir else (fleet_root or desired.path.parent) / STATE_DIR_NAME
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        location = directory / f"{desired.name}.state.json"
    else:
        location = state or os.environ.get("MSCSCTL_STATE") or resolve_state_path(desired.path, None)
    return open_backend(location, cluster=desired.name)


def read_state(backend: StateBackend, desired: Desired) -> Any:
    state = backend.read()
    if state is not None and state.cluster != desired.name:
        raise MscsError(
            f"{backend.describe()} holds the state of cluster {state.cluster!r}, not {desired.name!r}: "
            "give each cluster its own state (--state, or --state-dir for many)"
        )
    return state


def observe_all(session: Any, desired: list[Desired]) -> dict[str, Observed]:
    """One read per datacenter for all the clusters in it; cluster name -> its datacenter's view."""
    from providers.vcenter.observe import observe

    by_dc: dict[str, list[Desired]] = {}
    for d in desired:
        by_dc.setdefault(d.cluster.spec.datacenter, []).append(d)
    out: dict[str, Observed] = {}
    for dc, group in by_dc.items():
        vms = sorted({vm for d in group for vm in d.cluster.spec.vm_names})
        prefixes = sorted(
            {k.split(".", 1)[0] + "." for d in group for k in d.cluster.spec.host_options or {}} or {"Disk."}
        )
        observed = observe(session, dc, vms, tuple(prefixes))
        for d in group:
            out[d.name] = observed
    return out


def observe_cluster(session: Any, desired: Desired) -> Observed:
    return observe_all(session, [desired])[desired.name]


def connect(server: str | None, user: str | None, ca_file: str | None, insecure: bool | None) -> Any:
    from providers.vcenter.connection import connect as vc_connect
    from providers.vcenter.connection import settings_from_env

    return vc_connect(settings_from_env(server=server, user=user, ca_file=ca_file, allow_unverified=insecure))


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


def conflict_lanes(desired: list[Desired], observed: dict[str, Observed]) -> list[list[Desired]]:
    """Clusters that share a VM, a host (host options, reservations) or a LUN, in one lane.

    Lanes run in parallel; the clusters of a lane run one after the other, in file order,
    so two applies never change the same object at once.
    """
    parent = list(range(len(desired)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owner: dict[str, int] = {}
    for i, d in enumerate(desired):
        spec = d.cluster.spec
        obs = observed.get(d.name)
        keys = {f"vm:{vm}" for vm in spec.vm_names}
        keys |= {f"lun:{disk.lun}" for disk in spec.shared_disks.disks if hasattr(disk, "lun")}
        if obs is not None:
            keys |= {f"host:{obs.vms[vm].host}" for vm in spec.vm_names if vm in obs.vms}
        for key in keys:
            if key in owner:
                parent[find(i)] = find(owner[key])
            else:
                owner[key] = i
    lanes: dict[int, list[Desired]] = {}
    for i, d in enumerate(desired):
        lanes.setdefault(find(i), []).append(d)
    return list(lanes.values())


def with_guests(session: Any, desired: list[Desired], observed: dict[str, Observed]) -> dict[str, Observed]:
    """Each cluster's view with its nodes' guest facts added (the disk timeout, or why not).

    Guests are asked in parallel (each question is a few round trips and a program run in
    the guest); a guest that cannot be asked is a per-node reason, never a failed plan.
    """
    from concurrent.futures import ThreadPoolExecutor

    from providers.guest.credentials import credentials_for
    from providers.guest.service import observe_node
    from providers.guest.transport import GuestUnavailable
    from reconciler.observed import ObservedGuest

    jobs = [(d, node) for d in desired for node in d.cluster.spec.nodes]
    if not jobs:
        return observed

    def ask(job: tuple[Desired, Any]) -> tuple[str, ObservedGuest]:
        d, node = job
        vms = observed[d.name].vms
        seen = observe_node(node, session=session, vm=vms.get(getattr(node, "vm", "")), env=os.environ)
        reason = str(seen.reason) if seen.reason is not None else None
        detail = seen.reason_unavailable or ""
        if reason == "powered-off":
            # Apply will power it on and set the value then: only if it has credentials to do so.
            try:
                credentials_for(node, os.environ)
            except GuestUnavailable as exc:
                reason, detail = str(exc.reason), f"{detail}; {exc}"
        guest = ObservedGuest(node=seen.node, timeout_seconds=seen.timeout_seconds, reason=reason, detail=detail)
        return d.name, guest

    with ThreadPoolExecutor(max_workers=min(10, len(jobs))) as pool:
        results = list(pool.map(ask, jobs))
    out = {}
    for d in desired:
        guests = {g.node: g for name, g in results if name == d.name}
        out[d.name] = observed[d.name].model_copy(update={"guests": guests})
    return out
