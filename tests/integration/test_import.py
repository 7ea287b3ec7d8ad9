"""`mscsctl import` of clusters built by hand through pyVmomi, as an administrator builds them in the
vSphere client: the desired file it writes validates, the next plan changes nothing, `show` lists
the adopted objects, and a setting changed by hand afterwards is drift "changed outside mscsctl"."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from pyVmomi import VmomiSupport, vim

from labctl import find, prop, wait
from tests.integration.cli import run

pytestmark = pytest.mark.slow

LUN1 = "naa.6006016012345678000000000000a001"
LUN2 = "naa.6006016012345678000000000000a002"
CLUSTER_A_HOSTS = ("esx-a1.lab.local", "esx-a2.lab.local", "esx-a3.lab.local")
PROCEDURE_OPTIONS = {"Disk.ResetOnFailure": 1, "Disk.UseLunReset": 1, "Disk.UseDeviceReset": 0}


@pytest.fixture
def lab(lab_factory):
    return lab_factory(None, extra_args=("--wine", "off"))


# --- building a cluster by hand ------------------------------------------------------------------


def _power(vm, on: bool) -> None:
    wait(vm.PowerOnVM_Task() if on else vm.PowerOffVM_Task())


def _controller_spec(sharing: str) -> vim.vm.device.VirtualDeviceSpec:
    ctrl = vim.vm.device.VirtualLsiLogicSASController(key=-100, busNumber=1, sharedBus=sharing)
    return vim.vm.device.VirtualDeviceSpec(operation="add", device=ctrl)


def _rdm_spec(file: str, unit: int, lun: vim.host.ScsiLun | None) -> vim.vm.device.VirtualDeviceSpec:
    """An RDM in physical mode on the new controller: created on node 1 (`lun` given), attached on node 2."""
    backing = vim.vm.device.VirtualDisk.RawDiskMappingVer1BackingInfo(
        fileName=file, compatibilityMode="physicalMode", diskMode="independent_persistent"
    )
    if lun is not None:
        backing.deviceName, backing.lunUuid = lun.devicePath, lun.uuid
    disk = vim.vm.device.VirtualDisk(key=-200 - unit, controllerKey=-100, unitNumber=unit, backing=backing)
    spec = vim.vm.device.VirtualDeviceSpec(operation="add", device=disk)
    if lun is not None:
        spec.fileOperation = "create"
    return spec


def _vmdk_spec(file: str, unit: int, size_gb: int, create: bool) -> vim.vm.device.VirtualDeviceSpec:
    backing = vim.vm.device.VirtualDisk.FlatVer2BackingInfo(
        fileName=file, diskMode="independent_persistent", thinProvisioned=False, eagerlyScrub=True
    )
    disk = vim.vm.device.VirtualDisk(
        key=-200 - unit, controllerKey=-100, unitNumber=unit, backing=backing, capacityInKB=size_gb * 1024 * 1024
    )
    spec = vim.vm.device.VirtualDeviceSpec(operation="add", device=disk)
    if create:
        spec.fileOperation = "create"
    return spec


def _heartbeat_spec(si) -> vim.vm.device.VirtualDeviceSpec:
    network = find(si, vim.Network, "Heartbeat")
    nic = vim.vm.device.VirtualVmxnet3(
        key=-300,
        backing=vim.vm.device.VirtualEthernetCard.NetworkBackingInfo(deviceName="Heartbeat", network=network),
        addressType="generated",
    )
    return vim.vm.device.VirtualDeviceSpec(operation="add", device=nic)


def _reconfigure(vm, changes: list) -> None:
    wait(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(deviceChange=changes)))


def _scsi_lun(si, host_name: str, canonical: str) -> vim.host.ScsiLun:
    host = find(si, vim.HostSystem, host_name)
    return next(lun for lun in prop(si, host, "config.storageDevice.scsiLun") if lun.canonicalName == canonical)


def _placement(si, vms: list, rule: str, rule_class: type, hosts: list[str]) -> None:
    """DRS and HA overrides off for the nodes, their VM-VM rule, and, since Cluster-A has HA on, the
    VM-Host rule VMware's guides ask for (the nodes' VM group must run on the hosts that reach their
    shared disks), in the vSphere client's way."""
    cluster = find(si, vim.ClusterComputeResource, "Cluster-A")
    groups = [
        vim.cluster.VmGroup(name=f"{rule}-nodes", vm=vms),
        vim.cluster.HostGroup(name=f"{rule}-hosts", host=[find(si, vim.HostSystem, h) for h in hosts]),
    ]
    wait(
        cluster.ReconfigureComputeResource_Task(
            spec=vim.cluster.ConfigSpecEx(groupSpec=[vim.cluster.GroupSpec(operation="add", info=g) for g in groups]),
            modify=True,
        )
    )
    vm_host = vim.cluster.VmHostRuleInfo(
        name=f"{rule}-on-hosts",
        enabled=True,
        mandatory=True,
        vmGroupName=f"{rule}-nodes",
        affineHostGroupName=f"{rule}-hosts",
    )
    spec = vim.cluster.ConfigSpecEx(
        drsVmConfigSpec=[
            vim.cluster.DrsVmConfigSpec(operation="add", info=vim.cluster.DrsVmConfigInfo(key=vm, enabled=False))
            for vm in vms
        ],
        dasVmConfigSpec=[
            vim.cluster.DasVmConfigSpec(
                operation="add",
                info=vim.cluster.DasVmConfigInfo(
                    key=vm, dasSettings=vim.cluster.DasVmSettings(restartPriority="disabled")
                ),
            )
            for vm in vms
        ],
        rulesSpec=[
            vim.cluster.RuleSpec(operation="add", info=rule_class(name=rule, enabled=True, vm=vms)),
            vim.cluster.RuleSpec(operation="add", info=vm_host),
        ],
    )
    wait(cluster.ReconfigureComputeResource_Task(spec=spec, modify=True))


def _set_options(si, host_name: str, options: dict[str, int]) -> None:
    host = find(si, vim.HostSystem, host_name)
    changed = [vim.option.OptionValue(key=k, value=VmomiSupport.long(v)) for k, v in options.items()]
    prop(si, host, "configManager.advancedOption").UpdateOptions(changedValue=changed)


def _build_across_boxes(si, files: tuple[str, str], units: tuple[int, int] = (0, 1)) -> list:
    """SQLNODE1/SQLNODE2: a physical-sharing controller on bus 1, node 1 creates the RDMs, node 2
    attaches them (at `units`), a heartbeat NIC each, overrides, the anti-affinity rule, host
    options and perennial reservations, all by hand."""
    vms = [find(si, vim.VirtualMachine, name) for name in ("SQLNODE1", "SQLNODE2")]
    for vm in vms:
        _power(vm, False)
    luns = [_scsi_lun(si, "esx-a1.lab.local", naa) for naa in (LUN1, LUN2)]
    _reconfigure(
        vms[0],
        [
            _controller_spec("physicalSharing"),
            *(_rdm_spec(f, u, lun) for f, u, lun in zip(files, (0, 1), luns, strict=True)),
            _heartbeat_spec(si),
        ],
    )
    node1_files = [
        d.backing.fileName
        for d in prop(si, vms[0], "config.hardware.device")
        if isinstance(d.backing, vim.vm.device.VirtualDisk.RawDiskMappingVer1BackingInfo)
    ]
    _reconfigure(
        vms[1],
        [
            _controller_spec("physicalSharing"),
            *(_rdm_spec(f, u, None) for f, u in zip(node1_files, units, strict=True)),
            _heartbeat_spec(si),
        ],
    )
    for vm in vms:
        _power(vm, True)
    _placement(si, vms, "mscsctl-sql-prod-01", vim.cluster.AntiAffinityRuleSpec, CLUSTER_A_HOSTS)
    for host in ("esx-a1.lab.local", "esx-a2.lab.local"):
        _set_options(si, host, PROCEDURE_OPTIONS)
    for host_name in CLUSTER_A_HOSTS:
        storage = prop(si, find(si, vim.HostSystem, host_name), "configManager.storageSystem")
        for naa in (LUN1, LUN2):
            storage.MarkPerenniallyReserved(lunUuid=_scsi_lun(si, host_name, naa).uuid, state=True)
    return vms


def _build_in_a_box(si) -> list:
    """CIB-NODE1/CIB-NODE2 on esx-a1: two shared VMDKs (eager-zeroed thick) on a virtual-sharing
    controller, a heartbeat NIC each, overrides and the affinity rule; host options left as ESXi has them."""
    vms = [find(si, vim.VirtualMachine, name) for name in ("CIB-NODE1", "CIB-NODE2")]
    disks = (("[esx-a1-local] cib-test-01/quorum.vmdk", 0, 1), ("[esx-a1-local] cib-test-01/data.vmdk", 1, 2))
    for vm in vms:
        _power(vm, False)
    for vm, create in zip(vms, (True, False), strict=True):
        specs = [_vmdk_spec(file, unit, size, create) for file, unit, size in disks]
        _reconfigure(vm, [_controller_spec("virtualSharing"), *specs, _heartbeat_spec(si)])
    for vm in vms:
        _power(vm, True)
    _placement(si, vms, "mscsctl-cib-test-01", vim.cluster.AffinityRuleSpec, ["esx-a1.lab.local"])
    return vms


def _import(lab, *args: str):
    return run(lab, "import", "--datacenter", "DC1", *args)


def _state(lab, desired: Path) -> dict:
    shown = run(lab, "show", str(desired), "--json")
    assert shown.code == 0, shown
    return json.loads(shown.out)


def _writes(lab) -> dict[str, int]:
    """Calls since the last reset that could change vCenter."""
    reads = ("Retrieve", "Login", "Logout", "CreateContainerView", "DestroyView", "CurrentTime", "Continue")
    return {m: n for m, n in lab.calls().items() if not m.startswith(reads) and m != "RetrieveServiceContent"}


# --- the tests -------------------------------------------------------------------------------------


def test_import_cluster_across_boxes_built_by_hand(lab, tmp_path):
    si = lab.connect()
    vms = _build_across_boxes(
        si, ("[SAN-VMFS-01] sql-prod-01/quorum-physical.vmdk", "[SAN-VMFS-01] sql-prod-01/data-physical.vmdk")
    )
    versions = [prop(si, vm, "config.changeVersion") for vm in vms]
    desired = tmp_path / "sql-prod-01.yaml"
    lab.reset_calls()

    imported = _import(lab, "--vm", "SQLNODE1", "--vm", "SQLNODE2", "--out", str(desired))
    assert imported.code == 0, imported
    assert _writes(lab) == {}, "import changed vCenter"
    assert [prop(si, vm, "config.changeVersion") for vm in vms] == versions

    doc = yaml.safe_load(desired.read_text())
    assert doc["metadata"]["name"] == "sql-prod-01"  # the folder of the mapping files
    spec = doc["spec"]
    assert spec["topology"] == "cluster-across-boxes" and spec["guestOS"] == "windows2012"  # windows8Server64Guest
    assert [n["vm"] for n in spec["nodes"]] == ["SQLNODE1", "SQLNODE2"]
    assert spec["sharedDisks"]["controller"] == {"bus": 1, "type": "lsilogic-sas", "sharing": "physical"}
    assert spec["sharedDisks"]["disks"] == [
        {"name": "quorum", "lun": LUN1, "unit": 0, "compatibility": "physical", "mappingDatastore": "SAN-VMFS-01"},
        {"name": "data", "lun": LUN2, "unit": 1, "compatibility": "physical", "mappingDatastore": "SAN-VMFS-01"},
    ]
    assert spec["networks"] == {
        "production": {"portgroup": "Production", "adapter": "vmxnet3"},
        "heartbeat": {"portgroup": "Heartbeat", "adapter": "vmxnet3"},
    }
    assert spec["hostOptions"] == PROCEDURE_OPTIONS
    assert spec["placement"] == {"drs": "disabled", "ha": "disabled", "separateHosts": True}
    assert spec["guest"] == {"diskTimeoutSeconds": 60}
    assert "# SCSI 1:0 of every node: RDM of" in desired.read_text()

    validated = run(lab, "validate", str(desired))
    assert validated.code == 0, validated
    planned = run(lab, "plan", str(desired), "--detailed-exitcode", "--skip-guest")  # the lab plays no guests
    assert planned.code == 0, planned
    assert "no changes" in planned.out

    shown = run(lab, "show", str(desired))
    assert shown.code == 0, shown
    for address in (
        "sql-prod-01/node/SQLNODE1/controller/1",
        "sql-prod-01/node/SQLNODE2/disk/quorum",
        "sql-prod-01/node/SQLNODE2/nic/heartbeat",
        "sql-prod-01/host/esx-a2.lab.local/option/Disk.UseDeviceReset",
        "sql-prod-01/host/esx-a3.lab.local/lun/" + LUN2,
        "sql-prod-01/node/SQLNODE1/drs",
        "sql-prod-01/rule/mscsctl-sql-prod-01",
    ):
        assert address in shown.out, shown
    state = _state(lab, desired)
    assert (tmp_path / ".mscsctl" / "sql-prod-01.state.json").exists()  # beside the file, where plan and apply look
    resources = state["resources"]
    assert not any(r["created_by_mscsctl"] for r in resources.values())
    quorum = resources["sql-prod-01/node/SQLNODE2/disk/quorum"]
    assert quorum["vm_moref"] == vms[1]._moId
    assert quorum["file"] == "[SAN-VMFS-01] sql-prod-01/quorum-physical.vmdk"
    assert quorum["device_key"] is not None
    assert resources["sql-prod-01/rule/mscsctl-sql-prod-01"]["rule_key"] is not None
    assert resources["sql-prod-01/host/esx-a1.lab.local/option/Disk.ResetOnFailure"]["host_moref"].startswith("host-")

    again = _import(lab, "--vm", "SQLNODE1", "--vm", "SQLNODE2", "--out", str(desired))
    assert again.code == 1 and "exists already" in again.err, again
    forced = _import(lab, "--vm", "SQLNODE1", "--vm", "SQLNODE2", "--out", str(desired), "--force")
    assert forced.code == 0, forced
    assert _state(lab, desired)["lineage"] == state["lineage"]

    _set_options(si, "esx-a2.lab.local", {"Disk.UseDeviceReset": 1})
    drift = run(lab, "drift", str(desired), "--skip-guest")
    assert drift.code == 2, drift
    assert "sql-prod-01/host/esx-a2.lab.local/option/Disk.UseDeviceReset.value" in drift.out
    assert "changed outside mscsctl" in drift.out, drift


def test_import_cluster_in_a_box_picked_by_pattern(lab, tmp_path):
    si = lab.connect()
    vms = _build_in_a_box(si)
    desired, states = tmp_path / "cib.yaml", str(tmp_path / "states")
    imported = _import(
        lab,
        "--cluster",
        "Cluster-A",
        "--vm-pattern",
        "CIB-NODE*",
        "--name",
        "cib-test-01",
        "--out",
        str(desired),
        "--state-dir",
        states,
    )
    assert imported.code == 0, imported
    assert (tmp_path / "states" / "cib-test-01.state.json").exists()
    assert "MSCS-HOST-001" in imported.out  # ESXi's own Disk.* values, written as the hosts show them
    assert "MSCS-PLACE-001" in imported.out  # one host: a single point of failure

    spec = yaml.safe_load(desired.read_text())["spec"]
    assert spec["topology"] == "cluster-in-a-box"
    assert [n["vm"] for n in spec["nodes"]] == ["CIB-NODE1", "CIB-NODE2"]
    assert spec["sharedDisks"]["controller"]["sharing"] == "virtual"
    assert spec["sharedDisks"]["disks"] == [
        {"name": "quorum", "sizeGB": 1, "datastore": "esx-a1-local", "unit": 0},
        {"name": "data", "sizeGB": 2, "datastore": "esx-a1-local", "unit": 1},
    ]
    assert spec["hostOptions"] == {"Disk.ResetOnFailure": 0, "Disk.UseLunReset": 1, "Disk.UseDeviceReset": 1}
    assert spec["placement"]["separateHosts"] is False

    assert run(lab, "validate", str(desired)).code == 0
    planned = run(lab, "plan", str(desired), "--detailed-exitcode", "--skip-guest", "--state-dir", states)
    assert planned.code == 0, planned
    shown = run(lab, "show", str(desired), "--state-dir", states)
    assert "cib-test-01/node/CIB-NODE2/disk/data  (shared-vmdk, [esx-a1-local] cib-test-01/data.vmdk)" in shown.out

    cluster = find(si, vim.ClusterComputeResource, "Cluster-A")
    edit = vim.cluster.DrsVmConfigSpec(
        operation="edit", info=vim.cluster.DrsVmConfigInfo(key=vms[1], enabled=True, behavior="fullyAutomated")
    )
    wait(cluster.ReconfigureComputeResource_Task(spec=vim.cluster.ConfigSpecEx(drsVmConfigSpec=[edit]), modify=True))
    drift = run(lab, "drift", str(desired), "--json", "--skip-guest", "--state-dir", states)
    assert drift.code == 2, drift
    findings = [f for r in json.loads(drift.out)["reports"] for f in r["findings"]]
    assert [(f["address"], f["observed"], f["last_applied"], f["changed_outside"]) for f in findings] == [
        ("cib-test-01/node/CIB-NODE2/drs", "fullyAutomated", "disabled", True)
    ]
    assert "changed outside mscsctl" in run(lab, "drift", str(desired), "--skip-guest", "--state-dir", states).out


def test_import_refuses_nodes_whose_disks_differ(lab, tmp_path):
    si = lab.connect()
    files = ("[SAN-VMFS-01] sql-prod-01/quorum-physical.vmdk", "[SAN-VMFS-01] sql-prod-01/data-physical.vmdk")
    _build_across_boxes(si, files, units=(1, 0))  # node 2 has the two disks the other way round
    desired = tmp_path / "sql.yaml"
    refused = _import(lab, "--vm", "SQLNODE1", "--vm", "SQLNODE2", "--out", str(desired))
    assert refused.code == 1, refused
    assert "the nodes' shared disks differ" in refused.err
    assert (
        f"SCSI 1:0 is an RDM of {LUN1} (physical, [SAN-VMFS-01] sql-prod-01/quorum-physical.vmdk) on SQLNODE1"
        in refused.err
    )
    assert not desired.exists() and not (tmp_path / ".mscsctl").exists()


def test_import_refuses_mapping_files_where_the_format_cannot_name_them(lab, tmp_path):
    si = lab.connect()
    _build_across_boxes(si, ("[SAN-VMFS-01]", "[SAN-VMFS-01]"))  # vCenter names them SQLNODE1/SQLNODE1_N.vmdk
    desired = tmp_path / "sql.yaml"
    refused = _import(lab, "--vm", "SQLNODE1", "--vm", "SQLNODE2", "--name", "sql-prod-01", "--out", str(desired))
    assert refused.code == 1, refused
    assert "[SAN-VMFS-01] SQLNODE1/SQLNODE1_" in refused.err
    assert "has no field for another path" in refused.err
    assert not desired.exists()
    alone = _import(lab, "--vm", "SQLNODE1", "--out", str(desired))
    assert alone.code == 1 and "--physical NAME" in alone.err, alone
