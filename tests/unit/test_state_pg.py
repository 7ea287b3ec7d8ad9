"""The PostgreSQL state backend against a real, throwaway PostgreSQL server."""

from __future__ import annotations

import threading
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest

from reconciler.errors import LockedError, MscsError, StaleStateError
from reconciler.workspace import locked_state
from state import (
    ManagedResource,
    State,
    desired_file_hash,
    force_unlock_command,
    format_lock_id,
    locked,
    new_lock_info,
    open_backend,
)
from state.postgres import PostgresBackend, describe_database
from tests import state_pg_fixture
from tests.unit.test_bounded_input import mscsctl
from tests.unit.test_locks import printed_command, run_as_printed

pytestmark = pytest.mark.postgres

# the throwaway server and a fresh database per test
postgres_server = state_pg_fixture.postgres_server
postgres_dsn = state_pg_fixture.postgres_dsn

CLUSTER = "sql-prod-01"  # the cluster of examples/cluster-across-boxes.yaml
EXAMPLE = "examples/cluster-across-boxes.yaml"
REPO_ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "Winter2024!"
WHEN = "2024-05-01T12:00:00Z"
DESIRED_HASH = desired_file_hash(b"apiVersion: mscsctl/v1\n")
QUORUM = "sql-prod-01/node/SQLNODE1/disk/quorum"
RULE = "sql-prod-01/cluster-rule/mscs-sql-prod-01"


def sample_state(cluster: str = CLUSTER) -> State:
    return (
        State.new(cluster, DESIRED_HASH, now=WHEN)
        .with_resource(
            QUORUM,
            ManagedResource(
                kind="rdm-disk",
                vm_moref="vm-1042",
                device_key=2001,
                file="[SAN-VMFS-01] SQLNODE1/SQLNODE1_quorum.vmdk",
                created_by_mscsctl=True,
                applied={"compatibility": "physical", "sizeGb": 1.5, "sharing": ["SQLNODE1", "SQLNODE2"]},
                applied_at=WHEN,
            ),
        )
        .with_resource(
            RULE,
            ManagedResource(
                kind="vm-rule",
                cluster_moref="domain-c7",
                rule_key=4,
                created_by_mscsctl=True,
                applied={"vms": ["vm-1042", "vm-1043"], "mandatory": True},
                applied_at=WHEN,
            ),
        )
    )


def stored_row(dsn: str, cluster: str = CLUSTER) -> tuple | None:
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "SELECT lineage::text, serial, body::text FROM mscsctl_state WHERE cluster = %s", (cluster,)
        ).fetchone()


@pytest.fixture
def backend(postgres_dsn: str) -> PostgresBackend:
    return PostgresBackend(postgres_dsn, CLUSTER)


def test_state_written_is_the_state_read_back(backend: PostgresBackend, postgres_dsn: str) -> None:
    assert backend.read() is None

    written = backend.write(sample_state(), expected_serial=None)

    assert written.serial == 1
    assert backend.read() == written
    lineage, serial, _ = stored_row(postgres_dsn)
    assert (lineage, serial) == (written.lineage, 1)


def test_serial_rises_by_one_and_lineage_is_kept(backend: PostgresBackend) -> None:
    created = sample_state()
    backend.write(created, expected_serial=None)
    backend.write(backend.read().without_resource(RULE), expected_serial=1)
    third = backend.write(backend.read(), expected_serial=2)

    assert third.serial == 3
    assert backend.read().lineage == created.lineage
    assert RULE not in backend.read().resources


def test_write_from_an_older_read_is_refused(backend: PostgresBackend, postgres_dsn: str) -> None:
    backend.write(sample_state(), expected_serial=None)
    run_a, run_b = backend.read(), backend.read()
    backend.write(run_a.without_resource(RULE), expected_serial=1)
    before = stored_row(postgres_dsn)

    with pytest.raises(StaleStateError, match=r"serial 2.*serial 1"):
        backend.write(run_b, expected_serial=1)

    assert stored_row(postgres_dsn) == before


def test_first_write_and_lineage_are_checked_like_the_file_backend(backend: PostgresBackend) -> None:
    with pytest.raises(StaleStateError, match="expected serial 4"):
        backend.write(sample_state(), expected_serial=4)
    backend.write(sample_state(), expected_serial=None)

    with pytest.raises(StaleStateError, match="already exists"):
        backend.write(sample_state(), expected_serial=None)
    with pytest.raises(StaleStateError, match="lineage"):
        backend.write(sample_state(), expected_serial=1)


def test_of_many_concurrent_writers_exactly_one_wins(postgres_dsn: str) -> None:
    PostgresBackend(postgres_dsn, CLUSTER).write(sample_state(), expected_serial=None)
    base = PostgresBackend(postgres_dsn, CLUSTER).read()
    outcomes: list[str] = []
    start = threading.Barrier(8)

    def one_run(n: int) -> None:
        mine = PostgresBackend(postgres_dsn, CLUSTER)
        start.wait()
        try:
            mine.write(base.with_desired_hash(f"{n:064x}"), expected_serial=1)
            outcomes.append("won")
        except StaleStateError:
            outcomes.append("stale")

    runs = [threading.Thread(target=one_run, args=(n,)) for n in range(8)]
    for run in runs:
        run.start()
    for run in runs:
        run.join(timeout=60)

    assert sorted(outcomes) == ["stale"] * 7 + ["won"]
    assert PostgresBackend(postgres_dsn, CLUSTER).read().serial == 2


def test_clusters_share_the_database_but_not_their_state_or_locks(postgres_dsn: str) -> None:
    prod = PostgresBackend(postgres_dsn, "sql-prod-01")
    test = PostgresBackend(postgres_dsn, "sql-test-01")
    prod.write(sample_state("sql-prod-01"), expected_serial=None)
    prod.lock(new_lock_info("apply"))

    assert test.read() is None
    assert test.write(sample_state("sql-test-01"), expected_serial=None).serial == 1
    assert test.lock(new_lock_info("apply")).operation == "apply"
    with pytest.raises(MscsError, match="cluster 'sql-test-01'"):
        prod.write(sample_state("sql-test-01"), expected_serial=1)


def test_secret_named_keys_never_reach_the_database(backend: PostgresBackend, postgres_dsn: str) -> None:
    leaky = sample_state().with_resource(
        "sql-prod-01/node/SQLNODE1/guest/disk-timeout",
        ManagedResource(
            kind="guest-setting", created_by_mscsctl=False, applied={"winrmPassword": "x"}, applied_at=WHEN
        ),
    )

    with pytest.raises(MscsError, match="winrmPassword"):
        backend.write(leaky, expected_serial=None)

    backend.read()  # creates the tables if the refusal came first
    assert stored_row(postgres_dsn) is None


def test_second_lock_fails_at_once_naming_the_holder(postgres_dsn: str) -> None:
    held = PostgresBackend(postgres_dsn, CLUSTER).lock(new_lock_info("apply", who="alice@admin01"))

    with pytest.raises(LockedError) as refused:
        PostgresBackend(postgres_dsn, CLUSTER).lock(new_lock_info("apply", who="bob@admin02"))

    message = str(refused.value)
    assert "alice@admin01" in message
    assert "'apply'" in message
    assert held.created in message
    lock_id = f"{held.id}@{describe_database(postgres_dsn)}#{CLUSTER}"
    assert message.endswith(f"remove the lock with: {force_unlock_command(lock_id)}")
    assert held.backend == "postgresql"


def test_unlock_needs_the_holders_id_and_force_unlock_needs_it_too(backend: PostgresBackend) -> None:
    held = backend.lock(new_lock_info("apply", who="alice@admin01"))
    stranger = new_lock_info("apply").id

    with pytest.raises(LockedError, match="not this run's"):
        backend.unlock(stranger)
    with pytest.raises(LockedError, match=rf"lock's ID is {held.id}"):
        backend.force_unlock(stranger)
    with pytest.raises(LockedError):
        backend.lock(new_lock_info("plan"))

    backend.force_unlock(held.id)

    with pytest.raises(MscsError, match="not locked any more"):
        backend.unlock(held.id)
    bobs = backend.lock(new_lock_info("apply", who="bob@admin02"))
    with pytest.raises(LockedError, match=r"not this run's.*bob@admin02"):
        backend.unlock(held.id)  # alice's late release must not remove bob's lock
    backend.unlock(bobs.id)


def test_locked_releases_the_row_even_when_the_block_fails(backend: PostgresBackend) -> None:
    with pytest.raises(RuntimeError), locked(backend, "apply"):
        raise RuntimeError("vCenter task failed")

    assert backend.lock(new_lock_info("apply", who="bob@admin02")).who == "bob@admin02"  # free again


def test_corrupt_row_is_reported_naming_database_and_cluster(backend: PostgresBackend, postgres_dsn: str) -> None:
    backend.write(sample_state(), expected_serial=None)
    with psycopg.connect(postgres_dsn) as conn:
        conn.execute('UPDATE mscsctl_state SET body = \'{"version": 1, "serial": "x"}\'::jsonb')

    with pytest.raises(MscsError, match=r"cluster sql-prod-01.*not a valid mscsctl state"):
        backend.read()
    with pytest.raises(MscsError, match="not a valid mscsctl state"):
        backend.write(sample_state(), expected_serial=1)


def test_open_backend_gives_the_database_backend_for_a_url(postgres_dsn: str) -> None:
    opened = open_backend("postgresql://mscsctl@db.lab.local:5433/mscsctl", cluster=CLUSTER)

    assert isinstance(opened, PostgresBackend)
    assert opened.describe() == "postgresql://mscsctl@db.lab.local:5433/mscsctl (cluster sql-prod-01)"


def test_database_url_needs_a_cluster() -> None:
    with pytest.raises(MscsError, match="say which one"):
        open_backend("postgresql://db.lab.local/mscsctl")


def test_password_never_appears_in_descriptions() -> None:
    described = describe_database("postgresql://mscsctl:Winter2024!@db.lab.local/mscsctl")

    assert "Winter2024" not in described
    assert described == "postgresql://mscsctl@db.lab.local/mscsctl"


def test_unreachable_database_is_an_error_not_a_traceback(tmp_path) -> None:
    nowhere = PostgresBackend(f"host={tmp_path} port=1 user=postgres dbname=x connect_timeout=2", CLUSTER)

    with pytest.raises(MscsError, match=r"state database postgresql://postgres@.*/x \(cluster sql-prod-01\)"):
        nowhere.read()


# --- where the database is, and its password ----------------------------------------------


def with_password(dsn: str) -> str:
    """The keyword string with a password (the test server trusts every local connection)."""
    return f"{dsn} password={PASSWORD}"


def as_url(dsn: str, password: str = PASSWORD) -> str:
    """`host=/dir port=N user=U dbname=D` as a URL with a password in it."""
    parts = dict(item.split("=", 1) for item in dsn.split())
    return f"postgresql://{parts['user']}:{password}@{quote(parts['host'], safe='')}:{parts['port']}/{parts['dbname']}"


def test_a_libpq_keyword_string_is_a_database_location(postgres_dsn: str) -> None:
    opened = open_backend(with_password(postgres_dsn), cluster=CLUSTER)

    assert isinstance(opened, PostgresBackend)
    opened.write(sample_state(), expected_serial=None)
    assert stored_row(postgres_dsn)[1] == 1
    for shown in (opened.describe(), opened.location(), repr(opened)):
        assert PASSWORD not in shown


def test_the_described_database_is_a_url_that_connects_to_it(postgres_dsn: str) -> None:
    described = describe_database(with_password(postgres_dsn))

    assert described.startswith("postgresql://postgres@%2F")  # a socket directory as the host
    assert describe_database(described) == described
    with psycopg.connect(described) as conn:
        assert conn.execute("SELECT current_database()").fetchone()[0] == postgres_dsn.rsplit("dbname=", 1)[1]


def test_a_url_may_name_its_cluster(postgres_dsn: str) -> None:
    opened = open_backend(f"{describe_database(postgres_dsn)}#{CLUSTER}")

    assert opened.describe().endswith(f"(cluster {CLUSTER})")
    with pytest.raises(MscsError, match="names cluster 'sql-prod-01', but this is cluster 'other'"):
        open_backend(f"{describe_database(postgres_dsn)}#{CLUSTER}", cluster="other")


@pytest.mark.parametrize("form", ["keywords", "url"])
def test_show_never_prints_the_password(postgres_dsn: str, form: str) -> None:
    PostgresBackend(postgres_dsn, CLUSTER).write(sample_state(), expected_serial=None)
    location = with_password(postgres_dsn) if form == "keywords" else as_url(postgres_dsn)

    runs = [["show", EXAMPLE, "--state", location], ["show", "--json", EXAMPLE, "--state", location]]
    if form == "url":  # a URL may name the cluster itself; a keyword string's comes from the file
        runs.append(["show", "--state", f"{location}#{CLUSTER}"])
    for args in runs:
        code, out, err = mscsctl(*args, cwd=REPO_ROOT, env={"MSCSCTL_LOG_LEVEL": "debug"})
        assert code == 0, err
        assert f"cluster {CLUSTER}" in out or f'"cluster": "{CLUSTER}"' in out
        assert PASSWORD not in out + err


@pytest.mark.parametrize("form", ["keywords", "url"])
def test_errors_never_print_the_password(postgres_dsn: str, form: str) -> None:
    missing = postgres_dsn.replace("dbname=", "dbname=no_such_")
    location = with_password(missing) if form == "keywords" else as_url(missing)

    malformed = f"{location} port" if form == "keywords" else f"{location}?no_such_option=1"
    errors = []
    for args in (["show", EXAMPLE, "--state", location], ["show", EXAMPLE, "--state", malformed]):
        code, out, err = mscsctl(*args, cwd=REPO_ROOT, env={"MSCSCTL_LOG_LEVEL": "debug"})
        assert code == 1, (out, err)
        assert PASSWORD not in out + err  # the debug lines included
        (error,) = [line for line in err.splitlines() if line.startswith("Error:")]
        errors.append(error)
    assert 'database "no_such_' in errors[0] and "does not exist" in errors[0]
    assert errors[1] == "Error: the PostgreSQL state location is not a valid connection string or URL"


def test_the_printed_force_unlock_works_as_printed_without_the_password(postgres_dsn: str) -> None:
    holder = PostgresBackend(with_password(postgres_dsn), CLUSTER)
    held = holder.lock(new_lock_info("apply", who="alice@admin01"))
    with pytest.raises(LockedError) as refused:
        PostgresBackend(with_password(postgres_dsn), CLUSTER).lock(new_lock_info("apply"))
    command = printed_command(str(refused.value))
    assert PASSWORD not in str(refused.value)
    assert command == force_unlock_command(format_lock_id(held.id, holder.location()))

    done = run_as_printed(command, REPO_ROOT)

    assert done.returncode == 0, done.stderr
    assert holder.lock(new_lock_info("apply", who="bob@admin02")).who == "bob@admin02"  # free again


def test_force_unlock_connects_with_the_given_state_when_it_is_the_same_database(
    postgres_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MSCSCTL_STATE", raising=False)
    holder = PostgresBackend(postgres_dsn, CLUSTER)
    lock_id = format_lock_id(holder.lock(new_lock_info("apply")).id, holder.location())

    given, _ = locked_state(lock_id, state=with_password(postgres_dsn))
    assert given.dsn == with_password(postgres_dsn)
    monkeypatch.setenv("MSCSCTL_STATE", as_url(postgres_dsn))
    from_env, _ = locked_state(lock_id)
    assert from_env.dsn == as_url(postgres_dsn)
    monkeypatch.setenv("MSCSCTL_STATE", "mscsctl.state.json")
    alone, lock_uuid = locked_state(lock_id)
    assert alone.dsn == describe_database(postgres_dsn)
    alone.force_unlock(lock_uuid)

    other = postgres_dsn.replace("dbname=", "dbname=other_")
    with pytest.raises(MscsError) as refused:
        locked_state(lock_id, state=with_password(other))
    assert "give the lock ID alone, or --state for that database" in str(refused.value)
    assert PASSWORD not in str(refused.value)
