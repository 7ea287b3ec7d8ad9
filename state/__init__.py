"""Recorded state: what mscsctl last applied, behind a backend interface.

`open_backend()` turns a `--state` location into a backend; everything else uses the
`StateBackend` interface and never knows which backend it has.
"""

from __future__ import annotations

import os
from pathlib import Path

from reconciler.errors import MscsError
from state.backend import LockInfo, StateBackend, holder_message, locked, new_lock_info
from state.local import (
    STATE_ENV,
    STATE_FILE_NAME,
    LocalFileBackend,
    default_state_path,
    resolve_state_path,
)
from state.model import (
    STATE_FORMAT_VERSION,
    ManagedResource,
    State,
    check_no_secrets,
    desired_file_hash,
    parse_state,
    utc_now,
)

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def open_backend(location: str | os.PathLike[str], *, cluster: str | None = None) -> StateBackend:
    """The backend for a state location: a file path, or a `postgresql://` URL.

    `cluster` (the desired file's `metadata.name`) picks the row of a database backend,
    which holds one row per cluster; a file holds one cluster's state and ignores it.
    """
    text = os.fspath(location)
    if text.startswith(POSTGRES_SCHEMES):
        if not cluster:
            raise MscsError("a PostgreSQL state holds many clusters: say which one (the desired file's name)")
        from state.postgres import PostgresBackend  # psycopg is only loaded when a database is used

        return PostgresBackend(text, cluster)
    if "://" in text:
        scheme = text.split("://", 1)[0]
        raise MscsError(f"unknown state backend {scheme}://; give a file path or a postgresql:// URL")
    return LocalFileBackend(Path(text))


__all__ = [
    "STATE_ENV",
    "STATE_FILE_NAME",
    "STATE_FORMAT_VERSION",
    "LocalFileBackend",
    "LockInfo",
    "ManagedResource",
    "State",
    "StateBackend",
    "check_no_secrets",
    "default_state_path",
    "desired_file_hash",
    "holder_message",
    "locked",
    "new_lock_info",
    "open_backend",
    "parse_state",
    "resolve_state_path",
    "utc_now",
]
