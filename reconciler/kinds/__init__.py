"""The catalogue of resource kinds: every kind of object mscsctl manages, one entry each.

Like the rule catalogue, this is data: each entry (see `ResourceKind`) says how the kind is
addressed, its typed payload, what the state records, its drift-critical fields and the
action kinds that change it. The desired and observed trees are the union of what each
kind yields; adding a kind is adding one module and one entry here (docs/resource-kinds.md).
"""

from __future__ import annotations

from typing import Any

from reconciler.kinds import controller, datastore, disk, guest, host, nic, placement, power
from reconciler.kinds.base import (
    ActionKind,
    Context,
    Managed,
    ObservedSide,
    Payload,
    ResourceKind,
    Severity,
    Tree,
    Unmanaged,
)

KINDS: tuple[ResourceKind, ...] = (
    host.OPTION_KIND,
    host.LUN_KIND,
    datastore.KIND,
    placement.DRS_KIND,
    placement.HA_KIND,
    placement.RULE_KIND,
    placement.VM_HOST_RULE_KIND,
    placement.CLUSTER_OPTION_KIND,
    power.KIND,
    controller.KIND,
    disk.KIND,
    nic.KIND,
    guest.KIND,
)
# Kinds that exist only as actions (no tree of their own).
ACTION_ONLY: tuple[ResourceKind, ...] = (nic.SLOT_KIND,)

_BY_NAME = {k.name: k for k in KINDS}
_BY_ACTION = {a: k for k in KINDS + ACTION_ONLY for a in k.actions}
assert len(_BY_ACTION) == len(ActionKind), "every action kind belongs to exactly one resource kind"


def kind_named(name: str) -> ResourceKind:
    return _BY_NAME[name]


def kind_of_action(action: ActionKind) -> ResourceKind:
    return _BY_ACTION[action]


def parse_payload(action: ActionKind, data: Any) -> Payload:
    """An action's `before` or `after`, as its kind's payload (refused when it does not fit)."""
    if isinstance(data, Payload):
        return data
    return kind_of_action(action).parse(data)


__all__ = [
    "ACTION_ONLY",
    "KINDS",
    "ActionKind",
    "Context",
    "Managed",
    "ObservedSide",
    "Payload",
    "ResourceKind",
    "Severity",
    "Tree",
    "Unmanaged",
    "kind_named",
    "kind_of_action",
    "parse_payload",
]
