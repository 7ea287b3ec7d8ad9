"""What an applied action leaves in the state: pure functions of (state, outcome)."""

from __future__ import annotations

from reconciler.kinds import ActionKind, kind_of_action
from reconciler.kinds.nic import NicPayload, NicSlotPayload
from reconciler.nic_slots import role_slots
from reconciler.observed import ObservedNic
from reconciler.outcome import Outcome, OutcomeStatus
from reconciler.spec import FailoverCluster
from state.model import ManagedResource, State

_REMOVING = {ActionKind.DETACH_DISK, ActionKind.REMOVE_NIC, ActionKind.DELETE_RULE}
_CREATING = {
    ActionKind.CREATE_DISK,
    ActionKind.ATTACH_DISK,
    ActionKind.ADD_CONTROLLER,
    ActionKind.ADD_NIC,
    ActionKind.CREATE_RULE,
}


def record_outcome(state: State, outcome: Outcome, now: str) -> State:
    """The state after one outcome: the resource at the action's address added, updated or removed."""
    action = outcome.action
    rec = outcome.record
    if action.kind is ActionKind.RECORD_NIC_SLOT:
        previous = state.get(action.address)
        if previous is None:
            return state
        after = action.after if isinstance(action.after, NicSlotPayload) else NicSlotPayload(pci_slot=None)
        slot = rec.pci_slot if rec.pci_slot is not None else after.pci_slot
        key = rec.device_key if rec.device_key is not None else (after.device_key or previous.device_key)
        applied = {**previous.applied, ManagedResource.PCI_SLOT: slot}
        return state.with_resource(
            action.address, previous.model_copy(update={"device_key": key, "applied": applied, "applied_at": now})
        )
    if action.kind in _REMOVING:
        if action.after is None:  # a detach that is not the first half of a replace
            return state.without_resource(action.address)
        return state
    if action.after is None:
        return state
    kind = kind_of_action(action.kind).state_kind(action.after)
    if not kind:  # power actions leave nothing to record
        return state
    previous = state.get(action.address)
    created = (outcome.status is OutcomeStatus.DONE and action.kind in _CREATING) or (
        previous is not None and previous.created_by_mscsctl
    )
    applied = {k: v for k, v in action.after.fields().items() if k != "waitForTools"}
    if rec.pci_slot is not None:
        applied[ManagedResource.PCI_SLOT] = rec.pci_slot
    resource = ManagedResource(
        kind=kind,
        vm_moref=rec.vm_moref,
        host_moref=rec.host_moref,
        cluster_moref=rec.cluster_moref,
        device_key=rec.device_key,
        file=rec.file,
        rule_key=rec.rule_key,
        created_by_mscsctl=created,
        applied=applied,
        applied_at=now,
    )
    return state.with_resource(action.address, resource)


def record_nic_slots(
    state: State, cluster: FailoverCluster, vm: str, vm_moref: str | None, nics: list[ObservedNic], now: str
) -> State:
    """After apply powered `vm` on (vCenter assigns PCI slots then): each network role's slot.

    A role's adapter that mscsctl did not add (the production NIC of a freshly built VM) is
    recorded too, as not created by mscsctl, so that its slot is watched like the others.
    """
    for address, nic in role_slots(cluster, vm, nics, state.managed()).items():
        previous = state.get(address)
        if previous is not None:
            applied = {**previous.applied, ManagedResource.PCI_SLOT: nic.pci_slot}
            resource = previous.model_copy(update={"device_key": nic.key, "applied": applied})
        else:
            payload = NicPayload(portgroup=nic.network, adapter=nic.adapter)
            resource = ManagedResource(
                kind="nic",
                vm_moref=vm_moref,
                device_key=nic.key,
                created_by_mscsctl=False,
                applied={**payload.fields(), ManagedResource.PCI_SLOT: nic.pci_slot},
                applied_at=now,
            )
        if resource != previous:
            state = state.with_resource(address, resource)
    return state
