"""Rules about the shared disks and their SCSI controller, from the desired file alone."""

from __future__ import annotations

from collections.abc import Iterator

from reconciler.findings import Finding
from reconciler.rules import paths
from reconciler.rules.catalogue import RuleContext, before, rule, since
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
        return
    for index, disk in enumerate(ctx.written.shared_disks.disks):
        if disk.bus == 0:
            yield ctx.finding(
                paths.disk(index, "bus"),
                f"{disk.name}: bus 0 holds the operating-system disk; shared disks sit on controllers of "
                "their own (bus 1, 2 or 3)",
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


# The highest unit a shared SCSI controller takes (7 is the controller's own). PVSCSI takes 64
# targets from virtual hardware 14 (vSphere 6.7); every other SCSI controller, and PVSCSI on
# older hardware, 16 units. The planner fills default units up to the same numbers.
SCSI_MAX_UNIT = 15
PVSCSI_MAX_UNIT = 64
PVSCSI_WIDE_SINCE: tuple[int, int] = (6, 7)  # the first vSphere with virtual hardware 14
PVSCSI_WIDE_HARDWARE = 14
SCSI_TYPES = {ControllerType.LSILOGIC, ControllerType.LSILOGIC_SAS, ControllerType.PVSCSI}


def max_unit(kind: ControllerType, version: tuple[int, int] | None, hardware: int | None = None) -> int:
    """The highest unit a shared controller of `kind` takes under `version` on virtual hardware
    `hardware` (None: unknown, the most the version allows)."""
    if kind is not ControllerType.PVSCSI:
        return SCSI_MAX_UNIT
    if version is not None and version < PVSCSI_WIDE_SINCE:
        return SCSI_MAX_UNIT
    if hardware is not None and hardware < PVSCSI_WIDE_HARDWARE:
        return SCSI_MAX_UNIT
    return PVSCSI_MAX_UNIT


@rule(
    "MSCS-DISK-009",
    title="Each shared disk has its own unit on the controller: 0-15 but 7; PVSCSI to 64 on hardware 14+",
    source='[ch] second node step 2 "using the same SCSI node values"; [vmw 6.7] "same target ID"; '
    "[vmw 6.7] [vmw 7.0] [vmw 8.0] configuration maximums: 64 targets per PVSCSI adapter from hardware 14",
)
def units(ctx: RuleContext) -> Iterator[Finding]:
    kind = ctx.spec.shared_disks.controller.type
    if kind not in SCSI_TYPES:
        return  # NVMe namespaces: the controller rules
    assert kind is not None
    top = max_unit(kind, ctx.version)
    wide = " (PVSCSI on hardware 14+)" if top > SCSI_MAX_UNIT else ""
    seen: dict[tuple[int | None, int], str] = {}
    for index, disk in enumerate(ctx.spec.shared_disks.disks):
        path = paths.disk(index, "unit")
        if disk.unit is None:
            yield ctx.finding(
                paths.disk(index),
                f"{disk.name}: no free unit left on the shared controllers; a {kind} controller holds "
                f"{top} disks (units 0-{top} but 7){wide}",
            )
            continue
        if disk.unit == 7:
            yield ctx.finding(path, f"{disk.name}: unit 7 is the SCSI controller's own; use 0-6 or 8-{top}")
        elif disk.unit > top:
            why = (
                f"PVSCSI takes units above {SCSI_MAX_UNIT} from vSphere 6.7 (virtual hardware 14)"
                if kind is ControllerType.PVSCSI
                else f"a {kind} controller has units 0-{SCSI_MAX_UNIT}; PVSCSI on hardware 14+ takes 64 disks"
            )
            yield ctx.finding(path, f"{disk.name}: unit {disk.unit} under vSphere {ctx.version_text}: {why}")
        elif (disk.bus, disk.unit) in seen:
            yield ctx.finding(
                path,
                f"{disk.name}: unit {disk.unit} is already {seen[(disk.bus, disk.unit)]}'s; every node sees "
                "each shared disk at the same bus:unit, so each disk needs its own",
            )
        seen.setdefault((disk.bus, disk.unit), disk.name)


@rule(
    "MSCS-DISK-012",
    title="PVSCSI units above 15 need virtual hardware 14 or later on every VM node",
    source="[vmw 6.7] [vmw 7.0] [vmw 8.0] configuration maximums: 64 targets per PVSCSI adapter from hardware 14",
    versions=since(*PVSCSI_WIDE_SINCE),
    needs_observed=True,
)
def pvscsi_wide_needs_hardware_14(ctx: RuleContext) -> Iterator[Finding]:
    assert ctx.observed is not None
    if ctx.spec.shared_disks.controller.type is not ControllerType.PVSCSI:
        return
    high = [d for d in ctx.spec.shared_disks.disks if d.unit is not None and d.unit > SCSI_MAX_UNIT]
    if not high:
        return
    for index, node in ctx.vm_nodes:
        vm = ctx.observed.vms.get(node.vm)
        hardware = hardware_version(vm.hardware_version) if vm is not None else None
        if hardware is not None and hardware < PVSCSI_WIDE_HARDWARE:
            units_text = ", ".join(f"{d.name} (unit {d.unit})" for d in high)
            yield ctx.finding(
                paths.node(index, node),
                f"{node.vm} is on virtual hardware {hardware}: its PVSCSI controller takes units 0-{SCSI_MAX_UNIT}, "
                f"so {units_text} cannot be attached; upgrade it to hardware {PVSCSI_WIDE_HARDWARE} or later "
                "(powered off) or use units up to 15",
            )


def hardware_version(text: str) -> int | None:
    """`vmx-19` -> 19; None when vCenter shows no version."""
    digits = text.removeprefix("vmx-")
    return int(digits) if digits.isdigit() else None


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
