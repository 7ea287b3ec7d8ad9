"""Clustered-VMDK support enabled on a datastore (`HostDatastoreSystem.EnableClusteredVmdkSupport`,
vSphere API 7.0), through the datastore system of a host that mounts it and runs ESXi 7.0 or
later. The datastore's capability is read again right before: enabled already is satisfied.
vCenter refuses a datastore that does not qualify; its fault is the step's cause."""

from __future__ import annotations

from pyVmomi import vim

from providers.vcenter.handlers.base import ApplyContext, after
from reconciler.errors import MscsError
from reconciler.kinds.datastore import ClusteredVmdkSupportPayload
from reconciler.observed import ObservedHost
from reconciler.outcome import Outcome, done, skipped
from reconciler.plan import Action

CAPABILITY = "capability.clusteredVmdkSupported"


def enable(ctx: ApplyContext, action: Action) -> Outcome:
    want = after(action, ClusteredVmdkSupportPayload)
    name = action.address.name
    datastore = ctx.observed.datastores.get(name)
    if datastore is None:
        raise MscsError(f"{action.address}: datastore {name} is not known to this plan; plan again")
    ds = ctx.stub(vim.Datastore, datastore.moref)
    if bool(ctx.read(ds, [CAPABILITY]).get(CAPABILITY)) is want.clustered_vmdk_supported:
        return skipped(action, "clustered-VMDK support already enabled")
    host = _through(ctx, datastore.hosts)
    if host is None:
        raise MscsError(
            f"{action.address}: no host on ESXi 7.0 or later that mounts {name} is known to this plan; "
            "clustered-VMDK support is enabled through one"
        )
    system = ctx.stub(vim.host.DatastoreSystem, host.datastore_system)
    ctx.call(
        f"enable clustered-VMDK support on {name} through {host.name}",
        lambda: system.EnableClusteredVmdkSupport(datastore=ds),
    )
    if not ctx.read(ds, [CAPABILITY]).get(CAPABILITY):
        raise MscsError(
            f"{action.address}: vCenter accepted the change but {name} still shows no clustered-VMDK support"
        )
    return done(action, host_moref=host.moref)


def _through(ctx: ApplyContext, mounting: list[str]) -> ObservedHost | None:
    """The first mounting host (by name) that runs ESXi 7.0+ and whose datastore system was read."""
    for name in sorted(mounting):
        host = ctx.observed.hosts.get(name)
        version = host.version_tuple if host is not None else None
        if host is not None and host.datastore_system and version is not None and version >= (7, 0):
            return host
    return None
