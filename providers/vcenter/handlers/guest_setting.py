"""The guest's disk timeout: read, set only when it differs, read back (providers/guest)."""

from __future__ import annotations

from providers.guest.service import set_disk_timeout as set_in_guest
from providers.guest.service import transport_for
from providers.vcenter.handlers.base import ApplyContext, after
from providers.vcenter.handlers.power import POWER_PATHS, TOOLS_RUNNING
from reconciler.errors import MscsError
from reconciler.kinds.guest import GuestSettingPayload
from reconciler.outcome import Outcome, done, skipped
from reconciler.plan import Action


def set_disk_timeout(ctx: ApplyContext, action: Action) -> Outcome:
    node = ctx.guest_nodes.get(action.target)
    if node is None:
        raise MscsError(f"{action.address}: node {action.target} is not in the desired file")
    seconds = int(after(action, GuestSettingPayload).seconds)
    vm = ctx.observed.vms.get(action.target)
    if vm is not None:  # what the plan saw is old: the node may have been powered on since
        now = ctx.read(ctx.vm(action.target), POWER_PATHS)
        vm = vm.model_copy(
            update={
                "power_state": str(now.get("runtime.powerState")),
                "tools_running": now.get("guest.toolsRunningStatus") == TOOLS_RUNNING,
            }
        )
    transport = transport_for(node, session=ctx.session, vm=vm, env=ctx.env)
    try:
        change = set_in_guest(transport, seconds)
    finally:
        transport.close()
    moref = vm.moref if vm is not None else None
    if not change.changed:
        return skipped(action, "already set", vm_moref=moref)
    return done(action, f"{change.before} -> {change.after}", vm_moref=moref)
