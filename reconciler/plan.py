"""The plan: changes turned into an ordered list of actions with explicit dependencies.

Order is part of the product (see README, "What apply does, in order"):
  1. host advanced options, once per host running a node;
  2. perennial reservation of each RDM LUN on every host of the vSphere cluster that sees it;
     clustered-VMDK support of each datastore of the clustered VMDKs;
  3. DRS/HA overrides and the VM-VM (anti-)affinity rule;
  4. node by node (node 1 first, because it creates the shared files every other node attaches):
     power off only if a change cannot be hot-plugged; the shared controller and every
     disk in one reconfigure; the NICs in the next (all disks before any NIC, so NIC PCI
     slots come after the disks'); power back on; guest settings last;
  5. each former node (a VM the file no longer lists that still holds the cluster's disks):
     its disks and the adapters mscsctl added, off in one reconfigure, after every node.
The next node is touched only once the previous one is powered on again, so however many
nodes the cluster has, all but one are up at any time.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SerializeAsAny, model_serializer, model_validator

from reconciler.address import Address
from reconciler.diff import Change, Op
from reconciler.findings import Finding
from reconciler.kinds import ActionKind, Context, Payload, Unmanaged, parse_payload
from reconciler.kinds.controller import NAME as CONTROLLER
from reconciler.kinds.datastore import NAME as DATASTORE
from reconciler.kinds.disk import NAME as DISK
from reconciler.kinds.disk import VmdkDiskPayload
from reconciler.kinds.guest import address as guest_address
from reconciler.kinds.host import LUN, OPTION
from reconciler.kinds.nic import NAME as NIC
from reconciler.kinds.placement import DRS, HA, RULE, setting_action
from reconciler.kinds.power import NAME as POWER
from reconciler.kinds.power import PowerPayload
from reconciler.rules.catalogue import get_rule
from reconciler.spec import FailoverCluster

PLAN_FORMAT_VERSION = 1

__all__ = ["PLAN_FORMAT_VERSION", "Action", "ActionKind", "NodeFingerprint", "Plan", "Reason", "plan_actions"]


class Reason(StrEnum):
    """Why an action is in the plan: a closed set, rendered as a sentence by the renderer."""

    MISSING = "missing"  # vCenter does not have it
    DIFFERS = "differs"  # vCenter has another value
    NOT_IN_FILE = "not-in-file"  # mscsctl manages it, the file no longer describes it
    NOT_IN_FILE_VMDK = "not-in-file-vmdk"  # a shared VMDK the file no longer lists: deleted with --allow-data-loss
    NOT_A_NODE = "not-a-node"  # the VM is no longer a node: the cluster's devices are taken off it
    REPLACE = "replace-cannot-update"  # cannot be changed in place: detach, then attach anew
    COLD_CHANGE = "cold-change"  # a change on this node cannot be hot-plugged
    RESTORE_POWER = "restore-power"  # bring the node back after a cold change
    DESIRED_POWER = "desired-power"  # the node is off and must run
    GUEST_DIFFERS = "guest-differs"  # the guest has another value, or none
    NIC_MOVED = "nic-moved"  # the adapter is in another PCI slot than the one recorded
    DESTROY = "destroy"  # decommissioning: mscsctl set it up, vCenter shows it is still so
    DESTROY_VMDK = "destroy-vmdk"  # decommissioning a shared VMDK: detached; deleted only with --allow-data-loss


REASON_TEXT: dict[Reason, str] = {
    Reason.MISSING: "not present in vCenter",
    Reason.DIFFERS: "vCenter shows a different value",
    Reason.NOT_IN_FILE: "managed by mscsctl but no longer in the desired file (detach only, data kept)",
    Reason.NOT_IN_FILE_VMDK: (
        "the cluster's shared VMDK, no longer in the desired file: detached; with --allow-data-loss its file "
        "is deleted once no VM uses it, otherwise kept"
    ),
    Reason.NOT_A_NODE: (
        "the VM is no longer a node of the cluster: the cluster's devices are taken off it after the nodes "
        "(devices only, no data deleted)"
    ),
    Reason.REPLACE: "cannot be changed in place: detached, then attached anew",
    Reason.COLD_CHANGE: "a change on this node cannot be made while it runs",
    Reason.RESTORE_POWER: "bring the node back after the change",
    Reason.DESIRED_POWER: "cluster nodes run",
    Reason.GUEST_DIFFERS: "the guest has a different value, or none",
    Reason.NIC_MOVED: (
        "the adapter moved to another PCI slot, so Windows sees a new adapter: set its IP settings in the "
        "guest again (mscsctl cannot move it back); apply then records the new slot"
    ),
    Reason.DESTROY: "the cluster is decommissioned: mscsctl set this up and vCenter shows it so (no data deleted)",
    Reason.DESTROY_VMDK: (
        "the cluster is decommissioned: the shared VMDK is detached; with --allow-data-loss its file is deleted "
        "once no VM uses it, otherwise kept where it is"
    ),
}

SYMBOL = {Op.CREATE: "+", Op.UPDATE: "~", Op.DELETE: "-"}


VCLUSTER_BATCH = "vcluster/"


class Action(BaseModel):
    """One planned change. `before`/`after` are the payloads of the action's resource kind."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str  # address#kind: unique in a plan
    address: Address
    kind: ActionKind
    op: Op
    target: str  # VM, host or vSphere-cluster name the action changes
    before: SerializeAsAny[Payload] | None = None
    after: SerializeAsAny[Payload] | None = None
    reason: Reason
    rule: str | None = None
    depends_on: tuple[str, ...] = ()
    batch: str | None = None  # actions sharing a batch go to vCenter in one call

    @model_validator(mode="before")
    @classmethod
    def _typed_payloads(cls, data: Any) -> Any:
        """A saved plan's `before`/`after` are read as the kind's payload model (unknown fields refused)."""
        if isinstance(data, dict) and data.get("kind") in ActionKind._value2member_map_:
            kind = ActionKind(data["kind"])
            data = dict(data)
            for side in ("before", "after"):
                if isinstance(data.get(side), dict):
                    data[side] = parse_payload(kind, data[side])
        return data

    @property
    def vsphere_cluster(self) -> str | None:
        """The vSphere cluster whose one reconfigure carries this action, for overrides and rules."""
        if self.batch and self.batch.startswith(VCLUSTER_BATCH):
            return self.batch.removeprefix(VCLUSTER_BATCH)
        return None


class NodeFingerprint(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    moref: str
    change_version: str
    power_state: str


class UncheckedPart(BaseModel):
    """A part of the desired file that a plan, drift check or apply could not check or do.

    A report with one is never clean (unless `on_purpose`): `node` names the node (or VM), `part` what of it
    (`guest`: its disk timeout; `vm`: the VM itself), `reason` the stable word
    (`no-credentials`, `vm-not-found`, ...), `detail` the sentence saying what to do.
    """

    model_config = ConfigDict(frozen=True)

    node: str
    part: str
    reason: str
    detail: str = ""
    on_purpose: bool = False  # left out by the user (`--skip-guest`): named, and the report still counts as checked

    @property
    def summary(self) -> str:
        what = "guest disk timeout" if self.part == "guest" else self.part
        if self.on_purpose:
            return f"{self.node} {what} (skipped on purpose: {self.detail or self.reason})"
        return (
            f"{self.node} {what} ({self.reason}: {self.detail})"
            if self.detail
            else f"{self.node} {what} ({self.reason})"
        )


class Plan(BaseModel):
    """What apply will do, and what was seen when it was planned (to refuse a stale plan)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format_version: int = PLAN_FORMAT_VERSION
    cluster: str
    desired_file: str = ""
    desired_hash: str = ""
    created_at: str = ""
    vsphere_version: str = ""
    seen_nodes: dict[str, NodeFingerprint] = Field(default_factory=dict)
    seen_options: dict[str, dict[str, Any]] = Field(default_factory=dict)  # host -> key -> value
    # Each LUN of the file and each of the cluster's shared files -> the VMs that held it ("NAME (MOREF)").
    seen_disk_users: dict[str, list[str]] = Field(default_factory=dict)
    actions: list[Action] = Field(default_factory=list)
    unmanaged: list[str] = Field(default_factory=list)
    findings: list[Finding] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)  # e.g. guest side not observed, and why
    unchecked: list[UncheckedPart] = Field(default_factory=list)  # parts of the file not compared
    # `--target`: only what these name, and what it depends on, was planned (the rest of the file was not).
    partial: bool = False
    targets: list[str] = Field(default_factory=list)
    seal: str = ""  # sha256 of the canonical JSON of what apply carries out (reconciler/seal.py)
    # A decommissioning plan (`mscsctl destroy`, `plan --destroy`; reconciler/destroy.py): what it
    # leaves in place and why, and whether apply records the cluster as destroyed in the state.
    # Left out of the JSON form of other plans.
    destroy: bool = False
    kept: list[str] = Field(default_factory=list)
    records_destroyed: bool = False

    @model_serializer(mode="wrap")
    def _serialize(self, handler: Any) -> dict[str, Any]:
        data = handler(self)
        if not self.destroy:
            for name in ("destroy", "kept", "records_destroyed"):
                data.pop(name, None)
        return data

    @property
    def has_changes(self) -> bool:
        return bool(self.actions) or self.records_destroyed


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
    by_addr = {c.address: c for c in changes}
    host_actions = _host_actions(changes) + _datastore_actions(changes)
    cluster_actions = _cluster_actions(ctx, changes)
    actions: list[Action] = host_actions + cluster_actions
    base_deps = tuple(a.id for a in actions)
    previous_node_done: str | None = None
    # file -> id of the action that creates it ("" when a node has the file attached already:
    # the others attach it, nobody creates it again).
    creators: dict[str, str] = dict.fromkeys(existing_files or (), "")
    rolling = _Rolling(cluster, by_addr, powered_on, tools_running or {}, shared_bus_sharing or {})
    for vm in ctx.vm_nodes:
        deps = base_deps + ((previous_node_done,) if previous_node_done else ())
        chained = rolling.node(vm, _node_device_actions(cluster, vm, changes, creators), deps)
        actions += chained
        if chained:
            previous_node_done = chained[-1].id
    # A former node (replaced in, or removed from, the file) loses the cluster's devices last:
    # only once every node, its replacement included, runs again with the disks. Until then it
    # is a working member of the cluster, so a failure on the way leaves the cluster as it was
    # and the service keeps two nodes; its own power-off (disks leave a bus-sharing controller
    # cold) then never overlaps a node's. Devices only: nothing of the cluster's data is deleted.
    for vm in ctx.former_nodes:
        deps = base_deps + ((previous_node_done,) if previous_node_done else ())
        chained = rolling.node(vm, _former_node_actions(vm, changes), deps)
        actions += chained
        if chained:
            previous_node_done = chained[-1].id
    # Physical nodes: only their guest side, after every VM node.
    for node in cluster.spec.node_names:
        if node in ctx.vm_nodes:
            continue
        deps = (previous_node_done,) if previous_node_done else tuple(a.id for a in actions)[-1:]
        guest = _guest_action(cluster, node, by_addr, deps)
        if guest is not None:
            actions.append(guest)
            previous_node_done = guest.id
    return actions


class _Rolling:
    """One node's actions in the rolling order: power off if cold, devices, power on, guest."""

    def __init__(
        self,
        cluster: FailoverCluster,
        by_addr: dict[Address, Change],
        powered_on: dict[str, bool],
        tools_running: dict[str, bool],
        shared_bus_sharing: dict[str, str],
    ) -> None:
        self.cluster, self.by_addr = cluster, by_addr
        self.powered_on, self.tools_running, self.sharing = powered_on, tools_running, shared_bus_sharing
        self.desired_sharing = str(cluster.spec.shared_disks.controller.sharing)

    def _cold(self, vm: str, node_actions: list[Action]) -> bool:
        return any(a.kind in _COLD_KINDS for a in node_actions) or (
            any(a.kind in _SHARED_DISK_KINDS for a in node_actions)
            and (self.desired_sharing != "none" or self.sharing.get(vm, "none") != "none")
        )

    def node(self, vm: str, node_actions: list[Action], base_deps: tuple[str, ...]) -> list[Action]:
        cold = self._cold(vm, node_actions)
        power_change = self.by_addr.get(Address.node(self.cluster.name, vm, POWER))
        is_on = self.powered_on.get(vm, False)
        seq: list[Action] = []
        if cold and is_on:
            seq.append(
                _power_action(self.cluster, vm, ActionKind.POWER_OFF, "poweredOn", "poweredOff", Reason.COLD_CHANGE)
            )
        seq += node_actions
        if (cold and is_on) or (power_change is not None and not is_on):
            reason = Reason.RESTORE_POWER if (cold and is_on) else Reason.DESIRED_POWER
            was = power_change.before if power_change is not None else None
            before = "poweredOff" if (cold and is_on) or not isinstance(was, PowerPayload) else was.state
            # Back means Tools running again, where Tools ran before: only then is the next node touched.
            wait = self.tools_running.get(vm, False)
            seq.append(_power_action(self.cluster, vm, ActionKind.POWER_ON, before, "poweredOn", reason, wait=wait))
        # Chain the node's actions: each depends on the one before it.
        chained: list[Action] = []
        prev: tuple[str, ...] = base_deps
        for action in seq:
            action = action.model_copy(update={"depends_on": tuple(dict.fromkeys(prev + action.depends_on))})
            chained.append(action)
            prev = (action.id,)
        guest = _guest_action(self.cluster, vm, self.by_addr, prev)
        if guest is not None:
            chained.append(guest)
        return chained


def _guest_action(
    cluster: FailoverCluster, node: str, by_addr: dict[Address, Change], deps: tuple[str, ...]
) -> Action | None:
    """Guest settings come last for a node: after it is powered on again, Tools running."""
    change = by_addr.get(guest_address(cluster, node))
    if change is None or change.op is Op.DELETE:
        return None
    action = _from_change(
        change, ActionKind.SET_GUEST_SETTING, node, rule="MSCS-GUEST-001", reason=Reason.GUEST_DIFFERS
    )
    return action.model_copy(update={"depends_on": deps})


def _power_action(
    cluster: FailoverCluster,
    vm: str,
    kind: ActionKind,
    before: str,
    after: str,
    reason: Reason,
    *,
    wait: bool | None = None,
) -> Action:
    address = Address.node(cluster.name, vm, POWER)
    return Action(
        id=f"{address}#{kind}",
        address=address,
        kind=kind,
        op=Op.UPDATE,
        target=vm,
        before=PowerPayload(state=before),
        after=PowerPayload(state=after, wait_for_tools=wait),
        reason=reason,
    )


_HOST_ACTIONS = {OPTION: (ActionKind.SET_HOST_OPTION, "MSCS-HOST-001"), LUN: (ActionKind.RESERVE_LUN, "MSCS-HOST-004")}


def _host_actions(changes: list[Change]) -> list[Action]:
    out = []
    for change in changes:
        address = change.address
        if not address.on_host or change.op is Op.DELETE or address.kind not in _HOST_ACTIONS:
            continue
        kind, rule = _HOST_ACTIONS[address.kind]
        out.append(_from_change(change, kind, address.owner, rule=rule))
    return out


def _datastore_actions(changes: list[Change]) -> list[Action]:
    """Clustered-VMDK support of each datastore that lacks it: before any disk is created there.
    Never disabled (a change the other way is not planned: other clusters may use it)."""
    out = []
    for change in changes:
        address = change.address
        if address.kind != DATASTORE or address.on_node or address.on_host or change.op is Op.DELETE:
            continue
        after = change.after
        if getattr(after, "clustered_vmdk_supported", False) is not True:
            continue
        out.append(_from_change(change, ActionKind.ENABLE_CLUSTERED_VMDK, address.name, rule="MSCS-STOR-105"))
    return out


_RULE_ACTIONS = {
    Op.CREATE: ActionKind.CREATE_RULE,
    Op.UPDATE: ActionKind.UPDATE_RULE,
    Op.DELETE: ActionKind.DELETE_RULE,
}


def _cluster_actions(ctx: Context, changes: list[Change]) -> list[Action]:
    """Overrides and the rule: one vSphere-cluster reconfigure for all of them (same batch)."""
    out = []
    vsphere_cluster = next((ctx.vsphere_clusters[vm] for vm in ctx.vm_nodes if vm in ctx.vsphere_clusters), None)
    for change in changes:
        address = change.address
        if address.kind == RULE and not address.on_node and not address.on_host:
            kind = _RULE_ACTIONS[change.op]
            batch = f"{VCLUSTER_BATCH}{vsphere_cluster or ''}"
            out.append(_from_change(change, kind, address.name, rule="MSCS-PLACE-003", batch=batch))
        elif address.on_node and address.kind in (DRS, HA) and change.op is not Op.DELETE:
            kind = ActionKind.SET_DRS_OVERRIDE if address.kind == DRS else ActionKind.SET_HA_OVERRIDE
            batch = f"{VCLUSTER_BATCH}{ctx.vsphere_clusters.get(address.owner, '')}"
            rule = _override_rule(address.kind, ctx.version)
            out.append(_from_change(change, kind, address.owner, rule=rule, batch=batch))
        elif not address.on_node and not address.on_host and change.op is not Op.DELETE:
            setting = setting_action(address.kind, address.name)  # the VM-Host rule, HA/DRS options
            if setting is not None:
                batch = f"{VCLUSTER_BATCH}{vsphere_cluster or ''}"
                out.append(_from_change(change, setting[0], address.name, rule=setting[1], batch=batch))
    return out


# The rules behind a DRS or HA override, most specific first; each limited to some versions.
_OVERRIDE_RULES = {DRS: ("MSCS-PLACE-004", "MSCS-PLACE-007", "MSCS-PLACE-002"), HA: ("MSCS-PLACE-002",)}


def _override_rule(which: str, version: tuple[int, int] | None) -> str | None:
    """The rule an override follows under this vSphere version, or None where no rule asks for it
    (the file's own choice: e.g. HA off for the nodes under vSphere 8)."""
    return next((r for r in _OVERRIDE_RULES[which] if get_rule(r).versions.applies(version) is not False), None)


def _node_device_actions(
    cluster: FailoverCluster, vm: str, changes: list[Change], creators: dict[str, str]
) -> list[Action]:
    """Controller and disks in one batch, then NICs in another: all disks before any NIC."""
    disks_batch = f"{vm}/devices"
    nics_batch = f"{vm}/nics"
    mine = [c for c in changes if c.address.on_node and c.address.owner == vm]
    controller, detach, attach, nic_remove, nic_add = [], [], [], [], []
    for change in mine:
        kind_of = change.address.kind
        if kind_of == CONTROLLER and change.op is not Op.DELETE:  # never removed: its disks may hold data
            kind = ActionKind.ADD_CONTROLLER if change.op is Op.CREATE else ActionKind.EDIT_CONTROLLER
            controller.append(_from_change(change, kind, vm, batch=disks_batch, rule="MSCS-DISK-002"))
        elif kind_of == DISK:
            if change.op in (Op.DELETE, Op.UPDATE):
                detach.append(_disk_detach(change, vm, disks_batch))
            if change.op in (Op.CREATE, Op.UPDATE):
                attach.append(_disk_attach(change, vm, creators, disks_batch))
        elif kind_of == NIC:
            removed, added = _nic_actions(change, vm, nics_batch)
            nic_remove += removed
            nic_add += added
    attach.sort(key=lambda a: (a.after.bus, a.after.unit or 0))  # type: ignore[union-attr]
    return controller + detach + attach + nic_remove + sorted(nic_add, key=_nic_order)


def _former_node_actions(vm: str, changes: list[Change]) -> list[Action]:
    """A former node's disks and the adapters mscsctl added, off in one reconfigure: all or nothing."""
    batch = f"{vm}/devices"
    out = []
    for change in changes:
        if change.address.on_node and change.address.owner == vm and change.op is Op.DELETE:
            if change.address.kind == DISK:
                kind = ActionKind.DETACH_DISK
            elif change.address.kind == NIC:
                kind = ActionKind.REMOVE_NIC
            else:
                continue
            out.append(_from_change(change, kind, vm, batch=batch, reason=Reason.NOT_A_NODE))
    return sorted(out, key=lambda a: (a.kind != ActionKind.DETACH_DISK, str(a.address)))


def _nic_actions(change: Change, vm: str, batch: str) -> tuple[list[Action], list[Action]]:
    if change.op is Op.DELETE:
        return [_from_change(change, ActionKind.REMOVE_NIC, vm, batch=batch)], []
    if change.op is Op.CREATE:
        return [], [_from_change(change, ActionKind.ADD_NIC, vm, batch=batch, rule="MSCS-NET-001")]
    if "adapter" in change.fields:
        # Another adapter type is another device: remove the old NIC, add the new one.
        return (
            [_from_change(change, ActionKind.REMOVE_NIC, vm, batch=batch, reason=Reason.REPLACE)],
            [_from_change(change, ActionKind.ADD_NIC, vm, batch=batch, reason=Reason.REPLACE, rule="MSCS-NET-004")],
        )
    return [], [_from_change(change, ActionKind.EDIT_NIC, vm, batch=batch)]


def _nic_order(action: Action) -> tuple[int, str]:
    return ({"production": 0, "heartbeat": 1}.get(action.address.name, 2), str(action.address))


def _disk_detach(change: Change, vm: str, batch: str) -> Action:
    replace = change.op is Op.UPDATE
    gone = Reason.NOT_IN_FILE_VMDK if isinstance(change.before, VmdkDiskPayload) else Reason.NOT_IN_FILE
    return Action(
        id=f"{change.address}#{ActionKind.DETACH_DISK}",
        address=change.address,
        kind=ActionKind.DETACH_DISK,
        op=Op.UPDATE if replace else Op.DELETE,
        target=vm,
        before=change.before,
        after=change.after if replace else None,
        reason=Reason.REPLACE if replace else gone,
        batch=batch,
    )


def _disk_attach(change: Change, vm: str, creators: dict[str, str], batch: str) -> Action:
    file = change.after.file  # type: ignore[union-attr]
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
        after=change.after,
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
