"""The state in PostgreSQL: one row per cluster, and a lock row that names its holder.

For teams that run mscsctl from several machines (a pipeline and an operator's laptop),
the state must be shared. A write is a compare-and-set on the serial
(`UPDATE … WHERE serial = expected`, or an insert that only succeeds when no row exists),
so two runs can never both win. The lock is a row in `mscsctl_lock`, not only an advisory
lock, because a blocked user must be told who holds it; like the file lock it outlives a
crashed run until `mscsctl force-unlock ID`.

Each call opens its own short connection, so no transaction or session is held while the
apply loop talks to vCenter.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote

import psycopg
from psycopg.conninfo import conninfo_to_dict
from pydantic import ValidationError

from reconciler.errors import LockedError, MscsError, StaleStateError
from state.backend import LockInfo, check_expected_serial, check_release, lock_refusal
from state.model import State, check_no_secrets, parse_state, utc_now

SCHEMA = (
    """
    CREATE TABLE IF NOT EXISTS mscsctl_state (
        cluster    text PRIMARY KEY,
        lineage    uuid NOT NULL,
        serial     bigint NOT NULL CHECK (serial > 0),
        body       jsonb NOT NULL,
        updated_at timestamptz NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS mscsctl_lock (
        cluster text PRIMARY KEY,
        id      uuid NOT NULL,
        info    jsonb NOT NULL,
        created timestamptz NOT NULL
    )
    """,
)
CONNECT_TIMEOUT_SECONDS = 10


def describe_database(dsn: str) -> str:
    """The database a URL or keyword string points at, as a URL without its password.

    Only the user, host, port and database are kept (never `password` or `sslpassword`),
    each percent-encoded where a URL needs it, so that the result is itself a location
    libpq connects to (a socket directory as host reads `%2Fvar%2Frun%2Fpostgresql`):
    a lock ID carries it, and `force-unlock` connects with it when nothing else is given.
    """
    try:
        parts = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        # libpq's message may quote the string, password included: say only what is wrong.
        raise MscsError("the PostgreSQL state location is not a valid connection string or URL") from None
    user = f"{quote(str(parts['user']), safe='')}@" if parts.get("user") else ""
    host = quote(str(parts.get("host", "")), safe=",")
    port = f":{parts['port']}" if parts.get("port") and "," not in str(parts.get("host", "")) else ""
    return f"postgresql://{user}{host}{port}/{quote(str(parts.get('dbname', '')), safe='')}"


class PostgresBackend:
    """The state of one cluster: its row in `mscsctl_state`, its lock in `mscsctl_lock`."""

    def __init__(self, dsn: str, cluster: str) -> None:
        self.dsn = dsn
        self.cluster = cluster
        self._where = f"{describe_database(dsn)} (cluster {cluster})"
        self._schema_ready = False

    def __repr__(self) -> str:
        return f"PostgresBackend({self._where!r})"

    def describe(self) -> str:
        return self._where

    def location(self) -> str:
        return f"{describe_database(self.dsn)}#{self.cluster}"

    def read(self) -> State | None:
        with self._transaction() as conn:
            return self._stored(conn, for_update=False)

    def write(self, state: State, *, expected_serial: int | None) -> State:
        check_no_secrets(state)
        if state.cluster != self.cluster:
            raise MscsError(f"refusing to write the state of cluster {state.cluster!r} into {self._where}.")
        with self._transaction() as conn:
            stored = self._stored(conn, for_update=True)
            serial = check_expected_serial(stored, state, expected_serial, self._where)
            written = state.as_written(serial=serial, now=utc_now())
            params = {
                "cluster": self.cluster,
                "lineage": written.lineage,
                "serial": serial,
                "body": written.model_dump_json(),
                "updated_at": written.updated_at,
                "expected": expected_serial,
            }
            if expected_serial is None:
                stored_rows = conn.execute(
                    "INSERT INTO mscsctl_state (cluster, lineage, serial, body, updated_at) "
                    "VALUES (%(cluster)s, %(lineage)s, %(serial)s, %(body)s::jsonb, %(updated_at)s) "
                    "ON CONFLICT (cluster) DO NOTHING",
                    params,
                ).rowcount
            else:
                stored_rows = conn.execute(
                    "UPDATE mscsctl_state SET serial = %(serial)s, body = %(body)s::jsonb, "
                    "updated_at = %(updated_at)s "
                    "WHERE cluster = %(cluster)s AND serial = %(expected)s AND lineage = %(lineage)s",
                    params,
                ).rowcount
            if stored_rows != 1:
                raise StaleStateError(
                    f"state {self._where} was written by another run while this one wrote it. Run plan again."
                )
        return written

    def lock(self, info: LockInfo) -> LockInfo:
        info = LockInfo.model_validate({**dict(info), "backend": "postgresql", "path": self._where})
        for _ in range(3):
            with self._transaction() as conn:
                taken = conn.execute(
                    "INSERT INTO mscsctl_lock (cluster, id, info, created) "
                    "VALUES (%s, %s, %s::jsonb, %s) ON CONFLICT (cluster) DO NOTHING",
                    (self.cluster, info.id, info.model_dump_json(), info.created),
                ).rowcount
                if taken == 1:
                    return info
                held = self._held(conn, for_update=False)
            if held is not None:
                raise lock_refusal(held, self._where, self.location())
        raise LockedError(f"state {self._where} is being locked and unlocked by other runs; try again.")

    def unlock(self, lock_id: str) -> None:
        self._release(lock_id, forced=False)

    def force_unlock(self, lock_id: str) -> None:
        self._release(lock_id, forced=True)

    def _release(self, lock_id: str, *, forced: bool) -> None:
        with self._transaction() as conn:
            held = self._held(conn, for_update=True)
            check_release(held, lock_id, self._where, forced=forced, location=self.location())
            conn.execute("DELETE FROM mscsctl_lock WHERE cluster = %s AND id = %s", (self.cluster, lock_id))

    def _stored(self, conn: psycopg.Connection, *, for_update: bool) -> State | None:
        row = conn.execute(
            "SELECT body::text FROM mscsctl_state WHERE cluster = %s" + (" FOR UPDATE" if for_update else ""),
            (self.cluster,),
        ).fetchone()
        return None if row is None else parse_state(row[0], self._where)

    def _held(self, conn: psycopg.Connection, *, for_update: bool) -> LockInfo | None:
        row = conn.execute(
            "SELECT info::text FROM mscsctl_lock WHERE cluster = %s" + (" FOR UPDATE" if for_update else ""),
            (self.cluster,),
        ).fetchone()
        if row is None:
            return None
        try:
            return LockInfo.model_validate_json(row[0])
        except ValidationError:
            raise LockedError(
                f"state {self._where} has a lock row in mscsctl_lock that does not name a holder. "
                "If no mscsctl run uses this state, delete that row."
            ) from None

    @contextmanager
    def _transaction(self) -> Iterator[psycopg.Connection]:
        """One connection and transaction: committed when the block ends, rolled back if it fails."""
        try:
            with psycopg.connect(self.dsn, connect_timeout=CONNECT_TIMEOUT_SECONDS) as conn:
                if not self._schema_ready:
                    self._create_schema(conn)
                yield conn
        except psycopg.Error as exc:
            raise MscsError(f"state database {self._where}: {_first_line(exc)}") from None

    def _create_schema(self, conn: psycopg.Connection) -> None:
        # Two first runs may race to create the tables; the loser's error is harmless.
        try:
            with conn.transaction():
                for statement in SCHEMA:
                    conn.execute(statement)
        except (psycopg.errors.UniqueViolation, psycopg.errors.DuplicateTable):
            pass
        self._schema_ready = True


def _first_line(exc: psycopg.Error) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
