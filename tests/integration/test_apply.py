"""plan -> apply -> plan through the CLI against the lab, and what vCenter shows afterwards."""

from __future__ import annotations

import json

import pytest
from pyVmomi import vim

from labctl import find, find_all, prop, props
from tests.integration.cli import example, run

pytestmark = pytest.mark.slow

TOPOLOGIES = {
    "cluster-across-boxes": (["SQLNODE1", "SQLNODE2"], "physicalSharing", "physicalMode"),
    "cluster-in-a-box": (["CIB-NODE1", "CIB-NODE2"], "virtualSharing", None),
    "physical-to-virtual": (["P2V-NODE1"], "physicalSharing", "physicalMode"),
}


def shared_devices(si, vm, bus=1):
    devices = prop(si, vm, "config.hardware.device")
    ctrl = next(d for d in devices if isinstance(d, vim.vm.device.VirtualSCSIController) and d.busNumber == bus)
    disks = {
        d.unitNumber: d for d in devices if isinstance(d, vim.vm.device.VirtualDisk) and d.controllerKey == ctrl.key
    }
    nics = [d for d in devices if isinstance(d, vim.vm.device.VirtualEthernetCard)]
    return ctrl, disks, nics


@pytest.mark.parametrize("topology", list(TOPOLOGIES))
def test_each_topology_plans_applies_and_converges(lab, tmp_path, topology):
    desired = example(topology, tmp_path)
    first = run(lab, "plan", str(desired), "--detailed-exitcode", "--skip-guest")
    assert first.code == 2, first
    applied = run(lab, "apply", str(desired), "--auto-approve")
    assert applied.code == 0, applied
    assert "apply complete: " in applied.out
    again = run(lab, "plan", str(desired), "--detailed-exitcode", "--skip-guest")
    assert again.code == 0, again
    assert "no changes" in again.out

    nodes, sharing, compat = TOPOLOGIES[topology]
    si = lab.connect()
    files = {}
    for name in nodes:
        vm = find(si, vim.VirtualMachine, name)
        ctrl, disks, nics = shared_devices(si, vm)
        assert isinstance(ctrl, vim.vm.device.VirtualLsiLogicSASController)
        assert ctrl.sharedBus == sharing
        assert sorted(disks) == [0, 1]
        for unit, disk in disks.items():
            if compat:
                assert isinstance(disk.backing, vim.vm.device.VirtualDisk.RawDiskMappingVer1BackingInfo)
                assert disk.backing.compatibilityMode == compat
                assert disk.backing.lunUuid
            else:
                assert isinstance(disk.backing, vim.vm.device.VirtualDisk.FlatVer2BackingInfo)
                assert disk.backing.eagerlyScrub is True and disk.backing.thinProvisioned is False
            files.setdefault(unit, set()).add(disk.backing.fileName)
        # Two vmxnet3 NICs: production and heartbeat, the heartbeat one added after the disks.
        assert [type(n) for n in nics] == [vim.vm.device.VirtualVmxnet3] * 2
        networks = sorted(n.backing.deviceName for n in nics)
        assert networks == ["Heartbeat", "Production"]
        heartbeat = next(n for n in nics if n.backing.deviceName == "Heartbeat")
        assert heartbeat.slotInfo.pciSlotNumber > ctrl.slotInfo.pciSlotNumber
        assert prop(si, vm, "runtime.powerState") == "poweredOn"
    # One shared file per clustered disk, attached by every VM node.
    assert all(len(paths) == 1 for paths in files.values()), files
    _check_hosts_and_cluster(si, nodes, topology)


def _check_hosts_and_cluster(si, nodes, topology):
    vms = [find(si, vim.VirtualMachine, n) for n in nodes]
    hosts = {prop(si, vm, "runtime.host")._moId: prop(si, vm, "runtime.host") for vm in vms}
    for host in hosts.values():
        mgr = prop(si, host, "configManager.advancedOption")
        values = {o.key: int(o.value) for o in mgr.QueryOptions("Disk.")}
        assert values["Disk.ResetOnFailure"] == 1
        assert values["Disk.UseLunReset"] == 1
        assert values["Disk.UseDeviceReset"] == 0
    cluster = find(si, vim.ClusterComputeResource, "Cluster-A")
    if topology != "cluster-in-a-box":
        # Every host of the vSphere cluster that sees an RDM LUN holds it perennially reserved.
        luns = {"cluster-across-boxes": ("a001", "a002"), "physical-to-virtual": ("a003", "a004")}[topology]
        for host in prop(si, cluster, "host"):
            for lun in prop(si, host, "config.storageDevice.scsiLun"):
                if lun.canonicalName.endswith(luns):
                    assert lun.perenniallyReserved is True, (host.name, lun.canonicalName)
    cfg = prop(si, cluster, "configurationEx")
    node_ids = {vm._moId for vm in vms}
    drs = {e.key._moId: e for e in cfg.drsVmConfig or []}
    das = {e.key._moId: e for e in cfg.dasVmConfig or []}
    # HA restart: off where the example writes ha: disabled (across boxes); elsewhere the default,
    # on from the vSphere 4.1 guide (the lab's hosts run 8.0).
    restart_off = topology == "cluster-across-boxes"
    for moid in node_ids:
        assert drs[moid].enabled is False
        assert (das[moid].dasSettings.restartPriority == "disabled") is restart_off
    # The VM-Host rule HA obeys (Cluster-A has HA on; the 6.5+ guides): the nodes must run on the
    # hosts that reach their disks.
    mine = [r for r in cfg.rule or [] if r.name.startswith("mscsctl-")]
    [vm_host] = [r for r in mine if isinstance(r, vim.cluster.VmHostRuleInfo)]
    assert vm_host.mandatory is True and vm_host.affineHostGroupName
    groups = {g.name: g for g in cfg.group or []}
    assert {v._moId for v in groups[vm_host.vmGroupName].vm} == node_ids
    rules = [r for r in mine if not isinstance(r, vim.cluster.VmHostRuleInfo)]
    if len(nodes) == 2:
        expected = vim.cluster.AffinityRuleSpec if topology == "cluster-in-a-box" else vim.cluster.AntiAffinityRuleSpec
        assert len(rules) == 1 and isinstance(rules[0], expected)
        assert {v._moId for v in rules[0].vm} == node_ids
    else:
        assert rules == []


def test_second_apply_changes_nothing(lab, tmp_path):
    desired = example("cluster-across-boxes", tmp_path)
    assert run(lab, "apply", str(desired), "--auto-approve").code == 0
    calls_before = lab.calls()
    second = run(lab, "apply", str(desired), "--auto-approve", "--json")
    assert second.code == 0, second
    assert json.loads(second.out)["changes"] == 0
    calls_after = lab.calls()
    for method in (
        "ReconfigVM_Task",
        "PowerOffVM_Task",
        "PowerOnVM_Task",
        "UpdateOptions",
        "ReconfigureComputeResource_Task",
        "MarkPerenniallyReserved",
    ):
        assert calls_after.get(method, 0) == calls_before.get(method, 0), method


def _power_events(si, vm):
    mgr = si.content.eventManager
    spec = vim.event.EventFilterSpec(
        entity=vim.event.EventFilterSpec.ByEntity(entity=vm, recursion="self"),
        eventTypeId=["VmPoweredOffEvent", "VmPoweredOnEvent"],
    )
    return sorted(mgr.QueryEvents(spec), key=lambda e: (e.createdTime, e.key))


def test_rolling_apply_never_has_both_nodes_off(lab, tmp_path):
    desired = example("cluster-across-boxes", tmp_path)
    assert run(lab, "apply", str(desired), "--auto-approve").code == 0
    si = lab.connect()
    timeline = []
    for name in ("SQLNODE1", "SQLNODE2"):
        for event in _power_events(si, find(si, vim.VirtualMachine, name)):
            timeline.append((event.createdTime, event.key, name, type(event).__name__.rsplit(".", 1)[-1]))
    timeline.sort()
    off: set[str] = set()
    seen_off = set()
    for _, _, name, kind in timeline:
        if kind == "VmPoweredOffEvent":
            off.add(name)
            seen_off.add(name)
        else:
            off.discard(name)
        assert len(off) < 2, timeline
    # Both nodes were cycled (the shared controller cannot be hot-added), one after the other.
    assert seen_off == {"SQLNODE1", "SQLNODE2"}


def test_failure_mid_apply_then_rerun_converges_without_duplicates(lab, tmp_path):
    desired = example("cluster-across-boxes", tmp_path)
    # The 3rd ReconfigVM_Task is SQLNODE2's controller and disks (SQLNODE1: disks, NICs).
    lab.inject_fault(method="ReconfigVM_Task", call=3, fault="task", message="Injected: storage busy")
    failed = run(lab, "apply", str(desired), "--auto-approve")
    assert failed.code == 1, failed
    assert "Injected: storage busy" in failed.err
    assert "not done:" in failed.err and "Traceback" not in failed.err
    rerun = run(lab, "apply", str(desired), "--auto-approve")
    assert rerun.code == 0, rerun
    assert run(lab, "plan", str(desired), "--detailed-exitcode", "--skip-guest").code == 0
    si = lab.connect()
    for name in ("SQLNODE1", "SQLNODE2"):
        vm = find(si, vim.VirtualMachine, name)
        devices = prop(si, vm, "config.hardware.device")
        scsi = [d for d in devices if isinstance(d, vim.vm.device.VirtualSCSIController)]
        disks = [d for d in devices if isinstance(d, vim.vm.device.VirtualDisk)]
        nics = [d for d in devices if isinstance(d, vim.vm.device.VirtualEthernetCard)]
        assert sorted(c.busNumber for c in scsi) == [0, 1]
        assert len(disks) == 3 and len(nics) == 2  # boot disk + 2 shared; production + heartbeat
        assert prop(si, vm, "runtime.powerState") == "poweredOn"


def test_stale_saved_plan_is_refused_and_nothing_changes(lab, tmp_path):
    desired = example("cluster-across-boxes", tmp_path)
    plan_file = tmp_path / "sql.plan.json"
    planned = run(lab, "plan", str(desired), "--out", str(plan_file))
    assert planned.code == 0, planned
    assert oct(plan_file.stat().st_mode & 0o777) == "0o600"
    # Someone edits SQLNODE1 by hand after the plan was made.
    si = lab.connect()
    vm = find(si, vim.VirtualMachine, "SQLNODE1")
    task = vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(annotation="edited by hand"))
    from labctl import wait

    wait(task)
    before = props(si, vm, "config.changeVersion", "config.hardware.device")
    refused = run(lab, "apply", str(plan_file))
    assert refused.code == 1, refused
    assert "stale" in refused.err and "SQLNODE1 was reconfigured" in refused.err
    after = props(si, vm, "config.changeVersion", "config.hardware.device")
    assert after["config.changeVersion"] == before["config.changeVersion"]
    assert len(after["config.hardware.device"]) == len(before["config.hardware.device"])


def test_fresh_saved_plan_is_applied_exactly(lab, tmp_path):
    desired = example("cluster-across-boxes", tmp_path)
    plan_file = tmp_path / "sql.plan.json"
    assert run(lab, "plan", str(desired), "--out", str(plan_file)).code == 0
    applied = run(lab, "apply", str(plan_file))
    assert applied.code == 0, applied
    assert run(lab, "plan", str(desired), "--detailed-exitcode", "--skip-guest").code == 0


def test_apply_without_terminal_or_auto_approve_refuses(lab, tmp_path):
    desired = example("cluster-across-boxes", tmp_path)
    result = run(lab, "apply", str(desired))
    assert result.code == 1
    assert "--auto-approve" in result.err
    si = lab.connect()
    vm = find(si, vim.VirtualMachine, "SQLNODE1")
    assert len([d for d in prop(si, vm, "config.hardware.device") if isinstance(d, vim.vm.device.VirtualDisk)]) == 1


def test_state_records_what_was_applied(lab, tmp_path):
    desired = example("cluster-across-boxes", tmp_path)
    assert run(lab, "apply", str(desired), "--auto-approve").code == 0
    state_file = tmp_path / ".mscsctl" / "sql-prod-01.state.json"
    assert oct(state_file.stat().st_mode & 0o777) == "0o600"
    shown = run(lab, "show", str(desired), "--json")
    assert shown.code == 0, shown
    state = json.loads(shown.out)
    quorum = state["resources"]["sql-prod-01/node/SQLNODE2/disk/quorum"]
    assert quorum["kind"] == "rdm-disk"
    assert quorum["file"] == "[SAN-VMFS-01] sql-prod-01/quorum-physical.vmdk"
    assert quorum["created_by_mscsctl"] is True
    si = lab.connect()
    vm = find(si, vim.VirtualMachine, "SQLNODE2")
    assert quorum["vm_moref"] == vm._moId
    keys = {d.key for d in prop(si, vm, "config.hardware.device")}
    assert quorum["device_key"] in keys
    assert "Lab-Passw0rd" not in state_file.read_text()
    assert find_all(si, vim.VirtualMachine)
