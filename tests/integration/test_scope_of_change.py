"""Scope of change: mscsctl touches only the devices vCenter shows are the cluster's own.

A state that claims the boot disk stops `plan` and `apply --allow-data-loss` before any
change; a shared VMDK removed from the file is deleted with --allow-data-loss only once no
VM of the datacenter still uses it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from pyVmomi import vim

from labctl import find, prop
from tests.integration.cli import EXAMPLES, example, run
from tests.integration.test_observed_rules import MUTATING

pytestmark = pytest.mark.slow


def disks_by_bus(si, name: str) -> dict[tuple[int, int], vim.vm.device.VirtualDisk]:
    """A VM's SCSI disks by (bus, unit), read through the PropertyCollector."""
    vm = find(si, vim.VirtualMachine, name)
    devices = prop(si, vm, "config.hardware.device")
    bus_of = {d.key: d.busNumber for d in devices if isinstance(d, vim.vm.device.VirtualSCSIController)}
    return {
        (bus_of[d.controllerKey], d.unitNumber): d
        for d in devices
        if isinstance(d, vim.vm.device.VirtualDisk) and d.controllerKey in bus_of
    }


def datastore_file(lab, path: str) -> Path:
    """Where the lab keeps a datastore path (`[DS] folder/file.vmdk`) on disk."""
    datastore, _, rest = path[1:].partition("] ")
    return lab.run_dir / "datastores" / datastore / rest


def first_disk_only(name: str, tmp_path: Path) -> Path:
    """A copy of an example whose file lists only its first shared disk (the others removed)."""
    doc = yaml.safe_load((EXAMPLES / f"{name}.yaml").read_text())
    shared = doc["spec"]["sharedDisks"]
    return example(name, tmp_path, sharedDisks={**shared, "disks": shared["disks"][:1]})


def planned_detaches(lab, desired: Path) -> list[dict]:
    """The detach-disk actions of a plan of `desired`, as `plan --json` gives them."""
    planned = run(lab, "plan", str(desired), "--skip-guest", "--json")
    assert planned.code == 0, planned
    return [a for a in json.loads(planned.out)["actions"] if a["kind"] == "detach-disk"]


def mutating_calls(lab) -> dict[str, int]:
    calls = lab.calls()
    return {m: calls[m] for m in MUTATING if calls.get(m)}


def test_a_state_that_claims_the_boot_disk_stops_plan_and_apply(lab, tmp_path):
    desired = example("cluster-across-boxes", tmp_path)
    assert run(lab, "apply", str(desired), "--auto-approve", "--skip-guest").code == 0
    si = lab.connect()
    boot = disks_by_bus(si, "SQLNODE1")[(0, 0)]
    file = boot.backing.fileName
    assert file == "[SAN-VMFS-01] SQLNODE1/SQLNODE1.vmdk"
    # The state is edited to say that mscsctl created SQLNODE1's boot disk as a shared disk.
    state_file = tmp_path / ".mscsctl" / "sql-prod-01.state.json"
    state = json.loads(state_file.read_text())
    quorum = state["resources"]["sql-prod-01/node/SQLNODE1/disk/quorum"]
    state["resources"]["sql-prod-01/node/SQLNODE1/disk/boot"] = {
        **quorum,
        "kind": "shared-vmdk",
        "device_key": boot.key,
        "file": file,
        "created_by_mscsctl": True,
        "applied": {"bus": 0, "unit": 0, "kind": "vmdk", "file": file, "sizeGB": 40},
    }
    state_file.write_text(json.dumps(state, indent=2))

    planned = run(lab, "plan", str(desired), "--skip-guest")
    assert planned.code == 1, planned
    assert "[MSCS-SAFE-001]" in planned.err
    assert f"state says sql-prod-01/node/SQLNODE1/disk/boot is {file} at SCSI 0:0" in planned.err
    assert f"vCenter shows {file} at SCSI 0:0 of SQLNODE1, on bus 0, not the cluster's shared bus 1" in planned.err
    assert "refusing to plan" in planned.err and "Traceback" not in planned.err

    lab.reset_calls()
    applied = run(lab, "apply", str(desired), "--auto-approve", "--allow-data-loss", "--skip-guest")
    assert applied.code == 1, applied
    assert "[MSCS-SAFE-001]" in applied.err
    assert mutating_calls(lab) == {}
    still = disks_by_bus(si, "SQLNODE1")[(0, 0)]
    assert (still.key, still.backing.fileName) == (boot.key, file)
    assert datastore_file(lab, file).is_file()


def test_a_shared_vmdk_is_deleted_only_once_no_vm_uses_it(lab, tmp_path):
    desired = example("cluster-in-a-box", tmp_path)
    assert run(lab, "apply", str(desired), "--auto-approve", "--skip-guest").code == 0
    si = lab.connect()
    data_file = disks_by_bus(si, "CIB-NODE1")[(1, 1)].backing.fileName
    assert data_file == "[esx-a1-local] cib-test-01/data.vmdk"
    assert datastore_file(lab, data_file).is_file()

    quorum_only = first_disk_only("cluster-in-a-box", tmp_path)
    assert [(a["target"], a["reason"]) for a in planned_detaches(lab, quorum_only)] == [
        ("CIB-NODE1", "not-in-file-vmdk"),
        ("CIB-NODE2", "not-in-file-vmdk"),
    ]
    text = run(lab, "plan", str(quorum_only), "--skip-guest")
    assert "deleted once no VM uses it" in " ".join(text.out.split()), text

    # Node 2's reconfigure fails: node 1 has detached the disk, node 2 still holds it.
    lab.inject_fault(method="ReconfigVM_Task", object="CIB-NODE2", fault="task", message="Injected: node 2 busy")
    failed = run(lab, "apply", str(quorum_only), "--auto-approve", "--allow-data-loss", "--skip-guest")
    assert failed.code == 1 and "Injected: node 2 busy" in failed.err, failed
    assert (1, 1) not in disks_by_bus(si, "CIB-NODE1")
    assert disks_by_bus(si, "CIB-NODE2")[(1, 1)].backing.fileName == data_file
    assert datastore_file(lab, data_file).is_file(), "node 1's detach deleted a VMDK node 2 still uses"

    lab.clear_faults()
    done = run(lab, "apply", str(quorum_only), "--auto-approve", "--allow-data-loss", "--skip-guest")
    assert done.code == 0, done
    assert (1, 1) not in disks_by_bus(si, "CIB-NODE2")
    assert not datastore_file(lab, data_file).exists(), "the VMDK no VM uses was not deleted"
    assert datastore_file(lab, "[esx-a1-local] cib-test-01/quorum.vmdk").is_file()
    assert run(lab, "plan", str(quorum_only), "--skip-guest", "--detailed-exitcode").code == 0
