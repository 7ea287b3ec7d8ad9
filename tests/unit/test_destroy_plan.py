"""The decommissioning plan on the hand-built world: reverse order, one node at a time, and only
what the state says mscsctl made and vCenter still shows so; everything else kept and listed."""

from __future__ import annotations

from reconciler.address import Address
from reconciler.destroy import build_destroy_plan, kept_after
from reconciler.kinds import ActionKind
from reconciler.observed import ObservedController, ObservedDisk, ObservedNic, ObservedVm
from reconciler.outcome import done, skipped
from reconciler.plan import Reason
from reconciler.planner import build_plan
from reconciler.record import PREVIOUS_VALUE, destroyed, record_destroyed, record_outcome
from reconciler.seal import seal_problem, sealed
from state.model import State
from tests.unit.plan_world import (
    LUN1,
    LUN2,
    NOW,
    as_applied,
    cab_cluster,
    cab_world,
    cib_cluster,
    cib_world,
    state_after,
    with_disk,
    with_vm,
)

A1 = "esx-a1.lab.local"


def _applied(cluster, world):
    """The world and the state after a first apply of `cluster` (controllers recorded by their key)."""
    plan = build_plan(cluster, world)
    after = as_applied(cluster, world, plan)
    state = state_after(cluster, world, plan)
    for address, resource in state.managed().items():
        if address.kind == "controller":
            state = state.with_resource(address, resource.model_copy(update={"device_key": 1001}))
    return after, state


def _on_node(plan, vm):
    """The node's own steps: its power and its devices (not the placement actions that name it)."""
    return [a for a in plan.actions if a.target == vm and a.batch in (None, f"{vm}/devices")]


def _ids(plan):
    return [a.id.removeprefix(f"{plan.cluster}/") for a in plan.actions]


def test_destroy_reverses_apply_node_two_first_one_node_at_a_time_then_placement_then_hosts():
    cluster = cab_cluster()
    world, state = _applied(cluster, cab_world())
    plan = build_destroy_plan(cluster, world, state)
    ids = _ids(plan)
    node2 = [
        "node/SQLNODE2/power#power-off",
        "node/SQLNODE2/disk/quorum#detach-disk",
        "node/SQLNODE2/disk/data#detach-disk",
        "node/SQLNODE2/controller/1#remove-controller",
        "node/SQLNODE2/nic/heartbeat#remove-nic",
        "node/SQLNODE2/power#power-on",
    ]
    assert ids[:6] == node2
    assert ids[6:12] == [i.replace("SQLNODE2", "SQLNODE1") for i in node2]
    assert ids[12:18] == [
        "node/SQLNODE1/drs#remove-drs-override",
        "node/SQLNODE1/ha#remove-ha-override",
        "node/SQLNODE2/drs#remove-drs-override",
        "node/SQLNODE2/ha#remove-ha-override",
        "rule/mscsctl-sql-prod-01#delete-rule",
        "vm-host-rule/mscsctl-sql-prod-01-on-hosts#delete-vm-host-rule",
    ]
    kinds = [a.kind for a in plan.actions[18:]]
    assert kinds == [ActionKind.RELEASE_LUN] * 6 + [ActionKind.RESTORE_HOST_OPTION] * 4
    # A chain: each action waits for the one before, so node 1 is touched only once node 2 runs again.
    assert all(b.depends_on == (a.id,) for a, b in zip(plan.actions, plan.actions[1:], strict=False))
    # The devices of a node in one reconfigure, the placement in one vSphere-cluster reconfigure.
    assert {a.batch for a in plan.actions[1:5]} == {"SQLNODE2/devices"}
    assert {a.batch for a in plan.actions[12:18]} == {"vcluster/Cluster-A"}
    restore = {
        str(a.address): (a.before.value, a.after.value)
        for a in plan.actions
        if a.kind is ActionKind.RESTORE_HOST_OPTION
    }
    assert restore[f"sql-prod-01/host/{A1}/option/Disk.ResetOnFailure"] == (1, 0)
    assert restore[f"sql-prod-01/host/{A1}/option/Disk.UseDeviceReset"] == (0, 1)
    assert f"LUN {LUN1}: its data is never touched" in plan.kept
    assert "RDM mapping file [SAN-VMFS-01] sql-prod-01/quorum-physical.vmdk: kept (a detach leaves it)" in plan.kept
    assert plan.destroy and plan.records_destroyed and plan.has_changes


def test_the_nodes_own_disks_and_adapters_are_never_in_a_destroy_plan():
    cluster = cab_cluster()
    world, state = _applied(cluster, cab_world())
    # A state that claims the boot disk as a clustered disk proves nothing: it is not on the shared bus.
    boot = state.get("sql-prod-01/node/SQLNODE1/disk/quorum").model_copy(
        update={"file": "[local] SQLNODE1/SQLNODE1.vmdk", "device_key": 2000}
    )
    state = state.with_resource("sql-prod-01/node/SQLNODE1/disk/boot", boot)
    plan = build_destroy_plan(cluster, world, state)
    touched = [(a.target, a.before) for a in plan.actions if a.kind in (ActionKind.DETACH_DISK, ActionKind.REMOVE_NIC)]
    assert all(getattr(before, "bus", 1) == 1 for _, before in touched)
    assert not any(getattr(before, "portgroup", "") == "Production" for _, before in touched)
    assert "disk/boot" not in " ".join(_ids(plan))


def test_a_disk_not_the_clusters_on_the_shared_bus_keeps_its_controller():
    cluster = cab_cluster()
    world, state = _applied(cluster, cab_world())
    stranger = ObservedDisk(key=2099, bus=1, unit=5, kind="vmdk", file="[SAN-VMFS-01] other/app.vmdk", size_gb=5)
    world = with_disk(world, "SQLNODE1", stranger)
    plan = build_destroy_plan(cluster, world, state)
    ids = _ids(plan)
    assert "node/SQLNODE1/controller/1#remove-controller" not in ids
    assert "node/SQLNODE2/controller/1#remove-controller" in ids
    assert not any(a.before == stranger for a in plan.actions)
    assert "sql-prod-01/node/SQLNODE1/controller/1: SCSI controller 1 of SQLNODE1 still holds 1:5" in plan.kept


def test_an_imported_cluster_keeps_everything_it_found_and_is_still_recorded_as_destroyed():
    cluster = cab_cluster()
    world, state = _applied(cluster, cab_world())
    found = State.new(cluster.name, "0" * 64, now=NOW)
    for address, resource in state.managed().items():
        found = found.with_resource(address, resource.model_copy(update={"created_by_mscsctl": False}))
    plan = build_destroy_plan(cluster, world, found)
    assert plan.actions == []
    assert plan.records_destroyed and plan.has_changes  # apply writes the record, changes nothing in vCenter
    assert (
        "sql-prod-01/node/SQLNODE1/disk/quorum: [SAN-VMFS-01] sql-prod-01/quorum-physical.vmdk at SQLNODE1 "
        "SCSI 1:0, not created by mscsctl (attached)" in plan.kept
    )
    assert (
        "sql-prod-01/rule/mscsctl-sql-prod-01: VM-VM rule mscsctl-sql-prod-01 in Cluster-A, not created by mscsctl"
        in plan.kept
    )
    assert any(k.endswith("perennially reserved before mscsctl (kept)") for k in plan.kept)


def test_what_changed_by_hand_since_mscsctl_set_it_is_kept():
    cluster = cab_cluster()
    world, state = _applied(cluster, cab_world())
    host = world.hosts[A1]
    world = world.model_copy(
        update={
            "hosts": {
                **world.hosts,
                A1: host.model_copy(update={"options": {**host.options, "Disk.UseDeviceReset": 2}}),
            }
        }
    )
    # The rule mscsctl made was deleted and made again by hand: another key.
    vc = world.clusters["Cluster-A"]
    rule = vc.rules["mscsctl-sql-prod-01"]
    state = state.with_resource(
        "sql-prod-01/rule/mscsctl-sql-prod-01",
        state.get("sql-prod-01/rule/mscsctl-sql-prod-01").model_copy(update={"rule_key": rule.key + 1}),
    )
    plan = build_destroy_plan(cluster, world, state)
    ids = _ids(plan)
    assert f"host/{A1}/option/Disk.UseDeviceReset#restore-host-option" not in ids
    assert f"host/{A1}/option/Disk.ResetOnFailure#restore-host-option" in ids
    assert "rule/mscsctl-sql-prod-01#delete-rule" not in ids
    assert f"sql-prod-01/host/{A1}/option/Disk.UseDeviceReset: 2, changed since mscsctl set 0 (kept)" in plan.kept


def test_a_lun_another_vm_maps_stays_reserved_and_a_host_with_another_shared_bus_keeps_its_options():
    cluster = cab_cluster()
    world, state = _applied(cluster, cab_world())
    other = ObservedVm(
        name="OTHER",
        moref="vm-OTHER",
        host=A1,
        cluster="Cluster-A",
        controllers={1: ObservedController(key=1001, bus=1, type="lsilogic-sas", sharing="physical")},
        disks={"1:0": ObservedDisk(key=2001, bus=1, unit=0, kind="rdm", file="[SAN-VMFS-01] OTHER/o.vmdk", lun=LUN2)},
    )
    world = with_vm(world, other)
    plan = build_destroy_plan(cluster, world, state)
    released = {a.address.name for a in plan.actions if a.kind is ActionKind.RELEASE_LUN}
    assert released == {LUN1}
    restored = {a.target for a in plan.actions if a.kind is ActionKind.RESTORE_HOST_OPTION}
    assert restored == {"esx-a2.lab.local"}
    assert f"sql-prod-01/host/{A1}/lun/{LUN2}: still reserved, OTHER (vm-OTHER) still map the LUN" in plan.kept
    assert (
        f"sql-prod-01/host/{A1}/option/Disk.ResetOnFailure: kept at 1, OTHER on the host share a SCSI bus" in plan.kept
    )


def test_a_shared_vmdk_is_detached_with_its_own_reason_and_listed_until_deleted():
    cluster = cib_cluster()
    world, state = _applied(cluster, cib_world())
    plan = build_destroy_plan(cluster, world, state)
    detaches = [a for a in plan.actions if a.kind is ActionKind.DETACH_DISK]
    assert [a.target for a in detaches] == ["CIB-NODE2", "CIB-NODE2", "CIB-NODE1", "CIB-NODE1"]  # node 1 last
    assert {a.reason for a in detaches} == {Reason.DESTROY_VMDK}
    line = "shared VMDK [esx-a1-local] cib-test-01/quorum.vmdk: detached and kept there"
    assert any(k.startswith(line) for k in plan.kept)
    after = kept_after(plan, {"[esx-a1-local] cib-test-01/quorum.vmdk"})
    assert not any(k.startswith(line) for k in after) and any("data.vmdk" in k for k in after)


def test_a_second_destroy_has_nothing_to_do_and_no_state_means_nothing_to_remove():
    cluster = cab_cluster()
    world = cab_world()  # as a destroy leaves it: nothing of mscsctl's
    state = record_destroyed(State.new(cluster.name, "0" * 64, now=NOW), ["LUN x: kept"], NOW)
    again = build_destroy_plan(cluster, world, state)
    assert again.actions == [] and not again.records_destroyed and not again.has_changes
    assert "the state records sql-prod-01 as destroyed already" in again.notes
    never = build_destroy_plan(cluster, world, None)
    assert never.actions == [] and not never.has_changes
    assert destroyed(state).applied["kept"] == ["LUN x: kept"]


def test_a_node_found_off_is_powered_on_until_the_cluster_is_recorded_destroyed():
    cluster = cab_cluster()
    world, state = _applied(cluster, cab_world())
    # A destroy killed while node 2 was off for its removals: the next one powers it on.
    node2 = world.vms["SQLNODE2"].model_copy(update={"power_state": "poweredOff", "tools_running": False})
    plan = build_destroy_plan(cluster, with_vm(world, node2), state)
    node2_kinds = [a.kind for a in _on_node(plan, "SQLNODE2")]
    assert node2_kinds[0] is not ActionKind.POWER_OFF and node2_kinds[-1] is ActionKind.POWER_ON
    assert [a.kind for a in _on_node(plan, "SQLNODE1")][:1] == [ActionKind.POWER_OFF]
    bare = node2.model_copy(
        update={"controllers": {0: node2.controllers[0]}, "disks": {"0:0": node2.disks["0:0"]}, "nics": node2.nics[:1]}
    )
    again = build_destroy_plan(cluster, with_vm(world, bare), state)
    assert [a.id for a in _on_node(again, "SQLNODE2")] == ["sql-prod-01/node/SQLNODE2/power#power-on"]
    # Once destroyed, a node's power is its owner's business: a second destroy changes nothing.
    gone = record_destroyed(state, [], NOW)
    assert _on_node(build_destroy_plan(cluster, with_vm(world, bare), gone), "SQLNODE2") == []


def test_a_saved_destroy_plan_is_sealed_with_its_mode():
    cluster = cab_cluster()
    world, state = _applied(cluster, cab_world())
    plan = sealed(build_destroy_plan(cluster, world, state))
    assert seal_problem(plan) is None
    assert seal_problem(plan.model_copy(update={"destroy": False})) is not None
    assert seal_problem(plan.model_copy(update={"kept": []})) is not None
    assert "destroy" not in build_plan(cluster, cab_world()).model_dump(mode="json")  # other plans unchanged


def test_the_state_says_what_mscsctl_set_up_and_the_value_a_host_option_had():
    cluster = cab_cluster()
    world = cab_world()
    plan = build_plan(cluster, world)
    state = State.new(cluster.name, "0" * 64, now=NOW)
    option = next(a for a in plan.actions if a.kind is ActionKind.SET_HOST_OPTION)
    drs = next(a for a in plan.actions if a.kind is ActionKind.SET_DRS_OVERRIDE)
    reserve = next(a for a in plan.actions if a.kind is ActionKind.RESERVE_LUN)
    for action in (option, drs, reserve):
        state = record_outcome(state, done(action), NOW)
    assert all(state.get(a.address).created_by_mscsctl for a in (option, drs, reserve))
    assert state.get(option.address).applied[PREVIOUS_VALUE] == option.before.value
    # Set again to another value: the value before mscsctl's first change is what stays recorded.
    again = option.model_copy(update={"before": option.after, "after": option.before})
    state = record_outcome(state, done(again), NOW)
    assert state.get(option.address).applied[PREVIOUS_VALUE] == option.before.value
    # An override vCenter had already: found, not set up by mscsctl.
    found = drs.model_copy(update={"before": drs.after})
    fresh = record_outcome(State.new(cluster.name, "0" * 64, now=NOW), skipped(found, "already set"), NOW)
    assert not fresh.get(drs.address).created_by_mscsctl
    assert destroyed(fresh) is None
    assert Address.parse("sql-prod-01/destroyed/sql-prod-01").kind == "destroyed"


def test_an_added_adapter_with_a_twin_the_vm_keeps_is_kept_too():
    cluster = cab_cluster()
    world, state = _applied(cluster, cab_world())
    node1 = world.vms["SQLNODE1"]
    twin = ObservedNic(key=4100, adapter="vmxnet3", network="Heartbeat")
    world = with_vm(world, node1.model_copy(update={"nics": [*node1.nics, twin]}))
    plan = build_destroy_plan(cluster, world, state)
    ids = _ids(plan)
    assert "node/SQLNODE1/nic/heartbeat#remove-nic" not in ids and "node/SQLNODE2/nic/heartbeat#remove-nic" in ids
    assert any(k.startswith("sql-prod-01/node/SQLNODE1/nic/heartbeat: vmxnet3 on Heartbeat") for k in plan.kept)


def test_applying_a_destroy_plan_leaves_in_the_state_only_what_stays():
    cluster = cab_cluster()
    world, state = _applied(cluster, cab_world())
    plan = build_destroy_plan(cluster, world, state)
    for action in plan.actions:
        state = record_outcome(state, done(action), NOW)
    # Every record of what the destroy took away or put back is gone (nothing here was found).
    assert sorted(state.resources) == []
    kept = record_destroyed(state, plan.kept, NOW)
    assert sorted(kept.resources) == ["sql-prod-01/destroyed/sql-prod-01"]


def test_a_host_option_the_file_no_longer_names_is_not_read_so_it_is_kept_and_said():
    cluster = cab_cluster()
    world, state = _applied(cluster, cab_world())
    # Set by an earlier version of the file (observe reads only the options the file names now).
    address = f"sql-prod-01/host/{A1}/option/Disk.QFullSampleSize"
    option = state.get(f"sql-prod-01/host/{A1}/option/Disk.ResetOnFailure")
    state = state.with_resource(address, option.model_copy(update={"applied": {"value": 32, PREVIOUS_VALUE: 0}}))
    plan = build_destroy_plan(cluster, world, state)
    assert f"{address}#restore-host-option" not in [a.id for a in plan.actions]
    assert f"{address}: not read (the file no longer names it), kept as it is" in plan.kept
