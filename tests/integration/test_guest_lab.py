"""The guest side end to end: mscsctl reads and sets TimeOutValue through vSphere guest
operations, and the lab runs the programs under Wine, each VM in its own Wine prefix.

What is checked is the value in each guest's registry, read straight from its prefix with
reg.exe (not what mscsctl says), the exit codes, and the per-node messages of a plan.
Every lab of the session shares one template prefix (`lab_wine_cache`).
"""

from __future__ import annotations

import os
import re
import ssl
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from pyVmomi import vim

import labctl
from labctl import find
from providers.guest.credentials import GuestCredentials
from providers.guest.transport import GuestCommandTimeout, UnavailableReason
from providers.guest.vmtools import VmToolsTransport
from tests.integration.cli import default_lab, example, run

pytestmark = [pytest.mark.lab, pytest.mark.slow]

GUEST_ENV = {"MSCSCTL_GUEST_USER": labctl.GUEST_USER, "MSCSCTL_GUEST_PASSWORD": labctl.GUEST_PASSWORD}
CMD = r"C:\Windows\System32\cmd.exe"


def lab_with(**vms: dict[str, Any]) -> dict[str, Any]:
    """The default lab with these VMs' fields changed."""
    doc = default_lab()
    for vm in doc["vms"]:
        vm.update(vms.get(vm["name"], {}))
    return doc


def planned(out: str, node: str) -> str:
    """The plan's guest change for a node: its `seconds: before -> after` line."""
    found = re.search(rf"/node/{node}/guest/diskTimeout\s+set-guest-setting\s*\n\s*(seconds: [^\n]*)", out)
    assert found, f"no guest change for {node} in:\n{out}"
    return found.group(1)


def note(out: str, node: str) -> str:
    """The plan's note for a node whose guest could not be asked."""
    found = re.search(rf"^Note: {node}: guest not observed: (.*)$", out, re.MULTILINE)
    assert found, f"no note for {node} in:\n{out}"
    return found.group(1)


def wine_processes_of(run_dir: Path) -> list[str]:
    """Live (not zombie) processes whose WINEPREFIX is under run_dir."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            environ = (proc / "environ").read_bytes().split(b"\0")
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        prefixes = [e[len(b"WINEPREFIX=") :].decode(errors="replace") for e in environ if e.startswith(b"WINEPREFIX=")]
        if state != "Z" and any(p.startswith(str(run_dir)) for p in prefixes):
            found.append(f"{proc.name} {cmdline}")
    return found


@pytest.mark.wine
def test_apply_sets_the_disk_timeout_in_each_guest_registry(lab_factory, lab_wine, lab_wine_cache, tmp_path):
    lab = lab_factory(lab_with(SQLNODE2={"diskTimeout": 30}))
    assert lab.wine_missing is None
    # Straight from the prefixes: a fresh Windows has no value, the seeded one has 30.
    assert lab.guest_disk_timeout("SQLNODE1") is None
    assert lab.guest_disk_timeout("SQLNODE2") == ("REG_DWORD", "0x1e")
    desired = example("cluster-across-boxes", tmp_path)

    plan = run(lab, "plan", str(desired), "--detailed-exitcode", env=GUEST_ENV)
    assert plan.code == 2, plan
    assert planned(plan.out, "SQLNODE1") == "seconds: absent -> 60"
    assert planned(plan.out, "SQLNODE2") == "seconds: 30 -> 60"
    assert "guest not observed" not in plan.out

    applied = run(lab, "apply", str(desired), "--auto-approve", env=GUEST_ENV)
    assert applied.code == 0, applied
    for node in ("SQLNODE1", "SQLNODE2"):
        assert lab.guest_disk_timeout(node) == ("REG_DWORD", "0x3c"), node

    lab.reset_calls()
    again = run(lab, "plan", str(desired), "--detailed-exitcode", env=GUEST_ENV)
    assert again.code == 0, again
    # The guests were asked through vCenter (one query each), not skipped.
    calls = lab.calls()
    assert calls.get("StartProgramInGuest") == 2, calls
    assert calls.get("DeleteFileInGuest") == 2, calls
    for node in ("SQLNODE1", "SQLNODE2"):
        assert lab.guest_temp_files(node) == [], node

    run_dir = lab.run_dir
    assert wine_processes_of(run_dir)
    lab.stop()
    assert wine_processes_of(run_dir) == []
    assert wine_processes_of(lab_wine_cache) == []  # nor of the template's build
    assert not (run_dir / "wine").exists()


def test_nodes_whose_guest_cannot_be_asked_get_a_reason_and_the_rest_is_planned(lab_factory, tmp_path):
    # None of these reach a guest program, so Wine is not needed: the lab runs without it.
    lab = lab_factory(
        lab_with(
            SQLNODE1={"powerState": "poweredOff"},
            SQLNODE2={"toolsRunning": False},
            **{"CIB-NODE2": {"guestOperations": False}},
        ),
        extra_args=("--wine", "off"),
    )
    across = example("cluster-across-boxes", tmp_path)
    plan = run(lab, "plan", str(across), "--detailed-exitcode", env=GUEST_ENV)
    assert plan.code == 1, plan  # changes present, but SQLNODE2's guest could not be checked: 1, not 2
    # A powered-off node is set once apply has powered it on; one without Tools is left out.
    assert (
        "Note: SQLNODE1: guest not observed (VM SQLNODE1 is poweredOff); apply sets the disk timeout once it runs"
        in plan.out
    )
    assert planned(plan.out, "SQLNODE1") == "seconds: unknown (powered off) -> 60"
    assert note(plan.out, "SQLNODE2") == (
        "VMware Tools is not running in VM SQLNODE2 [tools-not-running]; its disk timeout is left out"
    )
    assert "SQLNODE2/guest/diskTimeout" not in plan.out
    for change in ("SQLNODE1/controller/1  add-controller", "SQLNODE2/disk/quorum  attach-disk", "create-rule"):
        assert change in plan.out, plan
    # Neither guest was asked.
    assert "StartProgramInGuest" not in lab.calls()

    in_a_box = tmp_path / "in-a-box"
    in_a_box.mkdir()
    own_login = {"user": "LAB_NODE1_USER", "password": "LAB_NODE1_PASSWORD"}
    nodes = [{"vm": "CIB-NODE1", "credentialsEnv": own_login}, {"vm": "CIB-NODE2"}]
    desired = example("cluster-in-a-box", in_a_box, nodes=nodes)
    env = {**GUEST_ENV, "LAB_NODE1_USER": labctl.GUEST_USER, "LAB_NODE1_PASSWORD": "not-the-password"}
    lab.reset_calls()
    plan = run(lab, "plan", str(desired), "--detailed-exitcode", env=env)
    assert plan.code == 1, plan  # neither guest could be checked
    refused = note(plan.out, "CIB-NODE1")
    assert refused.endswith("[bad-credentials]; its disk timeout is left out"), refused
    assert "LAB_NODE1_USER / LAB_NODE1_PASSWORD" in refused and "not-the-password" not in plan.out
    assert note(plan.out, "CIB-NODE2").endswith("[guest-operations-disabled]; its disk timeout is left out")
    assert "CIB-NODE1/controller/1  add-controller" in plan.out
    # Both were refused by the guest operations call itself, which started nothing.
    assert lab.calls().get("StartProgramInGuest") == 2
    assert "ListProcessesInGuest" not in lab.calls()


def test_guest_operations_answer_vcenter_faults_in_order(lab_factory):
    lab = lab_factory(
        lab_with(
            SQLNODE1={"powerState": "poweredOff", "guestPassword": "other"},
            SQLNODE2={"toolsRunning": False},
            **{"CIB-NODE1": {"guestUser": "labadmin"}, "CIB-NODE2": {"guestOperations": False}},
        ),
        extra_args=("--wine", "off"),
    )
    si = lab.connect()
    processes = si.content.guestOperationsManager.processManager
    spec = vim.vm.guest.ProcessManager.ProgramSpec(programPath=CMD, arguments="/c ver")

    def start(vm: str, user: str = labctl.GUEST_USER, password: str = labctl.GUEST_PASSWORD) -> Any:
        auth = vim.vm.guest.NamePasswordAuthentication(username=user, password=password, interactiveSession=False)
        with pytest.raises(vim.fault.VimFault) as fault:
            processes.StartProgramInGuest(vm=find(si, vim.VirtualMachine, vm), auth=auth, spec=spec)
        return fault.value

    # Powered off comes first, whatever the credentials.
    off = start("SQLNODE1", password="wrong")
    assert isinstance(off, vim.fault.InvalidPowerState) and off.existingState == "poweredOff"
    assert isinstance(start("SQLNODE2", password="wrong"), vim.fault.GuestOperationsUnavailable)
    assert isinstance(start("CIB-NODE1"), vim.fault.InvalidGuestLogin)  # its guest wants labadmin
    assert isinstance(start("CIB-NODE2", password="wrong"), vim.fault.InvalidGuestLogin)
    assert isinstance(start("CIB-NODE2"), vim.fault.OperationDisabledByGuest)
    # The user name is not case-sensitive, as on Windows; the password is.
    assert isinstance(
        start("P2V-NODE1", user="ADMINISTRATOR", password=labctl.GUEST_PASSWORD.lower()), vim.fault.InvalidGuestLogin
    )
    no_wine = start("P2V-NODE1", user="administrator")
    assert isinstance(no_wine, vim.fault.GuestOperationsUnavailable)
    assert "Wine is turned off for this lab (--wine off)" in no_wine.msg


@pytest.mark.wine
def test_process_list_file_transfer_and_delete_behave_like_vcenter(lab_factory, lab_wine):
    lab = lab_factory(lab_with(**{"B-NODE1": {"diskTimeout": "60"}}))
    si = lab.connect()
    vm = find(si, vim.VirtualMachine, "B-NODE1")
    manager = si.content.guestOperationsManager
    auth = vim.vm.guest.NamePasswordAuthentication(
        username=labctl.GUEST_USER, password=labctl.GUEST_PASSWORD, interactiveSession=False
    )
    out = r"C:\Windows\Temp\lab-check.txt"

    def start(arguments: str) -> int:
        spec = vim.vm.guest.ProcessManager.ProgramSpec(programPath=CMD, arguments=arguments)
        return manager.processManager.StartProgramInGuest(vm=vm, auth=auth, spec=spec)

    def ended(pid: int) -> Any:
        for _ in range(600):
            (info,) = manager.processManager.ListProcessesInGuest(vm=vm, auth=auth, pids=[pid])
            if info.endTime is not None:
                return info
            time.sleep(0.05)
        raise AssertionError(f"process {pid} did not end")

    # A string seeds REG_SZ; cmd.exe passes reg.exe's exit code through, 0 included.
    query = f"/c reg.exe query {labctl.DISK_KEY} /v TimeOutValue > {out} 2>&1"
    info = ended(start(query))
    assert (info.exitCode, info.name, info.owner) == (0, "cmd.exe", labctl.GUEST_USER)
    assert info.cmdLine == f'"{CMD}" {query}'
    missing = ended(start(f"/c reg.exe query {labctl.DISK_KEY} /v NoSuchValue > {out} 2>&1"))
    assert missing.exitCode == 1
    # An ended process stays listed.
    assert [p.pid for p in manager.processManager.ListProcessesInGuest(vm=vm, auth=auth, pids=[info.pid])] == [info.pid]

    ended(start(query))
    transfer = manager.fileManager.InitiateFileTransferFromGuest(vm=vm, auth=auth, guestFilePath=out.upper())
    assert re.fullmatch(r"https://\*/guestFile\?id=\d+&token=[0-9a-f]{32}", transfer.url), transfer.url
    url = transfer.url.replace("*", lab.server, 1)
    context = ssl.create_default_context(cafile=lab.ca_file)
    with urllib.request.urlopen(url, context=context) as response:
        data = response.read()
    assert len(data) == transfer.size
    assert b"TimeOutValue    REG_SZ    60\r\n" in data
    with pytest.raises(urllib.error.HTTPError) as again:  # the URL is good for one GET
        urllib.request.urlopen(url, context=context)
    assert again.value.code == 404
    assert lab.guest_temp_files("B-NODE1", "lab-check.txt") == ["lab-check.txt"]
    manager.fileManager.DeleteFileInGuest(vm=vm, auth=auth, filePath=out)
    assert lab.guest_temp_files("B-NODE1", "lab-check.txt") == []
    with pytest.raises(vim.fault.FileNotFound):
        manager.fileManager.InitiateFileTransferFromGuest(vm=vm, auth=auth, guestFilePath=out)
    with pytest.raises(vim.fault.FileNotFound):
        manager.fileManager.DeleteFileInGuest(vm=vm, auth=auth, filePath=out)

    # A program that runs until terminated: ended, with an exit code.
    long = start("/c ping.exe -n 60 127.0.0.1")
    (running,) = manager.processManager.ListProcessesInGuest(vm=vm, auth=auth, pids=[long])
    assert running.endTime is None
    manager.processManager.TerminateProcessInGuest(vm=vm, auth=auth, pid=long)
    assert ended(long).exitCode == 1
    with pytest.raises(vim.fault.GuestProcessNotFound):
        manager.processManager.TerminateProcessInGuest(vm=vm, auth=auth, pid=1)
    assert os.path.isdir(lab.guest("B-NODE1")["prefix"])


@pytest.mark.wine
def test_a_command_past_its_time_limit_is_terminated_and_its_file_removed(lab_factory, lab_wine):
    lab = lab_factory()
    si = lab.connect()
    vm = find(si, vim.VirtualMachine, "P2V-NODE1")
    transport = VmToolsTransport(
        si,
        vm._moId,
        GuestCredentials(user=labctl.GUEST_USER, password=labctl.GUEST_PASSWORD),
        ssl_context=lab.ssl_context(),
        vcenter_host=lab.host,
        vcenter_port=lab.port,
    )
    assert transport.run("ver").exit_code == 0  # makes the prefix: the time limit below is the command's own
    lab.reset_calls()
    started = time.monotonic()
    with pytest.raises(GuestCommandTimeout) as timeout:
        transport.run("ping.exe -n 60 127.0.0.1", timeout_s=2)
    assert timeout.value.reason is UnavailableReason.TIMEOUT
    assert time.monotonic() - started < 10
    calls = lab.calls()
    assert (calls.get("TerminateProcessInGuest"), calls.get("DeleteFileInGuest")) == (1, 1), calls
    assert lab.guest_temp_files("P2V-NODE1") == []
    assert not [p for p in wine_processes_of(lab.run_dir) if "ping" in p.lower()]


def test_fault_rules_name_the_vm_of_a_guest_call(lab_factory):
    lab = lab_factory(extra_args=("--wine", "off"))
    lab.inject_fault(method="StartProgramInGuest", object="SQLNODE2", fault="GuestPermissionDenied", times=0)
    si = lab.connect()
    processes = si.content.guestOperationsManager.processManager
    auth = vim.vm.guest.NamePasswordAuthentication(
        username=labctl.GUEST_USER, password=labctl.GUEST_PASSWORD, interactiveSession=False
    )
    spec = vim.vm.guest.ProcessManager.ProgramSpec(programPath=CMD, arguments="/c ver")
    with pytest.raises(vim.fault.GuestPermissionDenied):
        processes.StartProgramInGuest(vm=find(si, vim.VirtualMachine, "SQLNODE2"), auth=auth, spec=spec)
    with pytest.raises(vim.fault.GuestOperationsUnavailable):  # SQLNODE1: the lab's own answer (no Wine)
        processes.StartProgramInGuest(vm=find(si, vim.VirtualMachine, "SQLNODE1"), auth=auth, spec=spec)
