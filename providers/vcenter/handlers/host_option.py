"""A host advanced option (Disk.ResetOnFailure, Disk.UseLunReset, Disk.UseDeviceReset ...)."""

from __future__ import annotations

from typing import Any

from pyVmomi import VmomiSupport, vim

from providers.vcenter.handlers.base import ApplyContext, after
from providers.vcenter.observe import option_value
from reconciler.errors import MscsError
from reconciler.kinds.host import HostOptionPayload
from reconciler.outcome import Outcome, done, skipped
from reconciler.plan import Action


def set_option(ctx: ApplyContext, action: Action) -> Outcome:
    host = ctx.observed.hosts[action.target]
    if host.option_manager is None:
        raise MscsError(f"{action.address}: host {host.name} has no advanced-option manager")
    manager = ctx.stub(vim.option.OptionManager, host.option_manager)
    key = action.address.name
    want = after(action, HostOptionPayload)
    if HostOptionPayload(value=_current(ctx, manager, key)) == want:
        return skipped(action, "already set", host_moref=host.moref)
    wire = VmomiSupport.long(want.value) if isinstance(want.value, int) else want.value
    change = [vim.option.OptionValue(key=key, value=wire)]
    ctx.call(f"set {key} on {host.name}", lambda: manager.UpdateOptions(changedValue=change))
    return done(action, host_moref=host.moref)


def _current(ctx: ApplyContext, manager: Any, key: str) -> int | str | None:
    """The option's value now, converted as observe converts it (None: the host lacks it)."""
    try:
        values = ctx.session.call(lambda si: manager.QueryOptions(name=key))
    except vim.fault.InvalidName:
        return None
    return next((option_value(o.value) for o in values or [] if o.key == key), None)
