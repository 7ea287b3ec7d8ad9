"""Network adapters: added on their port group, moved to another port group, or removed.

An adapter is found by what it is (its port group and adapter type, converted as observe
converts it), and each adapter serves one action of the batch at most, so two roles on the
same port group get two adapters.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial

from pyVmomi import vim

from providers.vcenter import devices as dev
from providers.vcenter.handlers.base import ApplyContext, after, before
from providers.vcenter.handlers.reconfigure import DeviceChange, VmDevices
from providers.vcenter.names import escape_name
from reconciler.kinds import ActionKind
from reconciler.kinds.nic import NicPayload
from reconciler.observed import ObservedNic
from reconciler.outcome import Outcome, done, skipped
from reconciler.plan import Action


def observed_payload(nic: ObservedNic) -> NicPayload:
    return NicPayload(portgroup=nic.network, adapter=nic.adapter)


def matching(nics: Iterable[ObservedNic], want: NicPayload, claimed: set[int]) -> ObservedNic | None:
    """The first adapter that is what `want` describes and that no other action has claimed."""
    return next((n for n in nics if n.key not in claimed and observed_payload(n) == want), None)


def remove(ctx: ApplyContext, vm: VmDevices, action: Action) -> DeviceChange | Outcome:
    nic = matching(vm.nics, before(action, NicPayload), vm.claimed_nics)
    if nic is None:
        return skipped(action, "already removed")
    vm.claimed_nics.add(nic.key)
    spec = dev.remove_device_spec(vm.device(nic.key))
    return DeviceChange(action, [spec], lambda now: done(action, vm_moref=now.moref))


def add_or_edit(ctx: ApplyContext, vm: VmDevices, action: Action) -> DeviceChange | Outcome:
    """An edit moves the adapter it had to the new port group; an add (or an edit whose adapter
    is gone) adds one."""
    want = after(action, NicPayload)
    present = matching(vm.nics, want, vm.claimed_nics)
    if present is not None:
        vm.claimed_nics.add(present.key)
        return skipped(action, "already present", device_key=present.key)
    backing = _backing(ctx, want.portgroup)
    old = None
    if action.kind is ActionKind.EDIT_NIC:
        old = matching(vm.nics, before(action, NicPayload), vm.claimed_nics)
    there = {n.key for n in vm.nics}
    if old is not None:
        vm.claimed_nics.add(old.key)
        spec = dev.edit_nic_spec(vm.device(old.key), backing)
        return DeviceChange(action, [spec], partial(_finish, action, want, there - {old.key}))
    spec = dev.add_nic_spec(vm.temp_key(), want.adapter, backing)
    return DeviceChange(action, [spec], partial(_finish, action, want, there))


def _finish(action: Action, want: NicPayload, others: set[int], now: VmDevices) -> Outcome:
    """The adapter the action ended up as: the edited one, or one that was not there before
    (`others`: the adapters that cannot be it)."""
    nic = matching(now.nics, want, others | now.claimed_nics)
    if nic is None:
        return done(action, vm_moref=now.moref)
    now.claimed_nics.add(nic.key)
    return done(action, vm_moref=now.moref, device_key=nic.key, pci_slot=nic.pci_slot)


def _backing(ctx: ApplyContext, portgroup: str) -> object:
    """The adapter's backing on the port group. A standard port group's device name is its
    name as vCenter returns it (escaped), known here: not fetched from vCenter."""
    network = ctx.network(portgroup)
    if isinstance(network, vim.dvs.DistributedVirtualPortgroup):
        return dev.nic_backing(network)
    return vim.vm.device.VirtualEthernetCard.NetworkBackingInfo(deviceName=escape_name(portgroup), network=network)
