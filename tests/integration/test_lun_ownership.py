"""One LUN, one cluster: refused before any change when two clusters of a run list a LUN or a
VM, or when a VM outside the cluster maps one of its LUNs anywhere in the datacenter.

The outside RDM is made as a real ESXi shows it: `deviceName` `/vmfs/devices/disks/vml.…`, so
mscsctl must tell its LUN by `lunUuid`.
"""

from __future__ import annotations

import json

import pytest
from pyVmomi import vim

from labctl import find, prop, wait
from tests.integration.cli import EXAMPLES, example, run
from tests.integration.test_scope_of_change import mutating_calls

pytestmark = pytest.mark.slow

A001 = "naa.6006016012345678000000000000a001"
A002 = "naa.6006016012345678000000000000a002"
A003 = "naa.6006016012345678000000000000a003"


def map_outside(lab, lun: str, vm_name: str = "P2V-NODE1") -> str:
    """An RDM of `lun` on `vm_name`'s boot controller, made by hand; returns its mapping file."""
    si = lab.connect()
    vm = find(si, vim.VirtualMachine, vm_name)
    host = prop(si, vm, "runtime.host")
    scsi = next(s for s in prop(si, host, "config.storageDevice.scsiLun") if s.canonicalName == lun)
    devices = prop(si, vm, "config.hardware.device")
    controller = next(d for d in devices if isinstance(d, vim.vm.device.VirtualSCSIController) and d.busNumber == 0)
    file = f"[SAN-VMFS-01] {vm_name}/{vm_name}-by-hand.vmdk"
    backing = vim.vm.device.VirtualDisk.RawDiskMappingVer1BackingInfo(
        fileName=file,
        deviceName=f"/vmfs/devices/disks/vml.{scsi.uuid}",
        lunUuid=scsi.uuid,
        compatibilityMode="physicalMode",
        diskMode="independent_persistent",
    )
    disk = vim.vm.device.VirtualDisk(key=-1, controllerKey=controller.key, unitNumber=3, backing=backing)
    change = vim.vm.device.VirtualDeviceSpec(operation="add", fileOperation="create", device=disk)
    wait(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(deviceChange=[change])))
    return file


def fleet_of(tmp_path, p2v_text: str):
    """A directory with the across-boxes example and a changed physical-to-virtual example."""
    fleet = tmp_path / "fleet"
    fleet.mkdir()
    (fleet / "sql.yaml").write_text((EXAMPLES / "cluster-across-boxes.yaml").read_text())
    (fleet / "p2v.yaml").write_text(p2v_text)
    return fleet


def test_a_lun_listed_by_two_clusters_of_a_run_is_refused_in_both_files(lab, tmp_path):
    p2v = (EXAMPLES / "physical-to-virtual.yaml").read_text().replace(A003, A001)
    fleet = fleet_of(tmp_path, p2v)
    lab.reset_calls()
    result = run(lab, "apply", str(fleet), "--auto-approve", "--skip-guest")
    assert result.code == 1, result
    lines = [line for line in result.err.splitlines() if "[MSCS-SAFE-004]" in line]
    assert any(str(fleet / "sql.yaml") in line and "p2v-file-01" in line for line in lines), result.err
    assert any(str(fleet / "p2v.yaml") in line and "sql-prod-01" in line for line in lines), result.err
    assert mutating_calls(lab) == {}


def test_a_vm_in_two_clusters_of_a_run_is_refused(lab, tmp_path):
    p2v = (EXAMPLES / "physical-to-virtual.yaml").read_text().replace("vm: P2V-NODE1", "vm: SQLNODE2")
    fleet = fleet_of(tmp_path, p2v)
    result = run(lab, "plan", str(fleet), "--skip-guest")
    assert result.code == 1, result
    lines = [line for line in result.err.splitlines() if "[MSCS-SAFE-005]" in line]
    assert len(lines) == 2 and all("SQLNODE2" in line for line in lines), result.err


def test_a_lun_mapped_by_a_vm_outside_the_cluster_is_refused_naming_both(lab, tmp_path):
    file = map_outside(lab, A002)
    desired = example("cluster-across-boxes", tmp_path)
    lab.reset_calls()
    result = run(lab, "apply", str(desired), "--auto-approve", "--skip-guest")
    assert result.code == 1, result
    [line] = [line for line in result.err.splitlines() if "[MSCS-SAFE-003]" in line]
    assert f"LUN {A002} is sql-prod-01's disk data" in line
    assert "P2V-NODE1 (vm-" in line and f"maps it at SCSI 0:3 ({file})" in line
    assert mutating_calls(lab) == {}
    assert not (tmp_path / ".mscsctl" / "sql-prod-01.state.json").exists()


def test_a_saved_plan_is_stale_once_another_vm_maps_a_lun(lab, tmp_path):
    desired = example("cluster-across-boxes", tmp_path)
    saved = tmp_path / "plan.json"
    assert run(lab, "plan", str(desired), "--skip-guest", "--out", str(saved)).code == 0
    assert json.loads(saved.read_text())["seen_disk_users"] == {A001: [], A002: []}
    map_outside(lab, A001)
    lab.reset_calls()
    result = run(lab, "apply", str(saved))
    assert result.code == 1, result
    assert "stale" in result.err and f"{A001} is held by P2V-NODE1 (vm-" in result.err, result
    assert mutating_calls(lab) == {}


def test_drift_reports_a_lun_of_the_cluster_mapped_outside_it_as_critical(lab, tmp_path):
    desired = example("cluster-across-boxes", tmp_path)
    assert run(lab, "apply", str(desired), "--auto-approve", "--skip-guest").code == 0
    assert run(lab, "drift", str(desired), "--skip-guest").code == 0
    map_outside(lab, A002)
    drift = run(lab, "drift", str(desired), "--skip-guest", "--json")
    assert drift.code == 2, drift
    report = json.loads(drift.out)
    reports = report.get("reports", [report])
    [finding] = [f for r in reports for f in r["findings"] if "P2V-NODE1" in f["address"]]
    assert finding["severity"] == "critical" and finding["field"] == "lun"
    assert finding["address"] == "sql-prod-01/node/P2V-NODE1/disk/data"
    assert "by hand" in finding["fix"]


def test_a_cluster_s_own_node_mapping_its_luns_is_no_finding(lab, tmp_path):
    """The check is about other VMs: the physical-to-virtual node maps its cluster's LUNs."""
    desired = example("physical-to-virtual", tmp_path)
    assert run(lab, "apply", str(desired), "--auto-approve", "--skip-guest").code == 0
    assert run(lab, "plan", str(desired), "--skip-guest", "--detailed-exitcode").code == 0
