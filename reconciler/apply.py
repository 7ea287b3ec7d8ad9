"""The apply loop: run a plan's steps in order, record each outcome, stop at the first failure.

A step is one action, or the consecutive actions of one batch (one vCenter call). The
executor re-reads and skips what is already satisfied, so a re-run after a failure
converges. Recording happens after every step, so the state never lags more than one
vCenter call behind vCenter.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Literal, Protocol

from reconciler.errors import MscsError
from reconciler.outcome import Outcome, OutcomeStatus
from reconciler.plan import Action, Plan

StepPhase = Literal["start", "end"]


class Executor(Protocol):
    """Carries out one step (one vCenter call) and says what became of each of its actions."""

    def execute(self, step: list[Action]) -> list[Outcome]: ...


class ApplyFailed(MscsError):
    """A step failed: carries vCenter's message, the actions done and those left."""

    def __init__(self, cause: str, done: list[str], left: list[str]) -> None:
        self.cause, self.done, self.left = cause, done, left
        lines = [cause, f"done before the failure: {len(done)} action(s)"]
        lines += [f"  {a}" for a in done]
        lines.append(f"not done: {len(left)} action(s) (run apply again: it picks up where this stopped)")
        lines += [f"  {a}" for a in left]
        super().__init__("\n".join(lines))


@dataclass
class ApplyReport:
    """The outcomes of one plan's apply: what changed, and what was already satisfied."""

    done: list[Outcome] = field(default_factory=list)
    skipped: list[Outcome] = field(default_factory=list)


def steps(actions: list[Action]) -> Iterator[list[Action]]:
    """Group consecutive actions that share a batch: each group is one call to vCenter."""
    group: list[Action] = []
    for action in actions:
        if group and (action.batch is None or action.batch != group[-1].batch):
            yield group
            group = []
        group.append(action)
    if group:
        yield group


def apply_plan(
    plan: Plan,
    executor: Executor,
    record: Callable[[Outcome], None],
    progress: Callable[[list[Action], StepPhase], None] = lambda step, phase: None,
) -> ApplyReport:
    report = ApplyReport()
    finished: list[str] = []
    for step in steps(plan.actions):
        progress(step, "start")
        try:
            outcomes = executor.execute(step)
        except MscsError as exc:
            left = [a.id for a in plan.actions if a.id not in finished]
            raise ApplyFailed(str(exc), finished, left) from None
        for outcome in outcomes:
            record(outcome)
            (report.done if outcome.status is OutcomeStatus.DONE else report.skipped).append(outcome)
            finished.append(outcome.action.id)
        progress(step, "end")
    return report
