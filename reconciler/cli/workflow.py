"""The I/O steps the commands share: read the desired file, connect, observe, open the state.

Kept out of the command modules so that plan, apply and drift read the world the same way.
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


@dataclass
class Desired:
    path: Path
    loaded: LoadedFile
    cluster: FailoverCluster  # with defaults filled
    hash: str

    def locate(self, finding: Finding) -> Finding:
        return self.loaded.place([finding])[0]


def load_desired(path: str | Path) -> Desired:
    """The desired file, shape-checked; any finding that is an error stops here (exit 1)."""
    loaded = load_file(path)
    if loaded.cluster is None or has_errors(loaded.findings):
        raise SpecError(loaded.findings)
    raw = Path(path).read_bytes()
    return Desired(Path(path), loaded, with_defaults(loaded.cluster), desired_file_hash(raw))


def is_saved_plan(path: str | Path) -> bool:
    """A saved plan is JSON with a `format_version` and `actions`; anything else is a desired file."""
    try:
        head = Path(path).read_bytes()[:1_000_000]
        data = json.loads(head)
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and "format_version" in data and "actions" in data


def state_backend(desired_path: Path, explicit: str | None, cluster: str) -> StateBackend:
    location: Any = explicit or os.environ.get("MSCSCTL_STATE") or resolve_state_path(desired_path, None)
    return open_backend(location, cluster=cluster)


def observe_cluster(session: Any, desired: Desired) -> Observed:
    from providers.vcenter.observe import observe

    spec = desired.cluster.spec
    prefixes = tuple(sorted({k.split(".", 1)[0] + "." for k in spec.host_options or {}})) or ("Disk.",)
    return observe(session, spec.datacenter, spec.vm_names, prefixes)


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
