"""`mscsctl import`: the desired file and the state of a failover cluster that was built by hand.

Import reads what vCenter shows of the nodes (the one read, `observe`), infers the desired
file that describes exactly that, and records each object of that file's desired tree that
vCenter shows as an apply would have recorded it, with its vCenter identity and
`created_by_mscsctl` false: mscsctl did not create them, so it never deletes them. Nothing
in vCenter changes, and the guests are not asked.

The promise is that the next `plan` of the file changes nothing on the nodes, so what the
file format cannot describe is refused, with the reason, before anything is written: nodes
whose shared disks differ, a shared disk on bus 0, more than two nodes, no shared disk, a
guest OS the format has no name for, and a shared file that is not where the format puts it
(`[DATASTORE] CLUSTER/DISK-MODE.vmdk` for an RDM's mapping file, `[DATASTORE] CLUSTER/DISK.vmdk`
for a shared VMDK: the format derives the path and has no field for another). What the file
describes and the hosts or the vSphere cluster lack (a LUN not perennially reserved, a
missing DRS override, a VM-VM rule under another name) is written all the same and listed:
the next plan shows it, and apply sets it.

Everything above `import_cluster` is pure: `Observed` in, a desired file and a state out.
"""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from reconciler import normalize
from reconciler.address import Address, Scope
from reconciler.diff import Op
from reconciler.errors import MscsError
from reconciler.findings import Finding
from reconciler.kinds import ActionKind, Payload, kind_named
from reconciler.kinds.disk import RdmDiskPayload, VmdkDiskPayload
from reconciler.kinds.facts import mapping_file, nics_by_role, rule_name
from reconciler.kinds.ownership import disk_name_of_file
from reconciler.loader import load_bytes
from reconciler.observed import Observed, ObservedController, ObservedDisk, ObservedVm
from reconciler.outcome import Outcome, OutcomeRecord, OutcomeStatus
from reconciler.plan import Action, Plan, Reason
from reconciler.planner import build_plan
from reconciler.record import record_outcome
from reconciler.rules.catalogue import target_version
from reconciler.run import Connection
from reconciler.spec import (
    API_VERSION,
    CLUSTERED_VMDK,
    DEFAULT_HOST_OPTIONS,
    KIND,
    AdapterType,
    BusSharing,
    ClusteredVmdk,
    ClusterSpec,
    Compatibility,
    ControllerType,
    DrsBehavior,
    FailoverCluster,
    GuestOS,
    HaRestart,
    Metadata,
    Network,
    Networks,
    PhysicalNode,
    Placement,
    RdmDisk,
    SharedDiskController,
    SharedDisks,
    SharedVmdk,
    Topology,
    VmNode,
    with_defaults,
)
from reconciler.workspace import Desired, StateLocation, Targets, write_private
from state import locked
from state.model import State, desired_file_hash, utc_now

# config.guestId of the Windows Server releases -> the file's guestOS.
GUEST_OS_OF_ID: dict[str, GuestOS] = {
    **dict.fromkeys(
        (
            "winNetWebGuest",
            "winNetStandardGuest",
            "winNetEnterpriseGuest",
            "winNetDatacenterGuest",
            "winNetBusinessGuest",
            "winNetStandard64Guest",
            "winNetEnterprise64Guest",
            "winNetDatacenter64Guest",
        ),
        GuestOS.WINDOWS_2003,
    ),
    "winLonghornGuest": GuestOS.WINDOWS_2008,
    "winLonghorn64Guest": GuestOS.WINDOWS_2008,
    "windows7Server64Guest": GuestOS.WINDOWS_2008,  # Windows Server 2008 R2
    "windows8Server64Guest": GuestOS.WINDOWS_2012,  # 2012 and 2012 R2
    "windows9Server64Guest": GuestOS.WINDOWS_2016,
    "windows2019srv_64Guest": GuestOS.WINDOWS_2019,
    "windows2019srvNext_64Guest": GuestOS.WINDOWS_2022,
}
# Kinds of the actions that would change a node's devices: a plan holding one after an import
# means the file does not describe the node as it is.
NODE_DEVICE_KINDS = frozenset({"controller", "disk", "nic"})
_UNDOING = frozenset({ActionKind.DETACH_DISK, ActionKind.REMOVE_NIC, ActionKind.DELETE_RULE, ActionKind.POWER_OFF})
_PLAIN = re.compile(r"[A-Za-z][A-Za-z0-9._/-]*")
_YAML_WORDS = frozenset({"true", "false", "yes", "no", "on", "off", "null", "y", "n"})


class ImportRefused(MscsError):
    """vCenter shows something the desired file cannot describe; nothing was written."""


@dataclass(frozen=True)
class ImportRequest:
    """What to adopt: the node VMs by name (node 1 first), or by a glob within a vSphere cluster."""

    datacenter: str
    vms: tuple[str, ...] = ()
    vsphere_cluster: str | None = None
    vm_pattern: str | None = None
    physical: str | None = None  # the physical node of a physical-to-virtual cluster
    name: str | None = None  # metadata.name; default: the folder of the shared files


@dataclass(frozen=True)
class Inferred:
    """The desired file as written (no default filled), and where each value came from."""

    cluster: FailoverCluster
    notes: dict[str, list[str]] = field(default_factory=dict)  # dotted YAML path -> comment lines


# --- vCenter -> desired file -------------------------------------------------------------------


def infer_cluster(observed: Observed, request: ImportRequest) -> Inferred:
    """The desired file that describes the nodes as `observed` shows them, or `ImportRefused`."""
    nodes = _node_vms(observed, request)
    notes: dict[str, list[str]] = {}
    guest_os = _guest_os(nodes, notes)
    controller, shared = _shared_disks(nodes)
    name = _cluster_name(request, nodes, controller.bus, shared, notes)
    topology = _topology(nodes, controller, request, notes)
    disks = [
        _shared_disk(name, nodes, controller.bus, shared[unit], index, notes, topology)
        for index, unit in enumerate(sorted(shared))
    ]
    vm_nodes = [VmNode(vm=vm.name) for vm in nodes]
    first = 1 if request.physical else 0
    for index, vm in enumerate(nodes, first):
        notes[f"spec.nodes[{index}]"] = [f"{vm.moref} on {vm.host or '?'}."]
    if request.physical:
        notes["spec.nodes[0]"] = ["Given with --physical; add `winrm:` so that its disk timeout can be checked."]
    notes["spec.vsphereVersion"] = ["auto: the rules use the oldest ESXi version of the nodes' hosts."]
    notes["spec.guest"] = [
        "Not read from the guests: the default, 60 s. `mscsctl plan` reads each guest's TimeOutValue "
        "(with guest credentials) and shows a change where it differs."
    ]
    spec = ClusterSpec(
        topology=topology,
        datacenter=observed.datacenter,
        guest_os=guest_os,
        nodes=[PhysicalNode(physical=request.physical), *vm_nodes] if request.physical else vm_nodes,
        shared_disks=SharedDisks(controller=_controller(controller, nodes, notes), disks=disks),
        networks=_networks(nodes, notes),
        host_options=_host_options(observed, nodes, notes),
    )
    cluster = FailoverCluster(api_version=API_VERSION, kind=KIND, metadata=Metadata(name=name), spec=spec)
    for disk in disks:
        if mapping_file(cluster, disk) != shared[disk.unit or 0].file:
            raise ImportRefused(_not_at_its_path(name, nodes, controller.bus, shared[disk.unit or 0]))
    placement = _placement(observed, nodes, rule_name(cluster), notes)
    return Inferred(cluster.model_copy(update={"spec": spec.model_copy(update={"placement": placement})}), notes)


def _node_vms(observed: Observed, request: ImportRequest) -> list[ObservedVm]:
    names = list(request.vms)
    if not names:
        raise ImportRefused("no VM to import: give --vm NAME (twice), or --cluster and --vm-pattern")
    if len(set(names)) != len(names):
        raise ImportRefused(f"a VM is given twice ({', '.join(names)}): a failover pair is two machines")
    if len(names) + (1 if request.physical else 0) > 2:
        extra = f" and the physical node {request.physical}" if request.physical else ""
        raise ImportRefused(
            f"{len(names)} VMs ({', '.join(names)}){extra}: mscsctl manages failover pairs, two nodes (MSCS-NODE-001)"
        )
    if len(names) == 1 and not request.physical:
        raise ImportRefused(
            f"only one VM ({names[0]}): across boxes and in a box a cluster has two VMs; for physical-to-virtual "
            "give the physical node with --physical NAME"
        )
    missing = [n for n in names if n not in observed.vms]
    if missing:
        raise ImportRefused(f"VM {', '.join(missing)} not found in datacenter {observed.datacenter}")
    return [observed.vms[n] for n in names]


def _guest_os(nodes: list[ObservedVm], notes: dict[str, list[str]]) -> GuestOS:
    found = {}
    for vm in nodes:
        if vm.guest_id not in GUEST_OS_OF_ID:
            raise ImportRefused(
                f"{vm.name} runs guest OS {vm.guest_id or '(none)'} (config.guestId), which is not a Windows Server "
                f"release the desired file names ({', '.join(g.value for g in GuestOS)})"
            )
        found[vm.name] = GUEST_OS_OF_ID[vm.guest_id]
    if len(set(found.values())) > 1:
        seen = ", ".join(f"{vm} {os.value}" for vm, os in found.items())
        raise ImportRefused(f"the nodes run different Windows Server releases ({seen}): the file has one guestOS")
    ids = sorted({vm.guest_id for vm in nodes})
    notes["spec.guestOS"] = [f"From config.guestId {', '.join(ids)}."]
    return found[nodes[0].name]


def _shared_buses(nodes: list[ObservedVm]) -> set[int]:
    """The buses that hold a disk both nodes have (one VM: an RDM), or that share their bus."""
    buses = {c.bus for vm in nodes for c in vm.controllers.values() if c.sharing != "none"}
    if len(nodes) == 1:
        return buses | {d.bus for d in nodes[0].disks.values() if d.kind == "rdm"}
    files = [{d.file for d in vm.disks.values() if d.file} for vm in nodes]
    common = files[0] & files[1]
    return buses | {d.bus for vm in nodes for d in vm.disks.values() if d.file in common}


def _shared_disks(nodes: list[ObservedVm]) -> tuple[ObservedController, dict[int, ObservedDisk]]:
    """Node 1's shared controller and its disks by unit, the same on every node."""
    names = " and ".join(vm.name for vm in nodes)
    buses = _shared_buses(nodes)
    if 0 in buses:
        held = sorted(f"SCSI {d.bus}:{d.unit} ({d.file or d.lun})" for d in nodes[0].disks.values() if d.bus == 0)
        raise ImportRefused(
            f"a shared disk on bus 0 of {names} ({', '.join(held) or 'bus sharing on its controller'}): bus 0 holds "
            "the OS disk, shared disks need a SCSI controller of their own (MSCS-DISK-002). Move them to "
            "another bus by hand, then import"
        )
    if len(buses) > 1:
        raise ImportRefused(
            f"shared disks or bus sharing on SCSI buses {', '.join(map(str, sorted(buses)))} of {names}: "
            "the desired file has one shared controller"
        )
    if not buses:
        what = "no disk file in common and no" if len(nodes) > 1 else "no RDM and no"
        raise ImportRefused(
            f"no shared disk: {names} {'have' if len(nodes) > 1 else 'has'} {what} bus-sharing SCSI controller; "
            "a failover cluster's nodes share at least one disk (MSCS-DISK-001)"
        )
    bus = buses.pop()
    controllers = [vm.controllers.get(bus) for vm in nodes]
    kinds = {(c.type, c.sharing) if c is not None else None for c in controllers}
    if len(kinds) > 1:
        seen = "; ".join(
            f"{vm.name}: {f'{c.type}, {c.sharing} sharing' if c is not None else 'none'}"
            for vm, c in zip(nodes, controllers, strict=True)
        )
        raise ImportRefused(f"the nodes' SCSI controllers on bus {bus} differ ({seen}): the file has one for both")
    by_unit = [{d.unit: d for d in vm.disks.values() if d.bus == bus} for vm in nodes]
    differ = [
        f"SCSI {bus}:{unit} is {_shown(by_unit[0].get(unit))} on {nodes[0].name} and "
        f"{_shown(by_unit[1].get(unit))} on {nodes[1].name}"
        for unit in sorted({u for disks in by_unit for u in disks})
        if len({_backing(disks.get(unit)) for disks in by_unit}) > 1
    ]
    if differ:
        raise ImportRefused(
            f"the nodes' shared disks differ ({'; '.join(differ)}): the desired file gives every node the same "
            "disks, the same files at the same units"
        )
    if not by_unit[0]:
        raise ImportRefused(f"no shared disk: the controller on bus {bus} of {names} holds no disk (MSCS-DISK-001)")
    return controllers[0], by_unit[0]  # type: ignore[return-value]


def _backing(disk: ObservedDisk | None) -> tuple[Any, ...] | None:
    return None if disk is None else (disk.kind, disk.file, disk.lun, disk.compatibility)


def _shown(disk: ObservedDisk | None) -> str:
    if disk is None:
        return "nothing"
    return f"an RDM of {disk.lun} ({disk.compatibility}, {disk.file})" if disk.kind == "rdm" else f"VMDK {disk.file}"


def _folder(file: str) -> str:
    """`[DS] folder/name.vmdk` -> `folder` ('' for a file at the datastore's top)."""
    folder, slash, _ = file.partition("] ")[2].partition("/")
    return folder if slash else ""


def _datastore(file: str) -> str:
    return file[1:].partition("]")[0] if file.startswith("[") else ""


def _valid_name(name: str) -> bool:
    try:
        Metadata(name=name)
    except ValidationError:
        return False
    return True


def _cluster_name(
    request: ImportRequest,
    nodes: list[ObservedVm],
    bus: int,
    shared: dict[int, ObservedDisk],
    notes: dict[str, list[str]],
) -> str:
    if request.name is not None:
        if not _valid_name(request.name):
            raise ImportRefused(f"--name {request.name!r}: a cluster name is lower-case letters, digits and '-'")
        notes["metadata.name"] = ["Given with --name."]
        return request.name
    first = shared[min(shared)]
    folder = _folder(first.file)
    if not _valid_name(folder):
        raise ImportRefused(_not_at_its_path("<cluster name>", nodes, bus, first))
    notes["metadata.name"] = [f"The folder of the shared files ({first.file}): names the state and the VM-VM rule."]
    return folder


def _not_at_its_path(name: str, nodes: list[ObservedVm], bus: int, disk: ObservedDisk) -> str:
    """Why a shared file the format cannot place is refused, and what to do about it."""
    where = f"SCSI {bus}:{disk.unit} of {' and '.join(vm.name for vm in nodes)}"
    folder = _folder(disk.file)
    hint = (
        f", or give --name {folder} if that folder is the cluster's"
        if _valid_name(folder) and folder != name and disk_name_of_file(folder, disk.file, disk.kind)
        else ""
    )
    if disk.kind == "rdm":
        mode = disk.compatibility or "MODE"
        return (
            f"{where} maps LUN {disk.lun} through {disk.file}; a desired file puts an RDM's mapping file at "
            f"[DATASTORE] {name}/DISK-{mode}.vmdk and has no field for another path, so the next apply would "
            f"map the LUN again there (each node powered off in turn). Move the mapping file to "
            f"[{_datastore(disk.file)}] {name}/<disk name>-{mode}.vmdk by hand (nodes off, detached from both, "
            f"attached again at the same unit){hint}; or write the desired file yourself and let apply map "
            "the LUN anew, one node at a time, its data kept"
        )
    return (
        f"{where} holds the shared VMDK {disk.file}; a desired file puts a shared VMDK at [DATASTORE] "
        f"{name}/DISK.vmdk and has no field for another path, and mscsctl takes no VMDK elsewhere for the "
        f"cluster's (MSCS-SAFE-002). Move it to [{_datastore(disk.file)}] {name}/<disk name>.vmdk by hand "
        f"(nodes off, detached from both, attached again at the same unit){hint}, then import"
    )


def _topology(
    nodes: list[ObservedVm], controller: ObservedController, request: ImportRequest, notes: dict[str, list[str]]
) -> Topology:
    if request.physical:
        notes["spec.topology"] = [f"One VM ({nodes[0].name}) and the physical node {request.physical} (--physical)."]
        return Topology.PHYSICAL_TO_VIRTUAL
    hosts = [vm.host for vm in nodes]
    runs = f"{nodes[0].name} runs on {hosts[0] or '?'}, {nodes[1].name} on {hosts[1] or '?'}"
    if hosts[0] and hosts[0] == hosts[1]:
        if controller.sharing == "physical":
            raise ImportRefused(
                f"both nodes run on {hosts[0]} with physical bus sharing: neither a cluster in a box (virtual "
                "sharing) nor across boxes (different hosts). Move a node to another host, then import"
            )
        notes["spec.topology"] = [f"{runs}: one host."]
        return Topology.CLUSTER_IN_A_BOX
    notes["spec.topology"] = [f"{runs}: different hosts."]
    return Topology.CLUSTER_ACROSS_BOXES


def _controller(ctrl: ObservedController, nodes: list[ObservedVm], notes: dict[str, list[str]]) -> SharedDiskController:
    try:
        kind = ControllerType(ctrl.type)
    except ValueError:
        raise ImportRefused(
            f"the shared SCSI controller on bus {ctrl.bus} is {ctrl.type}; the desired file names "
            f"{', '.join(t.value for t in ControllerType)}"
        ) from None
    notes["spec.sharedDisks.controller"] = [
        f"Bus {ctrl.bus} of {' and '.join(vm.name for vm in nodes)}: {ctrl.type}, {ctrl.sharing} bus sharing."
    ]
    return SharedDiskController(bus=ctrl.bus, type=kind, sharing=BusSharing(ctrl.sharing))


def _shared_disk(
    name: str,
    nodes: list[ObservedVm],
    bus: int,
    disk: ObservedDisk,
    index: int,
    notes: dict[str, list[str]],
    topology: Topology,
) -> RdmDisk | SharedVmdk:
    disk_name = disk_name_of_file(name, disk.file, disk.kind)
    if disk_name is None:
        raise ImportRefused(_not_at_its_path(name, nodes, bus, disk))
    unit = disk.unit
    try:
        if disk.kind == "rdm":
            if disk.lun is None:
                raise ImportRefused(
                    f"SCSI {bus}:{unit} of {nodes[0].name} maps a LUN ({disk.lun_uuid}) that its host does not show"
                )
            made: RdmDisk | SharedVmdk = RdmDisk(
                name=disk_name,
                lun=disk.lun,
                unit=unit,
                compatibility=Compatibility(disk.compatibility or ""),
                mapping_datastore=_datastore(disk.file),
            )
            what = f"RDM of {disk.lun}, mapping file {disk.file}"
        elif topology is Topology.CLUSTER_ACROSS_BOXES:
            # Across boxes a shared VMDK is a clustered VMDK (MSCS-DISK-108).
            made = ClusteredVmdk(
                name=disk_name,
                type=CLUSTERED_VMDK,
                size_gb=disk.size_gb or 0,
                datastore=_datastore(disk.file),
                unit=unit,
            )
            what = f"clustered VMDK {disk.file}"
        else:
            made = SharedVmdk(name=disk_name, size_gb=disk.size_gb or 0, datastore=_datastore(disk.file), unit=unit)
            what = f"shared VMDK {disk.file}"
    except (ValidationError, ValueError) as exc:
        raise ImportRefused(f"SCSI {bus}:{unit} ({disk.file}) cannot be written as a shared disk: {exc}") from None
    notes[f"spec.sharedDisks.disks[{index}]"] = [f"SCSI {bus}:{unit} of every node: {what}."]
    return made


def _networks(nodes: list[ObservedVm], notes: dict[str, list[str]]) -> Networks:
    first = nodes[0]
    if not first.nics or not first.nics[0].network:
        raise ImportRefused(f"{first.name}'s first network adapter is on no port group: it names the production one")
    production = first.nics[0].network
    shared = [
        n.network
        for n in first.nics
        if n.network and all(any(m.network == n.network for m in vm.nics) for vm in nodes[1:])
    ]
    if production not in shared:
        raise ImportRefused(
            f"{first.name}'s first adapter is on {production}, which {nodes[1].name} has no adapter on: the "
            "production network is the same port group on both nodes"
        )
    heartbeat = next((p for p in shared if p != production), None)
    roles = {"production": production, "heartbeat": heartbeat}
    made: dict[str, Network] = {}
    for role, portgroup in roles.items():
        if portgroup is None:
            continue
        adapters = {vm.name: next(n.adapter for n in vm.nics if n.network == portgroup) for vm in nodes}
        if len(set(adapters.values())) > 1:
            seen = ", ".join(f"{a} on {vm}" for vm, a in adapters.items())
            raise ImportRefused(f"the nodes' {role} adapters on {portgroup} differ ({seen}): the file has one type")
        try:
            made[role] = Network(portgroup=portgroup, adapter=AdapterType(adapters[first.name]))
        except ValueError:
            raise ImportRefused(
                f"{first.name}'s {role} adapter on {portgroup} is of a type the desired file does not name"
            ) from None
    notes["spec.networks"] = [
        f"production: the port group of {first.name}'s first adapter; heartbeat: "
        + ("the next port group every node has an adapter on." if heartbeat else "none shared by the nodes.")
    ]
    return Networks(**made)


def _host_options(observed: Observed, nodes: list[ObservedVm], notes: dict[str, list[str]]) -> dict[str, int] | None:
    hosts = sorted({vm.host for vm in nodes if vm.host in observed.hosts})
    options: dict[str, int] = {}
    mixed = []
    for key, default in DEFAULT_HOST_OPTIONS.items():
        values = {h: observed.hosts[h].options.get(key) for h in hosts}
        ints = [v for v in values.values() if isinstance(v, int)]
        if ints and len(ints) == len(values) and len(set(ints)) == 1:
            options[key] = ints[0]
        elif ints:
            options[key] = default
            mixed.append(f"{key} ({', '.join(f'{h} {v}' for h, v in values.items())}: written as {default})")
    if not options:
        return None
    notes["spec.hostOptions"] = [f"As {' and '.join(hosts)} show them (the options the defaults cover)."]
    if mixed:
        notes["spec.hostOptions"].append("The hosts differ on " + "; ".join(mixed) + ".")
    return options


def _placement(observed: Observed, nodes: list[ObservedVm], own: str, notes: dict[str, list[str]]) -> Placement:
    vsc = observed.clusters.get(nodes[0].cluster or "")
    if vsc is None:
        return Placement()
    drs = next((vsc.drs_overrides[vm.name] for vm in nodes if vm.name in vsc.drs_overrides), None)
    ha = next((vsc.ha_overrides[vm.name] for vm in nodes if vm.name in vsc.ha_overrides), None)
    vms = sorted(vm.name for vm in nodes)
    rule = vsc.rules.get(own) or next((r for _, r in sorted(vsc.rules.items()) if sorted(r.vms) == vms), None)
    if len(nodes) < 2:
        rule = None  # physical-to-virtual: no VM-VM rule
    said = [
        f"From vSphere cluster {vsc.name}: DRS override {drs or 'none (the default is written)'}, "
        f"HA override {ha or 'none (the default is written)'}, "
        + (f"VM-VM rule {rule.name} ({rule.kind})." if rule else "no VM-VM rule of the nodes."),
    ]
    if rule is not None and rule.name != own:
        said.append(f"mscsctl keeps its own rule, {own}: the next apply creates it; then delete {rule.name} by hand.")
    notes["spec.placement"] = said
    return Placement(
        drs=DrsBehavior(drs) if drs else DrsBehavior.DISABLED,
        ha=HaRestart(ha) if ha else HaRestart.DISABLED,
        separate_hosts=None if rule is None else rule.kind == "anti-affinity",
    )


# --- the desired file, as commented YAML ---------------------------------------------------------

COMMENT_WIDTH = 98
_GAPS = ("spec.nodes", "spec.sharedDisks", "spec.networks", "spec.hostOptions", "spec.guest", "spec.placement")


def render_desired(inferred: Inferred, *, file: str, now: str) -> str:
    """The desired file's text: YAML with a comment before each value saying where it came from."""
    data = inferred.cluster.to_yaml_dict()
    if not inferred.notes.get("spec.placement"):
        data["spec"].pop("placement", None)  # not in a vSphere cluster: no override, no rule
    spec = inferred.cluster.spec
    lines = [
        f"# Written by `mscsctl import` from what vCenter showed at {now} (datacenter {spec.datacenter},",
        f"# VMs {', '.join(spec.vm_names)}). Nothing was changed in vCenter. The state records each object",
        "# below that vCenter shows as found, not created by mscsctl: mscsctl never deletes it.",
        "#",
        f"#   mscsctl validate {file}",
        f"#   mscsctl plan {file} --detailed-exitcode     # exit 0: vCenter matches this file",
        "#   (the guests are asked with MSCSCTL_GUEST_USER/PASSWORD; without them add --skip-guest,",
        "#   else the guests left unchecked make it exit 1)",
    ]
    _emit(lines, data, "", 0, inferred.notes)
    return "\n".join(lines) + "\n"


def _emit(lines: list[str], value: Any, path: str, indent: int, notes: dict[str, list[str]]) -> None:
    pad = " " * indent
    if isinstance(value, dict):
        for key, item in value.items():
            sub = f"{path}.{key}" if path else key
            if sub in _GAPS:
                lines.append("")
            lines += _comments(pad, notes.get(sub, ()))
            if isinstance(item, dict | list) and item:
                lines.append(f"{pad}{_scalar(key)}:")
                _emit(lines, item, sub, indent + 2, notes)
            else:
                lines.append(f"{pad}{_scalar(key)}: {_scalar(item)}")
        return
    for i, item in enumerate(value):
        sub = f"{path}[{i}]"
        lines += _comments(pad, notes.get(sub, ()))
        if isinstance(item, dict):
            inner: list[str] = []
            _emit(inner, item, sub, indent + 2, {})
            lines.append(f"{pad}- {inner[0].lstrip()}")
            lines += inner[1:]
        else:
            lines.append(f"{pad}- {_scalar(item)}")


def _comments(pad: str, notes: Iterable[str]) -> list[str]:
    width = max(COMMENT_WIDTH - len(pad), 40)
    return [f"{pad}# {line}" for note in notes for line in textwrap.wrap(note, width, break_on_hyphens=False)]


def _scalar(value: Any) -> str:
    """A YAML scalar that reads back as `value` under YAML 1.2 and 1.1 alike."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if value == []:
        return "[]"
    text = str(value)
    if _PLAIN.fullmatch(text) and text.lower() not in _YAML_WORDS:
        return text
    return json.dumps(text, ensure_ascii=False)


# --- the state, as if applied ----------------------------------------------------------------------


def adopted_state(
    cluster: FailoverCluster, observed: Observed, *, desired_hash: str, now: str, lineage: str | None = None
) -> State:
    """The state an apply of `cluster` (defaults filled) would leave, for what vCenter already shows.

    Each object of the desired tree that vCenter shows with the file's values is recorded with
    its identity (VM moref, device key, file, host moref, rule key) and `created_by_mscsctl`
    false, through `record_outcome` as an outcome "already satisfied". Objects that differ are
    left out: the next plan shows them.
    """
    version = target_version(cluster, observed)
    ctx = normalize.context(cluster, observed, version)
    desired = normalize.desired_tree(cluster, ctx, observed)
    current, _ = normalize.observed_tree(cluster, observed, ctx, {})
    state = State.new(cluster.name, desired_hash, now=now)
    if lineage is not None:
        state = state.model_copy(update={"lineage": lineage})
    for address in sorted(desired.keys() & current.keys()):
        payload = desired[address]
        if payload.differing(current[address]):
            continue
        kind = next(a for a in kind_named(address.kind).actions if a not in _UNDOING)
        action = Action(
            id=f"{address}#{kind}",
            address=address,
            kind=kind,
            op=Op.CREATE,
            target=address.owner or address.name,
            after=payload,
            reason=Reason.MISSING,
        )
        found = Outcome(action, OutcomeStatus.SKIPPED, _identity(cluster, observed, address, payload))
        state = record_outcome(state, found, now)
    return state


def _identity(cluster: FailoverCluster, observed: Observed, address: Address, payload: Payload) -> OutcomeRecord:
    """Which vCenter object an address is, as the vCenter handlers report it after an apply."""
    if address.scope is Scope.HOST:
        return OutcomeRecord(host_moref=observed.hosts[address.owner].moref)
    if address.scope is Scope.VSPHERE_CLUSTER:
        vsc = next((c for c in observed.clusters.values() if address.name in c.rules), None)
        if vsc is not None:
            return OutcomeRecord(cluster_moref=vsc.moref, rule_key=vsc.rules[address.name].key)
        # The VM-Host rule and the HA/DRS options: the nodes' vSphere cluster, as apply records them.
        names = {observed.vms[v].cluster for v in cluster.spec.vm_names if v in observed.vms}
        vsc = next(c for c in observed.clusters.values() if c.name in names)
        return OutcomeRecord(cluster_moref=vsc.moref)
    vm = observed.vms[address.owner]
    if isinstance(payload, RdmDiskPayload | VmdkDiskPayload):
        disk = vm.disks[f"{payload.bus}:{payload.unit}"]
        return OutcomeRecord(vm_moref=vm.moref, device_key=disk.key, file=disk.file)
    if address.kind == "controller":
        return OutcomeRecord(vm_moref=vm.moref, device_key=vm.controllers[int(address.name)].key)
    if address.kind == "nic":
        nic = nics_by_role(cluster, vm.name, vm.nics, {})[address.name]
        return OutcomeRecord(vm_moref=vm.moref, device_key=nic.key, pci_slot=nic.pci_slot)
    vsc = observed.clusters.get(vm.cluster or "")
    return OutcomeRecord(vm_moref=vm.moref, cluster_moref=vsc.moref if vsc is not None else None)


def split_pending(plan: Plan) -> tuple[list[Action], list[Action]]:
    """A plan made right after an import: (actions on a node's devices, everything else).

    The first list is empty when the file describes every node as vCenter shows it; the second
    is what the file asks of the hosts, the vSphere cluster and power that vCenter lacks.
    """
    devices = [a for a in plan.actions if a.address.on_node and a.address.kind in NODE_DEVICE_KINDS]
    return devices, [a for a in plan.actions if a not in devices]


# --- the command's run: read vCenter, write the file and the state ------------------------------


@dataclass(frozen=True)
class ImportResult:
    desired_file: Path
    state: str  # where the state was written
    cluster: FailoverCluster  # as written
    recorded: int  # objects in the state
    findings: list[Finding]  # the rule catalogue's warnings, located in the file
    pending: list[Action]  # what the next plan still does (hosts, vSphere cluster, power)
    unmanaged: list[str]  # devices of the nodes that are not the cluster's: left alone


def import_cluster(
    request: ImportRequest,
    *,
    out: Path | None = None,
    connection: Connection | None = None,
    state: str | None = None,
    state_dir: str | None = None,
    force: bool = False,
    now: str | None = None,
) -> ImportResult:
    """Read vCenter, then write the desired file and its state; nothing in vCenter changes.

    The state goes where `plan` and `apply` of that one file look for it (`--state`,
    `--state-dir`, `MSCSCTL_STATE`, else beside the file); an existing state or desired file
    is refused unless `force` (a forced state keeps the lineage of the one it replaces, whose
    previous version the backend keeps as its backup).
    """
    now = now or utc_now()
    observed, request = _read_vcenter(request, connection or Connection())
    inferred = infer_cluster(observed, request)
    path = out or Path(f"{inferred.cluster.name}.yaml")
    text = render_desired(inferred, file=str(path), now=now)
    raw = text.encode()
    loaded = load_bytes(raw, str(path))
    if loaded.cluster != inferred.cluster:
        raise MscsError(f"internal error: the desired file written for {path} reads back differently")
    loaded.raw = raw
    desired = Desired(path, loaded, with_defaults(inferred.cluster), desired_file_hash(raw))
    backend = StateLocation.for_targets(Targets(path, False, [desired]), state=state, state_dir=state_dir).backend(
        desired
    )
    existing = backend.read()
    if not force and (path.exists() or existing is not None):
        there = f"the desired file {path}" if path.exists() else f"a state at {backend.describe()}"
        raise ImportRefused(f"{there} exists already: nothing was written (--force replaces it)")
    adopted = adopted_state(
        desired.cluster, observed, desired_hash=desired.hash, now=now, lineage=existing.lineage if existing else None
    )
    # The plan `mscsctl plan FILE` will make next: its rule errors refuse the import, its warnings are printed.
    plan = build_plan(
        desired.cluster, observed, managed=adopted.managed(), desired_file=str(path), locate=desired.locate
    )
    devices, pending = split_pending(plan)
    if devices:
        said = "; ".join(f"{a.kind} {a.address}" for a in devices)
        raise ImportRefused(
            f"the desired file cannot describe the nodes as vCenter shows them: the next apply would {said}"
        )
    write_private(path, text)
    with locked(backend, "import"):
        stored = backend.read()
        if stored is not None and not force:
            raise ImportRefused(f"a state at {backend.describe()} appeared meanwhile: the state was not written")
        backend.write(adopted, expected_serial=stored.serial if stored is not None else None)
    return ImportResult(
        path, backend.describe(), inferred.cluster, len(adopted.resources), plan.findings, pending, plan.unmanaged
    )


def _read_vcenter(request: ImportRequest, connection: Connection) -> tuple[Observed, ImportRequest]:
    """The one read of the nodes (found by name, or by pattern first), and the request naming them."""
    from providers.vcenter.connection import connect
    from providers.vcenter.inventory import vms_matching
    from providers.vcenter.observe import observe

    if request.vms and (request.vsphere_cluster or request.vm_pattern):
        raise MscsError("give the nodes with --vm, or with --cluster and --vm-pattern, not both")
    if not request.vms and not (request.vsphere_cluster and request.vm_pattern):
        raise MscsError("give the nodes with --vm NAME (node 1 first), or with --cluster and --vm-pattern")
    with connect(connection.settings()) as session:
        names = list(request.vms)
        if not names:
            names = vms_matching(session, request.datacenter, request.vsphere_cluster or "", request.vm_pattern or "")
        return observe(session, request.datacenter, names), replace(request, vms=tuple(names))
