"""Hand changes made through pyvmomi after apply: drift reports each one (exit 2, the right
field), and the next apply puts it back. The lab here may play no guests: the guest side is
left out on purpose (`--skip-guest`) except where a test asks the guests with their login."""

from __future__ import annotations

import json

import pytest
from pyVmomi import VmomiSupport, vim

import labctl
from labctl import find, prop, wait
from tests.integration.cli import example, run

pytestmark = pytest.mark.slow

SKIP = "--skip-guest"


@pytest.fixture
def applied(lab, tmp_path):
    desired = example("cluster-across-boxes", tmp_path)
    result = run(lab, "apply", str(desired), "--auto-approve", SKIP)
    assert result.code == 0, result
    clean = run(lab, "drift", str(desired), SKIP)
    assert clean.code == 0, clean
    assert "no drift" in clean.out
    return lab, desired


def _drift(lab, desired):
    result = run(lab, "drift", str(desired), "--json", SKIP)
    assert result.code == 2, result
    return [f for r in json.loads(result.out)["reports"] for f in r["findings"]]


def _power(si, vm, on):
    wait(vm.PowerOnVM_Task() if on else vm.PowerOffVM_Task())


def _reconfigure(si, vm, changes):
    wait(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(deviceChange=changes)))


def _shared_controller(si, vm):
    return next(
        d
        for d in prop(si, vm, "config.hardware.device")
        if isinstance(d, vim.vm.device.VirtualSCSIController) and d.busNumber == 1
    )


def _fixed_by_apply(lab, desired):
    fixed = run(lab, "apply", str(desired), "--auto-approve", SKIP)
    assert fixed.code == 0, fixed
    after = run(lab, "drift", str(desired), SKIP)
    assert after.code == 0, after


def test_bus_sharing_flipped_by_hand(applied):
    lab, desired = applied
    si = lab.connect()
    vm = find(si, vim.VirtualMachine, "SQLNODE2")
    _power(si, vm, False)
    ctrl = _shared_controller(si, vm)
    ctrl.sharedBus = "virtualSharing"
    _reconfigure(si, vm, [vim.vm.device.VirtualDeviceSpec(operation="edit", device=ctrl)])
    _power(si, vm, True)
    findings = _drift(lab, desired)
    sharing = [f for f in findings if f["field"] == "sharing"]
    assert len(sharing) == 1, findings
    f = sharing[0]
    assert f["address"] == "sql-prod-01/node/SQLNODE2/controller/1"
    assert (f["observed"], f["desired"], f["last_applied"]) == ("virtual", "physical", "physical")
    assert f["severity"] == "critical" and f["changed_outside"] is True
    assert f["fix"].startswith("mscsctl apply ")
    _fixed_by_apply(lab, desired)
    assert _shared_controller(si, vm).sharedBus == "physicalSharing"


def test_rdm_compatibility_changed_by_hand(applied):
    lab, desired = applied
    si = lab.connect()
    vm = find(si, vim.VirtualMachine, "SQLNODE2")
    _power(si, vm, False)
    ctrl = _shared_controller(si, vm)
    disk = next(
        d
        for d in prop(si, vm, "config.hardware.device")
        if isinstance(d, vim.vm.device.VirtualDisk) and d.controllerKey == ctrl.key and d.unitNumber == 0
    )
    disk.backing.compatibilityMode = "virtualMode"
    _reconfigure(si, vm, [vim.vm.device.VirtualDeviceSpec(operation="edit", device=disk)])
    _power(si, vm, True)
    findings = _drift(lab, desired)
    compat = [f for f in findings if f["field"] == "compatibility"]
    assert [(f["address"], f["observed"], f["desired"]) for f in compat] == [
        ("sql-prod-01/node/SQLNODE2/disk/quorum", "virtual", "physical")
    ]
    assert compat[0]["severity"] == "critical"
    _fixed_by_apply(lab, desired)


def test_host_option_reset_by_hand(applied):
    lab, desired = applied
    si = lab.connect()
    host = find(si, vim.HostSystem, "esx-a2.lab.local")
    mgr = prop(si, host, "configManager.advancedOption")
    mgr.UpdateOptions(changedValue=[vim.option.OptionValue(key="Disk.UseDeviceReset", value=VmomiSupport.long(1))])
    findings = _drift(lab, desired)
    assert [(f["address"], f["field"], f["observed"], f["desired"], f["severity"]) for f in findings] == [
        ("sql-prod-01/host/esx-a2.lab.local/option/Disk.UseDeviceReset", "value", 1, 0, "warning")
    ]
    assert findings[0]["last_applied"] == 0 and findings[0]["changed_outside"] is True
    _fixed_by_apply(lab, desired)


def test_drs_override_changed_by_hand(applied):
    lab, desired = applied
    si = lab.connect()
    cluster = find(si, vim.ClusterComputeResource, "Cluster-A")
    vm = find(si, vim.VirtualMachine, "SQLNODE1")
    spec = vim.cluster.ConfigSpecEx(
        drsVmConfigSpec=[
            vim.cluster.DrsVmConfigSpec(
                operation="edit", info=vim.cluster.DrsVmConfigInfo(key=vm, enabled=True, behavior="fullyAutomated")
            )
        ]
    )
    wait(cluster.ReconfigureComputeResource_Task(spec=spec, modify=True))
    findings = _drift(lab, desired)
    assert [(f["address"], f["field"], f["observed"], f["desired"]) for f in findings] == [
        ("sql-prod-01/node/SQLNODE1/drs", "behavior", "fullyAutomated", "disabled")
    ]
    _fixed_by_apply(lab, desired)


def test_unreachable_vcenter_is_an_error_not_no_drift(applied, tmp_path):
    lab, desired = applied
    lab.stop()
    result = run(lab, "drift", str(desired), SKIP)
    assert result.code == 1, result
    assert "cannot reach vCenter" in result.err


def test_drift_markdown_and_junit_outputs(applied, tmp_path):
    lab, desired = applied
    si = lab.connect()
    host = find(si, vim.HostSystem, "esx-a1.lab.local")
    prop(si, host, "configManager.advancedOption").UpdateOptions(
        changedValue=[vim.option.OptionValue(key="Disk.ResetOnFailure", value=VmomiSupport.long(0))]
    )
    junit = tmp_path / "drift.xml"
    result = run(lab, "drift", str(desired), "--markdown", "--junit", str(junit), SKIP)
    assert result.code == 2, result
    assert "Disk.ResetOnFailure" in result.out
    import xml.etree.ElementTree as ET

    root = ET.parse(junit).getroot()
    failures = root.findall(".//failure")
    assert len(failures) == 1 and "Disk.ResetOnFailure" in ET.tostring(root, encoding="unicode")


def test_guest_disk_timeout_lost_by_hand(lab, lab_wine, tmp_path):
    """Re-creating the Windows cluster can reset TimeOutValue: drift sees it in the guest's registry."""
    guest = {"MSCSCTL_GUEST_USER": labctl.GUEST_USER, "MSCSCTL_GUEST_PASSWORD": labctl.GUEST_PASSWORD}
    desired = example("cluster-across-boxes", tmp_path)
    applied = run(lab, "apply", str(desired), "--auto-approve", env=guest)
    assert applied.code == 0, applied
    assert lab.guest_disk_timeout("SQLNODE2") == ("REG_DWORD", "0x3c")

    code, out = lab.guest_reg(
        "SQLNODE2", "add", labctl.DISK_KEY, "/v", "TimeOutValue", "/t", "REG_DWORD", "/d", "30", "/f"
    )
    assert code == 0, out
    result = run(lab, "drift", str(desired), "--json", env=guest)
    assert result.code == 2, result
    findings = [f for r in json.loads(result.out)["reports"] for f in r["findings"]]
    assert [(f["address"], f["field"], f["observed"], f["desired"], f["last_applied"]) for f in findings] == [
        ("sql-prod-01/node/SQLNODE2/guest/diskTimeout", "seconds", 30, 60, 60)
    ]
    assert findings[0]["changed_outside"] is True

    fixed = run(lab, "apply", str(desired), "--auto-approve", env=guest)
    assert fixed.code == 0, fixed
    assert lab.guest_disk_timeout("SQLNODE2") == ("REG_DWORD", "0x3c")
    clean = run(lab, "drift", str(desired), env=guest)
    assert clean.code == 0, clean
