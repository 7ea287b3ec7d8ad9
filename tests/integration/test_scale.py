"""Planning one cluster costs that cluster, not the datacenter: the cross-box example planned
on the default lab and on the same lab grown by the `small` scale profile (thousands of
advanced options per host, dozens of LUNs per host, more vSphere clusters, hosts, VMs and
datastores) makes the same requests, reads at most twice the bytes, and plans the same."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fleet import write_fleet
from tests.integration.cli import default_lab, example, run
from tests.integration.test_lun_ownership import map_outside

pytestmark = pytest.mark.slow

A000 = "naa.6006016012345678000000000000a000"  # backs SAN-VMFS-01
A002 = "naa.6006016012345678000000000000a002"  # a shared LUN of Cluster-A (the cross-box example's data disk)

# what a plan says about the cluster (not when or from which file it was made, nor the morefs
# and change versions it was made against)
PLANNED = (
    "actions",
    "findings",
    "summary",
    "seen_options",
    "seen_disk_users",
    "unmanaged",
    "unchecked",
    "notes",
    "vsphere_version",
)


def plan_counted(lab, tmp_path):
    """The plan (JSON) of the cross-box example, the requests it made and the bytes it read."""
    tmp_path.mkdir()
    desired = example("cluster-across-boxes", tmp_path)
    lab.reset_calls()
    planned = run(lab, "plan", str(desired), "--skip-guest", "--json")
    assert planned.code == 0, planned
    calls = lab.calls()
    received = sum(lab.traffic()["sent"].values())  # what the lab sent is what mscsctl received
    plan = json.loads(planned.out)
    for finding in plan["findings"]:
        finding["file"] = Path(finding["file"]).name  # each lab's copy lives in its own folder
    return {key: plan[key] for key in PLANNED}, calls, received


def test_planning_one_cluster_in_a_large_datacenter_costs_what_it_costs_in_a_small_one(lab_factory, tmp_path):
    default = lab_factory()
    base_plan, base_calls, base_bytes = plan_counted(default, tmp_path / "default")
    scaled = lab_factory(extra_args=("--scale", "small"))
    plan, calls, received = plan_counted(scaled, tmp_path / "scaled")
    print(f"requests {sum(base_calls.values())} -> {sum(calls.values())}, bytes read {base_bytes} -> {received}")
    assert calls == base_calls
    assert received <= 2 * base_bytes, (received, base_bytes)
    assert plan == base_plan


def test_planning_in_a_datacenter_of_realistic_size_makes_the_same_requests(lab_factory, tmp_path):
    """The `realistic` profile (2,000 more VMs, 246 hosts with 1,000+ options and 256 LUNs
    each): the same 8 requests and the same plan. The bytes grow with the name index of
    every VM and host (how the node VMs are found) and with the nodes' hosts' LUN lists
    (README, Performance): 7x the small lab's bytes, held under 8x here; the 2x target is
    met on the `small` profile only."""
    base_plan, base_calls, base_bytes = plan_counted(lab_factory(), tmp_path / "default")
    scaled = lab_factory(extra_args=("--scale", "realistic"))
    plan, calls, received = plan_counted(scaled, tmp_path / "realistic")
    print(f"requests {sum(base_calls.values())} -> {sum(calls.values())}, bytes read {base_bytes} -> {received}")
    assert calls == base_calls
    assert sum(calls.values()) <= 8, calls
    assert received <= 8 * base_bytes, (received, base_bytes)
    assert plan == base_plan


def test_a_plan_makes_the_same_requests_for_one_cluster_and_for_twenty(lab_factory, tmp_path):
    """Round trips do not grow with the clusters planned: session setup once, five reads."""
    lab = lab_factory(fleet=20)
    counted = []
    for n in (1, 20):
        fleet = tmp_path / f"fleet-{n}"
        write_fleet(n, fleet)
        lab.reset_calls()
        planned = run(lab, "plan", str(fleet), "--skip-guest", "--detailed-exitcode")
        assert planned.code == 2, planned
        counted.append(lab.calls())
    one, twenty = counted
    assert one == twenty, (one, twenty)
    assert one == {"RetrieveServiceContent": 1, "Login": 1, "RetrievePropertiesEx": 5, "Logout": 1}


def test_a_lun_of_the_cluster_mapped_on_another_vsphere_cluster_is_still_found(lab_factory, tmp_path):
    """Only the nodes' vSphere clusters are read whole: a host elsewhere that sees one of the
    cluster's LUNs is found by that LUN alone, and its VMs are read."""
    doc = default_lab()
    for lun in doc["luns"]:
        if lun["naa"] in (A000, A002):  # esx-b1 sees the data disk's LUN, and mounts SAN-VMFS-01
            lun["hosts"] = ["esx-b1.lab.local"]
    lab = lab_factory(doc)
    file = map_outside(lab, A002, "B-NODE1")
    desired = example("cluster-across-boxes", tmp_path)
    lab.reset_calls()
    result = run(lab, "plan", str(desired), "--skip-guest")
    assert result.code == 1, result
    assert lab.calls()["RetrievePropertiesEx"] == 6  # the 5 reads, and the VMs of esx-b1
    [line] = [line for line in result.err.splitlines() if "[MSCS-SAFE-003]" in line]
    assert "B-NODE1 (vm-" in line and f"maps it at SCSI 0:3 ({file})" in line


def test_a_node_on_a_vsphere_cluster_without_the_files_datastores_is_still_found(lab, tmp_path):
    """The node VMs are looked for first where the files' datastores are; one that is not there
    (B-NODE1: Cluster-B does not have SAN-VMFS-01) is found by one more read of every VM's
    name, and the plan speaks of it as of any node (here: why it cannot be one), not as of a
    VM that does not exist."""
    nodes = [{"vm": "SQLNODE1"}, {"vm": "B-NODE1"}]
    missing = [{"vm": "SQLNODE1"}, {"vm": "NO-SUCH-VM"}]
    said = {}
    for name, listed in (("elsewhere", nodes), ("missing", missing)):
        (tmp_path / name).mkdir()
        desired = example("cluster-across-boxes", tmp_path / name, nodes=listed)
        lab.reset_calls()
        result = run(lab, "plan", str(desired), "--skip-guest")
        assert result.code == 1, result
        assert lab.calls()["RetrievePropertiesEx"] == 6, lab.calls()  # the names of every VM too
        said[name] = result
    assert "no virtual machine named NO-SUCH-VM in datacenter DC1 [MSCS-INV-001]" in said["missing"].err
    # B-NODE1 was read: its host, that host's version and datastores are what the rules refuse.
    elsewhere = said["elsewhere"]
    assert "no virtual machine named" not in elsewhere.err, elsewhere
    assert "esx-b1.lab.local 7.0.3 (B-NODE1)" in elsewhere.err, elsewhere
    assert "SAN-VMFS-01 is not mounted on esx-b1.lab.local (B-NODE1)" in elsewhere.err, elsewhere
