"""Forbidden settings of the node VMs (MSCS-VM-*): each rule against an observation that breaks
it, the plan refusing with it, drift reporting it with its severity and fix; and the guest OS
check, a warning in the plan and a note in drift."""

from __future__ import annotations

import pytest

from reconciler.drift import DriftSeverity, detect_drift
from reconciler.errors import RuleViolation
from reconciler.findings import Severity
from reconciler.observed import Observed, ObservedController, ObservedDisk
from reconciler.planner import build_plan
from reconciler.rules import get_rule, run_rules
from reconciler.rules.forbidden import GUEST_IDS, forbidden_settings
from reconciler.spec import FailoverCluster
from tests.unit.plan_world import CAB_YAML, LUN1, as_applied, cab_cluster, cab_world, state_after, with_vm

DESIRED = "clusters/sql-prod-01.yaml"


def applied(**spec: object) -> tuple[FailoverCluster, Observed]:
    """The cross-box cluster after its first apply: shared controller and RDMs on both nodes."""
    cluster = cab_cluster(**spec)
    world = cab_world()
    return cluster, as_applied(cluster, world, build_plan(cluster, world))


def changed(world: Observed, vm: str, **fields: object) -> Observed:
    return with_vm(world, world.vms[vm].model_copy(update=fields))


def disk_changed(world: Observed, vm: str, slot: str, **fields: object) -> Observed:
    node = world.vms[vm]
    disks = {**node.disks, slot: node.disks[slot].model_copy(update=fields)}
    return with_vm(world, node.model_copy(update={"disks": disks}))


def ids(findings) -> set[str]:
    return {f.rule_id for f in findings}


def refused(cluster: FailoverCluster, world: Observed) -> set[str]:
    with pytest.raises(RuleViolation) as caught:
        build_plan(cluster, world)
    return ids(caught.value.findings)


def drift(cluster: FailoverCluster, world: Observed):
    state = state_after(cluster, cab_world(), build_plan(cluster, cab_world()))
    return detect_drift(cluster, world, state, desired_file=DESIRED, checked_at="2026-01-02T03:04:05Z")


def test_an_applied_cluster_has_no_forbidden_setting():
    cluster, world = applied()
    assert not ids(run_rules(cluster, observed=world)) & {r for r in ids_of_module()}
    report = drift(cluster, world)
    assert report.findings == [] and report.notes == []
    assert build_plan(cluster, world).actions == []


def ids_of_module() -> set[str]:
    return {f"MSCS-VM-00{n}" for n in range(1, 7)}


def test_vm_001_a_snapshot_of_a_node_stops_the_plan_and_is_critical_drift():
    cluster, world = applied()
    world = changed(world, "SQLNODE2", snapshots=["before-patch", "after-patch"])
    [f] = [f for f in run_rules(cluster, observed=world) if f.rule_id == "MSCS-VM-001"]
    assert f.severity is Severity.ERROR and f.path == ("spec", "nodes", 1, "vm")
    assert "SQLNODE2 has 2 snapshot(s) (before-patch, after-patch)" in f.message
    assert refused(cluster, world) == {"MSCS-VM-001"}
    # A node powered off with a snapshot: the plan that would power it on refuses too.
    off = changed(world, "SQLNODE2", power_state="poweredOff", tools_running=False)
    assert refused(cluster, off) == {"MSCS-VM-001"}
    [d] = drift(cluster, world).findings
    assert str(d.address) == "sql-prod-01/node/SQLNODE2/snapshot"
    assert (d.field, d.observed, d.desired) == ("names", ["before-patch", "after-patch"], "none")
    assert d.severity is DriftSeverity.CRITICAL and d.rule == "MSCS-VM-001"
    assert "Delete All" in d.fix and not d.fix.startswith("mscsctl apply")


def test_vm_001_no_snapshot_read_is_no_finding():
    cluster, world = applied()
    for value in (None, []):
        assert "MSCS-VM-001" not in ids(run_rules(cluster, observed=changed(world, "SQLNODE1", snapshots=value)))


def test_versions_are_those_of_the_guides_found():
    # Snapshot limitations found in the 6.0-7.0 VM administration guides, FT in the 5.0-8.0 WSFC
    # guides, hot-add in the 7.0/8.0 lists, virtual RDM vMotion from 6.0; multi-writer: never.
    assert {r: get_rule(r).versions.text for r in sorted(ids_of_module())} == {
        "MSCS-VM-001": ">= 6.0",
        "MSCS-VM-002": ">= 7.0",
        "MSCS-VM-003": "all",
        "MSCS-VM-004": ">= 5.0",
        "MSCS-VM-005": ">= 6.0",
        "MSCS-VM-006": "all",
    }
    cluster, world = applied()
    snapped = changed(world, "SQLNODE1", snapshots=["old"], fault_tolerance="running")
    assert not ids(run_rules(cluster, observed=snapped, version=(4, 1))) & {"MSCS-VM-001", "MSCS-VM-004"}
    assert {"MSCS-VM-001", "MSCS-VM-004"} <= ids(run_rules(cluster, observed=snapped, version=(6, 0)))


def test_vm_002_cpu_hot_add_from_vsphere_7():
    cluster, world = applied()
    hot = changed(world, "SQLNODE1", cpu_hot_add=True)
    [f] = [f for f in run_rules(cluster, observed=hot) if f.rule_id == "MSCS-VM-002"]
    assert f.path == ("spec", "nodes", 0, "vm") and "CPU hot-add" in f.message
    assert refused(cluster, hot) == {"MSCS-VM-002"}
    [d] = drift(cluster, hot).findings
    assert (str(d.address), d.field, d.observed, d.desired) == ("sql-prod-01/node/SQLNODE1/hotadd", "cpu", True, False)
    assert d.severity is DriftSeverity.WARNING and "CPU Hot Plug" in d.fix and "power SQLNODE1 off" in d.fix
    # The 6.7 guide does not list hot-add: no finding when the file pins 6.7.
    pinned = cab_cluster(vsphereVersion="6.7")
    assert "MSCS-VM-002" not in ids(run_rules(pinned, observed=hot))
    assert get_rule("MSCS-VM-002").versions.text == ">= 7.0"


def test_vm_002_memory_hot_add_too():
    cluster, world = applied()
    hot = changed(world, "SQLNODE2", memory_hot_add=True)
    assert refused(cluster, hot) == {"MSCS-VM-002"}
    [d] = drift(cluster, hot).findings
    assert (str(d.address), d.field) == ("sql-prod-01/node/SQLNODE2/hotadd", "memory")
    assert "Memory Hot Plug" in d.fix
    assert "MSCS-VM-002" not in ids(run_rules(cab_cluster(vsphereVersion="6.7"), observed=hot))
    both = changed(hot, "SQLNODE2", cpu_hot_add=True)
    assert [d.field for d in drift(cluster, both).findings] == ["cpu", "memory"]


def test_vm_003_multi_writer_on_a_clustered_disk_is_critical():
    cluster, world = applied()
    slot = next(s for s, d in world.vms["SQLNODE1"].disks.items() if d.lun == LUN1)
    shared = disk_changed(world, "SQLNODE1", slot, sharing="sharingMultiWriter")
    [f] = [f for f in run_rules(cluster, observed=shared) if f.rule_id == "MSCS-VM-003"]
    assert f.path == ("spec", "sharedDisks", "disks", 0) and "SCSI-3 persistent reservations" in f.message
    assert refused(cluster, shared) == {"MSCS-VM-003"}
    [d] = drift(cluster, shared).findings
    assert str(d.address) == "sql-prod-01/node/SQLNODE1/disk/quorum"
    assert (d.field, d.observed, d.desired) == ("multiWriter", "sharingMultiWriter", "sharingNone")
    assert d.severity is DriftSeverity.CRITICAL and "No sharing" in d.fix


def test_vm_003_multi_writer_off_the_shared_bus_is_not_the_clusters():
    cluster, world = applied()
    boot = disk_changed(world, "SQLNODE1", "0:0", sharing="sharingMultiWriter")
    assert "MSCS-VM-003" not in ids(run_rules(cluster, observed=boot))


def test_vm_004_fault_tolerance_on_a_node():
    cluster, world = applied()
    ft = changed(world, "SQLNODE1", fault_tolerance="running")
    assert refused(cluster, ft) == {"MSCS-VM-004"}
    [d] = drift(cluster, ft).findings
    assert (str(d.address), d.field, d.observed) == ("sql-prod-01/node/SQLNODE1/ft", "state", "running")
    assert "Turn Off Fault Tolerance" in d.fix
    assert "MSCS-VM-004" not in ids(
        run_rules(cluster, observed=changed(world, "SQLNODE1", fault_tolerance="notConfigured"))
    )


def _virtual_rdm(world: Observed, vm: str) -> Observed:
    slot = next(s for s, d in world.vms[vm].disks.items() if d.lun == LUN1)
    return disk_changed(world, vm, slot, compatibility="virtual")


def test_vm_005_a_virtual_rdm_on_a_node_drs_moves():
    cluster, world = applied()
    moved = _virtual_rdm(world, "SQLNODE1")
    vc = moved.clusters["Cluster-A"]
    assert vc.drs_enabled and vc.drs_overrides["SQLNODE1"] == "disabled"
    # The override apply set keeps DRS from moving it: nothing to say.
    assert "MSCS-VM-005" not in ids(run_rules(cluster, observed=moved))
    assert not [s for s in forbidden_settings(cluster, moved, (8, 0)) if s.rule_id == "MSCS-VM-005"]
    # The override changed to fully automated by hand: drift says so.
    auto = moved.model_copy(
        update={
            "clusters": {
                "Cluster-A": vc.model_copy(update={"drs_overrides": {**vc.drs_overrides, "SQLNODE1": "fullyAutomated"}})
            }
        }
    )
    [d] = [f for f in drift(cluster, auto).findings if f.rule == "MSCS-VM-005"]
    assert (str(d.address), d.field) == ("sql-prod-01/node/SQLNODE1/disk/quorum", "compatibility")
    assert "fullyAutomated" in d.observed and "placement.drs" in d.fix
    # No override at all: the vSphere cluster's default behaviour decides.
    bare = moved.model_copy(update={"clusters": {"Cluster-A": vc.model_copy(update={"drs_overrides": {}})}})
    assert [s.vm for s in forbidden_settings(cluster, bare, (8, 0)) if s.rule_id == "MSCS-VM-005"] == ["SQLNODE1"]
    manual = bare.model_copy(
        update={
            "clusters": {"Cluster-A": bare.clusters["Cluster-A"].model_copy(update={"drs_default_behavior": "manual"})}
        }
    )
    # Manual still lets DRS move the node (an administrator applies its recommendations).
    assert [s.vm for s in forbidden_settings(cluster, manual, (8, 0)) if s.rule_id == "MSCS-VM-005"] == ["SQLNODE1"]
    off = moved.model_copy(update={"clusters": {"Cluster-A": vc.model_copy(update={"drs_enabled": False})}})
    assert not [s for s in forbidden_settings(cluster, off, (8, 0)) if s.rule_id == "MSCS-VM-005"]


def test_vm_005_the_plan_judges_by_the_drs_level_the_file_sets():
    world = _virtual_rdm(applied()[1], "SQLNODE2")
    for drs in ("fullyAutomated", "partiallyAutomated", "manual"):
        cluster = cab_cluster(placement={"drs": drs})
        [f] = [f for f in run_rules(cluster, observed=world) if f.rule_id == "MSCS-VM-005"]
        assert f.path == ("spec", "placement", "drs") and "SQLNODE2" in f.message and drs in f.message
    assert "MSCS-VM-005" not in ids(run_rules(cab_cluster(), observed=world))  # drs: disabled
    assert "MSCS-VM-005" not in ids(run_rules(cab_cluster(placement={"drs": "manual"}), observed=world, version=(5, 5)))


def test_vm_005_leaves_the_virtual_rdms_the_file_asks_for_to_place_008():
    disks = [dict(d) for d in CAB_YAML["spec"]["sharedDisks"]["disks"]]
    disks[0]["compatibility"] = "virtual"
    cluster = cab_cluster(guestOS="windows2003", placement={"drs": "manual"}, sharedDisks={"disks": disks})
    world = _virtual_rdm(applied()[1], "SQLNODE2")
    assert "MSCS-VM-005" not in ids(run_rules(cluster, observed=world))
    assert "MSCS-PLACE-008" in ids(run_rules(cluster, observed=world))


def test_vm_006_guest_os_mismatch_is_a_plan_warning_and_a_drift_note():
    cluster, world = applied()
    old = changed(world, "SQLNODE1", guest_id="windows8Server64Guest", guest_full_name="")
    [f] = [f for f in run_rules(cluster, observed=old) if f.rule_id == "MSCS-VM-006"]
    assert f.severity is Severity.WARNING and f.path == ("spec", "guestOS")
    assert "SQLNODE1: config.guestId windows8Server64Guest, not windows2016" in f.message
    plan = build_plan(cluster, old)  # a warning: the plan stands
    assert plan.actions == [] and ids(plan.findings) == {"MSCS-VM-006"}
    report = drift(cluster, old)
    assert report.findings == []
    [note] = report.notes
    assert "windows8Server64Guest" in note and "[MSCS-VM-006]" in note


def test_vm_006_what_the_tools_report_counts_too():
    cluster, world = applied()
    tools = changed(world, "SQLNODE2", guest_full_name="Microsoft Windows Server 2012 (64-bit)")
    [f] = [f for f in run_rules(cluster, observed=tools) if f.rule_id == "MSCS-VM-006"]
    assert "VMware Tools report Microsoft Windows Server 2012 (64-bit)" in f.message
    fine = changed(world, "SQLNODE2", guest_full_name="Microsoft Windows Server 2016 (64-bit)")
    assert "MSCS-VM-006" not in ids(run_rules(cluster, observed=fine))


@pytest.mark.parametrize(
    ("guest_os", "guest_id", "matches"),
    [
        ("windows2016", "windows9Server64Guest", True),
        ("windows2019", "windows2019srv_64Guest", True),
        ("windows2019", "windows9Server64Guest", True),  # "2016 or later", from before vSphere 7.0
        ("windows2022", "windows2019srvNext_64Guest", True),
        ("windows2019", "windows8Server64Guest", False),
        ("windows2016", "windows2019srv_64Guest", False),
        ("windows2022", "windows2019srv_64Guest", False),
        ("windows2012", "windows8Server64Guest", True),
        ("windows2008", "windows7Server64Guest", True),
        ("windows2003", "winNetEnterprise64Guest", True),
        ("windows2019", "otherGuest64", False),
    ],
)
def test_vm_006_guest_ids_of_each_release(guest_os, guest_id, matches):
    cluster = cab_cluster(guestOS=guest_os)
    world = applied()[1]
    for vm in ("SQLNODE1", "SQLNODE2"):
        world = changed(world, vm, guest_id=guest_id)
    found = [f for f in run_rules(cluster, observed=world) if f.rule_id == "MSCS-VM-006"]
    assert (not found) is matches


def test_guest_ids_are_ids_pyvmomi_knows():
    from pyVmomi import vim

    known = set(vim.vm.GuestOsDescriptor.GuestOsIdentifier.values)
    assert set().union(*GUEST_IDS.values()) <= known


def test_vm_003_multi_writer_on_a_clustered_vmdk_of_a_shared_nvme_controller():
    cluster = cab_cluster(
        guestOS="windows2022",
        sharedDisks={
            "controller": {"bus": 1, "type": "nvme"},
            "disks": [{"name": "quorum", "type": "clusteredVmdk", "sizeGB": 1, "datastore": "CVMDK-01", "unit": 0}],
        },
    )
    world = cab_world()
    node = world.vms["SQLNODE1"]
    nvme = ObservedController(key=31000, bus=1, type="nvme", sharing="physical")
    disk = ObservedDisk(
        key=32000, bus=1, unit=0, kind="vmdk", file="[CVMDK-01] sql-prod-01/quorum.vmdk", adapter="nvme"
    )
    shared = disk.model_copy(update={"sharing": "sharingMultiWriter"})
    for candidate, found in ((disk, []), (shared, ["quorum"])):
        vm = node.model_copy(update={"nvme_controllers": {1: nvme}, "disks": {**node.disks, candidate.slot: candidate}})
        settings = forbidden_settings(cluster, with_vm(world, vm), (8, 0))
        assert [s.name for s in settings if s.rule_id == "MSCS-VM-003"] == found
    # The same disk on an unshared controller is not the cluster's.
    alone = node.model_copy(
        update={
            "nvme_controllers": {1: nvme.model_copy(update={"sharing": "none"})},
            "disks": {**node.disks, shared.slot: shared},
        }
    )
    assert not [s for s in forbidden_settings(cluster, with_vm(world, alone), (8, 0)) if s.rule_id == "MSCS-VM-003"]


def test_observe_reads_a_snapshot_tree_depth_first_and_the_switches_as_set():
    from pyVmomi import vim

    from providers.vcenter.observe import NODE_VM_PATHS, VM_PATHS, node_settings

    def tree(name, *children):
        return vim.vm.SnapshotTree(name=name, childSnapshotList=list(children))

    info = vim.vm.SnapshotInfo(rootSnapshotList=[tree("a", tree("a1", tree("a1x")), tree("a2")), tree("b")])
    props = {"snapshot": info, "config.cpuHotAddEnabled": True, "runtime.faultToleranceState": "running"}
    assert node_settings(props) == {
        "guest_full_name": "",
        "snapshots": ["a", "a1", "a1x", "a2", "b"],
        "cpu_hot_add": True,
        "memory_hot_add": False,  # unset in vCenter: off
        "fault_tolerance": "running",
    }
    assert node_settings({})["snapshots"] == [] and node_settings({})["fault_tolerance"] == "notConfigured"
    # What the node VMs are read for beyond VM_PATHS, the paths the VMs around them are read for.
    assert set(NODE_VM_PATHS) - set(VM_PATHS) == {
        "snapshot",
        "config.cpuHotAddEnabled",
        "config.memoryHotAddEnabled",
        "runtime.faultToleranceState",
        "guest.guestFullName",
    }
