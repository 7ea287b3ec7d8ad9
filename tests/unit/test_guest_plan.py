"""The guest side in the plan: set last for each node, and per-node reasons when unobservable."""

from __future__ import annotations

from reconciler.observed import ObservedGuest
from reconciler.plan import REASON_TEXT, ActionKind, Reason
from reconciler.planner import build_plan
from tests.unit.plan_world import cab_cluster, cab_world


def with_guests(world, **guests):
    return world.model_copy(update={"guests": {name: ObservedGuest(node=name, **g) for name, g in guests.items()}})


def test_timeout_below_60_is_set_last_on_each_node_after_power_on():
    world = with_guests(cab_world(), SQLNODE1={"timeout_seconds": 30}, SQLNODE2={"timeout_seconds": None})
    plan = build_plan(cab_cluster(), world)
    guest = [a for a in plan.actions if a.kind is ActionKind.SET_GUEST_SETTING]
    assert [(a.target, a.before.fields(), a.after.fields()) for a in guest] == [
        ("SQLNODE1", {"seconds": 30}, {"seconds": 60}),
        ("SQLNODE2", {"seconds": None}, {"seconds": 60}),
    ]
    for action in guest:
        node_actions = [a for a in plan.actions if a.target == action.target]
        assert node_actions[-1] == action
        power_on = next(a for a in node_actions if a.kind is ActionKind.POWER_ON)
        assert power_on.id in action.depends_on
        assert action.rule == "MSCS-GUEST-001"
        assert action.reason is Reason.GUEST_DIFFERS  # the guest, not vCenter, holds the value
        assert "vCenter" not in REASON_TEXT[action.reason]


def test_a_guest_already_right_plans_nothing():
    cluster = cab_cluster()
    world = with_guests(cab_world(), SQLNODE1={"timeout_seconds": 60}, SQLNODE2={"timeout_seconds": 60})
    plan = build_plan(cluster, world)
    assert not [a for a in plan.actions if a.kind is ActionKind.SET_GUEST_SETTING]


def test_unobservable_guests_get_a_note_each_and_the_rest_of_the_plan_stands():
    world = with_guests(
        cab_world(),
        SQLNODE1={"reason": "bad-credentials", "detail": "the guest refused the login of MSCSCTL_GUEST_USER"},
        SQLNODE2={"reason": "tools-not-running", "detail": "VMware Tools is not running in VM SQLNODE2"},
    )
    plan = build_plan(cab_cluster(), world)
    assert not [a for a in plan.actions if a.kind is ActionKind.SET_GUEST_SETTING]
    assert len(plan.notes) == 2
    assert "SQLNODE1" in plan.notes[0] and "bad-credentials" in plan.notes[0]
    assert "SQLNODE2" in plan.notes[1] and "tools-not-running" in plan.notes[1]
    assert any(a.kind is ActionKind.ADD_CONTROLLER for a in plan.actions)


def test_a_powered_off_node_gets_its_timeout_set_after_apply_powers_it_on():
    world = cab_world()
    vms = dict(world.vms)
    vms["SQLNODE2"] = vms["SQLNODE2"].model_copy(update={"power_state": "poweredOff", "tools_running": False})
    world = with_guests(
        world.model_copy(update={"vms": vms}),
        SQLNODE1={"timeout_seconds": 60},
        SQLNODE2={"reason": "powered-off", "detail": "VM SQLNODE2 is poweredOff"},
    )
    plan = build_plan(cab_cluster(), world)
    guest = [a for a in plan.actions if a.kind is ActionKind.SET_GUEST_SETTING]
    assert [(a.target, a.before.fields()) for a in guest] == [("SQLNODE2", {"seconds": "unknown (powered off)"})]
    assert "apply sets the disk timeout once it runs" in plan.notes[0]


def test_skip_guest_leaves_the_guest_side_out():
    plan = build_plan(cab_cluster(), cab_world())  # guests=None: --skip-guest
    assert not [a for a in plan.actions if a.kind is ActionKind.SET_GUEST_SETTING]
    assert plan.notes == []
