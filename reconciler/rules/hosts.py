"""Rules about the ESXi hosts that run the nodes."""

from __future__ import annotations

from collections.abc import Iterator

from reconciler.findings import Finding, Severity
from reconciler.kinds.facts import reservation_reach
from reconciler.observed import ObservedHost
from reconciler.rules import paths
from reconciler.rules.catalogue import RuleContext, rule, since
from reconciler.spec import DEFAULT_HOST_OPTIONS, RdmDisk, VmNode


def node_hosts(ctx: RuleContext) -> Iterator[tuple[int, VmNode, ObservedHost]]:
    """Each VM node that vCenter shows, with the host it runs on (registered on, if off)."""
    assert ctx.observed is not None
    for index, node in ctx.vm_nodes:
        host = ctx.observed.host_of(node.vm)
        if host is not None:
            yield index, node, host


@rule(
    "MSCS-HOST-001",
    severity=Severity.WARNING,
    title="Host disk options keep the values of the clustering procedure",
    source="[ch] steps 19-21: Disk.ResetOnFailure=1, Disk.UseLunReset=1, Disk.UseDeviceReset=0",
    unsourced="no 5.x-8.x guide lists these options",
)
def host_options(ctx: RuleContext) -> Iterator[Finding]:
    written = ctx.written.host_options or {}
    for key, wanted in DEFAULT_HOST_OPTIONS.items():
        if key in written and written[key] != wanted:
            yield ctx.finding(
                (*paths.HOST_OPTIONS, key),
                f"{key}={written[key]}: the vSphere 4 clustering procedure sets {key}={wanted} on every host "
                "running a node, so that SCSI reservations survive a path reset (no 5.x-8.x guide lists "
                "this option)",
            )


@rule(
    "MSCS-HOST-002",
    severity=Severity.WARNING,
    title="No host running a node mixes QLogic and Emulex HBAs",
    source='[ch] "cannot have both QLogic and Emulex HBAs"',
    needs_observed=True,
    unsourced="no 5.x-8.x guide lists the QLogic/Emulex mix",
)
def hba_vendor_mix(ctx: RuleContext) -> Iterator[Finding]:
    reported: set[str] = set()
    for index, node, host in node_hosts(ctx):
        vendors = {hba.vendor for hba in host.hbas}
        if {"qlogic", "emulex"} <= vendors and host.name not in reported:
            reported.add(host.name)
            devices = ", ".join(f"{h.device} ({h.vendor})" for h in host.hbas if h.vendor != "other")
            yield ctx.finding(
                paths.node(index, node),
                f"{node.vm} runs on {host.name}, which has both QLogic and Emulex HBAs ({devices}); "
                "the vSphere 4 book asks hosts running clustered VMs to use one HBA vendor (no 5.x-8.x "
                "guide lists this)",
            )


@rule(
    "MSCS-HOST-003",
    title="The hosts running the nodes run the same ESXi version",
    source='[vmw] "mixed environments" of ESXi versions are not supported',
    needs_observed=True,
)
def same_esxi_version(ctx: RuleContext) -> Iterator[Finding]:
    placed = [(index, node, host) for index, node, host in node_hosts(ctx) if host.version]
    if len({host.version for _, _, host in placed}) > 1:
        index, node, _ = placed[-1]
        versions = ", ".join(f"{h.name} {h.version} ({n.vm})" for _, n, h in placed)
        yield ctx.finding(
            paths.node(index, node),
            f"the nodes' hosts run different ESXi versions: {versions}; VMware does not support "
            "clustering across mixed versions (upgrade them together)",
        )


@rule(
    "MSCS-HOST-004",
    severity=Severity.WARNING,
    title="From ESXi 5.0, shared LUNs are perennially reserved on every host that sees them",
    source="[kb 1016106] the perennially-reserved flag from ESXi 5.0 (4.0: Scsi.UWConflictRetries, "
    "4.1: Scsi.CRTimeoutDuringBoot); [vmw 6.7] perennially reserved RDM LUNs",
    versions=since(5, 0),
    needs_observed=True,
)
def perennially_reserved(ctx: RuleContext) -> Iterator[Finding]:
    """The plan reserves the LUNs on the nodes' hosts and their vSphere clusters; this warns about the rest."""
    assert ctx.observed is not None
    reach = reservation_reach(ctx.spec.vm_names, ctx.observed)
    for index, disk in enumerate(ctx.spec.shared_disks.disks):
        if not isinstance(disk, RdmDisk):
            continue
        others = sorted(
            host.name
            for host in ctx.observed.hosts.values()
            if host.name not in reach and (lun := host.luns.get(disk.lun)) is not None and not lun.perennially_reserved
        )
        if others:
            yield ctx.finding(
                paths.disk(index, "lun"),
                f"{disk.lun} is also seen by {', '.join(others)}, outside the nodes' vSphere cluster, where it "
                "is not perennially reserved: boots and rescans of those hosts stall on the cluster's "
                "reservations. mscsctl reserves it only where the nodes run; mark it there "
                f"(esxcli storage core device setconfig -d {disk.lun} --perennially-reserved=true)",
            )
