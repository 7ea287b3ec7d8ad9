"""Carrying out plan actions in vCenter: each step of a plan to the handler of its kind.

A step is one action, or the consecutive actions of one batch: the controller and disks of a
node (one ReconfigVM_Task), its NICs (a second one), the placement actions of a vSphere
cluster (one ReconfigureComputeResource_Task), the host-level actions (one call per host and
kind, every host at once: `host_batch`). Handlers re-read their target and leave out
what is already satisfied, so running apply again after any failure converges instead of
adding a second device.

When the connection drops during a call that changes vCenter, nobody knows whether vCenter
ran it. The call is never sent again blindly: the step's handler runs once more in checking
mode (`ApplyContext.checking_after`), which reads the target again; what vCenter shows done
is an "already satisfied" outcome, anything still to do fails the step with the dropped
connection as its cause.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from providers.vcenter.connection import ConnectionLost, Session
from providers.vcenter.handlers import (
    controller,
    datastore,
    disk,
    guest_setting,
    host_batch,
    nic,
    nic_slot,
    placement,
    power,
)
from providers.vcenter.handlers.base import TOOLS_TIMEOUT_S, ApplyContext, NotApplied, fault_message
from providers.vcenter.handlers.reconfigure import DeviceHandler, reconfigure_vm
from reconciler.apply import StepPartlyDone
from reconciler.errors import MscsError, VCenterConnectionError
from reconciler.kinds import ActionKind
from reconciler.observed import Observed
from reconciler.outcome import Outcome
from reconciler.plan import Action

__all__ = ["STEP_HANDLERS", "VCenterExecutor", "fault_message"]

StepHandler = Callable[[ApplyContext, list[Action]], list[Outcome]]

# The device kinds of a node's batches, each contributing its specs to one reconfigure.
DEVICE_HANDLERS: dict[ActionKind, DeviceHandler] = {
    ActionKind.ADD_CONTROLLER: controller.change,
    ActionKind.EDIT_CONTROLLER: controller.change,
    ActionKind.REMOVE_CONTROLLER: controller.remove,
    ActionKind.DETACH_DISK: disk.detach,
    ActionKind.CREATE_DISK: disk.attach,
    ActionKind.ATTACH_DISK: disk.attach,
    ActionKind.REMOVE_NIC: nic.remove,
    ActionKind.ADD_NIC: nic.add_or_edit,
    ActionKind.EDIT_NIC: nic.add_or_edit,
}


def _each(handler: Callable[[ApplyContext, Action], Outcome]) -> StepHandler:
    """A kind whose actions are carried out one by one."""
    return lambda ctx, step: [handler(ctx, action) for action in step]


def _vm_devices(ctx: ApplyContext, step: list[Action]) -> list[Outcome]:
    return disk.attach_when_file_exists(step, partial(reconfigure_vm, ctx, handlers=DEVICE_HANDLERS))


STEP_HANDLERS: dict[ActionKind, StepHandler] = {
    **dict.fromkeys(host_batch.HOST_ACTIONS, host_batch.apply_hosts),
    ActionKind.ENABLE_CLUSTERED_VMDK: _each(datastore.enable),
    **dict.fromkeys(placement.BATCH_ACTIONS, placement.reconfigure_cluster),
    ActionKind.POWER_OFF: _each(power.power_off),
    ActionKind.POWER_ON: _each(power.power_on),
    **dict.fromkeys(DEVICE_HANDLERS, _vm_devices),
    ActionKind.SET_GUEST_SETTING: _each(guest_setting.set_disk_timeout),
    ActionKind.RECORD_NIC_SLOT: _each(nic_slot.record_slot),
}
assert set(STEP_HANDLERS) == set(ActionKind), "every action kind has a vCenter handler"


class VCenterExecutor:
    """Runs the steps of a plan against one vCenter session (see reconciler.apply)."""

    def __init__(
        self,
        session: Session,
        observed: Observed,
        *,
        allow_data_loss: bool = False,
        tools_timeout_s: float = TOOLS_TIMEOUT_S,
        guest_nodes: dict[str, Any] | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.context = ApplyContext(
            session,
            observed,
            allow_data_loss=allow_data_loss,
            tools_timeout_s=tools_timeout_s,
            guest_nodes=guest_nodes or {},
            env=env,
        )

    def execute(self, step: list[Action]) -> list[Outcome]:
        first = step[0]
        handler = STEP_HANDLERS.get(first.kind)
        if handler is None:
            raise MscsError(f"{first.address}: no vCenter action for {first.kind}")
        try:
            return handler(self.context, step)
        except ConnectionLost as lost:
            try:
                with self.context.checking_after(lost):
                    return handler(self.context, step)
            except (NotApplied, StepPartlyDone):
                raise
            except MscsError as exc:
                raise VCenterConnectionError(
                    f"{lost}; reading it again failed too ({exc}): whether vCenter did it is not known. "
                    "Run plan once vCenter answers"
                ) from None
