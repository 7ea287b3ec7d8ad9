"""A clustered disk of a node: an RDM of a LUN, or a shared VMDK, at the same bus:unit on every node.

Which device is which disk comes from vCenter alone (`reconciler.kinds.ownership`): the state
never makes a device the cluster's.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Annotated, Any, Literal

from pydantic import Field, TypeAdapter, ValidationError

from reconciler.address import Address, Scope
from reconciler.kinds.base import ActionKind, Context, Managed, ObservedSide, Payload, ResourceKind, Unmanaged
from reconciler.kinds.facts import mapping_file, node_vms, shared_adapter
from reconciler.kinds.ownership import cluster_disk_of, owned_disk_name
from reconciler.observed import Observed, ObservedDisk, disk_slot
from reconciler.spec import FailoverCluster, RdmDisk, SharedVmdk

NAME = "disk"


class RdmDiskPayload(Payload):
    bus: int
    unit: int | None
    kind: Literal["rdm"] = "rdm"
    lun: str | None
    compatibility: str | None
    file: str

    @property
    def slot(self) -> str:
        return disk_slot(self.bus, self.unit)


class VmdkDiskPayload(Payload):
    """A shared or clustered VMDK; `adapter` nvme on an NVMe controller (absent: SCSI)."""

    omit_when_none = frozenset({"adapter"})

    bus: int
    unit: int | None
    kind: Literal["vmdk"] = "vmdk"
    file: str
    size_gb: int | None = Field(alias="sizeGB")
    adapter: str | None = None

    @property
    def slot(self) -> str:
        return disk_slot(self.bus, self.unit, self.adapter)


DiskPayload = Annotated[RdmDiskPayload | VmdkDiskPayload, Field(discriminator="kind")]
KIND_PAYLOAD: TypeAdapter[RdmDiskPayload | VmdkDiskPayload] = TypeAdapter(DiskPayload)


def desired_payload(cluster: FailoverCluster, disk: RdmDisk | SharedVmdk) -> RdmDiskPayload | VmdkDiskPayload:
    bus = disk.bus if disk.bus is not None else cluster.spec.shared_disks.controller.bus
    unit = disk.unit
    if isinstance(disk, RdmDisk):
        return RdmDiskPayload(
            bus=bus, unit=unit, lun=disk.lun, compatibility=str(disk.compatibility), file=mapping_file(cluster, disk)
        )
    return VmdkDiskPayload(
        bus=bus, unit=unit, file=mapping_file(cluster, disk), size_gb=disk.size_gb, adapter=shared_adapter(cluster)
    )


def observed_payload(disk: ObservedDisk) -> RdmDiskPayload | VmdkDiskPayload:
    if disk.kind == "rdm":
        return RdmDiskPayload(
            bus=disk.bus, unit=disk.unit, lun=disk.lun, compatibility=disk.compatibility, file=disk.file
        )
    adapter = "nvme" if disk.adapter == "nvme" else None
    return VmdkDiskPayload(bus=disk.bus, unit=disk.unit, file=disk.file, size_gb=disk.size_gb, adapter=adapter)


def desired(cluster: FailoverCluster, ctx: Context, observed: Observed) -> Iterator[tuple[Address, Payload]]:
    for vm in ctx.vm_nodes:
        for disk in cluster.spec.shared_disks.disks:
            yield Address.node(cluster.name, vm, NAME, disk.name), desired_payload(cluster, disk)


def observe(cluster: FailoverCluster, observed: Observed, ctx: Context, managed: Managed, out: ObservedSide) -> None:
    """The cluster's own disks on each node and former node, proved from vCenter alone
    (`ownership.owned_disk_name`: on a shared bus, with the cluster's file or a LUN of the
    file), whatever the state says. Any other disk on a shared bus, and a second device of the
    same disk, is listed as unmanaged and never touched; so is the cluster's file on another bus."""
    buses = cluster.spec.shared_buses
    adapter = shared_adapter(cluster) or "scsi"
    own_bus = cluster.spec.shared_disks.controller.bus
    units = {d.name: (d.bus if d.bus is not None else own_bus, d.unit) for d in cluster.spec.shared_disks.disks}
    for vm, node in node_vms(ctx, observed, former=True):
        owned = [(slot, disk, owned_disk_name(cluster, disk)) for slot, disk in node.disks.items()]
        # A disk at its own unit first: a second device of the same disk is the one left alone.
        owned.sort(key=lambda o: (o[2] is None or units.get(o[2]) != (o[1].bus, o[1].unit), o[1].bus, o[1].unit))
        for slot, disk, name in owned:
            address = Address.node(cluster.name, vm, NAME, name) if name is not None else None
            if address is not None and address not in out.tree:
                out.tree[address] = observed_payload(disk)
            elif disk.bus in buses and disk.adapter == adapter:
                second = f" (a second device of {name}: left alone)" if name is not None else ""
                out.unmanaged.append(Unmanaged(vm, f"disk {slot} {disk.file or disk.lun or ''}".strip() + second))
            elif cluster_disk_of(cluster, disk) is not None and vm in ctx.vm_nodes:
                out.unmanaged.append(
                    Unmanaged(vm, f"disk {slot} {disk.file} (the cluster's file, not on a shared bus {_text(buses)})")
                )


def _text(buses: list[int]) -> str:
    return ", ".join(map(str, buses))


def recorded_payload(applied: Mapping[str, Any]) -> RdmDiskPayload | VmdkDiskPayload | None:
    """What the state recorded as applied to a disk, as its payload (None: not a disk's record)."""
    try:
        return KIND_PAYLOAD.validate_python(dict(applied))
    except ValidationError:
        return None


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
