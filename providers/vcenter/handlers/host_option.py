"""A host advanced option (Disk.ResetOnFailure, Disk.UseLunReset, Disk.UseDeviceReset ...).

Set through `host_batch`: every option of a host that needs changing goes in one UpdateOptions.
"""

from __future__ import annotations

from typing import Any

from pyVmomi import VmomiSupport, vim

from providers.vcenter.handlers.base import after
from providers.vcenter.observe import option_value
from reconciler.kinds.host import HostOptionPayload
from reconciler.outcome import Outcome, skipped
from reconciler.plan import Action


def setting_path(key: str) -> str:
    """The keyed property path of one advanced option on its OptionManager (as observe reads it)."""
    return f'setting["{key}"]'


def change(action: Action, host_moref: str, settings: dict[str, Any]) -> Any:
    """The OptionValue to send for the action, or its outcome when the host already has it
    (`settings`: the option manager's keyed paths just read; absent: the host lacks it)."""
    key = action.address.name
    want = after(action, HostOptionPayload)
    current = settings.get(setting_path(key))
    now = option_value(current.value) if current is not None else None
    if HostOptionPayload(value=now) == want:
        return skipped(action, "already set", host_moref=host_moref)
    wire = VmomiSupport.long(want.value) if isinstance(want.value, int) else want.value
    return vim.option.OptionValue(key=key, value=wire)


def is_outcome(value: Any) -> bool:
    return isinstance(value, Outcome)
