"""What an applied action leaves in the state: pure functions of (state, outcome)."""

from __future__ import annotations

from typing import Any

from reconciler.nic_slots import role_slots
from reconciler.observed import ObservedNic
from reconciler.plan import ActionKind
from reconciler.spec import FailoverCluster
from state.model import ManagedResource, State

RESOURCE_KIND: dict[ActionKind, str] = {
    ActionKind.SET_HOST_OPTION: "host-option",
    ActionKind.RESERVE_LUN: "perennial-reservation",
    ActionKind.SET_DRS_OVERRIDE: "drs-override",
    ActionKind.SET_HA_OVERRIDE: "ha-override",
    ActionKind.CREATE_RULE: "vm-rule",
    ActionKind.UPDATE_RULE: "vm-rule",
    ActionKind.ADD_CONTROLLER: "controller",
    ActionKind.EDIT_CONTROLLER: "controller",
    ActionKind.CREATE_DISK: "disk",
    ActionKind.ATTACH_DISK: "disk",
    ActionKind.ADD_NIC: "nic",
    ActionKind.EDIT_NIC: "nic",
    ActionKind.SET_GUEST_SETTING: "guest-setting",
}
_REMOVING = {ActionKind.DETACH_DISK, ActionKind.REMOVE_NIC, ActionKind.DELETE_RULE}
_CREATING = {
    ActionKind.CREATE_DISK,
    ActionKind.ATTACH_DISK,
    ActionKind.ADD_CONTROLLER,
    ActionKind.ADD_NIC,
    ActionKind.CREATE_RULE,
}


def record_outcome(state: State, outcome: Any, now: str) -> State:
    """The state after one outcome: the resource at the action's address added, updated or removed."""
    action = outcome.action
    if action.kind is ActionKind.RECORD_NIC_SLOT:
        previous = state.get(action.address)
        if previous is None:
            return state
        after = action.after or {}
        slot = outcome.record.get("pci_slot", after.get("pciSlot"))
        key = outcome.record.get("device_key", after.get("deviceKey", previous.device_key))
        update = {"device_key": key, "applied": {**previous.applied, "pciSlot": slot}, "applied_at": now}
        return state.with_resource(action.address, previous.model_copy(update=update))
    if action.kind in _REMOVING:
        if action.after is None:  # a detach that is not the first half of a replace
            return state.without_resource(action.address)
        return state
    kind = RESOURCE_KIND.get(action.kind)
    if kind == "disk":
        kind = "rdm-disk" if (action.after or {}).get("kind") == "rdm" else "shared-vmdk"
    if kind is None:  # power actions leave nothing to record
        return state
    rec: dict[str, Any] = outcome.record
    previous = state.get(action.address)
    created = (outcome.status == "done" and action.kind in _CREATING) or (
        previous is not None and previous.created_by_mscsctl
    )
    applied = {k: v for k, v in (action.after or {}).items() if k != "waitForTools"}
    if rec.get("pci_slot") is not None:
        applied["pciSlot"] = rec["pci_slot"]
    resource = ManagedResource(
        kind=kind,
        vm_moref=rec.get("vm_moref"),
        host_moref=rec.get("host_moref"),
        cluster_moref=rec.get("cluster_moref"),
        device_key=rec.get("device_key"),
        file=rec.get("file"),
        rule_key=rec.get("rule_key"),
        created_by_mscsctl=created,
        applied=applied,
        applied_at=now,
    )
    return state.with_resource(action.address, resource)


def managed_view(state: State | None) -> dict[str, dict[str, Any]]:
    """The state's resources as plain dicts, as `normalize.observed_tree` reads them."""
    if state is None:
        return {}
    return {addr: res.model_dump() for addr, res in state.resources.items()}


def record_nic_slots(
    state: State, cluster: FailoverCluster, vm: str, vm_moref: str | None, nics: list[ObservedNic], now: str
) -> State:
    """After apply powered `vm` on (vCenter assigns PCI slots then): each network role's slot.

    A role's adapter that mscsctl did not add (the production NIC of a freshly built VM) is
    recorded too, as not created by mscsctl, so that its slot is watched like the others.
    """
    for address, nic in role_slots(cluster, vm, nics, managed_view(state)).items():
        previous = state.get(address)
        if previous is not None:
            resource = previous.model_copy(
                update={"device_key": nic.key, "applied": {**previous.applied, "pciSlot": nic.pci_slot}}
            )
        else:
            resource = ManagedResource(
                kind="nic",
                vm_moref=vm_moref,
                device_key=nic.key,
                created_by_mscsctl=False,
                applied={"portgroup": nic.network, "adapter": nic.adapter, "pciSlot": nic.pci_slot},
                applied_at=now,
            )
        if resource != previous:
            state = state.with_resource(address, resource)
    return state
