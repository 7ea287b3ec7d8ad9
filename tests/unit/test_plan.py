"""The planner on a hand-built vCenter world: what is planned, and in which order."""

from __future__ import annotations

from reconciler.plan import ActionKind, Reason
from reconciler.planner import build_plan, stale_reasons
from tests.unit.plan_world import LUN1, as_applied, cab_cluster, cab_world


def kinds_for(plan, target):
    return [a.kind for a in plan.actions if a.target == target]


def index(plan, predicate):
    return next(i for i, a in enumerate(plan.actions) if predicate(a))


def test_fresh_cluster_across_boxes_plans_every_piece_in_order():
    plan = build_plan(cab_cluster(), cab_world())
    node1 = kinds_for(plan, "SQLNODE1")
    # DRS/HA overrides come first (cluster level), then the node's rolling change.
    assert node1[:2] == [ActionKind.SET_DRS_OVERRIDE, ActionKind.SET_HA_OVERRIDE]
    assert node1[2:] == [
        ActionKind.POWER_OFF,
        ActionKind.ADD_CONTROLLER,
        ActionKind.CREATE_DISK,
        ActionKind.CREATE_DISK,
        ActionKind.ADD_NIC,
        ActionKind.POWER_ON,
    ]
    node2 = kinds_for(plan, "SQLNODE2")
    assert node2[2:] == [
        ActionKind.POWER_OFF,
        ActionKind.ADD_CONTROLLER,
        ActionKind.ATTACH_DISK,
        ActionKind.ATTACH_DISK,
        ActionKind.ADD_NIC,
        ActionKind.POWER_ON,
    ]
    # Host options once per node host (2 hosts x 2 options that differ), before any node change.
    options = [a for a in plan.actions if a.kind is ActionKind.SET_HOST_OPTION]
    assert sorted((a.target, a.address.name) for a in options) == [
        ("esx-a1.lab.local", "Disk.ResetOnFailure"),
        ("esx-a1.lab.local", "Disk.UseDeviceReset"),
        ("esx-a2.lab.local", "Disk.ResetOnFailure"),
        ("esx-a2.lab.local", "Disk.UseDeviceReset"),
    ]
    first_node_action = index(plan, lambda a: a.kind is ActionKind.POWER_OFF)
    assert all(plan.actions.index(a) < first_node_action for a in options)
    # Each RDM LUN reserved on every host of the vSphere cluster that sees it (3 hosts x 2 LUNs).
    reserve = [a for a in plan.actions if a.kind is ActionKind.RESERVE_LUN]
    assert len(reserve) == 6
    # The rule: anti-affinity across boxes.
    rule = next(a for a in plan.actions if a.kind is ActionKind.CREATE_RULE)
    assert rule.after.fields() == {"kind": "anti-affinity", "vms": ["SQLNODE1", "SQLNODE2"], "enabled": True}


def test_node_two_attaches_the_file_node_one_creates_at_the_same_unit():
    plan = build_plan(cab_cluster(), cab_world())
    create = next(a for a in plan.actions if a.kind is ActionKind.CREATE_DISK and a.address.name == "quorum")
    attach = next(a for a in plan.actions if a.kind is ActionKind.ATTACH_DISK and a.address.name == "quorum")
    assert create.target == "SQLNODE1" and attach.target == "SQLNODE2"
    assert create.id in attach.depends_on
    assert create.after.file == attach.after.file == "[SAN-VMFS-01] sql-prod-01/quorum-physical.vmdk"
    assert (create.after.bus, create.after.unit) == (attach.after.bus, attach.after.unit) == (1, 0)
    assert create.after.lun == LUN1 and create.after.compatibility == "physical"


def test_one_node_at_a_time_the_second_waits_for_the_first_to_be_back():
    plan = build_plan(cab_cluster(), cab_world())
    on1 = index(plan, lambda a: a.kind is ActionKind.POWER_ON and a.target == "SQLNODE1")
    off2 = index(plan, lambda a: a.kind is ActionKind.POWER_OFF and a.target == "SQLNODE2")
    assert on1 < off2
    assert plan.actions[on1].id in plan.actions[off2].depends_on
    assert plan.actions[on1].after.wait_for_tools is True


def test_all_disks_before_any_nic_and_batched_in_two_calls_per_node():
    plan = build_plan(cab_cluster(), cab_world())
    node1 = [a for a in plan.actions if a.target == "SQLNODE1" and a.batch]
    batches = [a.batch for a in node1 if a.batch.startswith("SQLNODE1/")]
    assert batches == ["SQLNODE1/devices"] * 3 + ["SQLNODE1/nics"]


def test_nothing_to_do_when_vcenter_already_matches():
    cluster = cab_cluster()
    world = cab_world()
    plan = build_plan(cluster, world)
    # Make the world look as apply would leave it.
    world = as_applied(cluster, world, plan)
    again = build_plan(cluster, world)
    assert again.actions == [], [a.id for a in again.actions]


def test_a_powered_off_node_needs_no_power_off_and_is_powered_on():
    world = cab_world()
    vms = dict(world.vms)
    vms["SQLNODE2"] = vms["SQLNODE2"].model_copy(update={"power_state": "poweredOff", "tools_running": False})
    plan = build_plan(cab_cluster(), world.model_copy(update={"vms": vms}))
    node2 = kinds_for(plan, "SQLNODE2")
    assert ActionKind.POWER_OFF not in node2
    on = next(a for a in plan.actions if a.kind is ActionKind.POWER_ON and a.target == "SQLNODE2")
    assert on.reason is Reason.RESTORE_POWER or on.reason is Reason.DESIRED_POWER


def test_nic_only_change_is_hot_no_power_cycle():
    cluster = cab_cluster()
    world = as_applied(cluster, cab_world(), build_plan(cluster, cab_world()))
    vms = dict(world.vms)
    node = vms["SQLNODE1"]
    vms["SQLNODE1"] = node.model_copy(update={"nics": [n for n in node.nics if n.network != "Heartbeat"]})
    plan = build_plan(cluster, world.model_copy(update={"vms": vms}))
    assert [a.kind for a in plan.actions] == [ActionKind.ADD_NIC]


def test_stale_plan_is_detected_from_change_version_and_options():
    cluster = cab_cluster()
    world = cab_world()
    plan = build_plan(cluster, world)
    assert stale_reasons(plan, world) == []
    vms = dict(world.vms)
    vms["SQLNODE1"] = vms["SQLNODE1"].model_copy(update={"change_version": "later"})
    hosts = dict(world.hosts)
    h = hosts["esx-a2.lab.local"]
    hosts["esx-a2.lab.local"] = h.model_copy(update={"options": {**h.options, "Disk.UseLunReset": 0}})
    reasons = stale_reasons(plan, world.model_copy(update={"vms": vms, "hosts": hosts}))
    assert any("SQLNODE1 was reconfigured" in r for r in reasons)
    assert any("esx-a2.lab.local option Disk.UseLunReset" in r for r in reasons)


def test_overrides_cite_the_rule_of_the_plans_vsphere_version():
    def cited(version):
        plan = build_plan(cab_cluster(vsphereVersion=version), cab_world())
        return {
            a.kind: a.rule
            for a in plan.actions
            if a.target == "SQLNODE1" and a.kind in (ActionKind.SET_DRS_OVERRIDE, ActionKind.SET_HA_OVERRIDE)
        }

    # vSphere 8: DRS follows the 6.5+ rule; HA is the file's own choice, no rule asks for it.
    assert cited("8.0") == {ActionKind.SET_DRS_OVERRIDE: "MSCS-PLACE-004", ActionKind.SET_HA_OVERRIDE: None}
    # vSphere 5.5: the 4.1-6.0 guides' DRS rule (partially automated at most); HA is the file's choice.
    assert cited("5.5") == {ActionKind.SET_DRS_OVERRIDE: "MSCS-PLACE-007", ActionKind.SET_HA_OVERRIDE: None}
