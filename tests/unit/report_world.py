"""Plans and drift reports for the report and graph tests, made by the real planner and drift check.

Three clusters on the hand-built world of `plan_world`:

- `sql-prod-01`: two fresh VMs, everything to do (the cross-box example's first plan);
- `sql-prod-02`: applied once, then the file drops the `data` disk and writes a host option
  that differs from the procedure (a warning), and someone added a NIC by hand (unmanaged);
- `sql-prod-03`: applied, nothing to do.

Drift: `sql-prod-01` applied, then changed in vCenter by hand; `sql-prod-02` applied, its
guests not reached (no credentials): not checked in full; `sql-prod-03` untouched.
The plan of `sql-prod-02` has its guests not reached too.
"""

from __future__ import annotations

from typing import Any

from reconciler.drift import DriftReport, detect_drift
from reconciler.observed import Observed, ObservedGuest, ObservedNic
from reconciler.outcome import Outcome, OutcomeRecord, OutcomeStatus
from reconciler.plan import ActionKind, Plan
from reconciler.planner import build_plan
from reconciler.record import record_outcome
from reconciler.spec import FailoverCluster, with_defaults
from state.model import State
from tests.unit.plan_world import CAB_YAML, as_applied, cab_world

APPLIED_AT = "2026-01-02T03:04:05Z"
PLANNED_AT = "2026-01-03T08:00:00Z"
CHECKED_AT = "2026-01-04T02:00:00Z"
HASH = "0" * 64


def named_cluster(name: str, **spec_changes: object) -> FailoverCluster:
    doc = {**CAB_YAML, "metadata": {"name": name}, "spec": {**CAB_YAML["spec"], **spec_changes}}
    return with_defaults(FailoverCluster.model_validate(doc))


def _record(action: Any) -> OutcomeRecord:
    """What the vCenter executor reports for an action, as the hand-built world numbers devices."""
    after = action.after
    rec: dict[str, Any] = {"vm_moref": f"vm-{action.target}"}
    if action.kind is ActionKind.ADD_CONTROLLER:
        rec["device_key"] = 1001
    elif action.kind in (ActionKind.CREATE_DISK, ActionKind.ATTACH_DISK):
        rec |= {"device_key": 2001 + after.unit, "file": after.file}
    elif action.kind is ActionKind.ADD_NIC:
        rec["device_key"] = 4001
    return OutcomeRecord(**rec)


def applied_state(plan: Plan, now: str = APPLIED_AT) -> State:
    """The state apply leaves after running every action of `plan` at `now`."""
    state = State.new(plan.cluster, HASH, now=now)
    for action in plan.actions:
        outcome = Outcome(action, OutcomeStatus.DONE, _record(action))
        state = record_outcome(state, outcome, now)
    return state


def applied(cluster: FailoverCluster) -> tuple[Observed, State]:
    """The hand-built world and the state after a first apply of `cluster`."""
    world = cab_world()
    first = build_plan(cluster, world)
    return as_applied(cluster, world, first), applied_state(first)


def _with_vm(world: Observed, vm: str, **changes: Any) -> Observed:
    vms = dict(world.vms)
    vms[vm] = vms[vm].model_copy(update=changes)
    return world.model_copy(update={"vms": vms})


NO_CREDENTIALS = "no guest credentials: set MSCSCTL_GUEST_USER and MSCSCTL_GUEST_PASSWORD"


def without_guests(world: Observed, *nodes: str) -> Observed:
    """The world with these nodes' guests asked for and not reached (no credentials)."""
    guests = {n: ObservedGuest(node=n, reason="no-credentials", detail=NO_CREDENTIALS) for n in nodes}
    return world.model_copy(update={"guests": guests})


def sample_plans() -> list[Plan]:
    fresh = build_plan(
        named_cluster("sql-prod-01"),
        cab_world(),
        desired_file="clusters/sql-prod-01.yaml",
        desired_hash=HASH,
        created_at=PLANNED_AT,
    )
    world, state = applied(named_cluster("sql-prod-02"))
    node = world.vms["SQLNODE1"]
    world = _with_vm(world, "SQLNODE1", nics=[*node.nics, ObservedNic(key=4009, adapter="e1000e", network="Backup")])
    changed = named_cluster(
        "sql-prod-02",
        sharedDisks={"disks": CAB_YAML["spec"]["sharedDisks"]["disks"][:1]},
        hostOptions={"Disk.UseLunReset": 0},
    )
    edited = build_plan(
        changed,
        without_guests(world, "SQLNODE1", "SQLNODE2"),
        managed=state.managed(),
        desired_file="clusters/sql-prod-02.yaml",
        desired_hash=HASH,
        created_at=PLANNED_AT,
    )
    edited = edited.model_copy(
        update={"notes": ["guest side not observed: MSCSCTL_GUEST_USER is not set (use --skip-guest to leave it out)"]}
    )
    third = named_cluster("sql-prod-03")
    world, state = applied(third)
    done = build_plan(
        third,
        world,
        managed=state.managed(),
        desired_file="clusters/sql-prod-03.yaml",
        desired_hash=HASH,
        created_at=PLANNED_AT,
    )
    return [fresh, edited, done]


def drifted_world() -> tuple[FailoverCluster, Observed, State]:
    """`sql-prod-01` applied, then changed by hand: node 2's bus sharing, a host option, a DRS override, a NIC."""
    cluster = named_cluster("sql-prod-01")
    world, state = applied(cluster)
    node2 = world.vms["SQLNODE2"]
    ctrl = node2.controllers[1].model_copy(update={"sharing": "none"})
    world = _with_vm(
        world,
        "SQLNODE2",
        controllers={**node2.controllers, 1: ctrl},
        nics=[n for n in node2.nics if n.network != "Heartbeat"],
    )
    hosts = dict(world.hosts)
    host = hosts["esx-a1.lab.local"]
    hosts["esx-a1.lab.local"] = host.model_copy(update={"options": {**host.options, "Disk.UseDeviceReset": 1}})
    vc = world.clusters["Cluster-A"]
    vc = vc.model_copy(update={"drs_overrides": {**vc.drs_overrides, "SQLNODE1": "fullyAutomated"}})
    world = world.model_copy(update={"hosts": hosts, "clusters": {**world.clusters, "Cluster-A": vc}})
    return cluster, world, state


def sample_drift() -> list[DriftReport]:
    cluster, world, state = drifted_world()
    drifted = detect_drift(cluster, world, state, desired_file="clusters/sql-prod-01.yaml", checked_at=CHECKED_AT)
    clean_cluster = named_cluster("sql-prod-03")
    clean_world, clean_state = applied(clean_cluster)
    clean = detect_drift(
        clean_cluster, clean_world, clean_state, desired_file="clusters/sql-prod-03.yaml", checked_at=CHECKED_AT
    )
    partial_cluster = named_cluster("sql-prod-02")
    partial_world, partial_state = applied(partial_cluster)
    partial = detect_drift(
        partial_cluster,
        without_guests(partial_world, "SQLNODE1", "SQLNODE2"),
        partial_state,
        desired_file="clusters/sql-prod-02.yaml",
        checked_at=CHECKED_AT,
    )
    return [drifted, partial, clean]
