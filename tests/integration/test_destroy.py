"""Decommissioning through the CLI against the lab: `mscsctl destroy` and `plan --destroy`.

Each test builds a cluster (with mscsctl, or by hand and imported), destroys it, and reads
back through pyVmomi what vCenter shows: every LUN's data and the nodes' own disks intact,
both nodes running, nothing of mscsctl's left, nothing it found touched.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from pyVmomi import vim

from labctl import find, prop, wait
from tests.integration.cli import example, on_a_terminal, run, start
from tests.integration.test_crash_ownership import until
from tests.integration.test_import import _build_across_boxes

pytestmark = pytest.mark.slow

NODES = ("SQLNODE1", "SQLNODE2")
LUNS = ("naa.6006016012345678000000000000a001", "naa.6006016012345678000000000000a002")
CLUSTER_A_HOSTS = ("esx-a1.lab.local", "esx-a2.lab.local", "esx-a3.lab.local")
OPTIONS = ("Disk.ResetOnFailure", "Disk.UseLunReset", "Disk.UseDeviceReset")


def _devices(si, name: str) -> list:
    return list(prop(si, find(si, vim.VirtualMachine, name), "config.hardware.device"))


def _own_disks(si, name: str) -> list[tuple[int, str]]:
    """The node's disks on its own (non-shared) controller: key and file."""
    devices = _devices(si, name)
    bus0 = {d.key for d in devices if isinstance(d, vim.vm.device.VirtualSCSIController) and d.busNumber == 0}
    return sorted(
        (d.key, d.backing.fileName)
        for d in devices
        if isinstance(d, vim.vm.device.VirtualDisk) and d.controllerKey in bus0
    )


def _shared_bus(si, name: str) -> list:
    """The node's controller on bus 1 and every device on it."""
    devices = _devices(si, name)
    ctrl = [d for d in devices if isinstance(d, vim.vm.device.VirtualSCSIController) and d.busNumber == 1]
    keys = {c.key for c in ctrl}
    return ctrl + [d for d in devices if getattr(d, "controllerKey", None) in keys]


def _nics(si, name: str) -> list[str]:
    return sorted(d.deviceInfo.summary for d in _devices(si, name) if isinstance(d, vim.vm.device.VirtualEthernetCard))


def _power(si, name: str) -> str:
    return str(prop(si, find(si, vim.VirtualMachine, name), "runtime.powerState"))


def _reserved(si) -> dict[tuple[str, str], bool]:
    out = {}
    for host_name in CLUSTER_A_HOSTS:
        for lun in prop(si, find(si, vim.HostSystem, host_name), "config.storageDevice.scsiLun"):
            if lun.canonicalName in LUNS:
                out[(host_name, lun.canonicalName)] = bool(lun.perenniallyReserved)
    return out


def _options(si) -> dict[tuple[str, str], object]:
    out = {}
    for host_name in ("esx-a1.lab.local", "esx-a2.lab.local"):
        manager = prop(si, find(si, vim.HostSystem, host_name), "configManager.advancedOption")
        for key in OPTIONS:
            out[(host_name, key)] = manager.QueryOptions(name=key)[0].value
    return out


def _placement(si) -> tuple[list[str], list[str], list[str]]:
    """Cluster-A's DRS and HA override VMs and its rule names."""
    cfg = prop(si, find(si, vim.ClusterComputeResource, "Cluster-A"), "configurationEx")
    names = {vm._moId: n for n in NODES for vm in [find(si, vim.VirtualMachine, n)]}
    drs = sorted(names.get(c.key._moId, c.key._moId) for c in cfg.drsVmConfig or [])
    das = sorted(names.get(c.key._moId, c.key._moId) for c in cfg.dasVmConfig or [])
    return drs, das, sorted(r.name for r in cfg.rule or [])


def _groups(si) -> list[str]:
    """Cluster-A's DRS group names."""
    cfg = prop(si, find(si, vim.ClusterComputeResource, "Cluster-A"), "configurationEx")
    return sorted(g.name for g in cfg.group or [])


def _state(lab, desired: Path) -> dict:
    shown = run(lab, "show", str(desired), "--json")
    assert shown.code == 0, shown
    return json.loads(shown.out)


def _datastore_file(lab, path: str) -> Path:
    """A datastore path (`[DS] dir/file.vmdk`) as the lab keeps it on disk."""
    name, _, rest = path[1:].partition("] ")
    return Path(lab.run_dir) / "datastores" / name / rest


def _destroy(lab, desired: Path, *args: str):
    return run(lab, "destroy", str(desired), "--auto-approve", *args)


def test_destroy_after_apply_keeps_every_luns_data_and_the_nodes_own_disks(lab, tmp_path):
    si = lab.connect()
    desired = example("cluster-across-boxes", tmp_path)
    own = {n: _own_disks(si, n) for n in NODES}
    nics = {n: _nics(si, n) for n in NODES}
    reserved, options = _reserved(si), _options(si)
    # A DRS group of someone else's in the same vSphere cluster: destroy leaves it alone.
    cluster = find(si, vim.ClusterComputeResource, "Cluster-A")
    theirs = vim.cluster.HostGroup(name="app-hosts", host=[find(si, vim.HostSystem, CLUSTER_A_HOSTS[0])])
    spec = vim.cluster.ConfigSpecEx(groupSpec=[vim.cluster.GroupSpec(operation="add", info=theirs)])
    wait(cluster.ReconfigureComputeResource_Task(spec=spec, modify=True))
    applied = run(lab, "apply", str(desired), "--auto-approve", "--skip-guest")
    assert applied.code == 0, applied
    assert all(_shared_bus(si, n) for n in NODES) and _reserved(si) != reserved and _options(si) != options
    # HA is on in Cluster-A: apply made the VM-Host rule and its two groups.
    assert "mscsctl-sql-prod-01-on-hosts" in _placement(si)[2]
    assert _groups(si) == ["app-hosts", "mscsctl-sql-prod-01-hosts", "mscsctl-sql-prod-01-nodes"]
    mapping_files = [
        d.backing.fileName for d in _shared_bus(si, "SQLNODE1") if isinstance(d, vim.vm.device.VirtualDisk)
    ]
    assert len(mapping_files) == 2 and all(_datastore_file(lab, f).exists() for f in mapping_files)

    planned = run(lab, "plan", str(desired), "--destroy", "--detailed-exitcode")
    assert planned.code == 2, planned
    text = planned.out
    # Reverse order: node 2 first, node 1 (which created the files) last, then placement, then hosts.
    order = [
        "SQLNODE2/power#power-off",
        "SQLNODE2/disk/data#detach-disk",
        "SQLNODE2/controller/1#remove-controller",
        "SQLNODE2/nic/heartbeat#remove-nic",
        "SQLNODE2/power#power-on",
        "SQLNODE1/power#power-off",
        "SQLNODE1/power#power-on",
        "SQLNODE1/drs  remove-drs-override",
        "rule/mscsctl-sql-prod-01  delete-rule",
        f"lun/{LUNS[0]}  release-lun",
        "option/Disk.ResetOnFailure  restore-host-option",
    ]
    listed = text.replace("#", "  ")
    positions = [listed.find(item.replace("#", "  ")) for item in order]
    assert -1 not in positions and positions == sorted(positions), text
    assert f"LUN {LUNS[0]}: its data is never touched" in text, text
    assert "nic/production  remove-nic" not in text  # the VM's own adapter is not mscsctl's
    assert "SQLNODE1/nic/production: found, not created by mscsctl (kept)" in text, text

    destroyed = _destroy(lab, desired)
    assert destroyed.code == 0, destroyed
    assert "apply complete" in destroyed.out, destroyed

    for node in NODES:
        assert _power(si, node) == "poweredOn"
        assert _own_disks(si, node) == own[node]  # same devices, same files
        assert _shared_bus(si, node) == []  # no shared controller, no disk on it
        assert _nics(si, node) == nics[node]  # the heartbeat adapter gone, the production one kept
    assert _placement(si) == ([], [], [])  # overrides, the VM-VM rule and the VM-Host rule gone
    assert _groups(si) == ["app-hosts"]  # mscsctl's two DRS groups gone, the other one kept
    assert _reserved(si) == reserved  # released where mscsctl reserved them
    assert _options(si) == options  # put back as the hosts had them
    # Every LUN is still there, and so is each RDM's mapping file: nothing of the data was touched.
    for host_name in CLUSTER_A_HOSTS:
        names = {
            lun.canonicalName for lun in prop(si, find(si, vim.HostSystem, host_name), "config.storageDevice.scsiLun")
        }
        assert set(LUNS) <= names
    assert all(_datastore_file(lab, f).exists() for f in mapping_files)

    state = _state(lab, desired)
    record = state["resources"]["sql-prod-01/destroyed/sql-prod-01"]
    assert f"LUN {LUNS[1]}: its data is never touched" in record["applied"]["kept"]
    taken = ("/disk/", "/controller/", "/nic/heartbeat", "/lun/", "/option/", "/drs", "/ha", "/rule/")
    assert not [a for a in state["resources"] if any(t in a for t in taken)], state["resources"]
    shown = run(lab, "show", str(desired))
    assert "left in vCenter:" in shown.out and f"LUN {LUNS[0]}: its data is never touched" in shown.out, shown

    again = _destroy(lab, desired)
    assert again.code == 0, again
    assert "nothing of mscsctl's left to remove" in again.out and "apply complete" not in again.out, again
    assert run(lab, "plan", str(desired), "--destroy", "--detailed-exitcode").code == 0


def test_a_shared_vmdk_is_kept_without_the_flag_and_deleted_with_it(lab, tmp_path):
    si = lab.connect()
    desired = example("cluster-in-a-box", tmp_path)
    applied = run(lab, "apply", str(desired), "--auto-approve", "--skip-guest")
    assert applied.code == 0, applied
    files = sorted(d.backing.fileName for d in _shared_bus(si, "CIB-NODE1") if isinstance(d, vim.vm.device.VirtualDisk))
    assert len(files) == 2

    kept = _destroy(lab, desired)
    assert kept.code == 0, kept
    assert f"shared VMDK {files[0]}: detached and kept there" in kept.out, kept
    assert all(_datastore_file(lab, f).exists() for f in files)
    assert all(_shared_bus(si, n) == [] and _power(si, n) == "poweredOn" for n in ("CIB-NODE1", "CIB-NODE2"))
    record = _state(lab, desired)["resources"]["cib-test-01/destroyed/cib-test-01"]
    assert any(k.startswith(f"shared VMDK {files[1]}:") for k in record["applied"]["kept"])

    # Built again (the files are there: attached, not created anew), then destroyed with the flag.
    again = run(lab, "apply", str(desired), "--auto-approve", "--skip-guest")
    assert again.code == 0, again
    assert "destroyed" not in json.dumps(_state(lab, desired)["resources"])
    deleted = _destroy(lab, desired, "--allow-data-loss")
    assert deleted.code == 0, deleted
    assert not any(_datastore_file(lab, f).exists() for f in files)
    record = _state(lab, desired)["resources"]["cib-test-01/destroyed/cib-test-01"]
    assert not any("shared VMDK" in k for k in record["applied"]["kept"])


def test_an_imported_clusters_found_resources_are_kept(lab, tmp_path):
    si = lab.connect()
    _build_across_boxes(
        si, ("[SAN-VMFS-01] sql-prod-01/quorum-physical.vmdk", "[SAN-VMFS-01] sql-prod-01/data-physical.vmdk")
    )
    desired = tmp_path / "sql-prod-01.yaml"
    imported = run(lab, "import", "--datacenter", "DC1", "--vm", "SQLNODE1", "--vm", "SQLNODE2", "--out", str(desired))
    assert imported.code == 0, imported
    before = {n: [d.key for d in _shared_bus(si, n)] for n in NODES}
    placement, reserved, options = _placement(si), _reserved(si), _options(si)
    versions = [prop(si, find(si, vim.VirtualMachine, n), "config.changeVersion") for n in NODES]

    destroyed = _destroy(lab, desired)
    assert destroyed.code == 0, destroyed
    assert "nothing of mscsctl's left to remove" in destroyed.out, destroyed
    assert "not created by mscsctl" in destroyed.out, destroyed
    assert {n: [d.key for d in _shared_bus(si, n)] for n in NODES} == before
    assert [prop(si, find(si, vim.VirtualMachine, n), "config.changeVersion") for n in NODES] == versions
    assert (_placement(si), _reserved(si), _options(si)) == (placement, reserved, options)
    assert "sql-prod-01/destroyed/sql-prod-01" in _state(lab, desired)["resources"]


def test_a_failure_mid_destroy_powers_the_node_on_again_and_a_saved_destroy_plan_finishes(lab, tmp_path):
    si = lab.connect()
    desired = example("cluster-across-boxes", tmp_path)
    applied = run(lab, "apply", str(desired), "--auto-approve", "--skip-guest")
    assert applied.code == 0, applied
    lab.inject_fault(method="ReconfigVM_Task", object="SQLNODE2", fault="task", message="Injected: disk locked")

    failed = _destroy(lab, desired)
    assert failed.code == 1, failed
    assert "Injected: disk locked" in failed.err and "SQLNODE2 powered on again after the failure" in failed.err
    assert "Traceback" not in failed.err
    assert _power(si, "SQLNODE2") == "poweredOn" and _power(si, "SQLNODE1") == "poweredOn"
    assert all(len(_shared_bus(si, n)) == 3 for n in NODES)  # nothing half-removed: one reconfigure a node

    lab.clear_faults()
    plan = tmp_path / "destroy.json"
    saved = run(lab, "plan", str(desired), "--destroy", "--out", str(plan))
    assert saved.code == 0, saved
    assert json.loads(plan.read_text())["destroy"] is True
    finished = run(lab, "apply", str(plan))
    assert finished.code == 0, finished
    assert all(_shared_bus(si, n) == [] and _power(si, n) == "poweredOn" for n in NODES)
    assert _placement(si) == ([], [], [])
    assert run(lab, "destroy", str(plan)).code == 1  # destroy takes the desired file, not a plan


def test_a_destroy_killed_while_a_node_is_off_is_finished_by_the_next_with_the_node_on(lab, tmp_path):
    si = lab.connect()
    desired = example("cluster-across-boxes", tmp_path)
    applied = run(lab, "apply", str(desired), "--auto-approve", "--skip-guest")
    assert applied.code == 0, applied
    # Node 2's reconfigure is held 3 s: the run is killed while node 2 is off for it.
    lab.inject_fault(method="ReconfigVM_Task", object="SQLNODE2", action="delay", delay_ms=3000)
    lab.reset_calls()
    proc = start(lab, "destroy", str(desired), "--auto-approve")
    try:
        until(lambda: lab.calls().get("ReconfigVM_Task", 0) >= 1, what="node 2's reconfigure")
    finally:
        proc.kill()  # SIGKILL: no handler runs, whatever was off stays off
        proc.wait(timeout=30)
        lab.clear_faults()
    assert _power(si, "SQLNODE2") == "poweredOff"  # what a killed run leaves: no one powered it on

    again = _destroy(lab, desired)
    held = re.search(r"mscsctl force-unlock (\S+)", again.err) if again.code == 1 else None
    if held is not None:  # the killed run's lock, released as a user would
        assert run(lab, "force-unlock", held.group(1).strip("`'\"")).code == 0
        again = _destroy(lab, desired)
    assert again.code == 0, again
    assert "SQLNODE2/power  power-on" in again.out, again
    for node in NODES:
        assert _power(si, node) == "poweredOn" and _shared_bus(si, node) == []
    assert _placement(si) == ([], [], [])
    assert run(lab, "plan", str(desired), "--destroy", "--detailed-exitcode").code == 0


def test_on_a_terminal_destroy_asks_and_anything_but_yes_changes_nothing(lab, tmp_path):
    si = lab.connect()
    desired = example("cluster-across-boxes", tmp_path)
    applied = run(lab, "apply", str(desired), "--auto-approve", "--skip-guest")
    assert applied.code == 0, applied
    devices = {n: [d.key for d in _shared_bus(si, n)] for n in NODES}
    code, text = on_a_terminal(lab, "destroy", str(desired), answer="y")
    assert code == 1 and "They decommission the cluster" in text and "cancelled" in text, text
    assert {n: [d.key for d in _shared_bus(si, n)] for n in NODES} == devices
    assert "sql-prod-01/destroyed/sql-prod-01" not in _state(lab, desired)["resources"]
    assert run(lab, "destroy", str(desired)).code == 1  # no terminal, no --auto-approve: refused
    assert {n: [d.key for d in _shared_bus(si, n)] for n in NODES} == devices


def test_destroy_of_a_directory_takes_each_cluster_away_and_records_each_as_destroyed(lab, tmp_path):
    si = lab.connect()
    fleet = tmp_path / "fleet"
    fleet.mkdir()
    sql, cib = example("cluster-across-boxes", fleet), example("cluster-in-a-box", fleet)
    options = _options(si)
    applied = run(lab, "apply", str(fleet), "--auto-approve", "--skip-guest")
    assert applied.code == 0, applied

    destroyed = run(lab, "destroy", str(fleet), "--auto-approve", "--json")
    assert destroyed.code == 0, destroyed
    clusters = {c["cluster"]: c["status"] for c in json.loads(destroyed.out)["clusters"]}
    assert clusters == {"sql-prod-01": "applied", "cib-test-01": "applied"}
    for node in (*NODES, "CIB-NODE1", "CIB-NODE2"):
        assert _power(si, node) == "poweredOn" and _shared_bus(si, node) == []
    assert _placement(si) == ([], [], [])
    for desired, name in ((sql, "sql-prod-01"), (cib, "cib-test-01")):
        assert f"{name}/destroyed/{name}" in _state(lab, desired)["resources"]
    # esx-a2 ran a node of sql-prod-01 only: put back. esx-a1 ran nodes of both: sql-prod-01 went
    # first and saw cib-test-01's nodes still sharing a bus there, so it kept the options it set
    # and said why; the next destroy, with no bus shared there any more, puts them back.
    now = _options(si)
    assert all(now[("esx-a2.lab.local", k)] == options[("esx-a2.lab.local", k)] for k in OPTIONS)
    assert now != options
    record = _state(lab, sql)["resources"]["sql-prod-01/destroyed/sql-prod-01"]["applied"]["kept"]
    assert any("esx-a1.lab.local/option/" in k and "CIB-NODE1" in k for k in record), record
    again = run(lab, "destroy", str(fleet), "--auto-approve")
    assert again.code == 0 and "restore-host-option" in again.out, again
    assert _options(si) == options
    assert run(lab, "plan", str(fleet), "--destroy", "--detailed-exitcode").code == 0
