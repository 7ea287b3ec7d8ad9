"""The shared controller (SCSI, or NVMe): added on its bus with its bus sharing, or its sharing
edited; removed by a destroy, only once no disk is left on it.

Its type is never changed in place: the disks on it would move to another device.
"""

from __future__ import annotations

from functools import partial

from providers.vcenter import devices as dev
from providers.vcenter.handlers.base import ApplyContext, after
from providers.vcenter.handlers.reconfigure import DeviceChange, VmDevices
from reconciler.errors import MscsError
from reconciler.kinds.controller import ControllerPayload
from reconciler.observed import ObservedController
from reconciler.outcome import Outcome, done, skipped
from reconciler.plan import Action


def observed_payload(controller: ObservedController) -> ControllerPayload:
    return ControllerPayload(type=controller.type, sharing=controller.sharing)


def change(ctx: ApplyContext, vm: VmDevices, action: Action) -> DeviceChange | Outcome:
    want = after(action, ControllerPayload)
    bus = int(action.address.name)
    nvme = want.type == "nvme"
    current = vm.controller_on(bus, nvme)
    if current is not None and observed_payload(current) == want:
        return skipped(action, "already present")
    if current is None:
        key = vm.temp_key()
        vm.new_controllers[(bus, nvme)] = key
        spec = dev.add_controller_spec(key, bus, want.type, want.sharing)
    elif current.type != want.type:
        raise MscsError(
            f"{action.address}: the controller on bus {bus} is {current.type}, the file asks for "
            f"{want.type}; changing a controller's type is not done in place (its disks would "
            "move): change it by hand or choose another bus"
        )
    else:
        spec = dev.edit_controller_spec(vm.device(current.key), want.sharing)
    return DeviceChange(action, [spec], partial(_finish, action, bus, nvme))


def remove(ctx: ApplyContext, vm: VmDevices, action: Action) -> DeviceChange | Outcome:
    """After the batch's detaches (they free their slots first): a controller still holding a
    disk is refused, whatever the plan says, so no disk ever loses its controller."""
    bus = int(action.address.name)
    current = vm.controllers.get(bus)
    if current is None:
        return skipped(action, "already removed")
    left = sorted(slot for slot, disk in vm.disks.items() if disk.bus == bus and not slot.startswith("nvme"))
    if left:
        raise MscsError(
            f"{action.address}: the controller on bus {bus} of {vm.name} still holds {', '.join(left)}: "
            "refusing to remove it; plan again"
        )
    spec = dev.remove_device_spec(vm.device(current.key))
    return DeviceChange(action, [spec], lambda now: done(action, vm_moref=now.moref))


def _finish(action: Action, bus: int, nvme: bool, now: VmDevices) -> Outcome:
    controller = now.controller_on(bus, nvme)
    return done(action, vm_moref=now.moref, device_key=controller.key if controller is not None else None)
