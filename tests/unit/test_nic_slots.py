"""PCI slots of the network adapters: recorded after power-on, a move found, the new slot recorded."""

from __future__ import annotations

from reconciler.nic_slots import moved_nics
from reconciler.observed import ObservedNic
from reconciler.outcome import done
from reconciler.plan import ActionKind, Reason
from reconciler.planner import build_plan
from reconciler.record import record_nic_slots, record_outcome
from state.model import State
from tests.unit.plan_world import as_applied, cab_cluster, cab_world

NOW = "2026-01-02T03:04:05Z"
PRODUCTION = "sql-prod-01/node/SQLNODE1/nic/production"
HEARTBEAT = "sql-prod-01/node/SQLNODE1/nic/heartbeat"


def nics(heartbeat_key=4001, heartbeat_slot=224):
    return [
        ObservedNic(key=4000, adapter="vmxnet3", network="Production", pci_slot=192),
        ObservedNic(key=heartbeat_key, adapter="vmxnet3", network="Heartbeat", pci_slot=heartbeat_slot),
    ]


def test_each_role_is_recorded_and_an_adapter_mscsctl_found_is_marked_so():
    cluster = cab_cluster()
    state = record_nic_slots(State.new("sql-prod-01", "0" * 64), cluster, "SQLNODE1", "vm-1", nics(), NOW)
    assert state.get(PRODUCTION).applied == {"portgroup": "Production", "adapter": "vmxnet3", "pciSlot": 192}
    assert state.get(PRODUCTION).created_by_mscsctl is False
    assert (state.get(HEARTBEAT).device_key, state.get(HEARTBEAT).applied["pciSlot"]) == (4001, 224)
    # A second power-on with the same slots changes nothing.
    assert record_nic_slots(state, cluster, "SQLNODE1", "vm-1", nics(), NOW) == state


def test_an_adapter_without_a_slot_yet_is_not_recorded():
    state = record_nic_slots(
        State.new("sql-prod-01", "0" * 64), cab_cluster(), "SQLNODE1", "vm-1", nics(heartbeat_slot=None), NOW
    )
    assert state.get(HEARTBEAT) is None and state.get(PRODUCTION) is not None


def test_a_moved_adapter_is_planned_as_a_record_only_action_and_recorded():
    cluster = cab_cluster()
    world = as_applied(cluster, cab_world(), build_plan(cluster, cab_world()))
    state = record_nic_slots(State.new("sql-prod-01", "0" * 64), cluster, "SQLNODE1", "vm-1", nics(), NOW)
    vms = dict(world.vms)
    vms["SQLNODE1"] = vms["SQLNODE1"].model_copy(update={"nics": nics(heartbeat_key=4007, heartbeat_slot=256)})
    world = world.model_copy(update={"vms": vms})

    (moved,) = moved_nics(cluster, world, state.managed())
    assert (str(moved.address), moved.recorded, moved.now, moved.device_key) == (HEARTBEAT, 224, 256, 4007)

    plan = build_plan(cluster, world, managed=state.managed())
    record_actions = [a for a in plan.actions if a.kind is ActionKind.RECORD_NIC_SLOT]
    assert [(str(a.address), a.before.fields(), a.after.fields(), a.reason) for a in record_actions] == [
        (HEARTBEAT, {"pciSlot": 224}, {"pciSlot": 256, "deviceKey": 4007}, Reason.NIC_MOVED)
    ]
    recorded = record_outcome(state, done(record_actions[0], pci_slot=256, device_key=4007), NOW)
    assert (recorded.get(HEARTBEAT).device_key, recorded.get(HEARTBEAT).applied["pciSlot"]) == (4007, 256)
    assert moved_nics(cluster, world, recorded.managed()) == []
