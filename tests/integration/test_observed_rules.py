"""Each rule that needs what vCenter shows, against a lab world that breaks it.

`apply` must stop with the rule's ID, located in the desired file, before any change: the
lab's call counters show that no method that changes anything was called.
"""

from __future__ import annotations

import re

import pytest

from tests.integration.cli import default_lab, example, run

MUTATING = (
    "ReconfigVM_Task",
    "PowerOffVM_Task",
    "PowerOnVM_Task",
    "ShutdownGuest",
    "UpdateOptions",
    "ReconfigureComputeResource_Task",
    "MarkPerenniallyReserved",
    "MarkPerenniallyReservedEx_Task",
)
A000 = "naa.6006016012345678000000000000a000"  # backs SAN-VMFS-01
A001 = "naa.6006016012345678000000000000a001"
A002 = "naa.6006016012345678000000000000a002"
B_ONLY = "naa.60060160123456780000000000000b01"  # seen by esx-b1 only
ISCSI_LUN = "naa.6001405bbbbbbbbbbbbbbbbbbbbbb002"


def disks(*luns: str, datastore: str = "SAN-VMFS-01") -> dict:
    return {
        "disks": [{"name": f"d{n}", "lun": lun, "unit": n, "mappingDatastore": datastore} for n, lun in enumerate(luns)]
    }


def lab_with(**changes):
    doc = default_lab()
    for fn in changes.values():
        fn(doc)
    return doc


def set_host(name, **fields):
    def apply(doc):
        for cluster in doc["clusters"]:
            for host in cluster["hosts"]:
                if host["name"] == name:
                    host.update(fields)

    return apply


def set_cluster_hosts(cluster_name, **fields):
    def apply(doc):
        for cluster in doc["clusters"]:
            if cluster["name"] == cluster_name:
                for host in cluster["hosts"]:
                    host.update(fields)

    return apply


def add_iscsi_lun(doc):
    doc["luns"].append(
        {
            "naa": ISCSI_LUN,
            "capacityGiB": 10,
            "vendor": "LIO-ORG",
            "model": "san01-lun2",
            "transport": "iscsi",
            "clusters": ["Cluster-B"],
        }
    )


B_NODES = [{"vm": "B-NODE1"}, {"vm": "B-NODE2"}]
CASES = {
    "MSCS-STOR-001": (None, {"sharedDisks": disks(A000, A001)}),
    "MSCS-STOR-002": (None, {"sharedDisks": disks(A001, A002, datastore="NFS-01")}),
    "MSCS-STOR-003": (
        lab_with(v=set_cluster_hosts("Cluster-B", version="5.1.0"), lun=add_iscsi_lun),
        {"nodes": B_NODES, "guestOS": "windows2008", "sharedDisks": disks(ISCSI_LUN, datastore="ISCSI-01")},
    ),
    "MSCS-STOR-004": (None, {"nodes": B_NODES, "sharedDisks": disks(B_ONLY, datastore="ISCSI-01")}),
    "MSCS-HOST-003": (lab_with(h=set_host("esx-a2.lab.local", version="7.0.3")), {}),
    "MSCS-INV-001": (None, {"nodes": [{"vm": "SQLNODE1"}, {"vm": "NO-SUCH-VM"}]}),
    "MSCS-INV-002": (
        None,
        {"networks": {"production": {"portgroup": "Production"}, "heartbeat": {"portgroup": "NoSuchPortgroup"}}},
    ),
    "MSCS-INV-003": (None, {"sharedDisks": disks(A001, A002, datastore="NO-SUCH-DS")}),
    "MSCS-PLACE-005": (None, {"nodes": [{"vm": "CIB-NODE1"}, {"vm": "CIB-NODE2"}]}),
    "MSCS-PLACE-006": (
        lab_with(v=set_cluster_hosts("Cluster-A", version="4.0.0")),  # HA/DRS from the 4.1 guide on
        {"guestOS": "windows2008", "placement": {"drs": "disabled", "ha": "disabled"}},
    ),
}


@pytest.mark.parametrize("rule_id", sorted(CASES))
def test_observed_rule_stops_apply_before_any_change(lab_factory, tmp_path, rule_id):
    world, spec_changes = CASES[rule_id]
    lab = lab_factory(world)
    desired = example("cluster-across-boxes", tmp_path, **spec_changes)
    lab.reset_calls()
    result = run(lab, "apply", str(desired), "--auto-approve")
    assert result.code == 1, result
    assert f"[{rule_id}]" in result.err, result
    located = [line for line in result.err.splitlines() if f"[{rule_id}]" in line]
    assert re.match(rf"^(Error: )?{re.escape(str(desired))}:\d+:\d+: spec\.", located[0].strip()), located
    assert "Traceback" not in result.err
    calls = lab.calls()
    assert {m: calls[m] for m in MUTATING if calls.get(m)} == {}
    assert not (tmp_path / ".mscsctl" / "sql-prod-01.state.json").exists()


def test_a_qlogic_and_emulex_mix_is_a_warning_that_does_not_stop_the_plan(lab_factory, tmp_path):
    """MSCS-HOST-002 comes from the vSphere 4 book alone (no 5.x-8.x guide lists it): a warning."""
    lab = lab_factory(lab_with(h=set_host("esx-a2.lab.local", hbas=["qlogic", "emulex"])))
    desired = example("cluster-across-boxes", tmp_path)
    result = run(lab, "plan", str(desired))
    assert result.code == 0, result
    [line] = [line for line in (result.out + result.err).splitlines() if "[MSCS-HOST-002]" in line]
    assert "warning" in line and "no 5.x-8.x guide" in line


def test_the_plan_names_every_rule_violation_at_once(lab, tmp_path):
    desired = example(
        "cluster-across-boxes",
        tmp_path,
        sharedDisks=disks(A000, A001, datastore="NFS-01"),
    )
    result = run(lab, "plan", str(desired))
    assert result.code == 1
    for rule_id in ("MSCS-STOR-001", "MSCS-STOR-002"):
        assert f"[{rule_id}]" in result.err, result


def test_a_unit_held_by_a_disk_that_is_not_the_clusters_stops_apply_before_any_change(lab, tmp_path):
    """MSCS-SAFE-002: a disk added by hand at the file's unit is never detached to make room."""
    from pyVmomi import vim

    from labctl import find, prop, wait

    si = lab.connect()
    vm = find(si, vim.VirtualMachine, "SQLNODE2")
    controller = vim.vm.device.VirtualLsiLogicSASController(key=-100, busNumber=1, sharedBus="noSharing")
    backing = vim.vm.device.VirtualDisk.FlatVer2BackingInfo(fileName="", diskMode="persistent", thinProvisioned=True)
    disk = vim.vm.device.VirtualDisk(key=-101, controllerKey=-100, unitNumber=0, backing=backing, capacityInKB=1024)
    changes = [
        vim.vm.device.VirtualDeviceSpec(operation="add", device=controller),
        vim.vm.device.VirtualDeviceSpec(operation="add", fileOperation="create", device=disk),
    ]
    wait(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(deviceChange=changes)))
    before = len(prop(si, vm, "config.hardware.device"))
    desired = example("cluster-across-boxes", tmp_path)
    lab.reset_calls()
    result = run(lab, "apply", str(desired), "--auto-approve", "--skip-guest")
    assert result.code == 1, result
    [line] = [line for line in result.err.splitlines() if "[MSCS-SAFE-002]" in line]
    assert re.match(
        rf"^(Error: )?{re.escape(str(desired))}:\d+:\d+: spec\.sharedDisks\.disks\[0\]\.unit: ", line.strip()
    )
    assert "SCSI 1:0 of SQLNODE2" in line
    calls = lab.calls()
    assert {m: calls[m] for m in MUTATING if calls.get(m)} == {}
    assert len(prop(si, vm, "config.hardware.device")) == before
