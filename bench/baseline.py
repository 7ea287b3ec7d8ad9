"""The observation written the way common pyVmomi examples are: find each VM by name by walking
a container view (`get_obj`), then read what the plan needs attribute by attribute (each
attribute a lazy property fetch). The benchmark runs it in the same process as a yardstick."""

from __future__ import annotations

from typing import Any

from pyVmomi import vim


def get_obj(content: Any, vimtype: type, name: str) -> Any:
    """The usual helper: a container view of every object of the type, compared by name."""
    view = content.viewManager.CreateContainerView(content.rootFolder, [vimtype], True)
    try:
        for obj in view.view:
            if obj.name == name:
                return obj
        return None
    finally:
        view.Destroy()


def observe(si: Any, vm_names: list[str], datastores: list[str], portgroups: list[str]) -> dict[str, Any]:
    """What the plan needs about the node VMs, their hosts and vSphere clusters, the datastores
    and the port groups, read attribute by attribute."""
    content = si.RetrieveContent()
    out: dict[str, Any] = {"vms": {}, "hosts": {}, "clusters": {}, "datastores": {}, "networks": {}}
    for name in vm_names:
        vm = get_obj(content, vim.VirtualMachine, name)
        if vm is None:
            continue
        host = vm.runtime.host
        out["vms"][name] = {
            "devices": len(vm.config.hardware.device),
            "version": vm.config.version,
            "guest": vm.config.guestId,
            "power": vm.runtime.powerState,
            "tools": vm.guest.toolsRunningStatus,
            "host": host.name,
        }
        if host.name not in out["hosts"]:
            storage = host.config.storageDevice
            out["hosts"][host.name] = {
                "version": host.config.product.version,
                "luns": [lun.canonicalName for lun in storage.scsiLun],
                "hbas": [hba.device for hba in storage.hostBusAdapter],
                "options": {o.key: o.value for o in host.configManager.advancedOption.setting},
            }
            cluster = host.parent
            if cluster.name not in out["clusters"]:
                cfg = cluster.configurationEx
                out["clusters"][cluster.name] = {
                    "rules": len(cfg.rule),
                    "hosts": [h.name for h in cluster.host],
                }
    for name in datastores:
        ds = get_obj(content, vim.Datastore, name)
        if ds is not None:
            out["datastores"][name] = {"type": ds.summary.type, "hosts": [m.key.name for m in ds.host]}
    for name in portgroups:
        net = get_obj(content, vim.Network, name)
        out["networks"][name] = net is not None
    return out
