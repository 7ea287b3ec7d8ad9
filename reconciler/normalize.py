"""Desired and observed, turned into the same flat shape: `{address: {field: value}}`.

Both trees are keyed by the addresses the plan and the state use
(`sql-prod-01/node/SQLNODE1/disk/quorum`), so one deepdiff of the two says what must be
created, changed or detached. The desired tree needs a few facts only vCenter knows
(which host runs each node, which hosts of its vSphere cluster see each LUN, the
version), so both functions take the observed model; neither does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reconciler.observed import Observed, ObservedNic, ObservedVm
from reconciler.spec import (
    FailoverCluster,
    RdmDisk,
    SharedVmdk,
    Topology,
    VmNode,
)

Tree = dict[str, dict[str, Any]]

CONTROLLER = "controller"
DISK = "disk"
NIC = "nic"
POWER = "power"
DRS = "drs"
HA = "ha"
OPTION = "option"
LUN = "lun"
RULE = "rule"
GUEST = "guest"

NIC_ROLES = ("production", "heartbeat")


def rule_name(cluster: FailoverCluster) -> str:
    """Name of the VM-VM (anti-)affinity rule mscsctl owns in the vSphere cluster."""
    return f"mscsctl-{cluster.name}"


def mapping_file(cluster: FailoverCluster, disk: RdmDisk | SharedVmdk) -> str:
    """Where the one shared file of a clustered disk lives: created by node 1, attached by node 2.

    The RDM's compatibility mode is part of the name, so that changing the mode creates a
    new mapping file instead of touching the one the other node still has open.
    """
    if isinstance(disk, RdmDisk):
        return f"[{disk.mapping_datastore}] {cluster.name}/{disk.name}-{disk.compatibility}.vmdk"
    return f"[{disk.datastore}] {cluster.name}/{disk.name}.vmdk"


def node_address(cluster: FailoverCluster, vm: str, *parts: str | int) -> str:
    return "/".join([cluster.name, "node", vm, *(str(p) for p in parts)])


def host_address(cluster: FailoverCluster, host: str, *parts: str) -> str:
    return "/".join([cluster.name, "host", host, *parts])


def cluster_address(cluster: FailoverCluster, *parts: str) -> str:
    return "/".join([cluster.name, *parts])


@dataclass(frozen=True)
class Context:
    """Facts derived once from spec + observed, shared by both trees and the planner."""

    vm_nodes: list[str]
    node_hosts: dict[str, str]
    vsphere_clusters: dict[str, str]  # vm -> vSphere cluster name, for VMs inside one
    version: tuple[int, int] | None
    reservation_hosts: dict[str, list[str]] = field(default_factory=dict)  # lun -> hosts

    @property
    def node_host_names(self) -> list[str]:
        return sorted(set(self.node_hosts.values()))


def context(cluster: FailoverCluster, observed: Observed, version: tuple[int, int] | None) -> Context:
    vm_nodes = [n.vm for n in cluster.spec.nodes if isinstance(n, VmNode)]
    node_hosts = {vm: observed.vms[vm].host for vm in vm_nodes if vm in observed.vms}
    vsphere_clusters = {
        vm: observed.vms[vm].cluster for vm in vm_nodes if vm in observed.vms and observed.vms[vm].cluster
    }
    # Every host of the nodes' vSphere clusters (or the nodes' own hosts outside a cluster)
    # that sees an RDM LUN must hold it perennially reserved.
    candidate_hosts: set[str] = set(node_hosts.values())
    for name in set(vsphere_clusters.values()):
        vc = observed.clusters.get(name)
        if vc:
            candidate_hosts.update(vc.hosts)
    reservation_hosts: dict[str, list[str]] = {}
    for disk in cluster.spec.shared_disks.disks:
        if isinstance(disk, RdmDisk):
            reservation_hosts[disk.lun] = sorted(
                h for h in candidate_hosts if h in observed.hosts and disk.lun in observed.hosts[h].luns
            )
    return Context(vm_nodes, node_hosts, vsphere_clusters, version, reservation_hosts)


def wants_vm_rule(cluster: FailoverCluster, ctx: Context) -> bool:
    """A VM-VM rule from vSphere 6.0 on, for two VM nodes inside the same vSphere cluster."""
    if len(ctx.vm_nodes) != 2 or cluster.spec.topology is Topology.PHYSICAL_TO_VIRTUAL:
        return False
    clusters = {ctx.vsphere_clusters.get(vm) for vm in ctx.vm_nodes}
    if len(clusters) != 1 or None in clusters:
        return False
    return ctx.version is None or ctx.version >= (6, 0)


def node_names(cluster: FailoverCluster) -> list[str]:
    """Every node, VM or physical, in file order."""
    return [n.vm if isinstance(n, VmNode) else n.physical for n in cluster.spec.nodes]


def guest_plannable(observed: Observed, node: str) -> bool:
    """The guest side of a node is in the trees when it was observed, or when the node is only
    powered off (apply powers it on, then sets the value)."""
    guests = observed.guests
    if guests is None or node not in guests:
        return False
    return guests[node].available or guests[node].reason == "powered-off"


def desired_tree(cluster: FailoverCluster, ctx: Context, observed: Observed | None = None) -> Tree:
    spec = cluster.spec
    tree: Tree = {}
    if observed is not None:
        for node in node_names(cluster):
            if guest_plannable(observed, node):
                tree[node_address(cluster, node, GUEST, "diskTimeout")] = {"seconds": spec.guest.disk_timeout_seconds}
    controller = spec.shared_disks.controller
    for vm in ctx.vm_nodes:
        if spec.shared_disks.disks:
            tree[node_address(cluster, vm, CONTROLLER, controller.bus)] = {
                "type": str(controller.type),
                "sharing": str(controller.sharing),
            }
        for disk in spec.shared_disks.disks:
            tree[node_address(cluster, vm, DISK, disk.name)] = desired_disk(cluster, disk)
        for role in NIC_ROLES:
            net = getattr(spec.networks, role)
            if net is not None:
                tree[node_address(cluster, vm, NIC, role)] = {
                    "portgroup": net.portgroup,
                    "adapter": str(net.adapter),
                }
        if vm in ctx.vsphere_clusters:
            tree[node_address(cluster, vm, DRS)] = {"behavior": str(spec.placement.drs)}
            tree[node_address(cluster, vm, HA)] = {"restart": str(spec.placement.ha)}
        tree[node_address(cluster, vm, POWER)] = {"state": "poweredOn"}
    for host in ctx.node_host_names:
        for key, value in (spec.host_options or {}).items():
            tree[host_address(cluster, host, OPTION, key)] = {"value": value}
    for lun, hosts in ctx.reservation_hosts.items():
        for host in hosts:
            tree[host_address(cluster, host, LUN, lun)] = {"perenniallyReserved": True}
    if wants_vm_rule(cluster, ctx):
        tree[cluster_address(cluster, RULE, rule_name(cluster))] = {
            "kind": "anti-affinity" if spec.placement.separate_hosts else "affinity",
            "vms": sorted(ctx.vm_nodes),
            "enabled": True,
        }
    return tree


def desired_disk(cluster: FailoverCluster, disk: RdmDisk | SharedVmdk) -> dict[str, Any]:
    bus = cluster.spec.shared_disks.controller.bus
    if isinstance(disk, RdmDisk):
        return {
            "bus": bus,
            "unit": disk.unit,
            "kind": "rdm",
            "lun": disk.lun,
            "compatibility": str(disk.compatibility),
            "file": mapping_file(cluster, disk),
        }
    return {
        "bus": bus,
        "unit": disk.unit,
        "kind": "vmdk",
        "file": mapping_file(cluster, disk),
        "sizeGB": disk.size_gb,
    }


@dataclass(frozen=True)
class Unmanaged:
    """A device on a node that mscsctl neither created nor finds in the file: left alone."""

    vm: str
    description: str


def observed_tree(
    cluster: FailoverCluster,
    observed: Observed,
    ctx: Context,
    managed: dict[str, dict[str, Any]] | None = None,
) -> tuple[Tree, list[Unmanaged]]:
    """The same addresses as `desired_tree`, filled from vCenter.

    `managed` is the state's record (address -> resource as a dict with `device_key`, `file`):
    a device it names that the file no longer describes appears here under its old address,
    so the diff plans its detach. Any other extra device on the shared controller is
    reported as unmanaged and never touched.
    """
    spec = cluster.spec
    managed = managed or {}
    tree: Tree = {}
    unmanaged: list[Unmanaged] = []
    bus = spec.shared_disks.controller.bus
    wanted_units = {(bus, d.unit): d.name for d in spec.shared_disks.disks}
    for vm in ctx.vm_nodes:
        node = observed.vms.get(vm)
        if node is None:
            continue
        ctrl = node.controllers.get(bus)
        if ctrl is not None and (spec.shared_disks.disks or _is_managed(managed, cluster, vm, CONTROLLER)):
            tree[node_address(cluster, vm, CONTROLLER, bus)] = {"type": ctrl.type, "sharing": ctrl.sharing}
        for slot, disk in node.disks.items():
            name = wanted_units.get((disk.bus, disk.unit)) or _managed_name(
                managed, cluster, vm, DISK, key=disk.key, file=disk.file
            )
            if name is None:
                if disk.bus == bus:
                    unmanaged.append(Unmanaged(vm, f"disk {slot} {disk.file or disk.lun or ''}".strip()))
                continue
            tree[node_address(cluster, vm, DISK, name)] = observed_disk(disk)
        _observe_nics(cluster, node, tree, unmanaged, managed)
        vsc = observed.clusters.get(node.cluster or "")
        if vsc is not None:
            if vm in vsc.drs_overrides:
                tree[node_address(cluster, vm, DRS)] = {"behavior": vsc.drs_overrides[vm]}
            if vm in vsc.ha_overrides:
                tree[node_address(cluster, vm, HA)] = {"restart": vsc.ha_overrides[vm]}
        tree[node_address(cluster, vm, POWER)] = {"state": node.power_state}
    for host_name in ctx.node_host_names:
        host = observed.hosts.get(host_name)
        if host is None:
            continue
        for key in spec.host_options or {}:
            if key in host.options:
                tree[host_address(cluster, host_name, OPTION, key)] = {"value": host.options[key]}
    for lun, hosts in ctx.reservation_hosts.items():
        for host_name in hosts:
            tree[host_address(cluster, host_name, LUN, lun)] = {
                "perenniallyReserved": observed.hosts[host_name].luns[lun].perennially_reserved
            }
    for node_name_ in node_names(cluster):
        if guest_plannable(observed, node_name_):
            guest = observed.guests[node_name_]  # type: ignore[index]
            seconds: Any = guest.timeout_seconds if guest.available else "unknown (powered off)"
            tree[node_address(cluster, node_name_, GUEST, "diskTimeout")] = {"seconds": seconds}
    name = rule_name(cluster)
    for vsc_name in sorted(set(ctx.vsphere_clusters.values())):
        vsc = observed.clusters.get(vsc_name)
        if vsc is not None and name in vsc.rules:
            rule = vsc.rules[name]
            tree[cluster_address(cluster, RULE, name)] = {
                "kind": rule.kind,
                "vms": sorted(rule.vms),
                "enabled": rule.enabled,
            }
    return tree, unmanaged


def observed_disk(disk: Any) -> dict[str, Any]:
    if disk.kind == "rdm":
        return {
            "bus": disk.bus,
            "unit": disk.unit,
            "kind": "rdm",
            "lun": disk.lun,
            "compatibility": disk.compatibility,
            "file": disk.file,
        }
    return {"bus": disk.bus, "unit": disk.unit, "kind": "vmdk", "file": disk.file, "sizeGB": disk.size_gb}


def nics_by_role(
    cluster: FailoverCluster, vm: str, nics: list[ObservedNic], managed: dict[str, dict[str, Any]]
) -> dict[str, ObservedNic]:
    """The NIC that serves each network role: the one on the role's port group; failing that,
    the one mscsctl recorded for the role (its port group was changed by hand)."""
    out: dict[str, ObservedNic] = {}
    taken: set[int] = set()
    for role in NIC_ROLES:
        net = getattr(cluster.spec.networks, role)
        if net is None:
            continue
        match = next((n for n in nics if n.network == net.portgroup and n.key not in taken), None)
        if match is None:
            key = managed.get(node_address(cluster, vm, NIC, role), {}).get("device_key")
            match = next((n for n in nics if n.key == key and n.key not in taken), None)
        if match is not None:
            taken.add(match.key)
            out[role] = match
    return out


def _observe_nics(
    cluster: FailoverCluster,
    node: ObservedVm,
    tree: Tree,
    unmanaged: list[Unmanaged],
    managed: dict[str, dict[str, Any]],
) -> None:
    by_role = nics_by_role(cluster, node.name, node.nics, managed)
    taken = {nic.key for nic in by_role.values()}
    for role, match in by_role.items():
        tree[node_address(cluster, node.name, NIC, role)] = {"portgroup": match.network, "adapter": match.adapter}
    for nic in node.nics:
        if nic.key in taken:
            continue
        name = _managed_name(managed, cluster, node.name, NIC, key=nic.key, file=None)
        if name is not None:
            tree[node_address(cluster, node.name, NIC, name)] = {"portgroup": nic.network, "adapter": nic.adapter}
        else:
            unmanaged.append(Unmanaged(node.name, f"nic {nic.adapter} on {nic.network or '?'} (key {nic.key})"))


def _is_managed(managed: dict[str, dict[str, Any]], cluster: FailoverCluster, vm: str, kind: str) -> bool:
    prefix = node_address(cluster, vm, kind) + "/"
    return any(addr.startswith(prefix) for addr in managed)


def _managed_name(
    managed: dict[str, dict[str, Any]],
    cluster: FailoverCluster,
    vm: str,
    kind: str,
    *,
    key: int,
    file: str | None,
) -> str | None:
    prefix = node_address(cluster, vm, kind) + "/"
    for addr, res in managed.items():
        if not addr.startswith(prefix):
            continue
        if (file and res.get("file") == file) or res.get("device_key") == key:
            return addr[len(prefix) :]
    return None
