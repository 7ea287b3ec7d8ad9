"""A LUN marked perennially reserved on a host, so that the host does not wait on the SCSI
reservations the cluster holds on it at boot and at rescan (VMware KB 1016106); released
again (`release-lun`, the same call with `state=False`) when the cluster is destroyed.

Set through `host_batch`: the LUNs of one host that need the same change go in one
MarkPerenniallyReservedEx_Task.
"""

from __future__ import annotations

from typing import Any

from providers.vcenter.handlers.base import after
from providers.vcenter.observe import observed_lun
from reconciler.errors import MscsError
from reconciler.kinds.host import LunReservationPayload
from reconciler.observed import ObservedHost
from reconciler.outcome import Outcome, skipped
from reconciler.plan import Action

LUN_PATH = "config.storageDevice.scsiLun"


def change(action: Action, host: ObservedHost, scsi_luns: list[Any]) -> tuple[str, bool] | Outcome:
    """(the LUN's uuid, the state to mark), or the action's outcome when the host, as just read
    (`scsi_luns`), already has it so."""
    name = action.address.name
    lun = host.luns.get(name)
    if lun is None or host.storage_system is None:
        raise MscsError(f"{action.address}: host {host.name} does not see LUN {name}")
    want = after(action, LunReservationPayload)
    now = next((o for o in map(observed_lun, scsi_luns) if o is not None and o.canonical_name == name), None)
    if now is not None and LunReservationPayload(perennially_reserved=now.perennially_reserved) == want:
        detail = "already reserved" if want.perennially_reserved else "already released"
        return skipped(action, detail, host_moref=host.moref)
    return lun.uuid, want.perennially_reserved
