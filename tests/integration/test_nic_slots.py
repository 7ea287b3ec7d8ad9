"""A network adapter that comes back in another PCI slot is a new adapter to Windows, which
loses its IP settings. apply records each role's slot once vCenter has assigned it; a move made
by hand shows in drift (exit 2) and in the plan, and apply records the new slot without touching
vCenter."""

from __future__ import annotations

import json

import pytest
from pyVmomi import vim

from labctl import find, prop, wait
from tests.integration.cli import example, run

pytestmark = pytest.mark.slow


def _nic_slots(si, vm):
    return {
        d.backing.deviceName: (d.key, d.slotInfo.pciSlotNumber)
        for d in prop(si, vm, "config.hardware.device")
        if isinstance(d, vim.vm.device.VirtualEthernetCard)
    }


def _recorded(lab, desired):
    shown = run(lab, "show", str(desired), "--json")
    assert shown.code == 0, shown
    return {
        address: (r["device_key"], r["applied"].get("pciSlot"), r["created_by_mscsctl"])
        for address, r in json.loads(shown.out)["resources"].items()
        if "/nic/" in address
    }


def test_slots_are_recorded_and_a_moved_adapter_is_found_and_recorded_again(lab, tmp_path):
    desired = example("cluster-across-boxes", tmp_path)
    applied = run(lab, "apply", str(desired), "--auto-approve", "--skip-guest")
    assert applied.code == 0, applied
    si = lab.connect()
    vm1 = find(si, vim.VirtualMachine, "SQLNODE1")
    vm2 = find(si, vim.VirtualMachine, "SQLNODE2")

    # Both roles of both nodes, the production adapter mscsctl found there as well as the
    # heartbeat adapter it added, with the slots vCenter shows.
    recorded = _recorded(lab, desired)
    for name, vm in (("SQLNODE1", vm1), ("SQLNODE2", vm2)):
        slots = _nic_slots(si, vm)
        assert recorded[f"sql-prod-01/node/{name}/nic/production"] == (*slots["Production"], False)
        assert recorded[f"sql-prod-01/node/{name}/nic/heartbeat"] == (*slots["Heartbeat"], True)

    # By hand, on the running node: the heartbeat adapter removed, then a controller and a new
    # heartbeat adapter added. The controller takes the freed slot, the adapter the next one.
    old_key, old_slot = _nic_slots(si, vm1)["Heartbeat"]
    heartbeat = next(d for d in prop(si, vm1, "config.hardware.device") if d.key == old_key)
    network = next(n for n in prop(si, vm1, "network") if n.name == "Heartbeat")
    controller = vim.vm.device.VirtualLsiLogicSASController(key=-1, busNumber=2, sharedBus="noSharing")
    nic = vim.vm.device.VirtualVmxnet3(
        key=-2,
        backing=vim.vm.device.VirtualEthernetCard.NetworkBackingInfo(deviceName="Heartbeat", network=network),
    )
    for operation, device in (("remove", heartbeat), ("add", controller), ("add", nic)):
        change = vim.vm.device.VirtualDeviceSpec(operation=operation, device=device)
        wait(vm1.ReconfigVM_Task(spec=vim.vm.ConfigSpec(deviceChange=[change])))
    new_key, new_slot = _nic_slots(si, vm1)["Heartbeat"]
    assert new_slot != old_slot

    drift = run(lab, "drift", str(desired), "--json", "--skip-guest")
    assert drift.code == 2, drift
    (finding,) = [f for r in json.loads(drift.out)["reports"] for f in r["findings"]]
    assert (finding["address"], finding["field"], finding["observed"], finding["desired"]) == (
        "sql-prod-01/node/SQLNODE1/nic/heartbeat",
        "pciSlot",
        new_slot,
        old_slot,
    )
    assert finding["severity"] == "warning" and "IP settings" in finding["fix"]

    plan = run(lab, "plan", str(desired), "--json", "--skip-guest", "--detailed-exitcode")
    assert plan.code == 2, plan
    (action,) = json.loads(plan.out)["actions"]
    assert (action["kind"], action["before"], action["after"]) == (
        "record-nic-slot",
        {"pciSlot": old_slot},
        {"pciSlot": new_slot, "deviceKey": new_key},
    )
    assert action["reason"] == "nic-moved"

    changes_before = prop(si, vm1, "config.changeVersion")
    again = run(lab, "apply", str(desired), "--auto-approve", "--skip-guest")
    assert again.code == 0, again
    assert prop(si, vm1, "config.changeVersion") == changes_before  # vCenter was not touched
    assert _recorded(lab, desired)["sql-prod-01/node/SQLNODE1/nic/heartbeat"][:2] == (new_key, new_slot)
    assert run(lab, "drift", str(desired), "--skip-guest").code == 0
