"""State locks as a blocked user meets them: an ID that names its state, advice that works as
printed, a dead holder called dead, and a bounded wait for a live one."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from reconciler.errors import LockedError, MscsError
from reconciler.workspace import StateLocation, load_targets, locked_state
from state import (
    HeldLockError,
    LocalFileBackend,
    LockInfo,
    format_lock_id,
    holder_is_gone,
    locked,
    new_lock_info,
    parse_duration,
    parse_lock_id,
)
from tests.unit.test_bounded_input import CAPTURED, MSCSCTL, mscsctl

REPO_ROOT = Path(__file__).resolve().parents[2]
FLEET = REPO_ROOT / "examples" / "fleet"
ELSEWHERE = "00000000-0000-4000-8000-000000000000"


def printed_command(message: str) -> str:
    """The `mscsctl force-unlock …` command a message ends with, as the user would copy it."""
    return message[message.index("mscsctl force-unlock ") :].rstrip("`")


def run_as_printed(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the command text through a shell, exactly as printed, with `mscsctl` this checkout's."""
    runner = shlex.join(MSCSCTL)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MSCSCTL_", "PG"))}
    script = f'mscsctl() {{ {runner} "$@"; }}\n{command}'
    env = {**env, "PYTHONPATH": str(REPO_ROOT), "NO_COLOR": "1"}
    return subprocess.run(["bash", "-c", script], cwd=cwd, env=env, timeout=60, **CAPTURED)


def refusal(backend: LocalFileBackend) -> LockedError:
    with pytest.raises(LockedError) as refused:
        backend.lock(new_lock_info("apply", who="bob@admin02"))
    return refused.value


def lock_in_a_process_that_then_dies(path: Path) -> LockInfo:
    """A run that took the lock on this host and was killed before releasing it."""
    died = subprocess.run(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import os
                from state import LocalFileBackend, new_lock_info
                held = LocalFileBackend({str(path.absolute())!r}).lock(new_lock_info("apply"))
                print(held.model_dump_json(), flush=True)
                os._exit(9)
                """
            ),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert died.returncode == 9, died.stderr
    return LockInfo.model_validate_json(died.stdout)


@pytest.fixture
def fleet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of examples/fleet, and the working directory where the user types commands."""
    shutil.copytree(FLEET, tmp_path / "fleet")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MSCSCTL_STATE", raising=False)
    return tmp_path


# --- the lock ID -------------------------------------------------------------------------


def test_a_lock_id_is_the_locks_uuid_and_the_state_it_locks() -> None:
    assert format_lock_id(ELSEWHERE, ".mscsctl/sql-prod-01.state.json") == (
        f"{ELSEWHERE}@.mscsctl/sql-prod-01.state.json"
    )
    assert parse_lock_id(f"{ELSEWHERE}@.mscsctl/sql-prod-01.state.json") == (
        ELSEWHERE,
        ".mscsctl/sql-prod-01.state.json",
    )
    assert parse_lock_id(f"{ELSEWHERE}@postgresql://mscsctl@db/mscsctl#sql-prod-01") == (
        ELSEWHERE,
        "postgresql://mscsctl@db/mscsctl#sql-prod-01",
    )
    assert parse_lock_id(ELSEWHERE.upper()) == (ELSEWHERE, None)  # as earlier versions printed it


@pytest.mark.parametrize("text", ["not-a-uuid@state.json", "", f"{ELSEWHERE}@"])
def test_text_that_is_no_lock_id_is_refused_in_one_line(text: str) -> None:
    with pytest.raises(MscsError) as refused:
        parse_lock_id(text)
    assert len(str(refused.value).splitlines()) == 1


def test_in_a_fleet_the_advice_names_the_clusters_own_state_and_works_as_printed(fleet: Path) -> None:
    targets = load_targets("fleet")
    states = StateLocation.for_targets(targets)
    first, second = (states.backend(d) for d in targets.desired[:2])
    first_lock = first.lock(new_lock_info("apply", who="alice@admin01"))
    second_lock = second.lock(new_lock_info("apply", who="alice@admin01"))

    message = str(refusal(second))
    command = printed_command(message)

    assert command == f"mscsctl force-unlock {second_lock.id}@fleet/.mscsctl/fleet-02.state.json"
    done = run_as_printed(command, fleet)
    assert done.returncode == 0, done.stderr
    assert f"lock {second_lock.id} removed" in done.stderr
    assert not second.lock_path.exists()
    assert LockInfo.model_validate_json(first.lock_path.read_bytes()) == first_lock  # the other cluster's stays


def test_with_a_state_dir_the_advice_points_there(fleet: Path) -> None:
    targets = load_targets("fleet")
    backend = StateLocation.for_targets(targets, state_dir="states").backend(targets.desired[2])
    held = backend.lock(new_lock_info("apply"))

    command = printed_command(str(refusal(backend)))

    assert command == f"mscsctl force-unlock {held.id}@states/fleet-03.state.json"
    assert run_as_printed(command, fleet).returncode == 0
    assert not backend.lock_path.exists()


def test_a_state_path_with_spaces_and_quotes_is_quoted_for_the_shell(fleet: Path) -> None:
    odd = fleet / "team's states"
    odd.mkdir(mode=0o700)
    backend = LocalFileBackend(Path("team's states") / "sql prod.json")
    held = backend.lock(new_lock_info("apply"))

    command = printed_command(str(refusal(backend)))

    assert shlex.split(command) == ["mscsctl", "force-unlock", f"{held.id}@team's states/sql prod.json"]
    done = run_as_printed(command, fleet)
    assert done.returncode == 0, done.stderr
    assert not backend.lock_path.exists()


def test_force_unlock_with_the_right_state_but_another_uuid_leaves_the_lock(fleet: Path) -> None:
    backend = LocalFileBackend(Path("mscsctl.state.json"))
    held = backend.lock(new_lock_info("apply", who="alice@admin01"))

    code, _, err = mscsctl("force-unlock", f"{ELSEWHERE}@mscsctl.state.json", cwd=fleet)

    assert code == 1
    assert f"the lock's ID is {held.id}@mscsctl.state.json, not {ELSEWHERE}" in err
    assert backend.lock_path.exists()


def test_a_lock_id_and_options_that_name_another_state_are_refused(fleet: Path) -> None:
    backend = LocalFileBackend(Path("fleet/.mscsctl/fleet-01.state.json"))
    backend.path.parent.mkdir(mode=0o700)
    held = backend.lock(new_lock_info("apply"))

    lock_id = format_lock_id(held.id, str(backend.path))
    with pytest.raises(MscsError, match="give the lock ID alone"):
        locked_state(lock_id, Path("fleet/fleet-02.yaml"), state_dir="fleet/.mscsctl")
    same, lock_uuid = locked_state(lock_id, Path("fleet/fleet-01.yaml"), state_dir="fleet/.mscsctl")
    assert (same.describe(), lock_uuid) == (str(backend.path), held.id)


def test_a_bare_uuid_still_needs_the_file_or_the_state(fleet: Path) -> None:
    backend = LocalFileBackend(Path("mscsctl.state.json"))
    held = backend.lock(new_lock_info("apply"))

    assert mscsctl("force-unlock", held.id, cwd=fleet)[0] == 1
    code, _, err = mscsctl("force-unlock", held.id, "--state", "mscsctl.state.json", cwd=fleet)
    assert code == 0, err
    assert not backend.lock_path.exists()


# --- a holder that is gone -----------------------------------------------------------------


def test_a_lock_left_by_a_dead_process_on_this_host_is_called_stale_and_kept(fleet: Path) -> None:
    backend = LocalFileBackend(Path("mscsctl.state.json"))
    dead = lock_in_a_process_that_then_dies(backend.path)

    refused = refusal(backend)

    lock_id = f"{dead.id}@mscsctl.state.json"
    assert isinstance(refused, HeldLockError) and refused.stale
    assert str(refused).endswith(
        f"lock {lock_id} held by pid {dead.pid} on this host, which is no longer running: "
        f"clear it with `mscsctl force-unlock {lock_id}`"
    )
    assert backend.lock_path.exists()  # reported, never removed without a person
    done = run_as_printed(printed_command(str(refused)), fleet)
    assert done.returncode == 0, done.stderr
    assert backend.lock(new_lock_info("apply")).who


def test_a_holder_on_another_host_or_alive_here_is_not_called_stale(fleet: Path) -> None:
    backend = LocalFileBackend(Path("mscsctl.state.json"))
    dead = lock_in_a_process_that_then_dies(backend.path)
    elsewhere = dead.model_copy(update={"who": "alice@another-host"})

    assert holder_is_gone(dead)
    assert not holder_is_gone(elsewhere)
    assert not holder_is_gone(dead.model_copy(update={"pid": os.getpid()}))
    assert not holder_is_gone(dead.model_copy(update={"pid": 1}))  # running (or not ours to signal)
    assert not holder_is_gone(dead.model_copy(update={"pid": 0}))  # never signal a process group
    backend.lock_path.write_text(elsewhere.model_dump_json())
    refused = refusal(backend)
    assert not refused.stale
    assert "Wait for that run to finish" in str(refused)


# --- waiting -------------------------------------------------------------------------------


def test_without_a_timeout_a_held_lock_is_refused_at_once(tmp_path: Path) -> None:
    backend = LocalFileBackend(tmp_path / "mscsctl.state.json")
    backend.lock(new_lock_info("apply", who="alice@admin01"))

    started = time.monotonic()
    with pytest.raises(LockedError, match="alice@admin01"), locked(backend, "apply"):
        pass
    assert time.monotonic() - started < 1.0


def test_with_a_timeout_the_lock_is_taken_once_its_holder_releases_it(tmp_path: Path) -> None:
    backend = LocalFileBackend(tmp_path / "mscsctl.state.json")
    held = backend.lock(new_lock_info("apply", who="alice@admin01"))
    told: list[str] = []
    threading.Timer(0.5, backend.unlock, args=(held.id,)).start()

    started = time.monotonic()
    with locked(backend, "apply", timeout_s=10, poll_s=0.05, on_wait=lambda refused: told.append(str(refused))) as ours:
        waited = time.monotonic() - started
        assert LockInfo.model_validate_json(backend.lock_path.read_bytes()).id == ours.id

    assert 0.4 < waited < 5
    assert len(told) == 1 and "alice@admin01" in told[0]
    assert not backend.lock_path.exists()


def test_with_a_timeout_a_lock_still_held_is_refused_after_the_wait(tmp_path: Path) -> None:
    backend = LocalFileBackend(tmp_path / "mscsctl.state.json")
    held = backend.lock(new_lock_info("apply", who="alice@admin01"))

    started = time.monotonic()
    with pytest.raises(LockedError) as refused, locked(backend, "apply", timeout_s=0.3, poll_s=0.05):
        pass

    assert 0.3 <= time.monotonic() - started < 3
    assert str(refused.value).startswith("gave up after waiting 0.3s for the lock: state ")
    assert printed_command(str(refused.value)) == f"mscsctl force-unlock {held.id}@{backend.path}"
    assert LockInfo.model_validate_json(backend.lock_path.read_bytes()) == held


def test_a_stale_lock_is_not_waited_for(tmp_path: Path) -> None:
    backend = LocalFileBackend(tmp_path / "mscsctl.state.json")
    lock_in_a_process_that_then_dies(backend.path)

    started = time.monotonic()
    with pytest.raises(HeldLockError, match="no longer running"), locked(backend, "apply", timeout_s=30):
        pass
    assert time.monotonic() - started < 5


def test_a_lock_is_released_when_the_run_ends_normally(tmp_path: Path) -> None:
    path = tmp_path / "mscsctl.state.json"
    ran = subprocess.run(
        [
            sys.executable,
            "-c",
            f"from state import LocalFileBackend, locked\nwith locked(LocalFileBackend({str(path)!r}), 'apply'): pass",
        ],
        cwd=REPO_ROOT,
        timeout=60,
        check=False,
    )
    assert ran.returncode == 0
    assert not LocalFileBackend(path).lock_path.exists()


# --- durations -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30.0), ("5m", 300.0), ("1h", 3600.0), ("0", 0.0), ("0s", 0.0), ("1.5m", 90.0), ("250ms", 0.25)],
)
def test_durations_are_read_with_their_unit(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["30", "", "5 minutes", "-1s", "1d", "m", "1h30m", "25h"])
def test_bad_durations_are_refused_in_one_line_naming_the_option(text: str) -> None:
    with pytest.raises(MscsError) as refused:
        parse_duration(text, option="--lock-timeout")
    message = str(refused.value)
    assert message.startswith(f"--lock-timeout: {text!r} ")
    assert len(message.splitlines()) == 1
