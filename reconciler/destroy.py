"""The decommissioning plan (`mscsctl destroy`, `plan --destroy`): apply's order, reversed.

What apply set up is taken away again, node by node and then around the nodes, each only
when two things say it is mscsctl's: the state records it as created (or, for a host option,
changed) by mscsctl, and vCenter shows it still as mscsctl left it (`reconciler/kinds/ownership.py`
for the disks, the recorded device key for adapters and the controller, the recorded rule
key, the value mscsctl set). Anything else stays, and the plan lists it (`Plan.kept`): what
an import found, what someone changed by hand since, and always the data.

Order (README, "Decommissioning a cluster"):
  1. node by node, the last node first and node 1 (which created the shared files) last:
     power off only when a removal cannot be hot-plugged (a disk on, or the removal of, a
     bus-sharing controller); in one reconfigure the cluster's disks (detached: a LUN's data
     and its mapping file stay; a shared VMDK is deleted only with --allow-data-loss, once no
     VM uses it), the shared controller once nothing else is on it, the adapters mscsctl
     added; power back on. The next node is touched only once this one runs again;
  2. the nodes' DRS and HA overrides and the VM-VM rule, in one vSphere-cluster reconfigure;
  3. the LUNs' perennial reservations once no VM maps the LUN any more, and the host options
     put back to the value they had, where no other VM of the host shares a SCSI bus.
The guests' disk timeout is left as it is. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from reconciler.address import Address, Scope
from reconciler.diff import Op
from reconciler.kinds import ActionKind, Managed, Payload
from reconciler.kinds.controller import NAME as CONTROLLER
from reconciler.kinds.controller import ControllerPayload
from reconciler.kinds.disk import NAME as DISK
from reconciler.kinds.disk import VmdkDiskPayload, observed_payload
from reconciler.kinds.facts import context, rule_name
from reconciler.kinds.host import LUN, OPTION, HostOptionPayload, LunReservationPayload
from reconciler.kinds.nic import NicPayload, added_nics
from reconciler.kinds.ownership import owned_disk_name
from reconciler.kinds.placement import (
    DRS,
    HA,
    RULE,
    VM_HOST_RULE,
    DrsOverridePayload,
    HaOverridePayload,
    VmRulePayload,
    vm_host_names,
    vm_host_payload,
)
from reconciler.observed import Observed, ObservedVm
from reconciler.plan import VCLUSTER_BATCH, Action, Plan, Reason, _power_action
from reconciler.planner import what_was_seen
from reconciler.record import PREVIOUS_VALUE, destroyed
from reconciler.rules.catalogue import target_version
from reconciler.spec import FailoverCluster
from state.model import ManagedResource, State

GUEST_NOTE = "the guests' disk timeout is left as it is (harmless without the cluster)"


def build_destroy_plan(
    cluster: FailoverCluster,
    observed: Observed,
    state: State | None,
    *,
    desired_file: str = "",
    desired_hash: str = "",
    created_at: str = "",
) -> Plan:
    """`cluster` must carry its defaults; `state` is the cluster's recorded state (None: never applied)."""
    managed = state.managed() if state is not None else {}
    version = target_version(cluster, observed)
    ctx = context(cluster, observed, version, managed)
    work = _Teardown(cluster, observed, managed)
    already = state is None or destroyed(state) is not None
    # Until the state records the cluster as destroyed, a node found off is powered on again, as
    # apply would: a destroy killed while a node was off for its removals leaves none down.
    for vm in [*ctx.former_nodes, *reversed(ctx.vm_nodes)]:
        if vm in observed.vms:
            work.node(observed.vms[vm], power_on=not already and vm in ctx.vm_nodes)
    work.placement(ctx.vm_nodes, ctx.vsphere_clusters)
    work.reservations()
    work.host_options(ctx.vm_nodes)
    work.found()
    notes = [GUEST_NOTE] if work.actions else []
    if state is None:
        notes.append("no state: mscsctl applied nothing to this cluster, so it removes nothing")
    elif already and not work.actions:
        notes.append(f"the state records {cluster.name} as destroyed already")
    return Plan(
        cluster=cluster.name,
        desired_file=desired_file,
        desired_hash=desired_hash,
        created_at=created_at,
        **what_was_seen(cluster, observed, ctx, version),
        actions=work.actions,
        notes=notes,
        destroy=True,
        kept=sorted(dict.fromkeys(work.kept)),
        records_destroyed=not already or bool(work.actions),
    )


@dataclass
class _Teardown:
    """The destroy plan as it is built: actions in order, each depending on the one before."""

    cluster: FailoverCluster
    observed: Observed
    managed: Managed
    actions: list[Action] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    detached: set[tuple[str, str]] = field(default_factory=set)  # (VM moref, bus:unit) the plan detaches
    bare_controllers: set[str] = field(default_factory=set)  # VMs whose shared controller the plan removes

    @property
    def name(self) -> str:
        return self.cluster.name

    def _add(self, action: Action) -> None:
        deps = (self.actions[-1].id,) if self.actions else ()
        self.actions.append(action.model_copy(update={"depends_on": deps}))

    def _record(self, address: Address) -> ManagedResource | None:
        """The state's record of `address`, when it says mscsctl created it."""
        resource = self.managed.get(address)
        return resource if resource is not None and resource.created_by_mscsctl else None

    # -- 1. the nodes -------------------------------------------------------------------------

    def node(self, vm: ObservedVm, *, power_on: bool) -> None:
        """`power_on`: a node found powered off runs again once its removals are done."""
        batch = f"{vm.name}/devices"
        devices = self._disks(vm, batch)
        controller = self._controller(vm, batch)
        nics = self._nics(vm, batch)
        removals = devices + controller + nics
        found_off = power_on and vm.power_state == "poweredOff"
        if not removals and not found_off:
            return
        bus = self.cluster.spec.shared_disks.controller.bus
        shared = vm.controllers.get(bus)
        cold = (bool(devices) or bool(controller)) and shared is not None and shared.sharing != "none"
        if cold and vm.powered_on:
            off = (ActionKind.POWER_OFF, "poweredOn", "poweredOff", Reason.COLD_CHANGE)
            self._add(_power_action(self.cluster, vm.name, *off))
        for action in removals:
            self._add(action)
        if cold and vm.powered_on:
            on = (ActionKind.POWER_ON, "poweredOff", "poweredOn", Reason.RESTORE_POWER)
            self._add(_power_action(self.cluster, vm.name, *on, wait=vm.tools_running))
        elif found_off:
            on = (ActionKind.POWER_ON, "poweredOff", "poweredOn", Reason.DESIRED_POWER)
            self._add(_power_action(self.cluster, vm.name, *on, wait=False))

    def _disks(self, vm: ObservedVm, batch: str) -> list[Action]:
        out = []
        for slot, disk in sorted(vm.disks.items()):
            name = owned_disk_name(self.cluster, disk)
            if name is None:
                continue  # not the cluster's: never touched, never listed (a node's own disk)
            address = Address.node(self.name, vm.name, DISK, name)
            record = self._record(address)
            where = f"{vm.name} SCSI {slot}"
            if record is None or (record.vm_moref and record.vm_moref != vm.moref):
                self.kept.append(f"{address}: {disk.file or disk.lun} at {where}, not created by mscsctl (attached)")
                continue
            payload = observed_payload(disk)
            vmdk = isinstance(payload, VmdkDiskPayload)
            out.append(
                _action(
                    address,
                    ActionKind.DETACH_DISK,
                    vm.name,
                    payload,
                    Reason.DESTROY_VMDK if vmdk else Reason.DESTROY,
                    batch,
                )
            )
            self.detached.add((vm.moref, slot))
            if vmdk:
                self.kept.append(
                    f"shared VMDK {disk.file}: detached and kept there (destroy --allow-data-loss deletes it "
                    "once no VM uses it)"
                )
            else:
                self.kept.append(f"LUN {disk.lun or disk.lun_uuid}: its data is never touched")
                self.kept.append(f"RDM mapping file {disk.file}: kept (a detach leaves it)")
        return out

    def _controller(self, vm: ObservedVm, batch: str) -> list[Action]:
        bus = self.cluster.spec.shared_disks.controller.bus
        controller = vm.controllers.get(bus)
        if controller is None:
            return []
        address = Address.node(self.name, vm.name, CONTROLLER, bus)
        record = self._record(address)
        if record is None or record.device_key != controller.key:
            if self.managed.get(address) is not None:
                self.kept.append(f"{address}: SCSI controller {bus} of {vm.name}, not created by mscsctl")
            return []
        others = [s for s, d in vm.disks.items() if d.bus == bus and (vm.moref, s) not in self.detached]
        if others:
            self.kept.append(f"{address}: SCSI controller {bus} of {vm.name} still holds {', '.join(sorted(others))}")
            return []
        self.bare_controllers.add(vm.name)
        payload = ControllerPayload(type=controller.type, sharing=controller.sharing)
        return [_action(address, ActionKind.REMOVE_CONTROLLER, vm.name, payload, Reason.DESTROY, batch)]

    def _nics(self, vm: ObservedVm, batch: str) -> list[Action]:
        """The adapters mscsctl added (`nic.added_nics`: the recorded device key on the recorded port
        group). A removal finds its adapter by what it is, so one with a twin the VM keeps (same
        port group and type) is kept too: the twin could be the one taken."""
        out = []
        added = added_nics(self.cluster, vm.name, vm.nics, self.managed)
        for key, address in sorted(added.items()):
            nic = next(n for n in vm.nics if n.key == key)
            twins = [n for n in vm.nics if n.key not in added and (n.network, n.adapter) == (nic.network, nic.adapter)]
            if twins:
                self.kept.append(
                    f"{address}: {nic.adapter} on {nic.network} (key {key}) kept: {vm.name} has another such "
                    f"adapter (key {twins[0].key}); remove the one mscsctl added by hand"
                )
                continue
            payload = NicPayload(portgroup=nic.network, adapter=nic.adapter)
            out.append(_action(address, ActionKind.REMOVE_NIC, vm.name, payload, Reason.DESTROY, batch))
        return out

    # -- 2. around the nodes: overrides and the rule --------------------------------------------

    def placement(self, vms: list[str], vsphere_clusters: dict[str, str]) -> None:
        for vm in vms:
            vsc = self.observed.clusters.get(vsphere_clusters.get(vm, ""))
            if vsc is None:
                continue
            batch = f"{VCLUSTER_BATCH}{vsc.name}"
            checks: list[tuple[str, ActionKind, Payload | None]] = [
                (DRS, ActionKind.REMOVE_DRS_OVERRIDE, _drs(vsc.drs_overrides.get(vm))),
                (HA, ActionKind.REMOVE_HA_OVERRIDE, _ha(vsc.ha_overrides.get(vm))),
            ]
            for kind, action_kind, seen in checks:
                address = Address.node(self.name, vm, kind)
                record = self._record(address)
                if seen is None:
                    continue
                if record is None or (record.cluster_moref and record.cluster_moref != vsc.moref):
                    if address in self.managed:
                        self.kept.append(f"{address}: {kind.upper()} override of {vm}, not set up by mscsctl")
                    continue
                self._add(_action(address, action_kind, vm, seen, Reason.DESTROY, batch))
        name = rule_name(self.cluster)
        for vsc_name in sorted({vsphere_clusters[vm] for vm in vms if vm in vsphere_clusters}):
            vsc = self.observed.clusters.get(vsc_name)
            rule = vsc.rules.get(name) if vsc is not None else None
            if vsc is None or rule is None:
                continue
            address = Address.vsphere_cluster(self.name, RULE, name)
            record = self._record(address)
            if record is None or (record.rule_key is not None and record.rule_key != rule.key):
                self.kept.append(f"{address}: VM-VM rule {name} in {vsc_name}, not created by mscsctl")
                continue
            payload = VmRulePayload(kind=rule.kind, vms=sorted(rule.vms), enabled=rule.enabled)
            self._add(
                _action(address, ActionKind.DELETE_RULE, name, payload, Reason.DESTROY, f"{VCLUSTER_BATCH}{vsc_name}")
            )
        self._vm_host_rule(vms, vsphere_clusters)

    def _vm_host_rule(self, vms: list[str], vsphere_clusters: dict[str, str]) -> None:
        """mscsctl's VM-Host rule and its two DRS groups, when it created them and vCenter shows the rule."""
        name, _, _ = vm_host_names(self.cluster)
        for vsc_name in sorted({vsphere_clusters[vm] for vm in vms if vm in vsphere_clusters}):
            vsc = self.observed.clusters.get(vsc_name)
            rule = vsc.vm_host_rules.get(name) if vsc is not None else None
            if rule is None:
                continue
            address = Address.vsphere_cluster(self.name, VM_HOST_RULE, name)
            if self._record(address) is None:
                self.kept.append(f"{address}: VM-Host rule {name} in {vsc_name}, not created by mscsctl")
                continue
            payload = vm_host_payload(rule)
            batch = f"{VCLUSTER_BATCH}{vsc_name}"
            self._add(_action(address, ActionKind.DELETE_VM_HOST_RULE, name, payload, Reason.DESTROY, batch))

    # -- 3. the hosts: reservations and options -------------------------------------------------

    def reservations(self) -> None:
        for address, resource in sorted(self.managed.items()):
            if address.cluster != self.name or address.scope is not Scope.HOST or address.kind != LUN:
                continue
            host = self.observed.hosts.get(address.owner)
            lun = host.luns.get(address.name) if host is not None else None
            if host is None or lun is None or not lun.perennially_reserved:
                continue  # gone, or released already
            if not resource.created_by_mscsctl or (resource.host_moref and resource.host_moref != host.moref):
                self.kept.append(f"{address}: perennially reserved before mscsctl (kept)")
                continue
            users = self._lun_users_left(address.name)
            if users:
                self.kept.append(f"{address}: still reserved, {', '.join(users)} still map the LUN")
                continue
            payload = LunReservationPayload(perennially_reserved=False)
            before = LunReservationPayload(perennially_reserved=True)
            self._add(_action(address, ActionKind.RELEASE_LUN, host.name, before, Reason.DESTROY, None, after=payload))

    def _lun_users_left(self, lun: str) -> list[str]:
        """The VMs that will still map `lun` once the plan's detaches are done."""
        wanted = lun.lower()
        out = set()
        for vm in self.observed.vms.values():
            for slot, disk in vm.disks.items():
                if disk.kind == "rdm" and (disk.lun or "").lower() == wanted and (vm.moref, slot) not in self.detached:
                    out.add(f"{vm.name} ({vm.moref})")
        return sorted(out)

    def host_options(self, nodes: list[str]) -> None:
        for address, resource in sorted(self.managed.items()):
            if address.cluster != self.name or address.scope is not Scope.HOST or address.kind != OPTION:
                continue
            host = self.observed.hosts.get(address.owner)
            if host is None or address.name not in host.options:
                if resource.created_by_mscsctl and address.name not in (self.cluster.spec.host_options or {}):
                    # Observe reads the options the file names: one it no longer names is not known now.
                    self.kept.append(f"{address}: not read (the file no longer names it), kept as it is")
                continue
            now = host.options[address.name]
            previous = resource.applied.get(PREVIOUS_VALUE)
            if not resource.created_by_mscsctl or PREVIOUS_VALUE not in resource.applied:
                self.kept.append(f"{address}: {now}, not changed by mscsctl (kept)")
                continue
            if now == previous:
                continue  # put back already
            if now != resource.applied.get("value"):
                self.kept.append(f"{address}: {now}, changed since mscsctl set {resource.applied.get('value')} (kept)")
                continue
            sharing = self._bus_sharing_vms(host.name, nodes)
            if sharing:
                self.kept.append(f"{address}: kept at {now}, {', '.join(sharing)} on the host share a SCSI bus")
                continue
            if not isinstance(previous, int | str):
                continue
            before, after = HostOptionPayload(value=now), HostOptionPayload(value=previous)
            self._add(
                _action(address, ActionKind.RESTORE_HOST_OPTION, host.name, before, Reason.DESTROY, None, after=after)
            )

    def _bus_sharing_vms(self, host: str, nodes: list[str]) -> list[str]:
        """VMs on `host` that still have a bus-sharing SCSI controller once the plan is done."""
        out = []
        for vm in self.observed.vms.values():
            if vm.host != host or (vm.name in nodes and vm.name in self.bare_controllers):
                continue
            if any(c.sharing != "none" for c in vm.controllers.values()):
                out.append(vm.name)
        return sorted(out)

    # -- what the state holds that was found, not made -------------------------------------------

    def found(self) -> None:
        for address, resource in sorted(self.managed.items()):
            if address.cluster == self.name and not resource.created_by_mscsctl and address.kind == "nic":
                self.kept.append(f"{address}: found, not created by mscsctl (kept)")


def _drs(behavior: str | None) -> DrsOverridePayload | None:
    return DrsOverridePayload(behavior=behavior) if behavior is not None else None


def _ha(restart: str | None) -> HaOverridePayload | None:
    return HaOverridePayload(restart=restart) if restart is not None else None


def _action(
    address: Address,
    kind: ActionKind,
    target: str,
    before: Payload,
    reason: Reason,
    batch: str | None,
    *,
    after: Payload | None = None,
) -> Action:
    return Action(
        id=f"{address}#{kind}",
        address=address,
        kind=kind,
        op=Op.DELETE if after is None else Op.UPDATE,
        target=target,
        before=before,
        after=after,
        reason=reason,
        batch=batch,
    )


def kept_after(plan: Plan, deleted: set[str]) -> list[str]:
    """What a destroy plan leaves in place, once applied: the shared VMDKs it deleted are not."""
    return [k for k in plan.kept if not any(k.startswith(f"shared VMDK {file}:") for file in deleted)]
