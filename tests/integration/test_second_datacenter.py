"""A second datacenter in the vCenter: the scale profiles add DC2, which holds vSphere
clusters and VMs of the same names as DC1's (vCenter holds a VM name once per folder, so the
same name in two datacenters, not twice in one folder). Planning a cluster of DC1 finds DC1's
VMs, not their DC2 namesakes, and pays nothing for DC2: the same requests, and the bytes of
the same lab without DC2 within a small margin (`scaleSecondDatacenter: false` in the lab
file turns DC2 off)."""

from __future__ import annotations

import pytest
from pyVmomi import vim

from labctl import wait
from tests.integration.cli import default_lab, example, run
from tests.integration.test_scale import plan_counted

pytestmark = pytest.mark.slow

SMALL = ("--scale", "small")
NODES = ("SQLNODE1", "SQLNODE2")  # the cross-box example's nodes, on Cluster-A of DC1
# bytes DC2 may cost a plan of a DC1 cluster: its name and moref among the root folder's children (~220)
MARGIN = 1024


def datacenter(si, name: str) -> vim.Datacenter:
    [dc] = [e for e in si.content.rootFolder.childEntity if isinstance(e, vim.Datacenter) and e.name == name]
    return dc


def by_name(si, dc: vim.Datacenter, vimtype) -> dict[str, list]:
    """The entities of a type inside one datacenter, by name (a list per name)."""
    view = si.content.viewManager.CreateContainerView(dc, [vimtype], True)
    try:
        out: dict[str, list] = {}
        for obj in view.view:
            out.setdefault(obj.name, []).append(obj)
        return out
    finally:
        view.Destroy()


def test_dc2_holds_an_inventory_of_its_own_with_dc1_names(lab_factory):
    lab = lab_factory(extra_args=SMALL)
    si = lab.connect()
    dc1, dc2 = datacenter(si, "DC1"), datacenter(si, "DC2")

    clusters1 = by_name(si, dc1, vim.ClusterComputeResource)
    clusters2 = by_name(si, dc2, vim.ClusterComputeResource)
    # the lab file's clusters have namesakes in DC2, and so have the Scale-NN ones
    assert {"Cluster-A", "Cluster-B", "Scale-01", "Scale-02"} <= set(clusters2)
    assert set(clusters2) <= set(clusters1)
    a1, a2 = clusters1["Cluster-A"][0], clusters2["Cluster-A"][0]
    assert a1 != a2
    assert sorted(h.name for h in a2.host) == ["dc2-esx-a1.lab.local", "dc2-esx-a2.lab.local", "dc2-esx-a3.lab.local"]
    assert not {h.name for h in a1.host} & {h.name for h in a2.host}

    # hosts of real size: the profile's advanced options, each described; LUNs of their own
    host = clusters2["Scale-01"][0].host[0]
    om = host.configManager.advancedOption
    settings = {o.key: o.value for o in om.setting}
    assert len(settings) >= 1000
    assert {d.key for d in om.supportedOption} >= set(settings)
    assert isinstance(settings["Disk.UseLunReset"], int)
    luns = {lun.canonicalName for lun in host.config.storageDevice.scsiLun if isinstance(lun, vim.host.ScsiDisk)}
    assert len({n for n in luns if n.startswith("naa.60000970000197081")}) == 32  # Scale-01 of DC2's own
    dc1_luns = {lun.canonicalName for h in clusters1["Scale-01"][0].host for lun in h.config.storageDevice.scsiLun}
    assert not luns & dc1_luns

    # datastores and port groups of DC2, the port group names of DC1 again
    datastores2 = by_name(si, dc2, vim.Datastore)
    assert {f"DC2-VMFS-{i:03d}" for i in range(1, 5)} <= set(datastores2)
    assert not set(datastores2) & set(by_name(si, dc1, vim.Datastore))
    assert {"Production", "Heartbeat", "Scale-VMs"} <= {n.name for n in dc2.network}
    assert not {n._moId for n in dc2.network} & {n._moId for n in dc1.network}

    # VMs of the same names in both datacenters, each on its own datacenter's hosts
    vms1, vms2 = by_name(si, dc1, vim.VirtualMachine), by_name(si, dc2, vim.VirtualMachine)
    assert len(vms2) >= 30
    for name in (*NODES, "APP0001", "APP0030"):
        [vm1], [vm2] = vms1[name], vms2[name]
        assert vm1._moId != vm2._moId
        assert vm2.runtime.host.name.startswith(("dc2-esx-", "esx-dc2-"))
        assert not vm1.runtime.host.name.startswith(("dc2-esx-", "esx-dc2-"))
    sql2 = vms2["SQLNODE1"][0]
    assert sql2.runtime.host.name == "dc2-esx-a1.lab.local"
    assert any(isinstance(d, vim.vm.device.VirtualDisk) for d in sql2.config.hardware.device)
    assert [
        d.backing.deviceName for d in sql2.config.hardware.device if isinstance(d, vim.vm.device.VirtualEthernetCard)
    ] == ["Production"]
    # the lab's control requests take a repeated name for DC1's VM, DC2's by moref
    taken = lab.control("POST", "vms/SQLNODE1/snapshots", {"name": "before"})
    assert taken["moref"] == vms1["SQLNODE1"][0]._moId
    taken = lab.control("POST", f"vms/{sql2._moId}/snapshots", {"name": "before"})
    assert taken["moref"] == sql2._moId
    assert sql2.snapshot.rootSnapshotList[0].name == "before"

    # the lab is as strict in DC2: a VM name is once per folder of a datacenter
    folder = dc2.vmFolder
    spec = vim.vm.ConfigSpec(
        name="SQLNODE1", files=vim.vm.FileInfo(vmPathName="[dc2-esx-a1-local]"), guestId="otherGuest"
    )
    task = folder.CreateVM_Task(config=spec, pool=a2.resourcePool, host=sql2.runtime.host)
    with pytest.raises(vim.fault.DuplicateName):
        wait(task)


def bus1(vm: vim.VirtualMachine) -> list:
    """The devices on a VM's SCSI bus 1 (where the cross-box example puts its shared disks)."""
    devices = vm.config.hardware.device
    ctrls = [d for d in devices if isinstance(d, vim.vm.device.VirtualSCSIController) and d.busNumber == 1]
    return ctrls + [d for c in ctrls for d in devices if d.controllerKey == c.key]


def test_a_plan_of_a_dc1_cluster_pays_nothing_for_dc2_and_applies_to_dc1(lab_factory, tmp_path):
    doc = default_lab()
    doc["scaleSecondDatacenter"] = False
    without = lab_factory(doc, extra_args=SMALL)
    assert [e.name for e in without.connect().content.rootFolder.childEntity] == ["DC1"]
    base_plan, base_calls, base_bytes = plan_counted(without, tmp_path / "without")
    with_dc2 = lab_factory(extra_args=SMALL)
    plan, calls, received = plan_counted(with_dc2, tmp_path / "with")
    print(f"requests {sum(base_calls.values())} -> {sum(calls.values())}, bytes read {base_bytes} -> {received}")
    # DC2 costs no request and (almost) no byte, and changes nothing planned
    assert calls == base_calls
    assert received <= base_bytes + MARGIN, (received, base_bytes)
    assert plan == base_plan

    # the plan is of DC1's nodes, not their DC2 namesakes: applied, it changes DC1's VMs only
    si = with_dc2.connect()
    dc1 = by_name(si, datacenter(si, "DC1"), vim.VirtualMachine)
    dc2 = by_name(si, datacenter(si, "DC2"), vim.VirtualMachine)
    versions = {node: dc2[node][0].config.changeVersion for node in NODES}
    desired = example("cluster-across-boxes", tmp_path / "with")
    applied = run(with_dc2, "apply", str(desired), "--auto-approve", "--skip-guest")
    assert applied.code == 0, applied
    for node in NODES:
        [vm1], [vm2] = dc1[node], dc2[node]
        disks = [d for d in bus1(vm1) if isinstance(d, vim.vm.device.VirtualDisk)]
        assert len(disks) == 2, (node, bus1(vm1))
        assert bus1(vm2) == [], node
        assert vm2.config.changeVersion == versions[node], node
    again = run(with_dc2, "plan", str(desired), "--skip-guest", "--detailed-exitcode")
    assert again.code == 0, again
