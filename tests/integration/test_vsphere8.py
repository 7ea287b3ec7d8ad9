"""A three-node cluster on clustered VMDKs and an NVMe controller, through the CLI against the
vSphere 8.0 U2 lab (tests/lab/labs/vsphere8.yaml), and the same file refused before any change
on 7.0.3 hosts (vsphere7.yaml) and on an iSCSI datastore."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from pyVmomi import vim

from labctl import VSPHERE7_LAB, VSPHERE8_LAB, find, prop
from tests.integration.cli import EXAMPLES, REPO, run

pytestmark = pytest.mark.slow

NODES = ["WSFC-NODE1", "WSFC-NODE2", "WSFC-NODE3"]
FILES = {0: "[CVMDK-01] sql-three-01/quorum.vmdk", 1: "[CVMDK-01] sql-three-01/data.vmdk"}


def three_node(tmp_path: Path, controller: str = "nvme", **disk_changes: str) -> Path:
    doc = yaml.safe_load((EXAMPLES / "three-node.yaml").read_text())
    doc["spec"]["sharedDisks"]["controller"]["type"] = controller
    for disk in doc["spec"]["sharedDisks"]["disks"]:
        disk.update(disk_changes)
    path = tmp_path / "three-node.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def nvme_devices(si, name: str, bus: int = 1):
    devices = prop(si, find(si, vim.VirtualMachine, name), "config.hardware.device")
    controllers = [d for d in devices if isinstance(d, vim.vm.device.VirtualNVMEController) and d.busNumber == bus]
    disks = {
        d.unitNumber: d
        for d in devices
        if isinstance(d, vim.vm.device.VirtualDisk) and any(d.controllerKey == c.key for c in controllers)
    }
    return controllers, disks


def clustered_vmdk_supported(si, name: str = "CVMDK-01") -> bool:
    return bool(prop(si, find(si, vim.Datastore, name), "capability.clusteredVmdkSupported"))


def test_three_nodes_on_nvme_clustered_vmdks_plan_apply_replan_and_drift_clean(lab_factory, tmp_path):
    lab = lab_factory(VSPHERE8_LAB)
    desired = three_node(tmp_path)
    plan = run(lab, "plan", str(desired), "--skip-guest", "--detailed-exitcode")
    assert plan.code == 2, plan
    lines = plan.out.splitlines()
    enable = next(i for i, t in enumerate(lines) if "datastore/CVMDK-01  enable-clustered-vmdk" in t)
    first_disk = next(i for i, t in enumerate(lines) if "create-disk" in t)
    assert enable < first_disk, plan.out

    applied = run(lab, "apply", str(desired), "--auto-approve", "--skip-guest")
    assert applied.code == 0, applied
    # One node at a time: each node is back on before the next one goes off.
    power = re.findall(r"\] (WSFC-NODE\d): (power-off|power-on): (?!done)", applied.err)  # each step's start
    assert power == [(n, step) for n in NODES for step in ("power-off", "power-on")], applied.out

    si = lab.connect()
    assert clustered_vmdk_supported(si)
    for name in NODES:
        controllers, disks = nvme_devices(si, name)
        assert [c.sharedBus for c in controllers] == ["physicalSharing"], name
        assert sorted(disks) == [0, 1], name
        for unit, disk in disks.items():
            assert disk.backing.fileName == FILES[unit]
            assert disk.backing.eagerlyScrub is True and disk.backing.thinProvisioned is False
        assert prop(si, find(si, vim.VirtualMachine, name), "runtime.powerState") == "poweredOn"
    rule = next(
        r
        for r in prop(si, find(si, vim.ClusterComputeResource, "Cluster-A"), "configurationEx").rule
        if r.name == "mscsctl-sql-three-01"
    )
    assert isinstance(rule, vim.cluster.AntiAffinityRuleSpec)
    assert sorted(vm.name for vm in rule.vm) == NODES

    again = run(lab, "plan", str(desired), "--skip-guest", "--detailed-exitcode")
    assert again.code == 0 and "no changes" in again.out, again
    drift = run(lab, "drift", str(desired), "--skip-guest")
    assert drift.code == 0 and "no drift" in drift.out, drift


def test_a_disk_on_a_second_bus_gets_a_second_shared_controller_on_every_node(lab_factory, tmp_path):
    lab = lab_factory(VSPHERE8_LAB)
    doc = yaml.safe_load(three_node(tmp_path).read_text())
    doc["spec"]["sharedDisks"]["disks"][1].update({"bus": 2, "unit": 0})
    desired = tmp_path / "two-controllers.yaml"
    desired.write_text(yaml.safe_dump(doc, sort_keys=False))
    applied = run(lab, "apply", str(desired), "--auto-approve", "--skip-guest")
    assert applied.code == 0, applied
    si = lab.connect()
    for name in NODES:
        for bus, unit, file in ((1, 0, FILES[0]), (2, 0, FILES[1])):
            controllers, disks = nvme_devices(si, name, bus)
            assert [c.sharedBus for c in controllers] == ["physicalSharing"], (name, bus)
            assert [(u, d.backing.fileName) for u, d in disks.items()] == [(unit, file)], (name, bus)
    again = run(lab, "plan", str(desired), "--skip-guest", "--detailed-exitcode")
    assert again.code == 0 and "no changes" in again.out, again


def refused_untouched(lab, desired: Path, *rule_ids: str) -> None:
    """plan and apply exit 1 naming the rules; vCenter shows no NVMe controller and no support enabled."""
    for command in (["plan", str(desired), "--skip-guest"], ["apply", str(desired), "--auto-approve", "--skip-guest"]):
        result = run(lab, *command)
        assert result.code == 1, result
        for rule_id in rule_ids:
            assert f"[{rule_id}]" in result.out + result.err, result
        assert "Traceback" not in result.err
    si = lab.connect()
    for name in NODES:
        controllers, disks = nvme_devices(si, name)
        assert controllers == [] and disks == {}, name
    assert not clustered_vmdk_supported(si)


def test_the_same_file_on_seven_hosts_is_refused_before_any_change(lab_factory, tmp_path):
    lab = lab_factory(VSPHERE7_LAB)
    refused_untouched(lab, three_node(tmp_path), "MSCS-DISK-103")


def test_the_same_file_on_the_iscsi_datastore_is_refused_before_any_change(lab_factory, tmp_path):
    lab = lab_factory(VSPHERE8_LAB)
    desired = three_node(tmp_path, datastore="ISCSI-VMFS-01")
    refused_untouched(lab, desired, "MSCS-STOR-102")
    si = lab.connect()
    assert not clustered_vmdk_supported(si, "ISCSI-VMFS-01")


@pytest.mark.parametrize("example", ["three-node", "vsphere8-clustered-vmdk"])
def test_make_demo_runs_the_vsphere8_examples_against_the_lab_they_name(lab_binary, example):
    done = subprocess.run(
        [sys.executable, str(REPO / "tests" / "demo.py"), f"examples/{example}.yaml"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "simulated vCenter lab (tests/lab/labs/vsphere8.yaml)" in done.stdout
    exits = [line for line in done.stdout.splitlines() if line.startswith("(exit ")]
    assert exits == ["(exit 0)", "(exit 2)", "(exit 0)", "(exit 0)", "(exit 0)"], done.stdout
    assert "enable-clustered-vmdk" in done.stdout


def test_on_seven_hosts_the_same_cluster_on_pvscsi_applies_and_converges(lab_factory, tmp_path):
    lab = lab_factory(VSPHERE7_LAB)
    desired = three_node(tmp_path, controller="pvscsi")
    applied = run(lab, "apply", str(desired), "--auto-approve", "--skip-guest")
    assert applied.code == 0, applied
    si = lab.connect()
    assert clustered_vmdk_supported(si)
    for name in NODES:
        devices = prop(si, find(si, vim.VirtualMachine, name), "config.hardware.device")
        [ctrl] = [d for d in devices if isinstance(d, vim.vm.device.ParaVirtualSCSIController) and d.busNumber == 1]
        assert ctrl.sharedBus == "physicalSharing"
        files = sorted(d.backing.fileName for d in devices if getattr(d, "controllerKey", None) == ctrl.key)
        assert files == sorted(FILES.values()), name
    again = run(lab, "plan", str(desired), "--skip-guest", "--detailed-exitcode")
    assert again.code == 0 and "no changes" in again.out, again


def test_a_datastore_whose_lun_a_six_seven_host_sees_is_refused_before_any_change(lab_factory, tmp_path):
    lab = lab_factory(VSPHERE7_LAB)
    desired = three_node(tmp_path, controller="pvscsi", datastore="MIXED-VMFS-01")
    for command in (["plan", str(desired), "--skip-guest"], ["apply", str(desired), "--auto-approve", "--skip-guest"]):
        result = run(lab, *command)
        assert result.code == 1 and "[MSCS-STOR-106]" in result.out + result.err, result
        assert "esx-l1.lab.local (6.7.0)" in result.out + result.err
    si = lab.connect()
    assert not clustered_vmdk_supported(si, "MIXED-VMFS-01")
    for name in NODES:
        devices = prop(si, find(si, vim.VirtualMachine, name), "config.hardware.device")
        assert not [d for d in devices if isinstance(d, vim.vm.device.ParaVirtualSCSIController)], name
