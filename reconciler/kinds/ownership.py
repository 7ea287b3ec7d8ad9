"""Which devices are the cluster's own, proved from what vCenter shows: never from the state alone.

mscsctl changes, detaches or deletes a disk only when vCenter itself shows that it is one of
the cluster's: on the cluster's shared bus, with a file under the cluster's own mapping path
(`[DS] CLUSTER/NAME-MODE.vmdk` for an RDM, `[DS] CLUSTER/NAME.vmdk` for a shared VMDK, see
`facts.mapping_file`), or an RDM of a LUN the desired file lists. Because the proof is in
vCenter, a disk whose task succeeded but whose state write was lost (a killed run) is still
the cluster's disk NAME, and a state that names a boot disk proves nothing. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from reconciler.address import Address, Scope
from reconciler.kinds.base import Managed
from reconciler.observed import Observed, ObservedDisk, ObservedVm
from reconciler.spec import FailoverCluster, RdmDisk, SharedVmdk

if TYPE_CHECKING:
    from state.model import ManagedResource

COMPATIBILITY_SUFFIXES = ("physical", "virtual")
DISK = "disk"


def mapping_file(cluster: FailoverCluster, disk: RdmDisk | SharedVmdk) -> str:
    """Where the one shared file of a clustered disk lives: created by node 1, attached by node 2.

    The RDM's compatibility mode is part of the name, so that changing the mode creates a
    new mapping file instead of touching the one the other node still has open.
    """
    if isinstance(disk, RdmDisk):
        return f"[{disk.mapping_datastore}] {cluster.name}/{disk.name}-{disk.compatibility}.vmdk"
    return f"[{disk.datastore}] {cluster.name}/{disk.name}.vmdk"


def disk_name_of_file(cluster_name: str, file: str, kind: str) -> str | None:
    """The clustered disk `file` is the mapping file (`kind` rdm) or shared VMDK (vmdk) of, when
    it lies under the cluster's own path on any datastore; else None."""
    if not file.startswith("["):
        return None
    end = file.find("] ")
    if end < 0:
        return None
    folder, slash, leaf = file[end + 2 :].partition("/")
    if folder != cluster_name or not slash or "/" in leaf or not leaf.endswith(".vmdk"):
        return None
    stem = leaf.removesuffix(".vmdk")
    if kind == "rdm":
        name, dash, mode = stem.rpartition("-")
        return name if dash and name and mode in COMPATIBILITY_SUFFIXES else None
    return stem or None


def lun_disk_name(cluster: FailoverCluster, lun: str | None) -> str | None:
    """The file's RDM disk of this LUN, if the file lists it."""
    if not lun:
        return None
    wanted = lun.lower()
    return next(
        (d.name for d in cluster.spec.shared_disks.disks if isinstance(d, RdmDisk) and d.lun.lower() == wanted),
        None,
    )


def cluster_disk_of(cluster: FailoverCluster, disk: ObservedDisk) -> str | None:
    """The cluster's disk a device is on any bus of any VM: its file is the cluster's, or (an RDM)
    its LUN is one the file lists. Used to find who else holds the cluster's data."""
    named = disk_name_of_file(cluster.name, disk.file, disk.kind)
    if named is not None:
        return named
    return lun_disk_name(cluster, disk.lun) if disk.kind == "rdm" else None


def owned_disk_name(cluster: FailoverCluster, disk: ObservedDisk) -> str | None:
    """The name of the cluster's disk a node's device provably is: on a shared bus, and the
    cluster's file or a LUN of the file. None: not the cluster's, never touched."""
    controller = cluster.spec.shared_disks.controller
    nvme = controller.type is not None and controller.type.is_nvme
    if disk.bus not in cluster.spec.shared_buses or (disk.adapter == "nvme") != nvme:
        return None
    return cluster_disk_of(cluster, disk)


def node_morefs(cluster: FailoverCluster, observed: Observed) -> set[str]:
    return {observed.vms[vm].moref for vm in cluster.spec.vm_names if vm in observed.vms}


def former_nodes(cluster: FailoverCluster, observed: Observed, managed: Managed) -> list[str]:
    """VMs that were nodes of the cluster and still hold its disks, to take those devices off them.

    Found from the state (resources recorded for a VM the file no longer lists, with that VM's
    moref) and confirmed in vCenter: the VM of that name has that moref, is not a node now, and
    holds at least one of the cluster's disks on a shared bus.
    """
    nodes = set(cluster.spec.vm_names)
    current = node_morefs(cluster, observed)
    recorded: dict[str, set[str]] = {}
    for address, resource in managed.items():
        if address.cluster != cluster.name or address.scope is not Scope.NODE or address.owner in nodes:
            continue
        if resource.vm_moref:
            recorded.setdefault(address.owner, set()).add(resource.vm_moref)
    out = []
    for name, morefs in sorted(recorded.items()):
        vm = observed.vms.get(name)
        if vm is None or vm.moref not in morefs or vm.moref in current:
            continue
        if any(owned_disk_name(cluster, d) is not None for d in vm.disks.values()):
            out.append(name)
    return out


@dataclass(frozen=True)
class Holding:
    """A VM that is not a node holding one of the cluster's disks."""

    vm: ObservedVm
    slot: str  # bus:unit
    disk: ObservedDisk
    name: str  # the cluster's disk it is

    @property
    def what(self) -> str:
        if self.disk.kind == "rdm":
            return f"LUN {self.disk.lun or self.disk.lun_uuid}"
        return f"shared VMDK {self.disk.file}"

    @property
    def where(self) -> str:
        held = "maps" if self.disk.kind == "rdm" else "holds"
        host = f", on {self.vm.host}" if self.vm.host else ""
        return f"{self.vm.name} ({self.vm.moref}{host}) {held} it at SCSI {self.slot} ({self.disk.file or 'no file'})"


def held_outside(cluster: FailoverCluster, observed: Observed, *, besides: Collection[str] = ()) -> Iterator[Holding]:
    """Each of the cluster's disks that a VM other than its nodes holds (on any bus), in VM order.

    `besides`: VM names left out (the former nodes mscsctl is taking the disks off).
    """
    nodes = node_morefs(cluster, observed)
    for vm in sorted(observed.vms.values(), key=lambda v: (v.name, v.moref)):
        if vm.moref in nodes or vm.name in besides:
            continue
        for slot, disk in sorted(vm.disks.items()):
            name = cluster_disk_of(cluster, disk)
            if name is not None:
                yield Holding(vm, slot, disk, name)


def disk_users(cluster: FailoverCluster, observed: Observed) -> dict[str, list[str]]:
    """Each LUN the file lists and each of the cluster's shared files (those of the file, and
    any vCenter shows under the cluster's path) -> the VMs holding it (`NAME (MOREF)`), nodes
    included: what a saved plan saw."""
    keys = {mapping_file(cluster, d) if isinstance(d, SharedVmdk) else d.lun for d in cluster.spec.shared_disks.disks}
    keys |= {
        disk.file
        for vm in observed.vms.values()
        for disk in vm.disks.values()
        if disk.kind == "vmdk" and disk_name_of_file(cluster.name, disk.file, "vmdk") is not None
    }
    return users_of(sorted(keys), observed)


def users_of(keys: Iterable[str], observed: Observed) -> dict[str, list[str]]:
    """Who holds each LUN (a canonical name) or shared file (`[DS] path`) of `keys`, by `NAME (MOREF)`."""
    out: dict[str, set[str]] = {key: set() for key in keys}
    luns = {key.lower(): key for key in out if not key.startswith("[")}
    for vm in observed.vms.values():
        label = f"{vm.name} ({vm.moref})"
        for disk in vm.disks.values():
            if disk.kind == "rdm" and (disk.lun or "").lower() in luns:
                out[luns[(disk.lun or "").lower()]].add(label)
            elif disk.kind == "vmdk" and disk.file in out:
                out[disk.file].add(label)
    return {key: sorted(users) for key, users in out.items()}


def state_disks(cluster: FailoverCluster, managed: Managed) -> Iterator[tuple[Address, ManagedResource]]:
    """The state's clustered-disk resources of this cluster: (address, resource)."""
    for address, resource in sorted(managed.items()):
        if address.cluster == cluster.name and address.scope is Scope.NODE and address.kind == DISK:
            yield address, resource
