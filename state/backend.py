"""What every state backend offers: read, compare-and-write, and a lock that names its holder.

Like Terraform's state managers, a backend is a reader, a writer and a locker behind one
interface, so the apply loop never knows whether the state is a local file or a database
row. A write says which serial it expects to replace; a run that read an older state is
refused instead of losing someone else's changes.
"""

from __future__ import annotations

import getpass
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from reconciler.errors import LockedError, MscsError, StaleStateError
from state.location import force_unlock_command, format_lock_id
from state.model import State, UtcTimestamp, Uuid, utc_now


class LockInfo(BaseModel):
    """Who holds the state lock, for what, since when: what a blocked user needs to know."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: Uuid = Field(description="Given to `mscsctl force-unlock` to remove a lock left behind.")
    operation: str = Field(description="What the holder is doing, e.g. apply.")
    who: str = Field(description="user@host of the holder.")
    pid: int = Field(description="Process ID of the holder on its host.")
    created: UtcTimestamp = Field(description="When the lock was taken (UTC).")
    backend: str = Field(default="", description="Which backend holds the lock, e.g. local.")
    path: str = Field(default="", description="Where the locked state is: a file or a database row.")


def new_lock_info(operation: str, *, who: str | None = None) -> LockInfo:
    """A lock request for this process; the backend fills `backend` and `path`."""
    return LockInfo(
        id=str(uuid.uuid4()),
        operation=operation,
        who=who or current_user(),
        pid=os.getpid(),
        created=utc_now(),
    )


def current_user() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = f"uid{os.getuid()}" if hasattr(os, "getuid") else "unknown"
    return f"{user}@{socket.gethostname()}"


class HeldLockError(LockedError):
    """The state is locked by someone else: the holder, and whether it is known to be gone.

    `stale` is True only when the holder ran on this host and its process no longer exists;
    such a lock is reported, never removed without a person's `force-unlock`.
    """

    def __init__(self, message: str, held: LockInfo | None = None, *, stale: bool = False) -> None:
        super().__init__(message)
        self.held = held
        self.stale = stale


def holder_is_gone(held: LockInfo) -> bool:
    """The lock was taken on this host by a process that is no longer running.

    The host is the part of `who` after its last `@` (`current_user()` writes user@host).
    A process that exists but is not ours to signal is running; so is one on another host,
    whatever its pid: only the absence of the process here proves the holder is gone.
    """
    host = held.who.rpartition("@")[2]
    if os.name != "posix" or held.pid <= 0 or host != socket.gethostname() or held.pid == os.getpid():
        return False  # on Windows os.kill would terminate the process; pid 0 or -1 are groups
    try:
        os.kill(held.pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


def holder_message(held: LockInfo, where: str, location: str | None = None) -> str:
    """The sentence a blocked user reads: who holds the lock, and how to remove a stale one.

    `location` is the state location as the blocked run names it (`StateBackend.location()`):
    the lock ID and the `force-unlock` command are then the ones that work from here.
    """
    lock_id = format_lock_id(held.id, location) if location else held.id
    command = force_unlock_command(lock_id)
    if holder_is_gone(held):
        return (
            f"state {where} is locked by {held.who} (operation {held.operation!r}) since {held.created}, "
            f"but that run is gone: lock {lock_id} held by pid {held.pid} on this host, which is no "
            f"longer running: clear it with `{command}`"
        )
    return (
        f"state {where} is locked by {held.who} (operation {held.operation!r}, pid {held.pid}) "
        f"since {held.created}, lock ID {lock_id}. Wait for that run to finish; if it is gone "
        f"(crashed, killed), remove the lock with: {command}"
    )


def lock_refusal(held: LockInfo, where: str, location: str | None = None) -> HeldLockError:
    """The error a backend raises when `held` keeps it from taking the lock."""
    return HeldLockError(holder_message(held, where, location), held, stale=holder_is_gone(held))


def check_expected_serial(stored: State | None, state: State, expected_serial: int | None, where: str) -> int:
    """The serial the write will store, or `StaleStateError` when the stored state moved on.

    Shared by the backends so that they refuse exactly the same things in the same words.
    """
    if stored is None:
        if expected_serial is not None:
            raise StaleStateError(
                f"state {where} is gone: expected serial {expected_serial} to be there, found no state. Run plan again."
            )
        return 1
    if expected_serial is None:
        raise StaleStateError(
            f"state {where} already exists (serial {stored.serial}, lineage {stored.lineage}) "
            "but this run expected none. Run plan again."
        )
    if stored.lineage != state.lineage:
        raise StaleStateError(
            f"state {where} belongs to lineage {stored.lineage}, not {state.lineage}: "
            "it was replaced by a different state. Run plan again."
        )
    if stored.serial != expected_serial:
        raise StaleStateError(
            f"state {where} is at serial {stored.serial}, this run read serial {expected_serial}: "
            "another run wrote it meanwhile. Run plan again."
        )
    return stored.serial + 1


def check_release(
    held: LockInfo | None, lock_id: str, where: str, *, forced: bool, location: str | None = None
) -> None:
    """Refuse to release a lock that is absent or not `lock_id`; shared by the backends.

    `forced` is `mscsctl force-unlock`, run by a person for a run that is gone; otherwise
    the holder itself is releasing its own lock at the end of its run. `location` (the
    backend's) makes the lock IDs in the messages the ones `force-unlock` takes.
    """
    if held is None:
        if forced:
            raise MscsError(f"state {where} is not locked; there is nothing to force-unlock.")
        raise MscsError(
            f"state {where} is not locked any more: lock {lock_id} was removed "
            "by someone else (force-unlock?) while this run held it."
        )
    if held.id == lock_id:
        return
    if forced:
        held_id = format_lock_id(held.id, location) if location else held.id
        raise HeldLockError(
            f"refusing to force-unlock: the lock's ID is {held_id}, not {lock_id}. "
            f"It is held by {held.who} (operation {held.operation!r}, pid {held.pid}) "
            f"since {held.created}. Check that run is gone, then give that ID.",
            held,
            stale=holder_is_gone(held),
        )
    raise HeldLockError(
        f"refusing to unlock with ID {lock_id}: the lock is not this run's. " + holder_message(held, where, location),
        held,
        stale=holder_is_gone(held),
    )


@runtime_checkable
class StateBackend(Protocol):
    """Where a cluster's state lives: `LocalFileBackend` (a JSON file) or `PostgresBackend` (a database row)."""

    def describe(self) -> str:
        """Where the state is, for messages: a file path or a database and cluster."""
        ...

    def location(self) -> str:
        """Where the state is, as `--state` takes it, with no password: what a lock ID names."""
        ...

    def read(self) -> State | None:
        """The stored state, or None when there is none yet."""
        ...

    def write(self, state: State, *, expected_serial: int | None) -> State:
        """Store `state` if the stored serial is `expected_serial` (None: no state yet).

        Returns the state as stored, with serial `expected_serial + 1` (1 for a first write)
        and `updated_at` set. Raises `StaleStateError` when the stored state is not the one
        expected, and `MscsError` when the state holds a key named like a secret.
        """
        ...

    def lock(self, info: LockInfo) -> LockInfo:
        """Take the lock at once or raise `LockedError` naming the holder; never waits."""
        ...

    def unlock(self, lock_id: str) -> None:
        """Release our own lock; refuses with `LockedError` if the lock is someone else's."""
        ...

    def force_unlock(self, lock_id: str) -> None:
        """Remove a lock left behind by a run that is gone, only if its ID is `lock_id`."""
        ...


@contextmanager
def locked(
    backend: StateBackend,
    operation: str,
    *,
    who: str | None = None,
    timeout_s: float = 0.0,
    poll_s: float = 0.5,
    on_wait: Callable[[LockedError], None] | None = None,
) -> Iterator[LockInfo]:
    """Hold the state lock for the duration of the block and always release it.

    With `timeout_s` > 0, a lock held by another run is asked for again every `poll_s`
    seconds until it is free or `timeout_s` has passed, then the `LockedError` is raised;
    `on_wait` is called once, with the refusal, when the waiting starts (to tell the user).
    A lock whose holder is known to be gone (`holder_is_gone`) is never waited for.

    If the block fails and releasing fails too, the block's error is the one raised (it is
    what went wrong); the release failure is attached to it as a note.
    """
    deadline = time.monotonic() + max(timeout_s, 0.0)
    waited = False
    while True:
        try:
            held = backend.lock(new_lock_info(operation, who=who))
            break
        except LockedError as refused:
            remaining = deadline - time.monotonic()
            if getattr(refused, "stale", False) or remaining <= 0:
                if waited:
                    raise _gave_up(refused, timeout_s) from None
                raise
            if not waited and on_wait is not None:
                on_wait(refused)
            waited = True
            time.sleep(min(max(poll_s, 0.01), remaining))
    try:
        yield held
    except BaseException as failure:
        try:
            backend.unlock(held.id)
        except Exception as release_failure:
            failure.add_note(f"releasing the state lock {held.id} also failed: {release_failure}")
        raise
    backend.unlock(held.id)


def _gave_up(refused: LockedError, timeout_s: float) -> LockedError:
    """The last refusal, saying how long the run waited for the lock."""
    message = f"gave up after waiting {timeout_s:g}s for the lock: {refused}"
    if isinstance(refused, HeldLockError):
        return HeldLockError(message, refused.held, stale=refused.stale)
    return LockedError(message)
