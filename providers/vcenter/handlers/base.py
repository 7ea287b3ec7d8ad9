"""What every vCenter handler shares: the session and what the plan saw, one property read,
vCenter calls and tasks whose failure carries vCenter's own message, waiting for a value.

A handler re-reads its target with `read()` right before acting, so a change made since the
plan (or by a run that failed half-way) is seen, and what is already satisfied is skipped.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pyVim.task import WaitForTask
from pyVmomi import VmomiSupport, vim, vmodl
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential

from providers.vcenter.connection import Session
from providers.vcenter.observe import obj_spec, retrieve
from reconciler.errors import MscsError, VCenterTaskError
from reconciler.kinds import Payload
from reconciler.observed import Observed
from reconciler.plan import Action

TOOLS_TIMEOUT_S = 600.0
POLL_S = 0.2

T = TypeVar("T")


class TaskFault(VCenterTaskError):
    """A vCenter call or task failed. The message is vCenter's; `fault` is the fault itself, so
    that a handler tells one fault from another by its type, never by its wording."""

    def __init__(self, message: str, fault: Any) -> None:
        super().__init__(message)
        self.fault = fault


class _Busy(Exception):
    """vCenter answered TaskInProgress: another task holds the object; try again shortly."""


@dataclass
class ApplyContext:
    """What a handler works with: the session, what the plan observed, and the run's options."""

    session: Session
    observed: Observed
    allow_data_loss: bool = False
    tools_timeout_s: float = TOOLS_TIMEOUT_S
    guest_nodes: dict[str, Any] = field(default_factory=dict)
    env: dict[str, str] | None = None

    def stub(self, cls: type, moref: str) -> Any:
        return cls(moref, stub=self.session.si._stub)

    def vm(self, name: str) -> Any:
        node = self.observed.vms.get(name)
        if node is None:
            raise MscsError(f"VM {name!r} not found in vCenter")
        return self.stub(vim.VirtualMachine, node.moref)

    def network(self, name: str) -> Any:
        ref = self.observed.network_refs.get(name)
        if ref is None:
            raise MscsError(f"port group {name!r} not found in datacenter {self.observed.datacenter}")
        type_name, moref = ref.split(":", 1)
        return self.stub(VmomiSupport.GetVmodlType(type_name), moref)

    def network_names(self) -> dict[str, str]:
        """Network moref -> port group name, to name the network of each adapter."""
        return {ref.split(":", 1)[1]: name for name, ref in self.observed.network_refs.items()}

    def read(self, obj: Any, paths: list[str]) -> dict[str, Any]:
        """The properties `paths` of one object, now (the same read as observe's)."""
        props = self.session.call(
            lambda si: retrieve(si.RetrieveContent().propertyCollector, [obj_spec(obj)], {type(obj): paths})
        )
        return next(iter(props.values()), {})

    def call(self, what: str, fn: Callable[[], T]) -> T:
        """A vCenter method that is not a task; a fault ends the run with vCenter's message."""
        try:
            return self.session.call(lambda si: fn())
        except vmodl.MethodFault as exc:
            raise TaskFault(f"{what}: vCenter said: {fault_message(exc)}", exc) from None

    def run_task(self, what: str, start: Callable[[], Any]) -> Any:
        """Start a vCenter task and wait for it; TaskInProgress is tried again a few times."""

        @retry(
            retry=retry_if_exception_type(_Busy),
            stop=stop_after_attempt(5),
            wait=wait_exponential(multiplier=0.2, max=5),
            reraise=True,
        )
        def attempt() -> Any:
            try:
                task = self.session.call(lambda si: start())
                WaitForTask(task, si=self.session.si)
                return task
            except vim.fault.TaskInProgress as exc:
                raise _Busy(str(exc.msg)) from exc

        try:
            return attempt()
        except _Busy as exc:
            raise VCenterTaskError(f"{what}: vCenter kept answering TaskInProgress ({exc})") from None
        except vmodl.MethodFault as exc:
            raise TaskFault(f"{what}: vCenter said: {fault_message(exc)}", exc) from None

    def reconfigure(self, vm: Any, name: str, changes: list[Any], change_version: str) -> None:
        """One ReconfigVM_Task with the `config.changeVersion` just read: vCenter refuses it
        (ConcurrentAccess) when the VM changed in between, instead of acting on a stale view."""
        spec = vim.vm.ConfigSpec(deviceChange=changes, changeVersion=change_version or None)
        self.run_task(f"reconfigure {name}", lambda: vm.ReconfigVM_Task(spec=spec))

    def wait_for(self, obj: Any, path: str, value: str, timeout: float, action: Action) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if str(self.read(obj, [path]).get(path)) == value:
                return
            if time.monotonic() > deadline:
                raise VCenterTaskError(f"{action.address}: {path} did not become {value} within {timeout:.0f}s")
            time.sleep(POLL_S)


P = TypeVar("P", bound=Payload)


def after(action: Action, cls: type[P]) -> P:
    """The action's `after` payload, of the kind the handler expects."""
    return _payload(action, action.after, cls)


def before(action: Action, cls: type[P]) -> P:
    return _payload(action, action.before, cls)


def _payload(action: Action, payload: Payload | None, cls: type[P]) -> P:
    if not isinstance(payload, cls):
        raise MscsError(f"{action.address}: {action.kind} carries {type(payload).__name__}, not {cls.__name__}")
    return payload


def fault_message(exc: Any) -> str:
    """vCenter's own words for a fault: its message, else its localized messages, else its type."""
    msg = getattr(exc, "msg", None) or ""
    if not msg:
        msgs = [m.message for m in getattr(exc, "faultMessage", None) or [] if getattr(m, "message", None)]
        msg = "; ".join(msgs)
    name = type(exc).__name__.rsplit(".", 1)[-1]
    return f"{name}: {msg}" if msg else name


def faults_in(fault: Any) -> Iterator[Any]:
    """The fault and every fault nested in it: its `faultCause` chain, and faults carried as
    arguments of its `faultMessage` (vCenter wraps a device's file fault in InvalidDeviceSpec)."""
    seen: set[int] = set()
    todo = [fault]
    while todo:
        current = todo.pop()
        if not isinstance(current, vmodl.MethodFault) or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo.append(getattr(current, "faultCause", None))
        for message in getattr(current, "faultMessage", None) or []:
            todo += [arg.value for arg in getattr(message, "arg", None) or []]
