"""Clustered disks: node 1 creates the RDM mapping file or shared VMDK, every other node
attaches that same file at the same SCSI bus:unit; a disk no longer in the file is detached.

A shared VMDK's file is deleted with the detach only with --allow-data-loss; a LUN's data
never is. When the file to create is there already (an earlier run created it and then
failed, or every node detached it), vCenter answers FileAlreadyExists and the batch is sent
again with the file attached instead.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from pyVmomi import vim

from providers.vcenter import devices as dev
from providers.vcenter.handlers.base import ApplyContext, TaskFault, faults_in
from providers.vcenter.handlers.reconfigure import DeviceChange, VmDevices
from reconciler.errors import MscsError, VCenterTaskError
from reconciler.kinds import ActionKind
from reconciler.kinds.disk import RdmDiskPayload, VmdkDiskPayload, observed_payload
from reconciler.outcome import Outcome, done, skipped
from reconciler.plan import Action

DiskPayload = RdmDiskPayload | VmdkDiskPayload


def attach(ctx: ApplyContext, vm: VmDevices, action: Action) -> DeviceChange | Outcome:
    """Create (node 1) or attach (the others) the disk at its bus:unit."""
    want = _disk(action, action.after)
    current = vm.disks.get((want.bus, want.unit))
    if current is not None:
        seen = observed_payload(current)
        if seen == want:
            return skipped(action, "already attached", device_key=current.key, file=current.file)
        slot = f"{action.address}: SCSI {want.bus}:{want.unit} of {vm.name}"
        if current.file == want.file:
            raise MscsError(f"{slot} holds {want.file} with another {', '.join(seen.differing(want))}; plan again")
        raise MscsError(
            f"{slot} already holds {current.file or 'a disk'}; mscsctl does not replace a disk it did not create"
        )
    controller_key = vm.controller_key(want.bus)
    if controller_key is None:
        raise MscsError(f"{action.address}: {vm.name} has no SCSI controller on bus {want.bus}")
    spec = _spec(ctx, vm, action, want, controller_key)
    return DeviceChange(action, [spec], partial(_attached, action, want))


def detach(ctx: ApplyContext, vm: VmDevices, action: Action) -> DeviceChange | Outcome:
    was = _disk(action, action.before)
    current = vm.disks.get((was.bus, was.unit))
    if current is None or current.file != was.file:
        return skipped(action, "already detached")
    destroy = ctx.allow_data_loss and action.after is None and current.kind == "vmdk"
    del vm.disks[(current.bus, current.unit)]  # the slot is free for an attach of the same batch
    spec = dev.remove_device_spec(vm.device(current.key), destroy_file=destroy)
    return DeviceChange(action, [spec], lambda now: done(action, vm_moref=now.moref))


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
    disk = now.disks.get((want.bus, want.unit))
    if disk is None:
        raise VCenterTaskError(
            f"{action.address}: vCenter accepted the change but shows no disk at SCSI {want.bus}:{want.unit}"
        )
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
