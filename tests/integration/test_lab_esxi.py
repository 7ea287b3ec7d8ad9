"""ESXi/vCenter behaviour the lab adds where the simulator is lenient: bus
sharing changes on running VMs, PCI slot numbers, raw device mappings,
shared VMDKs, strict host advanced options, guest shutdown without tools."""

from __future__ import annotations

import os

import pytest
from pyVmomi import VmomiSupport, vim

from labctl import find, prop, props, wait

GIB = 1 << 30
A001 = "naa.6006016012345678000000000000a001"
A002 = "naa.6006016012345678000000000000a002"
SAN_LUN = "naa.6006016012345678000000000000a000"
B_ONLY_LUN = "naa.60060160123456780000000000000b01"

Dev = vim.vm.device
Spec = vim.vm.device.VirtualDeviceSpec


def devices(si, vm) -> list:
    return prop(si, vm, "config.hardware.device")


def power_state(si, vm) -> str:
    return prop(si, vm, "runtime.powerState")


def power_off(si, vm):
    wait(vm.PowerOffVM_Task())
    assert power_state(si, vm) == "poweredOff"


def power_on(si, vm):
    wait(vm.PowerOnVM_Task())
    assert power_state(si, vm) == "poweredOn"


def reconfigure(vm, *changes):
    return wait(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(deviceChange=list(changes))))


def add_controller(bus: int, sharing: str, key: int = -101) -> Spec:
    return Spec(
        operation="add",
        device=Dev.VirtualLsiLogicSASController(key=key, busNumber=bus, sharedBus=sharing, hotAddRemove=True),
    )


def lun_of(si, host, naa):
    return next(x for x in host.config.storageDevice.scsiLun if x.canonicalName == naa)


def rdm_spec(controller_key: int, unit: int, file_name: str, lun=None, create=True, mode="physicalMode") -> Spec:
    backing = Dev.VirtualDisk.RawDiskMappingVer1BackingInfo(fileName=file_name, diskMode="independent_persistent")
    if lun is not None:
        backing.deviceName = lun.devicePath
        backing.lunUuid = lun.uuid
        backing.compatibilityMode = mode
    spec = Spec(
        operation="add",
        device=Dev.VirtualDisk(key=-201 - unit, controllerKey=controller_key, unitNumber=unit, backing=backing),
    )
    if create:
        spec.fileOperation = "create"
    return spec


def controller(devs, bus):
    return next(d for d in devs if isinstance(d, Dev.VirtualSCSIController) and d.busNumber == bus)


# ---- bus sharing on a running VM ------------------------------------------------


def test_hot_add_of_shared_controller_refused_when_on_accepted_when_off(lab):
    si = lab.connect()
    vm = find(si, vim.VirtualMachine, "SQLNODE1")
    before = devices(si, vm)
    task = vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(deviceChange=[add_controller(1, "physicalSharing")]))
    with pytest.raises(vim.fault.InvalidPowerState) as err:
        wait(task)
    assert err.value.existingState == "poweredOn"
    assert "Powered on" in task.info.error.msg
    assert task.info.state == "error"
    assert len(devices(si, vm)) == len(before)

    # a noSharing controller can be hot-added
    reconfigure(vm, add_controller(2, "noSharing"))
    assert controller(devices(si, vm), 2).sharedBus == "noSharing"

    power_off(si, vm)
    reconfigure(vm, add_controller(1, "physicalSharing"))
    assert controller(devices(si, vm), 1).sharedBus == "physicalSharing"


def test_changing_shared_bus_refused_when_on(lab):
    si = lab.connect()
    vm = find(si, vim.VirtualMachine, "CIB-NODE1")
    ctrl = controller(devices(si, vm), 0)
    ctrl.sharedBus = "virtualSharing"
    with pytest.raises(vim.fault.InvalidPowerState):
        reconfigure(vm, Spec(operation="edit", device=ctrl))
    assert controller(devices(si, vm), 0).sharedBus == "noSharing"
    power_off(si, vm)
    reconfigure(vm, Spec(operation="edit", device=ctrl))
    assert controller(devices(si, vm), 0).sharedBus == "virtualSharing"


def test_disk_on_shared_controller_needs_power_off(lab):
    si = lab.connect()
    vm = find(si, vim.VirtualMachine, "SQLNODE2")
    host = find(si, vim.HostSystem, "esx-a2.lab.local")
    power_off(si, vm)
    reconfigure(vm, add_controller(1, "physicalSharing"))
    power_on(si, vm)
    ckey = controller(devices(si, vm), 1).key
    lun = lun_of(si, host, A001)
    with pytest.raises(vim.fault.InvalidPowerState):
        reconfigure(vm, rdm_spec(ckey, 0, "[SAN-VMFS-01] SQLNODE2/SQLNODE2_1.vmdk", lun))
    # nothing was left behind
    assert not os.path.exists(os.path.join(lab.run_dir, "datastores", "SAN-VMFS-01", "SQLNODE2", "SQLNODE2_1.vmdk"))
    # removing the shared controller while on is refused too
    with pytest.raises(vim.fault.InvalidPowerState):
        reconfigure(vm, Spec(operation="remove", device=controller(devices(si, vm), 1)))
    power_off(si, vm)
    reconfigure(vm, rdm_spec(ckey, 0, "[SAN-VMFS-01] SQLNODE2/SQLNODE2_1.vmdk", lun))
    power_on(si, vm)
    disk = next(d for d in devices(si, vm) if isinstance(d, Dev.VirtualDisk) and d.controllerKey == ckey)
    with pytest.raises(vim.fault.InvalidPowerState):
        reconfigure(vm, Spec(operation="remove", device=disk))


# ---- PCI slots -------------------------------------------------------------------


def slots(devs) -> dict[int, int | None]:
    return {d.key: (d.slotInfo.pciSlotNumber if d.slotInfo else None) for d in devs}


def test_pci_slots_assigned_at_power_on_and_kept(lab):
    si = lab.connect()
    vm = find(si, vim.VirtualMachine, "CIB-NODE1")
    devs = devices(si, vm)
    scsi0 = controller(devs, 0)
    nic0 = next(d for d in devs if isinstance(d, Dev.VirtualEthernetCard))
    assert scsi0.slotInfo.pciSlotNumber == 160
    assert nic0.slotInfo.pciSlotNumber == 192
    assert all(d.slotInfo is None for d in devs if isinstance(d, Dev.VirtualDisk))

    power_off(si, vm)
    prod = find(si, vim.Network, "Heartbeat")
    nic = Dev.VirtualVmxnet3(
        key=-301,
        backing=Dev.VirtualEthernetCard.NetworkBackingInfo(deviceName="Heartbeat", network=prod),
        connectable=Dev.VirtualDevice.ConnectInfo(startConnected=True, allowGuestControl=True),
    )
    reconfigure(vm, add_controller(1, "virtualSharing"), Spec(operation="add", device=nic))
    devs = devices(si, vm)
    scsi1 = controller(devs, 1)
    nic1 = next(d for d in devs if isinstance(d, Dev.VirtualEthernetCard) and d.key != nic0.key)
    assert scsi1.slotInfo is None and nic1.slotInfo is None  # not before power-on

    power_on(si, vm)
    after = slots(devices(si, vm))
    assert after[scsi0.key] == 160 and after[nic0.key] == 192  # never moved
    # next free slots in device key order (controllers 1000.. before NICs 4000..)
    assert (after[scsi1.key], after[nic1.key]) == (224, 256)

    power_off(si, vm)
    power_on(si, vm)
    assert slots(devices(si, vm)) == after

    # an edit that omits slotInfo keeps the slot
    power_off(si, vm)
    ctrl = controller(devices(si, vm), 1)
    ctrl.slotInfo = None
    reconfigure(vm, Spec(operation="edit", device=ctrl))
    assert controller(devices(si, vm), 1).slotInfo.pciSlotNumber == 224
    power_on(si, vm)

    # a NIC hot-added to the running VM gets its slot at once
    nic3 = Dev.VirtualVmxnet3(
        key=-302, backing=Dev.VirtualEthernetCard.NetworkBackingInfo(deviceName="Heartbeat", network=prod)
    )
    reconfigure(vm, Spec(operation="add", device=nic3))
    new = [d for d in devices(si, vm) if isinstance(d, Dev.VirtualEthernetCard) and d.key not in after]
    assert [d.slotInfo.pciSlotNumber for d in new] == [1184]


# ---- raw device mappings --------------------------------------------------------


def test_rdm_created_then_attached_by_second_vm(lab):
    si = lab.connect()
    n1 = find(si, vim.VirtualMachine, "SQLNODE1")
    n2 = find(si, vim.VirtualMachine, "SQLNODE2")
    a1 = find(si, vim.HostSystem, "esx-a1.lab.local")
    for vm in (n1, n2):
        power_off(si, vm)
        reconfigure(vm, add_controller(1, "physicalSharing"))
    lun = lun_of(si, a1, A001)
    path = "[SAN-VMFS-01] SQLNODE1/SQLNODE1_1.vmdk"
    reconfigure(n1, rdm_spec(controller(devices(si, n1), 1).key, 0, path, lun))

    base = os.path.join(lab.run_dir, "datastores", "SAN-VMFS-01", "SQLNODE1")
    assert os.path.exists(os.path.join(base, "SQLNODE1_1.vmdk"))
    assert os.path.exists(os.path.join(base, "SQLNODE1_1-rdmp.vmdk"))
    # creating it again fails like ESXi
    with pytest.raises(vim.fault.FileAlreadyExists):
        reconfigure(n1, rdm_spec(controller(devices(si, n1), 1).key, 1, path, lun))

    d1 = next(
        d
        for d in devices(si, n1)
        if isinstance(d, Dev.VirtualDisk) and isinstance(d.backing, Dev.VirtualDisk.RawDiskMappingVer1BackingInfo)
    )
    assert d1.backing.compatibilityMode == "physicalMode"
    assert d1.backing.deviceName == f"/vmfs/devices/disks/{A001}"
    assert d1.backing.lunUuid == lun.uuid
    assert d1.backing.fileName == path
    assert d1.capacityInBytes == 10 * GIB

    # the second node attaches the existing mapping file: no fileOperation, only the file name
    reconfigure(n2, rdm_spec(controller(devices(si, n2), 1).key, 0, path, lun=None, create=False))
    d2 = next(
        d
        for d in devices(si, n2)
        if isinstance(d, Dev.VirtualDisk) and d.controllerKey == controller(devices(si, n2), 1).key
    )
    assert isinstance(d2.backing, Dev.VirtualDisk.RawDiskMappingVer1BackingInfo)
    for field in ("compatibilityMode", "deviceName", "lunUuid", "fileName", "diskMode"):
        assert getattr(d2.backing, field) == getattr(d1.backing, field), field
    assert d2.capacityInBytes == d1.capacityInBytes
    for vm in (n1, n2):
        power_on(si, vm)


def test_rdm_of_a_lun_the_host_does_not_see_is_refused(lab):
    si = lab.connect()
    b1 = find(si, vim.HostSystem, "esx-b1.lab.local")
    lun = lun_of(si, b1, B_ONLY_LUN)  # esx-b1 only
    vm2 = find(si, vim.VirtualMachine, "B-NODE2")  # on esx-b2
    power_off(si, vm2)
    reconfigure(vm2, add_controller(1, "physicalSharing"))
    with pytest.raises(vim.fault.InvalidDeviceBacking) as err:
        reconfigure(vm2, rdm_spec(controller(devices(si, vm2), 1).key, 0, "[ISCSI-01] B-NODE2/B-NODE2_1.vmdk", lun))
    assert "not visible to host esx-b2.lab.local" in err.value.msg or err.value.msg
    # a LUN the simulator never heard of, by device name only
    ghost = Dev.VirtualDisk.RawDiskMappingVer1BackingInfo(
        fileName="[ISCSI-01] B-NODE2/ghost.vmdk",
        deviceName="/vmfs/devices/disks/naa.600601601234567800000000000fffff",
        compatibilityMode="physicalMode",
        diskMode="independent_persistent",
    )
    spec = Spec(
        operation="add",
        fileOperation="create",
        device=Dev.VirtualDisk(key=-9, controllerKey=controller(devices(si, vm2), 1).key, unitNumber=1, backing=ghost),
    )
    with pytest.raises(vim.fault.InvalidDeviceBacking):
        reconfigure(vm2, spec)

    # the host that sees it can map it
    vm1 = find(si, vim.VirtualMachine, "B-NODE1")
    power_off(si, vm1)
    reconfigure(vm1, add_controller(1, "physicalSharing"))
    reconfigure(vm1, rdm_spec(controller(devices(si, vm1), 1).key, 0, "[ISCSI-01] B-NODE1/B-NODE1_1.vmdk", lun))


def test_rdm_of_a_datastore_extent_is_refused(lab):
    si = lab.connect()
    vm = find(si, vim.VirtualMachine, "P2V-NODE1")
    a3 = find(si, vim.HostSystem, "esx-a3.lab.local")
    power_off(si, vm)
    reconfigure(vm, add_controller(1, "physicalSharing"))
    with pytest.raises(vim.fault.InvalidDeviceBacking) as err:
        reconfigure(
            vm,
            rdm_spec(controller(devices(si, vm), 1).key, 0, "[SAN-VMFS-01] P2V-NODE1/x.vmdk", lun_of(si, a3, SAN_LUN)),
        )
    assert "SAN-VMFS-01" in err.value.msg
    # RDM mapping files live on VMFS, not NFS
    with pytest.raises(vim.fault.InvalidDeviceBacking):
        reconfigure(
            vm, rdm_spec(controller(devices(si, vm), 1).key, 0, "[NFS-01] P2V-NODE1/x.vmdk", lun_of(si, a3, A002))
        )


# ---- shared VMDK --------------------------------------------------------------------


def test_shared_eager_zeroed_vmdk(lab):
    si = lab.connect()
    n1 = find(si, vim.VirtualMachine, "CIB-NODE1")
    n2 = find(si, vim.VirtualMachine, "CIB-NODE2")
    for vm in (n1, n2):
        power_off(si, vm)
        reconfigure(vm, add_controller(1, "virtualSharing"))
    path = "[SAN-VMFS-01] CIB-NODE1/CIB-NODE1_1.vmdk"
    backing = Dev.VirtualDisk.FlatVer2BackingInfo(
        fileName=path, diskMode="independent_persistent", thinProvisioned=False, eagerlyScrub=True
    )
    disk = Dev.VirtualDisk(
        key=-1,
        controllerKey=controller(devices(si, n1), 1).key,
        unitNumber=0,
        capacityInKB=GIB // 1024,
        backing=backing,
    )
    reconfigure(n1, Spec(operation="add", fileOperation="create", device=disk))

    backing2 = Dev.VirtualDisk.FlatVer2BackingInfo(fileName=path, diskMode="independent_persistent")
    disk2 = Dev.VirtualDisk(key=-1, controllerKey=controller(devices(si, n2), 1).key, unitNumber=0, backing=backing2)
    reconfigure(n2, Spec(operation="add", device=disk2))

    def shared(vm):
        ck = controller(devices(si, vm), 1).key
        return next(d for d in devices(si, vm) if isinstance(d, Dev.VirtualDisk) and d.controllerKey == ck)

    s1, s2 = shared(n1), shared(n2)
    assert s1.backing.fileName == s2.backing.fileName == path
    assert (s2.backing.thinProvisioned, s2.backing.eagerlyScrub) == (False, True)
    assert s1.capacityInKB == s2.capacityInKB == GIB // 1024
    assert s1.backing.uuid == s2.backing.uuid
    for vm in (n1, n2):
        power_on(si, vm)


# ---- host advanced options ------------------------------------------------------


def test_host_options_are_typed_like_esxi(lab):
    si = lab.connect()
    om = find(si, vim.HostSystem, "esx-a1.lab.local").configManager.advancedOption
    long_ = VmomiSupport.vmodlTypes["long"]
    om.UpdateOptions(changedValue=[vim.option.OptionValue(key="Disk.ResetOnFailure", value=long_(1))])
    assert om.QueryOptions("Disk.ResetOnFailure")[0].value == 1
    # an xsd:int for a long option is refused, as ESXi does
    int_ = VmomiSupport.vmodlTypes["int"]
    with pytest.raises(vmodl_invalid_argument()):
        om.UpdateOptions(changedValue=[vim.option.OptionValue(key="Disk.UseLunReset", value=int_(0))])
    with pytest.raises(vim.fault.InvalidName):
        om.UpdateOptions(changedValue=[vim.option.OptionValue(key="Disk.NoSuchOption", value=long_(0))])
    assert om.QueryOptions("Disk.UseLunReset")[0].value == 1
    # the host's config.option follows
    host = find(si, vim.HostSystem, "esx-a1.lab.local")
    opts = {o.key: o.value for o in prop(si, host, "config.option")}
    assert opts["Disk.ResetOnFailure"] == 1


def vmodl_invalid_argument():
    from pyVmomi import vmodl

    return vmodl.fault.InvalidArgument


def test_plain_python_int_is_refused_for_long_options(lab):
    """pyVmomi sends a plain Python int as xsd:int: ESXi (and the lab) refuse it for a
    long option; wrap it with VmomiSupport.vmodlTypes["long"]."""
    si = lab.connect()
    om = find(si, vim.HostSystem, "esx-a2.lab.local").configManager.advancedOption
    with pytest.raises(vmodl_invalid_argument()) as err:
        om.UpdateOptions(changedValue=[vim.option.OptionValue(key="Disk.UseDeviceReset", value=0)])
    assert err.value.invalidProperty == "Disk.UseDeviceReset"
    assert "xsd:long" in err.value.msg
    assert om.QueryOptions("Disk.UseDeviceReset")[0].value == 1


# ---- guest shutdown -------------------------------------------------------------


def test_shutdown_guest_needs_tools(lab_factory):
    lab = lab_factory(
        """
clusters: [{name: C1, hosts: [{name: h1.lab.local}]}]
portgroups: [{name: Production}]
vms:
  - {name: NOTOOLS, host: h1.lab.local, toolsRunning: false}
  - {name: TOOLS, host: h1.lab.local}
"""
    )
    si = lab.connect()
    with pytest.raises(vim.fault.ToolsUnavailable):
        find(si, vim.VirtualMachine, "NOTOOLS").ShutdownGuest()
    vm = find(si, vim.VirtualMachine, "TOOLS")
    vm.ShutdownGuest()
    import time

    deadline = time.monotonic() + 10
    while power_state(si, vm) != "poweredOff" and time.monotonic() < deadline:
        time.sleep(0.02)
    p = props(si, vm, "runtime.powerState", "guest.toolsRunningStatus")
    assert p == {"runtime.powerState": "poweredOff", "guest.toolsRunningStatus": "guestToolsNotRunning"}
    power_on(si, vm)
    assert prop(si, vm, "guest.toolsRunningStatus") == "guestToolsRunning"


# ---- more vCenter checks --------------------------------------------------------


def test_change_version_is_enforced(lab):
    si = lab.connect()
    vm = find(si, vim.VirtualMachine, "SQLNODE1")
    stale = prop(si, vm, "config.changeVersion")
    assert stale
    wait(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(annotation="one", changeVersion=stale)))
    fresh = prop(si, vm, "config.changeVersion")
    assert fresh != stale
    with pytest.raises(vim.fault.ConcurrentAccess):
        wait(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(annotation="two", changeVersion=stale)))
    assert prop(si, vm, "config.annotation") == "one"
    wait(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(annotation="two", changeVersion=fresh)))


def test_thin_disk_on_shared_bus_fails_power_on(lab):
    si = lab.connect()
    vm = find(si, vim.VirtualMachine, "P2V-NODE1")
    power_off(si, vm)
    reconfigure(vm, add_controller(1, "physicalSharing"))
    backing = Dev.VirtualDisk.FlatVer2BackingInfo(
        fileName="[SAN-VMFS-01] P2V-NODE1/P2V-NODE1_1.vmdk", diskMode="independent_persistent", thinProvisioned=True
    )
    disk = Dev.VirtualDisk(
        key=-1,
        controllerKey=controller(devices(si, vm), 1).key,
        unitNumber=0,
        capacityInKB=1024 * 1024,
        backing=backing,
    )
    reconfigure(vm, Spec(operation="add", fileOperation="create", device=disk))
    with pytest.raises(vim.fault.GenericVmConfigFault) as err:
        wait(vm.PowerOnVM_Task())
    assert "for clustering" in err.value.msg
    assert power_state(si, vm) == "poweredOff"


def test_config_target_lists_rdm_candidates(lab_readonly):
    si = lab_readonly.connect()
    vm = find(si, vim.VirtualMachine, "SQLNODE1")
    host = find(si, vim.HostSystem, "esx-a1.lab.local")
    target = prop(si, vm, "environmentBrowser").QueryConfigTarget(host=host)
    names = sorted(d.disk.canonicalName for d in target.scsiDisk)
    assert names == [f"naa.6006016012345678000000000000a00{i}" for i in range(1, 5)]  # not the VMFS extent a000
    assert {d.transportHint for d in target.scsiDisk} == {"fibreChannel"}
    b1 = find(si, vim.HostSystem, "esx-b1.lab.local")
    bt = prop(si, find(si, vim.VirtualMachine, "B-NODE1"), "environmentBrowser").QueryConfigTarget(host=b1)
    assert [d.disk.canonicalName for d in bt.scsiDisk] == [B_ONLY_LUN]


def test_adding_a_host_next_to_unknown_esxi_versions_is_refused(lab):
    si = lab.connect()
    cl = find(si, vim.ClusterComputeResource, "Cluster-B")
    from pyVmomi import vmodl

    with pytest.raises(vmodl.fault.NotSupported):
        cl.AddHost_Task(spec=vim.host.ConnectSpec(hostName="esx-b4.lab.local", force=True), asConnected=True)
    wait(
        find(si, vim.ClusterComputeResource, "Cluster-A").AddHost_Task(
            spec=vim.host.ConnectSpec(hostName="esx-a4.lab.local", force=True), asConnected=True
        )
    )


def test_cluster_rules_and_overrides_read_back(lab):
    """Anti-affinity rules and DRS/HA VM overrides are read from cluster.configurationEx."""
    si = lab.connect()
    cl = find(si, vim.ClusterComputeResource, "Cluster-A")
    n1 = find(si, vim.VirtualMachine, "SQLNODE1")
    n2 = find(si, vim.VirtualMachine, "SQLNODE2")
    spec = vim.cluster.ConfigSpecEx(
        rulesSpec=[
            vim.cluster.RuleSpec(
                operation="add",
                info=vim.cluster.AntiAffinityRuleSpec(name="sql-anti", enabled=True, mandatory=True, vm=[n1, n2]),
            )
        ],
        drsVmConfigSpec=[
            vim.cluster.DrsVmConfigSpec(
                operation="add", info=vim.cluster.DrsVmConfigInfo(key=n1, enabled=True, behavior="partiallyAutomated")
            )
        ],
        dasVmConfigSpec=[
            vim.cluster.DasVmConfigSpec(
                operation="add",
                info=vim.cluster.DasVmConfigInfo(key=n1, dasSettings=vim.cluster.DasVmSettings(restartPriority="high")),
            )
        ],
    )
    wait(cl.ReconfigureComputeResource_Task(spec=spec, modify=True))
    cfg = prop(si, cl, "configurationEx")
    (rule,) = cfg.rule
    assert isinstance(rule, vim.cluster.AntiAffinityRuleSpec)
    assert (rule.name, rule.enabled, rule.mandatory, sorted(v.name for v in rule.vm)) == (
        "sql-anti",
        True,
        True,
        ["SQLNODE1", "SQLNODE2"],
    )
    assert rule.key
    assert [(c.key.name, c.behavior) for c in cfg.drsVmConfig] == [("SQLNODE1", "partiallyAutomated")]
    assert [(c.key.name, c.dasSettings.restartPriority) for c in cfg.dasVmConfig] == [("SQLNODE1", "high")]
    wait(
        cl.ReconfigureComputeResource_Task(
            spec=vim.cluster.ConfigSpecEx(rulesSpec=[vim.cluster.RuleSpec(operation="remove", removeKey=rule.key)]),
            modify=True,
        )
    )
    assert prop(si, cl, "configurationEx").rule == []


def test_device_layout_is_checked(lab):
    si = lab.connect()
    vm = find(si, vim.VirtualMachine, "P2V-NODE1")
    power_off(si, vm)
    before = devices(si, vm)
    with pytest.raises(vim.fault.InvalidDeviceSpec, match="already in use"):
        reconfigure(vm, add_controller(0, "noSharing"))
    with pytest.raises(vim.fault.InvalidDeviceSpec, match="out of range"):
        reconfigure(vm, add_controller(4, "noSharing"))
    ck = controller(before, 0).key

    def disk(unit, ckey=ck):
        backing = Dev.VirtualDisk.FlatVer2BackingInfo(
            fileName=f"[SAN-VMFS-01] P2V-NODE1/u{unit}.vmdk", diskMode="persistent", thinProvisioned=True
        )
        return Spec(
            operation="add",
            fileOperation="create",
            device=Dev.VirtualDisk(key=-9, controllerKey=ckey, unitNumber=unit, capacityInKB=1024, backing=backing),
        )

    for unit in (7, 16):
        with pytest.raises(vim.fault.InvalidDeviceSpec, match="unit number"):
            reconfigure(vm, disk(unit))
    with pytest.raises(vim.fault.InvalidController):
        reconfigure(vm, disk(1, ckey=99))
    with pytest.raises(vim.fault.InvalidDeviceSpec):
        reconfigure(vm, disk(0))  # taken by the boot disk
    assert len(devices(si, vm)) == len(before)
    # replacing a controller on the same bus in one spec is fine
    reconfigure(vm, add_controller(1, "physicalSharing", key=-50), disk(8, ckey=-50))
    new = controller(devices(si, vm), 1)
    with pytest.raises(vim.fault.InvalidDeviceSpec, match="still has device"):
        reconfigure(vm, Spec(operation="remove", device=new))
    attached = next(d for d in devices(si, vm) if isinstance(d, Dev.VirtualDisk) and d.controllerKey == new.key)
    reconfigure(
        vm,
        Spec(operation="remove", fileOperation="destroy", device=attached),
        Spec(operation="remove", device=new),
        add_controller(1, "noSharing", key=-51),
    )
    assert controller(devices(si, vm), 1).sharedBus == "noSharing"
