"""Clustered VMDKs and the NVMe controller: the rules against hand-built vCenter worlds, and the
plan a three-node cluster gets (datastore support first, node 1 creates, the others attach).

The file-only rules (MSCS-DISK-101..106) have their failing files in `rules_cases/`; each
vCenter-side rule (MSCS-STOR-101..107) fails here on the example it concerns and is silent on
the world that qualifies.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from reconciler.drift import detect_drift
from reconciler.findings import Severity
from reconciler.kinds import ActionKind
from reconciler.loader import load_file, load_text
from reconciler.observed import Observed, ObservedDatastore, ObservedDisk, ObservedHost, ObservedLun, ObservedVm
from reconciler.planner import build_plan, refuse_unproven_detaches
from reconciler.rules import run_rules
from reconciler.spec import with_defaults
from tests.unit.plan_world import as_applied, cab_world, fresh_vm, host

ROOT = Path(__file__).resolve().parents[2]
THREE = ROOT / "examples" / "three-node.yaml"
VSPHERE8 = ROOT / "examples" / "vsphere8-clustered-vmdk.yaml"
LUN_CV = "naa.6006016012345678000000000000c001"
LUN_ISCSI = "naa.6001405aaaaaaaaaaaaaaaaaaaaaa001"
HOSTS = ("esx-a1.lab.local", "esx-a2.lab.local", "esx-a3.lab.local")
NODES = ("WSFC-NODE1", "WSFC-NODE2", "WSFC-NODE3")


def cv_host(name: str, version: str = "8.0.2", transport: str = "fc") -> ObservedHost:
    base = host(name, luns=[], version=version)
    luns = {
        LUN_CV: ObservedLun(canonical_name=LUN_CV, uuid="02c001", transport=transport),
        LUN_ISCSI: ObservedLun(canonical_name=LUN_ISCSI, uuid="02i001", transport="iscsi"),
    }
    return base.model_copy(
        update={"luns": luns, "datastores": ["CVMDK-01", "ISCSI-VMFS-01"], "datastore_system": f"dss-{name[:6]}"}
    )


def cv_datastore(**changes: object) -> ObservedDatastore:
    fields: dict[str, object] = {
        "name": "CVMDK-01",
        "moref": "datastore-10",
        "type": "VMFS",
        "extents": [LUN_CV],
        "hosts": list(HOSTS),
        "clustered_vmdk_supported": False,
        "vmfs_major_version": 6,
        "scsi_disk_type": "native512",
        "host_versions": dict.fromkeys(HOSTS, "8.0.2"),
    }
    return ObservedDatastore(**(fields | changes))


def cv_world(
    *, version: str = "8.0.2", datastore: ObservedDatastore | None = None, **more: ObservedDatastore
) -> Observed:
    world = cab_world()
    hosts = {h: cv_host(h, version) for h in HOSTS}
    vms = {
        n: fresh_vm(n, h).model_copy(update={"hardware_version": "vmx-21", "guest_id": "windows2019srvNext_64Guest"})
        for n, h in zip(NODES, HOSTS, strict=True)
    }
    ds = datastore or cv_datastore()
    datastores = {**world.datastores, ds.name: ds, **more}
    return world.model_copy(update={"hosts": hosts, "vms": vms, "datastores": datastores})


def findings(path: Path, observed: Observed, text: str | None = None):
    loaded = load_text(text, str(path)) if text is not None else load_file(path)
    assert loaded.cluster is not None, loaded.findings
    return loaded.place(run_rules(loaded.cluster, observed=observed))


def errors(found) -> list[str]:
    return sorted({f.rule_id for f in found if f.severity is Severity.ERROR})


def line_of(path: Path, needle: str) -> int:
    return next(i for i, t in enumerate(path.read_text().splitlines(), start=1) if needle in t)


def test_the_three_node_example_passes_every_rule_on_a_qualifying_world():
    found = findings(THREE, cv_world())
    assert errors(found) == [], [str(f) for f in found]
    assert [f.rule_id for f in found if f.severity is Severity.WARNING] == ["MSCS-DISK-102"]


def test_stor_101_vmfs5_and_spanned_datastores():
    found = findings(THREE, cv_world(datastore=cv_datastore(vmfs_major_version=5)))
    assert errors(found) == ["MSCS-STOR-101"]
    [hit] = [f for f in found if f.rule_id == "MSCS-STOR-101"]
    assert "VMFS5" in hit.message and hit.line == line_of(THREE, "datastore: CVMDK-01")
    spanned = cv_datastore(extents=[LUN_CV, "naa.6006016012345678000000000000c009"])
    assert errors(findings(THREE, cv_world(datastore=spanned))) == ["MSCS-STOR-101"]


def test_stor_102_an_iscsi_datastore_is_refused():
    text = THREE.read_text().replace("datastore: CVMDK-01", "datastore: ISCSI-VMFS-01")
    iscsi = cv_datastore(name="ISCSI-VMFS-01", moref="datastore-11", extents=[LUN_ISCSI])
    found = findings(THREE, cv_world(**{"ISCSI-VMFS-01": iscsi}), text=text)
    assert errors(found) == ["MSCS-STOR-102"]
    assert all("iscsi" in f.message for f in found if f.rule_id == "MSCS-STOR-102")


def test_stor_103_a_4kn_datastore():
    found = findings(THREE, cv_world(datastore=cv_datastore(scsi_disk_type="native4k")))
    assert errors(found) == ["MSCS-STOR-103"]


def test_stor_104_another_datastore_on_the_same_lun():
    twin = cv_datastore(name="OTHER-01", moref="datastore-12")
    found = findings(THREE, cv_world(**{"OTHER-01": twin}))
    assert errors(found) == ["MSCS-STOR-104"]
    assert any("OTHER-01" in f.message for f in found)


def test_stor_105_support_that_cannot_be_turned_on():
    unknown = cv_datastore(clustered_vmdk_supported=None)
    assert errors(findings(THREE, cv_world(datastore=unknown))) == ["MSCS-STOR-105"]
    nowhere = cv_datastore(hosts=["esx-z9.lab.local"], host_versions={"esx-z9.lab.local": "8.0.2"})
    assert errors(findings(THREE, cv_world(datastore=nowhere))) == ["MSCS-STOR-105"]
    # Off but enable-able: no finding, the plan enables it.
    assert errors(findings(THREE, cv_world())) == []


def test_stor_106_the_lun_seen_by_a_host_before_seven():
    old = cv_datastore(host_versions={**dict.fromkeys(HOSTS, "8.0.2"), "esx-l1.lab.local": "6.7.0"})
    found = findings(THREE, cv_world(datastore=old))
    assert errors(found) == ["MSCS-STOR-106"]
    assert any("esx-l1.lab.local (6.7.0)" in f.message for f in found)


def test_stor_107_an_existing_clustered_vmdk_that_is_thin():
    world = cv_world()
    thin = ObservedDisk(
        key=2001,
        bus=1,
        unit=0,
        kind="vmdk",
        file="[CVMDK-01] sql-three-01/quorum.vmdk",
        size_gb=1,
        thin=True,
        adapter="nvme",
    )
    node = world.vms["WSFC-NODE1"]
    world = world.model_copy(
        update={"vms": {**world.vms, "WSFC-NODE1": node.model_copy(update={"disks": {**node.disks, thin.slot: thin}})}}
    )
    found = findings(THREE, world)
    assert "MSCS-STOR-107" in errors(found)
    assert any("thin" in f.message for f in found if f.rule_id == "MSCS-STOR-107")


def test_the_same_file_against_seven_hosts_is_refused_with_the_nvme_rule():
    found = findings(THREE, cv_world(version="7.0.3"))
    assert errors(found) == ["MSCS-DISK-103"]


@pytest.mark.parametrize("pinned,expected", [("8.0.1", ["MSCS-DISK-103"]), ("8.0.2", []), ("8.0.3", [])])
def test_nvme_needs_eight_update_two(pinned, expected):
    text = VSPHERE8.read_text().replace('vsphereVersion: "8.0.2"', f'vsphereVersion: "{pinned}"')
    loaded = load_text(text, "v8.yaml")
    assert loaded.cluster is not None
    assert errors(run_rules(loaded.cluster)) == expected


# --------------------------------------------------------------------------- the plan


def three_node():
    loaded = load_file(THREE)
    assert loaded.cluster is not None
    return with_defaults(loaded.cluster)


def test_a_three_node_plan_enables_the_datastore_first_then_rolls_one_node_at_a_time():
    cluster, world = three_node(), cv_world()
    plan = build_plan(cluster, world)
    kinds = [(a.kind, a.target) for a in plan.actions]
    enable = kinds.index((ActionKind.ENABLE_CLUSTERED_VMDK, "CVMDK-01"))
    first_disk = next(i for i, (k, _) in enumerate(kinds) if k in (ActionKind.CREATE_DISK, ActionKind.ATTACH_DISK))
    assert enable < first_disk
    # Node 1 creates both files; nodes 2 and 3 attach them, at the same NVMe slots.
    creates = [a for a in plan.actions if a.kind is ActionKind.CREATE_DISK]
    attaches = [a for a in plan.actions if a.kind is ActionKind.ATTACH_DISK]
    assert {a.target for a in creates} == {"WSFC-NODE1"}
    assert sorted(a.target for a in attaches) == ["WSFC-NODE2", "WSFC-NODE2", "WSFC-NODE3", "WSFC-NODE3"]
    assert {(a.after.slot, a.after.file) for a in attaches} == {(a.after.slot, a.after.file) for a in creates}
    assert {a.after.slot for a in creates} == {"nvme1:0", "nvme1:1"}
    # Each attach waits for its creator; each node is powered off only after the previous one is back.
    ids = {a.id for a in creates}
    assert all(set(a.depends_on) & ids for a in attaches)
    power = [(a.kind, a.target) for a in plan.actions if a.kind in (ActionKind.POWER_OFF, ActionKind.POWER_ON)]
    assert power == [(k, n) for n in NODES for k in (ActionKind.POWER_OFF, ActionKind.POWER_ON)]
    by_id = {a.id: a for a in plan.actions}
    for previous, node in itertools.pairwise(NODES):
        off = next(a for a in plan.actions if a.kind is ActionKind.POWER_OFF and a.target == node)
        back = next(a for a in plan.actions if a.kind is ActionKind.POWER_ON and a.target == previous)
        assert back.id in off.depends_on, (off.depends_on, by_id.keys())
    controllers = [a for a in plan.actions if a.kind is ActionKind.ADD_CONTROLLER]
    assert [(a.target, a.after.type, a.after.sharing) for a in controllers] == [(n, "nvme", "physical") for n in NODES]


def test_the_vm_rule_covers_every_node():
    plan = build_plan(three_node(), cv_world())
    [rule] = [a for a in plan.actions if a.kind is ActionKind.CREATE_RULE]
    assert rule.after.vms == sorted(NODES)


def test_an_enabled_datastore_is_not_enabled_again():
    world = cv_world(datastore=cv_datastore(clustered_vmdk_supported=True))
    plan = build_plan(three_node(), world)
    assert not [a for a in plan.actions if a.kind is ActionKind.ENABLE_CLUSTERED_VMDK]


def test_after_apply_the_plan_has_no_disk_changes_on_nvme():
    cluster, world = three_node(), cv_world()
    plan = build_plan(cluster, world)
    after = nvme_applied(as_applied(cluster, world, plan), plan)
    again = build_plan(cluster, after)
    assert [a for a in again.actions if a.kind in (ActionKind.CREATE_DISK, ActionKind.ATTACH_DISK)] == []
    assert [a for a in again.actions if a.kind is ActionKind.ADD_CONTROLLER] == []


def nvme_applied(world: Observed, plan) -> Observed:
    """`as_applied` knows SCSI only: move what the plan put on bus 1 onto NVMe controller 1."""
    vms: dict[str, ObservedVm] = {}
    for name, vm in world.vms.items():
        if name not in NODES:
            vms[name] = vm
            continue
        controllers = dict(vm.controllers)
        nvme = {1: controllers.pop(1)} if 1 in controllers else {}
        disks = {}
        for d in vm.disks.values():
            moved = d.model_copy(update={"adapter": "nvme", "eager_zeroed": True, "thin": False}) if d.bus == 1 else d
            disks[moved.slot] = moved
        vms[name] = vm.model_copy(update={"controllers": controllers, "nvme_controllers": nvme, "disks": disks})
    ds = world.datastores["CVMDK-01"].model_copy(update={"clustered_vmdk_supported": True})
    return world.model_copy(update={"vms": vms, "datastores": {**world.datastores, "CVMDK-01": ds}})


def test_a_clustered_vmdk_dropped_from_the_file_is_detached_from_every_node_at_its_nvme_slot():
    cluster, world = three_node(), cv_world()
    plan = build_plan(cluster, world)
    after = nvme_applied(as_applied(cluster, world, plan), plan)
    doc = load_file(THREE)
    assert doc.cluster is not None
    spec = doc.cluster.spec
    fewer = doc.cluster.model_copy(
        update={
            "spec": spec.model_copy(
                update={"shared_disks": spec.shared_disks.model_copy(update={"disks": spec.shared_disks.disks[:1]})}
            )
        }
    )
    again = build_plan(with_defaults(fewer), after)
    detaches = [a for a in again.actions if a.kind is ActionKind.DETACH_DISK]
    assert sorted(a.target for a in detaches) == list(NODES)
    assert {a.before.slot for a in detaches} == {"nvme1:1"}
    refuse_unproven_detaches(again, after)  # vCenter shows each one as the cluster's own: no refusal


def test_support_turned_off_by_hand_is_critical_drift():
    cluster, world = three_node(), cv_world()
    plan = build_plan(cluster, world)
    after = nvme_applied(as_applied(cluster, world, plan), plan)
    clean = detect_drift(cluster, after, None, desired_file="three-node.yaml", checked_at="now")
    assert [f for f in clean.findings if "datastore" in str(f.address)] == []
    off = after.datastores["CVMDK-01"].model_copy(update={"clustered_vmdk_supported": False})
    drifted = after.model_copy(update={"datastores": {**after.datastores, "CVMDK-01": off}})
    report = detect_drift(cluster, drifted, None, desired_file="three-node.yaml", checked_at="now")
    [finding] = [f for f in report.findings if str(f.address) == "sql-three-01/datastore/CVMDK-01"]
    assert finding.severity == "critical"


def test_disk_107_a_shared_nvme_controller_on_hardware_before_21():
    world = cv_world()
    old = world.vms["WSFC-NODE2"].model_copy(update={"hardware_version": "vmx-19"})
    found = findings(THREE, world.model_copy(update={"vms": {**world.vms, "WSFC-NODE2": old}}))
    assert errors(found) == ["MSCS-DISK-107"]
    [hit] = [f for f in found if f.rule_id == "MSCS-DISK-107"]
    assert hit.line == line_of(THREE, "- vm: WSFC-NODE2") and "hardware 19" in hit.message


# --------------------------------------------------------------------------- several shared controllers


def many_disks(count: int) -> str:
    """The three-node example with `count` clustered VMDKs and no units: the defaults place them."""
    doc = THREE.read_text().split("    disks:\n")[0] + "    disks:\n"
    for n in range(count):
        doc += f"      - {{name: d{n}, type: clusteredVmdk, sizeGB: 1, datastore: CVMDK-01}}\n"
    rest = THREE.read_text().split("  networks:\n")[1]
    doc += "\n  networks:\n" + rest
    return doc


def test_disks_that_fill_a_controller_spill_onto_a_second_one_on_every_node():
    loaded = load_text(many_disks(66), "many.yaml")
    assert loaded.cluster is not None
    cluster = with_defaults(loaded.cluster)
    placed = [(d.bus, d.unit) for d in cluster.spec.shared_disks.disks]
    assert placed[62] == (1, 63) and placed[63] == (2, 0) and placed[65] == (2, 2)  # NVMe: 0-63 but 7
    assert cluster.spec.shared_buses == [1, 2]
    assert errors(run_rules(loaded.cluster, observed=cv_world())) == []
    plan = build_plan(cluster, cv_world())
    added = sorted((a.target, a.address.name) for a in plan.actions if a.kind is ActionKind.ADD_CONTROLLER)
    assert added == [(n, bus) for n in NODES for bus in ("1", "2")]
    on_two = {a.after.slot for a in plan.actions if a.kind is ActionKind.CREATE_DISK and a.after.bus == 2}
    assert on_two == {"nvme2:0", "nvme2:1", "nvme2:2"}
    # The second controller joins the first one's reconfigure, before the disks on it.
    first = [a.kind for a in plan.actions if a.target == "WSFC-NODE1" and a.batch == "WSFC-NODE1/devices"]
    assert first[:2] == [ActionKind.ADD_CONTROLLER, ActionKind.ADD_CONTROLLER]


def test_the_same_unit_on_two_buses_is_two_disks_and_bus_zero_is_refused():
    text = THREE.read_text().replace("        unit: 1\n", "        unit: 0\n        bus: 2\n", 1)
    loaded = load_text(text, "two-buses.yaml")
    assert loaded.cluster is not None
    assert errors(run_rules(loaded.cluster, observed=cv_world())) == []
    plan = build_plan(with_defaults(loaded.cluster), cv_world())
    assert {a.after.slot for a in plan.actions if a.kind is ActionKind.CREATE_DISK} == {"nvme1:0", "nvme2:0"}
    zero = THREE.read_text().replace("        unit: 1\n", "        unit: 1\n        bus: 0\n", 1)
    found = findings(THREE, cv_world(), text=zero)
    assert errors(found) == ["MSCS-DISK-002"]
    assert [f.line for f in found if f.rule_id == "MSCS-DISK-002"] == [line_of(THREE, "unit: 1") + 1]


def test_stor_108_a_clustered_vmdk_written_bigger_is_refused_not_replaced():
    cluster, world = three_node(), cv_world()
    after = nvme_applied(as_applied(cluster, world, build_plan(cluster, world)), None)
    bigger = THREE.read_text().replace("sizeGB: 20", "sizeGB: 30")
    found = findings(THREE, after, text=bigger)
    assert errors(found) == ["MSCS-STOR-108"]
    [hit] = [f for f in found if f.rule_id == "MSCS-STOR-108"]
    assert hit.line == line_of(THREE, "sizeGB: 20") and "is 20 GiB" in hit.message and "sizeGB: 20" in hit.message
    assert errors(findings(THREE, after)) == []


def test_the_topology_graph_names_nvme_controllers_and_slots():
    from reconciler.topology import ClusterView, topology_graph

    cluster, world = three_node(), cv_world()
    after = nvme_applied(as_applied(cluster, world, build_plan(cluster, world)), None)
    text = topology_graph(ClusterView(cluster, after), "mermaid")
    assert "NVMe controller 1<br/>nvme, bus sharing physical" in text
    assert "NVMe 1:1, shared VMDK 20 GB" in text and "SCSI 1:" not in text


@pytest.mark.parametrize("api,asked", [("6.7.3", False), ("7.0.0.0", True), ("8.0.2.0", True), ("", False)])
def test_the_capability_is_asked_only_of_a_vcenter_that_has_it(api, asked):
    from types import SimpleNamespace

    from providers.vcenter.observe import _api_at_least

    assert _api_at_least(SimpleNamespace(about=SimpleNamespace(apiVersion=api)), (7, 0)) is asked


def test_import_writes_a_cross_box_shared_vmdk_as_a_clustered_vmdk():
    from reconciler.importer import ImportRequest, infer_cluster
    from reconciler.spec import ClusteredVmdk
    from tests.unit.test_importer import by_hand

    world = cv_world(datastore=cv_datastore(clustered_vmdk_supported=True))
    disks = [
        ObservedDisk(key=2001 + u, bus=1, unit=u, kind="vmdk", file=f"[CVMDK-01] sql-three-01/{n}.vmdk", size_gb=s)
        for u, n, s in ((0, "quorum", 1), (1, "data", 20))
    ]
    pair = NODES[:2]  # import takes failover pairs
    vms = {name: by_hand(vm, disks) if name in pair else vm for name, vm in world.vms.items() if name != NODES[2]}
    inferred = infer_cluster(world.model_copy(update={"vms": vms}), ImportRequest(datacenter="DC1", vms=pair))
    assert inferred.cluster.spec.topology.value == "cluster-across-boxes"
    assert inferred.cluster.spec.shared_disks.disks == [
        ClusteredVmdk(name="quorum", type="clusteredVmdk", size_gb=1, datastore="CVMDK-01", unit=0),
        ClusteredVmdk(name="data", type="clusteredVmdk", size_gb=20, datastore="CVMDK-01", unit=1),
    ]
