"""Which VMs of a vSphere cluster have names matching a glob: the nodes `mscsctl import` is pointed at.

Two reads after the datacenter's: the vSphere clusters' names and hosts (a container view), then
the names of the VMs registered on that cluster's hosts (`HostSystem.vm`). Names are unescaped
as `observe` reads them, so the glob matches the names a desired file uses.
"""

from __future__ import annotations

import fnmatch
from typing import Any

from pyVmomi import vim

from providers.vcenter.connection import Session
from providers.vcenter.observe import _find_datacenter, _view_spec, retrieve, vms_of_hosts
from reconciler.errors import MscsError


def vms_matching(session: Session, datacenter: str, vsphere_cluster: str, pattern: str) -> list[str]:
    """The names of the VMs of `vsphere_cluster` that match `pattern` (`fnmatch`, case-sensitive), sorted."""
    return session.call(lambda si: _vms_matching(si, datacenter, vsphere_cluster, pattern))


def _vms_matching(si: Any, datacenter: str, vsphere_cluster: str, pattern: str) -> list[str]:
    content = si.RetrieveContent()
    pc = content.propertyCollector
    dc = _find_datacenter(content, pc, datacenter)
    view = content.viewManager.CreateContainerView(dc, [vim.ClusterComputeResource], True)
    try:
        clusters = retrieve(pc, [_view_spec(view)], {vim.ClusterComputeResource: ["name", "host"]})
    finally:
        view.DestroyView()
    hosts = next((p.get("host") or [] for p in clusters.values() if p.get("name") == vsphere_cluster), None)
    if hosts is None:
        names = ", ".join(sorted(p.get("name", "?") for p in clusters.values())) or "none"
        raise MscsError(f"vSphere cluster {vsphere_cluster!r} not found in datacenter {datacenter!r} (it has: {names})")
    found = retrieve(pc, vms_of_hosts(hosts), {vim.VirtualMachine: ["name"]}) if hosts else {}
    matching = sorted({p["name"] for p in found.values() if fnmatch.fnmatchcase(p.get("name", ""), pattern)})
    if not matching:
        raise MscsError(f"no VM of vSphere cluster {vsphere_cluster} has a name matching {pattern!r}")
    return matching
