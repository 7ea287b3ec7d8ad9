"""`--target ADDRESS` on plan, apply and drift, through the CLI against a fleet lab.

One cluster of a fleet, one node, or one object is planned, applied or checked alone, with
what it depends on (a disk's controller, the node that creates its file, its LUN's
reservation, the power-off and power-on around a cold change), as Terraform's `-target`.
The plan says it is partial (text, JSON, a warning on stderr); a saved partial plan applies
as saved; an address that matches nothing is an error naming it, with did-you-mean.
"""

from __future__ import annotations

import json

import pytest
from pyVmomi import VmomiSupport, vim

from labctl import find, prop
from tests.fleet import write_fleet
from tests.integration.cli import run

pytestmark = pytest.mark.slow

SKIP = "--skip-guest"  # the lab here plays no guests: left out on purpose
FLEET_LAB = {
    "datacenter": "DC1",
    "credentials": {"username": "administrator@vsphere.local", "password": "Lab-Passw0rd!"},
}


@pytest.fixture
def fleet(lab_factory, tmp_path):
    lab = lab_factory(FLEET_LAB, fleet=3)
    directory = tmp_path / "fleet"
    write_fleet(3, directory)
    return lab, directory


def shared_disks(si, vm_name: str) -> list[int]:
    """The units on the node's bus 1 (the shared controller), [] when it has none."""
    vm = find(si, vim.VirtualMachine, vm_name)
    devices = prop(si, vm, "config.hardware.device")
    ctrl = next((d for d in devices if isinstance(d, vim.vm.device.VirtualSCSIController) and d.busNumber == 1), None)
    if ctrl is None:
        return []
    return sorted(
        d.unitNumber for d in devices if isinstance(d, vim.vm.device.VirtualDisk) and d.controllerKey == ctrl.key
    )


def powered_on(si, vm_name: str) -> bool:
    return prop(si, find(si, vim.VirtualMachine, vm_name), "runtime.powerState") == "poweredOn"


def test_one_cluster_of_a_fleet_is_planned_applied_and_checked_alone(fleet):
    lab, directory = fleet
    planned = run(lab, "plan", str(directory), "--target", "fleet-02", "--json", SKIP)
    assert planned.code == 0, planned
    (plan,) = json.loads(planned.out)["plans"]
    assert (plan["cluster"], plan["partial"], plan["targets"]) == ("fleet-02", True, ["fleet-02"])
    assert "fleet-02: targeting is in effect (fleet-02)" in planned.err
    # Targets add up: the whole cluster holds a node of it.
    both = run(lab, "plan", str(directory), "--target", "fleet-02", "--target", "fleet-02/node/F02-NODE1", "--json")
    assert both.code == 0, both
    assert [a["id"] for a in json.loads(both.out)["plans"][0]["actions"]] == [a["id"] for a in plan["actions"]]
    assert (
        "Partial run (--target fleet-02): fleet-02 is planned in full, no other cluster."
        in run(lab, "plan", str(directory), "--target", "fleet-02", SKIP).out
    )

    applied = run(lab, "apply", str(directory), "--target", "fleet-02", "--auto-approve", SKIP)
    assert applied.code == 0, applied
    assert "fleet-02: targeting is in effect (fleet-02)" in applied.err  # apply warns too
    si = lab.connect()
    assert shared_disks(si, "F02-NODE1") == shared_disks(si, "F02-NODE2") == [0, 1]
    assert shared_disks(si, "F01-NODE1") == shared_disks(si, "F03-NODE2") == []  # untouched
    assert sorted(p.name for p in (directory / ".mscsctl").glob("*.state.json")) == ["fleet-02.state.json"]
    assert run(lab, "plan", str(directory), "--target", "fleet-02", "--detailed-exitcode", SKIP).code == 0
    assert run(lab, "plan", str(directory), "--detailed-exitcode", SKIP).code == 2  # the others wait

    # drift, narrowed: a host option changed by hand is seen through its host, not through a node.
    host = find(si, vim.HostSystem, "esx-f02-2.lab.local")
    prop(si, host, "configManager.advancedOption").UpdateOptions(
        changedValue=[vim.option.OptionValue(key="Disk.UseDeviceReset", value=VmomiSupport.long(1))]
    )
    node_only = run(lab, "drift", str(directory), "--target", "fleet-02/node/F02-NODE1", SKIP)
    assert node_only.code == 0, node_only
    assert "fleet-02: only fleet-02/node/F02-NODE1 checked (--target)." in node_only.out
    by_host = run(lab, "drift", str(directory), "--target", "fleet-02/host/esx-f02-2.lab.local", "--json", SKIP)
    assert by_host.code == 2, by_host
    (report,) = json.loads(by_host.out)["reports"]
    assert (report["partial"], report["targets"]) == (True, ["fleet-02/host/esx-f02-2.lab.local"])
    assert [f["address"] for f in report["findings"]] == [
        "fleet-02/host/esx-f02-2.lab.local/option/Disk.UseDeviceReset"
    ]


def test_a_targeted_disk_comes_with_its_controller_the_node_that_creates_it_and_the_power_cycle(fleet):
    lab, directory = fleet
    quorum = "fleet-01/node/F01-NODE2/disk/quorum"
    planned = run(lab, "plan", str(directory), "--target", quorum, "--json", SKIP)
    assert planned.code == 0, planned
    (plan,) = json.loads(planned.out)["plans"]
    assert plan["partial"] is True and plan["targets"] == [quorum]
    lun = "naa.60060160123456780000000000010001"
    assert [a["id"] for a in plan["actions"]] == [
        f"fleet-01/host/esx-f01-1.lab.local/lun/{lun}#reserve-lun",
        f"fleet-01/host/esx-f01-2.lab.local/lun/{lun}#reserve-lun",
        "fleet-01/node/F01-NODE1/power#power-off",
        "fleet-01/node/F01-NODE1/controller/1#add-controller",
        "fleet-01/node/F01-NODE1/disk/quorum#create-disk",
        "fleet-01/node/F01-NODE1/power#power-on",
        "fleet-01/node/F01-NODE2/power#power-off",
        "fleet-01/node/F01-NODE2/controller/1#add-controller",
        "fleet-01/node/F01-NODE2/disk/quorum#attach-disk",
        "fleet-01/node/F01-NODE2/power#power-on",
    ]
    text = run(lab, "plan", str(directory), "--target", quorum, SKIP)
    assert f"Partial plan: only {quorum} and what it depends on" in text.out, text

    applied = run(lab, "apply", str(directory), "--target", quorum, "--auto-approve", SKIP)
    assert applied.code == 0, applied.err
    si = lab.connect()
    assert shared_disks(si, "F01-NODE1") == shared_disks(si, "F01-NODE2") == [0]  # no data disk yet
    assert powered_on(si, "F01-NODE1") and powered_on(si, "F01-NODE2")
    assert run(lab, "plan", str(directory), "--target", quorum, "--detailed-exitcode", SKIP).code == 0

    # One node: only its own actions (and the reservations of its LUNs); the other node waits.
    node = run(lab, "plan", str(directory), "--target", "fleet-03/node/F03-NODE1", "--json", SKIP)
    assert node.code == 0, node
    (plan,) = json.loads(node.out)["plans"]
    owners = {a["address"].split("/")[2] for a in plan["actions"]}
    assert owners == {"F03-NODE1", "esx-f03-1.lab.local", "esx-f03-2.lab.local"}, owners
    assert {a["kind"] for a in plan["actions"] if "/node/" in a["address"]} >= {
        "power-off",
        "add-controller",
        "create-disk",
        "power-on",
    }


def test_a_saved_partial_plan_applies_as_saved_and_an_unknown_address_is_named(fleet, tmp_path):
    lab, directory = fleet
    saved = tmp_path / "partial.json"
    planned = run(lab, "plan", str(directory), "--target", "fleet-03/node/F03-NODE1", "--out", str(saved), SKIP)
    assert planned.code == 0, planned
    refused = run(lab, "apply", str(saved), "--target", "fleet-03", "--auto-approve")
    assert refused.code == 1 and "is a saved plan: it is applied as saved" in refused.err, refused

    # The targets are sealed: a plan widened by hand is refused.
    document = json.loads(saved.read_text())
    widened = tmp_path / "widened.json"
    for plan in document["plans"]:
        plan["targets"] = ["fleet-03"]
    widened.write_text(json.dumps(document))
    widened.chmod(0o600)
    tampered = run(lab, "apply", str(widened))
    assert tampered.code == 1 and "tampered" in tampered.err, tampered

    applied = run(lab, "apply", str(saved))
    assert applied.code == 0, applied
    si = lab.connect()
    assert shared_disks(si, "F03-NODE1") == [0, 1]
    assert shared_disks(si, "F03-NODE2") == []  # not in the plan
    assert powered_on(si, "F03-NODE1") and powered_on(si, "F03-NODE2")

    for command in ("plan", "drift", "apply"):
        extra = ("--auto-approve",) if command == "apply" else ()
        cluster = run(lab, command, str(directory), "--target", "fleet-09", *extra, SKIP)
        assert cluster.code == 1, cluster
        assert "--target fleet-09: no cluster 'fleet-09' in the files; did you mean fleet-0" in cluster.err
    node = run(lab, "plan", str(directory), "--target", "fleet-01/node/F01-NODE3", SKIP)
    assert node.code == 1, node
    assert "cluster fleet-01 has no node 'F01-NODE3'; did you mean fleet-01/node/F01-NODE" in node.err
    typo = run(lab, "apply", str(directory), "--target", "fleet-01/node/F01-NODE1/disk/qourum", "--auto-approve", SKIP)
    assert typo.code == 1, typo
    assert (
        "--target fleet-01/node/F01-NODE1/disk/qourum: no such object in the file or in vCenter; "
        "did you mean fleet-01/node/F01-NODE1/disk/quorum" in typo.err
    )
    assert shared_disks(lab.connect(), "F01-NODE1") == []  # nothing was applied
    garbled = run(lab, "plan", str(directory), "--target", "fleet-01//node", SKIP)
    assert garbled.code == 1 and "--target 'fleet-01//node'" in garbled.err, garbled
