"""Rules about the nodes: how many, of which kind for the topology, each one distinct."""

from __future__ import annotations

from collections.abc import Iterator

from reconciler.findings import Finding, Severity
from reconciler.rules import paths
from reconciler.rules.catalogue import RuleContext, Version, rule
from reconciler.spec import GuestOS, PhysicalNode, Topology

# The most nodes a failover cluster with shared disks may have, per vSphere version: (first
# version, limit), newest first. Windows Server 2003 clusters are pairs at every version.
NODE_LIMITS: tuple[tuple[Version, int, str], ...] = (
    ((8, 0), 5, "[vmw 8.0] and [kb 89327]: up to 5 WSFC nodes with shared storage"),
    ((7, 0), 5, "[vmw 7.0] and [kb 79616]: up to 5 WSFC nodes with shared storage"),
    ((6, 0), 5, "[vmw 6.7] and [kb 2147661]: up to 5 nodes for Windows Server 2008 SP2 and later"),
    ((5, 1), 5, "[kb 1037959]: 5 nodes from vSphere 5.1"),
    ((0, 0), 2, '[ch] "Only two-node clustering is allowed"; [kb 1037959]: 2 nodes before 5.1'),
)
PAIR_ONLY = {GuestOS.WINDOWS_2003}  # [vmw 6.7]: Windows Server 2003 SP1/SP2, two-node clustering


def node_limit(version: Version | None, guest: GuestOS) -> tuple[int, str]:
    """The node limit under `version` for `guest`, and its source. Unknown version: the most any
    supported version allows (the plan, which knows the version, checks again)."""
    if guest in PAIR_ONLY:
        return 2, "[vmw 6.7]: two-node clustering for Windows Server 2003"
    if version is None:
        return max(limit for _, limit, _ in NODE_LIMITS), "the most any vSphere version allows"
    return next((limit, source) for first, limit, source in NODE_LIMITS if version >= first)


@rule(
    "MSCS-NODE-001",
    title="A cluster has two nodes, and no more than the vSphere version's node limit",
    source='[ch] "Only two-node clustering is allowed"; [kb 1037959] 5 nodes from 5.1; '
    "[vmw 6.7] [kb 2147661] up to 5 for Windows Server 2008 SP2+ (2003: 2); [vmw 7.0] [kb 79616] 5; "
    "[vmw 8.0] [kb 89327] 5",
)
def node_count(ctx: RuleContext) -> Iterator[Finding]:
    count = len(ctx.spec.nodes)
    limit, source = node_limit(ctx.version, ctx.spec.guest_os)
    if count > limit:
        under = f"vSphere {ctx.version_text}" if ctx.version else "any vSphere version"
        yield ctx.finding(
            paths.node(limit),
            f"{count} nodes: a {ctx.spec.guest_os} failover cluster with shared disks has at most {limit} "
            f"under {under} ({source}); remove node {limit + 1} and after",
        )
    elif count < 2:
        yield ctx.finding(
            paths.NODES,
            f"{count} node{'s' if count != 1 else ''}: a failover cluster has at least two nodes; list two",
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
