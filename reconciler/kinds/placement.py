"""Placement in the vSphere cluster: each node's DRS and HA override, the VM-VM rule, the
VM-Host rule HA obeys, and the HA/DRS advanced options the file asks for."""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import Field

from reconciler.address import Address, Scope
from reconciler.kinds.base import ActionKind, Context, Managed, ObservedSide, Payload, ResourceKind, fixed
from reconciler.kinds.facts import node_vms, rule_name, wants_vm_rule
from reconciler.observed import Observed, ObservedCluster, ObservedVmHostRule
from reconciler.spec import FailoverCluster, RdmDisk, Topology, default_ha

DRS = "drs"
HA = "ha"
RULE = "rule"
VM_HOST_RULE = "vm-host-rule"
CLUSTER_OPTION = "cluster-option"

# The VM-Host rule: from the 6.5 guide, where the nodes' vSphere cluster has HA on ("vSphere HA
# does not obey VM-VM affinity rules"; it obeys VM-Host rules).
VM_HOST_RULE_SINCE = (6, 5)
# HA's option to keep VMs of an anti-affinity rule apart on failover exists from vSphere 5.5.
RESPECT_ANTI_AFFINITY = "das.respectVmVmAntiAffinityRules"
RESPECT_ANTI_AFFINITY_SINCE = (5, 5)
FORCE_AFFINE_POWERON = "ForceAffinePoweron"  # a DRS option; its address name is drs.ForceAffinePoweron
DRS_PREFIX = "drs."


class DrsOverridePayload(Payload):
    behavior: str  # disabled | manual | partiallyAutomated | fullyAutomated


class HaOverridePayload(Payload):
    restart: str  # disabled | enabled


class VmRulePayload(Payload):
    kind: str  # affinity | anti-affinity
    vms: list[str]
    enabled: bool = True


class VmHostRulePayload(Payload):
    """The nodes (a VM group) must run on the hosts that reach their shared disks (a host group)."""

    vm_group: str = Field(alias="vmGroup")
    host_group: str = Field(alias="hostGroup")
    vms: list[str]
    hosts: list[str]
    mandatory: bool = True
    enabled: bool = True


class ClusterOptionPayload(Payload):
    """A vSphere cluster's advanced option, as vCenter stores it (a string)."""

    value: str


def vm_host_payload(rule: ObservedVmHostRule) -> VmHostRulePayload:
    """A VM-Host rule as vCenter shows it (a "must not run on" rule's host group reads `not GROUP`)."""
    return VmHostRulePayload(
        vm_group=rule.vm_group,
        host_group=rule.host_group if rule.affine else f"not {rule.host_group}",
        vms=rule.vms,
        hosts=rule.hosts,
        mandatory=rule.mandatory,
        enabled=rule.enabled,
    )


def vm_host_names(cluster: FailoverCluster) -> tuple[str, str, str]:
    """The VM-Host rule mscsctl owns, and its VM and host groups."""
    base = rule_name(cluster)
    return f"{base}-on-hosts", f"{base}-nodes", f"{base}-hosts"


def desired_overrides(cluster: FailoverCluster, ctx: Context, observed: Observed) -> Iterator[tuple[Address, Payload]]:
    for vm in ctx.vm_nodes:
        if vm in ctx.vsphere_clusters:
            yield Address.node(cluster.name, vm, DRS), DrsOverridePayload(behavior=str(cluster.spec.placement.drs))
            ha = cluster.spec.placement.ha or default_ha(ctx.version)
            yield Address.node(cluster.name, vm, HA), HaOverridePayload(restart=str(ha))


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


def _nodes_vsphere_cluster(ctx: Context, observed: Observed) -> ObservedCluster | None:
    """The one vSphere cluster all VM nodes are in, or None."""
    names = {ctx.vsphere_clusters.get(vm) for vm in ctx.vm_nodes}
    if len(names) != 1 or None in names:
        return None
    return observed.clusters.get(names.pop() or "")


def rule_hosts(cluster: FailoverCluster, ctx: Context, observed: Observed, vsc: ObservedCluster) -> list[str]:
    """The host group: in a box, the nodes' host; otherwise every host of the vSphere cluster that
    sees every shared LUN and mounts every datastore of the file (where HA may restart a node)."""
    if cluster.spec.topology is Topology.CLUSTER_IN_A_BOX:
        return sorted(set(ctx.node_hosts.values()))
    luns = [d.lun for d in cluster.spec.shared_disks.disks if isinstance(d, RdmDisk)]
    datastores = {getattr(d, "datastore", None) for d in cluster.spec.shared_disks.disks} - {None}
    datastores |= {d.mapping_datastore for d in cluster.spec.shared_disks.disks if isinstance(d, RdmDisk)}
    out = []
    for name in vsc.hosts:
        host = observed.hosts.get(name)
        if host is None or any(lun not in host.luns for lun in luns):
            continue
        mounted = set(host.datastores)
        if all(ds in mounted or name in getattr(observed.datastores.get(ds), "hosts", []) for ds in datastores):
            out.append(name)
    return out


def wants_vm_host_rule(cluster: FailoverCluster, ctx: Context, vsc: ObservedCluster | None) -> bool:
    written = cluster.spec.placement.vm_host_rule
    if vsc is None or not ctx.vm_nodes:
        return False
    if written is not None:
        return written
    return vsc.ha_enabled and (ctx.version is None or ctx.version >= VM_HOST_RULE_SINCE)


def desired_vm_host_rule(
    cluster: FailoverCluster, ctx: Context, observed: Observed
) -> Iterator[tuple[Address, Payload]]:
    vsc = _nodes_vsphere_cluster(ctx, observed)
    if vsc is None or not wants_vm_host_rule(cluster, ctx, vsc):
        return
    hosts = rule_hosts(cluster, ctx, observed, vsc)
    if not hosts:
        return  # no host reaches the shared disks: the storage rules say so
    name, vm_group, host_group = vm_host_names(cluster)
    yield (
        Address.vsphere_cluster(cluster.name, VM_HOST_RULE, name),
        VmHostRulePayload(vm_group=vm_group, host_group=host_group, vms=sorted(ctx.vm_nodes), hosts=hosts),
    )


def observe_vm_host_rule(
    cluster: FailoverCluster, observed: Observed, ctx: Context, managed: Managed, out: ObservedSide
) -> None:
    # Observed only where the file wants the rule: one the file turned off is left alone, not
    # reported on every drift (mscsctl deletes no VM-Host rule).
    if not wants_vm_host_rule(cluster, ctx, _nodes_vsphere_cluster(ctx, observed)):
        return
    name, _, _ = vm_host_names(cluster)
    for vsc_name in sorted(set(ctx.vsphere_clusters.values())):
        vsc = observed.clusters.get(vsc_name)
        rule = vsc.vm_host_rules.get(name) if vsc is not None else None
        if rule is not None:
            out.tree[Address.vsphere_cluster(cluster.name, VM_HOST_RULE, name)] = vm_host_payload(rule)


def desired_options(cluster: FailoverCluster, ctx: Context, observed: Observed) -> Iterator[tuple[Address, Payload]]:
    """Only the options the file writes: they are settings of the whole vSphere cluster."""
    if _nodes_vsphere_cluster(ctx, observed) is None:
        return
    placement = cluster.spec.placement
    respect = placement.respect_vm_vm_anti_affinity_rules
    if respect is not None and (ctx.version is None or ctx.version >= RESPECT_ANTI_AFFINITY_SINCE):
        value = ClusterOptionPayload(value="true" if respect else "false")
        yield Address.vsphere_cluster(cluster.name, CLUSTER_OPTION, RESPECT_ANTI_AFFINITY), value
    if placement.force_affine_poweron is not None:
        value = ClusterOptionPayload(value="1" if placement.force_affine_poweron else "0")
        yield Address.vsphere_cluster(cluster.name, CLUSTER_OPTION, DRS_PREFIX + FORCE_AFFINE_POWERON), value


def option_value(vsc: ObservedCluster, name: str) -> str | None:
    """An option by its address name (`das.*` HA, `drs.*` DRS) as the vSphere cluster shows it."""
    if name.startswith(DRS_PREFIX):
        return vsc.drs_options.get(name.removeprefix(DRS_PREFIX))
    return vsc.das_options.get(name)


def observe_options(
    cluster: FailoverCluster, observed: Observed, ctx: Context, managed: Managed, out: ObservedSide
) -> None:
    vsc = _nodes_vsphere_cluster(ctx, observed)
    if vsc is None:
        return
    # Only the options the file writes: the others are the vSphere cluster's own business.
    written = {address.name for address, _ in desired_options(cluster, ctx, observed)}
    for name in sorted(written):
        value = option_value(vsc, name)
        if value is not None:
            out.tree[Address.vsphere_cluster(cluster.name, CLUSTER_OPTION, name)] = ClusterOptionPayload(value=value)


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

VM_HOST_RULE_KIND = ResourceKind(
    name=VM_HOST_RULE,
    title="VM-Host rule",
    scope=Scope.VSPHERE_CLUSTER,
    payload=VmHostRulePayload,
    state_kind=fixed("vm-host-rule"),
    actions=(ActionKind.SET_VM_HOST_RULE, ActionKind.DELETE_VM_HOST_RULE),
    desired=desired_vm_host_rule,
    observed=observe_vm_host_rule,
    doc="The nodes' VM group must run on the host group that reaches their disks (HA obeys it); "
    "from vSphere 6.5 where the nodes' vSphere cluster has HA on, or as the file says.",
)

CLUSTER_OPTION_KIND = ResourceKind(
    name=CLUSTER_OPTION,
    title="vSphere cluster option",
    scope=Scope.VSPHERE_CLUSTER,
    payload=ClusterOptionPayload,
    state_kind=fixed("cluster-option"),
    actions=(ActionKind.SET_CLUSTER_OPTION,),
    desired=desired_options,
    observed=observe_options,
    doc="das.respectVmVmAntiAffinityRules (HA, 5.5+) and drs.ForceAffinePoweron (DRS), only when the "
    "file writes them: they apply to every VM of the vSphere cluster.",
)


def setting_action(kind: str, name: str) -> tuple[ActionKind, str] | None:
    """The action that sets a vSphere-cluster setting of `kind` named `name`, and the rule it follows."""
    if kind == VM_HOST_RULE:
        return ActionKind.SET_VM_HOST_RULE, "MSCS-PLACE-010"
    if kind == CLUSTER_OPTION:
        return ActionKind.SET_CLUSTER_OPTION, "MSCS-PLACE-012" if name.startswith(DRS_PREFIX) else "MSCS-PLACE-011"
    return None
