"""Rules about where the nodes run: one host or several, DRS and HA."""

from __future__ import annotations

from collections.abc import Iterator

from reconciler.findings import Finding, Severity
from reconciler.rules import paths
from reconciler.rules.catalogue import RuleContext, before, between, rule, since
from reconciler.rules.disks import hardware_version
from reconciler.spec import Compatibility, DrsBehavior, GuestOS, HaRestart, RdmDisk, Topology

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


# The edition of VMware's guide that first has "Use MSCS in an HA/DRS environment": before it,
# clustered VMs stay out of DRS and HA (the book, written for 4.0).
HA_DRS_SINCE = (4, 1)
HA_DRS_SOURCE = '[vmw 4.1] first edition with "Using MSCS in an HA/DRS Environment" (VM-Host rules arrive in 4.1)'


@rule(
    "MSCS-PLACE-002",
    title="Before vSphere 4.1, clustered VMs are not managed by DRS or HA",
    source='[ch] "Clustered virtual machines cannot be part of VMware clusters (DRS or HA)"; ' + HA_DRS_SOURCE,
    versions=before(*HA_DRS_SINCE),
)
def no_drs_ha_before_five(ctx: RuleContext) -> Iterator[Finding]:
    placement = ctx.spec.placement
    if placement.drs is not DrsBehavior.DISABLED:
        yield ctx.finding(
            (*paths.PLACEMENT, "drs"),
            f"drs {placement.drs} under vSphere {ctx.version_text}: clustered VMs cannot be part of a DRS "
            "cluster before vSphere 4.1; keep drs: disabled",
        )
    if placement.ha is HaRestart.ENABLED:
        yield ctx.finding(
            (*paths.PLACEMENT, "ha"),
            f"ha {placement.ha} under vSphere {ctx.version_text}: clustered VMs cannot be part of an HA "
            "cluster before vSphere 4.1; keep ha: disabled",
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
    severity=Severity.WARNING,
    title="From vSphere 6.5, fully automated DRS for clustered VMs wants a tuned migration threshold",
    source='[vmw 6.5] [vmw 6.7] [vmw 7.0] [vmw 8.0] partially automated recommended, "no technical restriction" '
    "against fully automated if the migration threshold is tuned",
    versions=since(6, 5),
)
def drs_fully_automated_tuned(ctx: RuleContext) -> Iterator[Finding]:
    if ctx.spec.placement.drs is DrsBehavior.FULLY_AUTOMATED:
        yield ctx.finding(
            (*paths.PLACEMENT, "drs"),
            "drs fullyAutomated: DRS will vMotion cluster nodes on its own. VMware recommends "
            "partiallyAutomated for clustered VMs; fully automated is supported once the cluster's "
            "migration threshold is tuned for the workload",
        )


@rule(
    "MSCS-PLACE-007",
    title="From vSphere 4.1 to 6.0, DRS moves clustered VMs only partially automated, or not at all",
    source='[vmw 4.1] [vmw 5.5] [vmw 6.0] "set the automation level of all virtual machines in an MSCS cluster '
    'to Partially Automated"',
    versions=between(HA_DRS_SINCE, (6, 5)),
)
def drs_not_fully_automated(ctx: RuleContext) -> Iterator[Finding]:
    if ctx.spec.placement.drs is DrsBehavior.FULLY_AUTOMATED:
        yield ctx.finding(
            (*paths.PLACEMENT, "drs"),
            f"drs fullyAutomated under vSphere {ctx.version_text}: the guides up to 6.0 ask for "
            "partiallyAutomated (or disabled, manual) for clustered VMs; fully automated is accepted "
            "from the 6.5 guide on",
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
    title="Before vSphere 4.1, the nodes are not in a DRS- or HA-enabled vSphere cluster",
    source='[ch] "Clustered virtual machines cannot be part of VMware clusters (DRS or HA)"; ' + HA_DRS_SOURCE,
    versions=before(*HA_DRS_SINCE),
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


# vMotion of clustered VMs, from 6.0: across boxes, physical-compatibility RDMs, Windows Server
# 2008 SP2 and later, virtual hardware 11 or later, a 10 GbE vMotion network and the cluster's
# SameSubnetThreshold raised to 10. DRS may move a node unless its override is `disabled`.
VMOTION_SOURCE = "[vmw 6.0] [vmw 6.7] vMotion support for MSCS/WSFC prerequisites; [vmw 7.0] [vmw 8.0] limitations"
VMOTION_MIN_HARDWARE = 11


def drs_may_move(ctx: RuleContext) -> bool:
    return ctx.spec.placement.drs is not DrsBehavior.DISABLED


@rule(
    "MSCS-PLACE-008",
    title="From vSphere 6.0, nodes DRS may move use physical-compatibility RDMs and Windows 2008 SP2+",
    source=VMOTION_SOURCE + ' ("Migration with vMotion of clustered VMs using vRDMs" not supported)',
    versions=since(6, 0),
)
def vmotion_needs_physical_rdms(ctx: RuleContext) -> Iterator[Finding]:
    if not drs_may_move(ctx):
        return
    drs_path = (*paths.PLACEMENT, "drs")
    if ctx.spec.guest_os is GuestOS.WINDOWS_2003:
        yield ctx.finding(
            drs_path,
            f"drs {ctx.spec.placement.drs} lets DRS vMotion the nodes, and vMotion of clustered VMs is supported "
            "for Windows Server 2008 SP2 and later only (and with physical-compatibility RDMs); set drs: "
            "disabled for windows2003",
        )
        return
    for index, disk in enumerate(ctx.spec.shared_disks.disks):
        if isinstance(disk, RdmDisk) and disk.compatibility is Compatibility.VIRTUAL and ctx.spec.topology is CAB:
            yield ctx.finding(
                paths.disk(index, "compatibility"),
                f"{disk.name} is a virtual-compatibility RDM on nodes DRS may move (drs "
                f"{ctx.spec.placement.drs}): vMotion of clustered VMs needs physical-compatibility RDMs; "
                "use compatibility: physical or drs: disabled",
            )


@rule(
    "MSCS-PLACE-009",
    severity=Severity.WARNING,
    title="From vSphere 6.0, nodes DRS may move run virtual hardware 11 or later",
    source=VMOTION_SOURCE + " (virtual hardware version 11 and later)",
    versions=since(6, 0),
    needs_observed=True,
)
def vmotion_needs_hardware_11(ctx: RuleContext) -> Iterator[Finding]:
    assert ctx.observed is not None
    if not drs_may_move(ctx):
        return
    for index, node in ctx.vm_nodes:
        vm = ctx.observed.vms.get(node.vm)
        hardware = hardware_version(vm.hardware_version) if vm is not None else None
        if hardware is not None and hardware < VMOTION_MIN_HARDWARE:
            yield ctx.finding(
                paths.node(index, node),
                f"{node.vm} is on virtual hardware {hardware} and drs {ctx.spec.placement.drs} lets DRS move "
                f"it: vMotion of a clustered VM needs hardware {VMOTION_MIN_HARDWARE} or later; upgrade it "
                "(powered off) or set drs: disabled",
            )


VM_HOST_SOURCE = (
    '[vmw 6.5] [vmw 6.7] [vmw 7.0] [vmw 8.0] "You must use VM-Host affinity rules because vSphere HA does not '
    'obey VM-VM affinity rules"; [kb 2147661] HA supported, DRS affinity rules required'
)


@rule(
    "MSCS-PLACE-010",
    title="From vSphere 6.5, in an HA-enabled vSphere cluster the nodes have a VM-Host rule",
    source=VM_HOST_SOURCE,
    versions=since(6, 5),
    needs_observed=True,
)
def vm_host_rule_under_ha(ctx: RuleContext) -> Iterator[Finding]:
    assert ctx.observed is not None
    if ctx.written.placement.vm_host_rule is not False:
        return  # mscsctl keeps the rule (the default)
    clusters = sorted(
        {vm.cluster for _, node in ctx.vm_nodes if (vm := ctx.observed.vms.get(node.vm)) is not None and vm.cluster}
    )
    with_ha = [name for name in clusters if (c := ctx.observed.clusters.get(name)) is not None and c.ha_enabled]
    if with_ha:
        yield ctx.finding(
            (*paths.PLACEMENT, "vmHostRule"),
            f"vmHostRule: false, and vSphere cluster {', '.join(with_ha)} has HA on: HA does not obey the VM-VM "
            "rule, so after a host failure it may restart the nodes together or where the shared disks are not "
            "reachable; VMware asks for a VM-Host rule (remove vmHostRule: false)",
        )


@rule(
    "MSCS-PLACE-011",
    severity=Severity.WARNING,
    title="From vSphere 5.5, across boxes HA is not told to ignore the VM-VM anti-affinity rule",
    source='[vmw 6.x] "Use MSCS in a vSphere HA and vSphere DRS environment": HA respects the anti-affinity '
    'rule; [vmw 6.7] availability guide: das.respectVmVmAntiAffinityRules ("HA must respect VM anti-affinity '
    'rules during failover"), an option from 5.5',
    versions=since(5, 5),
)
def ha_respects_anti_affinity(ctx: RuleContext) -> Iterator[Finding]:
    if ctx.spec.topology is CAB and ctx.written.placement.respect_vm_vm_anti_affinity_rules is False:
        yield ctx.finding(
            (*paths.PLACEMENT, "respectVmVmAntiAffinityRules"),
            "respectVmVmAntiAffinityRules: false lets HA restart the nodes of a cluster across boxes on one "
            "host after a failure, where one more host failure takes the whole cluster down; VMware's "
            "HA/DRS chapter has HA respect the anti-affinity rule (true)",
        )


@rule(
    "MSCS-PLACE-012",
    severity=Severity.WARNING,
    title="From vSphere 4.1, DRS enforces the nodes' affinity rules strictly at power-on (ForceAffinePoweron)",
    source='[vmw 4.1] [vmw 6.0] [vmw 6.7] "set the advanced option ForceAffinePoweron to 1" for strict '
    "enforcement of the affinity and anti-affinity rules",
    versions=since(*HA_DRS_SINCE),
)
def force_affine_poweron(ctx: RuleContext) -> Iterator[Finding]:
    if ctx.written.placement.force_affine_poweron is False:
        yield ctx.finding(
            (*paths.PLACEMENT, "forceAffinePoweron"),
            "forceAffinePoweron: false lets DRS power a node on where its VM-VM rule says it must not run; "
            "VMware's HA/DRS chapter sets ForceAffinePoweron to 1 (true)",
        )
