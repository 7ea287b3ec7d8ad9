"""Virtual devices, both ways: vSphere device objects -> observed models, and desired -> device specs.

The only module that knows the vSphere class of each controller, disk backing and NIC.
Names in backings are vCenter's, escaped (`%2f` for `/`): the observed models carry them
unescaped, as a desired file writes them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pyVmomi import vim

from providers.vcenter.names import unescape_name
from reconciler.observed import ObservedController, ObservedDisk, ObservedNic

CONTROLLER_CLASSES: dict[str, type] = {
    "lsilogic": vim.vm.device.VirtualLsiLogicController,
    "lsilogic-sas": vim.vm.device.VirtualLsiLogicSASController,
    "pvscsi": vim.vm.device.ParaVirtualSCSIController,
    "nvme": vim.vm.device.VirtualNVMEController,
}
NIC_CLASSES: dict[str, type] = {
    "vmxnet3": vim.vm.device.VirtualVmxnet3,
    "vmxnet2": vim.vm.device.VirtualVmxnet2,
    "vmxnet": vim.vm.device.VirtualVmxnet,
    "e1000e": vim.vm.device.VirtualE1000e,
    "e1000": vim.vm.device.VirtualE1000,
}
SHARING_TO_VIM = {"none": "noSharing", "virtual": "virtualSharing", "physical": "physicalSharing"}
SHARING_FROM_VIM = {v: k for k, v in SHARING_TO_VIM.items()}
COMPAT_TO_VIM = {"physical": "physicalMode", "virtual": "virtualMode"}
COMPAT_FROM_VIM = {v: k for k, v in COMPAT_TO_VIM.items()}


def controller_type(device: Any) -> str:
    # Order matters: subclasses before their bases.
    for name in ("lsilogic-sas", "pvscsi", "lsilogic"):
        if isinstance(device, CONTROLLER_CLASSES[name]):
            return name
    if isinstance(device, vim.vm.device.VirtualBusLogicController):
        return "buslogic"
    return "other"


def nic_type(device: Any) -> str:
    for name in ("vmxnet3", "vmxnet2", "e1000e", "e1000", "vmxnet"):
        if isinstance(device, NIC_CLASSES[name]):
            return name
    return "other"


def _slot(device: Any) -> int | None:
    slot = getattr(device, "slotInfo", None)
    number = getattr(slot, "pciSlotNumber", None)
    return int(number) if number is not None else None


def controllers_of(devices: list[Any]) -> dict[int, ObservedController]:
    """SCSI controllers by device key."""
    out = {}
    for dev in devices:
        if isinstance(dev, vim.vm.device.VirtualSCSIController):
            out[dev.key] = _controller(dev, controller_type(dev))
    return out


def nvme_controllers_of(devices: list[Any]) -> dict[int, ObservedController]:
    """NVMe controllers by device key (their bus sharing from vSphere 8.0 U2: `sharedBus`)."""
    return {
        dev.key: _controller(dev, "nvme") for dev in devices if isinstance(dev, vim.vm.device.VirtualNVMEController)
    }


def _controller(dev: Any, type_: str) -> ObservedController:
    shared = getattr(dev, "sharedBus", None) or "noSharing"
    return ObservedController(
        key=dev.key,
        bus=dev.busNumber,
        type=type_,
        sharing=SHARING_FROM_VIM.get(str(shared), str(shared)),
        pci_slot=_slot(dev),
    )


def disks_of(
    devices: list[Any], controllers: dict[int, ObservedController], luns_by_uuid: Mapping[str, str] | None = None
) -> list[ObservedDisk]:
    """The SCSI and NVMe disks (`controllers`: both kinds, by key; a disk on an NVMe controller
    has `adapter` nvme). `luns_by_uuid` (ScsiLun uuid -> canonical name, from the VM's host)
    names each RDM's LUN by the backing's `lunUuid`: a real ESXi reports
    `/vmfs/devices/disks/vml.…` as the `deviceName`, whose tail is no canonical name."""
    out = []
    for dev in devices:
        if not isinstance(dev, vim.vm.device.VirtualDisk):
            continue
        ctrl = controllers.get(dev.controllerKey)
        if ctrl is None:  # IDE/SATA disks are not part of a failover cluster's shared storage
            continue
        adapter = "nvme" if ctrl.type == "nvme" else "scsi"
        backing = dev.backing
        size_gb = int(dev.capacityInKB // (1024 * 1024)) if dev.capacityInKB else None
        if isinstance(backing, vim.vm.device.VirtualDisk.RawDiskMappingVer1BackingInfo):
            lun = rdm_lun(backing, luns_by_uuid or {})
            out.append(
                ObservedDisk(
                    key=dev.key,
                    bus=ctrl.bus,
                    unit=dev.unitNumber,
                    kind="rdm",
                    file=datastore_path(backing.fileName or ""),
                    lun=lun,
                    lun_uuid=backing.lunUuid,
                    compatibility=COMPAT_FROM_VIM.get(str(backing.compatibilityMode)),
                    size_gb=size_gb,
                    sharing=getattr(backing, "sharing", None),
                    adapter=adapter,
                )
            )
        else:
            out.append(
                ObservedDisk(
                    key=dev.key,
                    bus=ctrl.bus,
                    unit=dev.unitNumber,
                    kind="vmdk",
                    file=datastore_path(getattr(backing, "fileName", "") or ""),
                    size_gb=size_gb,
                    thin=getattr(backing, "thinProvisioned", None),
                    eager_zeroed=getattr(backing, "eagerlyScrub", None),
                    sharing=getattr(backing, "sharing", None),
                    adapter=adapter,
                )
            )
    return sorted(out, key=lambda d: (d.adapter, d.bus, d.unit))


def rdm_lun(backing: Any, luns_by_uuid: Mapping[str, str]) -> str | None:
    """An RDM backing's LUN, by canonical name: the host's LUN with the backing's `lunUuid`, else
    the tail of `deviceName` when that is a canonical name (`naa.…`, not ESXi's `vml.…`)."""
    by_uuid = luns_by_uuid.get(backing.lunUuid or "")
    if by_uuid:
        return by_uuid
    tail = (backing.deviceName or "").rsplit("/", 1)[-1]
    return tail if tail and not tail.startswith("vml.") else None


def nics_of(devices: list[Any], net_names: dict[str, str]) -> list[ObservedNic]:
    out = []
    for dev in devices:
        if not isinstance(dev, vim.vm.device.VirtualEthernetCard):
            continue
        backing = dev.backing
        network = ""
        if isinstance(backing, vim.vm.device.VirtualEthernetCard.NetworkBackingInfo):
            network = unescape_name(backing.deviceName or "") or (
                net_names.get(backing.network._moId, "") if backing.network else ""
            )
        elif isinstance(backing, vim.vm.device.VirtualEthernetCard.DistributedVirtualPortBackingInfo):
            network = net_names.get(_dvpg_moref(backing), "") or backing.port.portgroupKey
        out.append(
            ObservedNic(
                key=dev.key, adapter=nic_type(dev), network=network, pci_slot=_slot(dev), mac=dev.macAddress or ""
            )
        )
    return sorted(out, key=lambda n: n.key)


def datastore_path(path: str) -> str:
    """`[datastore] folder/file.vmdk` with the datastore named as a desired file names it. The
    folder and file keep vCenter's spelling: that is how they are named on the datastore."""
    if not path.startswith("["):
        return path
    datastore, bracket, rest = path[1:].partition("]")
    return f"[{unescape_name(datastore)}{bracket}{rest}" if bracket else path


def _dvpg_moref(backing: Any) -> str:
    # A distributed port group's moref is its key on vCenter.
    return backing.port.portgroupKey if backing.port else ""


# --- desired -> device specs -------------------------------------------------------------------


def add_controller_spec(temp_key: int, bus: int, type_: str, sharing: str) -> Any:
    ctrl = CONTROLLER_CLASSES[type_]()
    ctrl.key = temp_key
    ctrl.busNumber = bus
    ctrl.sharedBus = SHARING_TO_VIM[sharing]
    return vim.vm.device.VirtualDeviceSpec(operation="add", device=ctrl)


def edit_controller_spec(device: Any, sharing: str) -> Any:
    device.sharedBus = SHARING_TO_VIM[sharing]
    return vim.vm.device.VirtualDeviceSpec(operation="edit", device=device)


def rdm_disk_spec(
    *,
    temp_key: int,
    controller_key: int,
    unit: int,
    file: str,
    compatibility: str,
    device_path: str | None,
    lun_uuid: str | None,
    create: bool,
) -> Any:
    backing = vim.vm.device.VirtualDisk.RawDiskMappingVer1BackingInfo()
    backing.fileName = file
    backing.compatibilityMode = COMPAT_TO_VIM[compatibility]
    backing.diskMode = "independent_persistent" if compatibility == "physical" else "persistent"
    if create:
        backing.deviceName = device_path
        backing.lunUuid = lun_uuid
    disk = vim.vm.device.VirtualDisk(key=temp_key, controllerKey=controller_key, unitNumber=unit, backing=backing)
    spec = vim.vm.device.VirtualDeviceSpec(operation="add", device=disk)
    if create:
        spec.fileOperation = "create"
    return spec


def vmdk_disk_spec(*, temp_key: int, controller_key: int, unit: int, file: str, size_gb: int, create: bool) -> Any:
    backing = vim.vm.device.VirtualDisk.FlatVer2BackingInfo()
    backing.fileName = file
    backing.diskMode = "independent_persistent"
    backing.thinProvisioned = False
    backing.eagerlyScrub = True
    disk = vim.vm.device.VirtualDisk(
        key=temp_key,
        controllerKey=controller_key,
        unitNumber=unit,
        backing=backing,
        capacityInKB=size_gb * 1024 * 1024,
    )
    spec = vim.vm.device.VirtualDeviceSpec(operation="add", device=disk)
    if create:
        spec.fileOperation = "create"
    return spec


def remove_device_spec(device: Any, destroy_file: bool = False) -> Any:
    spec = vim.vm.device.VirtualDeviceSpec(operation="remove", device=device)
    if destroy_file:
        spec.fileOperation = "destroy"
    return spec


def nic_backing(network: Any) -> Any:
    """Standard port group: network backing; distributed port group: a port connection."""
    if isinstance(network, vim.dvs.DistributedVirtualPortgroup):
        conn = vim.dvs.PortConnection(portgroupKey=network.key, switchUuid=network.config.distributedVirtualSwitch.uuid)
        return vim.vm.device.VirtualEthernetCard.DistributedVirtualPortBackingInfo(port=conn)
    return vim.vm.device.VirtualEthernetCard.NetworkBackingInfo(deviceName=network.name, network=network)


def add_nic_spec(temp_key: int, adapter: str, backing: Any) -> Any:
    nic = NIC_CLASSES[adapter]()
    nic.key = temp_key
    nic.backing = backing
    nic.addressType = "generated"
    nic.connectable = vim.vm.device.VirtualDevice.ConnectInfo(
        startConnected=True, connected=True, allowGuestControl=True
    )
    return vim.vm.device.VirtualDeviceSpec(operation="add", device=nic)


def edit_nic_spec(device: Any, backing: Any) -> Any:
    device.backing = backing
    return vim.vm.device.VirtualDeviceSpec(operation="edit", device=device)
