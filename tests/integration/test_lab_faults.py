"""Fault injection in the lab: SOAP faults on the Nth call, failing tasks,
delays, dropped connections, ended sessions; rules from the lab file, from
--fault flags and from the control API."""

from __future__ import annotations

import http.client
import ssl
import time

import pytest
from pyVmomi import vim

from labctl import find, prop, wait


def rename(vm, name):
    return wait(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(annotation=name)))


def test_nth_call_answers_task_in_progress(lab):
    si = lab.connect()
    vm = find(si, vim.VirtualMachine, "SQLNODE1")
    lab.reset_calls()
    rule = lab.inject_fault(method="ReconfigVM_Task", call=2, fault="TaskInProgress")
    rename(vm, "first")
    with pytest.raises(vim.fault.TaskInProgress) as err:
        rename(vm, "second")
    # the fault names the task in the way, a real one that completes
    assert isinstance(err.value.task, vim.Task)
    assert wait(err.value.task) is None
    rename(vm, "third")
    assert prop(si, vm, "config.annotation") == "third"
    assert lab.calls()["ReconfigVM_Task"] == 3
    (r,) = [r for r in lab.faults() if r["id"] == rule]
    assert (r["seen"], r["hits"]) == (3, 1)


def test_invalid_power_state_fault_on_one_object(lab):
    si = lab.connect()
    n1 = find(si, vim.VirtualMachine, "SQLNODE1")
    n2 = find(si, vim.VirtualMachine, "SQLNODE2")
    lab.inject_fault(method="PowerOffVM_Task", object="SQLNODE2", fault="InvalidPowerState")
    wait(n1.PowerOffVM_Task())
    with pytest.raises(vim.fault.InvalidPowerState) as err:
        n2.PowerOffVM_Task()
    assert err.value.existingState == "poweredOn"
    assert prop(si, n2, "runtime.powerState") == "poweredOn"
    wait(n2.PowerOffVM_Task())  # only the first call on SQLNODE2


def test_task_that_ends_in_error(lab):
    si = lab.connect()
    vm = find(si, vim.VirtualMachine, "CIB-NODE1")
    lab.inject_fault(method="ReconfigVM_Task", fault="task", message="The disk is locked by another host")
    task = vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(annotation="never"))
    assert isinstance(task, vim.Task)
    with pytest.raises(vim.fault.GenericVmConfigFault) as err:
        wait(task)
    assert err.value.msg == "The disk is locked by another host"
    assert task.info.state == "error"
    assert task.info.entity == vm
    assert task.info.descriptionId == "VirtualMachine.reconfigure"
    assert prop(si, vm, "config.annotation") != "never"
    # explicit form, another fault type
    lab.inject_fault(method="ReconfigVM_Task", action="task", fault="InvalidDeviceSpec", message="bad spec")
    with pytest.raises(vim.fault.InvalidDeviceSpec):
        wait(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(annotation="never")))
    rename(vm, "now")


def test_not_authenticated_fault(lab):
    si = lab.connect()
    lab.inject_fault(method="CurrentTime", call=2, fault="NotAuthenticated")
    si.CurrentTime()
    with pytest.raises(vim.fault.NotAuthenticated):
        si.CurrentTime()
    si.CurrentTime()


def test_delay(lab):
    si = lab.connect()
    lab.inject_fault(method="CurrentTime", action="delay", delay_ms=400)
    t0 = time.monotonic()
    si.CurrentTime()
    assert time.monotonic() - t0 >= 0.4
    t0 = time.monotonic()
    si.CurrentTime()
    assert time.monotonic() - t0 < 0.4


def test_drop_connection(lab):
    si = lab.connect()
    lab.inject_fault(method="CurrentTime", call=1, action="drop")
    with pytest.raises((http.client.HTTPException, ConnectionError, OSError)):
        si.CurrentTime()
    # the client reconnects on its next call, its session still valid
    assert si.CurrentTime()


def test_end_sessions(lab):
    si = lab.connect()
    si2 = lab.connect()
    assert lab.end_sessions() >= 2
    for s in (si, si2):
        with pytest.raises(vim.fault.NotAuthenticated):
            s.content.sessionManager.currentSession  # noqa: B018
    si3 = lab.connect()  # logging in again works
    assert si3.content.sessionManager.currentSession.userName == lab.username


def test_end_sessions_as_a_rule(lab):
    si = lab.connect()
    vm = find(si, vim.VirtualMachine, "SQLNODE1")
    lab.inject_fault(method="PowerOffVM_Task", action="end_sessions")
    with pytest.raises(vim.fault.NotAuthenticated):
        vm.PowerOffVM_Task()
    si2 = lab.connect()
    assert prop(si2, find(si2, vim.VirtualMachine, "SQLNODE1"), "runtime.powerState") == "poweredOn"


def test_every_call_from_n_on(lab):
    si = lab.connect()
    lab.inject_fault(method="CurrentTime", call=2, times=0, fault="NotAuthenticated")
    si.CurrentTime()
    for _ in range(3):
        with pytest.raises(vim.fault.NotAuthenticated):
            si.CurrentTime()
    lab.clear_faults()
    si.CurrentTime()


def test_faults_from_flags_and_lab_file(lab_factory):
    lab = lab_factory(
        faults=[
            "{method: CurrentTime, call: 1, fault: NotAuthenticated}",
            "method=PowerOnVM_Task,call=1,fault=task,message=insufficient resources",
        ]
    )
    si = lab.connect()
    with pytest.raises(vim.fault.NotAuthenticated):
        si.CurrentTime()
    vm = find(si, vim.VirtualMachine, "B-NODE1")
    wait(vm.PowerOffVM_Task())
    with pytest.raises(vim.fault.GenericVmConfigFault) as err:
        wait(vm.PowerOnVM_Task())
    assert err.value.msg == "insufficient resources"

    lab2 = lab_factory(
        """
clusters: [{name: C1, hosts: [{name: h1.lab.local}]}]
portgroups: [{name: Production}]
vms: [{name: VM1, host: h1.lab.local}]
faults:
  - {method: PowerOffVM_Task, object: VM1, call: 1, fault: TaskInProgress}
"""
    )
    si2 = lab2.connect()
    with pytest.raises(vim.fault.TaskInProgress):
        find(si2, vim.VirtualMachine, "VM1").PowerOffVM_Task()


def test_control_api(lab):
    ids = lab.control(
        "POST",
        "faults",
        [{"method": "CurrentTime", "fault": "NotAuthenticated"}, {"method": "Logout", "action": "drop"}],
    )["ids"]
    assert len(ids) == 2
    assert [r["id"] for r in lab.faults()] == ids
    lab.remove_fault(ids[0])
    assert [r["id"] for r in lab.faults()] == ids[1:]
    with pytest.raises(RuntimeError, match="400"):
        lab.inject_fault(method="CurrentTime", fault="NoSuchFault")
    with pytest.raises(RuntimeError, match="400"):
        lab.inject_fault(method="CurrentTime", action="task")
    with pytest.raises(RuntimeError, match="400"):
        lab.inject_fault(method="CurrentTime", fault="TaskInProgress", bogus=1)
    info = lab.control("GET", "")
    assert info["url"] == lab.url and info["hosts"] == 6
    lab.clear_faults()
    assert lab.faults() == []


def test_control_api_needs_the_ca(lab):
    conn = http.client.HTTPSConnection(lab.host, lab.port, context=ssl.create_default_context())
    with pytest.raises(ssl.SSLError):
        conn.request("GET", "/lab/calls")
