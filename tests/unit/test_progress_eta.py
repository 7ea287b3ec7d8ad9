"""Apply progress without a terminal: the ETA learned from the steps that ended, the lines a
long wait gives, the run's total said before the prompt. Step events are the run loop's own
(`StepStarted`), from the steps of a real plan of the hand-built world; the clock is a counter."""

from __future__ import annotations

import json
import re
import time

import pytest

from reconciler.apply import steps
from reconciler.cli import output
from reconciler.cli.progress import ApplyProgress, apply_totals, waiting_for
from reconciler.planner import build_plan
from reconciler.run import StepStarted
from tests.unit.plan_world import cab_cluster, cab_world


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def plan():
    return build_plan(cab_cluster(), cab_world())


@pytest.fixture(autouse=True)
def _plain_lines(monkeypatch):
    monkeypatch.delenv("MSCSCTL_LOG_LEVEL", raising=False)
    output.configure(no_color=True, quiet=False, log_format="text")
    yield
    output.configure(no_color=False, quiet=False, log_format="text")


def events(plan, n: int, phase: str) -> StepStarted:
    step = list(steps(plan.actions))[n - 1]
    return StepStarted(
        cluster=plan.cluster,
        number=0,
        total=len(plan.actions),
        target=step[0].target,
        kinds=tuple(sorted({str(a.kind) for a in step})),
        fleet=False,
        step=n,
        steps=len(list(steps(plan.actions))),
        phase=phase,  # type: ignore[arg-type]
        actions=tuple(step),
    )


def test_the_eta_is_learned_from_the_steps_that_ended(plan):
    clock = Clock()
    progress = ApplyProgress(clock=clock, still_every=3600)
    progress.expect([plan])
    cluster = progress.clusters[plan.cluster]
    kinds = cluster.kinds
    total = len(kinds)
    progress(events(plan, 1, "start"))
    assert progress.eta(cluster) is None  # nothing ended yet: nothing to learn from
    clock.now += 4.0
    progress(events(plan, 1, "end"))
    # Every step left is guessed at the one duration seen so far.
    assert progress.eta(cluster) == pytest.approx(4.0 * (total - 1))
    # Steps of kinds that come again (a node's power-off) take 4 s, the others 40 s.
    base = kinds[next(n for n in range(2, total + 1) if kinds[n - 1] in kinds[n:]) - 1]
    same = max(n for n in range(2, total + 1) if kinds[n - 1] == base)
    other = next(n for n in range(2, total + 1) if kinds[n - 1] not in (base, kinds[0]))
    for n in range(2, max(same, other) + 1):
        progress(events(plan, n, "start"))
        clock.now += 4.0 if kinds[n - 1] == base else 40.0
        progress(events(plan, n, "end"))
    # A step of kinds seen before is guessed as those took; the rest as the mean of all.
    learned = progress.durations
    assert learned.estimate(kinds[0]) == pytest.approx(4.0)
    assert learned.estimate(base) == pytest.approx(4.0)
    assert learned.estimate(kinds[other - 1]) == pytest.approx(40.0)
    assert learned.estimate(("never-seen",)) == pytest.approx(sum(learned.every) / len(learned.every))
    # A step in flight counts only its time still to come.
    n = max(same, other) + 1
    progress(events(plan, n, "start"))
    before = progress.eta(cluster)
    clock.now += 1.0
    assert progress.eta(cluster) == pytest.approx(before - min(1.0, learned.estimate(kinds[n - 1])))


def test_plain_lines_say_the_start_the_end_and_a_long_wait(plan, capsys):
    clock = Clock()
    with ApplyProgress(clock=clock, still_every=0.2) as progress:
        progress.expect([plan])
        n = next(i for i, s in enumerate(steps(plan.actions), 1) if str(s[0].kind) == "power-off")
        progress(events(plan, n, "start"))
        clock.now += 0.5
        time.sleep(1.3)  # the ticker looks every 0.2 s of the test's own time, and sees 0.5 s passed
        clock.now += 41.0
        progress(events(plan, n, "end"))
    err = capsys.readouterr().err.splitlines()
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"
    assert re.fullmatch(rf"{stamp} sql-prod-01: \[{n}/\d+\] SQLNODE1: power-off: waiting for guest shutdown", err[0])
    assert re.fullmatch(
        rf"{stamp} sql-prod-01: \[{n}/\d+\] SQLNODE1: power-off: still waiting for guest shutdown, 0.5s", err[1]
    )
    assert re.fullmatch(rf"{stamp} sql-prod-01: \[{n}/\d+\] SQLNODE1: power-off: done in 41.5s", err[-1]), err
    assert len(err) == 3, err


def test_json_lines_carry_the_fields(plan, capsys):
    output.configure(no_color=True, quiet=False, log_format="json")
    clock = Clock()
    with ApplyProgress(clock=clock, still_every=3600) as progress:
        progress.expect([plan])
        progress(events(plan, 1, "start"))
        clock.now += 2.5
        progress(events(plan, 1, "end"))
    start, end = (json.loads(line) for line in capsys.readouterr().err.splitlines())
    assert start["phase"] == "start" and start["step"] == 1 and start["waiting_for"].startswith("waiting for")
    assert end["phase"] == "end" and end["duration_s"] == 2.5 and end["cluster"] == "sql-prod-01"


def test_quiet_says_nothing(plan, capsys):
    output.configure(no_color=True, quiet=True, log_format="text")
    with ApplyProgress(still_every=0.1) as progress:
        progress.expect([plan])
        progress(events(plan, 1, "start"))
        progress(events(plan, 1, "end"))
    assert capsys.readouterr().err == ""


def test_what_each_step_waits_for(plan):
    said = {waiting_for(s) for s in steps(plan.actions)}
    assert said == {
        "waiting for guest shutdown",
        "waiting for VMware Tools",
        "waiting for the reconfigure task",
        "waiting for the vSphere cluster reconfigure task",
        "waiting for the host option updates and LUN reservations",
    }


def test_the_total_of_a_run(plan):
    other = build_plan(cab_cluster(), cab_world()).model_copy(update={"cluster": "sql-prod-02"})
    text = apply_totals([plan, other])
    assert text is not None and text.startswith(f"Total: 2 clusters, {2 * len(plan.actions)} actions (")
    assert "4 power-off" in text and "4 nodes power off, one at a time in each cluster: sql-prod-01/SQLNODE1" in text
    assert apply_totals([plan.model_copy(update={"actions": []})]) is None
