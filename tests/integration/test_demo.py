"""`make demo` keeps working: tests/demo.py runs validate -> plan -> apply -> plan -> drift on
the cross-box example against its own lab, and says so."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.integration.cli import REPO

pytestmark = pytest.mark.slow


def test_demo_runs_every_step_with_the_expected_exit_codes(lab_binary, lab_wine):
    done = subprocess.run(
        [sys.executable, str(REPO / "tests" / "demo.py"), "examples/cluster-across-boxes.yaml"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    steps = [line.split()[2] for line in done.stdout.splitlines() if line.startswith("$ mscsctl ")]
    assert steps == ["validate", "plan", "apply", "plan", "drift"]
    assert [line for line in done.stdout.splitlines() if line.startswith("(exit ")] == [
        "(exit 0)",
        "(exit 2)",
        "(exit 0)",
        "(exit 0)",
        "(exit 0)",
    ]
    assert "the second plan found nothing to change" in done.stdout
    # the guests too: each node's disk timeout set through the lab's guest operations (progress is on stderr)
    assert "SQLNODE1: set-guest-setting" in done.stderr and "SQLNODE2: set-guest-setting" in done.stderr
