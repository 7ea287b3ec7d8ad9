"""Settings VMware does not support on a clustered node, made by hand through pyvmomi after an
apply of the cross-box example: each is a drift finding with its severity and fix (the rule
in the fix), and the plan refuses with the rule located in the file. The guest OS the lab's
VMs report (windows8Server64Guest, Windows Server 2012) is not the file's windows2016: the
plan warns, drift notes it."""

from __future__ import annotations

import json

import pytest
from pyVmomi import vim

from labctl import VSPHERE8_LAB, find, prop, wait
from tests.integration import test_drift
from tests.integration.cli import example, run

pytestmark = pytest.mark.slow

applied = test_drift.applied  # the fixture: the cross-box example applied, drift clean
_findings = test_drift._drift  # drift --json exits 2: its findings

MUTATING = ("ReconfigVM_Task", "PowerOffVM_Task", "PowerOnVM_Task", "ShutdownGuest")


def _refused(lab, desired, rule_id):
    """`plan` stops with the rule, located in the desired file, and reads no "no changes"."""
    result = run(lab, "plan", str(desired))
    assert result.code == 1, result
    assert rule_id in result.err and f"{desired}:" in result.err, result
    assert "no changes" not in result.out + result.err, result
    return result


def _reconfigure_off(si, vm, spec):
    """As an administrator does it: power the node off, reconfigure, power it on."""
    wait(vm.PowerOffVM_Task())
    wait(vm.ReconfigVM_Task(spec=spec))
    wait(vm.PowerOnVM_Task())


def test_a_snapshot_left_on_a_node_is_critical_drift_and_stops_the_plan(applied):
    lab, desired = applied
    si = lab.connect()
    vm = find(si, vim.VirtualMachine, "SQLNODE1")
    # ESXi refuses to snapshot a VM with a bus-sharing controller; one left from before is planted.
    with pytest.raises(vim.fault.SnapshotIncompatibleDeviceInVm):
        wait(vm.CreateSnapshot_Task(name="nightly", memory=False, quiesce=False))
    lab.plant_snapshot("SQLNODE1", "before-patch")
    [f] = _findings(lab, desired)
    assert f["address"] == "sql-prod-01/node/SQLNODE1/snapshot"
    assert (f["field"], f["observed"], f["desired"]) == ("names", ["before-patch"], "none")
    assert f["severity"] == "critical" and f["rule"] == "MSCS-VM-001"
    assert "Delete All" in f["fix"] and "[MSCS-VM-001]" in f["fix"]
    text = run(lab, "drift", str(desired), "--skip-guest")
    assert text.code == 2 and "no drift" not in text.out and "fix: delete every snapshot of SQLNODE1" in text.out
    refused = _refused(lab, desired, "MSCS-VM-001")
    assert "SQLNODE1 has 1 snapshot(s) (before-patch)" in refused.err
    # Nothing was changed: the snapshot is still there, the node still runs.
    assert prop(si, vm, "runtime.powerState") == "poweredOn"
    assert [s.name for s in prop(si, vm, "snapshot").rootSnapshotList] == ["before-patch"]


def test_cpu_hot_add_enabled_by_hand_is_a_warning_with_its_fix(applied):
    lab, desired = applied
    si = lab.connect()
    vm = find(si, vim.VirtualMachine, "SQLNODE2")
    _reconfigure_off(si, vm, vim.vm.ConfigSpec(cpuHotAddEnabled=True))
    assert prop(si, vm, "config.cpuHotAddEnabled") is True
    [f] = _findings(lab, desired)
    assert (f["address"], f["field"], f["observed"], f["desired"]) == (
        "sql-prod-01/node/SQLNODE2/hotadd",
        "cpu",
        True,
        False,
    )
    assert f["severity"] == "warning" and f["rule"] == "MSCS-VM-002"
    assert "clear CPU Hot Plug" in f["fix"] and "power SQLNODE2 off" in f["fix"]
    _refused(lab, desired, "MSCS-VM-002")
    # The administrator's fix clears it: drift is clean again.
    _reconfigure_off(si, vm, vim.vm.ConfigSpec(cpuHotAddEnabled=False))
    assert run(lab, "drift", str(desired), "--skip-guest").code == 0


def test_multi_writer_on_a_clustered_disk_is_critical_drift(applied):
    lab, desired = applied
    si = lab.connect()
    vm = find(si, vim.VirtualMachine, "SQLNODE2")
    devices = prop(si, vm, "config.hardware.device")
    shared = next(d for d in devices if isinstance(d, vim.vm.device.VirtualSCSIController) and d.busNumber == 1)
    quorum = next(
        d
        for d in devices
        if isinstance(d, vim.vm.device.VirtualDisk) and d.controllerKey == shared.key and d.unitNumber == 0
    )
    quorum.backing.sharing = "sharingMultiWriter"
    _reconfigure_off(
        si, vm, vim.vm.ConfigSpec(deviceChange=[vim.vm.device.VirtualDeviceSpec(operation="edit", device=quorum)])
    )
    findings = _findings(lab, desired)
    [f] = [f for f in findings if f.get("rule") == "MSCS-VM-003"]
    assert f["address"] == "sql-prod-01/node/SQLNODE2/disk/quorum"
    assert (f["field"], f["observed"], f["desired"]) == ("multiWriter", "sharingMultiWriter", "sharingNone")
    assert f["severity"] == "critical" and "No sharing" in f["fix"]
    _refused(lab, desired, "MSCS-VM-003")


def test_a_guest_id_other_than_the_files_guest_os_is_reported(applied):
    lab, desired = applied
    si = lab.connect()
    vm = find(si, vim.VirtualMachine, "SQLNODE1")
    assert prop(si, vm, "config.guestId") == "windows8Server64Guest"  # the lab's VMs: Windows Server 2012
    plan = run(lab, "plan", str(desired))
    assert plan.code == 0, plan
    shown = plan.out + plan.err
    [line] = [x for x in shown.splitlines() if "SQLNODE1: config.guestId windows8Server64Guest" in x]
    assert "spec.guestOS: warning:" in line and "not windows2016" in line and line.endswith("[MSCS-VM-006]")
    drift = run(lab, "drift", str(desired), "--skip-guest", "--json")
    assert drift.code == 0, drift  # a note, not drift: mscsctl changes neither side
    [report] = json.loads(drift.out)["reports"]
    notes = [n for n in report["notes"] if "MSCS-VM-006" in n]
    assert {n.split(":")[0] for n in notes} == {"SQLNODE1", "SQLNODE2"}
    text = run(lab, "drift", str(desired), "--skip-guest")
    assert "sql-prod-01: no drift." in text.out and "note: SQLNODE1:" in text.out, text  # said in text too
    # Against a file that says Windows Server 2012, the same VMs are what it says.
    matching = example("cluster-across-boxes", desired.parent, guestOS="windows2012")
    again = run(lab, "plan", str(matching))
    assert "MSCS-VM-006" not in again.out + again.err, again


def test_a_node_with_a_snapshot_is_not_touched_by_its_first_apply(lab, tmp_path):
    """Before the first apply the node has no shared controller, so ESXi takes the snapshot; it
    would then refuse to share the node's bus. apply stops before any change: no power-off of a
    node it could not bring back clustered."""
    si = lab.connect()
    vm = find(si, vim.VirtualMachine, "SQLNODE2")
    wait(vm.CreateSnapshot_Task(name="before-clustering", memory=False, quiesce=False))
    desired = example("cluster-across-boxes", tmp_path)
    lab.reset_calls()
    result = run(lab, "apply", str(desired), "--auto-approve")
    assert result.code == 1, result
    [line] = [x for x in result.err.splitlines() if "[MSCS-VM-001]" in x]
    assert f"{desired}:" in line and "SQLNODE2 has 1 snapshot(s) (before-clustering)" in line, line
    calls = lab.calls()
    assert {m: calls[m] for m in MUTATING if calls.get(m)} == {}
    assert prop(si, vm, "runtime.powerState") == "poweredOn"


def test_windows_server_2022_nodes_match_a_windows2022_file(lab_factory, tmp_path):
    """The vSphere 8 lab's nodes report windows2019srvNext_64Guest, vSphere's id for Windows
    Server 2022: the clustered-VMDK example (guestOS windows2022) plans without MSCS-VM-006."""
    lab = lab_factory(VSPHERE8_LAB)
    si = lab.connect()
    assert prop(si, find(si, vim.VirtualMachine, "WSFC-NODE1"), "config.guestId") == "windows2019srvNext_64Guest"
    desired = example("vsphere8-clustered-vmdk", tmp_path)
    planned = run(lab, "plan", str(desired), "--json")
    assert planned.code == 0, planned
    assert [f for f in json.loads(planned.out)["findings"] if f["rule_id"].startswith("MSCS-VM-")] == []
    # A node whose guest OS setting says Windows Server 2019 is reported.
    _reconfigure_off(
        si, find(si, vim.VirtualMachine, "WSFC-NODE2"), vim.vm.ConfigSpec(guestId="windows2019srv_64Guest")
    )
    warned = run(lab, "plan", str(desired), "--json")
    assert warned.code == 0, warned
    [f] = [f for f in json.loads(warned.out)["findings"] if f["rule_id"] == "MSCS-VM-006"]
    assert (
        f["message"].startswith("WSFC-NODE2: config.guestId windows2019srv_64Guest")
        and "not windows2022" in f["message"]
    )
