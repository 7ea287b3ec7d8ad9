"""What an applied action leaves in the state: pure functions of (state, outcome)."""

from __future__ import annotations

from typing import Any

from reconciler.plan import ActionKind
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
