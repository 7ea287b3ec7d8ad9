"""The lab holds up as a vCenter does (tests/lab/README.md): no request crashes it, hosts
describe their advanced options, ReconfigureCluster_Task works, controllers list their
devices, every task carries a method name pyVmomi knows, and fault rules can lose an
answer after the call ran (drop_after) or hold a call for a minute (delay)."""

from __future__ import annotations

import http.client
import threading
import time
from pathlib import Path

import pytest
from pyVim.task import WaitForTask
from pyVmomi import VmomiSupport, vim, vmodl

import labctl
from labctl import find, find_all, prop, props, wait

Dev = vim.vm.device
Spec = vim.vm.device.VirtualDeviceSpec
LONG = VmomiSupport.vmodlTypes["long"]
A001 = "naa.6006016012345678000000000000a001"
DROPPED = (http.client.HTTPException, ConnectionError, OSError)


def connect(lab: labctl.Lab):
    # a lock the lab failed to release would hang the next call: time out instead
    return lab.connect(httpConnectionTimeout=30)


def devices(si, vm) -> list:
    return prop(si, vm, "config.hardware.device")


def scsi_controller(devs, bus: int = 0):
    return next(d for d in devs if isinstance(d, Dev.VirtualSCSIController) and d.busNumber == bus)


def reconfigure(vm, *changes, **spec):
    return wait(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(deviceChange=list(changes), **spec)))


def new_disk(controller_key: int, unit: int, file_name: str, create: bool = True, key: int = -1) -> Spec:
    backing = Dev.VirtualDisk.FlatVer2BackingInfo(fileName=file_name, diskMode="persistent")
    if create:
        backing.thinProvisioned = True
    disk = Dev.VirtualDisk(key=key, controllerKey=controller_key, unitNumber=unit, backing=backing)
    spec = Spec(operation="add", device=disk)
    if create:
        disk.capacityInKB = 1024 * 1024
        spec.fileOperation = "create"
    return spec


def lab_log(lab: labctl.Lab) -> str:
    return Path(lab.log_file).read_text(errors="replace")


# ---- 1. no request crashes the lab ------------------------------------------------


def test_disk_on_another_hosts_local_datastore_answers_invalid_datastore(lab):
    """The simulator crashed on a disk of a datastore its VM's host does not mount
    (findDatastore: mo.Entity is nil); ESXi answers InvalidDatastore."""
    si = connect(lab)
    n1 = find(si, vim.VirtualMachine, "SQLNODE1")  # esx-a1
    n2 = find(si, vim.VirtualMachine, "SQLNODE2")  # esx-a2
    a2 = find(si, vim.HostSystem, "esx-a2.lab.local")
    # SQLNODE2 creates a VMDK and an RDM mapping file on esx-a2's local datastore
    reconfigure(n2, new_disk(scsi_controller(devices(si, n2)).key, 1, "[esx-a2-local] x.vmdk"))
    lun = next(x for x in a2.config.storageDevice.scsiLun if x.canonicalName == A001)
    rdm = Dev.VirtualDisk.RawDiskMappingVer1BackingInfo(
        fileName="[esx-a2-local] rdm.vmdk",
        deviceName=lun.devicePath,
        lunUuid=lun.uuid,
        compatibilityMode="physicalMode",
        diskMode="independent_persistent",
    )
    ck2 = scsi_controller(devices(si, n2)).key
    reconfigure(
        n2,
        Spec(
            operation="add",
            fileOperation="create",
            device=Dev.VirtualDisk(key=-2, controllerKey=ck2, unitNumber=2, backing=rdm),
        ),
    )
    local_a2 = find(si, vim.Datastore, "esx-a2-local")

    # SQLNODE1 on esx-a1 attaches them: refused, nothing applied
    ck1 = scsi_controller(devices(si, n1)).key
    before = devices(si, n1)
    attach_rdm = Dev.VirtualDisk.RawDiskMappingVer1BackingInfo(fileName="[esx-a2-local] rdm.vmdk")
    for change in (
        new_disk(ck1, 1, "[esx-a2-local] x.vmdk", create=False),
        Spec(operation="add", device=Dev.VirtualDisk(key=-3, controllerKey=ck1, unitNumber=2, backing=attach_rdm)),
    ):
        with pytest.raises(vim.fault.InvalidDatastore) as err:
            reconfigure(n1, change)
        assert err.value.name == "esx-a2-local"
        assert err.value.datastore == local_a2
        assert "esx-a1.lab.local" in err.value.msg
    assert len(devices(si, n1)) == len(before)

    # the lab serves on, the VM included
    assert lab.running
    reconfigure(n1, annotation="still here")
    assert prop(si, n1, "config.annotation") == "still here"
    assert "panic" not in lab_log(lab)


def test_create_vm_on_a_host_that_does_not_mount_its_disks_datastore(lab):
    si = connect(lab)
    dc = find(si, vim.Datacenter, "DC1")
    a1 = find(si, vim.HostSystem, "esx-a1.lab.local")
    pool = a1.parent.resourcePool

    def spec(name):
        ctl = Dev.VirtualLsiLogicSASController(key=-100, busNumber=0, sharedBus="noSharing")
        return vim.vm.ConfigSpec(
            name=name,
            guestId="windows9Server64Guest",
            numCPUs=1,
            memoryMB=1024,
            files=vim.vm.FileInfo(vmPathName="[SAN-VMFS-01]"),
            deviceChange=[
                Spec(operation="add", device=ctl),
                new_disk(-100, 0, f"[esx-a2-local] {name}.vmdk", key=-101),
            ],
        )

    with pytest.raises(vim.fault.InvalidDatastore) as err:
        wait(dc.vmFolder.CreateVM_Task(spec("ON-A1"), pool, a1))
    assert err.value.name == "esx-a2-local"
    # without a host the VM goes where all its files are: esx-a2
    vm = wait(dc.vmFolder.CreateVM_Task(spec("ANYWHERE"), pool))
    assert prop(si, vm, "runtime.host").name == "esx-a2.lab.local"
    assert lab.running


def test_a_panic_serving_a_call_answers_system_error(lab):
    si = connect(lab)
    vm = find(si, vim.VirtualMachine, "SQLNODE1")
    lab.inject_fault(method="ReconfigVM_Task", object="SQLNODE1", action="panic")
    with pytest.raises(vmodl.fault.SystemError) as err:
        vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(annotation="crash"))
    assert "ReconfigVM_Task" in err.value.reason
    assert vm._moId in err.value.reason
    assert "ReconfigVM_Task" in err.value.msg
    log = lab_log(lab)
    assert "panic: The lab failed serving ReconfigVM_Task" in log
    assert "goroutine" in log  # with its stack
    # the VM's lock, held when the lab panicked, was released: the next call on it works
    reconfigure(vm, annotation="after")
    assert prop(si, vm, "config.annotation") == "after"
    assert lab.running and si.CurrentTime()


def test_a_panic_in_a_task_ends_the_task_in_system_error(lab):
    si = connect(lab)
    vm = find(si, vim.VirtualMachine, "SQLNODE2")
    lab.inject_fault(method="ReconfigVM_Task", object="SQLNODE2", action="panic_task")
    task = vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(annotation="crash"))
    with pytest.raises(vmodl.fault.SystemError) as err:
        wait(task)
    assert "ReconfigVM_Task" in err.value.reason
    assert prop(si, vm, "config.annotation") != "crash"
    reconfigure(vm, annotation="after")
    assert prop(si, vm, "config.annotation") == "after"
    assert "panic: The lab failed running the task of ReconfigVM_Task" in lab_log(lab)


def test_a_simulator_crash_in_a_task_is_recovered(lab):
    """A rule removal without removeKey crashes the simulator's task (a nil type assertion)."""
    si = connect(lab)
    cl = find(si, vim.ClusterComputeResource, "Cluster-A")
    n1 = find(si, vim.VirtualMachine, "SQLNODE1")
    n2 = find(si, vim.VirtualMachine, "SQLNODE2")
    rule = vim.cluster.AntiAffinityRuleSpec(name="anti", enabled=True, vm=[n1, n2])
    wait(
        cl.ReconfigureComputeResource_Task(
            vim.cluster.ConfigSpecEx(rulesSpec=[vim.cluster.RuleSpec(operation="add", info=rule)]), True
        )
    )
    bad = vim.cluster.ConfigSpecEx(rulesSpec=[vim.cluster.RuleSpec(operation="remove")])
    with pytest.raises(vmodl.fault.SystemError) as err:
        wait(cl.ReconfigureComputeResource_Task(bad, True))
    assert "ReconfigureComputeResource_Task" in err.value.reason
    (kept,) = prop(si, cl, "configurationEx").rule
    wait(
        cl.ReconfigureComputeResource_Task(
            vim.cluster.ConfigSpecEx(rulesSpec=[vim.cluster.RuleSpec(operation="remove", removeKey=kept.key)]), True
        )
    )
    assert prop(si, cl, "configurationEx").rule == []
    assert lab.running


# ---- 2. supportedOption --------------------------------------------------------------


def test_hosts_describe_their_advanced_options(lab):
    si = connect(lab)
    for host in find_all(si, vim.HostSystem):
        om = host.configManager.advancedOption
        defs = {d.key: d for d in om.supportedOption}
        settings = {o.key: o.value for o in om.setting}
        assert set(settings) <= set(defs), host.name
        for key, value in settings.items():
            kind = defs[key].optionType
            if isinstance(value, bool):
                assert isinstance(kind, vim.option.BoolOption), key
            elif isinstance(value, int):
                assert isinstance(kind, vim.option.LongOption), key
                assert kind.min <= kind.defaultValue <= kind.max, key
                assert kind.min <= value <= kind.max, key
            else:
                assert isinstance(kind, vim.option.StringOption), key
        lun_reset = defs["Disk.UseLunReset"].optionType
        assert (lun_reset.min, lun_reset.max, lun_reset.defaultValue) == (0, 1, 1)
        apd = defs["Misc.APDTimeout"].optionType
        assert (apd.min, apd.max, apd.defaultValue) == (20, 99999, 140)
        assert {"Disk.ResetOnFailure", "Disk.UseDeviceReset", "Disk.MaxLUN"} <= set(defs)
        assert defs["Disk.MaxLUN"].label
        # host.config.optionDef describes them too
        assert set(defs) <= {d.key for d in prop(si, host, "config.optionDef")}


def test_update_options_is_checked_against_the_definitions(lab):
    si = connect(lab)
    om = find(si, vim.HostSystem, "esx-a1.lab.local").configManager.advancedOption

    def update(*pairs):
        om.UpdateOptions(changedValue=[vim.option.OptionValue(key=k, value=v) for k, v in pairs])

    for key, value in (("Disk.UseLunReset", LONG(2)), ("Disk.MaxLUN", LONG(0)), ("Misc.APDTimeout", LONG(19))):
        with pytest.raises(vmodl.fault.InvalidArgument) as err:
            update((key, value))
        assert err.value.invalidProperty == key
        assert "out of range" in err.value.msg
    for key, value in (("Disk.UseLunReset", "1"), ("Disk.UseLunReset", True), ("Config.HostAgent.log.level", LONG(1))):
        with pytest.raises(vmodl.fault.InvalidArgument) as err:
            update((key, value))
        assert err.value.invalidProperty == key
    with pytest.raises(vim.fault.InvalidName):
        update(("Disk.NoSuchOption", LONG(1)))
    # one bad change: nothing applied
    with pytest.raises(vmodl.fault.InvalidArgument):
        update(("Disk.ResetOnFailure", LONG(1)), ("Disk.MaxLUN", LONG(99999)))
    assert om.QueryOptions("Disk.ResetOnFailure")[0].value == 0
    update(("Disk.ResetOnFailure", LONG(1)), ("Misc.APDTimeout", LONG(20)), ("Config.HostAgent.log.level", "verbose"))
    got = {o.key: o.value for o in om.setting}
    assert (got["Disk.ResetOnFailure"], got["Misc.APDTimeout"], got["Config.HostAgent.log.level"]) == (1, 20, "verbose")


def test_lab_file_options_are_described_and_checked(lab_factory, tmp_path):
    lab = lab_factory(
        """
clusters:
  - name: C1
    hosts:
      - name: h1.lab.local
        options: {Disk.ResetOnFailure: 1, Lab.Text: abc, Lab.Flag: true, Lab.Count: 5}
"""
    )
    si = connect(lab)
    om = find(si, vim.HostSystem, "h1.lab.local").configManager.advancedOption
    defs = {d.key: d.optionType for d in om.supportedOption}
    assert isinstance(defs["Lab.Text"], vim.option.StringOption) and defs["Lab.Text"].defaultValue == "abc"
    assert isinstance(defs["Lab.Flag"], vim.option.BoolOption) and defs["Lab.Flag"].defaultValue is True
    assert isinstance(defs["Lab.Count"], vim.option.LongOption) and defs["Lab.Count"].defaultValue == 5
    # a lab-file override keeps ESXi's default in the definition
    assert defs["Disk.ResetOnFailure"].defaultValue == 0
    assert om.QueryOptions("Disk.ResetOnFailure")[0].value == 1
    with pytest.raises(vmodl.fault.InvalidArgument):
        om.UpdateOptions(changedValue=[vim.option.OptionValue(key="Lab.Flag", value="yes")])
    om.UpdateOptions(changedValue=[vim.option.OptionValue(key="Lab.Flag", value=False)])

    with pytest.raises(RuntimeError, match=r"Disk\.MaxLUN"):
        lab_factory("clusters: [{name: C1, hosts: [{name: h1.lab.local, options: {Disk.MaxLUN: 0}}]}]\n")


# ---- 3. ReconfigureCluster_Task ------------------------------------------------------


def test_reconfigure_cluster_task(lab):
    si = connect(lab)
    cl = find(si, vim.ClusterComputeResource, "Cluster-A")
    n1 = find(si, vim.VirtualMachine, "SQLNODE1")
    n2 = find(si, vim.VirtualMachine, "SQLNODE2")
    rule = vim.cluster.AntiAffinityRuleSpec(name="sql-anti", enabled=True, mandatory=True, vm=[n1, n2])
    drs = vim.cluster.DrsVmConfigInfo(key=n1, enabled=True, behavior="manual")
    das = vim.cluster.DasVmConfigInfo(key=n2, dasSettings=vim.cluster.DasVmSettings(restartPriority="low"))
    spec = vim.cluster.ConfigSpec(
        rulesSpec=[vim.cluster.RuleSpec(operation="add", info=rule)],
        drsVmConfigSpec=[vim.cluster.DrsVmConfigSpec(operation="add", info=drs)],
        dasVmConfigSpec=[vim.cluster.DasVmConfigSpec(operation="add", info=das)],
        drsConfig=vim.cluster.DrsConfigInfo(defaultVmBehavior="partiallyAutomated"),
        dasConfig=vim.cluster.DasConfigInfo(admissionControlEnabled=False),
    )
    task = cl.ReconfigureCluster_Task(spec=spec, modify=True)
    WaitForTask(task)
    assert task.info.name.info.wsdlName == "ReconfigureCluster_Task"
    assert task.info.descriptionId == "ClusterComputeResource.reconfigure"
    cfg = prop(si, cl, "configurationEx")
    (rule,) = cfg.rule  # as stored, with its key
    assert (rule.name, rule.mandatory, sorted(v.name for v in rule.vm)) == ("sql-anti", True, ["SQLNODE1", "SQLNODE2"])
    assert [(c.key.name, c.behavior) for c in cfg.drsVmConfig] == [("SQLNODE1", "manual")]
    assert [(c.key.name, c.dasSettings.restartPriority) for c in cfg.dasVmConfig] == [("SQLNODE2", "low")]
    assert cfg.drsConfig.defaultVmBehavior == "partiallyAutomated"
    assert cfg.drsConfig.enabled is True  # untouched
    assert cfg.dasConfig.admissionControlEnabled is False
    assert cfg.dasConfig.enabled is True
    # same rules as ReconfigureComputeResource_Task: a second rule of that name is refused
    with pytest.raises(vmodl.fault.InvalidArgument):
        wait(cl.ReconfigureCluster_Task(spec=vim.cluster.ConfigSpec(rulesSpec=spec.rulesSpec), modify=True))
    wait(
        cl.ReconfigureCluster_Task(
            spec=vim.cluster.ConfigSpec(rulesSpec=[vim.cluster.RuleSpec(operation="remove", removeKey=rule.key)]),
            modify=True,
        )
    )
    assert prop(si, cl, "configurationEx").rule == []


# ---- 4. controllers list their devices -----------------------------------------------


def assert_controllers_list_their_devices(devs, what: str):
    for c in devs:
        if isinstance(c, Dev.VirtualController):
            attached = [d.key for d in devs if d.controllerKey == c.key]
            assert list(c.device) == attached, f"{what}: {type(c).__name__} {c.key}"


def test_controllers_list_their_devices(lab):
    si = connect(lab)
    for vm in find_all(si, vim.VirtualMachine):
        devs = devices(si, vm)
        assert_controllers_list_their_devices(devs, vm.name)
        scsi = scsi_controller(devs)
        assert list(scsi.device) == [d.key for d in devs if isinstance(d, Dev.VirtualDisk)]
        assert scsi.device, vm.name

    vm = find(si, vim.VirtualMachine, "P2V-NODE1")
    ck = scsi_controller(devices(si, vm)).key
    reconfigure(vm, new_disk(ck, 1, "[SAN-VMFS-01] P2V-NODE1/extra.vmdk"))
    devs = devices(si, vm)
    extra = next(d for d in devs if isinstance(d, Dev.VirtualDisk) and d.unitNumber == 1)
    assert extra.key in scsi_controller(devs).device
    assert_controllers_list_their_devices(devs, "after add")
    reconfigure(vm, Spec(operation="remove", device=extra))
    devs = devices(si, vm)
    assert extra.key not in scsi_controller(devs).device
    assert_controllers_list_their_devices(devs, "after remove")

    # a second controller added off, with a disk in the same spec
    wait(vm.PowerOffVM_Task())
    ctl = Dev.VirtualLsiLogicSASController(key=-50, busNumber=1, sharedBus="physicalSharing")
    disk = new_disk(-50, 0, "[SAN-VMFS-01] P2V-NODE1/shared.vmdk", key=-51)
    disk.device.backing.thinProvisioned = False
    disk.device.backing.eagerlyScrub = True
    reconfigure(vm, Spec(operation="add", device=ctl), disk)
    devs = devices(si, vm)
    bus1 = scsi_controller(devs, 1)
    assert [d.key for d in devs if isinstance(d, Dev.VirtualDisk) and d.controllerKey == bus1.key] == list(bus1.device)
    assert len(bus1.device) == 1
    assert_controllers_list_their_devices(devs, "second controller")

    # a VM created through the API
    dc = find(si, vim.Datacenter, "DC1")
    host = find(si, vim.HostSystem, "esx-a1.lab.local")
    spec = vim.vm.ConfigSpec(
        name="NEW-VM",
        guestId="windows9Server64Guest",
        numCPUs=1,
        memoryMB=1024,
        files=vim.vm.FileInfo(vmPathName="[SAN-VMFS-01]"),
        deviceChange=[
            Spec(operation="add", device=Dev.ParaVirtualSCSIController(key=-100, busNumber=0, sharedBus="noSharing")),
            new_disk(-100, 0, "", key=-101),
            new_disk(-100, 1, "", key=-102),
        ],
    )
    new = wait(dc.vmFolder.CreateVM_Task(spec, host.parent.resourcePool, host))
    devs = devices(si, new)
    assert len(scsi_controller(devs).device) == 2
    assert_controllers_list_their_devices(devs, "NEW-VM")


# ---- 5. task names ---------------------------------------------------------------------


def assert_known_method(task, wire: str, description_id: str):
    name = task.info.name
    assert isinstance(name, VmomiSupport.ManagedMethod)
    assert not isinstance(name, VmomiSupport.UnknownManagedMethod), f"{wire}: {getattr(name, 'name', name)}"
    assert name.info.wsdlName == wire
    assert task.info.descriptionId == description_id


def test_every_task_names_a_method_pyvmomi_knows(lab):
    si = connect(lab)
    vm = find(si, vim.VirtualMachine, "SQLNODE1")
    cl = find(si, vim.ClusterComputeResource, "Cluster-A")
    dc = find(si, vim.Datacenter, "DC1")
    host = find(si, vim.HostSystem, "esx-a1.lab.local")
    folder_tasks_before = len(prop(si, dc.vmFolder, "recentTask"))

    calls = [
        (
            lambda: vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(annotation="x")),
            "ReconfigVM_Task",
            "VirtualMachine.reconfigure",
        ),
        (vm.PowerOffVM_Task, "PowerOffVM_Task", "VirtualMachine.powerOff"),
        (vm.PowerOnVM_Task, "PowerOnVM_Task", "VirtualMachine.powerOn"),
        (
            lambda: cl.ReconfigureComputeResource_Task(
                vim.cluster.ConfigSpecEx(drsConfig=vim.cluster.DrsConfigInfo(enabled=True)), True
            ),
            "ReconfigureComputeResource_Task",
            "ClusterComputeResource.reconfigureEx",
        ),
        (
            lambda: dc.vmFolder.CreateVM_Task(
                vim.vm.ConfigSpec(
                    name="app/01", guestId="windows9Server64Guest", files=vim.vm.FileInfo(vmPathName="[SAN-VMFS-01]")
                ),
                host.parent.resourcePool,
                host,
            ),
            "CreateVM_Task",
            "Folder.createVm",
        ),
        (lambda: vm.Rename_Task("SQL/NODE 1"), "Rename_Task", "VirtualMachine.rename"),
    ]
    for call, wire, description_id in calls:
        task = call()
        assert WaitForTask(task) == "success", wire
        assert_known_method(task, wire, description_id)
    created = find(si, vim.VirtualMachine, "app%2f01")
    assert vm.name == "SQL%2fNODE 1"

    # the inner CreateVm of the escaped name is not in the task lists
    folder_tasks = prop(si, dc.vmFolder, "recentTask")
    assert len(folder_tasks) == folder_tasks_before + 1
    recent = si.content.taskManager.recentTask
    for task in recent:
        name = task.info.name
        assert not isinstance(name, VmomiSupport.UnknownManagedMethod), name.name
        assert not (task.info.entityName or "").startswith("lab-naming")
    # the entity's name when the task began (the VM was renamed last)
    entity_names = {t.info.entityName for t in recent}
    assert {"SQLNODE1", "Cluster-A", "vm"} <= entity_names
    collector = si.content.taskManager.CreateCollectorForTasks(vim.TaskFilterSpec())
    try:
        page = collector.latestPage
        assert all(not isinstance(i.name, VmomiSupport.UnknownManagedMethod) for i in page)
        assert sum(1 for i in page if i.descriptionId == "Folder.createVm" and i.result == created) == 1
    finally:
        collector.DestroyCollector()


def test_internal_tasks_name_their_method_too(lab):
    """PowerOnMultiVM_Task's per-VM power-ons run inside its own task: out of the task
    lists, but a client waiting on one (its result names them) reads a method it knows."""
    si = connect(lab)
    dc = find(si, vim.Datacenter, "DC1")
    vms = [find(si, vim.VirtualMachine, n) for n in ("CIB-NODE1", "CIB-NODE2")]
    for vm in vms:
        wait(vm.PowerOffVM_Task())
    task = dc.PowerOnMultiVM_Task(vm=vms)
    assert WaitForTask(task) == "success"
    assert_known_method(task, "PowerOnMultiVM_Task", "Datacenter.powerOnVm")
    inner = [a.task for a in task.info.result.attempted]
    assert len(inner) == 2
    for t in inner:
        assert WaitForTask(t) == "success"
        assert_known_method(t, "PowerOnVM_Task", "VirtualMachine.powerOn")
    recent = {t._moId for t in si.content.taskManager.recentTask}
    assert task._moId in recent
    assert not recent & {t._moId for t in inner}
    assert all(prop(si, vm, "runtime.powerState") == "poweredOn" for vm in vms)


def test_a_running_task_names_its_method(lab):
    """pyVim's WaitForTask reads info.name.info.name of a running task: the task in the way
    of a TaskInProgress fault runs for half a second."""
    si = connect(lab)
    vm = find(si, vim.VirtualMachine, "SQLNODE2")
    lab.inject_fault(method="PowerOffVM_Task", object="SQLNODE2", fault="TaskInProgress")
    with pytest.raises(vim.fault.TaskInProgress) as err:
        vm.PowerOffVM_Task()
    busy = err.value.task
    assert busy.info.state == "running"
    assert WaitForTask(busy) == "success"
    assert_known_method(busy, "ReconfigVM_Task", "VirtualMachine.reconfigure")
    assert busy.info.entityName == "SQLNODE2"


def test_failed_tasks_name_their_method(lab):
    si = connect(lab)
    vm = find(si, vim.VirtualMachine, "SQLNODE1")
    lab.inject_fault(method="ReconfigVM_Task", fault="task", message="disk locked")
    task = vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(annotation="x"))
    with pytest.raises(vim.fault.GenericVmConfigFault):
        WaitForTask(task)
    assert_known_method(task, "ReconfigVM_Task", "VirtualMachine.reconfigure")
    # refused by the lab itself (bus sharing on a running VM)
    ctl = Dev.VirtualLsiLogicSASController(key=-50, busNumber=1, sharedBus="physicalSharing")
    task = vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(deviceChange=[Spec(operation="add", device=ctl)]))
    with pytest.raises(vim.fault.InvalidPowerState):
        WaitForTask(task)
    assert_known_method(task, "ReconfigVM_Task", "VirtualMachine.reconfigure")


# ---- 6. drop_after and long delays ---------------------------------------------------------


def test_drop_after_runs_the_call_and_loses_the_answer(lab):
    si = connect(lab)
    vm = find(si, vim.VirtualMachine, "SQLNODE1")
    nics_before = [d.key for d in devices(si, vm) if isinstance(d, Dev.VirtualEthernetCard)]
    rule = lab.inject_fault(method="ReconfigVM_Task", object="SQLNODE1", action="drop_after")
    nic = Dev.VirtualVmxnet3(key=-1, backing=Dev.VirtualEthernetCard.NetworkBackingInfo(deviceName="Heartbeat"))
    with pytest.raises(DROPPED):
        vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(deviceChange=[Spec(operation="add", device=nic)]))
    # the client never learnt the task, but the change happened
    deadline = time.monotonic() + 10
    while True:
        nics = [d for d in devices(si, vm) if isinstance(d, Dev.VirtualEthernetCard)]
        if len(nics) > len(nics_before) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    added = [d for d in nics if d.key not in nics_before]
    assert [d.backing.deviceName for d in added] == ["Heartbeat"]
    (seen,) = [r for r in lab.faults() if r["id"] == rule]
    assert seen["hits"] == 1
    # the task is in the task list, as vCenter would show it
    reconfigs = [t for t in si.content.taskManager.recentTask if t.info.descriptionId == "VirtualMachine.reconfigure"]
    assert reconfigs[-1].info.state == "success"
    assert reconfigs[-1].info.entity == vm


def test_delay_rules_are_bounded(lab):
    assert lab.inject_fault(method="PowerOffVM_Task", action="delay", delay_ms=60_000)
    with pytest.raises(RuntimeError, match="delay_ms"):
        lab.inject_fault(method="PowerOffVM_Task", action="delay", delay_ms=600_001)
    with pytest.raises(RuntimeError, match="panic_task needs"):
        lab.inject_fault(method="CurrentTime", action="panic_task")


@pytest.mark.slow
def test_delay_holds_a_call_while_others_are_served(lab):
    si = lab.connect()  # no client timeout: the call is held 15 s (rules accept up to 10 minutes)
    other = connect(lab)
    vm = find(si, vim.VirtualMachine, "SQLNODE1")
    lab.inject_fault(method="ReconfigVM_Task", object="SQLNODE1", action="delay", delay_ms=15_000)
    result: dict[str, object] = {}

    def held():
        t0 = time.monotonic()
        try:
            result["task"] = vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(annotation="held"))
        except Exception as e:  # reported below
            result["error"] = e
        result["seconds"] = time.monotonic() - t0

    thread = threading.Thread(target=held)
    thread.start()
    # meanwhile the lab serves others, the same VM included
    time.sleep(1)
    assert prop(other, find(other, vim.VirtualMachine, "SQLNODE1"), "config.annotation") != "held"
    thread.join(90)
    assert "error" not in result, result.get("error")
    assert result["seconds"] >= 15
    wait(result["task"])
    assert props(si, vm, "config.annotation") == {"config.annotation": "held"}
