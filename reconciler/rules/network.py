"""Rules about the nodes' networks: two of them, on the right adapters."""

from __future__ import annotations

from collections.abc import Iterator

from reconciler.findings import Finding, Severity
from reconciler.rules import paths
from reconciler.rules.catalogue import RuleContext, rule, since
from reconciler.spec import AdapterType, Network


def _networks(ctx: RuleContext) -> Iterator[tuple[str, Network]]:
    for role, net in ctx.spec.networks.by_role():
        if net is not None:
            yield role, net


@rule(
    "MSCS-NET-001",
    title="Each node has two networks: production and heartbeat",
    source='[ch] "at least two network connections: one for the production network and one for the '
    'cluster service heartbeat"',
)
def two_networks(ctx: RuleContext) -> Iterator[Finding]:
    for role, net in ctx.spec.networks.by_role():
        if net is None:
            other = "heartbeat" if role == "production" else "production"
            yield ctx.finding(
                paths.network(role),
                f"no {role} network: each node needs a {role} port group besides the {other} one; "
                f"add `{role}: {{portgroup: NAME}}` under networks",
            )


@rule(
    "MSCS-NET-002",
    severity=Severity.WARNING,
    title="Production and heartbeat are different port groups",
    source='[ch] two "similarly connected and configured network adapters", one per network',
)
def separate_heartbeat(ctx: RuleContext) -> Iterator[Finding]:
    production, heartbeat = ctx.spec.networks.production, ctx.spec.networks.heartbeat
    if production and heartbeat and production.portgroup == heartbeat.portgroup:
        yield ctx.finding(
            paths.network("heartbeat", "portgroup"),
            f"the heartbeat shares port group {heartbeat.portgroup} with production: a saturated or "
            "failed production network also cuts the heartbeat, and both nodes may claim the disks",
        )


@rule(
    "MSCS-NET-003",
    title="Network adapters are of the vmxnet family",
    source='[ch] "must use ... the vmxnet network adapter"; [vmw 6.x] VMXNET3',
)
def vmxnet_family(ctx: RuleContext) -> Iterator[Finding]:
    for role, net in _networks(ctx):
        if net.adapter in (AdapterType.E1000, AdapterType.E1000E):
            yield ctx.finding(
                paths.network(role, "adapter"),
                f"{net.adapter} on the {role} network: clustered VMs use vmxnet adapters (vmxnet3)",
            )


@rule(
    "MSCS-NET-004",
    title="From vSphere 6.0, network adapters are VMXNET3",
    source='[vmw 6.x] "VMXNET3 required"; [ch] (vSphere 4) any vmxnet adapter',
    versions=since(6, 0),
)
def vmxnet3_since_six(ctx: RuleContext) -> Iterator[Finding]:
    for role, net in _networks(ctx):
        if net.adapter in (AdapterType.VMXNET, AdapterType.VMXNET2):
            yield ctx.finding(
                paths.network(role, "adapter"),
                f"{net.adapter} on the {role} network: VMware's guide requires vmxnet3 from vSphere 6.0 "
                "(the book's vSphere 4 accepted any vmxnet)",
            )
