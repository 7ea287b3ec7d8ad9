"""Recorded state: what mscsctl last applied, behind a backend interface.

`open_backend()` turns a `--state` location into a backend; everything else uses the
`StateBackend` interface and never knows which backend it has.
"""

from __future__ import annotations

import os
from pathlib import Path

from reconciler.bounded import parse_duration
from reconciler.errors import MscsError
from state.backend import (
    HeldLockError,
    LockInfo,
    StateBackend,
    holder_is_gone,
    holder_message,
    locked,
    new_lock_info,
)
from state.local import (
    STATE_ENV,
    STATE_FILE_NAME,
    LocalFileBackend,
    default_state_path,
    move_old_state,
    resolve_state_path,
)
from state.location import (
    POSTGRES_SCHEMES,
    STATE_DIR_NAME,
    cluster_state_path,
    force_unlock_command,
    format_lock_id,
    is_database_location,
    parse_lock_id,
    redact,
    split_cluster,
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


def open_backend(location: str | os.PathLike[str], *, cluster: str | None = None) -> StateBackend:
    """The backend for a state location: a file path, a `postgresql://` URL or a libpq keyword string.

    `cluster` (the desired file's `metadata.name`) picks the row of a database backend,
    which holds one row per cluster; a URL may name it instead as `#CLUSTER` (as lock IDs
    do). A file holds one cluster's state and ignores it.
    """
    text = os.fspath(location)
    if is_database_location(text):
        dsn, named = split_cluster(text)
        if named and cluster and named != cluster:
            raise MscsError(
                f"the state location {redact(text)} names cluster {named!r}, but this is cluster {cluster!r}"
            )
        if not (cluster or named):
            raise MscsError("a PostgreSQL state holds many clusters: say which one (the desired file, or URL#CLUSTER)")
        from state.postgres import PostgresBackend  # psycopg is only loaded when a database is used

        return PostgresBackend(dsn, cluster or named or "")
    if "://" in text:
        scheme = text.split("://", 1)[0]
        raise MscsError(f"unknown state backend {scheme}://; give a file path or a postgresql:// URL")
    return LocalFileBackend(Path(text))


__all__ = [
    "POSTGRES_SCHEMES",
    "STATE_DIR_NAME",
    "STATE_ENV",
    "STATE_FILE_NAME",
    "STATE_FORMAT_VERSION",
    "HeldLockError",
    "LocalFileBackend",
    "LockInfo",
    "ManagedResource",
    "State",
    "StateBackend",
    "check_no_secrets",
    "cluster_state_path",
    "default_state_path",
    "desired_file_hash",
    "force_unlock_command",
    "format_lock_id",
    "holder_is_gone",
    "holder_message",
    "is_database_location",
    "locked",
    "move_old_state",
    "new_lock_info",
    "open_backend",
    "parse_duration",
    "parse_lock_id",
    "parse_state",
    "redact",
    "resolve_state_path",
    "split_cluster",
    "utc_now",
]
