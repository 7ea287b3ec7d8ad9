"""Ownership survives crashes: `mscsctl apply` killed (SIGKILL) right after node 1's disks are
attached in vCenter and before the state records them. Applying again converges, and a disk
removed from the file later is detached from both nodes: vCenter itself (the cluster's own
mapping file on the shared bus) says which disks are the cluster's, not the state.

The kill point is made with the lab's fault rules: node 1's reconfigure is held for a moment,
long enough to install a long delay on the property read that follows the task, and the run
is killed while it waits there.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time

import pytest

from tests.integration.cli import MSCSCTL, REPO, example, run
from tests.integration.test_scope_of_change import disks_by_bus, first_disk_only, planned_detaches

pytestmark = pytest.mark.slow

DATA = "[SAN-VMFS-01] sql-prod-01/data-physical.vmdk"


def until(check, timeout: float = 60.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def apply_killed_after_node_one_disks(lab, desired) -> None:
    lab.inject_fault(method="ReconfigVM_Task", object="SQLNODE1", action="delay", delay_ms=3000)
    env = {**os.environ, **lab.env()}
    env.pop("MSCSCTL_STATE", None)
    proc = subprocess.Popen(
        [*MSCSCTL, "apply", str(desired), "--auto-approve", "--skip-guest"],
        env=env,
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        until(lambda: lab.calls().get("ReconfigVM_Task", 0) >= 1, what="node 1's reconfigure")
        # The reconfigure is held 3 s; every property read from now on waits 30 s: the first
        # is the one that follows the task, before the outcome is recorded.
        read = lab.inject_fault(method="RetrievePropertiesEx", times=0, action="delay", delay_ms=30000)
        until(lambda: next(f for f in lab.faults() if f["id"] == read)["hits"] >= 1, what="the read after the task")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        lab.clear_faults()


def test_a_killed_apply_converges_and_a_removed_disk_leaves_both_nodes(lab, tmp_path):
    desired = example("cluster-across-boxes", tmp_path)
    apply_killed_after_node_one_disks(lab, desired)
    si = lab.connect()
    assert sorted(k for k in disks_by_bus(si, "SQLNODE1") if k[0] == 1) == [(1, 0), (1, 1)]  # the task ran
    state = json.loads((tmp_path / ".mscsctl" / "sql-prod-01.state.json").read_text())
    assert "sql-prod-01/node/SQLNODE1/disk/data" not in state["resources"]  # ... and was never recorded

    again = run(lab, "apply", str(desired), "--auto-approve", "--skip-guest")
    if again.code == 1 and "force-unlock" in again.err:  # the killed run's lock: what a user does
        lock = re.search(r"mscsctl force-unlock (\S+)", again.err)
        assert lock is not None, again
        assert run(lab, "force-unlock", lock.group(1).strip("`'\"")).code == 0
        again = run(lab, "apply", str(desired), "--auto-approve", "--skip-guest")
    assert again.code == 0, again
    assert run(lab, "plan", str(desired), "--skip-guest", "--detailed-exitcode").code == 0
    for name in ("SQLNODE1", "SQLNODE2"):
        assert disks_by_bus(si, name)[(1, 1)].backing.fileName == DATA
        assert len([k for k in disks_by_bus(si, name) if k[0] == 1]) == 2  # no duplicate

    quorum_only = first_disk_only("cluster-across-boxes", tmp_path)
    assert [(a["target"], a["address"]) for a in planned_detaches(lab, quorum_only)] == [
        ("SQLNODE1", "sql-prod-01/node/SQLNODE1/disk/data"),
        ("SQLNODE2", "sql-prod-01/node/SQLNODE2/disk/data"),
    ]
    assert run(lab, "apply", str(quorum_only), "--auto-approve", "--skip-guest").code == 0
    for name in ("SQLNODE1", "SQLNODE2"):
        assert sorted(k for k in disks_by_bus(si, name) if k[0] == 1) == [(1, 0)]
