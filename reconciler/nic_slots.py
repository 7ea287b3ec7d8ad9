"""Network adapters that moved to another PCI slot since mscsctl recorded them.

Windows knows an adapter by its PCI slot: an adapter that comes back in another slot (removed
and added again by hand, or devices added in the wrong order) is a new adapter to Windows,
which loses the IP settings of the old one, and the cluster loses that network. mscsctl
records each role's slot once vCenter has assigned one (after apply powers a node on), and
plan and drift compare. Pure: observed NICs and the state's record in, moves out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reconciler.diff import Op
from reconciler.normalize import NIC, nics_by_role, node_address, node_names
from reconciler.observed import Observed, ObservedNic
from reconciler.plan import Action, ActionKind, Reason
from reconciler.spec import FailoverCluster


@dataclass(frozen=True)
class MovedNic:
    vm: str
    role: str
    address: str  # cluster/node/VM/nic/ROLE
    recorded: int  # the slot mscsctl recorded
    now: int  # the slot vCenter shows now
    device_key: int

    @property
    def description(self) -> str:
        return (
            f"{self.vm} {self.role} adapter is in PCI slot {self.now}, recorded in slot {self.recorded}: "
            "Windows sees a new adapter and has lost the old one's IP settings"
        )


def recorded_slot(managed: dict[str, dict[str, Any]], address: str) -> int | None:
    return ((managed.get(address) or {}).get("applied") or {}).get("pciSlot")


def role_slots(
    cluster: FailoverCluster, vm: str, nics: list[ObservedNic], managed: dict[str, dict[str, Any]]
) -> dict[str, ObservedNic]:
    """Address -> NIC for each role whose adapter has a slot, as it is to be recorded."""
    return {
        node_address(cluster, vm, NIC, role): nic
        for role, nic in nics_by_role(cluster, vm, nics, managed).items()
        if nic.pci_slot is not None
    }


def moved_nics(cluster: FailoverCluster, observed: Observed, managed: dict[str, dict[str, Any]]) -> list[MovedNic]:
    out = []
    for vm in node_names(cluster):
        node = observed.vms.get(vm)
        if node is None:
            continue
        for role, nic in nics_by_role(cluster, vm, node.nics, managed).items():
            address = node_address(cluster, vm, NIC, role)
            recorded = recorded_slot(managed, address)
            if recorded is not None and nic.pci_slot is not None and nic.pci_slot != recorded:
                out.append(MovedNic(vm, role, address, recorded, nic.pci_slot, nic.key))
    return out


def record_moved_nics(moved: list[MovedNic]) -> list[Action]:
    """One action a moved adapter, last in the plan: apply records the slot, vCenter is not touched."""
    return [
        Action(
            id=f"{m.address}#{ActionKind.RECORD_NIC_SLOT}",
            address=m.address,
            kind=ActionKind.RECORD_NIC_SLOT,
            op=Op.UPDATE,
            target=m.vm,
            before={"pciSlot": m.recorded},
            after={"pciSlot": m.now, "deviceKey": m.device_key},
            reason=Reason.NIC_MOVED,
        )
        for m in moved
    ]
