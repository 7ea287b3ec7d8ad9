"""Rules about the storage behind the shared disks, as vCenter shows it."""

from __future__ import annotations

from collections.abc import Iterator

from reconciler.findings import Finding
from reconciler.rules import paths
from reconciler.rules.catalogue import RuleContext, before, between, rule
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
    title="Before vSphere 5.5, shared LUNs are not reached through iSCSI or FCoE",
    source='[ch] "Clustering is not supported on iSCSI ... disks"; [vmw 5.0] "Clustering on iSCSI, FCoE, and NFS '
    'disks" not supported; [vmw 5.5] iSCSI and FCoE supported from 5.5',
    versions=before(5, 5),
    needs_observed=True,
)
def no_iscsi_fcoe_before_five_five(ctx: RuleContext) -> Iterator[Finding]:
    for index, disk in _rdms(ctx):
        by_transport = _transports(ctx, disk)
        for transport in ("iscsi", "fcoe"):
            hosts = by_transport.get(transport)
            if hosts:
                yield ctx.finding(
                    paths.disk(index, "lun"),
                    f"{disk.lun} is reached through {TRANSPORT_NAMES[transport]} on {', '.join(hosts)}: VMware "
                    f"supports clustered disks on iSCSI and FCoE from vSphere 5.5; under {ctx.version_text} use "
                    "Fibre Channel",
                )


@rule(
    "MSCS-STOR-006",
    title="In vSphere 6.x, the nodes do not mix FC or FCoE with iSCSI (nor FC with FCoE) for a shared LUN",
    source='[vmw 6.0] [vmw 6.5] [vmw 6.7] "Mixed cluster nodes running FC or FCoE and iSCSI are not supported"; '
    '"Mixed cluster nodes running FC and FCoE are not supported"',
    versions=between((6, 0), (7, 0)),
    needs_observed=True,
)
def no_transport_mix(ctx: RuleContext) -> Iterator[Finding]:
    for index, disk in _rdms(ctx):
        by_transport = {t: hosts for t, hosts in _transports(ctx, disk).items() if t in TRANSPORT_NAMES}
        if len(by_transport) > 1:
            seen = "; ".join(f"{TRANSPORT_NAMES[t]} on {', '.join(h)}" for t, h in sorted(by_transport.items()))
            yield ctx.finding(
                paths.disk(index, "lun"),
                f"{disk.lun} is reached through {seen}: under vSphere {ctx.version_text} every node reaches a "
                "shared LUN through the same kind of adapter (all FC, all FCoE, or all iSCSI)",
            )


TRANSPORT_NAMES = {"fc": "Fibre Channel", "fcoe": "FCoE", "iscsi": "iSCSI"}


def _transports(ctx: RuleContext, disk: RdmDisk) -> dict[str, list[str]]:
    """transport -> the nodes' hosts that reach the disk's LUN through it (sorted, once each)."""
    out: dict[str, set[str]] = {}
    for _, _, host in node_hosts(ctx):
        lun = host.luns.get(disk.lun)
        if lun is not None:
            out.setdefault(lun.transport, set()).add(host.name)
    return {t: sorted(hosts) for t, hosts in out.items()}


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
