"""A network adapter of a node, one per network role (production, heartbeat)."""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import Field

from reconciler.address import Address, Scope
from reconciler.kinds.base import ActionKind, Context, Managed, ObservedSide, Payload, ResourceKind, Unmanaged, fixed
from reconciler.kinds.facts import nics_by_role, node_vms, owned
from reconciler.observed import Observed, ObservedNic
from reconciler.spec import FailoverCluster

NAME = "nic"


class NicPayload(Payload):
    portgroup: str
    adapter: str  # vmxnet3 | vmxnet2 | vmxnet | e1000 | e1000e | other


class NicSlotPayload(Payload):
    """What a `record-nic-slot` action carries: the slot recorded before, the one vCenter shows now."""

    omit_when_none = frozenset({"deviceKey"})

    pci_slot: int | None = Field(alias="pciSlot")
    device_key: int | None = Field(default=None, alias="deviceKey")


def desired(cluster: FailoverCluster, ctx: Context, observed: Observed) -> Iterator[tuple[Address, Payload]]:
    for vm in ctx.vm_nodes:
        for role, net in cluster.spec.networks.by_role():
            if net is not None:
                yield (
                    Address.node(cluster.name, vm, NAME, role),
                    NicPayload(portgroup=net.portgroup, adapter=str(net.adapter)),
                )


def observe(cluster: FailoverCluster, observed: Observed, ctx: Context, managed: Managed, out: ObservedSide) -> None:
    for vm, node in node_vms(ctx, observed):
        by_role = nics_by_role(cluster, vm, node.nics, managed)
        taken = {nic.key for nic in by_role.values()}
        for role, match in by_role.items():
            out.tree[Address.node(cluster.name, vm, NAME, role)] = NicPayload(
                portgroup=match.network, adapter=match.adapter
            )
        added = added_nics(cluster, vm, node.nics, managed)
        for nic in node.nics:
            if nic.key in taken:
                continue
            address = added.get(nic.key)
            if address is not None:
                out.tree[address] = NicPayload(portgroup=nic.network, adapter=nic.adapter)
            else:
                out.unmanaged.append(Unmanaged(vm, f"nic {nic.adapter} on {nic.network or '?'} (key {nic.key})"))
    for vm in ctx.former_nodes:
        node = observed.vms.get(vm)
        if node is None:
            continue
        for key, address in added_nics(cluster, vm, node.nics, managed).items():
            nic = next(n for n in node.nics if n.key == key)
            out.tree[address] = NicPayload(portgroup=nic.network, adapter=nic.adapter)


def added_nics(cluster: FailoverCluster, vm: str, nics: list[ObservedNic], managed: Managed) -> dict[int, Address]:
    """Device key -> address of the adapters of `vm` that mscsctl added, still where it put them:
    the state recorded it as created by mscsctl, and vCenter shows that device key on the
    recorded port group. Only these are ever removed for not being in the file."""
    out = {}
    for address, resource in owned(managed, cluster.name, vm, NAME).items():
        if not resource.created_by_mscsctl:
            continue
        nic = next((n for n in nics if n.key == resource.device_key), None)
        if nic is not None and nic.network == resource.applied_value("portgroup"):
            out[nic.key] = address
    return out


KIND = ResourceKind(
    name=NAME,
    title="network adapter",
    scope=Scope.NODE,
    payload=NicPayload,
    state_kind=fixed("nic"),
    actions=(ActionKind.REMOVE_NIC, ActionKind.ADD_NIC, ActionKind.EDIT_NIC),
    desired=desired,
    observed=observe,
    doc="Added after every disk of the node (a second reconfigure), production before heartbeat.",
)

SLOT_KIND = ResourceKind(
    name=NAME,
    title="network adapter PCI slot",
    scope=Scope.NODE,
    payload=NicSlotPayload,
    state_kind=fixed("nic"),
    actions=(ActionKind.RECORD_NIC_SLOT,),
    doc="Record-only: a moved adapter's new slot is learnt by the state; vCenter is not touched.",
)
