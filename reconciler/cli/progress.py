"""Apply progress: what each cluster is doing and waiting for, how long it took, what is left.

A real apply spends minutes waiting: for a guest to shut down, for VMware Tools after a
power-on, for a reconfigure task. Where stderr is a terminal (and neither --quiet nor
--log-format json), each cluster gets a bar (`rich.progress`): its steps done of all, the
step in flight and what it waits for ("SQLNODE1: waiting for guest shutdown"), how long
that step and the whole apply have taken, and an ETA learned from the steps that ended
before (the mean time of steps of the same kinds, else of every step so far).

Anywhere else (a pipe, a CI log) each step gives one line when it starts and one when it
ends, with a UTC timestamp and, at the end, its duration, and while it waits a line every
ten seconds ("still waiting for guest shutdown, 20.0s"), as Terraform's "Still creating...";
with --log-format json, one JSON object a line with the same fields. A step is one vCenter call, so the `[step/steps]`
counter goes up by one at a time. Clusters of a fleet apply side by side: every line is
written whole and starts with its cluster's name, as Terraform starts each line with the
resource address, so the lines of two clusters may alternate but never mix.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from rich.progress import BarColumn, Progress, ProgressColumn, Task, TaskID, TextColumn
from rich.text import Text

from reconciler.apply import steps
from reconciler.cli import output
from reconciler.kinds import ActionKind
from reconciler.kinds.power import PowerPayload
from reconciler.plan import Action, Plan
from reconciler.run import StepStarted

_DEVICE_KINDS = {
    ActionKind.ADD_CONTROLLER,
    ActionKind.EDIT_CONTROLLER,
    ActionKind.DETACH_DISK,
    ActionKind.CREATE_DISK,
    ActionKind.ATTACH_DISK,
    ActionKind.REMOVE_NIC,
    ActionKind.ADD_NIC,
    ActionKind.EDIT_NIC,
    ActionKind.REMOVE_CONTROLLER,
}
_VSPHERE_CLUSTER_KINDS = {
    ActionKind.SET_DRS_OVERRIDE,
    ActionKind.SET_HA_OVERRIDE,
    ActionKind.CREATE_RULE,
    ActionKind.UPDATE_RULE,
    ActionKind.DELETE_RULE,
    ActionKind.REMOVE_DRS_OVERRIDE,
    ActionKind.REMOVE_HA_OVERRIDE,
    ActionKind.DELETE_VM_HOST_RULE,
}


STILL_EVERY_S = 10.0  # how often a step in flight is said again in plain lines


def waiting_for(actions: tuple[Action, ...] | list[Action]) -> str:
    """What a step waits for while it runs, in an admin's words."""
    kinds = {a.kind for a in actions}
    if ActionKind.POWER_OFF in kinds:
        return "waiting for guest shutdown"
    if ActionKind.POWER_ON in kinds:
        power_on = next(a for a in actions if a.kind is ActionKind.POWER_ON)
        after = power_on.after
        if isinstance(after, PowerPayload) and after.wait_for_tools is False:
            return "waiting for power-on"
        return "waiting for VMware Tools"
    if ActionKind.SET_GUEST_SETTING in kinds:
        return "waiting for the guest command"
    if kinds & _DEVICE_KINDS:
        return "waiting for the reconfigure task"
    if kinds & _VSPHERE_CLUSTER_KINDS:
        return "waiting for the vSphere cluster reconfigure task"
    luns = kinds & {ActionKind.RESERVE_LUN, ActionKind.RELEASE_LUN}
    if luns and kinds & {ActionKind.SET_HOST_OPTION, ActionKind.RESTORE_HOST_OPTION}:
        return "waiting for the host option updates and LUN reservations"  # the hosts' one step
    if luns:
        return "waiting for the LUN reservation"
    if kinds & {ActionKind.SET_HOST_OPTION, ActionKind.RESTORE_HOST_OPTION}:
        return "waiting for the host option update"
    if ActionKind.RECORD_NIC_SLOT in kinds:
        return "reading the adapters' PCI slots"
    return "waiting for vCenter"


def _kinds_key(actions: tuple[Action, ...] | list[Action]) -> tuple[str, ...]:
    return tuple(sorted({str(a.kind) for a in actions}))


class Durations:
    """How long steps took so far in this apply: what the ETA is learned from.

    A step of the same kinds (two power-offs, two reconfigures of a node's disks) takes about
    as long as the last ones did; a kind not seen yet is guessed as the mean of every step.
    """

    def __init__(self) -> None:
        self.by_kinds: dict[tuple[str, ...], list[float]] = {}
        self.every: list[float] = []

    def learn(self, kinds: tuple[str, ...], seconds: float) -> None:
        self.by_kinds.setdefault(kinds, []).append(seconds)
        self.every.append(seconds)

    def estimate(self, kinds: tuple[str, ...]) -> float | None:
        seen = self.by_kinds.get(kinds) or self.every
        return sum(seen) / len(seen) if seen else None


@dataclass
class _Cluster:
    """One cluster's apply as the progress shows it."""

    name: str
    kinds: list[tuple[str, ...]]  # each step's kinds, in order
    done: int = 0
    current: StepStarted | None = None
    step_started: float = 0.0
    said: float = 0.0  # when the step in flight was last said (plain lines)
    started: float | None = None
    task: TaskID | None = field(default=None, repr=False)

    def left_after_current(self) -> list[tuple[str, ...]]:
        return self.kinds[self.current.step if self.current is not None else self.done :]


def fmt_seconds(seconds: float) -> str:
    """`42.1s`, `3m05s`, `1h02m`: short enough for a progress line."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


class ApplyProgress:
    """The progress of one `mscsctl apply`: a callable for the run loop's step events.

    `expect()` is given the plans once they are made; the bars (on a terminal) appear with
    the first step, after the approval, and are closed when the block ends.
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, still_every: float = STILL_EVERY_S) -> None:
        self.clock = clock
        self.clusters: dict[str, _Cluster] = {}
        self.durations = Durations()
        self.lock = threading.Lock()
        self.bars: Progress | None = None
        self.mode = output.progress_mode()
        self.still_every = still_every
        self.ended = threading.Event()
        self.ticker: threading.Thread | None = None

    def expect(self, plans: list[Plan]) -> None:
        for plan in plans:
            if plan.has_changes:
                self.clusters[plan.cluster] = _Cluster(plan.cluster, [_kinds_key(s) for s in steps(plan.actions)])

    def __enter__(self) -> ApplyProgress:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.ended.set()
        if self.ticker is not None:
            self.ticker.join()
        with self.lock:
            if self.bars is not None:
                for cluster in self.clusters.values():
                    if cluster.task is not None and cluster.done < len(cluster.kinds):
                        stopped = "not started" if cluster.started is None else f"stopped at step {cluster.done + 1}"
                        self.bars.update(cluster.task, description=stopped)
                self.bars.stop()
                self.bars = None

    def __call__(self, event: StepStarted) -> None:
        with self.lock:
            cluster = self.clusters.get(event.cluster)
            if cluster is None:  # a plan not given to expect() (the Python API's own use)
                cluster = self.clusters.setdefault(event.cluster, _Cluster(event.cluster, [()] * event.steps))
            now = self.clock()
            if event.phase == "start":
                cluster.current, cluster.step_started, cluster.said = event, now, now
                if cluster.started is None:
                    cluster.started = now
                seconds = None
            else:
                seconds = now - cluster.step_started
                self.durations.learn(_kinds_key(event.actions), seconds)
                cluster.done, cluster.current = event.step, None
            if self.mode == "bars":
                self._draw(cluster, event)
            elif self.mode != "quiet":
                self._line(event, seconds)
                if self.ticker is None:
                    self.ticker = threading.Thread(target=self._still_waiting, name="progress", daemon=True)
                    self.ticker.start()

    def _still_waiting(self) -> None:
        """Every `still_every` seconds, a line for each step still in flight: a long wait is never silent."""
        while not self.ended.wait(min(self.still_every, 1.0)):
            with self.lock:
                now = self.clock()
                for cluster in self.clusters.values():
                    event = cluster.current
                    if event is not None and now - cluster.said >= self.still_every:
                        cluster.said = now
                        self._line(event, None, still=now - cluster.step_started)

    def eta(self, cluster: _Cluster) -> float | None:
        """Seconds left for a cluster, from the steps learned so far; None before any step ended."""
        left = 0.0
        current = cluster.current
        if current is not None:
            guess = self.durations.estimate(_kinds_key(current.actions))
            if guess is None:
                return None
            left += max(guess - (self.clock() - cluster.step_started), 0.0)
        for kinds in cluster.left_after_current():
            guess = self.durations.estimate(kinds)
            if guess is None:
                return None
            left += guess
        return left

    def _line(self, event: StepStarted, seconds: float | None, *, still: float | None = None) -> None:
        kinds = ", ".join(event.kinds)
        head = f"{event.cluster}: [{event.step}/{event.steps}] {event.target}: {kinds}"
        fields: dict[str, Any] = {
            "cluster": event.cluster,
            "step": event.step,
            "steps": event.steps,
            "phase": event.phase if still is None else "wait",
            "target": event.target,
            "kinds": kinds,
        }
        if still is not None:
            message = f"{head}: still {waiting_for(event.actions)}, {fmt_seconds(still)}"
            fields |= {"waiting_for": waiting_for(event.actions), "elapsed_s": round(still, 3)}
        elif seconds is None:
            message = f"{head}: {waiting_for(event.actions)}"
            fields["waiting_for"] = waiting_for(event.actions)
        else:
            message = f"{head}: done in {fmt_seconds(seconds)}"
            fields["duration_s"] = round(seconds, 3)
        if self.mode == "json":
            output.progress(message, **fields)
        else:
            stamp = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
            output.progress(f"{stamp} {message}")

    def _draw(self, cluster: _Cluster, event: StepStarted) -> None:
        if self.bars is None:
            self.bars = _bars(self)
            for waiting in self.clusters.values():  # every cluster of the run has its row from the start
                waiting.task = self.bars.add_task("not started yet", total=len(waiting.kinds), cluster=waiting)
            self.bars.start()
        if event.phase == "start":
            text = f"{event.target}: {waiting_for(event.actions)}"
        elif cluster.done >= len(cluster.kinds):
            text = "done"
        else:
            text = f"{event.target}: {', '.join(event.kinds)} done"
        if cluster.task is None:
            cluster.task = self.bars.add_task(text, total=len(cluster.kinds), cluster=cluster)
        self.bars.update(cluster.task, completed=cluster.done, description=text)


class _ClusterColumn(ProgressColumn):
    """A column drawn from the cluster of its row and what the apply learned so far."""

    def __init__(self, progress: ApplyProgress) -> None:
        super().__init__()
        self.progress = progress


class _Elapsed(_ClusterColumn):
    """The step in flight's time and the cluster's, e.g. `step 12.0s, total 3m05s`."""

    def render(self, task: Task) -> Text:
        cluster: _Cluster = task.fields["cluster"]
        now = self.progress.clock()
        if cluster.started is None:
            return Text("")
        total = fmt_seconds(now - cluster.started)
        if cluster.current is None:
            return Text(f"total {total}")
        return Text(f"step {fmt_seconds(now - cluster.step_started)}, total {total}")


class _Eta(_ClusterColumn):
    """The time left, learned from the steps that ended so far (`ETA ?` before the first)."""

    def render(self, task: Task) -> Text:
        cluster: _Cluster = task.fields["cluster"]
        if cluster.done >= len(cluster.kinds):
            return Text("")
        left = self.progress.eta(cluster)
        return Text("ETA ?" if left is None else f"ETA {fmt_seconds(left)}", style="cyan")


def _bars(progress: ApplyProgress) -> Progress:
    return Progress(
        TextColumn("{task.fields[cluster].name}", style="bold"),
        BarColumn(bar_width=20),
        TextColumn("{task.completed}/{task.total} steps"),
        TextColumn("{task.description}"),
        _Elapsed(progress),
        _Eta(progress),
        console=output.stderr(),
        refresh_per_second=4,
    )


def apply_totals(plans: list[Plan]) -> str | None:
    """What an apply is about to do across every cluster, said before it asks for `yes`.

    `Total: 2 clusters, 58 actions (4 add-controller, ...); 4 nodes power off, one at a time
    in each cluster: sql-prod-01/SQLNODE1, ...`; None when nothing changes.
    """
    changing = [p for p in plans if p.has_changes]
    if not changing:
        return None
    by_kind: dict[str, int] = {}
    for plan in changing:
        for action in plan.actions:
            by_kind[str(action.kind)] = by_kind.get(str(action.kind), 0) + 1
    actions = sum(by_kind.values())
    kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(by_kind.items()))
    off = [
        f"{plan.cluster}/{a.target}" if len(changing) > 1 else a.target
        for plan in changing
        for a in plan.actions
        if a.kind is ActionKind.POWER_OFF
    ]
    clusters = f"{len(changing)} cluster{'s' if len(changing) != 1 else ''}"
    text = f"Total: {clusters}, {actions} action{'s' if actions != 1 else ''} ({kinds})"
    if off:
        nodes = f"{len(off)} node{'s' if len(off) != 1 else ''}"
        text += f"; {nodes} power off, one at a time in each cluster: {', '.join(off)}"
    else:
        text += "; no node powers off"
    return text + "."
