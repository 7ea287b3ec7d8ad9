"""State locations as users write them, and lock IDs that say which state they lock.

A location is a file path, a `postgresql://` URL, or a libpq keyword string
(`host=db port=5432 dbname=mscsctl user=mscsctl`); a URL may end in `#CLUSTER` to pick one
cluster's row. A lock ID as printed to users is `LOCK-UUID@LOCATION`, with a location that
needs no password, so that `mscsctl force-unlock ID` can find the lock from the ID alone.

Where a cluster's state lives when nothing else is said is decided here too, by one rule for
a single desired file and for a directory of them: `.mscsctl/NAME.state.json` beside the
file(s), NAME being the cluster's name (`metadata.name`), so that two clusters' files in one
folder each have their own state, and a file planned alone or as part of its directory finds
the same state. Older versions kept a single file's state as `mscsctl.state.json` beside it;
`state.local.move_old_state` moves such a file to its place once.

Nothing here opens a file or a connection; `redact` keeps passwords out of any text shown.
"""

from __future__ import annotations

import re
import shlex
import uuid
from pathlib import Path

from reconciler.errors import MscsError

STATE_DIR_NAME = ".mscsctl"
OLD_STATE_FILE_NAME = "mscsctl.state.json"  # beside a single desired file, before the one layout
POSTGRES_SCHEMES = ("postgresql://", "postgres://")

# libpq's connection keywords (PostgreSQL 16): a string that starts with `keyword=` for one
# of them is a connection string, not a file name.
LIBPQ_KEYWORDS = frozenset(
    [
        "host",
        "hostaddr",
        "port",
        "dbname",
        "user",
        "password",
        "passfile",
        "require_auth",
        "channel_binding",
        "connect_timeout",
        "client_encoding",
        "options",
        "application_name",
        "fallback_application_name",
        "keepalives",
        "keepalives_idle",
        "keepalives_interval",
        "keepalives_count",
        "tcp_user_timeout",
        "replication",
        "gssencmode",
        "sslmode",
        "requiressl",
        "sslcompression",
        "sslcert",
        "sslkey",
        "sslpassword",
        "sslcertmode",
        "sslrootcert",
        "sslcrl",
        "sslcrldir",
        "sslsni",
        "requirepeer",
        "ssl_min_protocol_version",
        "ssl_max_protocol_version",
        "krbsrvname",
        "gsslib",
        "gssdelegation",
        "service",
        "target_session_attrs",
        "load_balance_hosts",
    ]
)
_KEYWORD_START = re.compile(r"\s*([a-z_]+)\s*=")
_URL_PASSWORD = re.compile(r"((?:postgres|postgresql)://[^:/@\s]*):[^\s/]*@")
_KEYWORD_PASSWORD = re.compile(r"\b((?:ssl)?password\s*=\s*)(?:'(?:[^'\\]|\\.)*'?|\S+)")
MASK = "***"


def is_database_location(location: str) -> bool:
    """A `postgresql://` (or `postgres://`) URL, or a libpq keyword string; anything else is a file.

    A string that starts with `KEYWORD=` for one of libpq's keywords is a keyword string, so
    that a malformed one is refused as a connection string (without quoting it, since it may
    hold a password) instead of being taken for a file name; a file so named is `./host=…`.
    """
    if location.startswith(POSTGRES_SCHEMES):
        return True
    match = _KEYWORD_START.match(location)
    return match is not None and match[1] in LIBPQ_KEYWORDS


def cluster_state_path(desired_file: Path, cluster: str, *, state_dir: str | Path | None = None) -> Path:
    """The file that holds `cluster`'s state: `NAME.state.json` in `state_dir`, else in
    `.mscsctl/` beside the desired file (a single file and a directory's alike)."""
    directory = Path(state_dir) if state_dir else desired_file.parent / STATE_DIR_NAME
    return directory / f"{cluster}.state.json"


def old_state_path(desired_file: Path) -> Path:
    """Where versions before the one layout kept a single desired file's state."""
    return desired_file.parent / OLD_STATE_FILE_NAME


def split_cluster(location: str) -> tuple[str, str | None]:
    """A database location and the cluster its `#CLUSTER` names, if it names one (URLs only)."""
    if location.startswith(POSTGRES_SCHEMES) and "#" in location:
        dsn, _, cluster = location.rpartition("#")
        return dsn, cluster or None
    return location, None


def redact(text: str) -> str:
    """`text` with the password of every PostgreSQL URL and `password=` keyword masked."""
    return _KEYWORD_PASSWORD.sub(rf"\g<1>{MASK}", _URL_PASSWORD.sub(rf"\g<1>:{MASK}@", text))


def format_lock_id(lock_uuid: str, location: str) -> str:
    """The lock ID users see and give to `force-unlock`: the lock's UUID and the state it locks."""
    return f"{lock_uuid}@{location}"


def parse_lock_id(text: str) -> tuple[str, str | None]:
    """The lock's UUID and the state location of a lock ID (None for a bare UUID, as older runs printed)."""
    lock_uuid, at, location = text.strip().partition("@")
    try:
        canonical = str(uuid.UUID(lock_uuid))
    except ValueError:
        raise MscsError(
            f"{redact(text)!r} is not a lock ID: give the ID the 'locked' message names (UUID@STATE)"
        ) from None
    if at and not location:
        raise MscsError(f"lock ID {text!r} names no state after '@'")
    return canonical, location if at else None


def force_unlock_command(lock_id: str) -> str:
    """The command that removes the lock, quoted so that it can be pasted into a shell as it is."""
    return f"mscsctl force-unlock {shlex.quote(lock_id)}"
