"""Clustered disks: node 1 creates the RDM mapping file or shared VMDK, every other node
attaches that same file at the same SCSI bus:unit; a disk no longer in the file is detached.

A detach is of the cluster's own disk as vCenter shows it right before (the action's file at
its bus:unit, under the cluster's own path, or an RDM of the LUN the plan found), whatever
the plan says. A shared VMDK's file is deleted with the detach only with
--allow-data-loss, only for a disk the file no longer lists, and only once no other VM of the
datacenter uses it: the VMs registered on every host that mounts its datastore are read again
right before. A LUN's data never is. When the file to create is there already (an earlier run
created it and then failed, or every node detached it), vCenter answers FileAlreadyExists and
the batch is sent again with the file attached instead.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from pyVmomi import vim

from providers.vcenter import devices as dev
from providers.vcenter.handlers.base import ApplyContext, TaskFault, faults_in
from providers.vcenter.handlers.reconfigure import DeviceChange, VmDevices
from providers.vcenter.observe import retrieve, vms_of_hosts
from reconciler.errors import MscsError, VCenterTaskError
from reconciler.kinds import ActionKind
from reconciler.kinds.disk import RdmDiskPayload, VmdkDiskPayload, observed_payload
from reconciler.kinds.ownership import disk_name_of_file
from reconciler.observed import ObservedDisk
from reconciler.outcome import Outcome, done, skipped
from reconciler.plan import Action, Reason

DiskPayload = RdmDiskPayload | VmdkDiskPayload


def attach(ctx: ApplyContext, vm: VmDevices, action: Action) -> DeviceChange | Outcome:
    """Create (node 1) or attach (the others) the disk at its bus:unit."""
    want = _disk(action, action.after)
    current = vm.disks.get(want.slot)
    if current is not None:
        seen = observed_payload(_named_lun(ctx, vm.name, current))
        if seen == want:
            return skipped(action, "already attached", device_key=current.key, file=current.file)
        slot = f"{action.address}: SCSI {want.bus}:{want.unit} of {vm.name}"
        if current.file == want.file:
            raise MscsError(f"{slot} holds {want.file} with another {', '.join(seen.differing(want))}; plan again")
        raise MscsError(
            f"{slot} already holds {current.file or 'a disk'}; mscsctl does not replace a disk it did not create"
        )
    nvme = isinstance(want, VmdkDiskPayload) and want.adapter == "nvme"
    controller_key = vm.controller_key(want.bus, nvme)
    if controller_key is None:
        what = "NVMe controller" if nvme else "SCSI controller on bus"
        raise MscsError(f"{action.address}: {vm.name} has no {what} {want.bus}")
    spec = _spec(ctx, vm, action, want, controller_key)
    return DeviceChange(action, [spec], partial(_attached, action, want))


def detach(ctx: ApplyContext, vm: VmDevices, action: Action) -> DeviceChange | Outcome:
    was = _disk(action, action.before)
    current = vm.disks.get(was.slot)
    if current is None or current.file != was.file:
        return skipped(action, "already detached")
    current = _named_lun(ctx, vm.name, current)
    named = disk_name_of_file(action.address.cluster, current.file, current.kind) == action.address.name
    # An RDM the plan found by a LUN the file lists (its mapping file made elsewhere): that LUN still.
    same_lun = (
        isinstance(was, RdmDiskPayload) and current.kind == "rdm" and bool(current.lun) and current.lun == was.lun
    )
    if not (named or same_lun):
        raise MscsError(
            f"{action.address}: the plan says {was.file} at SCSI {was.bus}:{was.unit}; vCenter shows "
            f"{current.file} there on {vm.name}, not a file under the cluster's path [DATASTORE] "
            f"{action.address.cluster}/: refusing to detach it [MSCS-SAFE-001]"
        )
    destroy = (
        ctx.allow_data_loss
        and named
        and current.kind == "vmdk"
        and action.after is None
        and action.reason in (Reason.NOT_IN_FILE_VMDK, Reason.DESTROY_VMDK)
    )
    note = ""
    if destroy:
        users = other_users(ctx, current.file, vm.moref)
        if users:
            destroy, note = False, f"detached; {current.file} kept: {', '.join(users)} still use it"
        else:
            note = f"detached; {current.file} deleted (--allow-data-loss, no other VM uses it)"
    del vm.disks[current.slot]  # the slot is free for an attach of the same batch
    spec = dev.remove_device_spec(vm.device(current.key), destroy_file=destroy)
    deleted = {"file": current.file} if destroy else {}  # the outcome names the file it deleted
    return DeviceChange(action, [spec], lambda now: done(action, note, vm_moref=now.moref, **deleted))


FILE_USER_PATHS = ["name", "config.hardware.device"]


def other_users(ctx: ApplyContext, file: str, this_vm: str) -> list[str]:
    """The VMs other than `this_vm` (a moref) whose devices reference `file`, read now.

    A VM can only use a file on a datastore its host mounts, so two reads suffice: the
    datastore's hosts, then the devices of every VM registered on them (`HostSystem.vm`).
    """
    name = file[1:].partition("]")[0] if file.startswith("[") else ""
    datastore = ctx.observed.datastores.get(name)
    if datastore is None:
        return [f"the datastore {name or '?'} of the file is not known to this plan (kept to be safe)"]
    ds = ctx.stub(vim.Datastore, datastore.moref)
    mounts = ctx.read(ds, ["host"]).get("host") or []
    hosts = [m.key for m in mounts]
    if not hosts:  # vCenter shows no host mounting it now: who uses it cannot be told, so it is kept
        return [f"no host shows {name} mounted now (kept to be safe)"]
    found = ctx.session.call(
        lambda si: retrieve(
            ctx.session.content.propertyCollector, vms_of_hosts(hosts), {vim.VirtualMachine: FILE_USER_PATHS}
        )
    )
    users = []
    for obj, props in found.items():
        if obj._moId == this_vm:
            continue
        if any(file in _files_of(d) for d in props.get("config.hardware.device") or []):
            users.append(f"{props.get('name', obj._moId)} ({obj._moId})")
    return sorted(users)


def _files_of(device: Any) -> set[str]:
    """The files a disk's backing chain names (its file and its snapshots' parents), as observe names them."""
    out = set()
    backing = getattr(device, "backing", None) if isinstance(device, vim.vm.device.VirtualDisk) else None
    while backing is not None:
        file = getattr(backing, "fileName", None)
        if file:
            out.add(dev.datastore_path(file))
        backing = getattr(backing, "parent", None)
    return out


def _named_lun(ctx: ApplyContext, vm_name: str, disk: ObservedDisk) -> ObservedDisk:
    """The disk with its RDM's LUN named from its `lunUuid` and the host's LUNs, as observe names it."""
    if disk.kind != "rdm" or not disk.lun_uuid:
        return disk
    host = ctx.observed.host_of(vm_name)
    lun = next((n for n in host.luns.values() if n.uuid == disk.lun_uuid), None) if host is not None else None
    return disk.model_copy(update={"lun": lun.canonical_name}) if lun is not None else disk


def attach_when_file_exists(step: list[Action], send: Callable[[list[Action]], list[Outcome]]) -> list[Outcome]:
    """Send the batch; when a file it creates is there already, send it again attaching the file."""
    try:
        return send(step)
    except TaskFault as exc:
        if not file_already_exists(exc.fault) or not any(map(_creates, step)):
            raise
    return send([a.model_copy(update={"kind": ActionKind.ATTACH_DISK}) if _creates(a) else a for a in step])


def file_already_exists(fault: Any) -> bool:
    return any(isinstance(f, vim.fault.FileAlreadyExists) for f in faults_in(fault))


def _creates(action: Action) -> bool:
    return action.kind is ActionKind.CREATE_DISK


def _disk(action: Action, payload: object) -> DiskPayload:
    if not isinstance(payload, DiskPayload):
        raise MscsError(f"{action.address}: {action.kind} carries {type(payload).__name__}, not a disk")
    if payload.unit is None:
        raise MscsError(f"{action.address}: the disk has no SCSI unit; plan again")
    return payload


def _attached(action: Action, want: DiskPayload, now: VmDevices) -> Outcome:
    disk = now.disks.get(want.slot)
    if disk is None:
        raise VCenterTaskError(f"{action.address}: vCenter accepted the change but shows no disk at {want.slot}")
    return done(action, vm_moref=now.moref, device_key=disk.key, file=disk.file)


def _spec(ctx: ApplyContext, vm: VmDevices, action: Action, want: DiskPayload, controller_key: int) -> Any:
    create = _creates(action)
    where = {"temp_key": vm.temp_key(), "controller_key": controller_key, "unit": want.unit, "file": want.file}
    if isinstance(want, VmdkDiskPayload):
        return dev.vmdk_disk_spec(**where, size_gb=want.size_gb, create=create)
    device_path = lun_uuid = None
    if create:
        host = ctx.observed.host_of(vm.name)
        lun = host.luns.get(want.lun or "") if host is not None else None
        if lun is None:
            raise MscsError(f"{action.address}: the host of {vm.name} does not see LUN {want.lun}")
        device_path = lun.device_path or f"/vmfs/devices/disks/{lun.canonical_name}"
        lun_uuid = lun.uuid
    return dev.rdm_disk_spec(
        **where, compatibility=want.compatibility, device_path=device_path, lun_uuid=lun_uuid, create=create
    )
