"""Rules about where the nodes run: one host or several, DRS and HA."""

from __future__ import annotations

from collections.abc import Iterator

from reconciler.findings import Finding, Severity
from reconciler.rules import paths
from reconciler.rules.catalogue import RuleContext, before, rule, since
from reconciler.spec import DrsBehavior, HaRestart, Topology

CAB = Topology.CLUSTER_ACROSS_BOXES
CIB = Topology.CLUSTER_IN_A_BOX


@rule(
    "MSCS-PLACE-001",
    severity=Severity.WARNING,
    title="A cluster in a box has a single point of failure: its host",
    source='[ch] "Examining Cluster-in-a-Box Scenarios"; [vmw] not for production',
)
def cib_single_host(ctx: RuleContext) -> Iterator[Finding]:
    if ctx.spec.topology is CIB:
        yield ctx.finding(
            paths.TOPOLOGY,
            "cluster-in-a-box: both nodes run on one host, so a host failure takes the whole cluster "
            "down; fine for tests and training, not for production (use cluster-across-boxes)",
        )


@rule(
    "MSCS-PLACE-002",
    title="Under vSphere 4, clustered VMs are not managed by DRS or HA",
    source='[ch] "Clustered virtual machines cannot be part of VMware clusters (DRS or HA)"',
    versions=before(5, 0),
)
def no_drs_ha_before_five(ctx: RuleContext) -> Iterator[Finding]:
    placement = ctx.spec.placement
    if placement.drs is not DrsBehavior.DISABLED:
        yield ctx.finding(
            (*paths.PLACEMENT, "drs"),
            f"drs {placement.drs} under vSphere {ctx.version_text}: clustered VMs cannot be part of a DRS "
            "cluster before vSphere 5; keep drs: disabled",
        )
    if placement.ha is not HaRestart.DISABLED:
        yield ctx.finding(
            (*paths.PLACEMENT, "ha"),
            f"ha {placement.ha} under vSphere {ctx.version_text}: clustered VMs cannot be part of an HA "
            "cluster before vSphere 5; keep ha: disabled",
        )


@rule(
    "MSCS-PLACE-003",
    title="The VM-VM rule matches the topology: anti-affinity across boxes, affinity in a box",
    source='[vmw 6.x] "Use MSCS in a vSphere HA and vSphere DRS environment"',
)
def vm_rule_matches_topology(ctx: RuleContext) -> Iterator[Finding]:
    separate = ctx.spec.placement.separate_hosts
    path = (*paths.PLACEMENT, "separateHosts")
    if ctx.spec.topology is CAB and separate is False:
        yield ctx.finding(
            path,
            "separateHosts: false asks DRS to keep both nodes on one host, which makes a cluster across "
            "boxes a cluster in a box; across boxes the nodes need an anti-affinity rule (true)",
        )
    elif ctx.spec.topology is CIB and separate is True:
        yield ctx.finding(
            path,
            "separateHosts: true asks DRS to split the nodes across hosts, where virtual bus sharing "
            "cannot reach the shared disks; a cluster in a box needs an affinity rule (false)",
        )


@rule(
    "MSCS-PLACE-004",
    title="From vSphere 6.0, DRS moves clustered VMs only partially automated, or not at all",
    source='[vmw 6.x] DRS automation level of the MSCS VMs "partially automated"',
    versions=since(6, 0),
)
def drs_not_fully_automated(ctx: RuleContext) -> Iterator[Finding]:
    if ctx.spec.placement.drs is DrsBehavior.FULLY_AUTOMATED:
        yield ctx.finding(
            (*paths.PLACEMENT, "drs"),
            "drs fullyAutomated: DRS would vMotion cluster nodes on its own; VMware supports "
            "partiallyAutomated (or disabled, manual) for clustered VMs",
        )


@rule(
    "MSCS-PLACE-005",
    title="Where the nodes run matches the topology (one host in a box, different hosts across boxes)",
    source='[ch] "Virtual Machine Clustering Scenarios"',
    needs_observed=True,
)
def hosts_match_topology(ctx: RuleContext) -> Iterator[Finding]:
    assert ctx.observed is not None
    placed = [
        (node.vm, vm.host) for _, node in ctx.vm_nodes if (vm := ctx.observed.vms.get(node.vm)) is not None and vm.host
    ]
    if len(placed) < 2:
        return
    hosts = {host for _, host in placed}
    names = " and ".join(f"{vm} ({host})" for vm, host in placed)
    if ctx.spec.topology is CIB and len(hosts) > 1:
        yield ctx.finding(
            paths.TOPOLOGY,
            f"the file says cluster-in-a-box but the nodes run on different hosts: {names}; "
            "virtual bus sharing only works on one host. Move them together or change the topology",
        )
    elif ctx.spec.topology is CAB and len(hosts) == 1:
        yield ctx.finding(
            paths.TOPOLOGY,
            f"the file says cluster-across-boxes but both nodes run on {placed[0][1]}: that is a cluster "
            "in a box, and one host failure takes both nodes down. Move one node to another host",
        )


@rule(
    "MSCS-PLACE-006",
    title="Under vSphere 4, the nodes are not in a DRS- or HA-enabled vSphere cluster",
    source='[ch] "Clustered virtual machines cannot be part of VMware clusters (DRS or HA)"',
    versions=before(5, 0),
    needs_observed=True,
)
def not_in_drs_ha_cluster(ctx: RuleContext) -> Iterator[Finding]:
    assert ctx.observed is not None
    for index, node in ctx.vm_nodes:
        vm = ctx.observed.vms.get(node.vm)
        cluster = ctx.observed.clusters.get(vm.cluster) if vm and vm.cluster else None
        if cluster is None or not (cluster.drs_enabled or cluster.ha_enabled):
            continue
        features = " and ".join(f for f, on in (("DRS", cluster.drs_enabled), ("HA", cluster.ha_enabled)) if on)
        yield ctx.finding(
            paths.node(index, node),
            f"{node.vm} is in vSphere cluster {cluster.name}, which has {features} enabled: under "
            f"vSphere {ctx.version_text} clustered VMs cannot be part of a DRS or HA cluster",
        )
