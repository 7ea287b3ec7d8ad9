"""A LUN marked perennially reserved on a host, so that the host does not wait on the SCSI
reservations the cluster holds on it at boot and at rescan (VMware KB 1016106); released
again (`release-lun`, the same call with `state=False`) when the cluster is destroyed."""

from __future__ import annotations

from pyVmomi import vim

from providers.vcenter.handlers.base import ApplyContext, after
from providers.vcenter.observe import observed_lun
from reconciler.errors import MscsError
from reconciler.kinds.host import LunReservationPayload
from reconciler.outcome import Outcome, done, skipped
from reconciler.plan import Action

LUN_PATH = "config.storageDevice.scsiLun"


def reserve(ctx: ApplyContext, action: Action) -> Outcome:
    host = ctx.observed.hosts[action.target]
    name = action.address.name
    lun = host.luns.get(name)
    if lun is None or host.storage_system is None:
        raise MscsError(f"{action.address}: host {host.name} does not see LUN {name}")
    want = after(action, LunReservationPayload)
    scsi_luns = ctx.read(ctx.stub(vim.HostSystem, host.moref), [LUN_PATH]).get(LUN_PATH) or []
    now = next((o for o in map(observed_lun, scsi_luns) if o is not None and o.canonical_name == name), None)
    if now is not None and LunReservationPayload(perennially_reserved=now.perennially_reserved) == want:
        detail = "already reserved" if want.perennially_reserved else "already released"
        return skipped(action, detail, host_moref=host.moref)
    storage = ctx.stub(vim.host.StorageSystem, host.storage_system)
    ctx.call(
        f"mark {name} {'' if want.perennially_reserved else 'not '}perennially reserved on {host.name}",
        lambda: storage.MarkPerenniallyReserved(lunUuid=lun.uuid, state=want.perennially_reserved),
    )
    return done(action, host_moref=host.moref)
