"""Data safety on the hand-built world: what mscsctl may touch is proved in vCenter, not by the state.

A state that claims the boot disk stops the plan; the cluster's own disks are found in vCenter
even when the state never recorded them; a VM that is no longer a node loses the cluster's
devices after the nodes; a LUN serves one cluster.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pyVmomi import vim

from providers.vcenter.devices import controllers_of, disks_of
from reconciler.drift import DriftSeverity, detect_drift
from reconciler.errors import RuleViolation
from reconciler.kinds.ownership import disk_name_of_file, former_nodes
from reconciler.observed import ObservedDisk
from reconciler.plan import REASON_TEXT, ActionKind, Reason
from reconciler.planner import UnprovenDevice, build_plan, stale_reasons
from reconciler.rules.fleet import fleet_findings
from state.model import ManagedResource
from tests.unit.plan_world import (
    LUN1,
    LUN2,
    NOW,
    as_applied,
    cab_cluster,
    cab_world,
    cib_cluster,
    cib_world,
    fresh_vm,
    state_after,
    with_disk,
    with_vm,
)

BOOT = "[local] SQLNODE1/SQLNODE1.vmdk"  # the boot disk of plan_world's VMs


def applied():
    """The across-boxes cluster after its first apply, and the state that apply wrote."""
    cluster, world = cab_cluster(), cab_world()
    plan = build_plan(cluster, world)
    return cluster, as_applied(cluster, world, plan), state_after(cluster, world, plan)


def rule_ids(exc: RuleViolation) -> set[str]:
    return {f.rule_id for f in exc.findings}


def actions_of(plan, kind):
    return [a for a in plan.actions if a.kind is kind]


# --------------------------------------------------------------------------- scope of change


def test_ownership_is_read_from_the_mapping_path():
    assert disk_name_of_file("sql-prod-01", "[SAN-VMFS-01] sql-prod-01/quorum-physical.vmdk", "rdm") == "quorum"
    assert disk_name_of_file("sql-prod-01", "[DS 2] sql-prod-01/data-virtual.vmdk", "rdm") == "data"
    assert disk_name_of_file("cib-test-01", "[esx-a1-local] cib-test-01/data.vmdk", "vmdk") == "data"
    assert disk_name_of_file("sql-prod-01", BOOT, "vmdk") is None
    assert disk_name_of_file("sql-prod-01", "[SAN-VMFS-01] sql-prod-01/quorum.vmdk", "rdm") is None  # no mode
    assert disk_name_of_file("sql-prod-01", "[SAN-VMFS-01] sql-prod-01/x/quorum-physical.vmdk", "rdm") is None
    assert disk_name_of_file("sql-prod-01", "[SAN-VMFS-01] sql-prod-02/quorum-physical.vmdk", "rdm") is None


def test_a_state_that_claims_the_boot_disk_stops_the_plan():
    cluster, world, state = applied()
    hostile = state.with_resource(
        "sql-prod-01/node/SQLNODE1/disk/boot",
        ManagedResource(
            kind="shared-vmdk",
            vm_moref="vm-SQLNODE1",
            device_key=2000,
            file=BOOT,
            created_by_mscsctl=True,
            applied={"bus": 0, "unit": 0, "kind": "vmdk", "file": BOOT, "sizeGB": 40},
            applied_at=NOW,
        ),
    )
    with pytest.raises(RuleViolation) as caught:
        build_plan(cluster, world, managed=hostile.managed())
    assert rule_ids(caught.value) == {"MSCS-SAFE-001"}
    [finding] = caught.value.findings
    assert finding.message.startswith(f"state says sql-prod-01/node/SQLNODE1/disk/boot is {BOOT} at SCSI 0:0")
    assert f"vCenter shows {BOOT} at SCSI 0:0 of SQLNODE1, on bus 0, not the cluster's shared bus 1" in finding.message
    assert "refusing to plan" in finding.message
    assert finding.path == ("spec", "nodes", 0, "vm")


def test_without_the_claim_the_boot_disk_is_never_planned():
    cluster, world, state = applied()
    plan = build_plan(cluster, world, managed=state.managed())
    assert plan.actions == []
    assert all(a.address.name != "boot" for a in plan.actions)


def test_a_disk_the_state_names_on_the_shared_bus_but_not_the_clusters_is_refused():
    cluster, world, state = applied()
    foreign = ObservedDisk(key=2009, bus=1, unit=9, kind="vmdk", file="[SAN-VMFS-01] SQLNODE1/SQLNODE1_1.vmdk")
    world = with_disk(world, "SQLNODE1", foreign)
    # Left alone and listed when the state says nothing about it.
    plan = build_plan(cluster, world, managed=state.managed())
    assert plan.actions == []
    assert plan.unmanaged == ["SQLNODE1: disk 1:9 [SAN-VMFS-01] SQLNODE1/SQLNODE1_1.vmdk"]
    claimed = state.with_resource(
        "sql-prod-01/node/SQLNODE1/disk/logs",
        ManagedResource(kind="shared-vmdk", file=foreign.file, created_by_mscsctl=True, applied_at=NOW),
    )
    with pytest.raises(RuleViolation) as caught:
        build_plan(cluster, world, managed=claimed.managed())
    assert rule_ids(caught.value) == {"MSCS-SAFE-001"}
    assert "not under the cluster's path [DATASTORE] sql-prod-01/" in caught.value.findings[0].message


def test_a_unit_held_by_a_disk_that_is_not_the_clusters_is_refused_at_plan():
    cluster, world = cab_cluster(), cab_world()
    foreign = ObservedDisk(key=2016, bus=1, unit=0, kind="vmdk", file="[SAN-VMFS-01] SQLNODE2/SQLNODE2_1.vmdk")
    world = with_disk(world, "SQLNODE2", foreign, sharing="none")
    with pytest.raises(RuleViolation) as caught:
        build_plan(cluster, world)
    assert rule_ids(caught.value) == {"MSCS-SAFE-002"}
    assert caught.value.findings[0].path == ("spec", "sharedDisks", "disks", 0, "unit")
    assert "SQLNODE2_1.vmdk" in caught.value.findings[0].message


def test_an_rdm_of_a_listed_lun_with_its_mapping_file_made_by_hand_is_replaced_not_deleted():
    cluster, world = cab_cluster(), cab_world()
    by_hand = ObservedDisk(key=2016, bus=1, unit=5, kind="rdm", file="[SAN-VMFS-01] SQLNODE1/SQLNODE1_1.vmdk", lun=LUN1)
    world = with_disk(world, "SQLNODE1", by_hand, sharing="physical")
    plan = build_plan(cluster, world)
    [detach] = actions_of(plan, ActionKind.DETACH_DISK)
    assert (str(detach.address), detach.reason) == ("sql-prod-01/node/SQLNODE1/disk/quorum", Reason.REPLACE)
    assert detach.before.file == by_hand.file


# --------------------------------------------------------------------------- ownership survives crashes


def test_a_disk_removed_from_the_file_is_detached_from_both_nodes_without_any_state():
    cluster, world, _ = applied()
    smaller = cab_cluster(sharedDisks={"disks": [cluster.spec.shared_disks.disks[0].model_dump(by_alias=True)]})
    plan = build_plan(smaller, world)  # no state at all: a run killed before its first write
    detaches = actions_of(plan, ActionKind.DETACH_DISK)
    assert [(a.target, a.address.name, a.reason) for a in detaches] == [
        ("SQLNODE1", "data", Reason.NOT_IN_FILE),
        ("SQLNODE2", "data", Reason.NOT_IN_FILE),
    ]
    assert "data kept" in REASON_TEXT[Reason.NOT_IN_FILE]


def test_a_shared_vmdk_detach_says_its_file_is_deleted_with_allow_data_loss():
    cluster, world = cib_cluster(), cib_world()
    world = as_applied(cluster, world, build_plan(cluster, world))
    only_quorum = cib_cluster(sharedDisks={"disks": [{"name": "quorum", "sizeGB": 1, "datastore": "esx-a1-local"}]})
    plan = build_plan(only_quorum, world)
    detaches = actions_of(plan, ActionKind.DETACH_DISK)
    assert [(a.target, a.reason) for a in detaches] == [
        ("CIB-NODE1", Reason.NOT_IN_FILE_VMDK),
        ("CIB-NODE2", Reason.NOT_IN_FILE_VMDK),
    ]
    assert detaches[0].model_dump(mode="json")["reason"] == "not-in-file-vmdk"
    text = REASON_TEXT[Reason.NOT_IN_FILE_VMDK]
    assert "deleted" in text and "--allow-data-loss" in text and "once no VM uses it" in text


# --------------------------------------------------------------------------- membership changes


def replaced_node_two():
    """SQLNODE2 replaced in the file by SQLNODE3 (esx-a3) after the first apply."""
    _, world, state = applied()
    world = with_vm(world, fresh_vm("SQLNODE3", "esx-a3.lab.local"))
    nodes = cab_cluster(nodes=[{"vm": "SQLNODE1"}, {"vm": "SQLNODE3"}])
    return nodes, world, state


def test_a_replaced_node_loses_the_clusters_devices_after_its_replacement_runs():
    cluster, world, state = replaced_node_two()
    assert former_nodes(cluster, world, state.managed()) == ["SQLNODE2"]
    plan = build_plan(cluster, world, managed=state.managed())
    old = [a for a in plan.actions if a.target == "SQLNODE2"]
    assert [(a.kind, a.address.name) for a in old] == [
        (ActionKind.POWER_OFF, ""),
        (ActionKind.DETACH_DISK, "data"),
        (ActionKind.DETACH_DISK, "quorum"),
        (ActionKind.REMOVE_NIC, "heartbeat"),
        (ActionKind.POWER_ON, ""),
    ]
    assert {a.reason for a in old[1:4]} == {Reason.NOT_A_NODE}
    assert {a.batch for a in old[1:4]} == {"SQLNODE2/devices"}  # one reconfigure: all or nothing
    new_up = next(a for a in plan.actions if a.target == "SQLNODE3" and a.kind is ActionKind.POWER_ON)
    assert plan.actions.index(new_up) < plan.actions.index(old[0])
    assert new_up.id in old[0].depends_on
    # The replacement attaches the files node 1 has (nobody creates them again).
    assert [a.kind for a in plan.actions if a.target == "SQLNODE3" and a.address.kind == "disk"] == [
        ActionKind.ATTACH_DISK,
        ActionKind.ATTACH_DISK,
    ]
    assert "SQLNODE2" in plan.seen_nodes
    # Once applied, nothing is left to do, and the old VM is no former node any more.
    after = as_applied(cluster, world, plan)
    again = build_plan(cluster, after, managed=state_after(cluster, world, plan, state).managed())
    assert [a.kind for a in again.actions] == []


def test_a_vm_the_state_names_but_vcenter_shows_otherwise_is_no_former_node():
    cluster, world, state = replaced_node_two()
    # Another VM has SQLNODE2's name now: the state's moref is not its moref.
    other = world.vms["SQLNODE2"].model_copy(update={"moref": "vm-999"})
    world = with_vm(world, other)
    assert former_nodes(cluster, world, state.managed()) == []
    with pytest.raises(RuleViolation) as caught:  # and it holds the cluster's disks: refused
        build_plan(cluster, world, managed=state.managed())
    assert rule_ids(caught.value) == {"MSCS-SAFE-003"}


def test_drift_reports_a_vm_holding_the_clusters_disks_that_is_not_a_node():
    cluster, world, state = replaced_node_two()
    report = detect_drift(cluster, world, state, desired_file="c.yaml", checked_at=NOW)
    held = [f for f in report.findings if f.address.owner == "SQLNODE2"]
    assert [(f.address.name, f.field, f.severity) for f in held] == [
        ("quorum", "lun", DriftSeverity.CRITICAL),
        ("data", "lun", DriftSeverity.CRITICAL),
    ]
    assert "SQLNODE2 (vm-SQLNODE2, on esx-a2.lab.local) maps it at SCSI 1:0" in held[0].observed
    assert held[0].fix.startswith("mscsctl apply c.yaml (it was a node")


# --------------------------------------------------------------------------- one LUN, one cluster


def outsider_maps(lun: str, world, *, vm="P2V-NODE1", host="esx-a3.lab.local"):
    rdm = ObservedDisk(key=2001, bus=0, unit=1, kind="rdm", file=f"[SAN-VMFS-01] {vm}/{vm}_1.vmdk", lun=lun)
    return with_disk(with_vm(world, fresh_vm(vm, host)), vm, rdm)


def test_a_lun_an_outside_vm_maps_is_refused_naming_both():
    cluster = cab_cluster()
    with pytest.raises(RuleViolation) as caught:
        build_plan(cluster, outsider_maps(LUN2, cab_world()))
    assert rule_ids(caught.value) == {"MSCS-SAFE-003"}
    [f] = caught.value.findings
    assert f.path == ("spec", "sharedDisks", "disks", 1, "lun")
    assert f"LUN {LUN2} is sql-prod-01's disk data" in f.message
    assert "P2V-NODE1 (vm-P2V-NODE1, on esx-a3.lab.local) maps it at SCSI 0:1" in f.message


def test_drift_reports_a_lun_mapped_outside_the_nodes_as_critical():
    cluster, world, state = applied()
    report = detect_drift(cluster, outsider_maps(LUN1, world), state, desired_file="c.yaml", checked_at=NOW)
    [f] = [f for f in report.findings if f.address.owner == "P2V-NODE1"]
    assert f.severity is DriftSeverity.CRITICAL and f.field == "lun"
    assert "by hand" in f.fix


def test_a_saved_plan_is_stale_when_someone_else_maps_a_lun():
    cluster, world = cab_cluster(), cab_world()
    plan = build_plan(cluster, world)
    assert plan.seen_disk_users == {LUN1: [], LUN2: []}
    assert stale_reasons(plan, world) == []
    [reason] = stale_reasons(plan, outsider_maps(LUN2, world))
    assert reason == f"{LUN2} is held by P2V-NODE1 (vm-P2V-NODE1) now (no VM when planned)"


def test_a_saved_plan_that_detaches_the_boot_disk_is_refused():
    cluster, world, _ = applied()
    smaller = cab_cluster(sharedDisks={"disks": [cluster.spec.shared_disks.disks[0].model_dump(by_alias=True)]})
    plan = build_plan(smaller, world)
    detach = actions_of(plan, ActionKind.DETACH_DISK)[0]
    boot = detach.before.model_copy(update={"bus": 0, "unit": 0, "file": BOOT})
    forged = plan.model_copy(
        update={"actions": [a if a is not detach else a.model_copy(update={"before": boot}) for a in plan.actions]}
    )
    with pytest.raises(UnprovenDevice, match=r"refusing to apply.*\[MSCS-SAFE-001\]"):
        stale_reasons(forged, world)


class Desired:
    def __init__(self, cluster, path):
        self.cluster, self.path, self.name = cluster, Path(path), cluster.name

    def locate(self, finding):
        return finding.located(str(self.path), None, None)


def test_a_lun_or_a_vm_in_two_clusters_of_a_run_is_refused_in_both_files():
    first = cab_cluster()
    second = cab_cluster(nodes=[{"vm": "SQLNODE2"}, {"vm": "SQLNODE3"}]).model_copy(
        update={"metadata": first.metadata.model_copy(update={"name": "sql-prod-02"})}
    )
    world = with_vm(cab_world(), fresh_vm("SQLNODE3", "esx-a3.lab.local"))
    found = fleet_findings(
        [Desired(first, "a.yaml"), Desired(second, "b.yaml")], {"sql-prod-01": world, "sql-prod-02": world}
    )
    by_rule = {}
    for f in found:
        by_rule.setdefault(f.rule_id, []).append(f)
    assert sorted(by_rule) == ["MSCS-SAFE-004", "MSCS-SAFE-005"]
    assert [f.file for f in by_rule["MSCS-SAFE-004"]] == ["a.yaml", "a.yaml", "b.yaml", "b.yaml"]
    assert "also listed by sql-prod-02 (b.yaml, disk quorum)" in by_rule["MSCS-SAFE-004"][0].message
    [in_a, in_b] = by_rule["MSCS-SAFE-005"]
    assert "VM SQLNODE2 is a node of sql-prod-01 and also of sql-prod-02 (b.yaml)" in in_a.message
    assert in_b.file == "b.yaml" and "also of sql-prod-01 (a.yaml)" in in_b.message
    assert fleet_findings([Desired(first, "a.yaml")], {"sql-prod-01": world}) == []


# --------------------------------------------------------------------------- reading RDMs


def test_an_rdms_lun_is_named_by_its_lun_uuid_not_by_the_device_name_tail():
    controller = vim.vm.device.VirtualLsiLogicSASController(key=1001, busNumber=1, sharedBus="physicalSharing")
    backing = vim.vm.device.VirtualDisk.RawDiskMappingVer1BackingInfo(
        fileName="[SAN-VMFS-01] sql-prod-01/quorum-physical.vmdk",
        deviceName="/vmfs/devices/disks/vml.02000000006006016012345678000000000000a001565241494420",
        lunUuid="02000000006006016012345678000000000000a001565241494420",
        compatibilityMode="physicalMode",
    )
    disk = vim.vm.device.VirtualDisk(key=2016, controllerKey=1001, unitNumber=0, backing=backing, capacityInKB=1)
    controllers = controllers_of([controller])
    [unknown] = disks_of([controller, disk], controllers)
    assert unknown.lun is None  # a vml. name is no canonical name
    [named] = disks_of([controller, disk], controllers, {backing.lunUuid: LUN1})
    assert named.lun == LUN1


def test_former_node_nics_are_only_those_mscsctl_added_where_it_put_them():
    cluster, world, state = replaced_node_two()
    node = world.vms["SQLNODE2"]
    moved = [n if n.network != "Heartbeat" else n.model_copy(update={"network": "Production"}) for n in node.nics]
    world = with_vm(world, node.model_copy(update={"nics": moved}))
    plan = build_plan(cluster, world, managed=state.managed())
    assert [a for a in plan.actions if a.target == "SQLNODE2" and a.kind is ActionKind.REMOVE_NIC] == []
