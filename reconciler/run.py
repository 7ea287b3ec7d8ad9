"""The run loop below the command line: observe, plan, approve, lock, apply, record.

Like Terraform's local backend, this module owns the whole sequence and returns typed
results; the CLI parses its options, calls these functions and prints what they return.
They are the Python API as well (README, "Python API"):

    planned = plan_file("sql-prod-01.yaml")
    results = apply_plans(planned, approve=lambda plans: True)

A run reads vCenter in one session (a fleet in a constant number of round trips per
datacenter), then applies each lane of clusters in its own session, clusters of different
lanes side by side. Each cluster's state is locked for its apply and written after every
outcome, so it never lags vCenter by more than one call.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler.apply import ApplyReport, StepPhase, apply_plan
from reconciler.drift import DriftReport, detect_drift
from reconciler.errors import MscsError, RuleViolation, StaleStateError
from reconciler.findings import Finding
from reconciler.fleet import conflict_lanes, observe_all, with_guests
from reconciler.kinds import ActionKind
from reconciler.observed import Observed
from reconciler.outcome import Outcome
from reconciler.plan import Action, Plan
from reconciler.plan_file import read_plans, saved_plans_at
from reconciler.planner import build_plan, stale_reasons
from reconciler.record import record_nic_slots, record_outcome
from reconciler.workspace import Desired, StateLocation, Targets, load_targets, read_state, targets_of_files
from state import StateBackend, locked
from state.model import State, utc_now

if TYPE_CHECKING:
    from providers.vcenter.connection import ConnectionSettings, Session

DEFAULT_PARALLELISM = 10

__all__ = [
    "DEFAULT_PARALLELISM",
    "ApplyCancelled",
    "ApplyResult",
    "ApplyStatus",
    "Connection",
    "PlanResult",
    "RunOptions",
    "StepStarted",
    "apply_plans",
    "drift_file",
    "plan_file",
    "plan_for_apply",
    "read_saved_plan",
]


@dataclass(frozen=True)
class Connection:
    """How to reach vCenter: each value given wins over its `VSPHERE_*` variable.

    The password only ever comes from `VSPHERE_PASSWORD`. Nothing is read until a run
    connects, so a desired file's errors are reported before a missing setting.
    """

    server: str | None = None
    user: str | None = None
    ca_file: str | None = None
    allow_unverified: bool | None = None

    def settings(self) -> ConnectionSettings:
        from providers.vcenter.connection import settings_from_env

        return settings_from_env(
            server=self.server, user=self.user, ca_file=self.ca_file, allow_unverified=self.allow_unverified
        )


@dataclass(frozen=True)
class RunOptions:
    """What a run is told besides its path, as the flags of `plan`, `apply` and `drift` say it.

    `state` and `state_dir` are `--state` and `--state-dir`: where each cluster's state lives.
    """

    connection: Connection = field(default_factory=Connection)
    state: str | None = None
    state_dir: str | None = None
    skip_guest: bool = False


@dataclass(frozen=True)
class PlanResult:
    """The plans of a run, one a cluster, with what `apply_plans` needs to carry them out."""

    plans: list[Plan]
    targets: Targets
    observed: dict[str, Observed]  # cluster name -> what vCenter showed when planned
    states: StateLocation
    settings: ConnectionSettings = field(repr=False)
    saved: Path | None = None  # the saved plan these were read from: applied without asking again

    @property
    def has_changes(self) -> bool:
        return any(p.has_changes for p in self.plans)


class ApplyStatus(StrEnum):
    NO_CHANGES = "no changes"
    APPLIED = "applied"
    FAILED = "failed"


@dataclass(frozen=True)
class ApplyResult:
    """What became of one cluster's plan: its outcomes, or the error that stopped it."""

    cluster: str
    status: ApplyStatus
    report: ApplyReport | None = None
    error: MscsError | None = None

    @property
    def done(self) -> list[Outcome]:
        return self.report.done if self.report is not None else []

    @property
    def skipped(self) -> list[Outcome]:
        return self.report.skipped if self.report is not None else []


@dataclass(frozen=True)
class StepStarted:
    """Progress: a cluster's next step (one vCenter call) is starting."""

    cluster: str
    number: int  # actions of the plan started so far, this step's included
    total: int  # actions in the plan
    target: str  # the VM, host or vSphere cluster the step changes
    kinds: tuple[str, ...]
    fleet: bool  # more than one cluster is being applied


class ApplyCancelled(MscsError):
    """The plans were not approved: nothing was changed."""


def plan_file(path: str | Path, options: RunOptions | None = None) -> PlanResult:
    """Plan a desired file, or a directory of them (one cluster a file), against vCenter.

    Rule errors of every cluster are raised together (`RuleViolation`).
    """
    options = options or RunOptions()
    targets = load_targets(path)
    states = _states(targets, options)
    settings = options.connection.settings()
    observed = _read_vcenter(settings, targets, skip_guest=options.skip_guest)
    return PlanResult(_plan_each(targets, observed, states), targets, observed, states, settings)


def read_saved_plan(path: str | Path, options: RunOptions | None = None, plans: list[Plan] | None = None) -> PlanResult:
    """A plan saved by `plan --out`, refused (`StaleStateError`) if a desired file or vCenter changed since.

    `plans` are the plans already read from `path`, if they were. The guests are not asked:
    a saved plan's guest actions read the guest again when they run.
    """
    path = Path(path)
    options = options or RunOptions()
    saved = plans if plans is not None else read_plans(path)
    targets = targets_of_files([Path(p.desired_file) for p in saved])
    for plan, desired in zip(saved, targets.desired, strict=True):
        if plan.desired_hash != desired.hash:
            raise StaleStateError(
                f"the plan {path} is stale: {desired.path} changed since it was made; run `mscsctl plan` again"
            )
    states = _states(targets, options)
    settings = options.connection.settings()
    observed = _read_vcenter(settings, targets, skip_guest=True)
    reasons = [r for plan in saved for r in stale_reasons(plan, observed[plan.cluster])]
    if reasons:
        raise StaleStateError(
            f"the plan {path} is stale, vCenter changed since it was made: "
            + "; ".join(reasons)
            + ". Run `mscsctl plan` again."
        )
    return PlanResult(saved, targets, observed, states, settings, saved=path)


def plan_for_apply(path: str | Path, options: RunOptions | None = None) -> PlanResult:
    """What `apply PATH` carries out: the plan saved at `path`, or a fresh plan of the desired file(s)."""
    saved = saved_plans_at(Path(path))
    if saved is not None:
        return read_saved_plan(path, options, saved)
    return plan_file(path, options)


def apply_plans(
    planned: PlanResult,
    *,
    approve: Callable[[list[Plan]], bool],
    progress: Callable[[StepStarted], None] | None = None,
    allow_data_loss: bool = False,
    parallelism: int = DEFAULT_PARALLELISM,
) -> list[ApplyResult]:
    """Apply the plans that have changes, each cluster under its state's lock; one result a plan.

    `approve` is asked once, with every plan, before anything changes (not for a saved
    plan: saving it was the approval); when it answers False, `ApplyCancelled` is raised.
    A cluster that fails is a FAILED result with its error; the others go on. `progress`
    is called before every step, one call at a time even when lanes run side by side.
    """
    todo = [p for p in planned.plans if p.has_changes]
    if not todo:
        return [ApplyResult(p.cluster, ApplyStatus.NO_CHANGES) for p in planned.plans]
    if planned.saved is None and not approve(planned.plans):
        raise ApplyCancelled("apply cancelled")
    by_name = {d.name: d for d in planned.targets.desired}
    plan_of = {p.cluster: p for p in planned.plans}
    lanes = conflict_lanes([by_name[p.cluster] for p in todo], planned.observed)
    results: dict[str, ApplyResult] = {}
    announce = _Announcer(progress, fleet=len(todo) > 1)

    def run_lane(lane: list[Desired]) -> None:
        with _connect(planned.settings) as session:
            for desired in lane:
                plan = plan_of[desired.name]
                try:
                    backend = planned.states.backend(desired)
                    report = _apply_one(
                        session,
                        desired,
                        plan,
                        planned.observed[desired.name],
                        backend,
                        allow_data_loss=allow_data_loss,
                        progress=announce.reporter(plan),
                    )
                except MscsError as exc:
                    results[desired.name] = ApplyResult(desired.name, ApplyStatus.FAILED, error=exc)
                else:
                    results[desired.name] = ApplyResult(desired.name, ApplyStatus.APPLIED, report=report)

    if len(lanes) == 1:
        run_lane(lanes[0])
    else:
        with ThreadPoolExecutor(max_workers=min(parallelism, len(lanes))) as pool:
            for future in [pool.submit(run_lane, lane) for lane in lanes]:
                future.result()
    return [results.get(p.cluster) or ApplyResult(p.cluster, ApplyStatus.NO_CHANGES) for p in planned.plans]


def drift_file(path: str | Path, options: RunOptions | None = None) -> list[DriftReport]:
    """What vCenter shows now against each desired file and what was last applied; one report a cluster."""
    options = options or RunOptions()
    targets = load_targets(path)
    states = _states(targets, options)
    checked_at = utc_now()
    observed = _read_vcenter(options.connection.settings(), targets, skip_guest=options.skip_guest)
    return [
        detect_drift(
            d.cluster,
            observed[d.name],
            read_state(states.backend(d), d),
            desired_file=str(d.path),
            checked_at=checked_at,
        )
        for d in targets.desired
    ]


def _states(targets: Targets, options: RunOptions) -> StateLocation:
    return StateLocation.for_targets(targets, state=options.state, state_dir=options.state_dir)


def _read_vcenter(settings: ConnectionSettings, targets: Targets, *, skip_guest: bool) -> dict[str, Observed]:
    """The one read of vCenter for every cluster, and each node's guest unless left out."""
    with _connect(settings) as session:
        observed = observe_all(session, targets.desired)
        if not skip_guest:
            observed = with_guests(session, targets.desired, observed)
    return observed


def _connect(settings: ConnectionSettings) -> Session:
    from providers.vcenter.connection import connect

    return connect(settings)


def _plan_each(targets: Targets, observed: dict[str, Observed], states: StateLocation) -> list[Plan]:
    """Each cluster's plan from the fleet's one read; rule errors of all clusters at once."""
    plans: list[Plan] = []
    errors: list[Finding] = []
    for desired in targets.desired:
        state = read_state(states.backend(desired), desired)
        try:
            plans.append(
                build_plan(
                    desired.cluster,
                    observed[desired.name],
                    managed=state.managed() if state is not None else None,
                    desired_file=str(desired.path),
                    desired_hash=desired.hash,
                    created_at=utc_now(),
                    locate=desired.locate,
                )
            )
        except RuleViolation as exc:
            errors += exc.findings
    if errors:
        raise RuleViolation(errors)
    return plans


def _apply_one(
    session: Session,
    desired: Desired,
    plan: Plan,
    observed: Observed,
    backend: StateBackend,
    *,
    allow_data_loss: bool,
    progress: Callable[[list[Action], StepPhase], None],
) -> ApplyReport:
    from providers.vcenter.executor import VCenterExecutor

    with locked(backend, "apply"):
        state = read_state(backend, desired)
        executor = VCenterExecutor(
            session,
            observed,
            allow_data_loss=allow_data_loss,
            guest_nodes={n.name: n for n in desired.cluster.spec.nodes},
            env=dict(os.environ),
        )
        recorder = _StateRecorder(backend, state, desired)
        report = apply_plan(plan, executor, recorder, progress)
        recorder.finish()
    return report


class _StateRecorder:
    """Writes the state after every outcome, so it never lags vCenter by more than one call."""

    def __init__(self, backend: StateBackend, state: State | None, desired: Desired) -> None:
        self.backend = backend
        self.serial = state.serial if state is not None else None
        self.state = state or State.new(desired.cluster.name, desired.hash)
        self.desired = desired

    def __call__(self, outcome: Outcome) -> None:
        now = utc_now()
        new = record_outcome(self.state, outcome, now)
        nics = outcome.record.nics
        if outcome.action.kind is ActionKind.POWER_ON and nics is not None:
            vm = outcome.action.target
            new = record_nic_slots(new, self.desired.cluster, vm, outcome.record.vm_moref, list(nics), now)
        if new != self.state or self.serial is None:
            self._write(new)

    def finish(self) -> None:
        self._write(self.state.with_desired_hash(self.desired.hash))

    def _write(self, state: State) -> None:
        written = self.backend.write(state, expected_serial=self.serial)
        self.state, self.serial = written, written.serial


class _Announcer:
    """Turns each plan's steps into `StepStarted` calls, one at a time across the lanes."""

    def __init__(self, progress: Callable[[StepStarted], None] | None, *, fleet: bool) -> None:
        self.progress, self.fleet = progress, fleet
        self.lock = threading.Lock()

    def reporter(self, plan: Plan) -> Callable[[list[Action], StepPhase], None]:
        started = 0

        def report(step: list[Action], phase: StepPhase) -> None:
            nonlocal started
            if phase != "start" or self.progress is None:
                return
            started += len(step)
            vsphere_cluster = step[0].vsphere_cluster
            event = StepStarted(
                cluster=plan.cluster,
                number=started,
                total=len(plan.actions),
                target=vsphere_cluster if vsphere_cluster is not None else step[0].target,
                kinds=tuple(sorted({str(a.kind) for a in step})),
                fleet=self.fleet,
            )
            with self.lock:
                self.progress(event)

        return report
