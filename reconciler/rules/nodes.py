"""Rules about the nodes: how many, of which kind for the topology, each one distinct."""

from __future__ import annotations

from collections.abc import Iterator

from reconciler.findings import Finding, Severity
from reconciler.rules import paths
from reconciler.rules.catalogue import RuleContext, rule
from reconciler.spec import PhysicalNode, Topology


@rule(
    "MSCS-NODE-001",
    title="A cluster has exactly two nodes: mscsctl manages failover pairs",
    source='[ch] "Only two-node clustering is allowed"; [vmw 6.x] up to five nodes for '
    "Windows Server 2008 SP2 and later",
)
def two_nodes(ctx: RuleContext) -> Iterator[Finding]:
    count = len(ctx.spec.nodes)
    if count > 2:
        yield ctx.finding(
            paths.node(2),
            f"{count} nodes: mscsctl manages failover pairs, and the three topologies are pairs. "
            "VMware allows up to five nodes for Windows Server 2008 SP2 and later on vSphere 6.x "
            "and later, which mscsctl does not manage yet",
        )
    elif count < 2:
        yield ctx.finding(
            paths.NODES,
            f"{count} node{'s' if count != 1 else ''}: a failover cluster is a pair of nodes; list two",
        )


@rule(
    "MSCS-NODE-002",
    title="Node kinds match the topology: two VMs, or one physical server and one VM for physical-to-virtual",
    source='[ch] "Virtual Machine Clustering Scenarios"; [vmw] supported configurations',
)
def node_kinds(ctx: RuleContext) -> Iterator[Finding]:
    topology = ctx.spec.topology
    physical = ctx.physical_nodes
    if topology is not Topology.PHYSICAL_TO_VIRTUAL:
        for index, node in physical:
            yield ctx.finding(
                paths.node(index, node),
                f"physical node {node.physical} in a {topology} cluster: both nodes of a "
                f"{topology} cluster are virtual machines (`vm: NAME`); a physical server pairs with "
                "a VM in topology physical-to-virtual",
            )
        return
    if not physical and ctx.spec.nodes:
        yield ctx.finding(
            paths.NODES,
            "physical-to-virtual pairs a physical server (`physical: NAME`) with a virtual machine; "
            "no physical node is listed",
        )
    for index, node in physical[1:]:
        yield ctx.finding(
            paths.node(index, node),
            f"a second physical node ({node.physical}): physical-to-virtual pairs one physical server "
            "with one virtual machine",
        )
    if physical and not ctx.vm_nodes and len(ctx.spec.nodes) >= 2:
        yield ctx.finding(paths.NODES, "physical-to-virtual needs a virtual machine node (`vm: NAME`)")


@rule(
    "MSCS-NODE-003",
    title="Each node is a different machine",
    source="[ch] a failover pair is two machines",
)
def distinct_nodes(ctx: RuleContext) -> Iterator[Finding]:
    seen: dict[str, int] = {}
    for index, node in enumerate(ctx.spec.nodes):
        name = node.name
        key = name.casefold()
        if key in seen:
            yield ctx.finding(
                paths.node(index, node),
                f"{name} is already node {seen[key] + 1}: the nodes of a pair are two different machines",
            )
        else:
            seen[key] = index


@rule(
    "MSCS-NODE-004",
    severity=Severity.WARNING,
    title="A physical node has a WinRM address, so its disk timeout can be checked",
    source='[ch] "set the I/O timeout to 60 seconds or more" on every node',
)
def physical_node_reachable(ctx: RuleContext) -> Iterator[Finding]:
    for index, node in ctx.physical_nodes:
        if isinstance(node, PhysicalNode) and node.winrm is None:
            yield ctx.finding(
                paths.node(index, node),
                f"no `winrm:` for {node.physical}: mscsctl cannot read or set its disk timeout "
                "(TimeOutValue); add `winrm: {address: ...}` or check it by hand",
            )
