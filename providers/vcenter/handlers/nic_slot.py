"""Recording a moved adapter's PCI slot: nothing changes in vCenter, the slot is read now."""

from __future__ import annotations

from providers.vcenter.handlers.base import ApplyContext, after
from providers.vcenter.handlers.reconfigure import VmDevices
from reconciler.errors import MscsError
from reconciler.kinds.nic import NicSlotPayload
from reconciler.outcome import Outcome, done
from reconciler.plan import Action


def record_slot(ctx: ApplyContext, action: Action) -> Outcome:
    key = after(action, NicSlotPayload).device_key
    nic = next((n for n in VmDevices.read(ctx, action.target).nics if n.key == key), None)
    if nic is None or nic.pci_slot is None:
        raise MscsError(f"{action.address}: the adapter (device key {key}) has no PCI slot now; plan again")
    return done(action, pci_slot=nic.pci_slot, device_key=nic.key)
