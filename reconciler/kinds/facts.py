"""Facts about one cluster that several kinds need: derived from the file and vCenter, no I/O."""

from __future__ import annotations

from collections.abc import Iterator

from reconciler.address import Address, Scope
from reconciler.kinds.base import Context, Managed
from reconciler.kinds.ownership import former_nodes, mapping_file
from reconciler.observed import Observed, ObservedController, ObservedNic, ObservedVm
from reconciler.spec import NIC_ROLES, FailoverCluster, RdmDisk, Topology

__all__ = [
    "NIC_ROLES",
    "context",
    "guest_plannable",
    "mapping_file",
    "nics_by_role",
    "rule_name",
    "shared_adapter",
    "shared_controller",
    "shared_controllers",
    "wants_vm_rule",
]


def rule_name(cluster: FailoverCluster) -> str:
    """Name of the VM-VM (anti-)affinity rule mscsctl owns in the vSphere cluster."""
    return f"mscsctl-{cluster.name}"


def reservation_reach(vm_names: list[str], observed: Observed) -> set[str]:
    """The hosts where mscsctl reserves the cluster's RDM LUNs: every host of the nodes' vSphere
    clusters, and the nodes' own hosts outside a cluster."""
    reach: set[str] = set()
    for name in vm_names:
        vm = observed.vms.get(name)
        if vm is None:
            continue
        if vm.host:
            reach.add(vm.host)
        vc = observed.clusters.get(vm.cluster or "")
        if vc is not None:
            reach.update(vc.hosts)
    return reach


def reservation_hosts(cluster: FailoverCluster, observed: Observed) -> dict[str, list[str]]:
    """LUN -> the hosts of `reservation_reach` that see it: each must hold it perennially reserved."""
    candidates = reservation_reach(cluster.spec.vm_names, observed)
    return {
        disk.lun: sorted(h for h in candidates if h in observed.hosts and disk.lun in observed.hosts[h].luns)
        for disk in cluster.spec.shared_disks.disks
        if isinstance(disk, RdmDisk)
    }


def context(
    cluster: FailoverCluster, observed: Observed, version: tuple[int, int] | None, managed: Managed | None = None
) -> Context:
    """`managed` (the state) given: the former nodes are in it too (`ownership.former_nodes`)."""
    vm_nodes = cluster.spec.vm_names
    node_hosts = {vm: observed.vms[vm].host for vm in vm_nodes if vm in observed.vms}
    vsphere_clusters = {
        vm: observed.vms[vm].cluster for vm in vm_nodes if vm in observed.vms and observed.vms[vm].cluster
    }
    former = former_nodes(cluster, observed, managed) if managed else []
    return Context(vm_nodes, node_hosts, vsphere_clusters, version, reservation_hosts(cluster, observed), former)


def shared_adapter(cluster: FailoverCluster) -> str | None:
    """`nvme` when the shared disks hang on an NVMe controller; None for SCSI (the payloads' default)."""
    kind = cluster.spec.shared_disks.controller.type
    return "nvme" if kind is not None and kind.is_nvme else None


def shared_controller(cluster: FailoverCluster, vm: ObservedVm, bus: int | None = None) -> ObservedController | None:
    """The node's controller on a shared bus (default: the controller's own), of the kind the file
    asks for (SCSI or NVMe)."""
    bus = cluster.spec.shared_disks.controller.bus if bus is None else bus
    return vm.controller_on(bus, nvme=shared_adapter(cluster) == "nvme")


def shared_controllers(cluster: FailoverCluster, vm: ObservedVm) -> dict[int, ObservedController]:
    """The node's controllers on the file's shared buses, by bus (those it has)."""
    found = {bus: shared_controller(cluster, vm, bus) for bus in cluster.spec.shared_buses}
    return {bus: c for bus, c in found.items() if c is not None}


def wants_vm_rule(cluster: FailoverCluster, ctx: Context) -> bool:
    """A VM-VM rule from vSphere 6.0 on, for the VM nodes (two or more) inside the same vSphere cluster."""
    if len(ctx.vm_nodes) < 2 or cluster.spec.topology is Topology.PHYSICAL_TO_VIRTUAL:
        return False
    clusters = {ctx.vsphere_clusters.get(vm) for vm in ctx.vm_nodes}
    if len(clusters) != 1 or None in clusters:
        return False
    return ctx.version is None or ctx.version >= (6, 0)


def node_vms(ctx: Context, observed: Observed, *, former: bool = False) -> Iterator[tuple[str, ObservedVm]]:
    """Each VM node that vCenter shows, by its name in the file (and the former nodes with `former`)."""
    for name in [*ctx.vm_nodes, *(ctx.former_nodes if former else ())]:
        vm = observed.vms.get(name)
        if vm is not None:
            yield name, vm


def guest_plannable(observed: Observed, node: str) -> bool:
    """The guest side of a node is in the trees when it was observed, or when the node is only
    powered off (apply powers it on, then sets the value)."""
    guests = observed.guests
    if guests is None or node not in guests:
        return False
    return guests[node].available or guests[node].reason == "powered-off"


def owned(managed: Managed, cluster: str, vm: str, kind: str) -> Managed:
    """The state's resources of one kind on one node."""
    return {
        a: r
        for a, r in managed.items()
        if a.cluster == cluster and a.scope is Scope.NODE and a.owner == vm and a.kind == kind
    }


def nics_by_role(
    cluster: FailoverCluster, vm: str, nics: list[ObservedNic], managed: Managed
) -> dict[str, ObservedNic]:
    """The NIC that serves each network role: the one on the role's port group; failing that,
    the one mscsctl recorded for the role (its port group was changed by hand)."""
    out: dict[str, ObservedNic] = {}
    taken: set[int] = set()
    for role, net in cluster.spec.networks.by_role():
        if net is None:
            continue
        match = next((n for n in nics if n.network == net.portgroup and n.key not in taken), None)
        if match is None:
            recorded = managed.get(Address.node(cluster.name, vm, "nic", role))
            key = recorded.device_key if recorded is not None else None
            match = next((n for n in nics if n.key == key and n.key not in taken), None)
        if match is not None:
            taken.add(match.key)
            out[role] = match
    return out
