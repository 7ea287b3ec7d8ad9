"""Entity names in the lab, escaped as a real vCenter returns them (tests/lab/README.md, "Entity names").

vCenter escapes %, / and \\ as %25, %2f and %5c in every ManagedEntity.name. The lab file
tests/lab/labs/odd-names.yaml names its VMs ``SQL/NODE 1`` and ``Ö'NODE%2`` as a user types
them; through pyVmomi over TLS they read ``SQL%2fNODE 1`` and ``Ö'NODE%252``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from pyVmomi import vim, vmodl

import labctl
from labctl import find, props, wait
from providers.vcenter.names import escape_name, unescape_name

ODD_LAB = labctl.LAB_SRC / "labs" / "odd-names.yaml"
NODE1, NODE2 = "SQL%2fNODE 1", "Ö'NODE%252"
DS = "SAN-VMFS-01"
CMD = r"C:\Windows\System32\cmd.exe"


@pytest.fixture
def odd_lab(lab_factory) -> labctl.Lab:
    return lab_factory(ODD_LAB, extra_args=("--wine", "off"))


@pytest.fixture
def si(odd_lab: labctl.Lab) -> Any:
    return odd_lab.connect()


def names(si: Any, vimtype: Any, *paths: str) -> dict[str, dict[str, Any]]:
    """``name`` (and more paths) of every object of a type, in one PropertyCollector call."""
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vimtype], True)
    try:
        pc = content.propertyCollector
        spec = vmodl.query.PropertyCollector.FilterSpec(
            objectSet=[
                vmodl.query.PropertyCollector.ObjectSpec(
                    obj=view,
                    skip=True,
                    selectSet=[
                        vmodl.query.PropertyCollector.TraversalSpec(
                            name="view", path="view", skip=False, type=vim.view.ContainerView
                        )
                    ],
                )
            ],
            propSet=[vmodl.query.PropertyCollector.PropertySpec(type=vimtype, pathSet=["name", *paths])],
        )
        res = pc.RetrievePropertiesEx([spec], vmodl.query.PropertyCollector.RetrieveOptions())
        out: dict[str, dict[str, Any]] = {}
        while res:
            for oc in res.objects:
                got = {p.name: p.val for p in oc.propSet}
                out[got["name"]] = got
            res = pc.ContinueRetrievePropertiesEx(res.token) if res.token else None
        return out
    finally:
        view.Destroy()


def new_vm_spec(name: str, network: str, datastore: str = DS, vm_path: str = "") -> vim.vm.ConfigSpec:
    """A VM with an LSI Logic SAS controller, a new thin disk named by the lab, and a vmxnet3 NIC."""
    controller = vim.vm.device.VirtualLsiLogicSASController(key=-100, busNumber=0, sharedBus="noSharing")
    disk = vim.vm.device.VirtualDisk(
        key=-101,
        controllerKey=-100,
        unitNumber=0,
        capacityInKB=1024 * 1024,
        backing=vim.vm.device.VirtualDisk.FlatVer2BackingInfo(diskMode="persistent", thinProvisioned=True, fileName=""),
    )
    nic = vim.vm.device.VirtualVmxnet3(
        key=-1, backing=vim.vm.device.VirtualEthernetCard.NetworkBackingInfo(deviceName=network)
    )
    add = vim.vm.device.VirtualDeviceSpec.Operation.add
    return vim.vm.ConfigSpec(
        name=name,
        guestId="windows9Server64Guest",
        numCPUs=2,
        memoryMB=1024,
        files=vim.vm.FileInfo(vmPathName=f"[{datastore}] {vm_path}".strip()),
        deviceChange=[
            vim.vm.device.VirtualDeviceSpec(operation=add, device=controller),
            vim.vm.device.VirtualDeviceSpec(operation=add, fileOperation="create", device=disk),
            vim.vm.device.VirtualDeviceSpec(operation=add, device=nic),
        ],
    )


def create_vm(si: Any, spec: vim.vm.ConfigSpec, host: str = "esx-a1.lab.local") -> vim.VirtualMachine:
    dc = find(si, vim.Datacenter, "DC1")
    h = find(si, vim.HostSystem, host)
    return wait(dc.vmFolder.CreateVM_Task(spec, h.parent.resourcePool, h))


def files_of(lab: labctl.Lab, folder: str) -> set[str]:
    return {p.name for p in (Path(lab.run_dir) / "datastores" / DS / folder).iterdir()}


def test_lab_file_names_come_back_escaped(si):
    vms = names(si, vim.VirtualMachine, "config.name", "summary.config.name", "config.files.vmPathName")
    assert set(vms) == {NODE1, NODE2}
    assert {unescape_name(n) for n in vms} == {"SQL/NODE 1", "Ö'NODE%2"}
    for name, got in vms.items():
        assert got["config.name"] == got["summary.config.name"] == name
        assert got["config.files.vmPathName"] == f"[{DS}] {name}/{name}.vmx"

    networks = names(si, vim.Network, "summary.name")
    assert {"Prod Net", "Heart Beat"} <= set(networks)
    assert all(got["summary.name"] == name for name, got in networks.items())
    assert set(names(si, vim.ClusterComputeResource)) == {"Cluster-A"}
    assert DS in names(si, vim.Datastore)


def test_escaped_names_everywhere_a_vm_is_named(si, odd_lab):
    vm = find(si, vim.VirtualMachine, NODE1)
    p = props(si, vm, "config.hardware.device", "guest.hostName")
    disk = next(d for d in p["config.hardware.device"] if isinstance(d, vim.vm.device.VirtualDisk))
    assert disk.backing.fileName == f"[{DS}] {NODE1}/{NODE1}.vmdk"
    nic = next(d for d in p["config.hardware.device"] if isinstance(d, vim.vm.device.VirtualEthernetCard))
    # the NIC names its network as the Network does
    assert nic.backing.deviceName == "Prod Net"
    assert nic.backing.network.name == "Prod Net"
    assert p["guest.hostName"] == "sql-node-1.lab.local"
    assert {f"{NODE1}.vmx", f"{NODE1}.vmdk", f"{NODE1}.nvram"} <= files_of(odd_lab, NODE1)
    assert {f"{NODE2}.vmx", f"{NODE2}.vmdk"} <= files_of(odd_lab, NODE2)
    # the hosts name their port groups as typed
    host = find(si, vim.HostSystem, "esx-a1.lab.local")
    assert {"Prod Net", "Heart Beat"} <= {pg.spec.name for pg in host.config.network.portgroup}
    # creation events name the VM as it is named
    events = si.content.eventManager.QueryEvents(
        vim.event.EventFilterSpec(entity=vim.event.EventFilterSpec.ByEntity(entity=vm, recursion="self"))
    )
    created = [e for e in events if isinstance(e, vim.event.VmCreatedEvent)]
    assert created and created[0].vm.name == NODE1
    assert all(e.vm.name == NODE1 for e in events)


def test_lab_file_vms_power_and_reconfigure(si, odd_lab):
    vm = find(si, vim.VirtualMachine, NODE2)
    wait(vm.PowerOffVM_Task())
    controller = next(d for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualSCSIController))
    disk = vim.vm.device.VirtualDisk(
        key=-1,
        controllerKey=controller.key,
        unitNumber=1,
        capacityInKB=1024 * 1024,
        backing=vim.vm.device.VirtualDisk.FlatVer2BackingInfo(
            diskMode="persistent", thinProvisioned=False, eagerlyScrub=True, fileName=""
        ),
    )
    change = vim.vm.device.VirtualDeviceSpec(operation="add", fileOperation="create", device=disk)
    wait(vm.ReconfigVM_Task(vim.vm.ConfigSpec(deviceChange=[change])))
    files = [d.backing.fileName for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualDisk)]
    assert files == [f"[{DS}] {NODE2}/{NODE2}.vmdk", f"[{DS}] {NODE2}/{NODE2}_1.vmdk"]
    assert f"{NODE2}_1.vmdk" in files_of(odd_lab, NODE2)
    wait(vm.PowerOnVM_Task())
    assert vm.runtime.powerState == "poweredOn"
    assert vm.name == NODE2


def test_create_vm_with_odd_name_through_the_api(si, odd_lab):
    typed = "a/b\\c%d"
    vm = create_vm(si, new_vm_spec(typed, network="Heart Beat"))
    name = "a%2fb%5cc%25d"
    assert props(si, vm, "name")["name"] == name
    assert name in names(si, vim.VirtualMachine)
    assert escape_name(typed) == name
    p = props(si, vm, "config.name", "config.files.vmPathName", "config.hardware.device", "layoutEx.file")
    assert p["config.name"] == name
    assert p["config.files.vmPathName"] == f"[{DS}] {name}/{name}.vmx"
    disks = [d.backing.fileName for d in p["config.hardware.device"] if isinstance(d, vim.vm.device.VirtualDisk)]
    assert disks == [f"[{DS}] {name}/{name}.vmdk"]
    nics = [
        d.backing.deviceName for d in p["config.hardware.device"] if isinstance(d, vim.vm.device.VirtualEthernetCard)
    ]
    assert nics == ["Heart Beat"]
    assert {f"{name}.vmx", f"{name}.vmdk", f"{name}.nvram"} <= files_of(odd_lab, name)
    assert all(f.name.startswith(f"[{DS}] {name}/") for f in p["layoutEx.file"])

    wait(vm.PowerOnVM_Task())
    assert props(si, vm, "runtime.powerState")["runtime.powerState"] == "poweredOn"
    assert vm.summary.config.name == name


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("x%2Fy", "x%2Fy"),  # a % that starts an escape sequence is kept
        ("x%41y", "x%41y"),
        ("50%", "50%25"),
        ("Ö'NODE 3", "Ö'NODE 3"),
    ],
)
def test_api_names_keep_escape_sequences(si, given, stored):
    vm = create_vm(si, new_vm_spec(given, network="Prod Net"))
    assert vm.name == stored
    assert vm.config.files.vmPathName == f"[{DS}] {stored}/{stored}.vmx"


def test_rename_escapes(si):
    vm = find(si, vim.VirtualMachine, NODE1)
    wait(vm.Rename_Task("SQL\\NODE 1/100%"))
    assert props(si, vm, "name", "config.name") == {
        "name": "SQL%5cNODE 1%2f100%25",
        "config.name": "SQL%5cNODE 1%2f100%25",
    }
    folder = find(si, vim.Datacenter, "DC1").vmFolder.CreateFolder("Prod/SQL")
    assert folder.name == "Prod%2fSQL"
    with pytest.raises(vim.fault.DuplicateName):
        find(si, vim.Datacenter, "DC1").vmFolder.CreateFolder("Prod%2fSQL")


def test_lab_lookups_take_typed_or_escaped_names(si, odd_lab):
    assert odd_lab.guest("SQL/NODE 1")["vm"] == NODE1
    assert odd_lab.guest(NODE2)["vm"] == NODE2
    odd_lab.inject_fault(method="PowerOffVM_Task", object="SQL/NODE 1", fault="TaskInProgress")
    with pytest.raises(vim.fault.TaskInProgress):
        find(si, vim.VirtualMachine, NODE1).PowerOffVM_Task()


def test_bad_requests_do_not_crash_the_lab(si, odd_lab):
    # a NIC on a network that does not exist: the simulator alone would crash the lab
    with pytest.raises(vim.fault.InvalidDeviceBacking) as e:
        create_vm(si, new_vm_spec("bad-net", network="No Such Net"))
    assert "No Such Net" in e.value.msg
    with pytest.raises(vim.fault.InvalidDatastorePath):
        create_vm(si, new_vm_spec("bad-ds", network="Prod Net", datastore="No/Such DS"))
    with pytest.raises(vim.fault.InvalidDatastorePath):
        create_vm(si, new_vm_spec("bad-path", network="Prod Net", vm_path="../../outside/bad-path.vmx"))
    vm = find(si, vim.VirtualMachine, NODE1)
    nic = vim.vm.device.VirtualVmxnet3(
        key=-1, backing=vim.vm.device.VirtualEthernetCard.NetworkBackingInfo(deviceName="Prod/Net")
    )
    change = vim.vm.device.VirtualDeviceSpec(operation="add", device=nic)
    with pytest.raises(vim.fault.InvalidDeviceBacking):
        wait(vm.ReconfigVM_Task(vim.vm.ConfigSpec(deviceChange=[change])))

    assert odd_lab.running
    assert si.CurrentTime()
    assert set(names(si, vim.VirtualMachine)) == {NODE1, NODE2}


@pytest.mark.wine
def test_guests_of_odd_names_run_under_wine(lab_factory, lab_wine):
    lab = lab_factory(ODD_LAB)
    # the control API finds the guest by its typed name; its prefix is named safely after the VM
    code, out = lab.guest_reg(
        "SQL/NODE 1", "add", labctl.DISK_KEY, "/v", "TimeOutValue", "/t", "REG_DWORD", "/d", "60", "/f"
    )
    assert code == 0, out
    assert lab.guest_disk_timeout(NODE1) == ("REG_DWORD", "0x3c")
    prefix = Path(lab.guest(NODE1)["prefix"])
    assert prefix.parent == Path(lab.run_dir) / "wine" and prefix.name.endswith("-SQL_2fNODE_1")

    # a guest program through vSphere, in the VM whose name holds a quote and a '%'
    si = lab.connect()
    vm = find(si, vim.VirtualMachine, NODE2)
    manager = si.content.guestOperationsManager
    auth = vim.vm.guest.NamePasswordAuthentication(
        username=labctl.GUEST_USER, password=labctl.GUEST_PASSWORD, interactiveSession=False
    )
    spec = vim.vm.guest.ProcessManager.ProgramSpec(programPath=CMD, arguments="/c exit 3")
    pid = manager.processManager.StartProgramInGuest(vm=vm, auth=auth, spec=spec)
    for _ in range(600):
        (info,) = manager.processManager.ListProcessesInGuest(vm=vm, auth=auth, pids=[pid])
        if info.endTime is not None:
            break
        time.sleep(0.05)
    assert info.exitCode == 3
    assert lab.guest("Ö'NODE%2")["prefix"] is not None
