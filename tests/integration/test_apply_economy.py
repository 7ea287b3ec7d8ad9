"""Apply pays for the work, not for the way it waits: what the first apply of one cross-box
cluster asks of vCenter, counted by the lab method by method, and what vCenter shows after it.

Session setup once a session (one RetrieveServiceContent, one Login); one read of every host
concerned, one UpdateOptions and one MarkPerenniallyReservedEx_Task a host, every host's
reservation task waited for at once; a task's end read in the same request as what the step
reads after it; two ReconfigVM_Task a node (disks, then NICs), none when nothing changes.
"""

from __future__ import annotations

import json

import pytest
from pyVmomi import vim

from labctl import find, prop
from tests.integration.cli import example, run

pytestmark = pytest.mark.slow

LUNS = ("naa.6006016012345678000000000000a001", "naa.6006016012345678000000000000a002")
HOSTS = ("esx-a1.lab.local", "esx-a2.lab.local", "esx-a3.lab.local")  # Cluster-A: all see the LUNs
NODE_HOSTS = ("esx-a1.lab.local", "esx-a2.lab.local")  # SQLNODE1, SQLNODE2: they get the options
CHANGES = (
    "ReconfigVM_Task",
    "PowerOffVM_Task",
    "PowerOnVM_Task",
    "ShutdownGuest",
    "UpdateOptions",
    "MarkPerenniallyReserved",
    "MarkPerenniallyReservedEx_Task",
    "ReconfigureComputeResource_Task",
)


def assert_reserved_everywhere(si):
    for name in HOSTS:
        luns = prop(si, find(si, vim.HostSystem, name), "config.storageDevice.scsiLun")
        reserved = {lun.canonicalName: lun.perenniallyReserved for lun in luns}
        assert all(reserved[lun] is True for lun in LUNS), (name, reserved)


def apply(lab, desired):
    lab.reset_calls()
    result = run(lab, "apply", str(desired), "--auto-approve", "--skip-guest", "--json")
    assert result.code == 0, result
    return json.loads(result.out), lab.calls()


def test_the_first_apply_of_a_cross_box_cluster_makes_at_most_60_requests(lab, tmp_path):
    desired = example("cluster-across-boxes", tmp_path)
    report, calls = apply(lab, desired)
    print(f"first apply: {sum(calls.values())} requests {json.dumps(calls, sort_keys=True)}")
    assert report["changes"] > 0
    assert sum(calls.values()) <= 60, calls
    # One session to plan, one for the apply's lane: setup once each, never again.
    assert calls["Login"] == calls["RetrieveServiceContent"] == calls["Logout"] == 2, calls
    assert calls["ReconfigVM_Task"] == 4, calls  # 2 nodes x (disks, NICs)
    assert calls["PowerOnVM_Task"] == 2 and calls["ShutdownGuest"] == 2, calls
    assert calls["UpdateOptions"] == len(NODE_HOSTS), calls  # both options of a host in one call
    assert calls["MarkPerenniallyReservedEx_Task"] == len(HOSTS), calls  # both LUNs of a host in one task
    assert "MarkPerenniallyReserved" not in calls and "QueryOptions" not in calls, calls
    # No poll per task: 10 tasks, and reads besides the plan's 4 per session only where a step
    # reads its target before changing it (9 steps) and once after (each task's end).
    tasks = calls["ReconfigVM_Task"] + calls["PowerOnVM_Task"] + calls["MarkPerenniallyReservedEx_Task"] + 1
    assert tasks == 10
    reads = calls["RetrievePropertiesEx"] + calls.get("WaitForUpdatesEx", 0)
    assert reads <= 8 + 9 + 10, calls

    # What vCenter shows: every host of the vSphere cluster holds both LUNs perennially
    # reserved; the nodes' hosts have the options the clustering procedure sets.
    si = lab.connect()
    assert_reserved_everywhere(si)
    for name in NODE_HOSTS:
        manager = prop(si, find(si, vim.HostSystem, name), "configManager.advancedOption")
        values = {o.key: o.value for o in manager.QueryOptions("Disk.")}
        assert values["Disk.ResetOnFailure"] == 1 and values["Disk.UseDeviceReset"] == 0, (name, values)


def test_an_apply_with_nothing_to_do_changes_nothing_and_reads_as_a_plan_does(lab, tmp_path):
    desired = example("cluster-across-boxes", tmp_path)
    apply(lab, desired)
    lab.reset_calls()
    planned = run(lab, "plan", str(desired), "--skip-guest", "--detailed-exitcode")
    assert planned.code == 0, planned
    plan_calls = lab.calls()
    report, calls = apply(lab, desired)
    assert report["changes"] == 0
    assert not set(CHANGES) & set(calls), calls
    assert calls == plan_calls, (calls, plan_calls)
    assert sum(calls.values()) <= 8, calls


def test_a_reservation_already_there_is_left_out_of_that_hosts_task(lab, tmp_path):
    """Each host's task carries only the LUNs that host still needs: one marked already is not
    in the plan, and the host where both are gets no task at all."""
    si = lab.connect()
    for name, luns in (("esx-a1.lab.local", LUNS), ("esx-a2.lab.local", LUNS[:1])):
        host = find(si, vim.HostSystem, name)
        storage = prop(si, host, "configManager.storageSystem")
        by_name = {lun.canonicalName: lun.uuid for lun in prop(si, host, "config.storageDevice.scsiLun")}
        for lun in luns:
            storage.MarkPerenniallyReserved(lunUuid=by_name[lun], state=True)
    desired = example("cluster-across-boxes", tmp_path)
    report, calls = apply(lab, desired)
    assert calls["MarkPerenniallyReservedEx_Task"] == 2, calls  # esx-a2 (one LUN) and esx-a3 (two)
    reserved = sorted(a for a in report["clusters"][0]["done"] if a.endswith("#reserve-lun"))
    assert reserved == sorted(
        [f"sql-prod-01/host/esx-a2.lab.local/lun/{LUNS[1]}#reserve-lun"]
        + [f"sql-prod-01/host/esx-a3.lab.local/lun/{lun}#reserve-lun" for lun in LUNS]
    )
    assert_reserved_everywhere(si)
