"""What vCenter shows, as plain data: the provider's one read turned into pydantic models.

Shapes follow the desired side so the two can be compared: devices by bus:unit, options by
key, rules by name, everything keyed by the names a desired file uses. No pyvmomi object
ever leaves `providers/vcenter`; these models are all the rest of the code sees.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from reconciler.spec import parse_version


class _Observed(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ObservedLun(_Observed):
    canonical_name: str
    uuid: str
    capacity_bytes: int | None = None
    vendor: str = ""
    model: str = ""
    device_path: str = ""
    perennially_reserved: bool = False
    transport: str = "unknown"  # fc | iscsi | local | unknown: the adapter the LUN is reached through


class ObservedHba(_Observed):
    device: str
    model: str = ""
    driver: str = ""
    kind: str = "other"  # fc | iscsi | other

    @property
    def vendor(self) -> str:
        """qlogic | emulex | other, from the model and driver strings vCenter shows."""
        text = f"{self.model} {self.driver}".lower()
        if "qlogic" in text or "qla" in text or "qln" in text or "isp2" in text:
            return "qlogic"
        if "emulex" in text or "lpfc" in text or text.strip().startswith("lp"):
            return "emulex"
        return "other"


class ObservedHost(_Observed):
    name: str
    moref: str
    version: str = ""
    cluster: str | None = None  # name of the vSphere cluster the host belongs to
    luns: dict[str, ObservedLun] = Field(default_factory=dict)  # by canonical name
    hbas: list[ObservedHba] = Field(default_factory=list)
    datastores: list[str] = Field(default_factory=list)
    networks: list[str] = Field(default_factory=list)
    options: dict[str, int | str | None] = Field(default_factory=dict)
    option_manager: str | None = None  # moref of the host's advanced-option manager
    storage_system: str | None = None  # moref of the host's storage system
    datastore_system: str | None = None  # moref of the host's datastore system (clustered-VMDK support)

    @property
    def version_tuple(self) -> tuple[int, int] | None:
        return parse_version(self.version) if self.version else None


class ObservedDatastore(_Observed):
    name: str
    moref: str
    type: str  # VMFS | NFS | NFS41 | vsan | VVOL
    extents: list[str] = Field(default_factory=list)  # canonical names of backing LUNs
    hosts: list[str] = Field(default_factory=list)
    # Clustered-VMDK facts, read for the datastores the file names (None: not read, or not shown).
    clustered_vmdk_supported: bool | None = None  # capability.clusteredVmdkSupported: support enabled
    vmfs_major_version: int | None = None  # info.vmfs.majorVersion
    scsi_disk_type: str | None = None  # info.vmfs.scsiDiskType: native512 | emulated512 | native4k ...
    host_versions: dict[str, str] = Field(default_factory=dict)  # mounting host -> ESXi version, when read


def disk_slot(bus: int, unit: int | None, adapter: str | None = None) -> str:
    """Where a disk sits on a node: `1:0` (SCSI bus 1, unit 0) or `nvme1:0` (NVMe controller 1)."""
    return f"{'nvme' if adapter == 'nvme' else ''}{bus}:{unit}"


class ObservedController(_Observed):
    key: int
    bus: int
    type: str  # lsilogic | lsilogic-sas | pvscsi | buslogic | other
    sharing: str  # none | virtual | physical
    pci_slot: int | None = None


class ObservedDisk(_Observed):
    key: int
    bus: int
    unit: int
    kind: str  # rdm | vmdk
    file: str = ""  # "[datastore] path/name.vmdk": mapping file for an RDM
    lun: str | None = None  # canonical name, for an RDM
    lun_uuid: str | None = None
    compatibility: str | None = None  # physical | virtual, for an RDM
    size_gb: int | None = None
    thin: bool | None = None
    eager_zeroed: bool | None = None
    sharing: str | None = None  # the backing's multi-writer sharing, when shown
    adapter: str = "scsi"  # scsi | nvme: the kind of controller it hangs on

    @property
    def slot(self) -> str:
        return disk_slot(self.bus, self.unit, self.adapter)


class ObservedNic(_Observed):
    key: int
    adapter: str  # vmxnet3 | vmxnet2 | vmxnet | e1000 | e1000e | other
    network: str = ""  # port group name
    pci_slot: int | None = None
    mac: str = ""


class ObservedVm(_Observed):
    name: str
    moref: str
    host: str = ""  # host name
    cluster: str | None = None  # vSphere cluster name
    power_state: str = "poweredOff"  # poweredOn | poweredOff | suspended
    change_version: str = ""
    hardware_version: str = ""
    guest_id: str = ""
    tools_running: bool = False
    # Read for the node VMs only (None: not read): what a clustered node must not have.
    guest_full_name: str = ""  # guest.guestFullName as VMware Tools report it; "" when they do not
    snapshots: list[str] | None = None  # the names of the VM's snapshots, depth first
    cpu_hot_add: bool | None = None  # config.cpuHotAddEnabled
    memory_hot_add: bool | None = None  # config.memoryHotAddEnabled
    fault_tolerance: str | None = None  # runtime.faultToleranceState: notConfigured, running, ...
    controllers: dict[int, ObservedController] = Field(default_factory=dict)  # SCSI, by bus
    nvme_controllers: dict[int, ObservedController] = Field(default_factory=dict)  # NVMe, by bus
    disks: dict[str, ObservedDisk] = Field(default_factory=dict)  # by slot: "bus:unit", NVMe "nvmeBUS:unit"
    nics: list[ObservedNic] = Field(default_factory=list)  # in device-key order

    @property
    def powered_on(self) -> bool:
        return self.power_state == "poweredOn"

    def controller_on(self, bus: int, nvme: bool = False) -> ObservedController | None:
        """The SCSI controller on `bus`, or with `nvme` the NVMe controller of that number."""
        return (self.nvme_controllers if nvme else self.controllers).get(bus)


class ObservedVmHostRule(_Observed):
    """A VM-Host rule with its two DRS groups' members (by name)."""

    name: str
    key: int
    vm_group: str
    host_group: str
    vms: list[str] = Field(default_factory=list)
    hosts: list[str] = Field(default_factory=list)
    enabled: bool = True
    mandatory: bool = False
    affine: bool = True  # "must/should run on" (false: "must/should not run on")


class ObservedVmRule(_Observed):
    name: str
    key: int
    kind: str  # affinity | anti-affinity
    vms: list[str]
    enabled: bool = True
    mandatory: bool = False


class ObservedCluster(_Observed):
    name: str
    moref: str
    drs_enabled: bool = False
    drs_default_behavior: str = "fullyAutomated"  # drsConfig.defaultVmBehavior: a VM without an override
    ha_enabled: bool = False
    rules: dict[str, ObservedVmRule] = Field(default_factory=dict)  # by rule name
    drs_overrides: dict[str, str] = Field(default_factory=dict)  # vm -> DrsBehavior value
    ha_overrides: dict[str, str] = Field(default_factory=dict)  # vm -> HaRestart value
    hosts: list[str] = Field(default_factory=list)
    # configurationEx.dasConfig.option and .drsConfig.option, key -> value as vCenter shows it
    das_options: dict[str, str] = Field(default_factory=dict)
    drs_options: dict[str, str] = Field(default_factory=dict)
    vm_host_rules: dict[str, ObservedVmHostRule] = Field(default_factory=dict)  # by rule name


class ObservedGuest(_Observed):
    """A node's guest facts (the disk timeout), or why the guest could not be asked.

    `providers.guest.service.observe_node` makes it; the planner and drift read it.
    """

    node: str
    timeout_seconds: int | None = None  # None: absent in the guest, or not observed (see reason)
    reason: str | None = None  # powered-off, tools-not-running, bad-credentials, ...: not observed
    detail: str = ""  # the sentence saying why

    @property
    def available(self) -> bool:
        return self.reason is None


class Observed(_Observed):
    """Everything one cluster's plan needs, read in a constant number of round trips."""

    datacenter: str
    # The VMs asked for that exist, and every VM registered on a host that sees their LUNs (or
    # runs one of them, or mounts a datastore of their shared disks): who else maps a LUN or
    # holds a shared file. By name; a second VM of the same name as "NAME (MOREF)".
    vms: dict[str, ObservedVm] = Field(default_factory=dict)
    hosts: dict[str, ObservedHost] = Field(default_factory=dict)
    datastores: dict[str, ObservedDatastore] = Field(default_factory=dict)
    networks: list[str] = Field(default_factory=list)  # port group names in the datacenter
    network_refs: dict[str, str] = Field(default_factory=dict)  # port group -> "Type:moref"
    clusters: dict[str, ObservedCluster] = Field(default_factory=dict)
    guests: dict[str, ObservedGuest] | None = None  # by node name; None: the guest side is left out

    def host_of(self, vm: str) -> ObservedHost | None:
        node = self.vms.get(vm)
        return self.hosts.get(node.host) if node else None
