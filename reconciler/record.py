"""What an applied action leaves in the state: pure functions of (state, outcome).

The state also says what mscsctl may take away again when the cluster is decommissioned
(`reconciler/destroy.py`): `created_by_mscsctl` on each object it added or changed (a DRS or
HA override vCenter did not have, a LUN it marked perennially reserved, a host option it
changed, with the value it had before as `applied.previousValue`), and, once destroyed, one
record at `CLUSTER/destroyed/CLUSTER` listing what stays.
"""

from __future__ import annotations

from reconciler.address import Address
from reconciler.kinds import ActionKind, kind_of_action
from reconciler.kinds.host import HostOptionPayload, LunReservationPayload
from reconciler.kinds.nic import NicPayload, NicSlotPayload
from reconciler.nic_slots import role_slots
from reconciler.observed import ObservedNic
from reconciler.outcome import Outcome, OutcomeStatus
from reconciler.plan import Action
from reconciler.spec import FailoverCluster
from state.model import ManagedResource, State

_REMOVING = {
    ActionKind.DETACH_DISK,
    ActionKind.REMOVE_NIC,
    ActionKind.DELETE_RULE,
    ActionKind.REMOVE_CONTROLLER,
    ActionKind.REMOVE_DRS_OVERRIDE,
    ActionKind.REMOVE_HA_OVERRIDE,
    ActionKind.DELETE_VM_HOST_RULE,
    ActionKind.RELEASE_LUN,
    ActionKind.RESTORE_HOST_OPTION,
}
_PUT_BACK = {ActionKind.RELEASE_LUN, ActionKind.RESTORE_HOST_OPTION}
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
        # A detach that is not the first half of a replace; a reservation released, an option put back.
        if action.after is None or action.kind in _PUT_BACK:
            return state.without_resource(action.address)
        return state
    if action.after is None:
        return state
    kind = kind_of_action(action.kind).state_kind(action.after)
    if not kind:  # power actions leave nothing to record
        return state
    previous = state.get(action.address)
    done = outcome.status is OutcomeStatus.DONE
    created = (done and (action.kind in _CREATING or _set_up_by_mscsctl(action))) or (
        previous is not None and previous.created_by_mscsctl
    )
    applied = {k: v for k, v in action.after.fields().items() if k != "waitForTools"}
    if action.kind is ActionKind.SET_HOST_OPTION and created:
        # The value the host had before mscsctl first changed it: what a destroy puts back.
        earlier = previous.applied if previous is not None and previous.created_by_mscsctl else None
        was = action.before.value if isinstance(action.before, HostOptionPayload) else None
        applied[PREVIOUS_VALUE] = earlier.get(PREVIOUS_VALUE) if earlier is not None else was
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


PREVIOUS_VALUE = "previousValue"


def _set_up_by_mscsctl(action: Action) -> bool:
    """An override or a VM-Host rule vCenter did not have, a LUN that was not perennially
    reserved, a host option mscsctl changed: set up by mscsctl, so a destroy may take it away again."""
    if action.kind in (ActionKind.SET_DRS_OVERRIDE, ActionKind.SET_HA_OVERRIDE, ActionKind.SET_VM_HOST_RULE):
        return action.before is None
    if action.kind is ActionKind.RESERVE_LUN:
        return not (isinstance(action.before, LunReservationPayload) and action.before.perennially_reserved)
    return action.kind is ActionKind.SET_HOST_OPTION


DESTROYED = "destroyed"
KEPT = "kept"


def destroyed_address(cluster: str) -> Address:
    return Address.vsphere_cluster(cluster, DESTROYED, cluster)


def record_destroyed(state: State, kept: list[str], now: str) -> State:
    """The state of a decommissioned cluster: one record saying so, with what stays in vCenter."""
    record = ManagedResource(kind=DESTROYED, created_by_mscsctl=False, applied={KEPT: list(kept)}, applied_at=now)
    return state.with_resource(destroyed_address(state.cluster), record)


def destroyed(state: State | None) -> ManagedResource | None:
    """The record of a destroy, when the state's cluster was decommissioned since its last apply."""
    return state.get(destroyed_address(state.cluster)) if state is not None else None


def alive(state: State) -> State:
    """The state of a cluster applied again after a destroy: the destroy's record goes."""
    return state.without_resource(destroyed_address(state.cluster))


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
