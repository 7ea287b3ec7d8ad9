"""Inputs that are not files, or are too large: refused at once, in one line, never read.

Each command runs as a user runs it, in a subprocess with a timeout: a FIFO that was read
would hang the command, `/dev/zero` would fill its memory.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from reconciler.bounded import MAX_INPUT_BYTES, MIB, InputRefused, read_bounded
from reconciler.loader import MAX_FILE_BYTES
from reconciler.plan_file import PlanFileError, parse_plans, plan_document
from tests.unit.test_plan_file import first_plan

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = REPO_ROOT / "examples" / "cluster-across-boxes.yaml"
MSCSCTL = [sys.executable, "-c", "import sys; from reconciler.cli import main; sys.exit(main())"]
CAPTURED: dict[str, Any] = {"capture_output": True, "text": True, "stdin": subprocess.DEVNULL, "check": False}


def mscsctl(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 30) -> tuple[int, str, str]:
    """The command line as a user runs it; nothing reaches a vCenter (port 9 refuses)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MSCSCTL_", "VSPHERE_", "PG"))}
    full_env = {
        **clean,
        "PYTHONPATH": str(REPO_ROOT),
        "NO_COLOR": "1",
        "VSPHERE_SERVER": "127.0.0.1:9",
        **(env or {}),
    }
    done = subprocess.run([*MSCSCTL, *args], cwd=cwd, env=full_env, timeout=timeout, **CAPTURED)
    return done.returncode, done.stdout, done.stderr


def refused_in_one_line(code: int, out: str, err: str) -> str:
    """The one error line of a refused command (exit 1, no traceback)."""
    assert code == 1, (out, err)
    assert "Traceback" not in out + err
    assert "MemoryError" not in out + err
    lines = err.splitlines()
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs on this platform")
    path = tmp_path / "cluster.yaml"
    os.mkfifo(path)
    return path


# --- read_bounded ------------------------------------------------------------------------


def test_a_regular_file_up_to_the_limit_is_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    path.write_bytes(b"x" * 1000)
    assert read_bounded(path, "saved plan", limit=1000) == b"x" * 1000


def test_one_byte_over_the_limit_is_refused_with_the_exact_size(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    path.write_bytes(b"x" * (MIB + 1))
    with pytest.raises(InputRefused) as refused:
        read_bounded(path, "saved plan", limit=MIB)
    assert str(refused.value) == f"{path}: {MIB + 1} bytes is over the 1 MiB limit for a saved plan"


def test_a_large_file_is_refused_by_its_size_without_being_read(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    with path.open("wb") as sparse:
        sparse.truncate(int(9.1 * MIB))  # holes: the size is known, nothing would have to be read
    with pytest.raises(InputRefused) as refused:
        read_bounded(path, "state file")
    assert str(refused.value) == f"{path}: 9.1 MiB is over the 8 MiB limit for a state file"
    assert MAX_INPUT_BYTES == 8 * MIB


def test_a_fifo_is_refused_before_it_is_opened(fifo: Path) -> None:
    # Opened for reading without O_NONBLOCK, a FIFO with no writer would block this test forever.
    with pytest.raises(InputRefused) as refused:
        read_bounded(fifo, "desired file")
    assert str(refused.value) == (
        f"{fifo}: not a regular file (a FIFO): mscsctl reads a desired file only from a regular file"
    )


def test_a_socket_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s"
    with socket.socket(socket.AF_UNIX) as listening:
        listening.bind(str(path))
        with pytest.raises(InputRefused, match=r"not a regular file \(a socket\)"):
            read_bounded(path, "state file")


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero")
def test_a_character_device_is_refused() -> None:
    with pytest.raises(InputRefused, match=r"^/dev/zero: not a regular file \(a character device\)"):
        read_bounded("/dev/zero", "saved plan")


def test_missing_files_and_directories_keep_their_os_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_bounded(tmp_path / "missing.json", "state file")
    with pytest.raises(IsADirectoryError):
        read_bounded(tmp_path, "state file")


def test_a_file_replaced_between_the_check_and_the_open_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked, opened = tmp_path / "checked.json", tmp_path / "opened.json"
    checked.write_text("{}")
    opened.write_text("{}")
    real_stat = os.stat
    monkeypatch.setattr("reconciler.bounded.os.stat", lambda name: real_stat(checked))
    with pytest.raises(InputRefused, match="replaced while it was being read"):
        read_bounded(opened, "saved plan")


# --- the commands ------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["validate", "plan", "apply"])
def test_a_fifo_as_the_desired_file_is_refused_at_once(command: str, fifo: Path, tmp_path: Path) -> None:
    code, out, err = mscsctl(command, fifo.name, cwd=tmp_path, timeout=20)

    assert code == 1, (out, err)
    located = f"{fifo.name}:1:1: not a regular file (a FIFO): mscsctl reads a desired file only from a regular file"
    assert f"{located} [SPEC-FILE]" in (out if command == "validate" else err)
    if command != "validate":
        assert refused_in_one_line(code, out, err) == f"Error: {located} [SPEC-FILE]"


@pytest.mark.parametrize("command", ["apply", "graph"])
def test_a_fifo_named_like_a_saved_plan_is_refused_at_once(command: str, tmp_path: Path) -> None:
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs on this platform")
    os.mkfifo(tmp_path / "plan.json")

    line = refused_in_one_line(*mscsctl(command, "plan.json", cwd=tmp_path, timeout=20))

    assert line == "Error: plan.json: not a regular file (a FIFO): mscsctl reads a saved plan only from a regular file"


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero")
@pytest.mark.parametrize("command", ["apply", "graph"])
def test_dev_zero_as_the_target_is_refused(command: str, tmp_path: Path) -> None:
    line = refused_in_one_line(*mscsctl(command, "/dev/zero", cwd=tmp_path))

    assert line.startswith("Error: /dev/zero:1:1: not a regular file (a character device)")


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero")
def test_dev_zero_as_the_state_is_refused(tmp_path: Path) -> None:
    line = refused_in_one_line(*mscsctl("show", "--state", "/dev/zero", cwd=tmp_path))

    assert line == (
        "Error: /dev/zero: not a regular file (a character device): mscsctl reads a state file only from a regular file"
    )


@pytest.mark.parametrize("command", ["apply", "graph"])
def test_a_saved_plan_over_the_limit_is_refused_unread(command: str, tmp_path: Path) -> None:
    with (tmp_path / "plan.json").open("wb") as big:
        big.truncate(int(9.1 * MIB))

    line = refused_in_one_line(*mscsctl(command, "plan.json", cwd=tmp_path))

    assert line == "Error: plan.json: 9.1 MiB is over the 8 MiB limit for a saved plan"


def test_a_state_file_over_the_limit_is_refused_unread(tmp_path: Path) -> None:
    with (tmp_path / "state.json").open("wb") as big:
        big.truncate(int(9.1 * MIB))

    line = refused_in_one_line(*mscsctl("show", "--state", "state.json", cwd=tmp_path))

    assert line == "Error: state.json: 9.1 MiB is over the 8 MiB limit for a state file"


def test_a_desired_file_over_its_own_limit_is_a_located_finding(tmp_path: Path) -> None:
    with (tmp_path / "big.yaml").open("wb") as big:
        big.truncate(2 * MIB)

    code, out, err = mscsctl("plan", "big.yaml", cwd=tmp_path)

    assert refused_in_one_line(code, out, err) == (
        "Error: big.yaml:1:1: 2 MiB is over the 1 MiB limit for a desired file [SPEC-FILE]"
    )
    assert MAX_FILE_BYTES == MIB


def test_a_truncated_plan_says_it_is_no_plan_and_where_its_json_breaks(tmp_path: Path) -> None:
    text = json.dumps(plan_document([first_plan()], fleet=False), indent=2)
    (tmp_path / "plan.json").write_text(text[:300])
    line_number = text[:300].count("\n") + 1

    line = refused_in_one_line(*mscsctl("apply", "plan.json", cwd=tmp_path))

    assert line.startswith(f"Error: plan.json:{line_number}:")
    assert "not a plan written by mscsctl (invalid JSON: " in line


def test_an_unknown_action_kind_is_one_located_line() -> None:
    document = plan_document([first_plan()], fleet=False)
    document["actions"][3]["kind"] = "frobnicate-disk"

    with pytest.raises(PlanFileError) as refused:
        parse_plans(json.dumps(document), "plan.json")

    assert str(refused.value) == (
        "plan.json: actions[3].kind: unknown action kind 'frobnicate-disk' (docs/plan-format.md lists the "
        "kinds; a plan made by a newer mscsctl needs that mscsctl)"
    )


def test_an_action_kind_that_is_no_string_is_one_located_line(tmp_path: Path) -> None:
    document = plan_document([first_plan("fleet-01"), first_plan("fleet-02")], fleet=True)
    document["plans"][1]["actions"][0]["kind"] = 7
    (tmp_path / "plan.json").write_text(json.dumps(document))

    line = refused_in_one_line(*mscsctl("graph", "plan.json", cwd=tmp_path))

    assert line.startswith("Error: plan.json: plans[1].actions[0].kind: unknown action kind 7 ")
