"""Rules about the storage behind the shared disks, as vCenter shows it."""

from __future__ import annotations

from collections.abc import Iterator

from reconciler.findings import Finding
from reconciler.rules import paths
from reconciler.rules.catalogue import RuleContext, before, rule
from reconciler.rules.hosts import node_hosts
from reconciler.spec import RdmDisk, SharedVmdk

NFS_TYPES = {"NFS", "NFS41"}


def _rdms(ctx: RuleContext) -> Iterator[tuple[int, RdmDisk]]:
    for index, disk in enumerate(ctx.spec.shared_disks.disks):
        if isinstance(disk, RdmDisk):
            yield index, disk


def file_datastores(ctx: RuleContext) -> Iterator[tuple[tuple[str | int, ...], str, str]]:
    """(path, datastore name, what it holds) for each datastore the file names."""
    for index, disk in enumerate(ctx.spec.shared_disks.disks):
        if isinstance(disk, RdmDisk):
            yield paths.disk(index, "mappingDatastore"), disk.mapping_datastore, f"the mapping file of {disk.name}"
        elif isinstance(disk, SharedVmdk):
            yield paths.disk(index, "datastore"), disk.datastore, f"shared VMDK {disk.name}"


@rule(
    "MSCS-STOR-001",
    title="A shared LUN does not back a VMFS datastore",
    source='[ch] RDM LUN reprovisioned as a VMFS datastore "effectively blowing away the RDM data"',
    needs_observed=True,
)
def lun_not_a_datastore(ctx: RuleContext) -> Iterator[Finding]:
    assert ctx.observed is not None
    backing = {lun.lower(): ds.name for ds in ctx.observed.datastores.values() for lun in ds.extents}
    for index, disk in _rdms(ctx):
        datastore = backing.get(disk.lun.lower())
        if datastore is not None:
            yield ctx.finding(
                paths.disk(index, "lun"),
                f"{disk.lun} backs datastore {datastore}: mapping it to the nodes as {disk.name} lets the "
                "cluster and VMFS write the same blocks, and one destroys the other's data. Pick a LUN "
                "that holds no datastore",
            )


@rule(
    "MSCS-STOR-002",
    title="Mapping files and shared VMDKs are not on NFS",
    source='[ch] "Clustering is not supported on iSCSI or NFS disks"; [vmw] NFS not supported',
    needs_observed=True,
)
def not_on_nfs(ctx: RuleContext) -> Iterator[Finding]:
    assert ctx.observed is not None
    for path, name, holds in file_datastores(ctx):
        ds = ctx.observed.datastores.get(name)
        if ds is not None and ds.type in NFS_TYPES:
            yield ctx.finding(
                path,
                f"{name} is an {ds.type} datastore: clustered disks cannot use NFS (no SCSI "
                f"reservations); put {holds} on a VMFS datastore",
            )


@rule(
    "MSCS-STOR-003",
    title="Before vSphere 5.5, shared LUNs are not reached through iSCSI",
    source='[ch] "Clustering is not supported on iSCSI ... disks"; [vmw 5.5] iSCSI and FCoE supported from 5.5',
    versions=before(5, 5),
    needs_observed=True,
)
def no_iscsi_before_five_five(ctx: RuleContext) -> Iterator[Finding]:
    for index, disk in _rdms(ctx):
        hosts = sorted(
            host.name
            for _, _, host in node_hosts(ctx)
            if (lun := host.luns.get(disk.lun)) is not None and lun.transport == "iscsi"
        )
        if hosts:
            yield ctx.finding(
                paths.disk(index, "lun"),
                f"{disk.lun} is reached through iSCSI on {', '.join(sorted(set(hosts)))}: VMware supports "
                f"clustered disks on iSCSI from vSphere 5.5; under {ctx.version_text} use Fibre Channel",
            )


@rule(
    "MSCS-STOR-004",
    title="Every shared LUN is visible from the host of every VM node",
    source='[ch] "All nodes should have access to the same storage device(s)"',
    needs_observed=True,
)
def lun_visible_everywhere(ctx: RuleContext) -> Iterator[Finding]:
    placed = list(node_hosts(ctx))
    for index, disk in _rdms(ctx):
        missing = sorted({f"{host.name} ({node.vm})" for _, node, host in placed if disk.lun not in host.luns})
        if missing:
            yield ctx.finding(
                paths.disk(index, "lun"),
                f"{disk.lun} is not visible from {', '.join(missing)}: every node must reach every shared "
                "LUN; present it to that host (zoning, masking) and rescan",
            )


@rule(
    "MSCS-STOR-005",
    title="Mapping-file and shared-VMDK datastores are mounted on the host of every VM node",
    source="[vmw] node 1 creates the mapping file, every other node attaches that same file",
    needs_observed=True,
)
def datastore_mounted_everywhere(ctx: RuleContext) -> Iterator[Finding]:
    assert ctx.observed is not None
    placed = list(node_hosts(ctx))
    for path, name, holds in file_datastores(ctx):
        ds = ctx.observed.datastores.get(name)
        if ds is None:
            continue  # MSCS-INV-003
        missing = sorted(
            {
                f"{host.name} ({node.vm})"
                for _, node, host in placed
                if name not in host.datastores and host.name not in ds.hosts
            }
        )
        if missing:
            yield ctx.finding(
                path,
                f"{name} is not mounted on {', '.join(missing)}: that node cannot open {holds}",
            )
