"""Settings vCenter shows on a node VM that VMware does not support on a clustered node.

Nothing in the desired file asks for them and mscsctl never sets them: someone turns them
on by hand (a backup product takes a snapshot, a template carries CPU hot-add, a guide found
on the web sets multi-writer on a shared disk). The plan refuses while one is present (an
error finding of the observed state, located at the node or the disk in the file); drift
reports each as a finding with the fix the administrator makes (`forbidden_settings`).

The guest OS check compares the VM's `config.guestId` (and, when VMware Tools report it,
`guest.guestFullName`) with the file's `guestOS`. It is a warning: mscsctl does not change a
VM's guest OS setting, and the setting may lag the installed OS (an in-place upgrade, a VM
created on a vSphere release that did not know the newer Windows), so which side is wrong
cannot be told from vCenter; but the file's `guestOS` chooses the controller type and the
rules checked, so a file that names the wrong Windows is checked against the wrong facts.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from reconciler.findings import FieldPath, Finding, Severity
from reconciler.observed import Observed, ObservedDisk, ObservedVm
from reconciler.rules import paths
from reconciler.rules.catalogue import ALL, RuleContext, Version, Versions, get_rule, rule, since
from reconciler.spec import Compatibility, FailoverCluster, RdmDisk, Topology, VmNode, with_defaults

CAB = Topology.CLUSTER_ACROSS_BOXES

_7 = '[vmw 7.0] [vmw 8.0] "vSphere WSFC Setup Limitations"'
_CVMDK = '[vmw 7.0] [vmw 8.0] "Clustered VMDK support for WSFC" limitations'


@dataclass(frozen=True)
class ForbiddenSetting:
    """One forbidden setting of one node VM, as the plan's rule finding and drift's finding say it."""

    rule_id: str
    vm: str
    path: FieldPath  # where in the desired file the finding is located
    kind: str  # what it is a setting of, as an address kind: snapshot, hotadd, ft, disk, guest
    name: str  # the disk's name for a disk; "" otherwise
    field: str
    observed: Any
    desired: Any
    message: str
    fix: str  # what the administrator does
    critical: bool = False  # the cluster's storage safety is at stake (drift severity)
    note_only: bool = False  # reported by drift as a note, not a finding (the guest OS)


Detect = Callable[[RuleContext, bool], Iterator[ForbiddenSetting]]
_DETECTORS: dict[str, Detect] = {}


def _forbidden(
    id: str, *, title: str, source: str, versions: Versions = ALL, severity: Severity = Severity.ERROR
) -> Callable[[Detect], Detect]:
    """A catalogue rule (needs what vCenter shows) whose findings drift reports too."""

    def register(detect: Detect) -> Detect:
        def check(ctx: RuleContext) -> Iterator[Finding]:
            for setting in detect(ctx, False):
                yield ctx.finding(setting.path, setting.message)

        check.__doc__ = detect.__doc__
        rule(id, title=title, source=source, severity=severity, versions=versions, needs_observed=True)(check)
        _DETECTORS[id] = detect
        return detect

    return register


def forbidden_settings(cluster: FailoverCluster, observed: Observed, version: Version | None) -> list[ForbiddenSetting]:
    """Every forbidden setting vCenter shows on the nodes, for drift: the rules of this module
    whose versions apply, judged by what vCenter shows now (not by what apply would set)."""
    base = RuleContext(cluster=cluster, effective=with_defaults(cluster, version), version=version, observed=observed)
    found: list[ForbiddenSetting] = []
    for rule_id, detect in sorted(_DETECTORS.items()):
        r = get_rule(rule_id)
        if r.versions.applies(version):
            found.extend(detect(replace(base, rule=r), True))
    return found


def _nodes(ctx: RuleContext) -> Iterator[tuple[int, VmNode, ObservedVm]]:
    assert ctx.observed is not None
    for index, node in ctx.vm_nodes:
        vm = ctx.observed.vms.get(node.vm)
        if vm is not None:
            yield index, node, vm


def _setting(ctx: RuleContext, vm: ObservedVm, **fields: Any) -> ForbiddenSetting:
    return ForbiddenSetting(rule_id=ctx.rule.id if ctx.rule else "", vm=vm.name, **fields)


def _clustered_disks(ctx: RuleContext, vm: ObservedVm) -> Iterator[tuple[FieldPath, str, ObservedDisk]]:
    """The node's disks on a bus-sharing controller (SCSI or NVMe), each with the file's disk it
    is (by bus and unit, and LUN for an RDM) or, for one the file does not list, its slot."""
    own_bus = ctx.spec.shared_disks.controller.bus
    for disk in sorted(vm.disks.values(), key=lambda d: (d.adapter, d.bus, d.unit)):
        controller = vm.controller_on(disk.bus, nvme=disk.adapter == "nvme")
        if controller is None or controller.sharing == "none":
            continue
        path, name = paths.DISKS, disk.slot
        for index, wanted in enumerate(ctx.spec.shared_disks.disks):
            bus = wanted.bus if wanted.bus is not None else own_bus
            if (bus, wanted.unit) == (disk.bus, disk.unit) and (
                not isinstance(wanted, RdmDisk) or wanted.lun == disk.lun
            ):
                path, name = paths.disk(index), wanted.name
                break
        yield path, name, disk


@_forbidden(
    "MSCS-VM-001",
    title="A clustered node has no snapshot",
    source='[vmw 6.0] [vmw 6.5] [vmw 6.7] [vmw 7.0] VM administration "Snapshot Limitations": no snapshots '
    f"of VMs configured for bus sharing, delete them to configure it; {_CVMDK}: snapshots not supported",
    versions=since(6, 0),
)
def no_snapshots(ctx: RuleContext, drift: bool) -> Iterator[ForbiddenSetting]:
    """ESXi does not snapshot a VM with a bus-sharing controller, nor share the bus of a VM that
    has one: a snapshot found on a node was taken before the bus was shared or by a host that
    did not check, and the node's disks then run on delta files that the other nodes never see."""
    for index, node, vm in _nodes(ctx):
        if not vm.snapshots:
            continue
        names = ", ".join(vm.snapshots)
        yield _setting(
            ctx,
            vm,
            path=paths.node(index, node),
            kind="snapshot",
            name="",
            field="names",
            observed=list(vm.snapshots),
            desired="none",
            message=f"{vm.name} has {len(vm.snapshots)} snapshot(s) ({names}): VMware supports no snapshots "
            "of a VM whose bus is shared, and ESXi refuses to share the bus of a VM that has one; delete "
            "them before mscsctl changes or powers on this node",
            fix=f"delete every snapshot of {vm.name} (Snapshots > Delete All); back up clustered nodes "
            "from inside the guest, not with VM snapshots",
            critical=True,
        )


@_forbidden(
    "MSCS-VM-002",
    title="CPU and memory hot-add are off on a clustered node",
    source=f'{_7}: "Memory hot add" and "CPU hot add" not supported',
    versions=since(7, 0),
)
def no_hot_add(ctx: RuleContext, drift: bool) -> Iterator[ForbiddenSetting]:
    for index, node, vm in _nodes(ctx):
        for field, what, enabled in (("cpu", "CPU", vm.cpu_hot_add), ("memory", "memory", vm.memory_hot_add)):
            if not enabled:
                continue
            setting = "CPU Hot Plug" if field == "cpu" else "Memory Hot Plug"
            yield _setting(
                ctx,
                vm,
                path=paths.node(index, node),
                kind="hotadd",
                name="",
                field=field,
                observed=True,
                desired=False,
                message=f"{vm.name} has {what} hot-add enabled: VMware's WSFC guides for vSphere 7.0 and 8.0 "
                f"list hot-adding {'CPUs' if field == 'cpu' else 'memory'} to a clustered node as not supported",
                fix=f"with {vm.name}'s roles moved to another node, power {vm.name} off, clear {setting} "
                "(Edit Settings > Virtual Hardware), power it on; one node at a time",
            )


MULTI_WRITER = "sharingMultiWriter"


@_forbidden(
    "MSCS-VM-003",
    title="A clustered disk is shared through bus sharing, never with the multi-writer flag",
    source="[kb 1034165] the multi-writer flag is for Oracle RAC and other cluster-aware file "
    'systems, not WSFC; [vmw blog 2023-07] "Getting Out of the Multi-Writer Flag Jam": never '
    "supported for WSFC; [vmw 7.0] [vmw 8.0] WSFC arbitrates with SCSI-3 persistent reservations",
)
def no_multi_writer(ctx: RuleContext, drift: bool) -> Iterator[ForbiddenSetting]:
    """Multi-writer turns VMFS's locking off without arbitrating SCSI-3 reservations: both nodes
    may write a disk that WSFC believes one of them owns."""
    for _, _, vm in _nodes(ctx):
        for path, name, disk in _clustered_disks(ctx, vm):
            if disk.sharing != MULTI_WRITER:
                continue
            yield _setting(
                ctx,
                vm,
                path=path,
                kind="disk",
                name=name,
                field="multiWriter",
                observed=MULTI_WRITER,
                desired="sharingNone",
                message=f"{name} on {vm.name} has sharing {MULTI_WRITER}: WSFC arbitrates a clustered disk "
                "with SCSI-3 persistent reservations through the controller's bus sharing; multi-writer "
                "turns VMFS's locking off without them, so two nodes can write the disk at once",
                fix=f"with {vm.name} powered off, set the disk's Sharing to No sharing (Edit Settings > "
                "Hard disk); the controller's bus sharing shares it",
                critical=True,
            )


@_forbidden(
    "MSCS-VM-004",
    title="Fault Tolerance is off on a clustered node",
    source='[vmw 5.0] [vmw 6.7] "Use of MSCS in conjunction with vSphere Fault Tolerance" not supported; '
    '[vmw 7.0] [vmw 8.0] "vSphere WSFC Setup Limitations" and the clustered-VMDK limitations: FT not supported',
    versions=since(5, 0),
)
def no_fault_tolerance(ctx: RuleContext, drift: bool) -> Iterator[ForbiddenSetting]:
    for index, node, vm in _nodes(ctx):
        state = vm.fault_tolerance
        if state in (None, "", "notConfigured"):
            continue
        yield _setting(
            ctx,
            vm,
            path=paths.node(index, node),
            kind="ft",
            name="",
            field="state",
            observed=state,
            desired="notConfigured",
            message=f"{vm.name} has Fault Tolerance configured (state {state}): VMware does not support FT "
            "on a failover-cluster node; WSFC is the cluster's failover",
            fix=f"turn Fault Tolerance off for {vm.name} (Fault Tolerance > Turn Off Fault Tolerance)",
        )


STILL = "disabled"  # the only DRS automation level at which DRS moves no node (as MSCS-PLACE-008 counts)


@_forbidden(
    "MSCS-VM-005",
    title="A node DRS may move has no virtual-compatibility RDM on its shared controller",
    source="[vmw 6.0] vMotion of clustered VMs with pass-through (physical) RDMs only; "
    f'{_7}: "vMotion of clustered virtual machines using vRDMs" not supported',
    versions=since(6, 0),
)
def no_vrdm_moved_by_drs(ctx: RuleContext, drift: bool) -> Iterator[ForbiddenSetting]:
    """The virtual RDMs vCenter shows on the nodes' shared controllers, where DRS is on and the
    node's automation level is not disabled. The plan judges by the level the file sets (apply
    sets it) and leaves the virtual RDMs the file itself asks for across boxes to MSCS-PLACE-008;
    drift judges by the level vCenter shows (the override, else the vSphere cluster's default)."""
    assert ctx.observed is not None
    declared = {
        d.lun
        for d in ctx.spec.shared_disks.disks
        if isinstance(d, RdmDisk) and d.compatibility is Compatibility.VIRTUAL and ctx.spec.topology is CAB
    }
    for *_, vm in _nodes(ctx):
        cluster = ctx.observed.clusters.get(vm.cluster) if vm.cluster else None
        if cluster is None or not cluster.drs_enabled:
            continue
        if drift:
            behavior = cluster.drs_overrides.get(vm.name, cluster.drs_default_behavior)
        else:
            behavior = str(ctx.spec.placement.drs)
        if behavior == STILL:
            continue
        for path, name, disk in _clustered_disks(ctx, vm):
            if disk.kind != "rdm" or disk.compatibility != Compatibility.VIRTUAL.value:
                continue
            if not drift and disk.lun in declared:
                continue
            yield _setting(
                ctx,
                vm,
                path=path if drift else (*paths.PLACEMENT, "drs"),
                kind="disk",
                name=name,
                field="compatibility",
                observed=f"virtual, DRS {behavior} in {cluster.name}",
                desired="physical, or DRS disabled for the node",
                message=f"{name} on {vm.name} is a virtual-compatibility RDM and DRS in {cluster.name} may move "
                f"{vm.name} ({behavior}): VMware does not support vMotion of clustered VMs with virtual RDMs",
                fix=f"keep DRS from moving {vm.name}: placement.drs disabled in the file, then mscsctl apply; "
                "or share the LUN as a physical-compatibility RDM",
            )


# The guestIds (config.guestId, VirtualMachineGuestOsIdentifier) of each Windows Server release.
# "Windows Server 2016 or later" (windows9Server64Guest) was vSphere's only choice for 2019 and
# later before vSphere 7.0 knew them, and stays on a VM made then: it fits every later release.
_OR_LATER = "windows9Server64Guest"
GUEST_IDS: dict[str, frozenset[str]] = {
    "windows2003": frozenset(
        f"winNet{edition}Guest"
        for edition in (
            "Web",
            "Standard",
            "Enterprise",
            "Datacenter",
            "Business",
            "Standard64",
            "Enterprise64",
            "Datacenter64",
        )
    ),
    "windows2008": frozenset({"winLonghornGuest", "winLonghorn64Guest", "windows7Server64Guest"}),
    "windows2012": frozenset({"windows8Server64Guest"}),
    "windows2016": frozenset({_OR_LATER}),
    "windows2019": frozenset({"windows2019srv_64Guest", _OR_LATER}),
    "windows2022": frozenset({"windows2019srvNext_64Guest", _OR_LATER}),
    "windows2025": frozenset({"windows2022srvNext_64Guest", _OR_LATER}),
}
_RELEASE = re.compile(r"Windows Server (\d{4})( R2)?( or later)?")


def _release_year(guest_os: str) -> int | None:
    digits = guest_os.removeprefix("windows")
    return int(digits) if digits.isdigit() else None


def _tools_disagree(full_name: str, year: int | None) -> bool:
    """The release VMware Tools report (`Microsoft Windows Server 2019 (64-bit)`) is not the file's."""
    match = _RELEASE.search(full_name)
    if match is None or year is None:
        return False
    reported = int(match.group(1))
    return reported > year if match.group(3) else reported != year


@_forbidden(
    "MSCS-VM-006",
    title="The nodes' guest OS in vCenter is the file's guestOS",
    source="[vmw API] VirtualMachineGuestOsIdentifier: windows8Server64Guest 2012, windows9Server64Guest "
    "2016 (or later), windows2019srv_64Guest 2019, windows2019srvNext_64Guest 2022, "
    "windows2022srvNext_64Guest 2025",
    severity=Severity.WARNING,
)
def guest_os_matches(ctx: RuleContext, drift: bool) -> Iterator[ForbiddenSetting]:
    wanted = str(ctx.spec.guest_os)
    ids = GUEST_IDS.get(wanted, frozenset())
    year = _release_year(wanted)
    for _, _, vm in _nodes(ctx):
        reasons = []
        if vm.guest_id and vm.guest_id not in ids:
            reasons.append(f"config.guestId {vm.guest_id}")
        if vm.guest_full_name and _tools_disagree(vm.guest_full_name, year):
            reasons.append(f"VMware Tools report {vm.guest_full_name}")
        if not reasons:
            continue
        yield _setting(
            ctx,
            vm,
            path=paths.GUEST_OS,
            kind="guest",
            name="",
            field="guestId",
            observed=vm.guest_id,
            desired=" or ".join(sorted(ids)) or wanted,
            message=f"{vm.name}: {' and '.join(reasons)}, not {wanted} ({', '.join(sorted(ids))}): the file's "
            "guestOS chooses the controller type and the rules checked, so either it or the VM's guest OS "
            "setting is wrong; mscsctl changes neither",
            fix=f"correct guestOS in the file, or the guest OS of {vm.name} (powered off: Edit Settings > "
            "VM Options > General Options)",
            note_only=True,
        )
