"""The simulated vCenter lab: default inventory, TLS, credentials, perennial
reservation and the fleet generator, read back through pyVmomi over TLS."""

from __future__ import annotations

import ssl
import time

import pytest
from pyVim.connect import SmartConnect
from pyVmomi import vim

import labctl
from labctl import find, find_all, prop, props, wait

CLUSTER_A = ["esx-a1.lab.local", "esx-a2.lab.local", "esx-a3.lab.local"]
CLUSTER_B = ["esx-b1.lab.local", "esx-b2.lab.local", "esx-b3.lab.local"]
SAN_LUN = "naa.6006016012345678000000000000a000"
SHARED_LUNS = [f"naa.6006016012345678000000000000a00{i}" for i in range(1, 5)]
B_ONLY_LUN = "naa.60060160123456780000000000000b01"
ISCSI_LUN = "naa.6001405aaaaaaaaaaaaaaaaaaaaaa001"
GIB = 1 << 30


@pytest.fixture(scope="module")
def si(lab_readonly: labctl.Lab):
    return lab_readonly.connect()


def disks_by_name(host: vim.HostSystem) -> dict[str, vim.host.ScsiDisk]:
    return {lun.canonicalName: lun for lun in host.config.storageDevice.scsiLun if isinstance(lun, vim.host.ScsiDisk)}


def test_about_is_vcenter(si):
    about = si.content.about
    assert about.apiType == "VirtualCenter"
    assert about.version == "8.0.2"


def test_clusters_and_host_versions(si):
    clusters = {c.name: c for c in find_all(si, vim.ClusterComputeResource)}
    assert set(clusters) == {"Cluster-A", "Cluster-B"}
    for name, expected_hosts, version in (("Cluster-A", CLUSTER_A, "8.0.2"), ("Cluster-B", CLUSTER_B, "7.0.3")):
        cluster = clusters[name]
        cfg = cluster.configurationEx
        assert cfg.drsConfig.enabled is True
        assert cfg.dasConfig.enabled is True
        hosts = {h.name: h for h in cluster.host}
        assert sorted(hosts) == expected_hosts
        for h in hosts.values():
            assert h.config.product.version == version
            assert h.summary.config.product.version == version
            assert h.config.product.fullName.startswith(f"VMware ESXi {version} build-")
    dc = find(si, vim.Datacenter, "DC1")
    assert dc.name == "DC1"


def test_cluster_a_luns(si):
    for name in CLUSTER_A:
        host = find(si, vim.HostSystem, name)
        disks = disks_by_name(host)
        assert {*SHARED_LUNS, SAN_LUN} <= set(disks)
        assert B_ONLY_LUN not in disks and ISCSI_LUN not in disks
        for naa in SHARED_LUNS:
            d = disks[naa]
            assert d.devicePath == f"/vmfs/devices/disks/{naa}"
            assert d.capacity.block * d.capacity.blockSize == 10 * GIB
            assert (d.vendor, d.model) == ("DGC", "VRAID")
            assert d.perenniallyReserved is False
            assert d.localDisk is False
            assert d.lunType == "disk"
            assert d.uuid and d.key == f"key-vim.host.ScsiDisk-{d.uuid}"
        # the same LUN has the same uuid on every host that sees it
    uuids = {name: disks_by_name(find(si, vim.HostSystem, name))[SHARED_LUNS[0]].uuid for name in CLUSTER_A}
    assert len(set(uuids.values())) == 1


def test_lun_seen_by_one_host_only(si):
    assert B_ONLY_LUN in disks_by_name(find(si, vim.HostSystem, "esx-b1.lab.local"))
    for name in ("esx-b2.lab.local", "esx-b3.lab.local", *CLUSTER_A):
        assert B_ONLY_LUN not in disks_by_name(find(si, vim.HostSystem, name))


def test_host_bus_adapters(si):
    for name in CLUSTER_A:
        hbas = find(si, vim.HostSystem, name).config.storageDevice.hostBusAdapter
        fc = [a for a in hbas if isinstance(a, vim.host.FibreChannelHba)]
        assert len(fc) == 2
        assert all(a.model == "ISP2532-based 8Gb Fibre Channel to PCI Express HBA" for a in fc)
        assert all(a.driver == "qlnativefc" for a in fc)
        assert all(a.portWorldWideName and a.nodeWorldWideName for a in fc)
        assert not [a for a in hbas if isinstance(a, vim.host.InternetScsiHba)]
        assert not [a for a in hbas if a.driver == "lpfc"]
        # adapter vendors as PCI devices
        host = find(si, vim.HostSystem, name)
        vendors = {p.id: p.vendorName for p in host.hardware.pciDevice}
        assert all(vendors[a.pci] == "QLogic Corp" for a in fc)
    for name in CLUSTER_B:
        hbas = find(si, vim.HostSystem, name).config.storageDevice.hostBusAdapter
        fc = [a for a in hbas if isinstance(a, vim.host.FibreChannelHba)]
        assert [a.driver for a in fc] == ["lpfc", "lpfc"]
        assert all(a.model.startswith("LPe12000") for a in fc)
        iscsi = [a for a in hbas if isinstance(a, vim.host.InternetScsiHba)]
        assert len(iscsi) == 1 and iscsi[0].isSoftwareBased and iscsi[0].driver == "iscsi_vmk"
        assert iscsi[0].iScsiName.startswith("iqn.1998-01.com.vmware:")


def test_iscsi_lun_paths_go_through_the_iscsi_adapter(si):
    for name in CLUSTER_B:
        sd = find(si, vim.HostSystem, name).config.storageDevice
        lun = disks_by_name_from(sd)[ISCSI_LUN]
        iscsi = next(a for a in sd.hostBusAdapter if isinstance(a, vim.host.InternetScsiHba))
        mp = next(m for m in sd.multipathInfo.lun if m.lun == lun.key)
        assert [p.adapter for p in mp.path] == [iscsi.key]
        assert isinstance(mp.path[0].transport, vim.host.InternetScsiTargetTransport)
        topo = next(t for t in sd.scsiTopology.adapter if t.adapter == iscsi.key)
        assert lun.key in [unit.scsiLun for target in topo.target for unit in target.lun]


def disks_by_name_from(sd) -> dict[str, vim.host.ScsiDisk]:
    return {lun.canonicalName: lun for lun in sd.scsiLun}


def test_datastores_and_extents(si):
    stores = {d.name: d for d in find_all(si, vim.Datastore)}
    san = stores["SAN-VMFS-01"]
    assert san.summary.type == "VMFS"
    assert [e.diskName for e in san.info.vmfs.extent] == [SAN_LUN]
    assert san.info.vmfs.local is False
    assert sorted(m.key.name for m in san.host) == CLUSTER_A
    assert san.summary.capacity > 400 * GIB

    iscsi = stores["ISCSI-01"]
    assert iscsi.summary.type == "VMFS"
    assert [e.diskName for e in iscsi.info.vmfs.extent] == [ISCSI_LUN]
    assert sorted(m.key.name for m in iscsi.host) == CLUSTER_B

    nfs = stores["NFS-01"]
    assert nfs.summary.type == "NFS"
    assert isinstance(nfs.info, vim.host.NasDatastoreInfo)
    assert nfs.info.nas.remoteHost == "nas01.lab.local"
    assert len(nfs.host) == 6

    for name in CLUSTER_A + CLUSTER_B:
        short = name.split(".")[0]
        local = stores[f"{short}-local"]
        assert local.summary.type == "VMFS" and local.info.vmfs.local is True
        assert [m.key.name for m in local.host] == [name]
        host = find(si, vim.HostSystem, name)
        # the local datastore's extent is the host's local disk
        local_disk = disks_by_name(host)[local.info.vmfs.extent[0].diskName]
        assert local_disk.localDisk is True
        # mounted volumes as the host reports them
        mounted = {m.volume.name for m in host.config.fileSystemVolume.mountInfo}
        assert {f"{short}-local", "NFS-01"} <= mounted


def test_port_groups(si):
    dc = find(si, vim.Datacenter, "DC1")
    assert {"Production", "Heartbeat"} <= {n.name for n in dc.network}
    for name in CLUSTER_A + CLUSTER_B:
        host = find(si, vim.HostSystem, name)
        assert {"Production", "Heartbeat"} <= {n.name for n in host.network}
        pgs = {pg.spec.name: pg for pg in host.config.network.portgroup}
        assert pgs["Production"].spec.vswitchName == "vSwitch0"
        assert pgs["Production"].spec.vlanId == 10
        assert pgs["Heartbeat"].spec.vlanId == 20
    prod = find(si, vim.Network, "Production")
    assert len(prod.host) == 6


EXPECTED_VMS = {
    "CIB-NODE1": "esx-a1.lab.local",
    "CIB-NODE2": "esx-a1.lab.local",
    "SQLNODE1": "esx-a1.lab.local",
    "SQLNODE2": "esx-a2.lab.local",
    "P2V-NODE1": "esx-a3.lab.local",
    "B-NODE1": "esx-b1.lab.local",
    "B-NODE2": "esx-b2.lab.local",
}


@pytest.mark.parametrize("vm_name", sorted(EXPECTED_VMS))
def test_vm_freshly_built(si, vm_name):
    vm = find(si, vim.VirtualMachine, vm_name)
    p = props(
        si,
        vm,
        "runtime.powerState",
        "runtime.host",
        "config.guestId",
        "config.version",
        "config.hardware.device",
        "guest.toolsRunningStatus",
        "guest.toolsStatus",
    )
    assert p["runtime.powerState"] == "poweredOn"
    assert p["runtime.host"].name == EXPECTED_VMS[vm_name]
    assert p["config.guestId"] == "windows8Server64Guest"
    assert p["config.version"] == "vmx-13"
    assert p["guest.toolsRunningStatus"] == "guestToolsRunning"
    assert p["guest.toolsStatus"] == "toolsOk"
    devices = p["config.hardware.device"]
    scsi = [d for d in devices if isinstance(d, vim.vm.device.VirtualSCSIController)]
    assert len(scsi) == 1
    ctrl = scsi[0]
    assert isinstance(ctrl, vim.vm.device.VirtualLsiLogicSASController)
    assert ctrl.busNumber == 0 and ctrl.sharedBus == "noSharing"
    disks = [d for d in devices if isinstance(d, vim.vm.device.VirtualDisk)]
    assert len(disks) == 1
    disk = disks[0]
    assert disk.controllerKey == ctrl.key and disk.unitNumber == 0
    assert disk.backing.thinProvisioned is True
    assert (
        disk.backing.fileName
        == f"[{'ISCSI-01' if vm_name.startswith('B-') else 'SAN-VMFS-01'}] {vm_name}/{vm_name}.vmdk"
    )
    nics = [d for d in devices if isinstance(d, vim.vm.device.VirtualEthernetCard)]
    assert len(nics) == 1
    assert isinstance(nics[0], vim.vm.device.VirtualVmxnet3)
    assert nics[0].backing.deviceName == "Production"
    assert nics[0].backing.network.name == "Production"


def test_whole_vm_properties_parse(si):
    """vCenter always fills runtime.faultToleranceState/recordReplayState: whole runtime/summary parse."""
    vm = find(si, vim.VirtualMachine, "SQLNODE1")
    assert vm.runtime.faultToleranceState == "notConfigured"
    assert vm.summary.runtime.powerState == "poweredOn"
    assert vm.summary.config.name == "SQLNODE1"


def test_disk_advanced_options(si):
    for name in CLUSTER_A + CLUSTER_B:
        om = find(si, vim.HostSystem, name).configManager.advancedOption
        opts = {o.key: o.value for o in om.QueryOptions("Disk.")}
        assert opts["Disk.ResetOnFailure"] == 0
        assert opts["Disk.UseLunReset"] == 1
        assert opts["Disk.UseDeviceReset"] == 1
        assert all(type(opts[k]).__name__ == "long" for k in ("Disk.ResetOnFailure", "Disk.UseLunReset"))
        with pytest.raises(vim.fault.InvalidName):
            om.QueryOptions("NoSuch.Option")


def test_tls_verification_is_on(lab_readonly):
    # the lab's CA is not trusted by default: verification fails
    with pytest.raises(ssl.SSLError):
        SmartConnect(
            host=lab_readonly.host,
            port=lab_readonly.port,
            user=lab_readonly.username,
            pwd=lab_readonly.password,
            sslContext=ssl.create_default_context(),
        )
    # with the run's CA file it succeeds, also by name (certificate for localhost)
    si = SmartConnect(
        host="localhost",
        port=lab_readonly.port,
        user=lab_readonly.username,
        pwd=lab_readonly.password,
        sslContext=ssl.create_default_context(cafile=lab_readonly.ca_file),
    )
    assert si.CurrentTime()


def test_credentials_are_checked(lab_readonly):
    with pytest.raises(vim.fault.InvalidLogin):
        lab_readonly.connect(pwd="wrong-password")
    with pytest.raises(vim.fault.InvalidLogin):
        lab_readonly.connect(user="root")


def test_env(lab_readonly):
    env = lab_readonly.env()
    assert env["VSPHERE_SERVER"] == f"127.0.0.1:{lab_readonly.port}"
    assert env["VSPHERE_USER"] == "administrator@vsphere.local"
    assert env["VSPHERE_CA_FILE"] == lab_readonly.ca_file
    assert lab_readonly.url == f"https://127.0.0.1:{lab_readonly.port}/sdk"


def test_mark_perennially_reserved(lab):
    si = lab.connect()
    a1 = find(si, vim.HostSystem, "esx-a1.lab.local")
    a2 = find(si, vim.HostSystem, "esx-a2.lab.local")
    lun = disks_by_name(a1)[SHARED_LUNS[0]]
    a1.configManager.storageSystem.MarkPerenniallyReserved(lunUuid=lun.uuid, state=True)
    assert disks_by_name(a1)[SHARED_LUNS[0]].perenniallyReserved is True
    assert disks_by_name(a1)[SHARED_LUNS[1]].perenniallyReserved is False
    assert disks_by_name(a2)[SHARED_LUNS[0]].perenniallyReserved is False  # per host
    # the storage system reports the same
    ss_luns = a1.configManager.storageSystem.storageDeviceInfo.scsiLun
    assert next(x for x in ss_luns if x.uuid == lun.uuid).perenniallyReserved is True

    with pytest.raises(vim.fault.NotFound):
        a1.configManager.storageSystem.MarkPerenniallyReserved(lunUuid="0200ff0000deadbeef", state=True)

    # Ex: one result per uuid, a fault for the unknown one
    uuids = [disks_by_name(a2)[n].uuid for n in SHARED_LUNS[:2]] + ["0200ff0000deadbeef"]
    task = a2.configManager.storageSystem.MarkPerenniallyReservedEx(lunUuid=uuids, state=True)
    results = wait(task)
    assert len(results) == 3
    assert [r.fault is None for r in results] == [True, True, False]
    assert isinstance(results[2].fault, vim.fault.NotFound)
    reserved = {n: d.perenniallyReserved for n, d in disks_by_name(a2).items()}
    assert reserved[SHARED_LUNS[0]] and reserved[SHARED_LUNS[1]] and not reserved[SHARED_LUNS[2]]

    # and back
    a1.configManager.storageSystem.MarkPerenniallyReserved(lunUuid=lun.uuid, state=False)
    assert disks_by_name(a1)[SHARED_LUNS[0]].perenniallyReserved is False


def test_lab_file_sets_perennial_reservation_and_options(lab_factory):
    lab = lab_factory(
        """
clusters:
  - name: C1
    hosts:
      - {name: h1.lab.local, options: {Disk.ResetOnFailure: 1}}
      - {name: h2.lab.local, version: 6.7.0}
portgroups: [{name: Production}]
luns:
  - {naa: naa.60060160aaaabbbb0000000000000001, clusters: [C1], perenniallyReserved: [h1.lab.local]}
  - {naa: naa.60060160aaaabbbb0000000000000002, hosts: [h2], perenniallyReserved: true}
vms:
  - {name: VM1, host: h1.lab.local, powerState: poweredOff, nic: e1000, toolsRunning: false}
"""
    )
    si = lab.connect()
    h1 = find(si, vim.HostSystem, "h1.lab.local")
    h2 = find(si, vim.HostSystem, "h2.lab.local")
    assert disks_by_name(h1)["naa.60060160aaaabbbb0000000000000001"].perenniallyReserved is True
    assert disks_by_name(h2)["naa.60060160aaaabbbb0000000000000001"].perenniallyReserved is False
    assert disks_by_name(h2)["naa.60060160aaaabbbb0000000000000002"].perenniallyReserved is True
    assert "naa.60060160aaaabbbb0000000000000002" not in disks_by_name(h1)
    assert h2.config.product.version == "6.7.0"
    opts = {o.key: o.value for o in h1.configManager.advancedOption.QueryOptions("Disk.")}
    assert opts["Disk.ResetOnFailure"] == 1 and opts["Disk.UseLunReset"] == 1
    vm = find(si, vim.VirtualMachine, "VM1")
    p = props(si, vm, "runtime.powerState", "guest.toolsRunningStatus", "config.hardware.device")
    assert p["runtime.powerState"] == "poweredOff"
    assert p["guest.toolsRunningStatus"] == "guestToolsNotRunning"
    assert any(isinstance(d, vim.vm.device.VirtualE1000) for d in p["config.hardware.device"])


def test_fleet_generator(lab_factory):
    lab = lab_factory(fleet=3)
    si = lab.connect()
    clusters = sorted(c.name for c in find_all(si, vim.ClusterComputeResource))
    assert clusters == ["Fleet-01", "Fleet-02", "Fleet-03"]
    cl = find(si, vim.ClusterComputeResource, "Fleet-02")
    assert sorted(h.name for h in cl.host) == ["esx-f02-1.lab.local", "esx-f02-2.lab.local"]
    host = find(si, vim.HostSystem, "esx-f02-1.lab.local")
    assert host.config.product.version == "8.0.2"
    disks = disks_by_name(host)
    for naa in (
        "naa.60060160123456780000000000020000",
        "naa.60060160123456780000000000020001",
        "naa.60060160123456780000000000020002",
    ):
        assert len(naa) == 4 + 32
        assert naa in disks
    assert "naa.60060160123456780000000000010001" not in disks
    ds = find(si, vim.Datastore, "SAN-VMFS-02")
    assert [e.diskName for e in ds.info.vmfs.extent] == ["naa.60060160123456780000000000020000"]
    assert {"Production", "Heartbeat"} <= {n.name for n in host.network}
    for node, hname in (("F02-NODE1", "esx-f02-1.lab.local"), ("F02-NODE2", "esx-f02-2.lab.local")):
        vm = find(si, vim.VirtualMachine, node)
        p = props(si, vm, "runtime.powerState", "runtime.host")
        assert p["runtime.powerState"] == "poweredOn"
        assert p["runtime.host"].name == hname


def test_start_time(lab_binary, tmp_path):
    t0 = time.monotonic()
    server = labctl.start(labctl.DEFAULT_LAB, tmp_path / "run", binary=lab_binary)
    try:
        elapsed = time.monotonic() - t0
        print(f"default lab served after {elapsed:.3f}s (server-side {server.info['start_ms']} ms)")
        assert elapsed < 5.0
        assert prop(server.connect(), find(server.connect(), vim.VirtualMachine, "CIB-NODE1"), "name") == "CIB-NODE1"
    finally:
        server.stop()
