"""The state lock around a whole apply, and stopping an apply: SIGTERM and SIGINT let the
vCenter call in flight end, record the state, release the lock and exit 1; a second signal
exits at once and still releases the lock; a lock another run holds is waited for only
with --lock-timeout, and a lock left by a dead run is reported even by an apply with
nothing to do."""

from __future__ import annotations

import json
import os
import pty
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from pyVmomi import vim

from labctl import find, prop
from state import LocalFileBackend, new_lock_info
from state.backend import current_user
from tests.integration.cli import MSCSCTL, REPO, example, run

pytestmark = pytest.mark.slow

DISKS_STEP = "SQLNODE1: add-controller, create-disk"


class Apply:
    """`mscsctl apply` running in the background, its stderr read line by line as it comes."""

    def __init__(self, lab, *args: str, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE) -> None:
        env = {**os.environ, **lab.env()}
        env.pop("MSCSCTL_STATE", None)
        env.pop("MSCSCTL_DEBUG", None)
        self.proc = subprocess.Popen(
            [*MSCSCTL, "apply", *args],
            env=env,
            cwd=REPO,
            stdin=stdin,
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)

    @property
    def err(self) -> str:
        return "".join(self.lines)

    def wait_for_line(self, text: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.lines):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"no line with {text!r}; stderr so far:\n{self.err}")
            time.sleep(0.05)

    def finish(self, timeout: float = 120) -> int:
        code = self.proc.wait(timeout)
        self._reader.join(10)
        return code


def state_of(desired: Path) -> dict:
    return json.loads((desired.parent / ".mscsctl" / "sql-prod-01.state.json").read_text())


def lock_file(desired: Path) -> Path:
    return desired.parent / ".mscsctl" / "sql-prod-01.state.json.lock"


def test_sigterm_lets_the_call_in_flight_end_records_it_and_releases_the_lock(lab, tmp_path):
    desired = example("cluster-across-boxes", tmp_path)
    lab.inject_fault(method="ReconfigVM_Task", object="SQLNODE1", action="delay", delay_ms=3000)
    apply = Apply(lab, str(desired), "--auto-approve", "--skip-guest")
    apply.wait_for_line(DISKS_STEP)
    assert lock_file(desired).exists()
    time.sleep(0.5)  # the reconfigure is in flight, held by the lab
    apply.proc.send_signal(signal.SIGTERM)
    code = apply.finish()
    assert code == 1, apply.err
    assert "SIGTERM: stopping once the vCenter call in flight has ended" in apply.err
    assert "Error: interrupted: 21 done, 7 left" in apply.err, apply.err  # node 1's power-on among the done
    assert "SQLNODE1 powered on again after the interruption" in apply.err
    assert "Traceback" not in apply.err
    assert not lock_file(desired).exists()
    # The reconfigure that was in flight ended and is recorded; nothing after it was started.
    resources = state_of(desired)["resources"]
    assert "sql-prod-01/node/SQLNODE1/disk/quorum" in resources
    assert "sql-prod-01/node/SQLNODE1/nic/heartbeat" not in resources
    si = lab.connect()
    # The node apply powered off for the change runs again: a cancelled run leaves no node down.
    assert prop(si, find(si, vim.VirtualMachine, "SQLNODE1"), "runtime.powerState") == "poweredOn"
    again = run(lab, "apply", str(desired), "--auto-approve", "--skip-guest")
    assert again.code == 0, again
    assert run(lab, "plan", str(desired), "--detailed-exitcode", "--skip-guest").code == 0


def test_a_second_sigint_exits_at_once_and_still_releases_the_lock(lab, tmp_path):
    desired = example("cluster-across-boxes", tmp_path)
    lab.inject_fault(method="ReconfigVM_Task", object="SQLNODE1", action="delay", delay_ms=8000)
    apply = Apply(lab, str(desired), "--auto-approve", "--skip-guest")
    apply.wait_for_line(DISKS_STEP)
    time.sleep(0.3)
    started = time.monotonic()
    apply.proc.send_signal(signal.SIGINT)
    apply.wait_for_line("SIGINT: stopping once")
    apply.proc.send_signal(signal.SIGINT)
    code = apply.finish()
    assert time.monotonic() - started < 5, "did not exit at once"
    assert code == 1, apply.err
    assert "interrupted again: stopped at once" in apply.err, apply.err
    assert "Traceback" not in apply.err
    assert not lock_file(desired).exists()
    assert "sql-prod-01/node/SQLNODE1/drs" in state_of(desired)["resources"]  # a step before the one in flight


def test_a_signal_before_anything_is_applied_stops_at_once(lab, tmp_path):
    desired = example("cluster-across-boxes", tmp_path)
    # A slow first read: the apply is still planning when the signal comes.
    lab.inject_fault(method="RetrievePropertiesEx", action="delay", delay_ms=3000)
    apply = Apply(lab, str(desired), "--auto-approve", "--skip-guest")
    deadline = time.monotonic() + 30
    while not lock_file(desired).exists():
        assert time.monotonic() < deadline and apply.proc.poll() is None, apply.err
        time.sleep(0.05)
    apply.proc.send_signal(signal.SIGTERM)
    assert apply.finish() == 1
    assert "interrupted" in apply.err and "Traceback" not in apply.err
    assert not lock_file(desired).exists() and not (tmp_path / ".mscsctl" / "sql-prod-01.state.json").exists()


def test_the_lock_is_held_while_apply_asks_for_approval(lab, tmp_path):
    desired = example("cluster-across-boxes", tmp_path)
    controller, terminal = pty.openpty()
    try:
        apply = Apply(lab, str(desired), "--skip-guest", stdin=terminal, stdout=terminal)
        seen = b""
        deadline = time.monotonic() + 60
        while b"Only 'yes' is accepted" not in seen:
            assert time.monotonic() < deadline and apply.proc.poll() is None, (seen, apply.err)
            seen += os.read(controller, 65536)
        assert lock_file(desired).exists()
        held = json.loads(lock_file(desired).read_text())
        assert held["operation"] == "apply" and held["pid"] == apply.proc.pid
        os.write(controller, b"no\n")
        assert apply.finish() == 1
    finally:
        os.close(controller)
        os.close(terminal)
    assert "apply cancelled" in apply.err
    assert not lock_file(desired).exists()


def test_a_lock_left_by_a_dead_run_is_reported_even_with_nothing_to_do(lab, tmp_path):
    desired = example("cluster-across-boxes", tmp_path)
    assert run(lab, "apply", str(desired), "--auto-approve", "--skip-guest").code == 0
    gone = subprocess.Popen(["true"])
    gone.wait()
    backend = LocalFileBackend(tmp_path / ".mscsctl" / "sql-prod-01.state.json", make_directory=True)
    held = backend.lock(new_lock_info("apply").model_copy(update={"pid": gone.pid, "who": current_user()}))
    for command in ("apply", "plan"):
        extra = ("--auto-approve",) if command == "apply" else ()
        result = run(lab, command, str(desired), "--skip-guest", *extra)
        assert result.code == 1, result
        assert "is locked by" in result.err and held.id in result.err and "force-unlock" in result.err, result
        assert "Traceback" not in result.err
    assert lock_file(desired).exists()  # reported, never removed without force-unlock


def test_lock_timeout_waits_for_a_lock_another_run_holds(lab, tmp_path):
    desired = example("cluster-across-boxes", tmp_path)
    backend = LocalFileBackend(tmp_path / ".mscsctl" / "sql-prod-01.state.json", make_directory=True)
    held = backend.lock(new_lock_info("apply"))  # this test process: a run that is alive
    refused = run(lab, "plan", str(desired), "--skip-guest")
    assert refused.code == 1 and "is locked by" in refused.err, refused
    assert run(lab, "plan", str(desired), "--skip-guest", "--lock-timeout", "1s").code == 1

    release = threading.Timer(2.0, backend.unlock, args=(held.id,))
    release.start()
    try:
        waited = run(lab, "plan", str(desired), "--skip-guest", "--lock-timeout", "30s", "--detailed-exitcode")
    finally:
        release.join()
    assert waited.code == 2, waited
    assert "waiting up to 30s for the state lock" in waited.err
    assert not lock_file(desired).exists()
    bad = run(lab, "apply", str(desired), "--lock-timeout", "soon")
    assert bad.code == 1 and "--lock-timeout" in bad.err, bad
