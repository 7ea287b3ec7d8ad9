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
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from reconciler.errors import LockedError, MscsError, StaleStateError
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


def holder_message(held: LockInfo, where: str) -> str:
    """The sentence a blocked user reads: who holds the lock, and how to remove a stale one."""
    return (
        f"state {where} is locked by {held.who} (operation {held.operation!r}, pid {held.pid}) "
        f"since {held.created}, lock ID {held.id}. Wait for that run to finish; if it is gone "
        f"(crashed, killed), remove the lock with: mscsctl force-unlock {held.id}"
    )


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


def check_release(held: LockInfo | None, lock_id: str, where: str, *, forced: bool) -> None:
    """Refuse to release a lock that is absent or not `lock_id`; shared by the backends.

    `forced` is `mscsctl force-unlock`, run by a person for a run that is gone; otherwise
    the holder itself is releasing its own lock at the end of its run.
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
        raise LockedError(
            f"refusing to force-unlock: the lock's ID is {held.id}, not {lock_id}. "
            f"It is held by {held.who} (operation {held.operation!r}, pid {held.pid}) "
            f"since {held.created}. Check that run is gone, then give that ID."
        )
    raise LockedError(
        f"refusing to unlock with ID {lock_id}: the lock is not this run's. " + holder_message(held, where)
    )


@runtime_checkable
class StateBackend(Protocol):
    """Where a cluster's state lives: `LocalFileBackend` (a JSON file) or `PostgresBackend` (a database row)."""

    def describe(self) -> str:
        """Where the state is, for messages: a file path or a database and cluster."""
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
def locked(backend: StateBackend, operation: str, *, who: str | None = None) -> Iterator[LockInfo]:
    """Hold the state lock for the duration of the block and always release it.

    If the block fails and releasing fails too, the block's error is the one raised (it is
    what went wrong); the release failure is attached to it as a note.
    """
    held = backend.lock(new_lock_info(operation, who=who))
    try:
        yield held
    except BaseException as failure:
        try:
            backend.unlock(held.id)
        except Exception as release_failure:
            failure.add_note(f"releasing the state lock {held.id} also failed: {release_failure}")
        raise
    backend.unlock(held.id)
