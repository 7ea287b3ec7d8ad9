"""The desired-state file, as pydantic models.

Field names are the YAML names (camelCase aliases); `Field(description=...)` feeds
`mscsctl schema`. The models only check shape and types. Whether a combination is
supported by VMware is the rule catalogue's job (`reconciler/rules/`), so that every
such finding carries a rule ID and a source.

Defaults that depend on the topology, the guest OS or the vSphere version are left as
None here and filled by `with_defaults()`, so that `validate --show-defaults` can show
what the file means and rules can tell a written value from a default.
"""

from __future__ import annotations

from collections.abc import Iterator
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag
from pydantic.alias_generators import to_camel

API_VERSION = "mscsctl/v1"
KIND = "FailoverCluster"


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        populate_by_name=True,
        alias_generator=to_camel,
        use_enum_values=False,
    )

    def to_yaml_dict(self) -> dict[str, Any]:
        """The model as the YAML file would write it (aliases, enums as strings)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class Topology(StrEnum):
    CLUSTER_IN_A_BOX = "cluster-in-a-box"
    CLUSTER_ACROSS_BOXES = "cluster-across-boxes"
    PHYSICAL_TO_VIRTUAL = "physical-to-virtual"


class GuestOS(StrEnum):
    WINDOWS_2003 = "windows2003"
    WINDOWS_2008 = "windows2008"
    WINDOWS_2012 = "windows2012"
    WINDOWS_2016 = "windows2016"
    WINDOWS_2019 = "windows2019"
    WINDOWS_2022 = "windows2022"
    WINDOWS_2025 = "windows2025"


class ControllerType(StrEnum):
    LSILOGIC = "lsilogic"
    LSILOGIC_SAS = "lsilogic-sas"
    PVSCSI = "pvscsi"
    NVME = "nvme"  # vSphere 8.0 U2+, Windows Server 2022+, clustered VMDKs only

    @property
    def is_nvme(self) -> bool:
        return self is ControllerType.NVME


# The highest unit a controller of each type takes (the rules say which version allows what):
# SCSI 0-15 (7 is the controller's own); PVSCSI up to 64 targets on hardware version 14+;
# NVMe 64 namespaces on hardware version 21 (the one a shared NVMe controller needs), 15 before.
MAX_UNIT: dict[ControllerType, int] = {
    ControllerType.LSILOGIC: 15,
    ControllerType.LSILOGIC_SAS: 15,
    ControllerType.PVSCSI: 64,
    ControllerType.NVME: 63,
}


class BusSharing(StrEnum):
    NONE = "none"
    VIRTUAL = "virtual"
    PHYSICAL = "physical"


class Compatibility(StrEnum):
    PHYSICAL = "physical"
    VIRTUAL = "virtual"


class AdapterType(StrEnum):
    VMXNET3 = "vmxnet3"
    VMXNET2 = "vmxnet2"
    VMXNET = "vmxnet"
    E1000 = "e1000"
    E1000E = "e1000e"


class DrsBehavior(StrEnum):
    """Per-VM DRS override for a node (`drsVmConfig`)."""

    DISABLED = "disabled"
    MANUAL = "manual"
    PARTIALLY_AUTOMATED = "partiallyAutomated"
    FULLY_AUTOMATED = "fullyAutomated"


class HaRestart(StrEnum):
    """Per-VM HA override for a node (`dasVmConfig` restart priority)."""

    DISABLED = "disabled"
    ENABLED = "enabled"


class Metadata(_Model):
    name: str = Field(
        min_length=1,
        max_length=63,
        pattern=r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$",
        description="Cluster name: lower-case letters, digits and '-'. Used in addresses, "
        "state file names and the names of the vSphere rules mscsctl creates.",
    )


class CredentialsEnv(_Model):
    """Names of environment variables that hold a node's guest credentials (never the values)."""

    user: str = Field(description="Environment variable holding the guest user name.")
    password: str = Field(description="Environment variable holding the guest password.")


class VmNode(_Model):
    vm: str = Field(min_length=1, description="Name of the virtual machine in vCenter.")
    credentials_env: CredentialsEnv | None = Field(
        default=None,
        description="Per-node guest credential variables; default MSCSCTL_GUEST_USER / MSCSCTL_GUEST_PASSWORD.",
    )

    @property
    def name(self) -> str:
        return self.vm


class WinRM(_Model):
    address: str = Field(min_length=1, description="Host name or address of the physical node.")
    port: int = Field(default=5986, ge=1, le=65535, description="WinRM port.")
    ssl: bool = Field(default=True, description="HTTPS (5986) rather than HTTP (5985).")


class PhysicalNode(_Model):
    physical: str = Field(min_length=1, description="Name of the physical Windows node.")
    winrm: WinRM | None = Field(default=None, description="How to reach the physical node for guest settings.")
    credentials_env: CredentialsEnv | None = Field(
        default=None, description="Guest credential variables for WinRM; default as for VM nodes."
    )

    @property
    def name(self) -> str:
        return self.physical


def _node_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        if "vm" in value:
            return "vm"
        if "physical" in value:
            return "physical"
        return None
    if isinstance(value, VmNode):
        return "vm"
    if isinstance(value, PhysicalNode):
        return "physical"
    return None


Node = Annotated[
    Annotated[VmNode, Tag("vm")] | Annotated[PhysicalNode, Tag("physical")],
    Discriminator(
        _node_kind,
        custom_error_type="node_kind",
        custom_error_message="a node is either `vm: NAME` or `physical: NAME`",
    ),
]


class SharedDiskController(_Model):
    bus: int = Field(default=1, ge=0, le=3, description="Bus number of the controller (SCSI bus 0 holds the OS disk).")
    type: ControllerType | None = Field(
        default=None,
        description="Default: lsilogic for Windows 2003, lsilogic-sas later. `nvme` (vSphere 8.0 U2+, "
        "Windows Server 2022+) only with clustered VMDKs.",
    )
    sharing: BusSharing | None = Field(
        default=None,
        description="SCSI bus sharing. Default: virtual for cluster-in-a-box, physical otherwise.",
    )


def _disk_bus() -> Any:
    return Field(
        default=None,
        ge=0,
        le=3,
        description="Bus of the shared controller the disk sits on. Default: the controller's bus, the "
        "next one once it is full. Each bus in use gets a controller like `controller`, on every node.",
    )


class RdmDisk(_Model):
    """A SAN LUN mapped as a raw device mapping: node 1 creates the mapping file, node 2 attaches it."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$", description="Name of the disk in plans and state.")
    lun: str = Field(
        pattern=r"^(naa|eui|t10|mpx)\.[0-9A-Za-z.:_-]+$",
        description="Canonical name of the LUN, e.g. naa.6006016012345678000000000000a001.",
    )
    unit: int | None = Field(default=None, ge=0, le=64, description="Unit on the shared controller; default: in order.")
    bus: int | None = _disk_bus()
    compatibility: Compatibility | None = Field(
        default=None, description="RDM compatibility mode. Default from the topology."
    )
    mapping_datastore: str = Field(min_length=1, description="VMFS datastore that holds the mapping (proxy) file.")


class SharedVmdk(_Model):
    """A shared virtual disk (cluster in a box): node 1 creates it eager-zeroed thick, node 2 attaches it."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$", description="Name of the disk in plans and state.")
    size_gb: int = Field(alias="sizeGB", ge=1, le=62 * 1024, description="Size in GiB.")
    datastore: str = Field(min_length=1, description="Datastore that holds the shared VMDK.")
    unit: int | None = Field(default=None, ge=0, le=64, description="Unit on the shared controller; default: in order.")
    bus: int | None = _disk_bus()


CLUSTERED_VMDK = "clusteredVmdk"


class ClusteredVmdk(SharedVmdk):
    """A clustered VMDK (cluster across boxes, vSphere 7.0+): a VMDK on a datastore with
    clustered-VMDK support, whose SCSI-3 reservations ESXi arbitrates. Node 1 creates it
    eager-zeroed thick, every other node attaches it at the same bus:unit."""

    type: Literal["clusteredVmdk"] = Field(description="`clusteredVmdk`: what makes this disk a clustered VMDK.")
    datastore: str = Field(
        min_length=1,
        description="VMFS6 datastore on Fibre Channel with clustered-VMDK support (enabled by the plan "
        "where vCenter allows it).",
    )


def _disk_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        if value.get("type") is not None:
            return "clustered-vmdk" if value.get("type") == CLUSTERED_VMDK else None
        if "lun" in value:
            return "rdm"
        if "sizeGB" in value or "size_gb" in value:
            return "vmdk"
        return None
    if isinstance(value, RdmDisk):
        return "rdm"
    if isinstance(value, ClusteredVmdk):
        return "clustered-vmdk"
    if isinstance(value, SharedVmdk):
        return "vmdk"
    return None


SharedDisk = Annotated[
    Annotated[RdmDisk, Tag("rdm")]
    | Annotated[SharedVmdk, Tag("vmdk")]
    | Annotated[ClusteredVmdk, Tag("clustered-vmdk")],
    Discriminator(
        _disk_kind,
        custom_error_type="disk_kind",
        custom_error_message="a shared disk has `lun:` (an RDM), `sizeGB:` (a shared VMDK) or "
        "`type: clusteredVmdk` with `sizeGB:` (a clustered VMDK)",
    ),
]


class SharedDisks(_Model):
    controller: SharedDiskController = Field(
        default_factory=SharedDiskController,
        description="The SCSI controller of the shared disks, the same on every node.",
    )
    disks: list[SharedDisk] = Field(
        default_factory=list,
        description="Each shared disk: an RDM (`lun:`), a shared VMDK (`sizeGB:`) or a clustered VMDK "
        "(`type: clusteredVmdk`).",
    )


class Network(_Model):
    portgroup: str = Field(min_length=1, description="Port group (standard or distributed).")
    adapter: AdapterType = Field(default=AdapterType.VMXNET3, description="Virtual network adapter type.")


NIC_ROLES = ("production", "heartbeat")


class Networks(_Model):
    production: Network | None = Field(default=None, description="The network clients use.")
    heartbeat: Network | None = Field(default=None, description="The cluster's private heartbeat network.")

    def by_role(self) -> Iterator[tuple[str, Network | None]]:
        """Each network role in adapter order (production first), with its network if the file has one."""
        for role in NIC_ROLES:
            yield role, getattr(self, role)


class Guest(_Model):
    disk_timeout_seconds: int = Field(
        default=60,
        ge=1,
        le=4294967,
        description="HKLM\\System\\CurrentControlSet\\Services\\Disk\\TimeOutValue, in seconds.",
    )


# VMware supports HA and DRS for clustered VMs from the vSphere 4.1 guide on (KB 2147661 for
# 6.x, the 7.x/8.x guides): the nodes' HA restart is on by default from there.
HA_SUPPORTED_SINCE = (4, 1)


def default_ha(version: tuple[int, int] | None) -> HaRestart:
    """The nodes' HA restart when the file leaves it out: on where VMware supports HA for
    clustered VMs (and when the version is not known yet: every supported release does)."""
    return HaRestart.DISABLED if version is not None and version < HA_SUPPORTED_SINCE else HaRestart.ENABLED


class Placement(_Model):
    drs: DrsBehavior = Field(default=DrsBehavior.DISABLED, description="Per-VM DRS automation.")
    ha: HaRestart | None = Field(
        default=None,
        description="Per-VM HA restart. Default from the vSphere version: enabled from 4.1 (VMware "
        "supports HA for clustered VMs), disabled before.",
    )
    separate_hosts: bool | None = Field(
        default=None,
        description="true: VM-VM anti-affinity rule (across boxes); false: affinity (in a box). "
        "Default from the topology.",
    )
    vm_host_rule: bool | None = Field(
        default=None,
        description="A VM-Host rule: the nodes (a VM group) must run on the hosts that reach their shared "
        "disks (a host group). vSphere HA does not obey VM-VM rules; it obeys this one. Default: true "
        "from vSphere 6.5 where the nodes' vSphere cluster has HA on.",
    )
    respect_vm_vm_anti_affinity_rules: bool | None = Field(
        default=None,
        description="Set the vSphere cluster's HA option das.respectVmVmAntiAffinityRules (vSphere 5.5+), so "
        "that HA keeps the nodes apart on failover. A setting of the whole vSphere cluster: left alone "
        "unless written (true sets it to true, false to false).",
    )
    force_affine_poweron: bool | None = Field(
        default=None,
        description="Set the vSphere cluster's DRS option ForceAffinePoweron (1: power-on obeys affinity "
        "rules strictly). A setting of the whole vSphere cluster: left alone unless written.",
    )


DEFAULT_HOST_OPTIONS: dict[str, int] = {
    "Disk.ResetOnFailure": 1,
    "Disk.UseLunReset": 1,
    "Disk.UseDeviceReset": 0,
}


class ClusterSpec(_Model):
    topology: Topology = Field(
        description="cluster-in-a-box: both VMs on one host; cluster-across-boxes: VMs on different hosts; "
        "physical-to-virtual: a physical server and a VM."
    )
    vcenter: str | None = Field(
        default=None,
        min_length=1,
        pattern=r"^[^@\s]+$",
        description="The vCenter the cluster lives in (host, host:port or https://host/sdk) when a fleet spans "
        "several; default: $VSPHERE_SERVER. Its login comes from the credentials file, never from here.",
    )
    datacenter: str = Field(min_length=1, description="vCenter datacenter of the nodes, datastores and port groups.")
    guest_os: GuestOS = Field(alias="guestOS", description="Windows Server version of the nodes.")
    vsphere_version: str = Field(
        default="auto",
        pattern=r"^(auto|\d+\.\d+(\.\d+)?)$",
        description="'auto' reads it from the hosts; or e.g. \"6.7\" to pin the rule set.",
    )
    nodes: list[Node] = Field(
        default_factory=list,
        description="The nodes, node 1 first: `vm: NAME`, or `physical: NAME` (physical-to-virtual). "
        "Two, or up to the vSphere version's node limit across boxes.",
    )
    shared_disks: SharedDisks = Field(default_factory=SharedDisks, description="The disks the nodes share.")
    networks: Networks = Field(
        default_factory=Networks, description="Port groups; each VM node gets one adapter on each network."
    )
    host_options: dict[str, int] | None = Field(
        default=None, description="Host advanced options; omitted keys take the defaults."
    )
    guest: Guest = Field(default_factory=Guest, description="Settings inside the guests.")
    placement: Placement = Field(
        default_factory=Placement, description="DRS/HA overrides for the nodes and their VM-VM rule."
    )

    @property
    def shared_buses(self) -> list[int]:
        """The buses of the shared controllers, the controller's own first: every bus a disk sits on
        (disks without a bus: the controller's)."""
        own = self.shared_disks.controller.bus
        return [own, *sorted({d.bus for d in self.shared_disks.disks if d.bus is not None} - {own})]

    @property
    def clustered_vmdks(self) -> list[tuple[int, ClusteredVmdk]]:
        """The clustered VMDKs (`type: clusteredVmdk`), with their index in the file."""
        return [(i, d) for i, d in enumerate(self.shared_disks.disks) if isinstance(d, ClusteredVmdk)]

    @property
    def vm_names(self) -> list[str]:
        return [n.vm for n in self.nodes if isinstance(n, VmNode)]

    @property
    def node_names(self) -> list[str]:
        """Every node, VM or physical, in file order."""
        return [n.name for n in self.nodes]


class FailoverCluster(_Model):
    api_version: Literal["mscsctl/v1"] = Field(alias="apiVersion", description="Format version of the file.")
    kind: Literal["FailoverCluster"] = Field(description="What the file describes.")
    metadata: Metadata = Field(description="The cluster's identity.")
    spec: ClusterSpec = Field(description="The cluster's desired state.")

    @property
    def name(self) -> str:
        return self.metadata.name


def parse_version(text: str) -> tuple[int, int]:
    """'8.0.2' -> (8, 0)."""
    major, minor, *_ = ([*text.split("."), "0"])[:3]
    return int(major), int(minor)


class _Slots:
    """The free units of the shared buses, for disks the file gives no unit: in file order, on the
    disk's bus, or (no bus written) on the controller's bus and then the next buses once it is full."""

    def __init__(self, bus: int, top: int, disks: list[Any]) -> None:
        self.bus, self.top = bus, top
        self.used = {(d.bus if d.bus is not None else bus, d.unit) for d in disks if d.unit is not None}

    def next_free(self, bus: int | None) -> tuple[int | None, int | None]:
        buses = [bus] if bus is not None else [self.bus, *(b for b in range(1, 4) if b > self.bus)]
        for candidate in buses:
            unit = next((u for u in range(self.top + 1) if u != 7 and (candidate, u) not in self.used), None)
            if unit is not None:
                self.used.add((candidate, unit))
                return candidate, unit
        return buses[0], None


def with_defaults(cluster: FailoverCluster, version: tuple[int, int] | None = None) -> FailoverCluster:
    """Fill every default that depends on the topology or the guest OS, and, when the vSphere
    version is known (`version`, or pinned in the file), those that depend on it (HA)."""
    if version is None and cluster.spec.vsphere_version != "auto":
        version = parse_version(cluster.spec.vsphere_version)
    spec = cluster.spec
    topo = spec.topology
    controller = spec.shared_disks.controller
    controller = controller.model_copy(
        update={
            "type": controller.type
            or (ControllerType.LSILOGIC if spec.guest_os is GuestOS.WINDOWS_2003 else ControllerType.LSILOGIC_SAS),
            "sharing": controller.sharing
            or (BusSharing.VIRTUAL if topo is Topology.CLUSTER_IN_A_BOX else BusSharing.PHYSICAL),
        }
    )
    slots = _Slots(controller.bus, MAX_UNIT[controller.type], spec.shared_disks.disks)
    disks = []
    for disk in spec.shared_disks.disks:
        update: dict[str, Any] = {}
        if disk.unit is None:
            update["bus"], update["unit"] = slots.next_free(disk.bus)
        elif disk.bus is None:
            update["bus"] = controller.bus
        if isinstance(disk, RdmDisk) and disk.compatibility is None:
            update["compatibility"] = (
                Compatibility.VIRTUAL if topo is Topology.CLUSTER_IN_A_BOX else Compatibility.PHYSICAL
            )
        disks.append(disk.model_copy(update=update))
    placement = spec.placement
    if placement.separate_hosts is None:
        placement = placement.model_copy(update={"separate_hosts": topo is Topology.CLUSTER_ACROSS_BOXES})
    if placement.ha is None and version is not None:
        placement = placement.model_copy(update={"ha": default_ha(version)})
    new_spec = spec.model_copy(
        update={
            "shared_disks": SharedDisks(controller=controller, disks=disks),
            "host_options": {**DEFAULT_HOST_OPTIONS, **(spec.host_options or {})},
            "placement": placement,
        }
    )
    return cluster.model_copy(update={"spec": new_spec})
