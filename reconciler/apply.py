"""The apply loop: run a plan's steps in order, record each outcome, stop at the first failure.

A step is one action, the consecutive actions of one batch (one vCenter call), or the
consecutive host-level actions (one call per host and kind, the hosts at once). The
executor re-reads and skips what is already satisfied, so a re-run after a failure
converges. Recording happens after every step, so the state never lags more than one
vCenter call behind vCenter.

A node that this apply powered off for a change that then failed is powered on again
before the apply stops, with its previous configuration (vCenter did not carry out the
failed change), and Tools are waited for where they ran before, so that a failed change
does not leave the clustered service a node short. An interruption (`stop`: SIGINT, SIGTERM,
a cancelled pipeline job) lets the step in flight end, starts no further change, and powers
such a node on again the same way: a cancelled run never leaves a production node down. Only
a second signal leaves at once (the message says a node may be left off).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Literal, Protocol

from reconciler.diff import Op
from reconciler.errors import MscsError
from reconciler.kinds import ActionKind
from reconciler.kinds.power import PowerPayload
from reconciler.outcome import Outcome, OutcomeStatus
from reconciler.plan import Action, Plan, Reason

StepPhase = Literal["start", "end"]


class Executor(Protocol):
    """Carries out one step (one vCenter call) and says what became of each of its actions."""

    def execute(self, step: list[Action]) -> list[Outcome]: ...


class ApplyFailed(MscsError):
    """A step failed: carries vCenter's message, what apply did about it, the actions done and those left."""

    stopped_by = "the failure"

    def __init__(self, cause: str, done: list[str], left: list[str], notes: list[str] | None = None) -> None:
        self.cause, self.done, self.left, self.notes = cause, done, left, list(notes or [])
        lines = [cause, *self.notes, f"done before {self.stopped_by}: {len(done)} action(s)"]
        lines += [f"  {a}" for a in done]
        lines.append(f"not done: {len(left)} action(s) (run apply again: it picks up where this stopped)")
        lines += [f"  {a}" for a in left]
        super().__init__("\n".join(lines))


class ApplyInterrupted(ApplyFailed):
    """Asked to stop (SIGINT, SIGTERM): the step in flight ended, no new one was started."""

    stopped_by = "the interruption"

    def __init__(self, done: list[str], left: list[str], notes: list[str] | None = None) -> None:
        super().__init__(f"interrupted: {len(done)} done, {len(left)} left", done, left, notes)


class Interruption:
    """A request to stop an apply: the vCenter call in flight ends, no new step starts.

    `reconciler.run.stop_on_signals` turns SIGINT and SIGTERM into requests; a program may
    call `request()` itself. Before anything is applied (planning, the approval) there is
    nothing to let end, so a signal stops the run at once.
    """

    def __init__(self) -> None:
        self._requested = threading.Event()
        self._abandoned = threading.Event()
        self.applying = False

    def request(self) -> None:
        self._requested.set()

    @property
    def requested(self) -> bool:
        return self._requested.is_set()

    def abandon(self) -> None:
        """The run is leaving at once: lanes still running write and announce nothing more."""
        self._requested.set()
        self._abandoned.set()

    @property
    def abandoned(self) -> bool:
        return self._abandoned.is_set()


@dataclass
class ApplyReport:
    """The outcomes of one plan's apply: what changed, and what was already satisfied."""

    done: list[Outcome] = field(default_factory=list)
    skipped: list[Outcome] = field(default_factory=list)


#: host-level kinds: the consecutive actions of these kinds, on any hosts, are one step (the
#: hosts are independent of each other, and each host's share is one call per kind)
HOST_LEVEL = frozenset(
    {ActionKind.SET_HOST_OPTION, ActionKind.RESERVE_LUN, ActionKind.RELEASE_LUN, ActionKind.RESTORE_HOST_OPTION}
)


def steps(actions: list[Action]) -> Iterator[list[Action]]:
    """Group consecutive actions that share a batch, and consecutive host-level actions: each
    group is one step (one call to vCenter, or, for host-level actions, one per host and kind)."""
    group: list[Action] = []
    for action in actions:
        if group and not _together(group[-1], action):
            yield group
            group = []
        group.append(action)
    if group:
        yield group


def _together(last: Action, action: Action) -> bool:
    if last.kind in HOST_LEVEL and action.kind in HOST_LEVEL:
        return True
    return action.batch is not None and action.batch == last.batch


class StepPartlyDone(MscsError):
    """A step of several independent calls of which some failed: `outcomes` are those of the
    actions done or already satisfied (recorded before the step fails), `cause` the failure."""

    def __init__(self, outcomes: list[Outcome], cause: BaseException) -> None:
        super().__init__(str(cause))
        self.outcomes, self.cause = outcomes, cause


def apply_plan(
    plan: Plan,
    executor: Executor,
    record: Callable[[Outcome], None],
    progress: Callable[[list[Action], StepPhase], None] = lambda step, phase: None,
    stop: Callable[[], bool] | None = None,
) -> ApplyReport:
    """Carry out the plan's steps; `ApplyFailed` (or `ApplyInterrupted`) says where it stopped.

    Any exception of a step, an mscsctl error or not, ends the apply the same way: the
    exception's text is the cause, with the actions done and those left.
    """
    run = _Run(plan, executor, record)
    for step in steps(plan.actions):
        if stop is not None and stop():
            notes = run.restore_power("the interruption")
            raise ApplyInterrupted(run.finished, run.left(), notes)
        progress(step, "start")
        try:
            run.step(step)
        except Exception as exc:
            cause = str(exc) if isinstance(exc, MscsError) else internal_error(exc)
            notes = run.restore_power("the failure")
            raise ApplyFailed(cause, run.finished, run.left(), notes) from (None if isinstance(exc, MscsError) else exc)
        progress(step, "end")
    return run.report


def internal_error(exc: BaseException) -> str:
    """The cause line of an exception mscsctl did not expect: a bug, said as one."""
    return f"internal error: {type(exc).__name__}: {exc} (set MSCSCTL_DEBUG=1 for details)"


class _Run:
    """One plan's apply in progress: what is finished, and which nodes it has powered off."""

    def __init__(self, plan: Plan, executor: Executor, record: Callable[[Outcome], None]) -> None:
        self.plan, self.executor, self.record = plan, executor, record
        self.report = ApplyReport()
        self.finished: list[str] = []
        self.powered_off: dict[str, Action] = {}  # node -> the power-on that brings it back
        self.power_ons = {a.target: a for a in plan.actions if a.kind is ActionKind.POWER_ON}

    def left(self) -> list[str]:
        return [a.id for a in self.plan.actions if a.id not in self.finished]

    def step(self, step: list[Action]) -> None:
        try:
            outcomes = self.executor.execute(step)
        except StepPartlyDone as partly:
            for outcome in partly.outcomes:
                self._finish(outcome)
            raise partly.cause from None
        for outcome in outcomes:
            self._finish(outcome)

    def _finish(self, outcome: Outcome) -> None:
        self.record(outcome)
        (self.report.done if outcome.status is OutcomeStatus.DONE else self.report.skipped).append(outcome)
        self.finished.append(outcome.action.id)
        node = outcome.action.target
        if outcome.action.kind is ActionKind.POWER_OFF and outcome.done:
            self.powered_off[node] = self.power_ons.get(node) or _power_on(outcome.action)
        elif outcome.action.kind is ActionKind.POWER_ON:
            self.powered_off.pop(node, None)

    def restore_power(self, after: str) -> list[str]:
        """Power on again each node this apply powered off; one sentence a node."""
        notes = []
        for node, action in list(self.powered_off.items()):
            try:
                self.step([action])
            except Exception as exc:
                why = str(exc) if isinstance(exc, MscsError) else internal_error(exc)
                notes.append(
                    f"{node} could not be powered on again after {after} ({why}): it is still powered "
                    "off; power it on once the cause is fixed"
                )
            else:
                notes.append(f"{node} powered on again after {after}")
        return notes


def _power_on(power_off: Action) -> Action:
    """The power-on that undoes a power-off, for a plan that has none for that node."""
    return Action(
        id=f"{power_off.address}#{ActionKind.POWER_ON}",
        address=power_off.address,
        kind=ActionKind.POWER_ON,
        op=Op.UPDATE,
        target=power_off.target,
        before=PowerPayload(state="poweredOff"),
        after=PowerPayload(state="poweredOn", wait_for_tools=False),
        reason=Reason.RESTORE_POWER,
    )
