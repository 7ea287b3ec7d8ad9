"""`mscsctl import`'s pure parts on plan_world's hand-built world: a cluster built by hand becomes a
desired file that reads back as itself and a state under which the plan changes nothing; what the
file format cannot describe is refused, with the reason."""

from __future__ import annotations

import pytest

from reconciler import importer
from reconciler.errors import RuleViolation
from reconciler.importer import (
    ImportRefused,
    ImportRequest,
    adopted_state,
    import_cluster,
    infer_cluster,
    render_desired,
    split_pending,
)
from reconciler.loader import load_text
from reconciler.observed import Observed, ObservedController, ObservedDisk, ObservedNic, ObservedVm, ObservedVmRule
from reconciler.planner import build_plan
from reconciler.rules import run_rules
from reconciler.spec import FailoverCluster, RdmDisk, SharedVmdk, with_defaults
from state.model import State
from tests.unit.plan_world import LUN1, LUN2, cab_world

NOW = "2026-01-01T00:00:00Z"
HASH = "0" * 64
PROCEDURE = {"Disk.ResetOnFailure": 1, "Disk.UseLunReset": 1, "Disk.UseDeviceReset": 0}
RULE = "mscsctl-sql-prod-01"


def rdm(unit: int, lun: str, name: str, *, folder: str = "sql-prod-01", key: int | None = None) -> ObservedDisk:
    return ObservedDisk(
        key=key or 2001 + unit,
        bus=1,
        unit=unit,
        kind="rdm",
        file=f"[SAN-VMFS-01] {folder}/{name}-physical.vmdk",
        lun=lun,
        compatibility="physical",
        size_gb=10,
    )


def vmdk(unit: int, name: str, size_gb: int) -> ObservedDisk:
    file = f"[esx-a1-local] cib-test-01/{name}.vmdk"
    return ObservedDisk(key=2001 + unit, bus=1, unit=unit, kind="vmdk", file=file, size_gb=size_gb, eager_zeroed=True)


def by_hand(vm: ObservedVm, disks: list[ObservedDisk], sharing: str = "physical", **changes: object) -> ObservedVm:
    """What an administrator adds to a fresh VM: a shared controller on bus 1, its disks, a heartbeat NIC."""
    controller = ObservedController(key=1001, bus=1, type="lsilogic-sas", sharing=sharing, pci_slot=224)
    return vm.model_copy(
        update={
            "controllers": {**vm.controllers, 1: controller},
            "disks": {**vm.disks, **{f"{d.bus}:{d.unit}": d for d in disks}},
            "nics": [*vm.nics, ObservedNic(key=4001, adapter="vmxnet3", network="Heartbeat", pci_slot=256)],
            "guest_id": "windows9Server64Guest",
            **changes,
        }
    )


def placed(world: Observed, rule: ObservedVmRule | None, vms: tuple[str, str] = ("SQLNODE1", "SQLNODE2")) -> Observed:
    vc = world.clusters["Cluster-A"]
    vc = vc.model_copy(
        update={
            "drs_overrides": dict.fromkeys(vms, "disabled"),
            "ha_overrides": dict.fromkeys(vms, "disabled"),
            "rules": {rule.name: rule} if rule is not None else {},
        }
    )
    return world.model_copy(update={"clusters": {"Cluster-A": vc}})


def across_boxes(*, reserved: bool = True, rule: str = RULE, node2_disks: list[ObservedDisk] | None = None) -> Observed:
    """SQLNODE1/SQLNODE2 built by hand as the procedure says, RDMs at the cluster's own paths."""
    world = cab_world()
    disks = [rdm(0, LUN1, "quorum"), rdm(1, LUN2, "data")]
    vms = {
        "SQLNODE1": by_hand(world.vms["SQLNODE1"], disks),
        "SQLNODE2": by_hand(world.vms["SQLNODE2"], disks if node2_disks is None else node2_disks),
    }
    hosts = {
        name: h.model_copy(
            update={
                "options": dict(PROCEDURE),
                "luns": {n: lun.model_copy(update={"perennially_reserved": reserved}) for n, lun in h.luns.items()},
            }
        )
        for name, h in world.hosts.items()
    }
    vm_rule = ObservedVmRule(name=rule, key=7, kind="anti-affinity", vms=["SQLNODE1", "SQLNODE2"])
    return placed(world.model_copy(update={"vms": vms, "hosts": hosts}), vm_rule)


def in_a_box() -> Observed:
    world = cab_world()
    disks = [vmdk(0, "quorum", 1), vmdk(1, "data", 2)]
    vms = {
        name: by_hand(
            world.vms["SQLNODE1" if n == 1 else "SQLNODE2"], disks, "virtual", name=name, moref=f"vm-{n}"
        ).model_copy(update={"host": "esx-a1.lab.local"})
        for n, name in ((1, "CIB-NODE1"), (2, "CIB-NODE2"))
    }
    rule = ObservedVmRule(name="mscsctl-cib-test-01", key=8, kind="affinity", vms=["CIB-NODE1", "CIB-NODE2"])
    return placed(world.model_copy(update={"vms": vms}), rule, ("CIB-NODE1", "CIB-NODE2"))


def request(*vms: str, **changes: object) -> ImportRequest:
    return ImportRequest(datacenter="DC1", vms=vms or ("SQLNODE1", "SQLNODE2"), **changes)  # type: ignore[arg-type]


def only_the_vm_host_rule(actions) -> bool:
    """A cluster built by hand has no VM-Host rule; in an HA-enabled vSphere cluster on 6.5+ the
    next plan adds the one VMware asks for (MSCS-PLACE-010), and nothing else."""
    return [(a.kind.value, a.rule) for a in actions] == [("set-vm-host-rule", "MSCS-PLACE-010")]


def adopt(world: Observed, req: ImportRequest) -> tuple[FailoverCluster, object]:
    """The inferred file (as written) and the plan made with the state import records."""
    cluster = infer_cluster(world, req).cluster
    effective = with_defaults(cluster)
    state = adopted_state(effective, world, desired_hash=HASH, now=NOW)
    return cluster, build_plan(effective, world, managed=state.managed())


# --- what import infers ----------------------------------------------------------------------------


def test_a_cluster_across_boxes_built_by_hand_is_described_as_it_is():
    world = across_boxes()
    cluster = infer_cluster(world, request()).cluster
    spec = cluster.spec
    assert cluster.name == "sql-prod-01"  # the folder of the mapping files
    assert (spec.topology.value, spec.guest_os.value) == ("cluster-across-boxes", "windows2016")
    assert spec.vm_names == ["SQLNODE1", "SQLNODE2"]
    assert spec.shared_disks.controller.model_dump(mode="json") == {
        "bus": 1,
        "type": "lsilogic-sas",
        "sharing": "physical",
    }
    assert spec.shared_disks.disks == [
        RdmDisk(name="quorum", lun=LUN1, unit=0, compatibility="physical", mapping_datastore="SAN-VMFS-01"),
        RdmDisk(name="data", lun=LUN2, unit=1, compatibility="physical", mapping_datastore="SAN-VMFS-01"),
    ]
    assert (spec.networks.production.portgroup, spec.networks.heartbeat.portgroup) == ("Production", "Heartbeat")
    assert spec.host_options == PROCEDURE
    assert spec.placement.separate_hosts is True
    assert spec.guest.disk_timeout_seconds == 60


def test_the_written_file_reads_back_as_the_inferred_cluster_and_breaks_no_rule():
    world = across_boxes()
    inferred = infer_cluster(world, request())
    text = render_desired(inferred, file="sql.yaml", now=NOW)
    loaded = load_text(text, "sql.yaml")
    assert loaded.findings == [] and loaded.cluster == inferred.cluster
    assert "# SCSI 1:0 of every node: RDM of naa.6006016012345678000000000000a001, mapping file" in text
    assert "# From config.guestId windows9Server64Guest." in text
    assert all(len(line) <= 100 for line in text.splitlines())
    assert run_rules(inferred.cluster, observed=world) == []


def test_the_state_records_every_object_as_found_and_the_plan_changes_nothing():
    world = across_boxes()
    effective = with_defaults(infer_cluster(world, request()).cluster)
    state = adopted_state(effective, world, desired_hash=HASH, now=NOW)
    assert state.serial == 0 and state.desired_hash == HASH
    assert not any(r.created_by_mscsctl for r in state.resources.values())
    disk = state.get("sql-prod-01/node/SQLNODE2/disk/data")
    assert (disk.kind, disk.vm_moref, disk.device_key, disk.file) == (
        "rdm-disk",
        "vm-SQLNODE2",
        2002,
        "[SAN-VMFS-01] sql-prod-01/data-physical.vmdk",
    )
    assert state.get("sql-prod-01/node/SQLNODE1/controller/1").device_key == 1001
    nic = state.get("sql-prod-01/node/SQLNODE1/nic/heartbeat")
    assert (nic.device_key, nic.pci_slot) == (4001, 256)
    assert state.get("sql-prod-01/host/esx-a2.lab.local/option/Disk.UseDeviceReset").host_moref == "host-esx-a2"
    assert state.get(f"sql-prod-01/host/esx-a3.lab.local/lun/{LUN1}").applied == {"perenniallyReserved": True}
    rule = state.get(f"sql-prod-01/rule/{RULE}")
    assert (rule.rule_key, rule.cluster_moref) == (7, "domain-c1")
    assert state.get("sql-prod-01/node/SQLNODE1/drs").cluster_moref == "domain-c1"
    assert not any("power" in a for a in state.resources)
    plan = build_plan(effective, world, managed=state.managed())
    assert only_the_vm_host_rule(plan.actions) and plan.unmanaged == []


def test_a_cluster_in_a_box_with_shared_vmdks():
    cluster, plan = adopt(in_a_box(), request("CIB-NODE1", "CIB-NODE2"))
    spec = cluster.spec
    assert cluster.name == "cib-test-01" and spec.topology.value == "cluster-in-a-box"
    assert spec.shared_disks.controller.sharing.value == "virtual"
    assert spec.shared_disks.disks == [
        SharedVmdk(name="quorum", size_gb=1, datastore="esx-a1-local", unit=0),
        SharedVmdk(name="data", size_gb=2, datastore="esx-a1-local", unit=1),
    ]
    assert spec.placement.separate_hosts is False
    assert only_the_vm_host_rule(plan.actions)


def test_physical_to_virtual_is_one_vm_and_the_physical_node_named():
    world = placed(across_boxes(), None, ("SQLNODE1",))
    world = world.model_copy(update={"vms": {"SQLNODE1": world.vms["SQLNODE1"]}})
    cluster, plan = adopt(world, request("SQLNODE1", physical="FILESRV1"))
    assert cluster.spec.topology.value == "physical-to-virtual"
    assert cluster.spec.node_names == ["FILESRV1", "SQLNODE1"]
    assert cluster.spec.placement.separate_hosts is None
    assert only_the_vm_host_rule(plan.actions)


def test_what_the_hosts_and_the_vsphere_cluster_lack_is_written_and_left_to_the_next_plan():
    world = across_boxes(reserved=False, rule="sql-keep-apart")
    world = world.model_copy(
        update={
            "hosts": {
                **world.hosts,
                "esx-a2.lab.local": world.hosts["esx-a2.lab.local"].model_copy(
                    update={"options": {**PROCEDURE, "Disk.UseDeviceReset": 1}}
                ),
            }
        }
    )
    inferred = infer_cluster(world, request())
    assert inferred.cluster.spec.host_options == PROCEDURE  # the hosts differ: the procedure's value
    assert any("differ on Disk.UseDeviceReset" in n for n in inferred.notes["spec.hostOptions"])
    assert inferred.cluster.spec.placement.separate_hosts is True  # from the kind of the hand-made rule
    assert any("delete sql-keep-apart by hand" in n for n in inferred.notes["spec.placement"])
    _, plan = adopt(world, request())
    devices, pending = split_pending(plan)
    assert devices == []
    kinds = ["create-rule", "reserve-lun", "set-host-option", "set-vm-host-rule"]
    assert sorted({a.kind.value for a in pending}) == kinds
    assert [str(a.address) for a in pending if a.kind.value == "set-host-option"] == [
        "sql-prod-01/host/esx-a2.lab.local/option/Disk.UseDeviceReset"
    ]


def test_names_that_need_quotes_read_back():
    world = across_boxes()
    odd = {"SQL/NODE 1": world.vms["SQLNODE1"], "yes": world.vms["SQLNODE2"]}
    odd = {name: vm.model_copy(update={"name": name}) for name, vm in odd.items()}
    world = world.model_copy(update={"vms": odd})
    inferred = infer_cluster(world, request("SQL/NODE 1", "yes"))
    text = render_desired(inferred, file="odd.yaml", now=NOW)
    assert '- vm: "SQL/NODE 1"' in text and '- vm: "yes"' in text
    assert load_text(text, "odd.yaml").cluster == inferred.cluster


# --- what import refuses -------------------------------------------------------------------------


def refused(world: Observed, req: ImportRequest | None = None) -> str:
    with pytest.raises(ImportRefused) as caught:
        infer_cluster(world, req or request())
    return str(caught.value)


def test_nodes_whose_shared_disks_differ_are_refused():
    units = refused(across_boxes(node2_disks=[rdm(0, LUN1, "quorum"), rdm(2, LUN2, "data", key=2002)]))
    assert "the nodes' shared disks differ" in units
    assert "SCSI 1:1 is an RDM of naa.6006016012345678000000000000a002" in units and "nothing on SQLNODE2" in units
    files = refused(across_boxes(node2_disks=[rdm(0, LUN1, "quorum"), rdm(1, LUN2, "data", folder="other")]))
    assert "[SAN-VMFS-01] other/data-physical.vmdk) on SQLNODE2" in files


def test_a_shared_disk_on_bus_0_is_refused():
    world = across_boxes()
    disk = rdm(0, LUN1, "quorum").model_copy(update={"bus": 0, "unit": 1})
    vms = {n: vm.model_copy(update={"disks": {**vm.disks, "0:1": disk}}) for n, vm in world.vms.items()}
    assert "a shared disk on bus 0" in refused(world.model_copy(update={"vms": vms}))


def test_more_than_two_nodes_and_a_lone_vm_are_refused():
    assert "mscsctl manages failover pairs" in refused(across_boxes(), request("SQLNODE1", "SQLNODE2", "CIB-NODE1"))
    assert "--physical NAME" in refused(across_boxes(), request("SQLNODE1"))
    assert "not found in datacenter DC1" in refused(across_boxes(), request("SQLNODE1", "NOPE"))


def test_no_shared_disk_is_refused():
    assert "no shared disk" in refused(cab_world())


def test_an_unknown_guest_os_is_refused_naming_its_id():
    world = across_boxes()
    vms = {n: vm.model_copy(update={"guest_id": "windows2022srvNext_64Guest"}) for n, vm in world.vms.items()}
    assert "windows2022srvNext_64Guest" in refused(world.model_copy(update={"vms": vms}))


def test_files_where_the_format_cannot_name_them_are_refused():
    world = across_boxes()
    made_by_vcenter = rdm(0, LUN1, "quorum").model_copy(update={"file": "[SAN-VMFS-01] SQLNODE1/SQLNODE1_1.vmdk"})
    vms = {n: vm.model_copy(update={"disks": {**vm.disks, "1:0": made_by_vcenter}}) for n, vm in world.vms.items()}
    world = world.model_copy(update={"vms": vms})
    message = refused(world, request(name="sql-prod-01"))
    assert "[SAN-VMFS-01] SQLNODE1/SQLNODE1_1.vmdk" in message and "has no field for another path" in message
    assert "has no field for another path" in refused(world)  # no --name: the folder is no cluster name
    wrong_mode = rdm(1, LUN2, "data").model_copy(update={"compatibility": "virtual"})
    vms = {n: vm.model_copy(update={"disks": {**vm.disks, "1:1": wrong_mode}}) for n, vm in across_boxes().vms.items()}
    assert "data-physical.vmdk" in refused(across_boxes().model_copy(update={"vms": vms}))


def test_controllers_or_adapters_that_differ_between_the_nodes_are_refused():
    world = across_boxes()
    node2 = world.vms["SQLNODE2"]
    pvscsi = node2.model_copy(
        update={"controllers": {**node2.controllers, 1: node2.controllers[1].model_copy(update={"type": "pvscsi"})}}
    )
    assert "controllers on bus 1 differ" in refused(world.model_copy(update={"vms": {**world.vms, "SQLNODE2": pvscsi}}))
    e1000 = node2.model_copy(update={"nics": [node2.nics[0], node2.nics[1].model_copy(update={"adapter": "e1000"})]})
    assert "heartbeat adapters on Heartbeat differ" in refused(
        world.model_copy(update={"vms": {**world.vms, "SQLNODE2": e1000}})
    )


# --- the run: the file and the state written, or nothing ----------------------------------------


@pytest.fixture
def vcenter_shows(monkeypatch):
    """`import_cluster` with its one read of vCenter answered by a hand-built world."""

    def answer(world: Observed) -> None:
        monkeypatch.setattr(importer, "_read_vcenter", lambda req, connection: (world, req))

    return answer


def test_the_run_writes_the_file_and_the_state_beside_it_and_refuses_to_overwrite(vcenter_shows, tmp_path):
    vcenter_shows(across_boxes())
    out = tmp_path / "sql.yaml"
    result = import_cluster(request(), out=out, now=NOW)
    assert only_the_vm_host_rule(result.pending) and result.findings == []
    state = State.from_json((tmp_path / ".mscsctl" / "sql-prod-01.state.json").read_text())
    assert (state.serial, state.cluster, len(state.resources)) == (1, "sql-prod-01", result.recorded)
    assert out.stat().st_mode & 0o777 == 0o600
    with pytest.raises(ImportRefused, match="exists already"):
        import_cluster(request(), out=out, now=NOW)
    again = import_cluster(request(), out=out, force=True, now=NOW)
    replaced = State.from_json((tmp_path / ".mscsctl" / "sql-prod-01.state.json").read_text())
    assert (replaced.lineage, replaced.serial, again.recorded) == (state.lineage, 2, result.recorded)


def test_the_run_refuses_a_cluster_that_breaks_a_rule_and_writes_nothing(vcenter_shows, tmp_path):
    world = across_boxes()
    virtual = {
        name: vm.model_copy(
            update={"controllers": {**vm.controllers, 1: vm.controllers[1].model_copy(update={"sharing": "virtual"})}}
        )
        for name, vm in world.vms.items()
    }
    vcenter_shows(world.model_copy(update={"vms": virtual}))  # virtual bus sharing on two hosts
    with pytest.raises(RuleViolation, match="MSCS-DISK-005"):
        import_cluster(request(), out=tmp_path / "sql.yaml", now=NOW)
    assert list(tmp_path.iterdir()) == []
