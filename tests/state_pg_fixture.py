"""A throwaway PostgreSQL server for the state backend tests.

`postgres_server` runs `initdb` and `pg_ctl start` in a private temporary directory,
listening on a unix socket only (no TCP port to collide with), and stops and deletes it at
the end of the session. PostgreSQL refuses to run as root, so under root the server runs as
the `postgres` system user through `runuser`. `postgres_dsn` gives each test its own fresh
database.

When the binaries or a non-root user are missing the tests are skipped with the reason,
except under CI=true, where a skipped backend would be an untested backend: there they fail.
Import both fixtures into a test module to use them.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import pytest

SOCKET_PORT = 5432  # only names the socket file, which lives in our own directory
SEARCH_DIRS = ("/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin", "/usr/local/pgsql/bin")


@dataclass(frozen=True)
class PostgresServer:
    socket_dir: Path
    port: int
    user: str

    def dsn(self, dbname: str = "postgres") -> str:
        return f"host={self.socket_dir} port={self.port} user={self.user} dbname={dbname}"


def unavailable(reason: str) -> NoReturn:
    """Skip, or fail under CI=true, where every backend must be tested."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"PostgreSQL tests cannot run: {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL tests need a local server: {reason}")


def find_bin_dir() -> Path | None:
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return Path(on_path).parent
    candidates = sorted(
        (p for pattern in SEARCH_DIRS for p in Path("/").glob(pattern.lstrip("/"))),
        key=lambda p: p.as_posix(),
        reverse=True,  # newest version first
    )
    return next((c for c in candidates if (c / "initdb").exists() and (c / "pg_ctl").exists()), None)


def run_as(user: str | None, command: list[str]) -> subprocess.CompletedProcess[str]:
    """Run a server command as `user` (we are root) or as ourselves."""
    full = ["runuser", "-u", user, "--", *command] if user else command
    return subprocess.run(full, capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    bin_dir = find_bin_dir()
    if bin_dir is None:
        unavailable("initdb and pg_ctl not found (install the postgresql package)")
    run_user: str | None = None
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            unavailable("running as root and there is no 'postgres' user to run the server as")
        if shutil.which("runuser") is None:
            unavailable("running as root and runuser is missing")
        run_user = "postgres"
    base = Path(tempfile.mkdtemp(prefix="mscsctl-pg-"))
    if run_user:
        os.chown(base, owner.pw_uid, owner.pw_gid)
    data = base / "data"
    initdb = run_as(
        run_user,
        [
            str(bin_dir / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        ],
    )
    if initdb.returncode != 0:
        shutil.rmtree(base, ignore_errors=True)
        unavailable(f"initdb failed: {initdb.stderr.strip() or initdb.stdout.strip()}")
    options = f"-c listen_addresses='' -k {base} -p {SOCKET_PORT} -c fsync=off -c full_page_writes=off"
    start = run_as(
        run_user,
        [
            str(bin_dir / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-l",
            str(base / "server.log"),
            "-w",
            "start",
        ],
    )
    if start.returncode != 0:
        log = (base / "server.log").read_text(errors="replace") if (base / "server.log").exists() else ""
        shutil.rmtree(base, ignore_errors=True)
        unavailable(f"pg_ctl start failed: {start.stderr.strip()} {log[-2000:]}")
    try:
        yield PostgresServer(socket_dir=base, port=SOCKET_PORT, user="postgres")
    finally:
        run_as(run_user, [str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"])
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def postgres_dsn(postgres_server: PostgresServer) -> Iterator[str]:
    """A connection string to a new, empty database that is dropped after the test."""
    import psycopg

    name = f"mscsctl_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server.dsn(), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield postgres_server.dsn(name)
    finally:
        with psycopg.connect(postgres_server.dsn(), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
