"""A hand-built vCenter world for planner unit tests: two freshly built Windows VMs."""

from __future__ import annotations

from reconciler.observed import (
    Observed,
    ObservedCluster,
    ObservedController,
    ObservedDatastore,
    ObservedDisk,
    ObservedHba,
    ObservedHost,
    ObservedLun,
    ObservedNic,
    ObservedVm,
    ObservedVmHostRule,
    ObservedVmRule,
)
from reconciler.outcome import done
from reconciler.plan import ActionKind, Plan
from reconciler.record import record_outcome
from reconciler.spec import FailoverCluster, with_defaults
from state.model import State

NOW = "2026-01-02T03:04:05Z"

LUN1 = "naa.6006016012345678000000000000a001"
LUN2 = "naa.6006016012345678000000000000a002"
LUN_DS = "naa.6006016012345678000000000000a000"

CAB_YAML = {
    "apiVersion": "mscsctl/v1",
    "kind": "FailoverCluster",
    "metadata": {"name": "sql-prod-01"},
    "spec": {
        "topology": "cluster-across-boxes",
        "datacenter": "DC1",
        "guestOS": "windows2016",
        "nodes": [{"vm": "SQLNODE1"}, {"vm": "SQLNODE2"}],
        "sharedDisks": {
            "disks": [
                {"name": "quorum", "lun": LUN1, "unit": 0, "mappingDatastore": "SAN-VMFS-01"},
                {"name": "data", "lun": LUN2, "unit": 1, "mappingDatastore": "SAN-VMFS-01"},
            ]
        },
        "networks": {
            "production": {"portgroup": "Production"},
            "heartbeat": {"portgroup": "Heartbeat"},
        },
    },
}


def cab_cluster(**spec_changes: object) -> FailoverCluster:
    doc = {**CAB_YAML, "spec": {**CAB_YAML["spec"], **spec_changes}}
    return with_defaults(FailoverCluster.model_validate(doc))


def lun(name: str, reserved: bool = False) -> ObservedLun:
    return ObservedLun(
        canonical_name=name,
        uuid="0200" + name[-8:],
        device_path=f"/vmfs/devices/disks/{name}",
        perennially_reserved=reserved,
        transport="fc",
    )


def host(name: str, *, luns: list[str], options: dict | None = None, version: str = "8.0.2") -> ObservedHost:
    return ObservedHost(
        name=name,
        moref=f"host-{name[:6]}",
        version=version,
        cluster="Cluster-A",
        luns={n: lun(n) for n in luns},
        hbas=[
            ObservedHba(
                device="vmhba1",
                model="ISP2532-based 8Gb Fibre Channel to PCI Express HBA",
                driver="qlnativefc",
                kind="fc",
            )
        ],
        datastores=["SAN-VMFS-01", f"{name.split('.')[0]}-local"],
        networks=["Production", "Heartbeat"],
        options=options
        if options is not None
        else {"Disk.ResetOnFailure": 0, "Disk.UseLunReset": 1, "Disk.UseDeviceReset": 1},
        option_manager=f"optmgr-{name[:6]}",
        storage_system=f"storage-{name[:6]}",
    )


def fresh_vm(name: str, host_name: str, power: str = "poweredOn") -> ObservedVm:
    return ObservedVm(
        name=name,
        moref=f"vm-{name}",
        host=host_name,
        cluster="Cluster-A",
        power_state=power,
        change_version="2026-01-01T00:00:00.000000Z",
        hardware_version="vmx-13",
        guest_id="windows9Server64Guest",  # Windows Server 2016, as the files say
        tools_running=power == "poweredOn",
        controllers={0: ObservedController(key=1000, bus=0, type="lsilogic-sas", sharing="none", pci_slot=160)},
        disks={
            "0:0": ObservedDisk(key=2000, bus=0, unit=0, kind="vmdk", file=f"[local] {name}/{name}.vmdk", size_gb=40)
        },
        nics=[ObservedNic(key=4000, adapter="vmxnet3", network="Production", pci_slot=192)],
    )


def cab_world(**vm_changes: object) -> Observed:
    hosts = {
        h: host(h, luns=[LUN_DS, LUN1, LUN2]) for h in ("esx-a1.lab.local", "esx-a2.lab.local", "esx-a3.lab.local")
    }
    vms = {
        "SQLNODE1": fresh_vm("SQLNODE1", "esx-a1.lab.local"),
        "SQLNODE2": fresh_vm("SQLNODE2", "esx-a2.lab.local"),
    }
    return Observed(
        datacenter="DC1",
        vms=vms,
        hosts=hosts,
        datastores={
            "SAN-VMFS-01": ObservedDatastore(
                name="SAN-VMFS-01", moref="datastore-1", type="VMFS", extents=[LUN_DS], hosts=sorted(hosts)
            ),
            "esx-a1-local": ObservedDatastore(
                name="esx-a1-local", moref="datastore-2", type="VMFS", hosts=["esx-a1.lab.local"]
            ),
        },
        networks=["Heartbeat", "Production"],
        network_refs={"Production": "vim.Network:network-1", "Heartbeat": "vim.Network:network-2"},
        clusters={
            "Cluster-A": ObservedCluster(
                name="Cluster-A", moref="domain-c1", drs_enabled=True, ha_enabled=True, hosts=sorted(hosts)
            )
        },
    )


def as_applied(cluster: FailoverCluster, world: Observed, plan: Plan) -> Observed:
    """The world after `plan` ran, built by hand from the plan's `after` values."""
    vms = dict(world.vms)
    hosts = dict(world.hosts)
    vc = world.clusters["Cluster-A"]
    drs, ha, rules = dict(vc.drs_overrides), dict(vc.ha_overrides), dict(vc.rules)
    vm_host_rules, das_options, drs_options = dict(vc.vm_host_rules), dict(vc.das_options), dict(vc.drs_options)
    for a in plan.actions:
        after = a.after
        if a.kind in (ActionKind.ADD_CONTROLLER,):
            vm = vms[a.target]
            bus = int(a.address.name)
            ctrls = {
                **vm.controllers,
                bus: ObservedController(key=1001, bus=bus, type=after.type, sharing=after.sharing),
            }
            vms[a.target] = vm.model_copy(update={"controllers": ctrls})
        elif a.kind in (ActionKind.CREATE_DISK, ActionKind.ATTACH_DISK):
            vm = vms[a.target]
            disk = ObservedDisk(
                key=2001 + after.unit,
                bus=after.bus,
                unit=after.unit,
                kind=after.kind,
                file=after.file,
                lun=getattr(after, "lun", None),
                compatibility=getattr(after, "compatibility", None),
                size_gb=getattr(after, "size_gb", None),
            )
            vms[a.target] = vm.model_copy(update={"disks": {**vm.disks, f"{after.bus}:{after.unit}": disk}})
        elif a.kind is ActionKind.DETACH_DISK:
            vm = vms[a.target]
            slot = f"{a.before.bus}:{a.before.unit}"
            vms[a.target] = vm.model_copy(update={"disks": {k: d for k, d in vm.disks.items() if k != slot}})
        elif a.kind is ActionKind.REMOVE_NIC:
            vm = vms[a.target]
            gone = next(n for n in vm.nics if n.network == a.before.portgroup and n.adapter == a.before.adapter)
            vms[a.target] = vm.model_copy(update={"nics": [n for n in vm.nics if n is not gone]})
        elif a.kind is ActionKind.ADD_NIC:
            vm = vms[a.target]
            nic = ObservedNic(key=4001 + len(vm.nics), adapter=after.adapter, network=after.portgroup)
            vms[a.target] = vm.model_copy(update={"nics": [*vm.nics, nic]})
        elif a.kind is ActionKind.SET_HOST_OPTION:
            h = hosts[a.target]
            hosts[a.target] = h.model_copy(update={"options": {**h.options, a.address.name: after.value}})
        elif a.kind is ActionKind.RESERVE_LUN:
            h = hosts[a.target]
            name = a.address.name
            luns = {**h.luns, name: h.luns[name].model_copy(update={"perennially_reserved": True})}
            hosts[a.target] = h.model_copy(update={"luns": luns})
        elif a.kind is ActionKind.SET_DRS_OVERRIDE:
            drs[a.target] = after.behavior
        elif a.kind is ActionKind.SET_HA_OVERRIDE:
            ha[a.target] = after.restart
        elif a.kind in (ActionKind.CREATE_RULE, ActionKind.UPDATE_RULE):
            rules[a.target] = ObservedVmRule(name=a.target, key=1, kind=after.kind, vms=after.vms)
        elif a.kind is ActionKind.SET_VM_HOST_RULE:
            vm_host_rules[a.target] = ObservedVmHostRule(
                name=a.target,
                key=2,
                vm_group=after.vm_group,
                host_group=after.host_group,
                vms=after.vms,
                hosts=after.hosts,
                mandatory=after.mandatory,
            )
        elif a.kind is ActionKind.SET_CLUSTER_OPTION:
            drs_option = a.target.removeprefix("drs.")
            if drs_option != a.target:
                drs_options[drs_option] = after.value
            else:
                das_options[a.target] = after.value
    update = {"drs_overrides": drs, "ha_overrides": ha, "rules": rules, "vm_host_rules": vm_host_rules}
    update |= {"das_options": das_options, "drs_options": drs_options}
    clusters = {"Cluster-A": vc.model_copy(update=update)}
    return world.model_copy(update={"vms": vms, "hosts": hosts, "clusters": clusters})


CIB_YAML = {
    **CAB_YAML,
    "metadata": {"name": "cib-test-01"},
    "spec": {
        **CAB_YAML["spec"],
        "topology": "cluster-in-a-box",
        "guestOS": "windows2019",
        "nodes": [{"vm": "CIB-NODE1"}, {"vm": "CIB-NODE2"}],
        "sharedDisks": {
            "disks": [
                {"name": "quorum", "sizeGB": 1, "datastore": "esx-a1-local"},
                {"name": "data", "sizeGB": 2, "datastore": "esx-a1-local"},
            ]
        },
    },
}


def cib_cluster(**spec_changes: object) -> FailoverCluster:
    doc = {**CIB_YAML, "spec": {**CIB_YAML["spec"], **spec_changes}}
    return with_defaults(FailoverCluster.model_validate(doc))


def cib_world() -> Observed:
    world = cab_world()
    vms = {name: fresh_vm(name, "esx-a1.lab.local") for name in ("CIB-NODE1", "CIB-NODE2")}
    return world.model_copy(update={"vms": vms})


def with_vm(world: Observed, vm: ObservedVm) -> Observed:
    """The world with one more VM (a node's replacement, or a VM outside the cluster)."""
    return world.model_copy(update={"vms": {**world.vms, vm.name: vm}})


def with_disk(world: Observed, vm: str, disk: ObservedDisk, sharing: str | None = None) -> Observed:
    """`vm` with one more disk; `sharing`: a controller on the disk's bus first, with that sharing."""
    node = world.vms[vm]
    controllers = dict(node.controllers)
    if sharing is not None:
        controllers[disk.bus] = ObservedController(
            key=1000 + disk.bus, bus=disk.bus, type="lsilogic-sas", sharing=sharing
        )
    disks = {**node.disks, f"{disk.bus}:{disk.unit}": disk}
    return with_vm(world, node.model_copy(update={"controllers": controllers, "disks": disks}))


def state_after(cluster: FailoverCluster, world: Observed, plan: Plan, state: State | None = None) -> State:
    """The state apply writes for `plan`: each action done, on the VM of its target."""
    state = state or State.new(cluster.name, "0" * 64, now=NOW)
    for a in plan.actions:
        vm = world.vms.get(a.target)
        after = a.after
        record: dict[str, object] = {"vm_moref": vm.moref if vm is not None else None}
        if a.kind in (ActionKind.CREATE_DISK, ActionKind.ATTACH_DISK):
            record |= {"device_key": 2001 + after.unit, "file": after.file}
        elif a.kind is ActionKind.ADD_NIC:
            record |= {"device_key": 4001 + len(vm.nics) if vm is not None else None}
        state = record_outcome(state, done(a, **record), NOW)
    return state
