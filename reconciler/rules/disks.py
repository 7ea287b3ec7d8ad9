"""Rules about the shared disks and their SCSI controller, from the desired file alone."""

from __future__ import annotations

from collections.abc import Iterator

from reconciler.findings import Finding
from reconciler.rules import paths
from reconciler.rules.catalogue import RuleContext, before, rule
from reconciler.spec import BusSharing, Compatibility, ControllerType, GuestOS, RdmDisk, SharedVmdk, Topology

CAB = Topology.CLUSTER_ACROSS_BOXES
CIB = Topology.CLUSTER_IN_A_BOX
P2V = Topology.PHYSICAL_TO_VIRTUAL


@rule(
    "MSCS-DISK-001",
    title="The nodes share at least one disk",
    source='[ch] "All nodes should have access to the same storage device(s)"',
)
def has_shared_disks(ctx: RuleContext) -> Iterator[Finding]:
    if not ctx.spec.shared_disks.disks:
        yield ctx.finding(
            paths.DISKS,
            "no shared disks: the nodes of a failover cluster share at least one disk (the quorum); "
            "list it under sharedDisks.disks",
        )


@rule(
    "MSCS-DISK-002",
    title="Shared disks sit on their own SCSI controller, not bus 0",
    source='[ch] "SCSI Nodes for RDMs"; [vmw] "a separate virtual adapter must be used for clustered disks"',
)
def controller_not_bus_zero(ctx: RuleContext) -> Iterator[Finding]:
    if ctx.spec.shared_disks.controller.bus == 0:
        yield ctx.finding(
            (*paths.CONTROLLER, "bus"),
            "bus 0 holds the operating-system disk; shared disks need a controller of their own (bus 1, 2 or 3)",
        )


@rule(
    "MSCS-DISK-003",
    title="The shared-disk controller type is one the guest OS supports for clustering",
    source="[vmw] LSI Logic Parallel for Windows 2003, LSI Logic SAS for 2008 and later; "
    '[ch] "must use the LSI Logic SCSI adapter"',
)
def controller_type_for_guest(ctx: RuleContext) -> Iterator[Finding]:
    kind = ctx.spec.shared_disks.controller.type
    guest = ctx.spec.guest_os
    path = (*paths.CONTROLLER, "type")
    if guest is GuestOS.WINDOWS_2003 and kind is not ControllerType.LSILOGIC:
        yield ctx.finding(
            path,
            f"{kind} with windows2003: Windows Server 2003 clusters use lsilogic (LSI Logic "
            "Parallel); its cluster disk driver does not work with other controllers",
        )
    elif guest is not GuestOS.WINDOWS_2003 and kind is ControllerType.LSILOGIC:
        yield ctx.finding(
            path,
            f"lsilogic with {guest}: Windows Server 2008 and later cluster over lsilogic-sas "
            "(or pvscsi from vSphere 6.0); LSI Logic Parallel is for Windows Server 2003 only",
        )


@rule(
    "MSCS-DISK-004",
    title="VMware Paravirtual (pvscsi) for shared disks needs vSphere 6.0 or later",
    source='[vmw 6.x] "VMware Paravirtual" added for Windows 2008 SP2 and later; [vmw 5.x] LSI Logic only',
    versions=before(6, 0),
)
def pvscsi_since_six(ctx: RuleContext) -> Iterator[Finding]:
    if ctx.spec.shared_disks.controller.type is ControllerType.PVSCSI:
        yield ctx.finding(
            (*paths.CONTROLLER, "type"),
            f"pvscsi under vSphere {ctx.version_text}: VMware supports Paravirtual controllers for "
            "clustered disks from vSphere 6.0; use lsilogic-sas",
        )


_SHARING = {CIB: BusSharing.VIRTUAL, CAB: BusSharing.PHYSICAL, P2V: BusSharing.PHYSICAL}


@rule(
    "MSCS-DISK-005",
    title="SCSI bus sharing matches the topology: virtual in a box, physical across boxes",
    source='[vmw] table "Requirements for clustered disks"; [ch] step 12 (Virtual) is for one host only',
)
def bus_sharing(ctx: RuleContext) -> Iterator[Finding]:
    topology = ctx.spec.topology
    sharing = ctx.spec.shared_disks.controller.sharing
    wanted = _SHARING[topology]
    if sharing is wanted:
        return
    path = (*paths.CONTROLLER, "sharing")
    if sharing is BusSharing.NONE:
        message = f"sharing none: the other node cannot reach the shared disks; {topology} needs {wanted} bus sharing"
    elif topology is CIB:
        message = (
            "physical bus sharing in a box: both nodes run on one host, where VMware specifies virtual bus sharing"
        )
    else:
        message = (
            f"virtual bus sharing only shares disks between VMs on the same host; {topology} puts the "
            "nodes on different machines and needs physical. (The book's cluster-across-boxes "
            "procedure says Virtual in step 12: that step is wrong across hosts.)"
        )
    yield ctx.finding(path, message)


@rule(
    "MSCS-DISK-006",
    title="RDM compatibility mode fits the topology and the guest OS",
    source="[vmw] physical compatibility across boxes (virtual only for Windows 2003) and for "
    'physical-to-virtual, virtual in a box; [ch] "you cannot use virtual compatibility mode" for P2V',
)
def rdm_compatibility(ctx: RuleContext) -> Iterator[Finding]:
    topology = ctx.spec.topology
    guest = ctx.spec.guest_os
    for index, disk in enumerate(ctx.spec.shared_disks.disks):
        if not isinstance(disk, RdmDisk):
            continue
        path = paths.disk(index, "compatibility")
        mode = disk.compatibility
        if topology is P2V and mode is Compatibility.VIRTUAL:
            yield ctx.finding(
                path,
                f"{disk.name}: the physical node reaches the LUN directly, so the VM must pass SCSI "
                "commands through too: physical compatibility",
            )
        elif topology is CAB and mode is Compatibility.VIRTUAL and guest is not GuestOS.WINDOWS_2003:
            yield ctx.finding(
                path,
                f"{disk.name}: virtual compatibility across boxes is for Windows Server 2003 only; "
                f"{guest} needs physical compatibility, which passes SCSI-3 persistent reservations "
                "through to the LUN. (The book's step 7 chooses Virtual for a Windows 2003 cluster.)",
            )
        elif topology is CIB and mode is Compatibility.PHYSICAL:
            yield ctx.finding(
                path,
                f"{disk.name}: VMware does not support physical-compatibility (pass-through) RDMs in a "
                "cluster in a box; use virtual compatibility or a shared VMDK",
            )


@rule(
    "MSCS-DISK-007",
    title="Physical-to-virtual shares LUNs (RDMs), not VMDKs",
    source='[ch] "Physical to virtual clustering"; [vmw] table "Requirements for clustered disks"',
)
def p2v_needs_rdm(ctx: RuleContext) -> Iterator[Finding]:
    if ctx.spec.topology is not P2V:
        return
    for index, disk in enumerate(ctx.spec.shared_disks.disks):
        if isinstance(disk, SharedVmdk):
            yield ctx.finding(
                paths.disk(index, "sizeGB"),
                f"{disk.name}: the physical node cannot see a VMDK; physical-to-virtual shares SAN LUNs "
                "as RDMs (`lun:` and `mappingDatastore:`)",
            )


@rule(
    "MSCS-DISK-008",
    title="Across boxes before vSphere 7.0, shared disks are RDMs",
    source="[vmw 6.x] RDMs across boxes; [vmw 7.x] clustered VMDK on VMFS6 from 7.0; "
    '[ch] "must use raw device mappings"',
    versions=before(7, 0),
)
def cab_vmdk_needs_seven(ctx: RuleContext) -> Iterator[Finding]:
    if ctx.spec.topology is not CAB:
        return
    for index, disk in enumerate(ctx.spec.shared_disks.disks):
        if isinstance(disk, SharedVmdk):
            yield ctx.finding(
                paths.disk(index, "sizeGB"),
                f"{disk.name}: a shared VMDK across boxes (clustered VMDK on VMFS6) needs vSphere 7.0; "
                f"under {ctx.version_text} share a LUN as an RDM in physical compatibility mode",
            )


@rule(
    "MSCS-DISK-009",
    title="Each shared disk has its own SCSI unit on the shared controller (0-15, not 7)",
    source='[ch] second node step 2 "using the same SCSI node values"; [vmw] "same target ID"',
)
def units(ctx: RuleContext) -> Iterator[Finding]:
    seen: dict[int, str] = {}
    for index, disk in enumerate(ctx.spec.shared_disks.disks):
        path = paths.disk(index, "unit")
        if disk.unit is None:
            yield ctx.finding(
                paths.disk(index),
                f"{disk.name}: no free unit left on the shared controller; one controller holds "
                "15 disks (units 0-15 but 7)",
            )
            continue
        if disk.unit == 7:
            yield ctx.finding(path, f"{disk.name}: unit 7 is the SCSI controller's own; use 0-6 or 8-15")
        elif disk.unit in seen:
            yield ctx.finding(
                path,
                f"{disk.name}: unit {disk.unit} is already {seen[disk.unit]}'s; every node sees each "
                "shared disk at the same bus:unit, so each disk needs its own",
            )
        seen.setdefault(disk.unit, disk.name)


@rule(
    "MSCS-DISK-010",
    title="A LUN is shared once: one mapping per clustered disk",
    source="[vmw] one shared RDM mapping file per clustered disk",
)
def lun_used_once(ctx: RuleContext) -> Iterator[Finding]:
    seen: dict[str, str] = {}
    for index, disk in enumerate(ctx.spec.shared_disks.disks):
        if not isinstance(disk, RdmDisk):
            continue
        key = disk.lun.lower()
        if key in seen:
            yield ctx.finding(
                paths.disk(index, "lun"),
                f"{disk.name}: {disk.lun} is already mapped as {seen[key]}; two mappings of one LUN are "
                "two disks writing the same blocks",
            )
        else:
            seen[key] = disk.name


@rule(
    "MSCS-DISK-011",
    title="Shared disk names are unique",
    source="mscsctl: the name is the disk's address in plans and state (cluster/C/node/N/disk/NAME)",
)
def disk_names_unique(ctx: RuleContext) -> Iterator[Finding]:
    seen: set[str] = set()
    for index, disk in enumerate(ctx.spec.shared_disks.disks):
        if disk.name in seen:
            yield ctx.finding(paths.disk(index, "name"), f"{disk.name} is already the name of a shared disk")
        seen.add(disk.name)
