"""From a desired file and what vCenter shows to a plan: pure, no I/O.

`build_plan()` is the whole pipeline after the read: resolve the vSphere version, run the
catalogue's rules against the file and vCenter (errors stop here, before any change),
normalize both sides, diff, and order the changes into actions.
"""

from __future__ import annotations

from typing import Any

from reconciler import normalize
from reconciler.diff import diff_trees
from reconciler.errors import MscsError, RuleViolation
from reconciler.findings import Severity, has_errors
from reconciler.kinds import ActionKind, Managed
from reconciler.kinds.disk import RdmDiskPayload, VmdkDiskPayload
from reconciler.kinds.facts import shared_controllers
from reconciler.kinds.ownership import disk_name_of_file, disk_users, users_of
from reconciler.nic_slots import moved_nics, record_moved_nics
from reconciler.observed import Observed, ObservedVm
from reconciler.plan import NodeFingerprint, Plan, UncheckedPart, plan_actions, unmanaged_lines
from reconciler.rules import run_rules
from reconciler.rules.catalogue import target_version
from reconciler.spec import FailoverCluster


def build_plan(
    cluster: FailoverCluster,
    observed: Observed,
    *,
    managed: Managed | None = None,
    desired_file: str = "",
    desired_hash: str = "",
    created_at: str = "",
    locate: Any = None,
) -> Plan:
    """`cluster` must already carry its defaults (`spec.with_defaults`).

    `managed` is the state's resources by address (`State.managed()`), `locate` turns a
    finding's field path into file:line:column (the loader's source map), when there is one.
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
    nodes = {vm: observed.vms[vm] for vm in [*ctx.vm_nodes, *ctx.former_nodes] if vm in observed.vms}
    shared = {vm: _sharing_now(cluster, n) for vm, n in nodes.items()}
    actions = plan_actions(
        cluster,
        ctx,
        changes,
        powered_on={vm: n.powered_on for vm, n in nodes.items()},
        tools_running={vm: n.tools_running for vm, n in nodes.items()},
        existing_files={d.file for n in nodes.values() for d in n.disks.values() if d.file},
        shared_bus_sharing={vm: sharing for vm, sharing in shared.items() if sharing is not None},
    )
    actions += record_moved_nics(moved_nics(cluster, observed, managed or {}))
    return Plan(
        cluster=cluster.name,
        desired_file=desired_file,
        desired_hash=desired_hash,
        created_at=created_at,
        vsphere_version=".".join(map(str, version)) if version else "",
        seen_nodes={
            vm: NodeFingerprint(moref=n.moref, change_version=n.change_version, power_state=n.power_state)
            for vm, n in nodes.items()
        },
        seen_options={
            host: {k: observed.hosts[host].options.get(k) for k in (cluster.spec.host_options or {})}
            for host in ctx.node_host_names
            if host in observed.hosts
        },
        seen_disk_users=disk_users(cluster, observed),
        actions=actions,
        unmanaged=unmanaged_lines(unmanaged),
        findings=[f for f in findings if f.severity is Severity.WARNING],
        notes=guest_notes(cluster, observed),
        unchecked=unchecked_guests(cluster, observed, powered_off_planned=True),
    )


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
