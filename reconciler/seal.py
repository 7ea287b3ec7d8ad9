"""Sealed saved plans: `apply PLAN` carries out only the plan mscsctl made, unedited.

A saved plan carries a `seal`, the sha256 digest of its canonical JSON (the fields below,
keys sorted, no white space). `apply PLAN` computes it again: a plan whose seal is missing
or does not match was changed after it was saved, and is refused as tampered. A digest
anyone can compute again only catches an edit that did not bother to, so `apply PLAN` also
plans again, from the desired file and vCenter as they are now, and refuses a saved plan
whose actions (or the nodes and options it saw) differ from that fresh plan, naming the
first action and field that differ; and it runs the rule catalogue on the saved plan's own
actions, so that an action no rule allows (a DRS override `fullyAutomated` under vSphere 6
and later, MSCS-PLACE-004) is refused with the rule's words.

All of it is pure: `reconciler.run` reads the plan, vCenter and the state, and calls these.
What is refused, in order: a broken seal (with the first field that differs from a plan made
now, when vCenter did not change meanwhile), an action the rules refuse, what changed since
the plan was made (the desired file, vCenter: stale), any other difference from a plan made now.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from reconciler.errors import MscsError, StaleStateError
from reconciler.findings import Severity
from reconciler.kinds import ActionKind
from reconciler.kinds.guest import GuestSettingPayload
from reconciler.kinds.guest import address as guest_address
from reconciler.observed import Observed
from reconciler.plan import Action, Plan, Reason
from reconciler.planner import stale_reasons
from reconciler.rules import run_rules
from reconciler.spec import (
    AdapterType,
    BusSharing,
    Compatibility,
    ControllerType,
    DrsBehavior,
    FailoverCluster,
    HaRestart,
    RdmDisk,
    parse_version,
)

if TYPE_CHECKING:
    from reconciler.workspace import Desired

SEALED_FIELDS = (
    "cluster",
    "vsphere_version",
    "created_at",
    "desired_hash",
    "seen_nodes",
    "seen_options",
    "seen_disk_users",
    "actions",
)
SEAL_PREFIX = "sha256:"


class TamperedPlan(MscsError):
    """A saved plan that is not the one mscsctl made: edited after it was saved."""


def refuse_stale_file(path: Path, saved: Sequence[Plan], desired: Sequence[Desired]) -> None:
    """Before vCenter is read: a desired file changed since a plan that is otherwise intact."""
    edited = _edited_files(saved, desired)
    if edited and not any(seal_problem(p) or rule_problems(p, d.cluster) for p, d in zip(saved, desired, strict=True)):
        raise _stale_file(path, edited[0])


def refuse_edited_or_stale(
    path: Path,
    saved: Sequence[Plan],
    desired: Sequence[Desired],
    observed: dict[str, Observed],
    fresh: Sequence[Plan] | None,
) -> None:
    """`TamperedPlan` or `StaleStateError` for saved plans that are not to be applied.

    `fresh` are the plans made now from the same files and what vCenter shows now (None
    when vCenter now breaks a rule, so that no plan could be made).
    """
    pairs = list(zip(saved, desired, strict=True))
    for n, (plan, d) in enumerate(pairs):
        seal = seal_problem(plan)
        judged = rule_problems(plan, d.cluster)
        if seal is not None:
            stale = stale_reasons(plan, observed[plan.cluster])
            difference = plan_difference(plan, fresh[n], d.cluster) if fresh is not None and not stale else None
            raise TamperedPlan(
                f"the plan {path} was edited after it was saved (tampered): {seal}"
                + (f": {difference}" if difference else "")
                + (f"; {judged[0]}" if judged else "")
                + ". Make a new one with `mscsctl plan --out`."
            )
        if judged:
            raise TamperedPlan(f"the plan {path} holds an action no rule allows (tampered): {judged[0]}")
    edited = _edited_files(saved, desired)
    if edited:
        raise _stale_file(path, edited[0])
    reasons = [r for plan in saved for r in stale_reasons(plan, observed[plan.cluster])]
    if reasons:
        raise StaleStateError(
            f"the plan {path} is stale, vCenter changed since it was made: "
            + "; ".join(reasons)
            + ". Run `mscsctl plan` again."
        )
    for n, (plan, d) in enumerate(pairs):
        difference = plan_difference(plan, fresh[n], d.cluster) if fresh is not None else None
        if difference is not None:
            raise TamperedPlan(
                f"the plan {path} does not match a plan made now from {d.path} and vCenter, which did not "
                f"change since (tampered, or the state changed): {difference}. Run `mscsctl plan` again."
            )


def _edited_files(saved: Sequence[Plan], desired: Sequence[Desired]) -> list[Path]:
    return [d.path for plan, d in zip(saved, desired, strict=True) if plan.desired_hash != d.hash]


def _stale_file(path: Path, edited: Path) -> StaleStateError:
    return StaleStateError(f"the plan {path} is stale: {edited} changed since it was made; run `mscsctl plan` again")


def seal_of(plan: Plan) -> str:
    """The plan's seal: sha256 of the canonical JSON of `SEALED_FIELDS`, as saved (JSON names)."""
    fields = set(SEALED_FIELDS) | ({"destroy", "kept", "records_destroyed"} if plan.destroy else set())
    data = plan.model_dump(mode="json", by_alias=True, include=fields)
    if plan.partial or plan.targets:  # sealed when there are targets; a whole plan's seal is as before
        data |= {"partial": plan.partial, "targets": plan.targets}
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return SEAL_PREFIX + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def sealed(plan: Plan) -> Plan:
    """The plan with its seal, as the run loop hands plans out (and a saved plan reads back)."""
    return plan.model_copy(update={"seal": seal_of(plan)})


def seal_problem(plan: Plan) -> str | None:
    """Why the plan's seal does not vouch for it (None: it does)."""
    if not plan.seal:
        return "it carries no seal"
    if plan.seal != seal_of(plan):
        return "its seal does not match its content"
    return None


def plan_difference(saved: Plan, fresh: Plan, cluster: FailoverCluster) -> str | None:
    """The first thing in which a saved plan differs from the plan made now, as one phrase.

    `fresh` is planned without asking the guests (a saved plan's guest actions read the
    guest again when they run), so the saved plan's guest actions are checked against the
    desired file instead, and left out of the comparison of the other actions.
    """
    for name in ("cluster", "destroy", "desired_hash", "vsphere_version"):
        mine, now = getattr(saved, name), getattr(fresh, name)
        if mine != now:
            return f"{name} is {mine!r} in the plan, {now!r} now"
    for name in ("seen_nodes", "seen_options"):
        difference = _first_difference(_dumped(getattr(saved, name)), _dumped(getattr(fresh, name)), name)
        if difference is not None:
            return difference
    guest_problem = next(filter(None, (_guest_problem(a, cluster) for a in _guest_actions(saved))), None)
    if guest_problem is not None:
        return guest_problem
    mine, now = _without_guest(saved.actions), _without_guest(fresh.actions)
    for n, (a, b) in enumerate(zip(mine, now, strict=False), start=1):
        if a.id != b.id:
            if a.id not in {x.id for x in now}:
                return f"{a.id}: in the plan, not in a plan made now"
            if b.id not in {x.id for x in mine}:
                return f"{b.id}: in a plan made now, not in the plan"
            return f"action {n} is {a.id} in the plan, {b.id} in a plan made now (another order)"
        difference = _first_difference(_dumped(a), _dumped(b), "")
        if difference is not None:
            return f"{a.id}: {difference}"
    if len(mine) > len(now):
        return f"{mine[len(now)].id}: in the plan, not in a plan made now"
    if len(now) > len(mine):
        return f"{now[len(mine)].id}: in a plan made now, not in the plan"
    return None


def rule_problems(plan: Plan, cluster: FailoverCluster) -> list[str]:
    """The plan's actions that the rule catalogue refuses, one phrase each.

    Each action a rule can judge is put in the desired file's place (a DRS override's
    behaviour as `placement.drs`, a controller's sharing as the controller's...), and the
    rules that only read the file run on the result: an error that the file alone does not
    have is the action's. A value no field of the file takes is a problem of its own.
    """
    version = parse_version(plan.vsphere_version) if plan.vsphere_version else None
    known = {(f.rule_id, f.message) for f in run_rules(cluster, version=version)}
    problems = []
    for action in plan.actions:
        overlay = _OVERLAYS.get(action.kind)
        if overlay is None or action.after is None:
            continue
        try:
            as_planned = overlay(cluster, action)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            problems.append(f"{action.id}: after: {exc}")
            continue
        if as_planned is None:
            continue
        for finding in run_rules(as_planned, version=version):
            if finding.severity is Severity.ERROR and (finding.rule_id, finding.message) not in known:
                problems.append(f"{action.id}: {finding.message} [{finding.rule_id}]")
    return problems


def _dumped(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True)
    if isinstance(value, dict):
        return {k: _dumped(v) for k, v in value.items()}
    return value


def _first_difference(mine: Any, now: Any, path: str) -> str | None:
    """The first field path at which two JSON values differ, with both values."""
    if isinstance(mine, dict) and isinstance(now, dict):
        for key in [*mine, *(k for k in now if k not in mine)]:
            where = f"{path}.{key}" if path else str(key)
            if key not in now:
                return f"{where} is in the plan, not in a plan made now"
            if key not in mine:
                return f"{where} is missing from the plan (a plan made now has {_shown(now[key])})"
            difference = _first_difference(mine[key], now[key], where)
            if difference is not None:
                return difference
        return None
    if mine != now:
        return f"{path} is {_shown(mine)} in the plan, {_shown(now)} in a plan made now"
    return None


def _shown(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _guest_actions(plan: Plan) -> list[Action]:
    return [a for a in plan.actions if a.kind is ActionKind.SET_GUEST_SETTING]


def _guest_problem(action: Action, cluster: FailoverCluster) -> str | None:
    """What in a saved guest action is not what the desired file asks of that node."""
    if action.target not in cluster.spec.node_names:
        return f"{action.id}: target {action.target!r} is no node of the desired file"
    expected = {
        "id": f"{guest_address(cluster, action.target)}#{ActionKind.SET_GUEST_SETTING}",
        "address": str(guest_address(cluster, action.target)),
        "after": GuestSettingPayload(seconds=cluster.spec.guest.disk_timeout_seconds).model_dump(mode="json"),
        "reason": str(Reason.GUEST_DIFFERS),
        "rule": "MSCS-GUEST-001",
        "batch": None,
    }
    seen = _dumped(action)
    for key, value in expected.items():
        if seen.get(key) != value:
            return f"{action.id}: {key} is {_shown(seen.get(key))} in the plan, the desired file asks {_shown(value)}"
    return None


def _without_guest(actions: list[Action]) -> list[Action]:
    """The actions without guest settings; a dependency on one becomes a dependency on what it waited for."""
    guest = {a.id: a.depends_on for a in actions if a.kind is ActionKind.SET_GUEST_SETTING}

    def resolved(ids: tuple[str, ...]) -> tuple[str, ...]:
        out: list[str] = []
        for dep in ids:
            out += resolved(guest[dep]) if dep in guest else [dep]
        return tuple(dict.fromkeys(out))

    return [a.model_copy(update={"depends_on": resolved(a.depends_on)}) for a in actions if a.id not in guest]


# How an action's `after` takes the place of the desired file's field it comes from.
Overlay = Callable[[FailoverCluster, Action], FailoverCluster | None]


def _with_spec(cluster: FailoverCluster, **update: Any) -> FailoverCluster:
    return cluster.model_copy(update={"spec": cluster.spec.model_copy(update=update)})


def _placement(cluster: FailoverCluster, **update: Any) -> FailoverCluster:
    return _with_spec(cluster, placement=cluster.spec.placement.model_copy(update=update))


def _drs(cluster: FailoverCluster, action: Action) -> FailoverCluster:
    return _placement(cluster, drs=DrsBehavior(_field(action, "behavior")))


def _ha(cluster: FailoverCluster, action: Action) -> FailoverCluster:
    return _placement(cluster, ha=HaRestart(_field(action, "restart")))


def _vm_rule(cluster: FailoverCluster, action: Action) -> FailoverCluster:
    kind = _field(action, "kind")
    if kind not in ("affinity", "anti-affinity"):
        raise ValueError(f"{kind!r} is no VM-VM rule kind (affinity, anti-affinity)")
    return _placement(cluster, separate_hosts=kind == "anti-affinity")


def _controller(cluster: FailoverCluster, action: Action) -> FailoverCluster:
    shared = cluster.spec.shared_disks
    controller = shared.controller.model_copy(
        update={"type": ControllerType(_field(action, "type")), "sharing": BusSharing(_field(action, "sharing"))}
    )
    return _with_spec(cluster, shared_disks=shared.model_copy(update={"controller": controller}))


def _disk(cluster: FailoverCluster, action: Action) -> FailoverCluster | None:
    shared = cluster.spec.shared_disks
    disks = list(shared.disks)
    index = next((n for n, d in enumerate(disks) if d.name == action.address.name), None)
    if index is None or not isinstance(disks[index], RdmDisk):
        return None  # a disk the file does not describe: the comparison with a plan made now says so
    compatibility = _field(action, "compatibility")
    disks[index] = disks[index].model_copy(
        update={
            "lun": _field(action, "lun"),
            "unit": _field(action, "unit"),
            "compatibility": Compatibility(compatibility) if compatibility is not None else None,
        }
    )
    return _with_spec(cluster, shared_disks=shared.model_copy(update={"disks": disks}))


def _nic(cluster: FailoverCluster, action: Action) -> FailoverCluster | None:
    role = action.address.name
    network = getattr(cluster.spec.networks, role, None)
    if network is None:
        return None
    network = network.model_copy(update={"adapter": AdapterType(_field(action, "adapter"))})
    return _with_spec(cluster, networks=cluster.spec.networks.model_copy(update={role: network}))


def _host_option(cluster: FailoverCluster, action: Action) -> FailoverCluster:
    value = _field(action, "value")
    if not isinstance(value, int):
        raise ValueError(f"{value!r} is not a number: host options mscsctl sets are numbers")
    return _with_spec(cluster, host_options={**(cluster.spec.host_options or {}), action.address.name: value})


def _guest(cluster: FailoverCluster, action: Action) -> FailoverCluster:
    seconds = _field(action, "seconds")
    if not isinstance(seconds, int):
        raise ValueError(f"{seconds!r} is not a number of seconds")
    return _with_spec(cluster, guest=cluster.spec.guest.model_copy(update={"disk_timeout_seconds": seconds}))


def _field(action: Action, name: str) -> Any:
    return getattr(action.after, name)


_OVERLAYS: dict[ActionKind, Overlay] = {
    ActionKind.SET_DRS_OVERRIDE: _drs,
    ActionKind.SET_HA_OVERRIDE: _ha,
    ActionKind.CREATE_RULE: _vm_rule,
    ActionKind.UPDATE_RULE: _vm_rule,
    ActionKind.ADD_CONTROLLER: _controller,
    ActionKind.EDIT_CONTROLLER: _controller,
    ActionKind.CREATE_DISK: _disk,
    ActionKind.ATTACH_DISK: _disk,
    ActionKind.ADD_NIC: _nic,
    ActionKind.EDIT_NIC: _nic,
    ActionKind.SET_HOST_OPTION: _host_option,
    ActionKind.SET_GUEST_SETTING: _guest,
}
