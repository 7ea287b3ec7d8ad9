"""Rules about clustered VMDKs and the NVMe controller (vSphere 7.0 and 8.0).

A clustered VMDK (`type: clusteredVmdk`) is a VMDK whose SCSI-3 persistent reservations ESXi
emulates, so that WSFC nodes on different hosts can arbitrate over it as over a LUN. VMware's
*Setup for Windows Server Failover Clustering* guides for 7.0 and 8.0 ("Clustered VMDK support
for WSFC", its requirements, recommendations and limitations) list what the datastore, the disk
and the cluster must be; each fact is one rule here. Sources:

  [vmw 7.0] docs.vmware.com/en/VMware-vSphere/7.0/com.vmware.vsphere.wsfc.doc (GUID-97B054E2:
            clustered VMDK introduced in 7.0; GUID-04626D3C: limitations; GUID-06BA33D8:
            recommendations)
  [vmw 8.0] docs.vmware.com/en/VMware-vSphere/8.0/vsphere-windows-server-failover (the same
            pages; 8.0 U2 adds the NVMe controller with Windows Server 2022+, 8.0 U3 NVMe/TCP
            arrays)

Before 7.0 a VMDK shared across boxes, clustered or not, is MSCS-DISK-008's, and physical bus
sharing across boxes MSCS-DISK-005's (both hold for clustered VMDKs). The file-only
rules are MSCS-DISK-1xx; those that read the datastore vCenter shows (facts read
only for the datastores the file names) are MSCS-STOR-1xx.
"""

from __future__ import annotations

from collections.abc import Iterator

from reconciler.findings import Finding, Severity
from reconciler.kinds.ownership import mapping_file
from reconciler.observed import ObservedDatastore
from reconciler.rules import paths
from reconciler.rules.catalogue import RuleContext, rule, since
from reconciler.spec import MAX_UNIT, ClusteredVmdk, ControllerType, GuestOS, SharedVmdk, Topology

GUIDE_70 = "[vmw 7.0] Clustered VMDK support for WSFC"
GUIDE_80 = "[vmw 8.0] Clustered VMDK support for WSFC"
LIMITS = f"{GUIDE_70}, limitations; {GUIDE_80}, limitations"
NVME_SINCE = (8, 0, 2)  # vSphere 8.0 Update 2
NVME_GUESTS = frozenset({GuestOS.WINDOWS_2022, *(g for g in GuestOS if g.value > "windows2022")})
FIVE_TWELVE = "native512"  # info.vmfs.scsiDiskType of a disk with 512-byte logical and physical sectors


def full_version(ctx: RuleContext) -> tuple[int, int, int] | None:
    """The target version with its update level: pinned (`8.0.2`), or the oldest node host's."""
    pinned = ctx.cluster.spec.vsphere_version
    if pinned != "auto":
        return _triple(pinned)
    if ctx.observed is None:
        return None
    found = [
        _triple(host.version)
        for _, node in ctx.vm_nodes
        if (host := ctx.observed.host_of(node.vm)) is not None and host.version
    ]
    return min(found) if found else None


def _triple(text: str) -> tuple[int, int, int]:
    parts = [int(p) if p.isdigit() else 0 for p in [*text.split("."), "0", "0"][:3]]
    return parts[0], parts[1], parts[2]


def _text(version: tuple[int, int, int]) -> str:
    return ".".join(map(str, version))


def _clustered(ctx: RuleContext) -> list[tuple[int, ClusteredVmdk]]:
    return ctx.spec.clustered_vmdks


def _datastores(ctx: RuleContext) -> Iterator[tuple[int, ClusteredVmdk, ObservedDatastore]]:
    """Each clustered VMDK's datastore as vCenter shows it, once per datastore (its first disk)."""
    assert ctx.observed is not None
    seen: set[str] = set()
    for index, disk in _clustered(ctx):
        ds = ctx.observed.datastores.get(disk.datastore)
        if ds is None or ds.name in seen:
            continue  # an unknown datastore: MSCS-INV-003
        seen.add(ds.name)
        yield index, disk, ds


# --------------------------------------------------------------------------- the file alone


@rule(
    "MSCS-DISK-101",
    title="Clustered VMDKs are for a cluster across boxes: no cluster in a box, no physical node",
    source=f"{LIMITS}: cluster-in-a-box (CIB) configurations are not supported",
)
def across_boxes_only(ctx: RuleContext) -> Iterator[Finding]:
    if ctx.spec.topology is Topology.CLUSTER_ACROSS_BOXES:
        return
    for index, disk in _clustered(ctx):
        yield ctx.finding(
            paths.disk(index, "type"),
            f"{disk.name}: a clustered VMDK serves a cluster across boxes; in a {ctx.spec.topology} use "
            + (
                "a shared VMDK (`sizeGB:` without `type:`)"
                if ctx.spec.topology is Topology.CLUSTER_IN_A_BOX
                else "RDMs"
            ),
        )


@rule(
    "MSCS-DISK-102",
    severity=Severity.WARNING,
    title="WSFC's QuorumArbitrationTimeMax is 60 with clustered VMDKs (set in the guest)",
    source=f"{GUIDE_70}, requirements; {GUIDE_80}, requirements: cluster parameter QuorumArbitrationTimeMax 60",
    versions=since(7, 0),
)
def quorum_arbitration(ctx: RuleContext) -> Iterator[Finding]:
    clustered = _clustered(ctx)
    if clustered:
        index, disk = clustered[0]
        yield ctx.finding(
            paths.disk(index, "type"),
            f"{disk.name}: with clustered VMDKs set the failover cluster's QuorumArbitrationTimeMax to 60 "
            "in a node ((Get-Cluster).QuorumArbitrationTimeMax = 60); mscsctl does not set it",
        )


@rule(
    "MSCS-DISK-103",
    title="The NVMe controller for shared disks needs vSphere 8.0 U2 or later",
    source="[vmw 8.0] Clustered VMDK support for WSFC: the NVMe virtual adapter from vSphere 8.0 U2",
)
def nvme_since_802(ctx: RuleContext) -> Iterator[Finding]:
    if ctx.spec.shared_disks.controller.type is not ControllerType.NVME:
        return
    version = full_version(ctx)
    if version is not None and version < NVME_SINCE:
        yield ctx.finding(
            (*paths.CONTROLLER, "type"),
            f"nvme under vSphere {_text(version)}: VMware supports the NVMe controller for WSFC from 8.0 U2 "
            "(8.0.2); use pvscsi or lsilogic-sas",
        )


@rule(
    "MSCS-DISK-104",
    title="The NVMe controller for shared disks needs Windows Server 2022 or later",
    source="[vmw 8.0] Clustered VMDK support for WSFC: NVMe with WSFC on Windows Server 2022 or later",
)
def nvme_guest(ctx: RuleContext) -> Iterator[Finding]:
    if ctx.spec.shared_disks.controller.type is ControllerType.NVME and ctx.spec.guest_os not in NVME_GUESTS:
        yield ctx.finding(
            (*paths.CONTROLLER, "type"),
            f"nvme with {ctx.spec.guest_os}: VMware supports the NVMe controller for WSFC with Windows Server "
            "2022 and later; use pvscsi or lsilogic-sas",
        )


@rule(
    "MSCS-DISK-105",
    title="On an NVMe controller every shared disk is a clustered VMDK",
    source="[vmw 8.0] Clustered VMDK support for WSFC: NVMe supported with clustered VMDKs",
)
def nvme_clustered_only(ctx: RuleContext) -> Iterator[Finding]:
    if ctx.spec.shared_disks.controller.type is not ControllerType.NVME:
        return
    for index, disk in enumerate(ctx.spec.shared_disks.disks):
        if not isinstance(disk, ClusteredVmdk):
            field = "lun" if hasattr(disk, "lun") else "sizeGB"
            yield ctx.finding(
                paths.disk(index, field),
                f"{disk.name}: on an NVMe controller VMware supports clustered VMDKs only (`type: clusteredVmdk`); "
                "RDMs and other shared VMDKs need a SCSI controller",
            )


@rule(
    "MSCS-DISK-106",
    title="A shared NVMe controller takes 64 disks: units 0-63",
    source="[vmw 8.0] configuration maximums: 4 NVMe controllers a VM, 64 namespaces each on virtual hardware 21 "
    "(15 before)",
)
def nvme_units(ctx: RuleContext) -> Iterator[Finding]:
    if ctx.spec.shared_disks.controller.type is not ControllerType.NVME:
        return
    top = MAX_UNIT[ControllerType.NVME]
    seen: dict[tuple[int | None, int], str] = {}
    for index, disk in enumerate(ctx.spec.shared_disks.disks):
        if disk.unit is None:
            yield ctx.finding(paths.disk(index), f"{disk.name}: no free unit left: an NVMe controller takes 64 disks")
        elif disk.unit > top:
            yield ctx.finding(
                paths.disk(index, "unit"), f"{disk.name}: unit {disk.unit}: an NVMe controller has 0-{top}"
            )
        elif (disk.bus, disk.unit) in seen:
            yield ctx.finding(
                paths.disk(index, "unit"),
                f"{disk.name}: unit {disk.unit} is already {seen[(disk.bus, disk.unit)]}'s; each shared disk "
                "needs its own",
            )
        else:
            seen[(disk.bus, disk.unit)] = disk.name


# --------------------------------------------------------------------------- what vCenter shows

NVME_SHARED_HARDWARE = 21  # the virtual hardware of vSphere 8.0 U2, where NVMe bus sharing arrives


@rule(
    "MSCS-DISK-107",
    title="A shared NVMe controller needs virtual hardware 21 (vSphere 8.0 U2) on every VM node",
    source="[vmw 8.0] NVMe with clustered VMDKs from 8.0 U2; vSphere API 8.0.2 VirtualNVMEController.sharedBus "
    "(virtual hardware 21)",
    needs_observed=True,
)
def nvme_needs_hardware_21(ctx: RuleContext) -> Iterator[Finding]:
    assert ctx.observed is not None
    if ctx.spec.shared_disks.controller.type is not ControllerType.NVME:
        return
    for index, node in ctx.vm_nodes:
        vm = ctx.observed.vms.get(node.vm)
        digits = vm.hardware_version.removeprefix("vmx-") if vm is not None else ""
        if digits.isdigit() and int(digits) < NVME_SHARED_HARDWARE:
            yield ctx.finding(
                paths.node(index, node),
                f"{node.vm} is on virtual hardware {digits}: an NVMe controller shares its bus from hardware "
                f"{NVME_SHARED_HARDWARE} (vSphere 8.0 U2); upgrade the VM's compatibility (powered off) or use pvscsi",
            )


@rule(
    "MSCS-STOR-101",
    title="A clustered VMDK's datastore is VMFS6 on one extent",
    source=f"{LIMITS}: VMFS5 and earlier are not supported; spanned VMFS datastores cannot hold clustered VMDKs",
    versions=since(7, 0),
    needs_observed=True,
)
def vmfs6(ctx: RuleContext) -> Iterator[Finding]:
    for index, disk, ds in _datastores(ctx):
        if ds.type.upper() != "VMFS" or (ds.vmfs_major_version is not None and ds.vmfs_major_version < 6):
            what = f"VMFS{ds.vmfs_major_version}" if ds.type.upper() == "VMFS" else ds.type
            yield ctx.finding(
                paths.disk(index, "datastore"),
                f"{disk.name}: {ds.name} is {what}; clustered VMDKs need a VMFS6 datastore",
            )
        elif len(ds.extents) > 1:
            yield ctx.finding(
                paths.disk(index, "datastore"),
                f"{disk.name}: {ds.name} spans {len(ds.extents)} extents; clustered VMDKs need a datastore on one LUN",
            )


@rule(
    "MSCS-STOR-102",
    title="A clustered VMDK's datastore is on Fibre Channel (NVMe/TCP arrays from 8.0 U3)",
    source=f"{LIMITS}: only datastores connected through Fibre Channel; [vmw 8.0] NVMe/TCP arrays from 8.0 U3",
    versions=since(7, 0),
    needs_observed=True,
)
def fibre_channel(ctx: RuleContext) -> Iterator[Finding]:
    assert ctx.observed is not None
    for index, disk, ds in _datastores(ctx):
        if ds.type.upper() != "VMFS":
            continue  # MSCS-STOR-101
        transports = {
            host.luns[lun].transport
            for host in ctx.observed.hosts.values()
            for lun in ds.extents
            if lun in host.luns and host.name in ds.hosts and host.luns[lun].transport != "unknown"
        }
        other = sorted(transports - {"fc"})
        if other:
            yield ctx.finding(
                paths.disk(index, "datastore"),
                f"{disk.name}: {ds.name} is reached through {', '.join(other)}; VMware supports clustered VMDKs "
                "on Fibre Channel datastores only; put the disk on an FC-backed VMFS6 datastore or share an RDM",
            )


@rule(
    "MSCS-STOR-103",
    title="A clustered VMDK's datastore has 512-byte sectors",
    source=f"{LIMITS}: only disks with a 512 sector size are supported",
    versions=since(7, 0),
    needs_observed=True,
)
def five_twelve(ctx: RuleContext) -> Iterator[Finding]:
    for index, disk, ds in _datastores(ctx):
        if ds.scsi_disk_type is not None and ds.scsi_disk_type != FIVE_TWELVE:
            yield ctx.finding(
                paths.disk(index, "datastore"),
                f"{disk.name}: {ds.name} is on a {ds.scsi_disk_type} disk; clustered VMDKs need 512-byte sectors "
                "(native512)",
            )


@rule(
    "MSCS-STOR-104",
    title="No other datastore on the LUN of a clustered-VMDK datastore",
    source=f"{LIMITS}: a physical LUN with a clustered datastore cannot have additional VMFS datastores",
    versions=since(7, 0),
    needs_observed=True,
)
def alone_on_its_lun(ctx: RuleContext) -> Iterator[Finding]:
    assert ctx.observed is not None
    for index, disk, ds in _datastores(ctx):
        others = sorted(
            o.name for o in ctx.observed.datastores.values() if o.name != ds.name and set(o.extents) & set(ds.extents)
        )
        if others:
            yield ctx.finding(
                paths.disk(index, "datastore"),
                f"{disk.name}: the LUN of {ds.name} also holds {', '.join(others)}; a clustered-VMDK datastore "
                "must be the only datastore on its LUN",
            )


@rule(
    "MSCS-STOR-105",
    title="Clustered-VMDK support is on, or can be turned on, for the datastore (the plan enables it)",
    source="[vmw 7.0] Enabling Clustered VMDK Support; [vmw 8.0] Activating Clustered VMDK Support; "
    "vSphere API 7.0 HostDatastoreSystem.EnableClusteredVmdkSupport",
    versions=since(7, 0),
    needs_observed=True,
)
def support_enabled_or_enableable(ctx: RuleContext) -> Iterator[Finding]:
    assert ctx.observed is not None
    for index, disk, ds in _datastores(ctx):
        if ds.clustered_vmdk_supported:
            continue
        if ds.clustered_vmdk_supported is None:
            yield ctx.finding(
                paths.disk(index, "datastore"),
                f"{disk.name}: vCenter shows no clustered-VMDK capability for {ds.name} (vCenter or ESXi before "
                "7.0): its support cannot be enabled",
            )
            continue
        through = [
            h
            for h in ds.hosts
            if (host := ctx.observed.hosts.get(h)) is not None
            and host.datastore_system
            and host.version_tuple is not None
            and host.version_tuple >= (7, 0)
        ]
        if not through:
            yield ctx.finding(
                paths.disk(index, "datastore"),
                f"{disk.name}: clustered-VMDK support of {ds.name} is off and no host on ESXi 7.0+ mounting it was "
                "read to enable it through; enable it in vCenter (datastore > Configure > General)",
            )


@rule(
    "MSCS-STOR-106",
    title="The LUN of a clustered-VMDK datastore is presented only to ESXi 7.0 or later",
    source="[vmw 7.0] [vmw 8.0] Recommendations for using clustered VMDKs: do not present the LUN to hosts "
    "before ESXi 7.0",
    versions=since(7, 0),
    needs_observed=True,
)
def seven_plus_hosts_only(ctx: RuleContext) -> Iterator[Finding]:
    assert ctx.observed is not None
    for index, disk, ds in _datastores(ctx):
        versions = dict(ds.host_versions)
        for host in ctx.observed.hosts.values():
            if host.version and any(lun in host.luns for lun in ds.extents):
                versions.setdefault(host.name, host.version)
        old = sorted(f"{h} ({v})" for h, v in versions.items() if _triple(v) < (7, 0, 0))
        if old:
            yield ctx.finding(
                paths.disk(index, "datastore"),
                f"{disk.name}: the LUN of {ds.name} is presented to {', '.join(old)}; VMware asks that a "
                "clustered-VMDK LUN be presented only to ESXi 7.0 or later (older hosts cannot mount it and "
                "slow down at boot); unpresent it there first",
            )


@rule(
    "MSCS-STOR-107",
    title="A clustered VMDK that exists already is eager-zeroed thick",
    source=f"{GUIDE_70}, requirements; {GUIDE_80}, requirements: the VMDKs must be eager-zeroed thick",
    versions=since(7, 0),
    needs_observed=True,
)
def eager_zeroed(ctx: RuleContext) -> Iterator[Finding]:
    assert ctx.observed is not None
    files = {mapping_file(ctx.effective, disk): (index, disk) for index, disk in _clustered(ctx)}
    reported: set[str] = set()
    for _, node in ctx.vm_nodes:
        vm = ctx.observed.vms.get(node.vm)
        for found in vm.disks.values() if vm is not None else ():
            if found.file not in files or found.file in reported:
                continue
            if found.thin or found.eager_zeroed is False:
                reported.add(found.file)
                index, disk = files[found.file]
                how = "thin" if found.thin else "lazy-zeroed thick"
                yield ctx.finding(
                    paths.disk(index),
                    f"{disk.name}: {found.file} on {node.vm} is {how}; clustered VMDKs must be eager-zeroed thick. "
                    "mscsctl does not convert it: inflate it (powered off) or create it anew",
                )


@rule(
    "MSCS-STOR-108",
    title="A shared or clustered VMDK that exists keeps its size: mscsctl does not extend shared disks",
    source=f"{LIMITS}: hot expansion of a VMDK of a clustered VM is not supported; mscsctl: attaching the "
    "file again does not resize it",
    needs_observed=True,
)
def size_unchanged(ctx: RuleContext) -> Iterator[Finding]:
    assert ctx.observed is not None
    wanted = {
        mapping_file(ctx.effective, disk): (index, disk)
        for index, disk in enumerate(ctx.spec.shared_disks.disks)
        if isinstance(disk, SharedVmdk)
    }
    reported: set[str] = set()
    for _, node in ctx.vm_nodes:
        vm = ctx.observed.vms.get(node.vm)
        for found in vm.disks.values() if vm is not None else ():
            if found.file not in wanted or found.file in reported or found.size_gb is None:
                continue
            index, disk = wanted[found.file]
            if found.size_gb != disk.size_gb:
                reported.add(found.file)
                yield ctx.finding(
                    paths.disk(index, "sizeGB"),
                    f"{disk.name}: {found.file} is {found.size_gb} GiB on {node.vm}, the file asks for {disk.size_gb}; "
                    "VMware does not support extending a clustered VM's shared VMDK, and mscsctl does not resize "
                    f"it: write sizeGB: {found.size_gb} again",
                )


@rule(
    "MSCS-DISK-108",
    title="Across boxes from vSphere 7.0 a shared VMDK is a clustered VMDK (`type: clusteredVmdk`)",
    source=f"{GUIDE_70}; {GUIDE_80}: a VMDK shared across hosts needs a clustered-VMDK datastore",
    versions=since(7, 0),
)
def cross_box_vmdk_is_clustered(ctx: RuleContext) -> Iterator[Finding]:
    if ctx.spec.topology is not Topology.CLUSTER_ACROSS_BOXES:
        return
    for index, disk in enumerate(ctx.spec.shared_disks.disks):
        if isinstance(disk, SharedVmdk) and not isinstance(disk, ClusteredVmdk):
            yield ctx.finding(
                paths.disk(index, "sizeGB"),
                f"{disk.name}: across boxes VMware supports a shared VMDK only as a clustered VMDK, whose "
                "reservations ESXi arbitrates on a datastore with clustered-VMDK support; add "
                "`type: clusteredVmdk` (mscsctl then checks the datastore and enables its support)",
            )
