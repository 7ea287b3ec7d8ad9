"""The recorded state and the local file backend: what a run can rely on when it reads and writes."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from pydantic import ValidationError

import state.local
from reconciler.errors import LockedError, MscsError, StaleStateError
from state import (
    LocalFileBackend,
    LockInfo,
    ManagedResource,
    State,
    default_state_path,
    desired_file_hash,
    is_database_location,
    locked,
    new_lock_info,
    open_backend,
    redact,
    resolve_state_path,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
DESIRED_HASH = desired_file_hash(b"apiVersion: mscsctl/v1\nkind: FailoverCluster\n")
WHEN = "2024-05-01T12:00:00Z"
RULE = "sql-prod-01/cluster-rule/mscs-sql-prod-01"


def quorum_rdm() -> ManagedResource:
    return ManagedResource(
        kind="rdm-disk",
        vm_moref="vm-1042",
        device_key=2001,
        file="[SAN-VMFS-01] SQLNODE1/SQLNODE1_quorum.vmdk",
        created_by_mscsctl=True,
        applied={
            "controller": "scsi1",
            "unitNumber": 0,
            "compatibility": "physical",
            "lun": {"canonicalName": "naa.600a098038304331395d4a7a6f6a6c51", "sizeGb": 1.5},
            "sharing": ["SQLNODE1", "SQLNODE2"],
            "writeThrough": None,
        },
        applied_at=WHEN,
    )


def lun_reset_option() -> ManagedResource:
    return ManagedResource(
        kind="host-option",
        host_moref="host-31",
        created_by_mscsctl=False,
        applied={"key": "Disk.UseLunReset", "value": 1},
        applied_at=WHEN,
    )


def anti_affinity_rule() -> ManagedResource:
    return ManagedResource(
        kind="vm-rule",
        cluster_moref="domain-c7",
        rule_key=4,
        created_by_mscsctl=True,
        applied={"name": "mscs-sql-prod-01", "vms": ["vm-1042", "vm-1043"], "mandatory": True},
        applied_at=WHEN,
    )


def sample_state() -> State:
    return (
        State.new("sql-prod-01", DESIRED_HASH, now=WHEN)
        .with_resource("sql-prod-01/node/SQLNODE1/disk/quorum", quorum_rdm())
        .with_resource("sql-prod-01/host/esx-a1.lab.local/option/Disk.UseLunReset", lun_reset_option())
        .with_resource("sql-prod-01/cluster-rule/mscs-sql-prod-01", anti_affinity_rule())
    )


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def backend(tmp_path: Path) -> LocalFileBackend:
    return LocalFileBackend(tmp_path / "mscsctl.state.json")


# --- the model -------------------------------------------------------------------------


def test_state_survives_json_round_trip_unchanged() -> None:
    original = sample_state()
    text = original.to_json()

    again = State.from_json(text)

    assert again == original
    assert again.to_json() == text
    assert again.get("sql-prod-01/node/SQLNODE1/disk/quorum").applied["lun"]["sizeGb"] == 1.5


def test_stored_form_lists_resources_in_address_order_whatever_the_insertion_order() -> None:
    forwards = sample_state()
    backwards = State.new("sql-prod-01", DESIRED_HASH, now=WHEN).model_copy(update={"lineage": forwards.lineage})
    for address, resource in reversed(list(forwards.resources.items())):
        backwards = backwards.with_resource(address, resource)

    assert backwards.to_json() == forwards.to_json()
    assert list(json.loads(forwards.to_json())["resources"]) == sorted(forwards.resources)


def test_helpers_return_new_states_and_leave_the_original_alone() -> None:
    original = sample_state()
    address = "sql-prod-01/node/SQLNODE2/disk/quorum"

    added = original.with_resource(address, quorum_rdm().model_copy(update={"vm_moref": "vm-1043"}))
    removed = added.without_resource(RULE)

    assert original.get(address) is None
    assert added.get(address).vm_moref == "vm-1043"
    assert removed.get("sql-prod-01/cluster-rule/mscs-sql-prod-01") is None
    assert "sql-prod-01/cluster-rule/mscs-sql-prod-01" in added.resources
    assert removed.without_resource("not/there") == removed
    with pytest.raises(ValidationError):
        original.serial = 7  # type: ignore[misc]


def test_new_states_get_distinct_lineages() -> None:
    assert State.new("a", DESIRED_HASH).lineage != State.new("a", DESIRED_HASH).lineage


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("updated_at", "2024-05-01T12:00:00"),  # no zone: ambiguous
        ("updated_at", "2024-05-01T14:00:00+02:00"),  # not UTC
        ("lineage", "not-a-uuid"),
        ("desired_hash", "ABC"),
    ],
)
def test_state_rejects_malformed_fields(field: str, value: str) -> None:
    data = json.loads(sample_state().to_json())
    data[field] = value
    with pytest.raises(ValidationError):
        State.model_validate(data)


# --- writing, serials, lineage ----------------------------------------------------------


def test_first_write_stores_serial_one_and_read_returns_it(backend: LocalFileBackend) -> None:
    assert backend.read() is None

    written = backend.write(sample_state(), expected_serial=None)

    assert written.serial == 1
    assert backend.read() == written
    stored = json.loads(backend.path.read_text())
    assert stored["version"] == 1
    assert stored["serial"] == 1
    assert stored["cluster"] == "sql-prod-01"


def test_every_write_adds_one_to_the_serial_and_keeps_the_lineage(backend: LocalFileBackend) -> None:
    created = sample_state()
    first = backend.write(created, expected_serial=None)
    second = backend.write(backend.read().without_resource(RULE), expected_serial=1)
    third = backend.write(backend.read().with_desired_hash("0" * 64), expected_serial=2)

    assert (first.serial, second.serial, third.serial) == (1, 2, 3)
    assert backend.read().serial == 3
    assert {first.lineage, second.lineage, third.lineage, backend.read().lineage} == {created.lineage}


def test_write_from_an_older_read_is_refused_and_changes_nothing(backend: LocalFileBackend) -> None:
    backend.write(sample_state(), expected_serial=None)
    read_by_run_a = backend.read()
    read_by_run_b = backend.read()
    backend.write(read_by_run_a.without_resource(RULE), expected_serial=1)
    before = backend.path.read_bytes()

    with pytest.raises(StaleStateError, match=r"serial 2.*serial 1"):
        backend.write(read_by_run_b, expected_serial=1)

    assert backend.path.read_bytes() == before


def test_first_write_is_refused_when_a_state_already_exists(backend: LocalFileBackend) -> None:
    backend.write(sample_state(), expected_serial=None)

    with pytest.raises(StaleStateError, match="already exists"):
        backend.write(State.new("sql-prod-01", DESIRED_HASH), expected_serial=None)


def test_write_expecting_a_state_is_refused_when_there_is_none(backend: LocalFileBackend) -> None:
    with pytest.raises(StaleStateError, match="expected serial 3"):
        backend.write(sample_state(), expected_serial=3)
    assert not backend.path.exists()


def test_write_of_another_lineage_is_refused_even_with_the_right_serial(backend: LocalFileBackend) -> None:
    kept = backend.write(sample_state(), expected_serial=None)
    stranger = State.new("sql-prod-01", DESIRED_HASH)

    with pytest.raises(StaleStateError, match="lineage"):
        backend.write(stranger, expected_serial=1)

    assert backend.read() == kept


def test_previous_state_is_kept_as_backup(backend: LocalFileBackend) -> None:
    backend.write(sample_state(), expected_serial=None)
    assert not backend.backup_path.exists()
    first_bytes = backend.path.read_bytes()

    backend.write(backend.read().without_resource(RULE), expected_serial=1)

    assert backend.backup_path == backend.path.with_name("mscsctl.state.json.backup")
    assert backend.backup_path.read_bytes() == first_bytes
    assert State.from_json(backend.backup_path.read_bytes()).serial == 1
    assert backend.read().serial == 2


@pytest.mark.parametrize("umask", [0o000, 0o022, 0o277])
def test_state_backup_and_lock_files_are_private(backend: LocalFileBackend, umask: int) -> None:
    previous = os.umask(umask)
    try:
        backend.write(sample_state(), expected_serial=None)
        backend.write(backend.read(), expected_serial=1)
        backend.lock(new_lock_info("apply"))
    finally:
        os.umask(previous)

    assert mode_of(backend.path) == 0o600
    assert mode_of(backend.backup_path) == 0o600
    assert mode_of(backend.lock_path) == 0o600


def test_crash_before_the_rename_leaves_the_old_state_intact(
    backend: LocalFileBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend.write(sample_state(), expected_serial=None)
    old_bytes = backend.path.read_bytes()
    seen_at_rename: dict[str, object] = {}
    real_replace = os.replace

    def crash_on_state_rename(src: str | Path, dst: str | Path) -> None:
        if Path(dst) == backend.path:
            seen_at_rename["complete"] = State.from_json(Path(src).read_bytes()).serial == 2
            seen_at_rename["mode"] = mode_of(Path(src))
            seen_at_rename["same_directory"] = Path(src).parent == backend.path.parent
            raise KeyboardInterrupt  # the process dies between writing the new file and renaming it
        real_replace(src, dst)

    monkeypatch.setattr(state.local.os, "replace", crash_on_state_rename)
    with pytest.raises(KeyboardInterrupt):
        backend.write(backend.read().without_resource(RULE), expected_serial=1)
    monkeypatch.undo()

    assert seen_at_rename == {"complete": True, "mode": 0o600, "same_directory": True}
    assert backend.path.read_bytes() == old_bytes
    assert backend.read().serial == 1
    leftovers = sorted(p.name for p in backend.path.parent.iterdir())
    assert leftovers == ["mscsctl.state.json", "mscsctl.state.json.backup"]
    # and the next run carries on from the intact state
    assert backend.write(backend.read(), expected_serial=1).serial == 2


def test_failed_write_is_reported_without_touching_the_state(
    backend: LocalFileBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend.write(sample_state(), expected_serial=None)
    old_bytes = backend.path.read_bytes()

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(state.local.os, "fsync", disk_full)
    with pytest.raises(MscsError, match=r"cannot write state file .*mscsctl.state.json.*No space left"):
        backend.write(backend.read(), expected_serial=1)
    monkeypatch.undo()

    assert backend.path.read_bytes() == old_bytes
    assert not [p for p in backend.path.parent.iterdir() if p.name.endswith(".tmp")]


# --- secrets ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "applied",
    [
        {"adminPassword": "Winter2024!"},
        {"winrm": {"client_secret": "abc"}},
        {"sessions": [{"apiToken": "abc"}]},
    ],
)
def test_state_with_a_secret_named_key_is_never_written(backend: LocalFileBackend, applied: dict) -> None:
    leaky = sample_state().with_resource(
        "sql-prod-01/node/SQLNODE1/guest/disk-timeout",
        ManagedResource(kind="guest-setting", created_by_mscsctl=False, applied=applied, applied_at=WHEN),
    )

    with pytest.raises(MscsError, match="secret") as refused:
        backend.write(leaky, expected_serial=None)

    assert "sql-prod-01/node/SQLNODE1/guest/disk-timeout" in str(refused.value)
    assert "Winter2024!" not in str(refused.value)
    assert not backend.path.exists()
    assert list(backend.path.parent.iterdir()) == []


def test_addresses_are_names_not_secrets(backend: LocalFileBackend) -> None:
    option = lun_reset_option().model_copy(
        update={"applied": {"key": "Security.PasswordQualityControl", "value": "retry=3"}}
    )
    named = sample_state().with_resource("sql-prod-01/host/esx-a1/option/Security.PasswordQualityControl", option)

    assert backend.write(named, expected_serial=None).serial == 1


# --- unreadable state -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b'{"version": 1, "lineage": "', "not valid JSON"),
        (b"", "not valid JSON"),
        (b"\xff\xfe garbage", "not valid JSON"),
        (b"[1, 2]", "expected a JSON object"),
        (b'{"version": 1, "serial": "two"}', "not a valid mscsctl state"),
        (b'{"version": 9}', "format version 9"),
    ],
)
def test_unreadable_state_is_reported_by_name_and_never_overwritten(
    backend: LocalFileBackend, content: bytes, says: str
) -> None:
    backend.path.write_bytes(content)

    with pytest.raises(MscsError, match=says) as on_read:
        backend.read()
    with pytest.raises(MscsError, match=says):
        backend.write(sample_state(), expected_serial=None)

    assert str(backend.path) in str(on_read.value)
    assert backend.path.read_bytes() == content
    assert not backend.backup_path.exists()


def test_state_path_that_cannot_be_read_gives_a_clear_error(backend: LocalFileBackend) -> None:
    backend.path.mkdir()

    with pytest.raises(MscsError, match=rf"cannot read state file {backend.path}"):
        backend.read()


def test_state_in_a_missing_directory_cannot_be_written(tmp_path: Path) -> None:
    nowhere = LocalFileBackend(tmp_path / "no-such-dir" / "mscsctl.state.json")

    with pytest.raises(MscsError, match=r"cannot write state file .*no-such-dir"):
        nowhere.write(sample_state(), expected_serial=None)


# --- locking ----------------------------------------------------------------------------


def test_lock_writes_the_holder_into_the_lock_file(backend: LocalFileBackend) -> None:
    held = backend.lock(new_lock_info("apply", who="alice@admin01"))

    on_disk = LockInfo.model_validate_json(backend.lock_path.read_bytes())
    assert backend.lock_path == backend.path.with_name("mscsctl.state.json.lock")
    assert on_disk == held
    assert (on_disk.who, on_disk.operation, on_disk.pid) == ("alice@admin01", "apply", os.getpid())
    assert on_disk.backend == "local"
    assert on_disk.path == str(backend.path)


def test_second_lock_fails_at_once_and_names_the_holder(backend: LocalFileBackend) -> None:
    held = backend.lock(new_lock_info("apply", who="alice@admin01"))

    started = time.monotonic()
    with pytest.raises(LockedError) as refused:
        backend.lock(new_lock_info("plan", who="bob@admin02"))
    elapsed = time.monotonic() - started

    message = str(refused.value)
    assert elapsed < 1.0
    assert "alice@admin01" in message
    assert "'apply'" in message
    assert held.created in message
    assert held.id in message
    assert f"mscsctl force-unlock {held.id}" in message
    assert LockInfo.model_validate_json(backend.lock_path.read_bytes()) == held


def test_lock_held_by_another_process_is_refused_here(backend: LocalFileBackend) -> None:
    other_process = textwrap.dedent(
        f"""
        import sys, time
        from state import LocalFileBackend, new_lock_info
        held = LocalFileBackend({str(backend.path)!r}).lock(new_lock_info("apply", who="carol@admin03"))
        print(held.id, flush=True)
        sys.stdin.read()
        """
    )
    child = subprocess.Popen(
        [sys.executable, "-c", other_process],
        cwd=REPO_ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        their_id = child.stdout.readline().strip()
        with pytest.raises(LockedError, match=rf"carol@admin03.*lock ID {their_id}"):
            backend.lock(new_lock_info("apply"))
    finally:
        child.communicate("", timeout=30)
    assert child.returncode == 0


def test_unlock_with_a_wrong_id_is_refused_and_the_lock_stays(backend: LocalFileBackend) -> None:
    held = backend.lock(new_lock_info("apply", who="alice@admin01"))

    with pytest.raises(LockedError, match=rf"not this run's.*alice@admin01.*{held.id}"):
        backend.unlock(new_lock_info("apply").id)

    assert LockInfo.model_validate_json(backend.lock_path.read_bytes()).id == held.id
    backend.unlock(held.id)
    assert not backend.lock_path.exists()


def test_unlock_after_someone_removed_the_lock_says_so(backend: LocalFileBackend) -> None:
    held = backend.lock(new_lock_info("apply"))
    backend.force_unlock(held.id)

    with pytest.raises(MscsError, match="not locked any more"):
        backend.unlock(held.id)


def test_force_unlock_removes_a_lock_left_behind_only_with_its_id(backend: LocalFileBackend) -> None:
    crashed = backend.lock(new_lock_info("apply", who="alice@admin01"))

    with pytest.raises(LockedError, match=rf"lock's ID is {crashed.id}"):
        backend.force_unlock("00000000-0000-4000-8000-000000000000")
    assert backend.lock_path.exists()

    backend.force_unlock(crashed.id)

    assert not backend.lock_path.exists()
    assert backend.lock(new_lock_info("apply", who="bob@admin02")).who == "bob@admin02"


def test_force_unlock_without_a_lock_says_there_is_nothing(backend: LocalFileBackend) -> None:
    with pytest.raises(MscsError, match="not locked"):
        backend.force_unlock("00000000-0000-4000-8000-000000000000")


def test_lock_file_without_a_holder_still_blocks_and_says_what_to_do(backend: LocalFileBackend) -> None:
    backend.lock_path.write_bytes(b"")  # a run died right after creating the lock file

    with pytest.raises(LockedError, match=rf"{backend.lock_path}.*delete that file"):
        backend.lock(new_lock_info("apply"))
    assert backend.lock_path.exists()


def test_locked_releases_the_lock_after_the_block(backend: LocalFileBackend) -> None:
    with locked(backend, "apply") as held:
        assert LockInfo.model_validate_json(backend.lock_path.read_bytes()).id == held.id
        assert held.operation == "apply"
        backend.write(sample_state(), expected_serial=None)

    assert not backend.lock_path.exists()


def test_locked_releases_the_lock_when_the_block_fails(backend: LocalFileBackend) -> None:
    with pytest.raises(RuntimeError, match="vCenter task failed"), locked(backend, "apply"):
        raise RuntimeError("vCenter task failed")

    assert not backend.lock_path.exists()


def test_locked_keeps_the_blocks_error_when_the_release_fails_too(backend: LocalFileBackend) -> None:
    with (
        pytest.raises(RuntimeError, match="vCenter task failed") as failure,
        locked(backend, "apply") as held,
    ):
        backend.force_unlock(held.id)
        raise RuntimeError("vCenter task failed")

    assert any("releasing the state lock" in note for note in failure.value.__notes__)


def test_locked_does_not_run_the_block_when_the_state_is_locked(backend: LocalFileBackend) -> None:
    backend.lock(new_lock_info("apply", who="alice@admin01"))
    ran = False

    with pytest.raises(LockedError, match="alice@admin01"), locked(backend, "apply"):
        ran = True

    assert not ran
    assert backend.lock_path.exists()


# --- where the state lives --------------------------------------------------------------


def test_default_state_file_is_the_clusters_own_in_mscsctl_beside_the_desired_file(tmp_path: Path) -> None:
    desired = tmp_path / "clusters" / "sql-prod-01.yaml"
    assert default_state_path(desired, "sql-prod-01") == tmp_path / "clusters" / ".mscsctl" / "sql-prod-01.state.json"
    # Two clusters' files in one folder: two states, never one.
    other = default_state_path(tmp_path / "clusters" / "cib.yaml", "cib-test-01")
    assert other == tmp_path / "clusters" / ".mscsctl" / "cib-test-01.state.json"


def test_state_location_prefers_explicit_then_environment_then_default(tmp_path: Path) -> None:
    desired = tmp_path / "sql-prod-01.yaml"
    env = {"MSCSCTL_STATE": str(tmp_path / "from-env.json")}
    default = tmp_path / ".mscsctl" / "sql-prod-01.state.json"

    assert resolve_state_path(desired, tmp_path / "explicit.json", env, cluster="sql-prod-01") == (
        tmp_path / "explicit.json"
    )
    assert resolve_state_path(desired, None, env, cluster="sql-prod-01") == tmp_path / "from-env.json"
    assert resolve_state_path(desired, None, {}, cluster="sql-prod-01") == default
    assert resolve_state_path(desired, None, {"MSCSCTL_STATE": ""}, cluster="sql-prod-01") == default


def test_state_location_from_the_environment_is_read_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MSCSCTL_STATE", str(tmp_path / "shared.json"))
    assert resolve_state_path(tmp_path / "sql-prod-01.yaml", None, cluster="x") == tmp_path / "shared.json"


def test_database_url_is_kept_as_given(tmp_path: Path) -> None:
    url = "postgresql://mscsctl@db.lab.local/mscsctl"
    assert resolve_state_path(tmp_path / "x.yaml", None, {"MSCSCTL_STATE": url}, cluster="x") == url


# --- the move of an older version's mscsctl.state.json ----------------------------------


def _old_state(folder: Path, cluster: str = "sql-prod-01", applies: int = 1) -> LocalFileBackend:
    old = LocalFileBackend(folder / "mscsctl.state.json")
    written = old.write(State.new(cluster, DESIRED_HASH, now=WHEN), expected_serial=None)
    for _ in range(applies - 1):
        written = old.write(written.with_resource(RULE, anti_affinity_rule()), expected_serial=written.serial)
    return old


def test_an_old_state_of_the_cluster_moves_once_with_its_backup(tmp_path: Path) -> None:
    _old_state(tmp_path, applies=2)
    new = default_state_path(tmp_path / "sql-prod-01.yaml", "sql-prod-01")

    moved = state.local.move_old_state(tmp_path / "sql-prod-01.yaml", "sql-prod-01", new)

    assert moved == tmp_path / "mscsctl.state.json"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".mscsctl"]
    assert sorted(p.name for p in new.parent.iterdir()) == ["sql-prod-01.state.json", "sql-prod-01.state.json.backup"]
    assert LocalFileBackend(new).read().serial == 2  # type: ignore[union-attr]
    assert mode_of(new.parent) == 0o700 and mode_of(new) == 0o600
    assert state.local.move_old_state(tmp_path / "sql-prod-01.yaml", "sql-prod-01", new) is None  # once


def test_an_old_state_of_another_cluster_stays(tmp_path: Path) -> None:
    _old_state(tmp_path, cluster="cib-test-01")
    new = default_state_path(tmp_path / "sql-prod-01.yaml", "sql-prod-01")

    assert state.local.move_old_state(tmp_path / "sql-prod-01.yaml", "sql-prod-01", new) is None
    assert (tmp_path / "mscsctl.state.json").is_file() and not new.exists()


def test_an_old_state_never_overwrites_a_new_one(tmp_path: Path) -> None:
    _old_state(tmp_path, applies=3)
    new = default_state_path(tmp_path / "sql-prod-01.yaml", "sql-prod-01")
    new.parent.mkdir(mode=0o700)
    LocalFileBackend(new).write(State.new("sql-prod-01", DESIRED_HASH, now=WHEN), expected_serial=None)

    assert state.local.move_old_state(tmp_path / "sql-prod-01.yaml", "sql-prod-01", new) is None
    assert LocalFileBackend(new).read().serial == 1  # type: ignore[union-attr]
    assert LocalFileBackend(tmp_path / "mscsctl.state.json").read().serial == 3  # type: ignore[union-attr]


def test_an_old_state_locked_by_a_run_is_not_moved_and_the_lock_is_named(tmp_path: Path) -> None:
    old = _old_state(tmp_path)
    held = old.lock(new_lock_info("apply", who="alice@admin01"))
    new = default_state_path(tmp_path / "sql-prod-01.yaml", "sql-prod-01")

    with pytest.raises(LockedError, match=f"alice@admin01.*{held.id}"):
        state.local.move_old_state(tmp_path / "sql-prod-01.yaml", "sql-prod-01", new)
    assert (tmp_path / "mscsctl.state.json").is_file() and not new.exists()
    old.unlock(held.id)


def test_open_backend_gives_a_file_backend_for_a_path(tmp_path: Path) -> None:
    opened = open_backend(tmp_path / "mscsctl.state.json")

    assert isinstance(opened, LocalFileBackend)
    assert opened.path == tmp_path / "mscsctl.state.json"


def test_open_backend_refuses_unknown_schemes() -> None:
    with pytest.raises(MscsError, match="unknown state backend s3://"):
        open_backend("s3://bucket/state.json")


@pytest.mark.parametrize(
    "location",
    [
        "host=db port=5432 dbname=mscsctl user=x password=y",
        "dbname=mscsctl",
        "  host = db.lab.local   sslmode=require ",
        "host=/var/run/postgresql password='two words' dbname=mscsctl",
        "postgres://db/mscsctl",
        "host=db and more",  # malformed: refused as a connection string, never taken for a file
    ],
)
def test_libpq_keyword_strings_and_urls_are_database_locations(tmp_path: Path, location: str) -> None:
    assert is_database_location(location)
    assert resolve_state_path(tmp_path / "x.yaml", location, cluster="x") == location  # kept as given, not a Path


@pytest.mark.parametrize(
    "location", ["mscsctl.state.json", "./host=db", "states/dbname=x.json", "colour=blue", "=x", ""]
)
def test_file_names_are_not_database_locations(location: str) -> None:
    assert not is_database_location(location)


def test_passwords_are_masked_in_any_text() -> None:
    text = (
        "postgresql://mscsctl:Winter2024!@db/mscsctl and postgres://u:p@ss@h/d and "
        "host=db password=Winter2024! sslpassword='key pass' user=x"
    )
    assert redact(text) == (
        "postgresql://mscsctl:***@db/mscsctl and postgres://u:***@h/d and host=db password=*** sslpassword=*** user=x"
    )


# --- symlinks and the directory's permissions ---------------------------------------------


def test_a_symlinked_state_is_written_through_to_its_target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shared = (tmp_path / "shared").resolve()
    shared.mkdir(mode=0o700)
    checkout = tmp_path / "checkout"
    checkout.mkdir(mode=0o700)
    link = checkout / "mscsctl.state.json"
    link.symlink_to(shared / "sql-prod-01.json")  # dangling until the first write
    backend = LocalFileBackend(link)
    renames: list[tuple[Path, Path]] = []
    real_replace = os.replace

    def recording_replace(src: str | Path, dst: str | Path) -> None:
        renames.append((Path(src), Path(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(state.local.os, "replace", recording_replace)
    backend.write(sample_state(), expected_serial=None)
    backend.write(backend.read(), expected_serial=1)
    held = backend.lock(new_lock_info("apply"))

    assert link.is_symlink() and Path(os.readlink(link)) == shared / "sql-prod-01.json"
    assert State.from_json((shared / "sql-prod-01.json").read_bytes()).serial == 2
    assert renames and all(src.parent == shared and dst.parent == shared for src, dst in renames)
    assert sorted(p.name for p in shared.iterdir()) == [
        "sql-prod-01.json",
        "sql-prod-01.json.backup",
        "sql-prod-01.json.lock",
    ]
    assert [p.name for p in checkout.iterdir()] == ["mscsctl.state.json"]
    another_link = tmp_path / "another-link.json"
    another_link.symlink_to(link)
    with pytest.raises(LockedError, match=held.id):  # every path to one state shares its lock
        LocalFileBackend(another_link).lock(new_lock_info("apply"))


@pytest.mark.parametrize(
    ("mode", "writers"),
    [(0o770, "group"), (0o703, "others"), (0o777, "group and others"), (0o1777, "group and others")],
)
def test_a_state_directory_others_can_write_is_refused_naming_the_fix(tmp_path: Path, mode: int, writers: str) -> None:
    directory = tmp_path / "states"
    directory.mkdir()
    directory.chmod(mode)
    backend = LocalFileBackend(directory / "sql-prod-01.json")
    expected = (
        f"state {backend.path}: the directory {directory} is writable by {writers} (mode {mode:04o}), "
        f"so another user could replace the state; fix it with: chmod go-w {directory}"
    )

    for use in (
        backend.read,
        lambda: backend.write(sample_state(), expected_serial=None),
        lambda: backend.lock(new_lock_info("apply")),
        lambda: backend.force_unlock("00000000-0000-4000-8000-000000000000"),
    ):
        with pytest.raises(MscsError) as refused:
            use()
        assert str(refused.value) == expected
    assert list(directory.iterdir()) == []

    directory.chmod(0o755)  # the fix the message gives
    assert backend.write(sample_state(), expected_serial=None).serial == 1


def test_a_symlink_into_a_directory_others_can_write_is_refused(tmp_path: Path) -> None:
    open_dir = tmp_path / "open"
    open_dir.mkdir()
    open_dir.chmod(0o777)
    link = tmp_path / "mscsctl.state.json"
    link.symlink_to(open_dir / "state.json")

    with pytest.raises(MscsError, match=rf"directory {open_dir.resolve()} is writable by group and others"):
        LocalFileBackend(link).read()


def test_a_state_dir_others_can_write_is_refused_before_vcenter_is_read(tmp_path: Path) -> None:
    from tests.unit.test_bounded_input import mscsctl

    shutil.copytree(REPO_ROOT / "examples" / "fleet", tmp_path / "fleet")
    (tmp_path / "states").mkdir()
    (tmp_path / "states").chmod(0o775)

    code, out, err = mscsctl("plan", "fleet", "--state-dir", "states", cwd=tmp_path)

    assert code == 1, (out, err)
    assert err == (
        "Error: state states/fleet-01.state.json: the directory states is writable by group (mode 0775), "
        "so another user could replace the state; fix it with: chmod go-w states\n"
    )
