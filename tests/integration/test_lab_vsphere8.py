"""The lab as ESXi/vCenter 7.0 and 8.0 behave for failover clusters, through pyVmomi
only: host versions, FC and iSCSI VMFS datastores, clustered VMDK support, NVMe
controllers, snapshots refused with bus sharing, hot-add switches, multi-writer."""

from __future__ import annotations

import pytest
from pyVmomi import vim, vmodl

from labctl import VSPHERE7_LAB, VSPHERE8_LAB, find, prop, props, wait

FC_LUN = "naa.6006016012345678000000000000c001"
ISCSI_LUN = "naa.6001405aaaaaaaaaaaaaaaaaaaaaa001"

Dev = vim.vm.device
Spec = vim.vm.device.VirtualDeviceSpec


@pytest.fixture
def v8(lab_factory):
    return lab_factory(VSPHERE8_LAB)


@pytest.fixture
def v7(lab_factory):
    return lab_factory(VSPHERE7_LAB)


def devices(si, vm) -> list:
    return prop(si, vm, "config.hardware.device")


def power_off(vm):
    wait(vm.PowerOffVM_Task())


def reconfigure(vm, *changes, **fields):
    return wait(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(deviceChange=list(changes), **fields)))


def clustered(si, ds) -> bool | None:
    return prop(si, ds, "capability.clusteredVmdkSupported")


def enable(si, host_name, ds):
    host = find(si, vim.HostSystem, host_name)
    host.configManager.datastoreSystem.EnableClusteredVmdkSupport(datastore=ds)


def add_nvme(bus=0, sharing=None, key=-300) -> Spec:
    ctrl = Dev.VirtualNVMEController(key=key, busNumber=bus)
    if sharing is not None:
        ctrl.sharedBus = sharing
    return Spec(operation="add", device=ctrl)


def new_disk(controller_key, unit, datastore, gib=1, eager=True, sharing=None, key=-400) -> Spec:
    backing = Dev.VirtualDisk.FlatVer2BackingInfo(
        fileName=f"[{datastore}]", diskMode="persistent", thinProvisioned=False, eagerlyScrub=eager
    )
    if sharing is not None:
        backing.sharing = sharing
    disk = Dev.VirtualDisk(
        key=key, controllerKey=controller_key, unitNumber=unit, capacityInKB=gib << 20, backing=backing
    )
    return Spec(operation="add", fileOperation="create", device=disk)


def nvme_controllers(si, vm) -> list:
    return [d for d in devices(si, vm) if isinstance(d, Dev.VirtualNVMEController)]


# ---- hosts and datastores -------------------------------------------------------


def test_hosts_report_8_0_u2_and_7_0_u3(v8, v7):
    host = find(v8.connect(), vim.HostSystem, "esx-a1.lab.local")
    p = host.config.product
    assert (p.version, p.build, p.apiVersion) == ("8.0.2", "22380479", "8.0.2.0")
    assert p.fullName == "VMware ESXi 8.0.2 build-22380479"
    si7 = v7.connect()
    p7 = find(si7, vim.HostSystem, "esx-a2.lab.local").config.product
    assert (p7.version, p7.build, p7.apiVersion) == ("7.0.3", "21930508", "7.0.3.0")
    assert find(si7, vim.HostSystem, "esx-l1.lab.local").config.product.version == "6.7.0"


def test_fc_and_iscsi_vmfs_datastores_as_a_host_shows_them(v8):
    si = v8.connect()
    host = find(si, vim.HostSystem, "esx-a1.lab.local")
    for name, naa, adapter_type, transport_type in (
        ("CVMDK-01", FC_LUN, vim.host.FibreChannelHba, vim.host.FibreChannelTargetTransport),
        ("ISCSI-VMFS-01", ISCSI_LUN, vim.host.InternetScsiHba, vim.host.InternetScsiTargetTransport),
    ):
        ds = find(si, vim.Datastore, name)
        info = prop(si, ds, "info")
        assert info.vmfs.majorVersion == 6
        assert [e.diskName for e in info.vmfs.extent] == [naa]
        assert info.vmfs.blockSizeMb == 1
        assert info.vmfs.scsiDiskType == "native512"
        storage = host.config.storageDevice
        lun = next(x for x in storage.scsiLun if x.canonicalName == naa)
        assert lun.capacity.blockSize == 512
        assert lun.clusteredVmdkSupported is (name == "CVMDK-01")
        mp = next(x for x in storage.multipathInfo.lun if x.lun == lun.key)
        adapters = {a.key: a for a in storage.hostBusAdapter}
        assert mp.path and all(isinstance(adapters[p.adapter], adapter_type) for p in mp.path)
        assert all(isinstance(p.transport, transport_type) for p in mp.path)
        assert clustered(si, ds) is False
    assert prop(si, find(si, vim.Datastore, "SAN-VMFS5-01"), "info.vmfs.majorVersion") == 5
    four_k = prop(si, find(si, vim.Datastore, "SAN-4KN-01"), "info.vmfs.scsiDiskType")
    assert four_k == "native4k"


# ---- clustered VMDK support ---------------------------------------------------------


def test_enable_and_disable_clustered_vmdk_on_a_qualifying_fc_datastore(v8):
    si = v8.connect()
    ds = find(si, vim.Datastore, "CVMDK-01")
    assert clustered(si, ds) is False
    enable(si, "esx-a2.lab.local", ds)
    assert clustered(si, ds) is True
    # once more: nothing to do
    enable(si, "esx-a1.lab.local", ds)
    assert clustered(si, ds) is True
    find(si, vim.HostSystem, "esx-a3.lab.local").configManager.datastoreSystem.DisableClusteredVmdkSupport(datastore=ds)
    assert clustered(si, ds) is False


@pytest.mark.parametrize(
    ("datastore", "reason"),
    [
        ("ISCSI-VMFS-01", "reached over iscsi: clustered VMDK needs Fibre Channel"),
        ("SAN-4KN-01", "4096-byte sectors (native4k)"),
        ("SAN-VMFS5-01", "is VMFS 5: clustered VMDK needs VMFS 6"),
        ("NFS-01", "not a VMFS datastore"),
        ("esx-a1-local", "on a local disk"),
    ],
)
def test_enable_refused_where_the_datastore_does_not_qualify(v8, datastore, reason):
    si = v8.connect()
    ds = find(si, vim.Datastore, datastore)
    with pytest.raises(vim.fault.HostConfigFault) as err:
        enable(si, "esx-a1.lab.local", ds)
    assert reason in err.value.msg
    assert clustered(si, ds) is False


def test_enable_refused_when_a_host_before_7_0_sees_the_lun(v7):
    si = v7.connect()
    mixed = find(si, vim.Datastore, "MIXED-VMFS-01")
    with pytest.raises(vim.fault.HostConfigFault) as err:
        enable(si, "esx-a1.lab.local", mixed)
    assert "esx-l1.lab.local (ESXi 6.7.0)" in err.value.msg
    assert clustered(si, mixed) is False
    # the FC LUN only 7.0.3 hosts see qualifies on 7.0
    ok = find(si, vim.Datastore, "CVMDK-01")
    enable(si, "esx-a1.lab.local", ok)
    assert clustered(si, ok) is True


def test_enable_on_a_datastore_the_host_does_not_mount_is_not_found(v8):
    si = v8.connect()
    other_local = find(si, vim.Datastore, "esx-a2-local")
    with pytest.raises(vim.fault.NotFound):
        enable(si, "esx-a1.lab.local", other_local)


# ---- NVMe ----------------------------------------------------------------------------


def test_nvme_controller_and_disk_added(v8):
    si = v8.connect()
    vm = find(si, vim.VirtualMachine, "WSFC-NODE1")
    reconfigure(vm, add_nvme(bus=0))
    (ctrl,) = nvme_controllers(si, vm)
    assert ctrl.busNumber == 0
    reconfigure(vm, new_disk(ctrl.key, 0, "SAN-VMFS-01"))
    disks = [d for d in devices(si, vm) if isinstance(d, Dev.VirtualDisk) and d.controllerKey == ctrl.key]
    assert [d.unitNumber for d in disks] == [0]
    assert nvme_controllers(si, vm)[0].device == [disks[0].key]
    # vmx-21 has 64 namespaces a controller: 63 is the last
    reconfigure(vm, new_disk(ctrl.key, 63, "SAN-VMFS-01", key=-401))
    with pytest.raises(vim.fault.InvalidDeviceSpec) as err:
        reconfigure(vm, new_disk(ctrl.key, 64, "SAN-VMFS-01", key=-402))
    assert "NVMe unit number 64" in err.value.msg


def test_shared_nvme_controller_with_clustered_vmdk_on_8_0_u2(v8):
    si = v8.connect()
    vm = find(si, vim.VirtualMachine, "WSFC-NODE2")
    # bus sharing is not hot-plugged
    with pytest.raises(vim.fault.InvalidPowerState):
        reconfigure(vm, add_nvme(bus=1, sharing="physicalSharing"))
    power_off(vm)
    reconfigure(vm, add_nvme(bus=1, sharing="physicalSharing"))
    (ctrl,) = nvme_controllers(si, vm)
    assert ctrl.sharedBus == "physicalSharing"
    reconfigure(vm, new_disk(ctrl.key, 0, "CVMDK-01"))
    with pytest.raises(vim.fault.InvalidDeviceSpec):
        reconfigure(vm, add_nvme(bus=2, sharing="virtualSharing", key=-301))


def test_nvme_refused_on_old_hardware_and_nvme_sharing_before_8_0_u2(v8, v7):
    si = v8.connect()
    old = find(si, vim.VirtualMachine, "OLD-VM1")
    with pytest.raises(vim.fault.DeviceUnsupportedForVmVersion) as err:
        reconfigure(old, add_nvme())
    assert (err.value.currentVersion, err.value.expectedVersion) == ("vmx-11", "vmx-13")
    assert nvme_controllers(si, old) == []

    v19 = find(si, vim.VirtualMachine, "V19-VM1")
    with pytest.raises(vim.fault.DeviceUnsupportedForVmVersion) as err:
        reconfigure(v19, add_nvme(sharing="physicalSharing"))
    assert (err.value.currentVersion, err.value.expectedVersion) == ("vmx-19", "vmx-21")
    reconfigure(v19, add_nvme(sharing="noSharing"))
    assert [c.sharedBus for c in nvme_controllers(si, v19)] == ["noSharing"]

    # the 7.0 API has no sharedBus on an NVMe controller: a 7.0 U3 vCenter's client
    # cannot ask for it, and the controller is unshared
    si7 = v7.connect()
    assert si7._stub.versionId.endswith('7.0.3.0"')
    node = find(si7, vim.VirtualMachine, "WSFC-NODE1")
    power_off(node)
    reconfigure(node, add_nvme(sharing="physicalSharing"))
    assert [c.sharedBus for c in nvme_controllers(si7, node)] in (["noSharing"], [None])


# ---- snapshots ------------------------------------------------------------------------


def test_snapshot_refused_with_a_shared_controller_allowed_without(v8):
    si = v8.connect()
    plain = find(si, vim.VirtualMachine, "WSFC-NODE3")
    snap = wait(plain.CreateSnapshot_Task(name="before", memory=False, quiesce=False))
    assert prop(si, plain, "snapshot.rootSnapshotList")[0].snapshot == snap

    node = find(si, vim.VirtualMachine, "WSFC-NODE1")
    power_off(node)
    scsi = Dev.VirtualLsiLogicSASController(key=-101, busNumber=1, sharedBus="physicalSharing")
    reconfigure(node, Spec(operation="add", device=scsi))
    task = node.CreateSnapshot_Task(name="x", memory=False, quiesce=False)
    with pytest.raises(vim.fault.SnapshotIncompatibleDeviceInVm) as err:
        wait(task)
    assert isinstance(err.value.fault, vim.fault.SharedBusControllerNotSupported)
    assert "SCSI controller 1" in err.value.msg and "bus-sharing" in err.value.msg
    assert task.info.descriptionId == "VirtualMachine.createSnapshot"
    with pytest.raises(vim.fault.SnapshotIncompatibleDeviceInVm):
        wait(node.CreateSnapshotEx_Task(name="y", memory=False))
    assert prop(si, node, "snapshot") is None

    # a shared NVMe controller prevents it too
    node2 = find(si, vim.VirtualMachine, "WSFC-NODE2")
    power_off(node2)
    reconfigure(node2, add_nvme(bus=0, sharing="physicalSharing"))
    with pytest.raises(vim.fault.SnapshotIncompatibleDeviceInVm) as err:
        wait(node2.CreateSnapshot_Task(name="x", memory=False, quiesce=False))
    assert "NVMe controller" in err.value.msg


def test_snapshot_planted_through_the_control_api(v8):
    si = v8.connect()
    node = find(si, vim.VirtualMachine, "WSFC-NODE1")
    power_off(node)
    scsi = Dev.VirtualLsiLogicSASController(key=-101, busNumber=1, sharedBus="physicalSharing")
    reconfigure(node, Spec(operation="add", device=scsi))
    moref = v8.plant_snapshot("WSFC-NODE1", "left by hand")
    tree = prop(si, node, "snapshot.rootSnapshotList")
    assert [(t.name, t.snapshot._moId) for t in tree] == [("left by hand", moref)]
    with pytest.raises(RuntimeError, match="404"):
        v8.plant_snapshot("NO-SUCH-VM", "x")


# ---- hot-add switches and multi-writer --------------------------------------------------


def test_hot_add_switches_change_only_when_powered_off(v8):
    si = v8.connect()
    vm = find(si, vim.VirtualMachine, "WSFC-NODE1")
    for field in ("cpuHotAddEnabled", "memoryHotAddEnabled"):
        task = vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(**{field: True}))
        with pytest.raises(vim.fault.InvalidPowerState) as err:
            wait(task)
        assert err.value.existingState == "poweredOn"
    # the same value as now is no change
    reconfigure(vm, cpuHotAddEnabled=False)
    got = props(si, vm, "config.cpuHotAddEnabled", "config.memoryHotAddEnabled")
    assert got == {"config.cpuHotAddEnabled": False, "config.memoryHotAddEnabled": False}
    power_off(vm)
    reconfigure(vm, cpuHotAddEnabled=True, memoryHotAddEnabled=True)
    got = props(si, vm, "config.cpuHotAddEnabled", "config.memoryHotAddEnabled")
    assert got == {"config.cpuHotAddEnabled": True, "config.memoryHotAddEnabled": True}


def test_multi_writer_sharing_is_stored(v8):
    si = v8.connect()
    vm = find(si, vim.VirtualMachine, "WSFC-NODE3")
    scsi0 = next(d for d in devices(si, vm) if isinstance(d, Dev.VirtualSCSIController))
    reconfigure(vm, new_disk(scsi0.key, 1, "SAN-VMFS-01", sharing="sharingMultiWriter"))
    disk = next(d for d in devices(si, vm) if isinstance(d, Dev.VirtualDisk) and d.unitNumber == 1)
    assert disk.backing.sharing == "sharingMultiWriter"
    boot = next(d for d in devices(si, vm) if isinstance(d, Dev.VirtualDisk) and d.unitNumber == 0)
    assert boot.backing.sharing in (None, "sharingNone")
    with pytest.raises(vim.fault.InvalidDeviceSpec):
        reconfigure(vm, new_disk(scsi0.key, 2, "SAN-VMFS-01", sharing="sharingEveryone", key=-401))


# ---- disk locks (diskLocks: true) ----------------------------------------------------------


def attach(vm, controller_key, unit, file_name, key=-500) -> None:
    backing = Dev.VirtualDisk.FlatVer2BackingInfo(fileName=file_name, diskMode="independent_persistent")
    disk = Dev.VirtualDisk(key=key, controllerKey=controller_key, unitNumber=unit, backing=backing)
    reconfigure(vm, Spec(operation="add", device=disk))


def test_cross_host_clustered_vmdk_opens_only_with_clustered_vmdk_support(v8):
    si = v8.connect()
    n1, n2, n3 = (find(si, vim.VirtualMachine, f"WSFC-NODE{i}") for i in (1, 2, 3))
    for vm in (n1, n2, n3):
        power_off(vm)
        reconfigure(vm, add_nvme(bus=1, sharing="physicalSharing"))
    key = {vm: nvme_controllers(si, vm)[0].key for vm in (n1, n2, n3)}
    reconfigure(n1, new_disk(key[n1], 0, "CVMDK-01"))
    path = next(
        d.backing.fileName for d in devices(si, n1) if isinstance(d, Dev.VirtualDisk) and d.controllerKey == key[n1]
    )
    assert path.startswith("[CVMDK-01] WSFC-NODE1/")
    for vm in (n2, n3):
        attach(vm, key[vm], 0, path)
    wait(n1.PowerOnVM_Task())
    task = n2.PowerOnVM_Task()
    with pytest.raises(vim.fault.GenericVmConfigFault) as err:
        wait(task)
    assert "failed to lock the file" in err.value.msg and "no clustered VMDK support" in err.value.msg
    assert prop(si, n2, "runtime.powerState") == "poweredOff"

    enable(si, "esx-a1.lab.local", find(si, vim.Datastore, "CVMDK-01"))
    for vm in (n2, n3):
        wait(vm.PowerOnVM_Task())
        assert prop(si, vm, "runtime.powerState") == "poweredOn"
    # support cannot be taken away while the nodes run
    with pytest.raises(vim.fault.HostConfigFault):
        find(si, vim.HostSystem, "esx-a1.lab.local").configManager.datastoreSystem.DisableClusteredVmdkSupport(
            datastore=find(si, vim.Datastore, "CVMDK-01")
        )


def test_unshared_vmdk_in_two_vms_locked_multi_writer_not(v8):
    si = v8.connect()
    n1, n3 = (find(si, vim.VirtualMachine, f"WSFC-NODE{i}") for i in (1, 3))
    power_off(n3)
    scsi = {vm: next(d for d in devices(si, vm) if isinstance(d, Dev.VirtualSCSIController)).key for vm in (n1, n3)}
    reconfigure(n1, new_disk(scsi[n1], 1, "SAN-VMFS-01"))
    reconfigure(n1, new_disk(scsi[n1], 2, "SAN-VMFS-01", sharing="sharingMultiWriter", key=-401))
    files = {
        d.unitNumber: d.backing.fileName
        for d in devices(si, n1)
        if isinstance(d, Dev.VirtualDisk) and d.controllerKey == scsi[n1]
    }
    attach(n3, scsi[n3], 2, files[2])
    n3_multi = next(d for d in devices(si, n3) if isinstance(d, Dev.VirtualDisk) and d.unitNumber == 2)
    n3_multi.backing.sharing = "sharingMultiWriter"
    reconfigure(n3, Spec(operation="edit", device=n3_multi))
    wait(n3.PowerOnVM_Task())  # multi-writer on both sides: opens
    power_off(n3)
    attach(n3, scsi[n3], 1, files[1], key=-501)
    with pytest.raises(vim.fault.GenericVmConfigFault) as err:
        wait(n3.PowerOnVM_Task())
    assert f"'{files[1]}'" in err.value.msg and "WSFC-NODE1" in err.value.msg


# ---- per-host versions and bad requests ---------------------------------------------------


def test_8_0_u3_and_7_0_u3_hosts_side_by_side(lab_factory):
    lab = lab_factory(
        {
            "clusters": [
                {
                    "name": "Mixed",
                    "hosts": [
                        {"name": "esx-u3.lab.local", "version": "8.0.3"},
                        {"name": "esx-u2.lab.local", "version": "8.0.2", "patchLevel": "0.0"},
                        {"name": "esx-70.lab.local", "version": "7.0.3"},
                    ],
                }
            ]
        }
    )
    si = lab.connect()
    got = {
        h.name: (h.config.product.version, h.config.product.build, h.config.product.apiVersion)
        for h in (find(si, vim.HostSystem, n) for n in ("esx-u3.lab.local", "esx-u2.lab.local", "esx-70.lab.local"))
    }
    assert got == {
        "esx-u3.lab.local": ("8.0.3", "24022510", "8.0.3.0"),
        "esx-u2.lab.local": ("8.0.2", "22380479", "8.0.2.0"),
        "esx-70.lab.local": ("7.0.3", "21930508", "7.0.3.0"),
    }
    assert find(si, vim.HostSystem, "esx-u2.lab.local").config.product.patchLevel == "0.0"


def test_bad_requests_answer_faults(v8):
    si = v8.connect()
    dss = find(si, vim.HostSystem, "esx-a1.lab.local").configManager.datastoreSystem
    ghost = vim.Datastore("datastore-99999", si._stub)
    with pytest.raises((vim.fault.NotFound, vmodl.fault.ManagedObjectNotFound)):
        dss.EnableClusteredVmdkSupport(datastore=ghost)
    with pytest.raises((vim.fault.NotFound, vmodl.fault.ManagedObjectNotFound)):
        dss.DisableClusteredVmdkSupport(datastore=ghost)
    with pytest.raises(RuntimeError, match="400"):
        v8.control("POST", "vms/WSFC-NODE1/snapshots", {"nam": "typo"})
    # the lab still serves
    assert prop(si, find(si, vim.Datastore, "CVMDK-01"), "capability.clusteredVmdkSupported") is False


def test_create_vm_with_nvme_checked_like_a_reconfiguration(v8):
    si = v8.connect()
    dc = find(si, vim.Datacenter, "DC1")
    host = find(si, vim.HostSystem, "esx-a4.lab.local")
    pool = host.parent.resourcePool

    def create(name, version, sharing):
        ctrl = Dev.VirtualNVMEController(key=-300, busNumber=0, sharedBus=sharing)
        spec = vim.vm.ConfigSpec(
            name=name,
            version=version,
            guestId="windows2019srvNext_64Guest",
            files=vim.vm.FileInfo(vmPathName="[SAN-VMFS-01]"),
            deviceChange=[Spec(operation="add", device=ctrl)],
        )
        return wait(dc.vmFolder.CreateVM_Task(config=spec, pool=pool, host=host))

    with pytest.raises(vim.fault.DeviceUnsupportedForVmVersion):
        create("NEW-OLD", "vmx-11", "noSharing")
    with pytest.raises(vim.fault.DeviceUnsupportedForVmVersion):
        create("NEW-19", "vmx-19", "physicalSharing")
    vm = create("NEW-21", "vmx-21", "physicalSharing")
    assert [c.sharedBus for c in nvme_controllers(si, vm)] == ["physicalSharing"]


def test_pvscsi_takes_64_disks_from_hardware_14(v8):
    si = v8.connect()
    vm = find(si, vim.VirtualMachine, "WSFC-NODE1")
    old = find(si, vim.VirtualMachine, "OLD-VM1")
    for target in (vm, old):
        pv = Dev.ParaVirtualSCSIController(key=-100, busNumber=1, sharedBus="noSharing")
        reconfigure(target, Spec(operation="add", device=pv))
    key = {t: next(d.key for d in devices(si, t) if isinstance(d, Dev.ParaVirtualSCSIController)) for t in (vm, old)}
    reconfigure(vm, new_disk(key[vm], 64, "SAN-VMFS-01"))
    assert any(isinstance(d, Dev.VirtualDisk) and d.unitNumber == 64 for d in devices(si, vm))
    with pytest.raises(vim.fault.InvalidDeviceSpec, match="0-64"):
        reconfigure(vm, new_disk(key[vm], 65, "SAN-VMFS-01", key=-401))
    with pytest.raises(vim.fault.InvalidDeviceSpec, match="0-15"):
        reconfigure(old, new_disk(key[old], 16, "SAN-VMFS-01"))
