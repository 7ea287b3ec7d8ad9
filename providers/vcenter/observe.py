"""The one read: what the plans need, through the PropertyCollector, by precise property paths.

Proportional to the clusters in play, not to the datacenter; round trips are constant however
many clusters, VMs and hosts are asked for:
  1. find the datacenter (the root folder's tree, datacenter names only);
  2. one retrieve of the datacenter's names and references (its folders' tree), but no VM's;
  2b. the node VMs: the names of the VMs on the hosts of the vSphere clusters that have a
     datastore the files name (every VM's name only when a node is not among them);
  3. one retrieve, from the node VMs, of their properties and, by traversal (the VM's resource
     pool, its owner, that owner's hosts, the datastores they mount), of the nodes' vSphere
     clusters, the hosts of those clusters and their datastores - not every host of the
     datacenter - and of the datastores the files name;
  4. one retrieve of just the advanced options the plans set (keyed paths,
     `setting["Disk.UseLunReset"]`), of the other VMs registered on the hosts that see the
     clusters' LUNs or mount a shared file's datastore (who else maps a LUN, holds a shared
     file, or was a node), and, on the datacenter's other hosts, of just the clusters' LUNs
     (keyed paths `config.storageDevice.scsiLun["key-…"]`: whether the host sees it, its
     perennial reservation);
  5. only when a host outside the nodes' vSphere clusters sees one of the clusters' LUNs: one
     retrieve of the VMs registered on such hosts.
No `vm.config` or `runtime` is fetched whole, no host's whole option list, and no pyvmomi
object is walked lazily.

vCenter returns entity names escaped (`SQL%2fNODE 1` for a VM named `SQL/NODE 1`): every
`name` is unescaped as it is read, so that the observed model is keyed by the names a
desired file uses.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from pyVmomi import vim, vmodl

from providers.vcenter.connection import Session
from providers.vcenter.devices import controllers_of, datastore_path, disks_of, nics_of, nvme_controllers_of
from providers.vcenter.names import unescape_name
from reconciler.errors import MscsError
from reconciler.observed import (
    Observed,
    ObservedCluster,
    ObservedDatastore,
    ObservedHba,
    ObservedHost,
    ObservedLun,
    ObservedVm,
    ObservedVmHostRule,
    ObservedVmRule,
)
from reconciler.spec import DEFAULT_HOST_OPTIONS

VM_PATHS = [
    "name",
    "config.hardware.device",
    "config.changeVersion",
    "config.version",
    "config.guestId",
    "runtime.powerState",
    "runtime.host",
    "guest.toolsRunningStatus",
]
#: read of the node VMs only: the settings a clustered node must not have, and the guest OS the
#: tools report
NODE_VM_PATHS = [
    *VM_PATHS,
    "snapshot",
    "config.cpuHotAddEnabled",
    "config.memoryHotAddEnabled",
    "runtime.faultToleranceState",
    "guest.guestFullName",
]
HOST_PATHS = [
    "name",
    "parent",
    "config.product.version",
    "config.storageDevice.scsiLun",
    "config.storageDevice.hostBusAdapter",
    "config.storageDevice.scsiTopology",
    "datastore",
    "network",
    "configManager.advancedOption",
    "configManager.storageSystem",
    "configManager.datastoreSystem",
    "vm",  # references only: the VMs registered on the host, some read in the next retrieve
]
CLUSTER_PATHS = ["name", "host", "configurationEx"]
DATASTORE_PATHS = ["name", "summary.type", "info", "host"]
#: read, in the second retrieve, of just the datastores the files name (clustered-VMDK support)
NAMED_DATASTORE_PATHS = ["capability.clusteredVmdkSupported"]
#: read, in the second retrieve, of the hosts outside the nodes' vSphere clusters that mount a
#: datastore the files name (a clustered VMDK's LUN must be presented to ESXi 7.0+ hosts only)
MOUNTING_HOST_PATHS = ["config.product.version"]
NETWORK_PATHS = ["name"]
#: the advanced options read when the caller names none: those the clustering procedure sets
DEFAULT_OPTION_KEYS = tuple(DEFAULT_HOST_OPTIONS)


def observe(
    session: Session,
    datacenter: str,
    vm_names: Iterable[str],
    option_keys: Iterable[str] = DEFAULT_OPTION_KEYS,
    *,
    luns: Iterable[str] | None = None,
    datastores: Iterable[str] = (),
) -> Observed:
    """Read the datacenter's view of the given VMs and everything around them.

    `option_keys`: the hosts' advanced options to read (each by its key, not the host's whole
    list). `luns`: the clusters' LUNs, whose users are looked for (see `hosts_around`); None:
    every SAN LUN the VMs' hosts see. `datastores`: the datastores the files name, read
    besides those the nodes' vSphere clusters mount.
    """
    wanted_vms = set(vm_names)
    keys = tuple(sorted(set(option_keys)))
    wanted_luns = None if luns is None else sorted(set(luns))
    named = set(datastores)
    return session.call(lambda si: _observe(session.content, datacenter, wanted_vms, keys, wanted_luns, named))


def _traversal(name: str, kind: type, path: str, *then: str) -> vmodl.query.PropertyCollector.TraversalSpec:
    return vmodl.query.PropertyCollector.TraversalSpec(
        name=name,
        type=kind,
        path=path,
        skip=False,
        selectSet=[vmodl.query.PropertyCollector.SelectionSpec(name=n) for n in then],
    )


def node_surroundings(vm: Any) -> vmodl.query.PropertyCollector.ObjectSpec:
    """From a node VM: the VM, its resource pool's owner (its vSphere cluster or standalone
    host), that owner's hosts and the datastores they mount. (Traversal paths are top-level
    properties: `runtime.host` cannot be one; a VM without a resource pool, a template, is
    no node.)"""
    traversals = [
        _traversal("vmPool", vim.VirtualMachine, "resourcePool", "poolOwner"),
        _traversal("poolOwner", vim.ResourcePool, "owner", "ownerHosts"),
        _traversal("ownerHosts", vim.ComputeResource, "host", "hostDatastores"),
        _traversal("hostDatastores", vim.HostSystem, "datastore"),
    ]
    return vmodl.query.PropertyCollector.ObjectSpec(obj=vm, skip=False, selectSet=traversals)


def _observe(
    content: Any,
    datacenter: str,
    wanted_vms: set[str],
    option_keys: tuple[str, ...],
    luns: list[str] | None,
    named_datastores: set[str],
) -> Observed:
    pc = content.propertyCollector
    dc = _find_datacenter(content, pc, datacenter)
    of = _index(pc, dc)
    clusters = of(vim.ClusterComputeResource)
    hosts = of(vim.HostSystem)
    datastores = of(vim.Datastore)
    networks = of(vim.Network)
    vms = find_vms(pc, dc, wanted_vms, of(vim.ComputeResource), datastores, named_datastores)

    # Detailed read of just what the plans need: the node VMs and, by traversal, their vSphere
    # clusters, every host of those clusters (reservations are per cluster) and the datastores
    # those hosts mount; the datastores the files name.
    specs = [node_surroundings(o) for o, _ in vms] + [
        obj_spec(o) for o, p in datastores if p.get("name") in named_datastores
    ]
    detail = (
        retrieve(
            pc,
            specs,
            {
                vim.VirtualMachine: NODE_VM_PATHS,
                vim.HostSystem: HOST_PATHS,
                vim.ClusterComputeResource: CLUSTER_PATHS,
                vim.Datastore: DATASTORE_PATHS,
            },
        )
        if specs
        else {}
    )
    # The node VMs (the traversal reaches no other VM) and the hosts read whole.
    asked = {obj._moId for obj in detail if isinstance(obj, vim.VirtualMachine)}
    read_hosts = {obj._moId for obj in detail if isinstance(obj, vim.HostSystem)}
    option_managers = [
        props["configManager.advancedOption"]
        for obj, props in detail.items()
        if isinstance(obj, vim.HostSystem) and props.get("configManager.advancedOption") is not None
    ]
    # One more retrieve: the options the plans set, the VMs registered on the hosts
    # `hosts_around` names (their `vm`, read above) that were not read already, the VMs of the
    # other hosts that mount a shared file's datastore, and the clusters' LUNs as the other
    # hosts of the datacenter see them (by the keys the nodes' hosts know them by).
    around_hosts, outside_mounts, wanted = hosts_around(detail, luns)
    around = {vm._moId: vm for host in around_hosts for vm in detail[host].get("vm") or []}
    lun_keys = sorted(
        {
            lun.key
            for obj, props in detail.items()
            if isinstance(obj, vim.HostSystem)
            for lun in props.get("config.storageDevice.scsiLun") or []
            if getattr(lun, "canonicalName", None) in wanted
        }
    )
    others = [o for o, _ in hosts if o._moId not in read_hosts]
    outside = [h for h in others if h._moId in outside_mounts]
    # A vCenter before 7.0 has no `capability.clusteredVmdkSupported`: asking for it would fail
    # the whole retrieve, so it is not asked there (the rules then see the capability unknown).
    named_ds = (
        [o for o in detail if isinstance(o, vim.Datastore) and detail[o].get("name") in named_datastores]
        if _api_at_least(content, (7, 0))
        else []
    )
    mounting_outside = {
        m.key._moId for o in named_ds for m in detail[o].get("host") or [] if m.key._moId not in read_hosts
    }
    host_specs = [h for h in others if lun_keys or h._moId in mounting_outside]
    extra_specs = (
        [obj_spec(o) for o in option_managers]
        + [obj_spec(vm) for moref, vm in sorted(around.items()) if moref not in asked]
        + vms_of_hosts(outside)
        + [obj_spec(h) for h in host_specs]
        + [obj_spec(o) for o in named_ds]
    )
    extra_paths: dict[type, list[str]] = {vim.VirtualMachine: VM_PATHS}
    if option_keys:
        extra_paths[vim.option.OptionManager] = [f'setting["{key}"]' for key in option_keys]
    if host_specs:
        extra_paths[vim.HostSystem] = [f'config.storageDevice.scsiLun["{key}"]' for key in lun_keys] + (
            MOUNTING_HOST_PATHS if mounting_outside else []
        )
    if named_ds:
        extra_paths[vim.Datastore] = NAMED_DATASTORE_PATHS
    extra = retrieve(pc, extra_specs, extra_paths) if extra_specs else {}
    outside_versions = {
        obj._moId: str(props["config.product.version"])
        for obj, props in extra.items()
        if isinstance(obj, vim.HostSystem) and props.get("config.product.version")
    }
    capabilities = {
        obj._moId: props.get("capability.clusteredVmdkSupported")
        for obj, props in extra.items()
        if isinstance(obj, vim.Datastore)
    }
    option_by_mgr = {
        mgr._moId: [v for v in props.values() if v is not None]
        for mgr, props in extra.items()
        if isinstance(mgr, vim.option.OptionManager)
    }
    seen_outside = {
        obj._moId: [v for k, v in props.items() if v is not None and k not in MOUNTING_HOST_PATHS]
        for obj, props in extra.items()
        if isinstance(obj, vim.HostSystem)
    }
    seen_outside = {moref: found for moref, found in seen_outside.items() if found}
    neighbours = {obj: props for obj, props in extra.items() if isinstance(obj, vim.VirtualMachine)}
    # Last, only when needed: the VMs of the other hosts that see one of the clusters' LUNs.
    late = [h for h in others if h._moId in seen_outside and h._moId not in outside_mounts]
    if late:
        more = retrieve(pc, vms_of_hosts(late), {vim.VirtualMachine: VM_PATHS})
        neighbours.update({o: p for o, p in more.items() if o._moId not in asked and o not in neighbours})
    for obj in [o for o in neighbours if o._moId in asked]:
        del neighbours[obj]

    host_names = {o._moId: p["name"] for o, p in hosts}
    host_parent = {o._moId: p.get("parent") for o, p in hosts}
    cluster_names = {o._moId: p["name"] for o, p in clusters}
    ds_names = {o._moId: p["name"] for o, p in datastores}
    net_names = {o._moId: p["name"] for o, p in networks}

    obs_hosts: dict[str, ObservedHost] = {}
    obs_vms: dict[str, ObservedVm] = {}
    obs_clusters: dict[str, ObservedCluster] = {}
    obs_datastores: dict[str, ObservedDatastore] = {}
    vm_name_by_moref = {o._moId: p["name"] for o, p in vms}
    lun_names: dict[str, dict[str, str]] = {}  # host moref -> ScsiLun uuid -> canonical name
    for obj, props in detail.items():
        if isinstance(obj, vim.HostSystem):
            mgr = props.get("configManager.advancedOption")
            settings = option_by_mgr.get(mgr._moId, []) if mgr is not None else []
            host = _host(obj, props, cluster_names, ds_names, net_names, settings)
            obs_hosts[host.name] = host
            lun_names[obj._moId] = {lun.uuid: lun.canonical_name for lun in host.luns.values()}
    for moref, found in sorted(seen_outside.items()):
        host = _outside_host(moref, host_names[moref], host_parent.get(moref), cluster_names, found)
        obs_hosts[host.name] = host
        lun_names[moref] = {lun.uuid: lun.canonical_name for lun in host.luns.values()}
    host_cluster = {h.moref: h.cluster for h in obs_hosts.values()}
    host_cluster.update(
        {
            moref: cluster_names.get(parent._moId) if parent is not None else None
            for moref, parent in host_parent.items()
            if moref not in host_cluster
        }
    )
    for obj, props in detail.items():
        if isinstance(obj, vim.VirtualMachine):
            vm = _vm(obj, props, host_names, host_cluster, net_names, lun_names)
            obs_vms[vm.name] = vm.model_copy(update=node_settings(props))
        elif isinstance(obj, vim.ClusterComputeResource):
            cl = observed_cluster(obj, props, vm_name_by_moref, host_names)
            obs_clusters[cl.name] = cl
        elif isinstance(obj, vim.Datastore):
            ds = _datastore(obj, props, host_names)
            if obj._moId in capabilities:
                versions = {h.name: h.version for h in obs_hosts.values() if h.version and h.name in ds.hosts}
                versions.update(
                    {host_names[m]: v for m, v in outside_versions.items() if host_names.get(m) in ds.hosts}
                )
                supported = capabilities[obj._moId]
                ds = ds.model_copy(
                    update={
                        "clustered_vmdk_supported": bool(supported) if supported is not None else None,
                        "host_versions": versions,
                    }
                )
            obs_datastores[ds.name] = ds
    for obj, props in sorted(neighbours.items(), key=lambda item: item[0]._moId):
        vm = _vm(obj, props, host_names, host_cluster, net_names, lun_names)
        # Keyed by name where the name is free; a second VM of the same name by "name (moref)".
        obs_vms[vm.name if vm.name not in obs_vms else f"{vm.name} ({vm.moref})"] = vm
    return Observed(
        datacenter=datacenter,
        vms=obs_vms,
        hosts=obs_hosts,
        datastores=obs_datastores,
        networks=sorted(set(net_names.values())),
        network_refs={p["name"]: f"{type(o).__name__}:{o._moId}" for o, p in networks},
        clusters=obs_clusters,
    )


def _outside_host(
    moref: str, name: str, parent: Any, cluster_names: dict[str, str], scsi_luns: list[Any]
) -> ObservedHost:
    """A host outside the nodes' vSphere clusters that sees some of the clusters' LUNs: just
    those LUNs (their transport is not read there)."""
    luns = {lun.canonical_name: lun for lun in (observed_lun(s) for s in scsi_luns) if lun is not None}
    return ObservedHost(
        name=name,
        moref=moref,
        cluster=cluster_names.get(parent._moId) if parent is not None else None,
        luns=luns,
    )


def hosts_around(
    detail: dict[Any, dict[str, Any]], luns: Iterable[str] | None = None
) -> tuple[list[Any], set[str], set[str]]:
    """The hosts whose VMs may map a LUN of the asked VMs' clusters or hold one of their shared files.

    Returns (the read hosts of `detail` among them, the morefs of other hosts that mount a
    shared file's datastore, the LUNs looked for). Those that see one of `luns` (an RDM can
    only be mapped where its LUN is seen); `luns` None: the SAN LUNs the asked VMs' hosts see
    (not local disks, not VMFS extents), a superset of their clusters' LUNs. Also the asked
    VMs' own hosts, and the hosts that mount a datastore holding a disk on an asked VM's
    bus-sharing controller (a shared VMDK). The hosts outside `detail` that see a LUN are
    found by the caller (a keyed read of just those LUNs).
    """
    vm_props = [p for o, p in detail.items() if isinstance(o, vim.VirtualMachine)]
    host_props = {o._moId: (o, p) for o, p in detail.items() if isinstance(o, vim.HostSystem)}
    extents = {
        e.diskName
        for o, p in detail.items()
        if isinstance(o, vim.Datastore)
        for e in getattr(getattr(p.get("info"), "vmfs", None), "extent", None) or []
    }
    node_hosts = {p["runtime.host"]._moId for p in vm_props if p.get("runtime.host") is not None}

    def seen(props: dict[str, Any]) -> set[str]:
        return {
            lun.canonicalName
            for lun in props.get("config.storageDevice.scsiLun") or []
            if getattr(lun, "canonicalName", None) and not getattr(lun, "localDisk", False)
        }

    if luns is None:
        wanted = {n for h in node_hosts if h in host_props for n in seen(host_props[h][1])} - extents
    else:
        wanted = set(luns)
    ds_by_name = {p.get("name"): (o._moId, p) for o, p in detail.items() if isinstance(o, vim.Datastore)}
    shared_datastores = set()
    mounting: set[str] = set()
    for props in vm_props:
        devices = props.get("config.hardware.device") or []
        both = {**controllers_of(devices), **nvme_controllers_of(devices)}
        sharing = {k for k, c in both.items() if c.sharing != "none"}
        for d in devices:
            if isinstance(d, vim.vm.device.VirtualDisk) and d.controllerKey in sharing:
                name = datastore_path(getattr(d.backing, "fileName", "") or "")[1:].partition("]")[0]
                if name in ds_by_name:
                    moref, ds_props = ds_by_name[name]
                    shared_datastores.add(moref)
                    mounting.update(m.key._moId for m in ds_props.get("host") or [])
    out = []
    for moref, (obj, props) in sorted(host_props.items()):
        mounted = {d._moId for d in props.get("datastore") or []}
        if moref in node_hosts or seen(props) & wanted or mounted & shared_datastores:
            out.append(obj)
    return out, mounting - set(host_props), wanted


def vms_of_hosts(hosts: Iterable[Any]) -> list[vmodl.query.PropertyCollector.ObjectSpec]:
    """Object specs that reach every VM registered on each host (its `vm` property), not the host."""
    traverse = vmodl.query.PropertyCollector.TraversalSpec(name="vms", path="vm", skip=False, type=vim.HostSystem)
    return [vmodl.query.PropertyCollector.ObjectSpec(obj=h, skip=True, selectSet=[traverse]) for h in hosts]


def _index(pc: Any, dc: Any) -> Callable[[type], list[tuple[Any, dict[str, Any]]]]:
    """One retrieve of the datacenter's names and references, by traversal of its folders
    (no container view to create and destroy), VMs left out (see `find_vms`); returns
    `of(kind)`: the (object, properties) pairs of a managed object type."""
    index = retrieve(
        pc,
        [datacenter_tree(dc)],
        {
            vim.HostSystem: ["name", "parent"],
            vim.ComputeResource: ["name", "datastore"],
            vim.ClusterComputeResource: ["name", "datastore"],
            vim.Datastore: ["name"],
            vim.Network: ["name"],
        },
    )
    by_type: dict[type, dict[str, Any]] = {}
    for obj, props in index.items():
        by_type.setdefault(type(obj), {})[obj._moId] = (obj, props)

    def of(kind: type) -> list[tuple[Any, dict[str, Any]]]:
        return [v for t, objs in by_type.items() if issubclass(t, kind) for v in objs.values()]

    return of


def find_vms(
    pc: Any,
    dc: Any,
    wanted: set[str],
    compute: list[tuple[Any, dict[str, Any]]],
    datastores: list[tuple[Any, dict[str, Any]]],
    named_datastores: set[str],
) -> list[tuple[Any, dict[str, Any]]]:
    """The VMs named `wanted`, without reading every VM's name: one retrieve of the names of
    the VMs on the hosts of the vSphere clusters (and standalone hosts) that have a datastore
    the files name (the nodes use those datastores: their hosts mount them). Only when a name
    is not found there (a node elsewhere, no datastore named): one more retrieve, of the names
    of every VM of the datacenter."""
    refs = {o._moId for o, p in datastores if p.get("name") in named_datastores}
    near = [o for o, p in compute if refs & {d._moId for d in p.get("datastore") or []}]
    found = retrieve(pc, [vms_of_compute(o) for o in near], {vim.VirtualMachine: ["name"]}) if near else {}
    if not wanted <= {p.get("name") for p in found.values()}:
        found = retrieve(pc, [datacenter_tree(dc)], {vim.VirtualMachine: ["name"]})
    return [(o, p) for o, p in found.items() if p.get("name") in wanted]


def vms_of_compute(compute: Any) -> vmodl.query.PropertyCollector.ObjectSpec:
    """The VMs registered on the hosts of a vSphere cluster or standalone host."""
    return vmodl.query.PropertyCollector.ObjectSpec(
        obj=compute,
        skip=True,
        selectSet=[
            _traversal("computeHosts", vim.ComputeResource, "host", "hostVms"),
            _traversal("hostVms", vim.HostSystem, "vm"),
        ],
    )


def datacenter_tree(dc: Any) -> vmodl.query.PropertyCollector.ObjectSpec:
    """From a datacenter: its four folders, their subfolders (datastore clusters are folders
    too), the VMs of vApps, and the hosts of each compute resource."""
    return vmodl.query.PropertyCollector.ObjectSpec(
        obj=dc,
        skip=True,
        selectSet=[
            *(_traversal(f"dc{path}", vim.Datacenter, path, "folder") for path in DATACENTER_FOLDERS),
            _traversal("folder", vim.Folder, "childEntity", "folder", "vapp", "hosts"),
            _traversal("vapp", vim.VirtualApp, "vm"),
            _traversal("hosts", vim.ComputeResource, "host"),
        ],
    )


DATACENTER_FOLDERS = ("vmFolder", "hostFolder", "datastoreFolder", "networkFolder")


def _find_datacenter(content: Any, pc: Any, name: str) -> Any:
    found = retrieve(
        pc,
        [
            vmodl.query.PropertyCollector.ObjectSpec(
                obj=content.rootFolder, skip=True, selectSet=[_traversal("root", vim.Folder, "childEntity", "root")]
            )
        ],
        {vim.Datacenter: ["name"]},
    )
    for obj, props in found.items():
        if props.get("name") == name:
            return obj
    names = sorted(p.get("name", "?") for p in found.values())
    raise MscsError(f"datacenter {name!r} not found in vCenter (it has: {', '.join(names) or 'none'})")


def _view_spec(view: Any) -> vmodl.query.PropertyCollector.ObjectSpec:
    traverse = vmodl.query.PropertyCollector.TraversalSpec(
        name="view", path="view", skip=False, type=vim.view.ContainerView
    )
    return vmodl.query.PropertyCollector.ObjectSpec(obj=view, skip=True, selectSet=[traverse])


def obj_spec(obj: Any) -> vmodl.query.PropertyCollector.ObjectSpec:
    return vmodl.query.PropertyCollector.ObjectSpec(obj=obj, skip=False)


def retrieve(pc: Any, object_specs: list[Any], paths: dict[type, list[str]]) -> dict[Any, dict[str, Any]]:
    """One RetrievePropertiesEx (plus continuations for large results); `name`s unescaped."""
    filter_spec = vmodl.query.PropertyCollector.FilterSpec(
        objectSet=object_specs,
        propSet=[vmodl.query.PropertyCollector.PropertySpec(type=t, pathSet=p, all=False) for t, p in paths.items()],
        reportMissingObjectsInResults=False,
    )
    out: dict[Any, dict[str, Any]] = {}
    result = pc.RetrievePropertiesEx([filter_spec], vmodl.query.PropertyCollector.RetrieveOptions())
    while result is not None:
        for obj in result.objects:
            props = out.setdefault(obj.obj, {})
            for prop in obj.propSet or []:
                props[prop.name] = _unescaped(prop.name, prop.val)
        if not result.token:
            break
        result = pc.ContinueRetrievePropertiesEx(result.token)
    return out


def _unescaped(path: str, value: Any) -> Any:
    return unescape_name(value) if path == "name" and isinstance(value, str) else value


def _host(
    obj: Any,
    props: dict[str, Any],
    cluster_names: dict[str, str],
    ds_names: dict[str, str],
    net_names: dict[str, str],
    settings: list[Any],
) -> ObservedHost:
    parent = props.get("parent")
    hbas = []
    hba_kind: dict[str, str] = {}
    for hba in props.get("config.storageDevice.hostBusAdapter") or []:
        kind = (
            "fc"
            if isinstance(hba, vim.host.FibreChannelHba)
            else ("iscsi" if isinstance(hba, vim.host.InternetScsiHba) else "other")
        )
        hba_kind[hba.key] = kind
        hbas.append(ObservedHba(device=hba.device, model=hba.model or "", driver=hba.driver or "", kind=kind))
    transport = _lun_transport(props.get("config.storageDevice.scsiTopology"), hba_kind)
    luns: dict[str, ObservedLun] = {}
    for scsi_lun in props.get("config.storageDevice.scsiLun") or []:
        lun = observed_lun(scsi_lun, transport)
        if lun is not None:
            luns[lun.canonical_name] = lun
    options: dict[str, int | str | None] = {}
    for opt in settings:
        options[opt.key] = option_value(opt.value)
    return ObservedHost(
        name=props["name"],
        moref=obj._moId,
        version=props.get("config.product.version") or "",
        cluster=cluster_names.get(parent._moId) if parent is not None else None,
        luns=luns,
        hbas=hbas,
        datastores=sorted(ds_names.get(d._moId, d._moId) for d in props.get("datastore") or []),
        networks=sorted(net_names.get(n._moId, n._moId) for n in props.get("network") or []),
        options=options,
        option_manager=_moref(props.get("configManager.advancedOption")),
        storage_system=_moref(props.get("configManager.storageSystem")),
        datastore_system=_moref(props.get("configManager.datastoreSystem")),
    )


def observed_lun(lun: Any, transport: dict[str, str] | None = None) -> ObservedLun | None:
    """A host's ScsiLun as observed (None for one without a canonical name); `transport`: the
    kind of adapter each ScsiLun key is reached through."""
    name = getattr(lun, "canonicalName", None)
    if not name:
        return None
    capacity = getattr(lun, "capacity", None)
    return ObservedLun(
        canonical_name=name,
        uuid=lun.uuid,
        capacity_bytes=(capacity.block * capacity.blockSize) if capacity else None,
        vendor=(lun.vendor or "").strip(),
        model=(lun.model or "").strip(),
        device_path=getattr(lun, "devicePath", "") or "",
        perennially_reserved=bool(getattr(lun, "perenniallyReserved", False)),
        transport=(transport or {}).get(lun.key, "unknown"),
    )


def _api_at_least(content: Any, version: tuple[int, int]) -> bool:
    """vCenter's API version (`about.apiVersion`, part of the service content already read) is at least `version`."""
    text = str(getattr(getattr(content, "about", None), "apiVersion", "") or "")
    parts = [int(p) for p in text.split(".")[:2] if p.isdigit()]
    return len(parts) == 2 and (parts[0], parts[1]) >= version


def _moref(obj: Any) -> str | None:
    return obj._moId if obj is not None else None


def option_value(value: Any) -> int | str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return int(value)
    text = str(value)
    return int(text) if text.lstrip("-").isdigit() else text


def _lun_transport(topology: Any, hba_kind: dict[str, str]) -> dict[str, str]:
    """ScsiLun key -> the kind of adapter it is reached through (fc, iscsi, other)."""
    out: dict[str, str] = {}
    for adapter in getattr(topology, "adapter", None) or []:
        kind = hba_kind.get(adapter.adapter, "other")
        for target in adapter.target or []:
            for lun in target.lun or []:
                out.setdefault(lun.scsiLun, kind)
    return out


def _vm(
    obj: Any,
    props: dict[str, Any],
    host_names: dict[str, str],
    host_cluster: dict[str, str | None],
    net_names: dict[str, str],
    lun_names: dict[str, dict[str, str]],
) -> ObservedVm:
    devices = props.get("config.hardware.device") or []
    host = props.get("runtime.host")
    controllers = controllers_of(devices)
    nvme = nvme_controllers_of(devices)
    luns_by_uuid = lun_names.get(host._moId, {}) if host is not None else {}
    return ObservedVm(
        name=props["name"],
        moref=obj._moId,
        host=host_names.get(host._moId, "") if host is not None else "",
        cluster=host_cluster.get(host._moId) if host is not None else None,
        power_state=str(props.get("runtime.powerState") or "poweredOff"),
        change_version=props.get("config.changeVersion") or "",
        hardware_version=props.get("config.version") or "",
        guest_id=props.get("config.guestId") or "",
        tools_running=props.get("guest.toolsRunningStatus") == "guestToolsRunning",
        controllers={c.bus: c for c in controllers.values()},
        nvme_controllers={c.bus: c for c in nvme.values()},
        disks={d.slot: d for d in disks_of(devices, {**controllers, **nvme}, luns_by_uuid)},
        nics=nics_of(devices, net_names),
    )


def node_settings(props: dict[str, Any]) -> dict[str, Any]:
    """A node VM's `NODE_VM_PATHS` beyond `VM_PATHS`, as `ObservedVm` fields."""
    info = props.get("snapshot")
    names: list[str] = []
    stack = list(reversed(getattr(info, "rootSnapshotList", None) or []))
    while stack:
        tree = stack.pop()
        names.append(str(tree.name))
        stack.extend(reversed(tree.childSnapshotList or []))
    return {
        "guest_full_name": props.get("guest.guestFullName") or "",
        "snapshots": names,
        "cpu_hot_add": bool(props.get("config.cpuHotAddEnabled")),
        "memory_hot_add": bool(props.get("config.memoryHotAddEnabled")),
        "fault_tolerance": str(props.get("runtime.faultToleranceState") or "notConfigured"),
    }


def observed_cluster(
    obj: Any, props: dict[str, Any], vm_names: dict[str, str], host_names: dict[str, str]
) -> ObservedCluster:
    """A vSphere cluster's `CLUSTER_PATHS` as observed: its overrides and rules by VM name
    (`vm_names`: moref -> name; a VM not in it is named by its moref)."""
    cfg = props.get("configurationEx")
    rules: dict[str, ObservedVmRule] = {}
    drs: dict[str, str] = {}
    ha: dict[str, str] = {}
    drs_enabled = ha_enabled = False
    default_behavior = "fullyAutomated"
    if cfg is not None:
        drs_enabled = bool(getattr(cfg.drsConfig, "enabled", False)) if cfg.drsConfig else False
        default_behavior = str(getattr(cfg.drsConfig, "defaultVmBehavior", None) or default_behavior)
        ha_enabled = bool(getattr(cfg.dasConfig, "enabled", False)) if cfg.dasConfig else False
        for rule in cfg.rule or []:
            kind = (
                "anti-affinity"
                if isinstance(rule, vim.cluster.AntiAffinityRuleSpec)
                else "affinity"
                if isinstance(rule, vim.cluster.AffinityRuleSpec)
                else None
            )
            if kind is None:
                continue
            rules[rule.name] = ObservedVmRule(
                name=rule.name,
                key=rule.key,
                kind=kind,
                vms=sorted(vm_names.get(v._moId, v._moId) for v in rule.vm or []),
                enabled=bool(rule.enabled),
                mandatory=bool(getattr(rule, "mandatory", False)),
            )
        for entry in cfg.drsVmConfig or []:
            name = vm_names.get(entry.key._moId)
            if name:
                drs[name] = "disabled" if entry.enabled is False else str(entry.behavior or "fullyAutomated")
        for entry in cfg.dasVmConfig or []:
            name = vm_names.get(entry.key._moId)
            settings = entry.dasSettings
            if name and settings is not None:
                ha[name] = "disabled" if settings.restartPriority == "disabled" else "enabled"
    return ObservedCluster(
        name=props["name"],
        moref=obj._moId,
        drs_enabled=drs_enabled,
        drs_default_behavior=default_behavior,
        ha_enabled=ha_enabled,
        rules=rules,
        drs_overrides=drs,
        ha_overrides=ha,
        hosts=sorted(host_names.get(h._moId, h._moId) for h in props.get("host") or []),
        **cluster_ha_drs(cfg, vm_names, host_names),
    )


def cluster_ha_drs(cfg: Any, vm_names: dict[str, str], host_names: dict[str, str]) -> dict[str, Any]:
    """A vSphere cluster's HA and DRS advanced options and its VM-Host rules (with their groups'
    members by name), as `ObservedCluster` fields."""
    if cfg is None:
        return {}

    def options(config: Any) -> dict[str, str]:
        return {str(o.key): str(o.value) for o in getattr(config, "option", None) or [] if o.key}

    groups = {g.name: g for g in cfg.group or []}

    def members(group_name: str, attr: str, names: dict[str, str]) -> list[str]:
        group = groups.get(group_name)
        return sorted(names.get(m._moId, m._moId) for m in getattr(group, attr, None) or [])

    vm_host_rules = {}
    for rule in cfg.rule or []:
        if not isinstance(rule, vim.cluster.VmHostRuleInfo):
            continue
        host_group = rule.affineHostGroupName or rule.antiAffineHostGroupName or ""
        vm_host_rules[rule.name] = ObservedVmHostRule(
            name=rule.name,
            key=rule.key,
            vm_group=rule.vmGroupName or "",
            host_group=host_group,
            vms=members(rule.vmGroupName or "", "vm", vm_names),
            hosts=members(host_group, "host", host_names),
            enabled=bool(rule.enabled),
            mandatory=bool(rule.mandatory),
            affine=bool(rule.affineHostGroupName),
        )
    return {
        "das_options": options(cfg.dasConfig),
        "drs_options": options(cfg.drsConfig),
        "vm_host_rules": vm_host_rules,
    }


def _datastore(obj: Any, props: dict[str, Any], host_names: dict[str, str]) -> ObservedDatastore:
    info = props.get("info")
    extents: list[str] = []
    vmfs = getattr(info, "vmfs", None)
    if vmfs is not None:
        extents = [e.diskName for e in vmfs.extent or []]
    major = getattr(vmfs, "majorVersion", None)
    return ObservedDatastore(
        name=props["name"],
        moref=obj._moId,
        type=str(props.get("summary.type") or ""),
        extents=extents,
        hosts=sorted(host_names.get(m.key._moId, m.key._moId) for m in props.get("host") or []),
        vmfs_major_version=int(major) if major else None,
        scsi_disk_type=getattr(vmfs, "scsiDiskType", None) or None,
    )
