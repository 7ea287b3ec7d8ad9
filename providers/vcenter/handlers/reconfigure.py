"""One ReconfigVM_Task for a batch of device changes of one VM.

Like terraform-provider-vsphere's virtualdevice package, each device kind (controller, disk,
NIC) turns its action and the devices the VM has now into the `VirtualDeviceConfigSpec`s it
needs, or into "already satisfied"; `reconfigure_vm` reads the devices once, collects every
kind's specs, sends them in one reconfigure carrying the `config.changeVersion` just read, and
reads the devices again so each kind can say which device it ended up as. Nothing is sent
when every action of the batch is already satisfied.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from providers.vcenter import devices as dev
from providers.vcenter.handlers.base import ApplyContext
from reconciler.kinds import ActionKind
from reconciler.observed import ObservedController, ObservedDisk, ObservedNic
from reconciler.outcome import Outcome
from reconciler.plan import Action

DEVICE_PATHS = ["config.hardware.device", "config.changeVersion"]


@dataclass
class VmDevices:
    """A VM's devices as just read, converted as observe converts them, plus what the kinds of
    one batch share while they build its specs: the temporary keys of new devices, the
    controllers they add, the adapters already claimed by an action."""

    name: str
    vm: Any
    devices: list[Any]
    change_version: str
    controllers: dict[int, ObservedController]  # SCSI, by bus
    disks: dict[str, ObservedDisk]  # by slot ("1:0", NVMe "nvme1:0")
    nics: list[ObservedNic]
    nvme_controllers: dict[int, ObservedController] = field(default_factory=dict)  # NVMe, by bus
    new_controllers: dict[tuple[int, bool], int] = field(default_factory=dict)  # (bus, nvme) -> temporary key
    claimed_nics: set[int] = field(default_factory=set)
    _last_key: int = -100

    @classmethod
    def read(cls, ctx: ApplyContext, name: str) -> VmDevices:
        vm = ctx.vm(name)
        return cls.of(ctx, name, vm, ctx.read(vm, DEVICE_PATHS))

    @classmethod
    def of(cls, ctx: ApplyContext, name: str, vm: Any, props: dict[str, Any]) -> VmDevices:
        """The VM's devices from its `DEVICE_PATHS` just read."""
        devices = list(props.get("config.hardware.device") or [])
        controllers = dev.controllers_of(devices)
        nvme = dev.nvme_controllers_of(devices)
        return cls(
            name=name,
            vm=vm,
            devices=devices,
            change_version=props.get("config.changeVersion") or "",
            controllers={c.bus: c for c in controllers.values()},
            disks={d.slot: d for d in dev.disks_of(devices, {**controllers, **nvme})},
            nics=dev.nics_of(devices, ctx.network_names()),
            nvme_controllers={c.bus: c for c in nvme.values()},
        )

    @property
    def moref(self) -> str:
        return str(self.vm._moId)

    def device(self, key: int) -> Any:
        """The vSphere device object with this key, to edit or remove it."""
        return next(d for d in self.devices if d.key == key)

    def temp_key(self) -> int:
        """A key for a device this batch adds (negative: vCenter gives the real one)."""
        self._last_key -= 1
        return self._last_key

    def controller_on(self, bus: int, nvme: bool = False) -> ObservedController | None:
        """The VM's SCSI controller on `bus`, or with `nvme` its NVMe controller of that number."""
        return (self.nvme_controllers if nvme else self.controllers).get(bus)

    def controller_key(self, bus: int, nvme: bool = False) -> int | None:
        """The key of the controller on `bus` (NVMe with `nvme`): one this batch adds, or the VM's own."""
        if (bus, nvme) in self.new_controllers:
            return self.new_controllers[(bus, nvme)]
        current = self.controller_on(bus, nvme)
        return current.key if current is not None else None


@dataclass
class DeviceChange:
    """What one action adds to the batch's reconfigure, and how to tell, from the devices read
    after it, what the action ended up as."""

    action: Action
    specs: list[Any]
    finish: Callable[[VmDevices], Outcome]


# A device kind's handler: the action, against the VM's devices now -> a change, or an outcome
# (skipped: already satisfied).
DeviceHandler = Callable[[ApplyContext, VmDevices, Action], DeviceChange | Outcome]


def reconfigure_vm(
    ctx: ApplyContext, step: list[Action], handlers: Mapping[ActionKind, DeviceHandler]
) -> list[Outcome]:
    name = step[0].target
    now = VmDevices.read(ctx, name)
    planned = [handlers[action.kind](ctx, now, action) for action in step]
    specs = [spec for p in planned if isinstance(p, DeviceChange) for spec in p.specs]
    if specs:  # the devices after it are read with the task's end
        after = ctx.reconfigure(now.vm, name, specs, now.change_version, then_read=DEVICE_PATHS)
        now = VmDevices.of(ctx, name, now.vm, after)
    return [p.finish(now) if isinstance(p, DeviceChange) else p for p in planned]
