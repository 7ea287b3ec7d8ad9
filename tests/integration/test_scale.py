"""Planning one cluster costs that cluster, not the datacenter: the cross-box example planned
on the default lab and on the same lab grown by the `small` scale profile (thousands of
advanced options per host, dozens of LUNs per host, more vSphere clusters, hosts, VMs and
datastores) makes the same requests, reads at most twice the bytes, and plans the same."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

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
    assert lab.calls()["RetrievePropertiesEx"] == 5  # the 4 reads, and the VMs of esx-b1
    [line] = [line for line in result.err.splitlines() if "[MSCS-SAFE-003]" in line]
    assert "B-NODE1 (vm-" in line and f"maps it at SCSI 0:3 ({file})" in line
