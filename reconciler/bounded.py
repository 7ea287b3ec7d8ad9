"""Reading what a user points mscsctl at (desired files, saved plans, state files) within bounds.

A path can name something that is not a file: `/dev/zero` never ends, a FIFO blocks until
someone writes to it, a socket cannot be read at all. Reading such a path whole would fill
memory or hang a pipeline job forever, so every input is checked before it is read: `os.stat`
first (nothing is opened for a FIFO or a device), then an open with `O_NONBLOCK` that checks
it is still the same regular file, then at most `limit + 1` bytes. Each refusal is one line,
`PATH: reason`, raised as `InputRefused`.

`parse_duration` reads the durations the command line takes (`--lock-timeout 30s`).
"""

from __future__ import annotations

import errno
import os
import re
import stat

from reconciler.errors import MscsError

MIB = 1024 * 1024
MAX_INPUT_BYTES = 8 * MIB  # saved plans and state files; desired files have the loader's own, smaller limit

_KINDS = (
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
)


class InputRefused(MscsError):
    """A path that is not a regular file, or a file over its size limit; never read."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


def read_bounded(path: str | os.PathLike[str], what: str, *, limit: int = MAX_INPUT_BYTES) -> bytes:
    """The bytes of the regular file at `path`, refused (`InputRefused`) when it is not one or is too large.

    `what` names the input in the message ("desired file", "saved plan", "state file").
    A missing, unreadable or directory path raises the `OSError` the caller already handles
    (`FileNotFoundError`, `PermissionError`, `IsADirectoryError`).
    """
    name = os.fspath(path)
    before = os.stat(name)
    _check_regular(name, before.st_mode, what)
    if before.st_size > limit:
        raise InputRefused(name, _over_limit(before.st_size, limit, what))
    fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOCTTY", 0))
    try:
        opened = os.fstat(fd)
        _check_regular(name, opened.st_mode, what)
        if (opened.st_dev, opened.st_ino) != (before.st_dev, before.st_ino):
            raise InputRefused(name, f"the file was replaced while it was being read; read the {what} again")
        chunks: list[bytes] = []
        total = 0
        while total <= limit:
            chunk = os.read(fd, min(limit + 1 - total, MIB))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    finally:
        os.close(fd)
    if total > limit:  # it grew after the stat
        raise InputRefused(name, f"grew past the {_size(limit)} limit for a {what} while it was read")
    return b"".join(chunks)


def _check_regular(name: str, mode: int, what: str) -> None:
    if stat.S_ISREG(mode):
        return
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), name)
    kind = next((label for test, label in _KINDS if test(mode)), "a special file")
    raise InputRefused(name, f"not a regular file ({kind}): mscsctl reads a {what} only from a regular file")


def _over_limit(size: int, limit: int, what: str) -> str:
    shown = _size(size)
    if size < MIB or f"{size / MIB:.1f}" == f"{limit / MIB:.1f}":  # rounded, it would read as the limit
        shown = f"{size} bytes"
    return f"{shown} is over the {_size(limit)} limit for a {what}"


def _size(n: int) -> str:
    if n % MIB == 0:
        return f"{n // MIB} MiB"
    if n >= MIB:
        return f"{n / MIB:.1f} MiB"
    return f"{n // 1024} KiB" if n % 1024 == 0 else f"{n} bytes"


_DURATION = re.compile(r"(?P<number>\d+(?:\.\d+)?)(?P<unit>ms|s|m|h)?")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
MAX_DURATION_S = 24 * 3600.0


def parse_duration(text: str, *, option: str = "duration") -> float:
    """Seconds in `30s`, `5m`, `1h`, `500ms`, `1.5m` or `0`; `MscsError` (one line) for anything else.

    A number alone is only accepted as `0`: `--lock-timeout 30` could mean seconds or minutes.
    `option` names the flag in the message (e.g. `--lock-timeout`).
    """
    raw = text.strip()
    match = _DURATION.fullmatch(raw)
    if match is None or (match["unit"] is None and float(match["number"]) != 0):
        raise MscsError(
            f"{option}: {text!r} is not a duration: give a number and a unit, e.g. 30s, 5m, 1h (or 0 for no wait)"
        )
    seconds = float(match["number"]) * _UNIT_SECONDS[match["unit"] or "s"]
    if seconds > MAX_DURATION_S:
        raise MscsError(f"{option}: {text!r} is longer than the 24h limit")
    return seconds
