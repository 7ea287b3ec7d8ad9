"""A clustered disk of a node: an RDM of a LUN, or a shared VMDK, at the same bus:unit on every node."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Literal

from pydantic import Field

from reconciler.address import Address, Scope
from reconciler.kinds.base import ActionKind, Context, Managed, ObservedSide, Payload, ResourceKind, Unmanaged
from reconciler.kinds.facts import managed_name, mapping_file
from reconciler.observed import Observed, ObservedDisk
from reconciler.spec import FailoverCluster, RdmDisk, SharedVmdk

NAME = "disk"


class RdmDiskPayload(Payload):
    bus: int
    unit: int | None
    kind: Literal["rdm"] = "rdm"
    lun: str | None
    compatibility: str | None
    file: str


class VmdkDiskPayload(Payload):
    bus: int
    unit: int | None
    kind: Literal["vmdk"] = "vmdk"
    file: str
    size_gb: int | None = Field(alias="sizeGB")


DiskPayload = Annotated[RdmDiskPayload | VmdkDiskPayload, Field(discriminator="kind")]


def desired_payload(cluster: FailoverCluster, disk: RdmDisk | SharedVmdk) -> RdmDiskPayload | VmdkDiskPayload:
    bus = cluster.spec.shared_disks.controller.bus
    unit = disk.unit
    if isinstance(disk, RdmDisk):
        return RdmDiskPayload(
            bus=bus, unit=unit, lun=disk.lun, compatibility=str(disk.compatibility), file=mapping_file(cluster, disk)
        )
    return VmdkDiskPayload(bus=bus, unit=unit, file=mapping_file(cluster, disk), size_gb=disk.size_gb)


def observed_payload(disk: ObservedDisk) -> RdmDiskPayload | VmdkDiskPayload:
    if disk.kind == "rdm":
        return RdmDiskPayload(
            bus=disk.bus, unit=disk.unit, lun=disk.lun, compatibility=disk.compatibility, file=disk.file
        )
    return VmdkDiskPayload(bus=disk.bus, unit=disk.unit, file=disk.file, size_gb=disk.size_gb)


def desired(cluster: FailoverCluster, ctx: Context, observed: Observed) -> Iterator[tuple[Address, Payload]]:
    for vm in ctx.vm_nodes:
        for disk in cluster.spec.shared_disks.disks:
            yield Address.node(cluster.name, vm, NAME, disk.name), desired_payload(cluster, disk)


def observe(cluster: FailoverCluster, observed: Observed, ctx: Context, managed: Managed, out: ObservedSide) -> None:
    """Disks at the file's units, and disks the state names; any other disk on the shared bus is
    reported as unmanaged and never touched."""
    bus = cluster.spec.shared_disks.controller.bus
    wanted_units = {(bus, d.unit): d.name for d in cluster.spec.shared_disks.disks}
    for vm in ctx.vm_nodes:
        node = observed.vms.get(vm)
        if node is None:
            continue
        for slot, disk in node.disks.items():
            name = wanted_units.get((disk.bus, disk.unit)) or managed_name(
                managed, cluster.name, vm, NAME, key=disk.key, file=disk.file
            )
            if name is None:
                if disk.bus == bus:
                    out.unmanaged.append(Unmanaged(vm, f"disk {slot} {disk.file or disk.lun or ''}".strip()))
                continue
            out.tree[Address.node(cluster.name, vm, NAME, name)] = observed_payload(disk)


def _state_kind(payload: Payload) -> str:
    return "rdm-disk" if isinstance(payload, RdmDiskPayload) else "shared-vmdk"


KIND = ResourceKind(
    name=NAME,
    title="clustered disk",
    scope=Scope.NODE,
    payload=DiskPayload,
    state_kind=_state_kind,
    actions=(ActionKind.DETACH_DISK, ActionKind.CREATE_DISK, ActionKind.ATTACH_DISK),
    desired=desired,
    observed=observe,
    critical_fields=frozenset({"compatibility", "unit", "bus", "lun", "file", "kind"}),
    critical_presence=True,
    doc="Node 1 creates the mapping file or shared VMDK, every other node attaches it at the same bus:unit.",
)
