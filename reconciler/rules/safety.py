"""Rules that keep the cluster's data safe: mscsctl acts only on what vCenter proves is the cluster's.

What a device is comes from vCenter (`reconciler.kinds.ownership`): the shared bus, the
cluster's own mapping path, a LUN the file lists. The state is a record of what mscsctl did,
not a proof: a state that names a device vCenter shows as something else (a boot disk) stops
the plan, and so does a LUN or shared file of the cluster that a VM outside it holds.
"""

from __future__ import annotations

from collections.abc import Iterator

from reconciler.findings import FieldPath, Finding
from reconciler.kinds.disk import recorded_payload
from reconciler.kinds.ownership import former_nodes, held_outside, owned_disk_name, state_disks
from reconciler.observed import ObservedDisk, ObservedVm, disk_slot
from reconciler.rules import paths
from reconciler.rules.catalogue import RuleContext, rule
from reconciler.spec import ControllerType, RdmDisk

STATE_FIX = (
    "the state does not describe vCenter: restore its .backup, or move it away and plan again "
    "(mscsctl finds the cluster's own disks in vCenter without it)"
)


def node_path(ctx: RuleContext, vm: str) -> FieldPath:
    """The node's line in the file; a VM that is no node any more points at `nodes`."""
    return next((paths.node(i, n) for i, n in ctx.vm_nodes if n.vm == vm), paths.NODES)


def why_not_owned(ctx: RuleContext, disk: ObservedDisk) -> str:
    """Why a device is not provably the cluster's, in a few words."""
    buses = ctx.spec.shared_buses
    if disk.bus not in buses:
        shared = f"shared bus {buses[0]}" if len(buses) == 1 else f"shared buses {', '.join(map(str, buses))}"
        return f"on bus {disk.bus}, not the cluster's {shared}"
    nvme = ctx.spec.shared_disks.controller.type is ControllerType.NVME
    if (disk.adapter == "nvme") != nvme:
        return f"on the {'NVMe' if disk.adapter == 'nvme' else 'SCSI'} controller {disk.bus}, not the cluster's"
    lun = f" and its LUN {disk.lun} is not in the file" if disk.kind == "rdm" else ""
    return f"its file is not under the cluster's path [DATASTORE] {ctx.cluster.name}/{lun}"


@rule(
    "MSCS-SAFE-001",
    title="A disk the state records is one vCenter shows as the cluster's own",
    source="mscsctl: it changes, detaches or deletes only devices vCenter shows on the shared bus with the "
    "cluster's own file or a LUN of the file; the state is a record, not a proof",
    needs_observed=True,
)
def state_claims_match_vcenter(ctx: RuleContext) -> Iterator[Finding]:
    assert ctx.observed is not None
    for address, resource in state_disks(ctx.effective, dict(ctx.managed)):
        vm = ctx.observed.vms.get(address.owner)
        if vm is None or (resource.vm_moref and resource.vm_moref != vm.moref):
            continue  # another VM has the name now: the record is about a VM that is gone
        found = _recorded_device(vm, resource.file, resource.device_key)
        if found is None:
            continue  # detached since: nothing to claim
        slot, disk = found
        name = owned_disk_name(ctx.effective, disk)
        if name == address.name:
            continue
        shows = f"{disk.file or 'a disk'} at SCSI {slot} of {vm.name}"
        why = f"the cluster's disk {name}" if name is not None else why_not_owned(ctx, disk)
        recorded = recorded_payload(resource.applied)
        where = f" at SCSI {recorded.bus}:{recorded.unit}" if recorded is not None else ""
        made = ", created by mscsctl" if resource.created_by_mscsctl else ""
        yield ctx.finding(
            node_path(ctx, address.owner),
            f"state says {address} is {resource.file or f'device {resource.device_key}'}{where}{made}; "
            f"vCenter shows {shows}, {why}: refusing to plan; {STATE_FIX}",
        )


def _recorded_device(vm: ObservedVm, file: str | None, key: int | None) -> tuple[str, ObservedDisk] | None:
    """The device a state record names: by its file, or (no file recorded) by its device key."""
    for slot, disk in sorted(vm.disks.items()):
        if (file and disk.file == file) or (not file and key is not None and disk.key == key):
            return slot, disk
    return None


@rule(
    "MSCS-SAFE-002",
    title="The SCSI unit of each shared disk holds no disk that is not the cluster's",
    source="mscsctl: a disk it cannot prove is the cluster's is never detached to make room",
    needs_observed=True,
)
def units_are_free(ctx: RuleContext) -> Iterator[Finding]:
    assert ctx.observed is not None
    nvme = "nvme" if ctx.spec.shared_disks.controller.type is ControllerType.NVME else None
    for index, disk in enumerate(ctx.spec.shared_disks.disks):
        bus = disk.bus if disk.bus is not None else ctx.spec.shared_disks.controller.bus
        for _, node in ctx.vm_nodes:
            vm = ctx.observed.vms.get(node.vm)
            there = vm.disks.get(disk_slot(bus, disk.unit, nvme)) if vm is not None else None
            if there is None or owned_disk_name(ctx.effective, there) is not None:
                continue
            where = f"NVMe {bus}:{disk.unit}" if nvme else f"SCSI {bus}:{disk.unit}"
            yield ctx.finding(
                paths.disk(index, "unit"),
                f"{where} of {node.vm} holds {there.file or there.lun or 'a disk'}, which is "
                f"not one of {ctx.cluster.name}'s disks ({why_not_owned(ctx, there)}): mscsctl does not "
                f"detach a disk it cannot prove is the cluster's. Give {disk.name} another unit, or move "
                "that disk off the shared bus by hand",
            )


@rule(
    "MSCS-SAFE-003",
    title="No VM outside the cluster maps one of its LUNs or holds one of its shared files",
    source="mscsctl: two systems writing one LUN or VMDK without the cluster's reservations destroy its data",
    needs_observed=True,
)
def held_only_by_the_nodes(ctx: RuleContext) -> Iterator[Finding]:
    assert ctx.observed is not None
    former = set(former_nodes(ctx.effective, ctx.observed, dict(ctx.managed)))
    index_of = {d.name: i for i, d in enumerate(ctx.spec.shared_disks.disks)}
    for held in held_outside(ctx.effective, ctx.observed, besides=former):
        index = index_of.get(held.name)
        path: FieldPath = paths.DISKS  # the cluster's file of a disk the file no longer lists: still its data
        if index is not None:
            field = "lun" if isinstance(ctx.spec.shared_disks.disks[index], RdmDisk) else "datastore"
            path = paths.disk(index, field)
        yield ctx.finding(
            path,
            f"{held.what} is {ctx.cluster.name}'s disk {held.name}, and {held.where}, which is not a node of "
            f"{ctx.cluster.name}: two systems writing one disk destroy its data. Detach it from {held.vm.name} "
            "by hand, or give the cluster another disk",
        )
