"""The state as a JSON file (`.mscsctl/NAME.state.json` beside the desired file), with a backup and a lock file.

A write never leaves a half-written state at its path: the new content goes to a temporary
file in the same directory (0600 from its creation, fsynced) and replaces the state with one
atomic rename. The previous state is kept as `<path>.backup`. The lock is a `<path>.lock`
file created exclusively, holding who took it, so that a second run is refused at once with
the holder's name instead of waiting or racing.

A state path that is a symlink is written through to its target: the temporary file, the
backup and the lock live beside the target, the rename replaces the target, and the symlink
stays a symlink (two symlinks to one state share its lock). A state whose directory, or its
target's, can be written by group or others is refused: anyone who can write there can
replace the state, and the state decides what mscsctl may detach or delete.
"""

from __future__ import annotations

import os
import shlex
import stat
import uuid
from collections.abc import Mapping
from pathlib import Path

from pydantic import ValidationError

from reconciler.bounded import read_bounded
from reconciler.errors import LockedError, MscsError
from state.backend import LockInfo, check_expected_serial, check_release, lock_refusal, new_lock_info
from state.location import OLD_STATE_FILE_NAME, cluster_state_path, is_database_location, old_state_path
from state.model import State, check_no_secrets, parse_state, utc_now

STATE_FILE_NAME = OLD_STATE_FILE_NAME  # the name older versions used beside a single file
STATE_ENV = "MSCSCTL_STATE"
FILE_MODE = 0o600
DIR_MODE = 0o700
LOCK_FILE_MAX_BYTES = 64 * 1024


def default_state_path(desired_file: Path, cluster: str) -> Path:
    """Where the state of a desired file lives when nothing else is said: `.mscsctl/NAME.state.json` beside it."""
    return cluster_state_path(desired_file, cluster)


def resolve_state_path(
    desired_file: Path,
    explicit: Path | str | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    cluster: str,
) -> Path | str:
    """The state location: an explicit `--state`, else `MSCSCTL_STATE`, else `.mscsctl/NAME.state.json`.

    A location that is a URL (`postgresql://…`) is returned as the string it was given, since
    a `Path` would mangle its `//`; anything else is a `Path`.
    """
    env = os.environ if environ is None else environ
    chosen = explicit if explicit not in (None, "") else env.get(STATE_ENV) or None
    if chosen is None:
        return default_state_path(desired_file, cluster)
    if isinstance(chosen, str) and (is_database_location(chosen) or "://" in chosen):
        return chosen
    return Path(chosen)


def check_private_directory(directory: Path, state_path: Path | str) -> None:
    """Refuse a state directory that group or others can write: they could replace the state.

    A directory that does not exist yet is not refused here (writing the state says so).
    """
    try:
        mode = os.stat(directory).st_mode
    except OSError:
        return
    if not stat.S_ISDIR(mode) or not mode & 0o022:
        return
    writers = " and ".join(w for bit, w in ((0o020, "group"), (0o002, "others")) if mode & bit)
    raise MscsError(
        f"state {state_path}: the directory {directory} is writable by {writers} "
        f"(mode {stat.S_IMODE(mode):04o}), so another user could replace the state; "
        f"fix it with: chmod go-w {shlex.quote(str(directory))}"
    )


class LocalFileBackend:
    """The state of one cluster in one local JSON file.

    `make_directory`: the file's directory (`.mscsctl/`, a `--state-dir`) is created, mode
    0700, when a lock or the state is first written there; reading never creates it.
    """

    def __init__(self, path: Path | str, *, make_directory: bool = False) -> None:
        self.path = Path(path)
        self.make_directory = make_directory

    def __repr__(self) -> str:
        return f"LocalFileBackend({str(self.path)!r})"

    @property
    def target(self) -> Path:
        """The file the state is in: `path`, or the file a symlink at `path` points to."""
        return Path(os.path.realpath(self.path)) if self.path.is_symlink() else self.path

    @property
    def backup_path(self) -> Path:
        return self.target.with_name(self.target.name + ".backup")

    @property
    def lock_path(self) -> Path:
        return self.target.with_name(self.target.name + ".lock")

    def describe(self) -> str:
        return str(self.path)

    def location(self) -> str:
        return str(self.path)

    def check_directories(self) -> None:
        """Refuse the state when its directory (or its symlink target's) is group- or other-writable."""
        check_private_directory(self.path.parent, self.path)
        if self.target != self.path:
            check_private_directory(self.target.parent, self.path)

    def read(self) -> State | None:
        self.check_directories()
        return self._read_stored()[0]

    def write(self, state: State, *, expected_serial: int | None) -> State:
        check_no_secrets(state)
        self._make_directory()
        self.check_directories()
        stored, raw = self._read_stored()
        serial = check_expected_serial(stored, state, expected_serial, self.describe())
        written = state.as_written(serial=serial, now=utc_now())
        if raw is not None:
            _replace_atomically(self.backup_path, raw)
        _replace_atomically(self.target, written.to_json().encode())
        return written

    def lock(self, info: LockInfo) -> LockInfo:
        self._make_directory()
        self.check_directories()
        info = LockInfo.model_validate({**dict(info), "backend": "local", "path": str(self.path)})
        # A lock released between our failed create and our read of it is simply retried.
        for _ in range(3):
            try:
                fd = os.open(self.lock_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, FILE_MODE)
            except FileExistsError:
                held = self._read_lock()
                if held is None:
                    continue
                raise lock_refusal(held, self.describe(), self.location()) from None
            except OSError as exc:
                raise MscsError(f"cannot create the lock file {self.lock_path}: {exc}") from None
            # From here the lock file is ours: anything that stops us before the lock is handed
            # back (an error, or SIGINT/SIGTERM while the file is written) removes it again.
            try:
                try:
                    os.fchmod(fd, FILE_MODE)
                    _write_all(fd, info.model_dump_json(indent=2).encode() + b"\n")
                    os.fsync(fd)
                finally:
                    os.close(fd)
                _fsync_directory(self.lock_path.parent)
            except OSError as exc:
                self.lock_path.unlink(missing_ok=True)
                raise MscsError(f"cannot write the lock file {self.lock_path}: {exc}") from None
            except BaseException:
                self.lock_path.unlink(missing_ok=True)
                raise
            return info
        raise LockedError(f"state {self.describe()} is being locked and unlocked by other runs; try again.")

    def unlock(self, lock_id: str) -> None:
        check_release(self._read_lock(), lock_id, self.describe(), forced=False, location=self.location())
        self._remove_lock()

    def force_unlock(self, lock_id: str) -> None:
        self.check_directories()
        check_release(self._read_lock(), lock_id, self.describe(), forced=True, location=self.location())
        self._remove_lock()

    def _make_directory(self) -> None:
        if self.make_directory and not self.path.parent.is_dir():
            try:
                self.path.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
            except OSError as exc:
                raise MscsError(
                    f"cannot create the state directory {self.path.parent}: {exc.strerror or exc}"
                ) from None

    def _read_stored(self) -> tuple[State | None, bytes | None]:
        """The stored state and the exact bytes it was read from (kept as the backup).

        A path that is not a regular file, or a file over the size limit, is refused unread.
        """
        try:
            raw = read_bounded(self.path, "state file")
        except FileNotFoundError:
            return None, None
        except OSError as exc:
            raise MscsError(f"cannot read state file {self.path}: {exc.strerror or exc}") from None
        return parse_state(raw, f"file {self.path}"), raw

    def _read_lock(self) -> LockInfo | None:
        try:
            raw = read_bounded(self.lock_path, "lock file", limit=LOCK_FILE_MAX_BYTES)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise LockedError(
                f"state {self.describe()} has a lock file {self.lock_path} that cannot be read "
                f"({exc.strerror or exc}). If no mscsctl run uses this state, delete that file."
            ) from None
        try:
            return LockInfo.model_validate_json(raw)
        except ValidationError:
            raise LockedError(
                f"state {self.describe()} has a lock file {self.lock_path} that does not name a holder "
                "(it is being written, or a run crashed while taking the lock). "
                "If no mscsctl run uses this state, delete that file."
            ) from None

    def _remove_lock(self) -> None:
        try:
            self.lock_path.unlink(missing_ok=True)
        except OSError as exc:
            raise MscsError(f"cannot remove the lock file {self.lock_path}: {exc.strerror or exc}") from None
        _fsync_directory(self.lock_path.parent)


def move_old_state(desired_file: Path, cluster: str, new: Path) -> Path | None:
    """Move an older version's `mscsctl.state.json` beside `desired_file` to `new`, once.

    Only a file that holds `cluster`'s state is moved (in a folder of several clusters' files,
    the others keep theirs until they are run), never over a state already at `new`, and only
    under the old file's lock: a run of an older version that holds it is reported as any
    lock is (`LockedError`, with the command that removes it). Its `.backup` goes with it.
    A symlink is moved as a symlink to the same target. Returns the old path when it moved.
    """
    old = old_state_path(desired_file)
    if not (old.is_file() or old.is_symlink()) or new.exists() or new.is_symlink():
        return None
    backend = LocalFileBackend(old)
    stored = backend.read()
    if stored is None or stored.cluster != cluster:
        return None
    try:
        held = backend.lock(new_lock_info("move state"))
    except LockedError:
        if new.exists():  # another run moved it meanwhile
            return None
        raise
    try:
        if new.exists() or new.is_symlink() or not old.exists():
            return None
        LocalFileBackend(new, make_directory=True)._make_directory()
        LocalFileBackend(new).check_directories()
        if old.is_symlink():
            os.symlink(os.path.realpath(old), new)
            old.unlink()
        else:
            if backend.backup_path.is_file():
                os.replace(backend.backup_path, LocalFileBackend(new).backup_path)
            os.replace(old, new)
        _fsync_directory(new.parent)
        _fsync_directory(old.parent)
    except OSError as exc:
        raise MscsError(f"cannot move the state {old} to {new}: {exc.strerror or exc}") from None
    finally:
        backend.unlock(held.id)
    return old


def _replace_atomically(target: Path, data: bytes) -> None:
    """Make `target` hold `data`: readers see the old content or the new, never a part."""
    temp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    try:
        fd = os.open(temp, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, FILE_MODE)
    except OSError as exc:
        raise MscsError(f"cannot write state file {target}: {exc.strerror or exc} ({temp.parent})") from None
    try:
        try:
            os.fchmod(fd, FILE_MODE)  # the creation mode is masked by umask; make it exact
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, target)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise MscsError(f"cannot write state file {target}: {exc.strerror or exc}") from None
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    _fsync_directory(target.parent)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _fsync_directory(directory: Path) -> None:
    """Make a rename or unlink durable; not every platform or filesystem allows it."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
