"""Membership changes: a node replaced in the file loses the cluster's devices, after its
replacement runs with the disks; nothing of the cluster's data is deleted.

SQLNODE2 is replaced by P2V-NODE1 (esx-a3, which sees the same LUNs). The old VM is found from
the state (its moref) and confirmed in vCenter (it holds the cluster's mapping files on the
shared bus).
"""

from __future__ import annotations

import json

import pytest
from pyVmomi import vim

from labctl import find, prop
from tests.integration.cli import example, run
from tests.integration.test_scope_of_change import datastore_file, disks_by_bus

pytestmark = pytest.mark.slow

QUORUM = "[SAN-VMFS-01] sql-prod-01/quorum-physical.vmdk"
DATA = "[SAN-VMFS-01] sql-prod-01/data-physical.vmdk"


def nics(si, name: str) -> list[str]:
    vm = find(si, vim.VirtualMachine, name)
    devices = prop(si, vm, "config.hardware.device")
    return sorted(d.backing.deviceName for d in devices if isinstance(d, vim.vm.device.VirtualEthernetCard))


def test_a_replaced_node_loses_the_clusters_devices_after_its_replacement_is_up(lab, tmp_path):
    desired = example("cluster-across-boxes", tmp_path)
    assert run(lab, "apply", str(desired), "--auto-approve", "--skip-guest").code == 0
    replaced = example("cluster-across-boxes", tmp_path, nodes=[{"vm": "SQLNODE1"}, {"vm": "P2V-NODE1"}])

    # Before apply, drift says the old node holds the cluster's disks, and that apply fixes it.
    drift = run(lab, "drift", str(replaced), "--skip-guest", "--json")
    assert drift.code == 2, drift
    report = json.loads(drift.out)
    held = [f for r in report.get("reports", [report]) for f in r["findings"] if "/SQLNODE2/" in f["address"]]
    assert sorted(f["address"] for f in held) == [
        "sql-prod-01/node/SQLNODE2/disk/data",
        "sql-prod-01/node/SQLNODE2/disk/quorum",
    ]
    assert {f["severity"] for f in held} == {"critical"}
    assert all("it was a node" in f["fix"] for f in held)

    planned = run(lab, "plan", str(replaced), "--skip-guest", "--json")
    assert planned.code == 0, planned
    actions = json.loads(planned.out)["actions"]
    old = [a for a in actions if a["target"] == "SQLNODE2"]
    assert [(a["kind"], a["reason"]) for a in old] == [
        ("power-off", "cold-change"),
        ("detach-disk", "not-a-node"),
        ("detach-disk", "not-a-node"),
        ("remove-nic", "not-a-node"),
        ("power-on", "restore-power"),
    ]
    ids = [a["id"] for a in actions]
    new_up = next(a["id"] for a in actions if a["target"] == "P2V-NODE1" and a["kind"] == "power-on")
    assert ids.index(new_up) < ids.index(old[0]["id"]) and new_up in old[0]["depends_on"]
    assert [a["kind"] for a in actions if a["target"] == "P2V-NODE1" and a["kind"].endswith("-disk")] == [
        "attach-disk",
        "attach-disk",
    ]

    applied = run(lab, "apply", str(replaced), "--auto-approve", "--allow-data-loss", "--skip-guest")
    assert applied.code == 0, applied
    si = lab.connect()
    assert {k: d.backing.fileName for k, d in disks_by_bus(si, "P2V-NODE1").items() if k[0] == 1} == {
        (1, 0): QUORUM,
        (1, 1): DATA,
    }
    assert [k for k in disks_by_bus(si, "SQLNODE2") if k[0] == 1] == []  # devices only ...
    assert nics(si, "SQLNODE2") == ["Production"]
    assert prop(si, find(si, vim.VirtualMachine, "SQLNODE2"), "runtime.powerState") == "poweredOn"
    assert datastore_file(lab, QUORUM).is_file() and datastore_file(lab, DATA).is_file()  # ... no data deleted
    assert {k: d.backing.fileName for k, d in disks_by_bus(si, "SQLNODE1").items() if k[0] == 1} == {
        (1, 0): QUORUM,
        (1, 1): DATA,
    }
    assert run(lab, "plan", str(replaced), "--skip-guest", "--detailed-exitcode").code == 0
    assert run(lab, "drift", str(replaced), "--skip-guest").code == 0


def test_a_node_removed_from_the_file_loses_them_too(lab, tmp_path):
    desired = example("cluster-across-boxes", tmp_path)
    assert run(lab, "apply", str(desired), "--auto-approve", "--skip-guest").code == 0
    one_node = example(
        "cluster-across-boxes",
        tmp_path,
        topology="physical-to-virtual",
        nodes=[{"physical": "FILESRV1"}, {"vm": "SQLNODE1"}],
    )
    applied = run(lab, "apply", str(one_node), "--auto-approve", "--skip-guest")
    assert applied.code == 0, applied
    si = lab.connect()
    assert [k for k in disks_by_bus(si, "SQLNODE2") if k[0] == 1] == []
    assert len([k for k in disks_by_bus(si, "SQLNODE1") if k[0] == 1]) == 2
