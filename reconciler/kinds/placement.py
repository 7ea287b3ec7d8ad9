"""Placement in the vSphere cluster: each node's DRS and HA override, and the VM-VM rule."""

from __future__ import annotations

from collections.abc import Iterator

from reconciler.address import Address, Scope
from reconciler.kinds.base import ActionKind, Context, Managed, ObservedSide, Payload, ResourceKind, fixed
from reconciler.kinds.facts import node_vms, rule_name, wants_vm_rule
from reconciler.observed import Observed
from reconciler.spec import FailoverCluster

DRS = "drs"
HA = "ha"
RULE = "rule"


class DrsOverridePayload(Payload):
    behavior: str  # disabled | manual | partiallyAutomated | fullyAutomated


class HaOverridePayload(Payload):
    restart: str  # disabled | enabled


class VmRulePayload(Payload):
    kind: str  # affinity | anti-affinity
    vms: list[str]
    enabled: bool = True


def desired_overrides(cluster: FailoverCluster, ctx: Context, observed: Observed) -> Iterator[tuple[Address, Payload]]:
    for vm in ctx.vm_nodes:
        if vm in ctx.vsphere_clusters:
            yield Address.node(cluster.name, vm, DRS), DrsOverridePayload(behavior=str(cluster.spec.placement.drs))
            yield Address.node(cluster.name, vm, HA), HaOverridePayload(restart=str(cluster.spec.placement.ha))


def observe_overrides(
    cluster: FailoverCluster, observed: Observed, ctx: Context, managed: Managed, out: ObservedSide
) -> None:
    for vm, node in node_vms(ctx, observed):
        vsc = observed.clusters.get(node.cluster or "")
        if vsc is None:
            continue
        if vm in vsc.drs_overrides:
            out.tree[Address.node(cluster.name, vm, DRS)] = DrsOverridePayload(behavior=vsc.drs_overrides[vm])
        if vm in vsc.ha_overrides:
            out.tree[Address.node(cluster.name, vm, HA)] = HaOverridePayload(restart=vsc.ha_overrides[vm])


def desired_rule(cluster: FailoverCluster, ctx: Context, observed: Observed) -> Iterator[tuple[Address, Payload]]:
    if wants_vm_rule(cluster, ctx):
        yield (
            Address.vsphere_cluster(cluster.name, RULE, rule_name(cluster)),
            VmRulePayload(
                kind="anti-affinity" if cluster.spec.placement.separate_hosts else "affinity",
                vms=sorted(ctx.vm_nodes),
                enabled=True,
            ),
        )


def observe_rule(
    cluster: FailoverCluster, observed: Observed, ctx: Context, managed: Managed, out: ObservedSide
) -> None:
    name = rule_name(cluster)
    for vsc_name in sorted(set(ctx.vsphere_clusters.values())):
        vsc = observed.clusters.get(vsc_name)
        if vsc is not None and name in vsc.rules:
            rule = vsc.rules[name]
            out.tree[Address.vsphere_cluster(cluster.name, RULE, name)] = VmRulePayload(
                kind=rule.kind, vms=sorted(rule.vms), enabled=rule.enabled
            )


DRS_KIND = ResourceKind(
    name=DRS,
    title="DRS override",
    scope=Scope.NODE,
    payload=DrsOverridePayload,
    state_kind=fixed("drs-override"),
    actions=(ActionKind.SET_DRS_OVERRIDE, ActionKind.REMOVE_DRS_OVERRIDE),
    desired=desired_overrides,
    observed=observe_overrides,
    doc="One vSphere-cluster reconfigure carries every override and the rule (one batch).",
)

HA_KIND = ResourceKind(
    name=HA,
    title="HA override",
    scope=Scope.NODE,
    payload=HaOverridePayload,
    state_kind=fixed("ha-override"),
    actions=(ActionKind.SET_HA_OVERRIDE, ActionKind.REMOVE_HA_OVERRIDE),
    doc="Desired and observed with the DRS override (same reads).",
)

RULE_KIND = ResourceKind(
    name=RULE,
    title="VM-VM rule",
    scope=Scope.VSPHERE_CLUSTER,
    payload=VmRulePayload,
    state_kind=fixed("vm-rule"),
    actions=(ActionKind.CREATE_RULE, ActionKind.UPDATE_RULE, ActionKind.DELETE_RULE),
    desired=desired_rule,
    observed=observe_rule,
    doc="Anti-affinity across boxes, affinity in a box, from vSphere 6.0 on.",
)
