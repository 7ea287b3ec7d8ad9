"""The plan: changes turned into an ordered list of actions with explicit dependencies.

Order is part of the product (see README, "What apply does, in order"):
  1. host advanced options, once per host running a node;
  2. perennial reservation of each RDM LUN on every host of the vSphere cluster that sees it;
  3. DRS/HA overrides and the VM-VM (anti-)affinity rule;
  4. node by node (node 1 first, because it creates the shared files node 2 attaches):
     power off only if a change cannot be hot-plugged; the shared controller and every
     disk in one reconfigure; the NICs in the next (all disks before any NIC, so NIC PCI
     slots come after the disks'); power back on; guest settings last.
The next node is touched only once the previous one is powered on again, so the clustered
service always has a node up.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from reconciler.diff import Change, Op
from reconciler.findings import Finding
from reconciler.normalize import (
    CONTROLLER,
    DISK,
    DRS,
    GUEST,
    HA,
    LUN,
    NIC,
    OPTION,
    POWER,
    RULE,
    Context,
    Unmanaged,
    node_address,
    node_names,
)
from reconciler.rules.catalogue import get_rule
from reconciler.spec import FailoverCluster

PLAN_FORMAT_VERSION = 1


class ActionKind(StrEnum):
    SET_HOST_OPTION = "set-host-option"
    RESERVE_LUN = "reserve-lun"
    SET_DRS_OVERRIDE = "set-drs-override"
    SET_HA_OVERRIDE = "set-ha-override"
    CREATE_RULE = "create-rule"
    UPDATE_RULE = "update-rule"
    DELETE_RULE = "delete-rule"
    POWER_OFF = "power-off"
    ADD_CONTROLLER = "add-controller"
    EDIT_CONTROLLER = "edit-controller"
    DETACH_DISK = "detach-disk"
    CREATE_DISK = "create-disk"
    ATTACH_DISK = "attach-disk"
    REMOVE_NIC = "remove-nic"
    ADD_NIC = "add-nic"
    EDIT_NIC = "edit-nic"
    POWER_ON = "power-on"
    SET_GUEST_SETTING = "set-guest-setting"
    RECORD_NIC_SLOT = "record-nic-slot"  # nothing changes in vCenter: the state learns a moved adapter's slot


class Reason(StrEnum):
    """Why an action is in the plan: a closed set, rendered as a sentence by the renderer."""

    MISSING = "missing"  # vCenter does not have it
    DIFFERS = "differs"  # vCenter has another value
    NOT_IN_FILE = "not-in-file"  # mscsctl manages it, the file no longer describes it
    REPLACE = "replace-cannot-update"  # cannot be changed in place: detach, then attach anew
    COLD_CHANGE = "cold-change"  # a change on this node cannot be hot-plugged
    RESTORE_POWER = "restore-power"  # bring the node back after a cold change
    DESIRED_POWER = "desired-power"  # the node is off and must run
    GUEST_DIFFERS = "guest-differs"  # the guest has another value, or none
    NIC_MOVED = "nic-moved"  # the adapter is in another PCI slot than the one recorded


REASON_TEXT: dict[Reason, str] = {
    Reason.MISSING: "not present in vCenter",
    Reason.DIFFERS: "vCenter shows a different value",
    Reason.NOT_IN_FILE: "managed by mscsctl but no longer in the desired file (detach only, data kept)",
    Reason.REPLACE: "cannot be changed in place: detached, then attached anew",
    Reason.COLD_CHANGE: "a change on this node cannot be made while it runs",
    Reason.RESTORE_POWER: "bring the node back after the change",
    Reason.DESIRED_POWER: "cluster nodes run",
    Reason.GUEST_DIFFERS: "the guest has a different value, or none",
    Reason.NIC_MOVED: (
        "the adapter moved to another PCI slot, so Windows sees a new adapter: set its IP settings in the "
        "guest again (mscsctl cannot move it back); apply then records the new slot"
    ),
}

SYMBOL = {Op.CREATE: "+", Op.UPDATE: "~", Op.DELETE: "-"}


class Action(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str  # address#kind: unique in a plan
    address: str
    kind: ActionKind
    op: Op
    target: str  # VM, host or vSphere-cluster name the action changes
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    reason: Reason
    rule: str | None = None
    depends_on: tuple[str, ...] = ()
    batch: str | None = None  # actions sharing a batch go to vCenter in one call


class NodeFingerprint(BaseModel):
    model_config = ConfigDict(frozen=True)

    moref: str
    change_version: str
    power_state: str


class Plan(BaseModel):
    """What apply will do, and what was seen when it was planned (to refuse a stale plan)."""

    model_config = ConfigDict(frozen=True)

    format_version: int = PLAN_FORMAT_VERSION
    cluster: str
    desired_file: str = ""
    desired_hash: str = ""
    created_at: str = ""
    vsphere_version: str = ""
    seen_nodes: dict[str, NodeFingerprint] = Field(default_factory=dict)
    seen_options: dict[str, dict[str, Any]] = Field(default_factory=dict)  # host -> key -> value
    actions: list[Action] = Field(default_factory=list)
    unmanaged: list[str] = Field(default_factory=list)
    findings: list[Finding] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)  # e.g. guest side not observed, and why

    @property
    def has_changes(self) -> bool:
        return bool(self.actions)


# Device changes that vCenter refuses on a running VM once the controller shares its bus.
_COLD_KINDS = {ActionKind.ADD_CONTROLLER, ActionKind.EDIT_CONTROLLER}
_SHARED_DISK_KINDS = {ActionKind.CREATE_DISK, ActionKind.ATTACH_DISK, ActionKind.DETACH_DISK}


def plan_actions(
    cluster: FailoverCluster,
    ctx: Context,
    changes: list[Change],
    powered_on: dict[str, bool],
    *,
    tools_running: dict[str, bool] | None = None,
    existing_files: set[str] | None = None,
    shared_bus_sharing: dict[str, str] | None = None,
) -> list[Action]:
    """Order the changes into actions. `powered_on` is each VM node's power state now.

    `shared_bus_sharing` is the sharing mode vCenter shows today on each node's shared
    controller (absent: no controller yet), to know whether a disk change can be hot-plugged.
    """
    shared_bus_sharing = shared_bus_sharing or {}
    tools_running = tools_running or {}
    by_addr = {c.address: c for c in changes}
    actions: list[Action] = []
    host_actions = _host_actions(changes)
    actions += host_actions
    cluster_actions = _cluster_actions(ctx, changes)
    actions += cluster_actions
    previous_node_done: str | None = None
    # file -> id of the action that creates it ("" when a node has the file attached already:
    # the others attach it, nobody creates it again).
    creators: dict[str, str] = dict.fromkeys(existing_files or (), "")
    desired_sharing = str(cluster.spec.shared_disks.controller.sharing)
    for vm in ctx.vm_nodes:
        node_actions = _node_device_actions(cluster, vm, changes, creators)
        cold = any(a.kind in _COLD_KINDS for a in node_actions) or (
            any(a.kind in _SHARED_DISK_KINDS for a in node_actions)
            and (desired_sharing != "none" or shared_bus_sharing.get(vm, "none") != "none")
        )
        power_change = by_addr.get(node_address(cluster, vm, POWER))
        is_on = powered_on.get(vm, False)
        seq: list[Action] = []
        base_deps = tuple(a.id for a in host_actions + cluster_actions)
        if previous_node_done:
            base_deps += (previous_node_done,)
        if cold and is_on:
            seq.append(_power_action(cluster, vm, ActionKind.POWER_OFF, "poweredOn", "poweredOff", Reason.COLD_CHANGE))
        seq += node_actions
        if (cold and is_on) or (power_change is not None and not is_on):
            reason = Reason.RESTORE_POWER if (cold and is_on) else Reason.DESIRED_POWER
            before = "poweredOff" if (cold and is_on) else (power_change.before or {}).get("state", "poweredOff")
            on = _power_action(cluster, vm, ActionKind.POWER_ON, before, "poweredOn", reason)
            # Back means Tools running again, where Tools ran before: only then is the next node touched.
            seq.append(
                on.model_copy(update={"after": {"state": "poweredOn", "waitForTools": tools_running.get(vm, False)}})
            )
        # Chain the node's actions: each depends on the one before it.
        chained: list[Action] = []
        prev: tuple[str, ...] = base_deps
        for action in seq:
            deps = tuple(dict.fromkeys(prev + action.depends_on))
            action = action.model_copy(update={"depends_on": deps})
            chained.append(action)
            prev = (action.id,)
        guest = _guest_action(cluster, vm, by_addr, prev)
        if guest is not None:
            chained.append(guest)
        actions += chained
        if chained:
            previous_node_done = chained[-1].id
    # Physical nodes: only their guest side, after every VM node.
    for node in node_names(cluster):
        if node in ctx.vm_nodes:
            continue
        deps = (previous_node_done,) if previous_node_done else tuple(a.id for a in actions)[-1:]
        guest = _guest_action(cluster, node, by_addr, deps)
        if guest is not None:
            actions.append(guest)
            previous_node_done = guest.id
    return actions


def _guest_action(
    cluster: FailoverCluster, node: str, by_addr: dict[str, Change], deps: tuple[str, ...]
) -> Action | None:
    """Guest settings come last for a node: after it is powered on again, Tools running."""
    change = by_addr.get(node_address(cluster, node, GUEST, "diskTimeout"))
    if change is None or change.op is Op.DELETE:
        return None
    action = _from_change(
        change, ActionKind.SET_GUEST_SETTING, node, rule="MSCS-GUEST-001", reason=Reason.GUEST_DIFFERS
    )
    return action.model_copy(update={"depends_on": deps})


def _power_action(
    cluster: FailoverCluster, vm: str, kind: ActionKind, before: str, after: str, reason: Reason
) -> Action:
    address = node_address(cluster, vm, POWER)
    return Action(
        id=f"{address}#{kind}",
        address=address,
        kind=kind,
        op=Op.UPDATE,
        target=vm,
        before={"state": before},
        after={"state": after},
        reason=reason,
    )


def _host_actions(changes: list[Change]) -> list[Action]:
    out = []
    for change in changes:
        parts = change.address.split("/")
        if parts[1] != "host" or change.op is Op.DELETE:
            continue
        host = parts[2]
        if parts[3] == OPTION:
            kind, rule = ActionKind.SET_HOST_OPTION, "MSCS-HOST-001"
        elif parts[3] == LUN:
            kind, rule = ActionKind.RESERVE_LUN, "MSCS-HOST-004"
        else:  # pragma: no cover
            continue
        out.append(_from_change(change, kind, host, rule=rule))
    return out


def _cluster_actions(ctx: Context, changes: list[Change]) -> list[Action]:
    """Overrides and the rule: one vSphere-cluster reconfigure for all of them (same batch)."""
    out = []
    vsphere_cluster = next((ctx.vsphere_clusters[vm] for vm in ctx.vm_nodes if vm in ctx.vsphere_clusters), None)
    for change in changes:
        parts = change.address.split("/")
        if parts[1] == RULE:
            kind = {
                Op.CREATE: ActionKind.CREATE_RULE,
                Op.UPDATE: ActionKind.UPDATE_RULE,
                Op.DELETE: ActionKind.DELETE_RULE,
            }[change.op]
            out.append(_from_change(change, kind, parts[2], rule="MSCS-PLACE-003", batch=f"vcluster/{vsphere_cluster}"))
        elif parts[1] == "node" and parts[3] in (DRS, HA) and change.op is not Op.DELETE:
            kind = ActionKind.SET_DRS_OVERRIDE if parts[3] == DRS else ActionKind.SET_HA_OVERRIDE
            out.append(
                _from_change(
                    change,
                    kind,
                    parts[2],
                    rule=_override_rule(parts[3], ctx.version),
                    batch=f"vcluster/{ctx.vsphere_clusters.get(parts[2])}",
                )
            )
    return out


# The rules behind a DRS or HA override, most specific first; each limited to some versions.
_OVERRIDE_RULES = {DRS: ("MSCS-PLACE-004", "MSCS-PLACE-002"), HA: ("MSCS-PLACE-002",)}


def _override_rule(which: str, version: tuple[int, int] | None) -> str | None:
    """The rule an override follows under this vSphere version, or None where no rule asks for it
    (the file's own choice: e.g. HA off for the nodes under vSphere 8)."""
    return next((r for r in _OVERRIDE_RULES[which] if get_rule(r).versions.applies(version) is not False), None)


def _node_device_actions(
    cluster: FailoverCluster, vm: str, changes: list[Change], creators: dict[str, str]
) -> list[Action]:
    """Controller and disks in one batch, then NICs in another: all disks before any NIC."""
    prefix = node_address(cluster, vm) + "/"
    disks_batch = f"{vm}/devices"
    nics_batch = f"{vm}/nics"
    mine = [c for c in changes if c.address.startswith(prefix)]
    controller, detach, attach, nic_remove, nic_add = [], [], [], [], []
    for change in mine:
        kind_of = change.address[len(prefix) :].split("/")[0]
        if kind_of == CONTROLLER:
            kind = ActionKind.ADD_CONTROLLER if change.op is Op.CREATE else ActionKind.EDIT_CONTROLLER
            if change.op is Op.DELETE:
                continue  # a controller is never removed: its disks may hold data
            controller.append(_from_change(change, kind, vm, batch=disks_batch, rule="MSCS-DISK-002"))
        elif kind_of == DISK:
            if change.op in (Op.DELETE, Op.UPDATE):
                reason = Reason.NOT_IN_FILE if change.op is Op.DELETE else Reason.REPLACE
                detach.append(
                    Action(
                        id=f"{change.address}#{ActionKind.DETACH_DISK}",
                        address=change.address,
                        kind=ActionKind.DETACH_DISK,
                        op=Op.DELETE if change.op is Op.DELETE else Op.UPDATE,
                        target=vm,
                        before=change.before,
                        after=change.after if change.op is Op.UPDATE else None,
                        reason=reason,
                        batch=disks_batch,
                    )
                )
            if change.op in (Op.CREATE, Op.UPDATE):
                attach.append(_disk_attach(change, vm, creators, disks_batch))
        elif kind_of == NIC:
            if change.op is Op.DELETE:
                nic_remove.append(_from_change(change, ActionKind.REMOVE_NIC, vm, batch=nics_batch))
            elif change.op is Op.CREATE:
                nic_add.append(_from_change(change, ActionKind.ADD_NIC, vm, batch=nics_batch, rule="MSCS-NET-001"))
            elif "adapter" in change.fields:
                # Another adapter type is another device: remove the old NIC, add the new one.
                nic_remove.append(
                    _from_change(change, ActionKind.REMOVE_NIC, vm, batch=nics_batch, reason=Reason.REPLACE)
                )
                nic_add.append(
                    _from_change(
                        change, ActionKind.ADD_NIC, vm, batch=nics_batch, reason=Reason.REPLACE, rule="MSCS-NET-004"
                    )
                )
            else:
                nic_add.append(_from_change(change, ActionKind.EDIT_NIC, vm, batch=nics_batch))
    attach.sort(key=lambda a: ((a.after or {}).get("bus", 0), (a.after or {}).get("unit", 0)))
    return controller + detach + attach + nic_remove + sorted(nic_add, key=_nic_order)


def _nic_order(action: Action) -> tuple[int, str]:
    role = action.address.rsplit("/", 1)[-1]
    return ({"production": 0, "heartbeat": 1}.get(role, 2), action.address)


def _disk_attach(change: Change, vm: str, creators: dict[str, str], batch: str) -> Action:
    after = change.after or {}
    file = after.get("file", "")
    creator = creators.get(file)
    if creator is None:
        kind = ActionKind.CREATE_DISK
        creators[file] = f"{change.address}#{kind}"
        deps: tuple[str, ...] = ()
    else:
        kind = ActionKind.ATTACH_DISK
        deps = (creator,) if creator else ()
    return Action(
        id=f"{change.address}#{kind}",
        address=change.address,
        kind=kind,
        op=Op.CREATE if change.op is Op.CREATE else Op.UPDATE,
        target=vm,
        before=change.before,
        after=after,
        reason=Reason.MISSING if change.op is Op.CREATE else Reason.REPLACE,
        rule="MSCS-DISK-009",
        depends_on=deps,
        batch=batch,
    )


def _from_change(
    change: Change,
    kind: ActionKind,
    target: str,
    *,
    rule: str | None = None,
    batch: str | None = None,
    reason: Reason | None = None,
) -> Action:
    if reason is None:
        reason = {Op.CREATE: Reason.MISSING, Op.UPDATE: Reason.DIFFERS, Op.DELETE: Reason.NOT_IN_FILE}[change.op]
    return Action(
        id=f"{change.address}#{kind}",
        address=change.address,
        kind=kind,
        op=change.op,
        target=target,
        before=change.before,
        after=change.after,
        reason=reason,
        rule=rule,
        batch=batch,
    )


def unmanaged_lines(items: list[Unmanaged]) -> list[str]:
    return [f"{u.vm}: {u.description}" for u in items]
