"""From a desired file and what vCenter shows to a plan: pure, no I/O.

`build_plan()` is the whole pipeline after the read: resolve the vSphere version, run the
catalogue's rules against the file and vCenter (errors stop here, before any change),
normalize both sides, diff, and order the changes into actions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from reconciler import normalize
from reconciler.address import Address, Scope
from reconciler.diff import Change, diff_trees
from reconciler.errors import MscsError, RuleViolation
from reconciler.findings import Severity, has_errors
from reconciler.kinds import ActionKind, Context, Managed
from reconciler.kinds.controller import NAME as CONTROLLER
from reconciler.kinds.disk import NAME as DISK
from reconciler.kinds.disk import RdmDiskPayload, VmdkDiskPayload
from reconciler.kinds.facts import shared_controllers
from reconciler.kinds.guest import NAME as GUEST
from reconciler.kinds.guest import address as guest_address
from reconciler.kinds.host import LUN
from reconciler.kinds.ownership import disk_name_of_file, disk_users, users_of
from reconciler.kinds.power import NAME as POWER
from reconciler.nic_slots import moved_nics, record_moved_nics
from reconciler.observed import Observed, ObservedVm
from reconciler.plan import NodeFingerprint, Plan, UncheckedPart, plan_actions, unmanaged_lines
from reconciler.rules import run_rules
from reconciler.rules.catalogue import target_version
from reconciler.spec import FailoverCluster
from reconciler.target import Target, narrowing, unmatched_error


def build_plan(
    cluster: FailoverCluster,
    observed: Observed,
    *,
    managed: Managed | None = None,
    desired_file: str = "",
    desired_hash: str = "",
    created_at: str = "",
    locate: Any = None,
    targets: Sequence[Target] = (),
) -> Plan:
    """`cluster` must already carry its defaults (`spec.with_defaults`).

    `managed` is the state's resources by address (`State.managed()`), `locate` turns a
    finding's field path into file:line:column (the loader's source map), when there is one.
    `targets` (`--target`) narrow the plan to the objects they name and what those depend
    on (`targeted_changes`); the rules still judge the whole file and vCenter. A plan that
    any target names is `partial` (Terraform warns on every `-target`): even a whole
    cluster's plan left the fleet's other clusters out.
    """
    version = target_version(cluster, observed)
    findings = run_rules(cluster, version=version, observed=observed, managed=managed)
    if locate is not None:
        findings = [locate(f) for f in findings]
    if has_errors(findings):
        raise RuleViolation(findings)
    ctx = normalize.context(cluster, observed, version, managed)
    desired = normalize.desired_tree(cluster, ctx, observed)
    current, unmanaged = normalize.observed_tree(cluster, observed, ctx, managed)
    changes = diff_trees(current, desired)
    narrow = narrowing(targets, cluster.name)
    nodes = {vm: observed.vms[vm] for vm in [*ctx.vm_nodes, *ctx.former_nodes] if vm in observed.vms}
    existing = {d.file for n in nodes.values() for d in n.disks.values() if d.file}
    if narrow:
        check_targets(cluster, narrow, [*desired, *current], ctx.former_nodes)
        changes = targeted_changes(changes, narrow, ctx.vm_nodes, existing)
    shared = {vm: _sharing_now(cluster, n) for vm, n in nodes.items()}
    actions = plan_actions(
        cluster,
        ctx,
        changes,
        powered_on={vm: n.powered_on for vm, n in nodes.items()},
        tools_running={vm: n.tools_running for vm, n in nodes.items()},
        existing_files=existing,
        shared_bus_sharing={vm: sharing for vm, sharing in shared.items() if sharing is not None},
    )
    moved = moved_nics(cluster, observed, managed or {})
    actions += record_moved_nics([m for m in moved if not narrow or any(t.matches(m.address) for t in narrow)])
    return Plan(
        cluster=cluster.name,
        desired_file=desired_file,
        desired_hash=desired_hash,
        created_at=created_at,
        **what_was_seen(cluster, observed, ctx, version),
        actions=actions,
        unmanaged=unmanaged_lines(unmanaged),
        findings=[f for f in findings if f.severity is Severity.WARNING],
        notes=guest_notes(cluster, observed),
        unchecked=[
            u
            for u in unchecked_guests(cluster, observed, powered_off_planned=True)
            if not narrow or any(t.matches(guest_address(cluster, u.node)) for t in narrow)
        ],
        partial=any(t.cluster == cluster.name for t in targets),
        targets=[str(t) for t in targets if t.cluster == cluster.name],
    )


def cluster_addresses(cluster: FailoverCluster, observed: Observed, state: Any = None) -> list[Address]:
    """Every object's address the file describes or vCenter shows for the cluster (what a target may name)."""
    managed = state.managed() if state is not None else None
    version = target_version(cluster, observed)
    ctx = normalize.context(cluster, observed, version, managed)
    current, _ = normalize.observed_tree(cluster, observed, ctx, managed)
    return [*normalize.desired_tree(cluster, ctx, observed), *current]


def check_targets(
    cluster: FailoverCluster, targets: Sequence[Target], known: Sequence[Address], former: Sequence[str]
) -> None:
    """A target that names no node, host or object of the cluster (in the file or in vCenter) is an error."""
    owners = {(a.scope, a.owner) for a in known} | {(Scope.NODE, n) for n in [*cluster.spec.node_names, *former]}
    for target in targets:
        if target.address is None:
            if (target.scope, target.owner) not in owners:
                raise unmatched_error(
                    target, [*known, *(Address.node(cluster.name, n, "") for s, n in owners if s is Scope.NODE)]
                )
        elif not any(target.matches(a) for a in known):
            raise unmatched_error(target, known)


def targeted_changes(
    changes: list[Change], targets: Sequence[Target], vm_nodes: Sequence[str], existing_files: set[str]
) -> list[Change]:
    """The changes the targets name, with the changes they depend on, as Terraform's `-target` does.

    A disk needs its node's shared controller, a shared file not there yet needs the node that
    creates it (the first node, in the rolling order), and an RDM needs its LUN's perennial
    reservation on the hosts; a guest setting needs its node running. The power-off and
    power-on around a cold change are not changes: `plan_actions` adds them for what is left.
    """
    chosen = {c.address for c in changes if any(t.matches(c.address) for t in targets)}
    order = {vm: n for n, vm in enumerate(vm_nodes)}
    todo = [c for c in changes if c.address in chosen]
    while todo:  # what a dependency needs comes too (the creating node's disk needs its controller)
        change = todo.pop()
        if not change.address.on_node:
            continue
        for other in changes:
            if other.address not in chosen and _needed_by(change, other.address, order, existing_files):
                chosen.add(other.address)
                todo.append(other)
    return [c for c in changes if c.address in chosen]


def _needed_by(change: Change, other: Address, order: dict[str, int], existing_files: set[str]) -> bool:
    """Whether the change at `other` must come with `change` (a change on a node)."""
    node, kind, last = change.address.owner, change.address.kind, len(order)
    same_node = other.on_node and other.owner == node
    if kind == GUEST:
        return same_node and other.kind == POWER
    if kind != DISK:
        return False
    if same_node and other.kind == CONTROLLER:
        return True
    if other.on_host and other.kind == LUN:
        return other.name == getattr(change.after, "lun", None)
    file = getattr(change.after, "file", None)
    return (
        other.on_node
        and other.kind == DISK
        and other.name == change.address.name
        and bool(file)
        and file not in existing_files
        and order.get(other.owner, last) < order.get(node, last)
    )


def what_was_seen(
    cluster: FailoverCluster, observed: Observed, ctx: Context, version: tuple[int, int] | None
) -> dict[str, Any]:
    """What a plan records of vCenter as it planned, so that a saved plan found stale is refused:
    the version, each node's fingerprint, the hosts' options, who held each LUN and shared file."""
    nodes = {vm: observed.vms[vm] for vm in [*ctx.vm_nodes, *ctx.former_nodes] if vm in observed.vms}
    return {
        "vsphere_version": ".".join(map(str, version)) if version else "",
        "seen_nodes": {
            vm: NodeFingerprint(moref=n.moref, change_version=n.change_version, power_state=n.power_state)
            for vm, n in nodes.items()
        },
        "seen_options": {
            host: {k: observed.hosts[host].options.get(k) for k in (cluster.spec.host_options or {})}
            for host in ctx.node_host_names
            if host in observed.hosts
        },
        "seen_disk_users": disk_users(cluster, observed),
    }


def _sharing_now(cluster: FailoverCluster, vm: ObservedVm) -> str | None:
    """The bus sharing vCenter shows on the node's shared controllers (a sharing one wins); None:
    no shared controller yet."""
    found = [c.sharing for _, c in sorted(shared_controllers(cluster, vm).items())]
    return next((s for s in found if s != "none"), found[0] if found else None)


def guest_notes(cluster: FailoverCluster, observed: Observed) -> list[str]:
    """Per node, why its guest side is not (yet) known: the rest of the plan stands."""
    if observed.guests is None:
        return []
    notes = []
    for node in cluster.spec.node_names:
        guest = observed.guests.get(node)
        if guest is None or guest.available:
            continue
        if guest.reason == "powered-off":
            notes.append(f"{node}: guest not observed ({guest.detail}); apply sets the disk timeout once it runs")
        else:
            notes.append(f"{node}: guest not observed: {guest.detail} [{guest.reason}]; its disk timeout is left out")
    return notes


def unchecked_guests(cluster: FailoverCluster, observed: Observed, *, powered_off_planned: bool) -> list[UncheckedPart]:
    """Each node whose guest side was asked for but not observed, and why.

    None when the guests were left out on purpose (`--skip-guest`: `observed.guests` is
    None). A powered-off node's guest is planned (apply powers it on, then sets the value),
    so a plan does not count it (`powered_off_planned`); a drift check does.
    """
    if observed.guests is None:
        return []
    out = []
    for node in cluster.spec.node_names:
        guest = observed.guests.get(node)
        if guest is None or guest.available or (powered_off_planned and guest.reason == "powered-off"):
            continue
        out.append(UncheckedPart(node=node, part="guest", reason=guest.reason or "", detail=guest.detail))
    return out


def stale_reasons(plan: Plan, observed: Observed) -> list[str]:
    """What changed in vCenter since a saved plan was made (empty: the plan still holds).

    vCenter would refuse a reconfigure with an old `changeVersion`; the simulated lab does
    not, so this is checked here for every node and every host option the plan saw, and for
    who holds the cluster's LUNs and shared files. A detach the plan asks for of a device that
    vCenter does not show as the cluster's own is refused outright (`UnprovenDevice`).
    """
    refuse_unproven_detaches(plan, observed)
    reasons = []
    for vm, seen in plan.seen_nodes.items():
        now = observed.vms.get(vm)
        if now is None:
            reasons.append(f"VM {vm} is gone")
        elif now.change_version != seen.change_version:
            reasons.append(f"VM {vm} was reconfigured (changeVersion {seen.change_version} -> {now.change_version})")
        elif now.power_state != seen.power_state:
            reasons.append(f"VM {vm} was {now.power_state} since ({seen.power_state} when planned)")
    for host, options in plan.seen_options.items():
        for key, value in options.items():
            now_value = observed.hosts[host].options.get(key) if host in observed.hosts else None
            if now_value != value:
                reasons.append(f"host {host} option {key} is {now_value} now ({value} when planned)")
    now_users = users_of(plan.seen_disk_users, observed)
    for key, seen in plan.seen_disk_users.items():
        if now_users[key] != seen:
            reasons.append(
                f"{key} is held by {', '.join(now_users[key]) or 'no VM'} now "
                f"({', '.join(seen) or 'no VM'} when planned)"
            )
    return reasons


class UnprovenDevice(MscsError):
    """A saved plan asks to detach a device that vCenter does not show as the cluster's own."""

    code = "MSCS-SAFE-001"


def refuse_unproven_detaches(plan: Plan, observed: Observed) -> None:
    """Every detach of a saved plan must be of the cluster's own disk as vCenter shows it now:
    the device at the action's bus:unit, if it still holds the action's file, lies on a
    bus-sharing controller (or one the plan makes shared) and is the cluster's file of that
    disk name, or an RDM of the LUN the plan found."""
    shared_by_plan = {
        (a.target, int(a.address.name))
        for a in plan.actions
        if a.kind in (ActionKind.ADD_CONTROLLER, ActionKind.EDIT_CONTROLLER) and a.address.name.isdigit()
    }
    problems = []
    for action in plan.actions:
        was = action.before
        if action.kind is not ActionKind.DETACH_DISK or not isinstance(was, RdmDiskPayload | VmdkDiskPayload):
            continue
        vm = observed.vms.get(action.target)
        disk = vm.disks.get(was.slot) if vm is not None else None
        if vm is None or disk is None or disk.file != was.file:
            continue  # detached already: apply skips it
        controller = vm.controller_on(disk.bus, nvme=disk.adapter == "nvme")
        shared = (controller is not None and controller.sharing != "none") or (vm.name, disk.bus) in shared_by_plan
        named = disk_name_of_file(plan.cluster, disk.file, disk.kind) == action.address.name
        same_lun = isinstance(was, RdmDiskPayload) and disk.kind == "rdm" and bool(disk.lun) and disk.lun == was.lun
        if shared and (named or same_lun):
            continue
        why = (
            f"on bus {disk.bus}, whose controller shares no bus"
            if not shared
            else f"its file is not under the cluster's path [DATASTORE] {plan.cluster}/"
        )
        problems.append(
            f"the plan says {action.address} is {was.file} at SCSI {was.bus}:{was.unit}; vCenter shows "
            f"{disk.file} at SCSI {disk.bus}:{disk.unit} of {vm.name}, {why}"
        )
    if problems:
        raise UnprovenDevice(
            "; ".join(problems) + ": refusing to apply; plan again (mscsctl plans only the cluster's own disks) "
            f"[{UnprovenDevice.code}]"
        )
