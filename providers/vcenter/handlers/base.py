"""What every vCenter handler shares: the session and what the plan saw, one property read,
vCenter calls and tasks whose failure carries vCenter's own message, waiting for a value.

A handler re-reads its target with `read()` right before acting, so a change made since the
plan (or by a run that failed half-way) is seen, and what is already satisfied is skipped.
Reads go through `Session.read` (sent again when the connection drops); calls that change
vCenter through `Session.change` (never sent again blindly). When the connection drops
during such a call, the executor runs the step's handler once more in *checking* mode: it
reads the target again, and every call it would still have to make raises `NotApplied`
instead of being sent, so the step ends as "already satisfied" or as a failure that says so.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pyVmomi import VmomiSupport, vim, vmodl

from providers.vcenter.connection import CONNECTION_ERRORS, ConnectionLost, Session, fault_message
from providers.vcenter.observe import obj_spec, retrieve
from reconciler.errors import MscsError, VCenterTaskError
from reconciler.kinds import Payload
from reconciler.observed import Observed
from reconciler.plan import Action

TOOLS_TIMEOUT_S = 600.0
POLL_S = 0.2  # between reads of a task that holds an object (TaskInProgress)
BUSY_ATTEMPTS = 5  # a call vCenter answers with TaskInProgress is sent at most this many times
BUSY_WAIT_S = 30.0  # how long to wait for the task that holds the object, before sending again
SETTLE_TIMEOUT_S = 600.0  # after a dropped task call: how long to wait for the target's tasks to end
TASK_PATHS = ["info.state", "info.error"]

T = TypeVar("T")


class TaskFault(VCenterTaskError):
    """A vCenter call or task failed. The message is vCenter's; `fault` is the fault itself, so
    that a handler tells one fault from another by its type, never by its wording."""

    def __init__(self, message: str, fault: Any) -> None:
        super().__init__(message)
        self.fault = fault


class NotApplied(VCenterTaskError):
    """Read again after a dropped connection, vCenter shows that the call was not carried out."""

    def __init__(self, lost: ConnectionLost) -> None:
        super().__init__(f"{lost.what}: {lost.detail}; read again, vCenter shows it was not done")
        self.lost = lost


class _Busy(Exception):
    """vCenter answered TaskInProgress: another task holds the object; try again once it ends."""

    def __init__(self, fault: Any) -> None:
        super().__init__(str(getattr(fault, "msg", "") or ""))
        self.fault = fault


@dataclass
class ApplyContext:
    """What a handler works with: the session, what the plan observed, and the run's options."""

    session: Session
    observed: Observed
    allow_data_loss: bool = False
    tools_timeout_s: float = TOOLS_TIMEOUT_S
    guest_nodes: dict[str, Any] = field(default_factory=dict)
    env: dict[str, str] | None = None
    checking: ConnectionLost | None = None  # set while a step is read again after a dropped call

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
        return self.read_all({obj: paths}).get(obj._moId, {})

    def read_all(self, targets: dict[Any, list[str]]) -> dict[str, dict[str, Any]]:
        """Several objects' properties in one RetrievePropertiesEx, by moref (an object vCenter
        no longer knows is absent). Objects of one type are read with the union of their paths."""
        what = "read " + ", ".join(f"{', '.join(paths)} of {obj._moId}" for obj, paths in targets.items())
        try:
            props = self.session.read(
                lambda si: retrieve(self.session.content.propertyCollector, *_specs(targets)), what
            )
        except vmodl.MethodFault as exc:
            raise TaskFault(f"{what}: vCenter said: {fault_message(exc)}", exc) from None
        return {obj._moId: values for obj, values in props.items()}

    def query(self, what: str, fn: Callable[[], T]) -> T:
        """A vCenter method that changes nothing (QueryOptions): sent again like a read."""
        try:
            return self.session.read(lambda si: fn(), what)
        except vmodl.MethodFault as exc:
            raise TaskFault(f"{what}: vCenter said: {fault_message(exc)}", exc) from None

    def call(self, what: str, fn: Callable[[], T]) -> T:
        """A vCenter method that changes something and is not a task; a fault ends the run with
        vCenter's message. TaskInProgress (vCenter did not run it) is tried again a few times."""
        return self._busy_retry(what, lambda: self._change(what, fn))

    def run_task(
        self, what: str, start: Callable[[], Any], *, on: Any = None, then_read: dict[Any, list[str]] | None = None
    ) -> dict[str, dict[str, Any]]:
        """Start a vCenter task on `on` and wait for it; TaskInProgress is tried again a few times.

        Returns `then_read` (objects -> paths) as they are once the task has ended: read in the
        same request as the task's state when it has ended by then, else again after it.
        """

        def attempt() -> dict[str, dict[str, Any]]:
            task = self._change(what, start, on=on)
            ended, extra = self._wait_tasks([(what, task)], then_read or {})
            error = ended[task._moId]
            if isinstance(error, vim.fault.TaskInProgress):
                raise _Busy(error)
            if error is not None:
                raise TaskFault(f"{what}: vCenter said: {fault_message(error)}", error)
            return extra if extra or not then_read else self.read_all(then_read)

        return self._busy_retry(what, attempt)

    def run_tasks(self, starts: list[tuple[str, Callable[[], Any], Any]]) -> list[MscsError | None]:
        """Start independent tasks ((what, start, on) each), then wait for all of them at once:
        one read of their states and, while any still runs, one property-collector wait
        (WaitForUpdatesEx) on a filter over those still running. Returns each task's fault
        (None: it succeeded; a dropped start is its `ConnectionLost`); one answered
        TaskInProgress is run again alone (`run_task`)."""
        started: list[tuple[int, str, Any]] = []
        faults: list[MscsError | None] = [None] * len(starts)
        again: list[int] = []
        for i, (what, start, on) in enumerate(starts):
            try:
                started.append((i, what, self._change(what, start, on=on)))
            except _Busy:
                again.append(i)
            except (TaskFault, NotApplied, ConnectionLost) as fault:
                faults[i] = fault
        ended, _ = self._wait_tasks([(what, task) for _, what, task in started], {}) if started else ({}, {})
        for i, what, task in started:
            error = ended[task._moId]
            if isinstance(error, vim.fault.TaskInProgress):
                again.append(i)
            elif error is not None:
                faults[i] = TaskFault(f"{what}: vCenter said: {fault_message(error)}", error)
        for i in sorted(again):
            what, start, on = starts[i]
            try:
                self.run_task(what, start, on=on)
            except TaskFault as fault:
                faults[i] = fault
        return faults

    def reconfigure(
        self, vm: Any, name: str, changes: list[Any], change_version: str, then_read: list[str] | None = None
    ) -> dict[str, Any]:
        """One ReconfigVM_Task with the `config.changeVersion` just read: vCenter refuses it
        (ConcurrentAccess) when the VM changed in between, instead of acting on a stale view.
        Returns the VM's `then_read` paths as they are after it."""
        spec = vim.vm.ConfigSpec(deviceChange=changes, changeVersion=change_version or None)
        props = self.run_task(
            f"reconfigure {name}",
            lambda: vm.ReconfigVM_Task(spec=spec),
            on=vm,
            then_read={vm: then_read} if then_read else None,
        )
        return props.get(vm._moId, {})

    def wait_for(
        self, obj: Any, path: str, value: str, timeout: float, action: Action, now: dict[str, Any] | None = None
    ) -> None:
        """Until `path` of `obj` is `value`: `now` (what the caller just read) or one read, then,
        while it is not, a property-collector wait on that one property."""
        current = now if now is not None and path in now else self.read(obj, [path])
        if str(current.get(path)) == value:
            return
        reached = self.session.read(
            lambda si: watch(
                self.session.content.propertyCollector,
                {obj: [path]},
                lambda state: str(state.get(obj._moId, {}).get(path)) == value,
                timeout,
            ),
            f"wait for {path} of {obj._moId}",
        )
        if reached is None:
            raise VCenterTaskError(f"{action.address}: {path} did not become {value} within {timeout:.0f}s")

    @contextmanager
    def checking_after(self, lost: ConnectionLost) -> Iterator[None]:
        """Run a step again only to read: each call it would make raises `NotApplied` instead."""
        self.settle(lost)
        self.checking = lost
        try:
            yield
        finally:
            self.checking = None

    def settle(self, lost: ConnectionLost) -> None:
        """Wait for the tasks on the object of a dropped task call to end: vCenter may have
        started the task before the connection dropped, and reading during it would mislead."""
        obj = lost.on
        if obj is None:
            return
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        for task in self.read(obj, ["recentTask"]).get("recentTask") or []:
            while self._task_running(task):
                if time.monotonic() > deadline:
                    raise VCenterTaskError(
                        f"{lost.what}: {lost.detail}, and a task on {obj._moId} was still running "
                        f"{SETTLE_TIMEOUT_S:.0f}s later: run plan once it has ended"
                    )
                time.sleep(POLL_S)

    def _task_running(self, task: Any) -> bool:
        try:
            return str(self.read(task, ["info.state"]).get("info.state")) in ("queued", "running")
        except MscsError:
            return False  # vCenter no longer knows the task: it is not running

    def _change(self, what: str, fn: Callable[[], T], *, on: Any = None) -> T:
        if self.checking is not None:
            raise NotApplied(self.checking)
        try:
            return self.session.change(lambda si: fn(), what)
        except vim.fault.TaskInProgress as exc:
            raise _Busy(exc) from None
        except vmodl.MethodFault as exc:
            raise TaskFault(f"{what}: vCenter said: {fault_message(exc)}", exc) from None
        except ConnectionLost as lost:
            lost.on = on
            raise lost from None

    def _busy_retry(self, what: str, attempt: Callable[[], T]) -> T:
        for number in range(1, BUSY_ATTEMPTS + 1):
            try:
                return attempt()
            except _Busy as busy:
                if number == BUSY_ATTEMPTS:
                    raise TaskFault(
                        f"{what}: vCenter kept answering {fault_message(busy.fault)} "
                        f"({BUSY_ATTEMPTS} attempts): another task holds the object",
                        busy.fault,
                    ) from None
                self._wait_busy(busy.fault, number)
        raise AssertionError("unreachable")  # pragma: no cover

    def _wait_busy(self, fault: Any, attempt: int) -> None:
        """Wait for the task TaskInProgress names (if it names one), then a little more."""
        task = getattr(fault, "task", None)
        if isinstance(task, vim.Task):
            deadline = time.monotonic() + BUSY_WAIT_S
            while time.monotonic() < deadline and self._task_running(task):
                time.sleep(POLL_S)
        time.sleep(min(0.2 * 2 ** (attempt - 1), 5.0))

    def _wait_tasks(
        self, started: list[tuple[str, Any]], then_read: dict[Any, list[str]]
    ) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
        """Each task's error once it has ended (None: it succeeded), by moref; and `then_read`
        when it was read after every task had ended (else {})."""
        tasks = {task._moId: (what, task) for what, task in started}
        now = self.read_all({**{task: TASK_PATHS for _, task in started}, **then_read})
        ended: dict[str, Any] = {}
        running = []
        for moref, (what, task) in tasks.items():
            info = now.get(moref)
            if not info:
                raise VCenterTaskError(f"{what}: vCenter no longer knows the task {moref}")
            if str(info.get("info.state")) in ("success", "error"):
                ended[moref] = _task_error(info, what)
            else:
                running.append(task)
        if not running:
            return ended, {obj._moId: now.get(obj._moId, {}) for obj in then_read}
        final = self.session.read(
            lambda si: watch(
                self.session.content.propertyCollector,
                {task: TASK_PATHS for task in running},
                lambda state: all(
                    str(state.get(t._moId, {}).get("info.state")) in ("success", "error") or state.get(t._moId) == {}
                    for t in running
                ),
                None,
            ),
            "wait for " + ", ".join(tasks[t._moId][0] for t in running),
        )
        for task in running:
            what = tasks[task._moId][0]
            info = (final or {}).get(task._moId)
            if not info:
                raise VCenterTaskError(f"{what}: vCenter no longer knows the task {task._moId}")
            ended[task._moId] = _task_error(info, what)
        return ended, {}


WAIT_S = 30  # the longest a WaitForUpdatesEx is held open by vCenter before it answers "no change"


def _task_error(info: dict[str, Any], what: str) -> Any:
    if str(info.get("info.state")) == "success":
        return None
    error = info.get("info.error")
    return error if error is not None else vmodl.fault.SystemError(msg=f"{what}: the task failed")


def _specs(targets: dict[Any, list[str]]) -> tuple[list[Any], dict[type, list[str]]]:
    """Object specs and the paths by type (the union over objects of one type) of `targets`."""
    paths: dict[type, list[str]] = {}
    for obj, wanted in targets.items():
        have = paths.setdefault(type(obj), [])
        have += [p for p in wanted if p not in have]
    return [obj_spec(obj) for obj in targets], paths


def watch(
    pc: Any,
    targets: dict[Any, list[str]],
    finished: Callable[[dict[str, dict[str, Any]]], bool],
    timeout: float | None,
) -> dict[str, dict[str, Any]] | None:
    """Follow `targets`' properties with a property-collector filter and WaitForUpdatesEx until
    `finished(state)` (state: moref -> path -> value; {} for an object that left); None when
    `timeout` (seconds) passed first. The filter is destroyed at the end."""
    objects, paths = _specs(targets)
    spec = vmodl.query.PropertyCollector.FilterSpec(
        objectSet=objects,
        propSet=[vmodl.query.PropertyCollector.PropertySpec(type=t, pathSet=p, all=False) for t, p in paths.items()],
    )
    deadline = None if timeout is None else time.monotonic() + timeout
    state: dict[str, dict[str, Any]] = {}
    flt = pc.CreateFilter(spec, partialUpdates=False)
    try:
        version = ""
        while True:
            left = WAIT_S if deadline is None else max(1, min(WAIT_S, int(deadline - time.monotonic()) + 1))
            result = pc.WaitForUpdatesEx(version, vmodl.query.PropertyCollector.WaitOptions(maxWaitSeconds=left))
            if result is not None:
                version = result.version
                for update in (u for fs in result.filterSet or [] if fs.filter == flt for u in fs.objectSet or []):
                    if update.kind == "leave":
                        state[update.obj._moId] = {}
                        continue
                    props = state.setdefault(update.obj._moId, {})
                    for change in update.changeSet or []:
                        props[change.name] = None if change.op == "remove" else change.val
            if finished(state):
                return state
            if deadline is not None and time.monotonic() > deadline:
                return None
    finally:
        with suppress(vmodl.MethodFault, *CONNECTION_ERRORS):
            flt.Destroy()


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
