"""Network adapters that moved to another PCI slot since mscsctl recorded them.

Windows knows an adapter by its PCI slot: an adapter that comes back in another slot (removed
and added again by hand, or devices added in the wrong order) is a new adapter to Windows,
which loses the IP settings of the old one, and the cluster loses that network. mscsctl
records each role's slot once vCenter has assigned one (after apply powers a node on), and
plan and drift compare. Pure: observed NICs and the state's record in, moves out.
"""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.address import Address
from reconciler.diff import Op
from reconciler.kinds import Managed
from reconciler.kinds.facts import nics_by_role
from reconciler.kinds.nic import NAME as NIC
from reconciler.kinds.nic import NicSlotPayload
from reconciler.observed import Observed, ObservedNic
from reconciler.plan import Action, ActionKind, Reason
from reconciler.spec import FailoverCluster


@dataclass(frozen=True)
class MovedNic:
    vm: str
    role: str
    address: Address  # cluster/node/VM/nic/ROLE
    recorded: int  # the slot mscsctl recorded
    now: int  # the slot vCenter shows now
    device_key: int

    @property
    def description(self) -> str:
        return (
            f"{self.vm} {self.role} adapter is in PCI slot {self.now}, recorded in slot {self.recorded}: "
            "Windows sees a new adapter and has lost the old one's IP settings"
        )


def recorded_slot(managed: Managed, address: Address) -> int | None:
    resource = managed.get(address)
    return resource.pci_slot if resource is not None else None


def role_slots(
    cluster: FailoverCluster, vm: str, nics: list[ObservedNic], managed: Managed
) -> dict[Address, ObservedNic]:
    """Address -> NIC for each role whose adapter has a slot, as it is to be recorded."""
    return {
        Address.node(cluster.name, vm, NIC, role): nic
        for role, nic in nics_by_role(cluster, vm, nics, managed).items()
        if nic.pci_slot is not None
    }


def moved_nics(cluster: FailoverCluster, observed: Observed, managed: Managed) -> list[MovedNic]:
    out = []
    for vm in cluster.spec.node_names:
        node = observed.vms.get(vm)
        if node is None:
            continue
        for role, nic in nics_by_role(cluster, vm, node.nics, managed).items():
            address = Address.node(cluster.name, vm, NIC, role)
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
            before=NicSlotPayload(pci_slot=m.recorded),
            after=NicSlotPayload(pci_slot=m.now, device_key=m.device_key),
            reason=Reason.NIC_MOVED,
        )
        for m in moved
    ]
