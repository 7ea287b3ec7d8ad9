"""The run loop below the command line: lock, observe, plan, approve, apply, record.

Like Terraform's local backend, this module owns the whole sequence and returns typed
results; the CLI parses its options, calls these functions and prints what they return.
They are the Python API as well (README, "Python API"):

    planned = plan_file("sql-prod-01.yaml")
    results = apply_plans(planned, approve=lambda plans: True)

`apply_path()` is what `mscsctl apply` runs: every cluster's state is locked before
anything is read, and stays locked through the plan, the approval and the apply, as
Terraform holds its lock from plan to apply. A run reads each vCenter in one session (a
fleet in a constant number of round trips per datacenter; several vCenters side by side),
then applies each lane of clusters in its own session, lanes side by side. A vCenter that
cannot be reached fails its own clusters only (`PlanResult.failed`); the others go on.
The state is written after every outcome, so it never lags vCenter by more than one call.
A cluster that fails stops its lane (the clusters after it share a VM, a host or a LUN
with it) and no other; an `Interruption` lets the vCenter call in flight end and starts
no new one.
"""

from __future__ import annotations

import functools
import os
import shlex
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler.address import Scope
from reconciler.apply import (
    ApplyInterrupted,
    ApplyReport,
    Interruption,
    StepPhase,
    apply_plan,
    internal_error,
    steps,
)
from reconciler.destroy import build_destroy_plan, kept_after
from reconciler.drift import DriftReport, detect_drift
from reconciler.errors import LockedError, MscsError, RuleViolation, StaleStateError
from reconciler.findings import Finding
from reconciler.fleet import conflict_lanes, observe_all, run_lanes, side_by_side, with_guests
from reconciler.kinds import ActionKind
from reconciler.kinds.guest import address as guest_address
from reconciler.observed import Observed
from reconciler.outcome import Outcome
from reconciler.plan import Action, Plan, UncheckedPart
from reconciler.plan_file import read_plans, saved_plans_at
from reconciler.planner import build_plan, check_targets, cluster_addresses
from reconciler.record import alive, record_destroyed, record_nic_slots, record_outcome
from reconciler.rules.fleet import fleet_findings
from reconciler.seal import refuse_edited_or_stale, refuse_stale_file, sealed
from reconciler.spec import FailoverCluster
from reconciler.target import Target, clusters_of, narrowing, parse_targets, unknown_cluster_error
from reconciler.workspace import Desired, StateLocation, Targets, load_targets, read_state, targets_of_files
from state import StateBackend, locked, redact
from state.model import State, utc_now

if TYPE_CHECKING:
    from providers.vcenter.connection import ConnectionSettings, Session

DEFAULT_PARALLELISM = 10

__all__ = [
    "DEFAULT_PARALLELISM",
    "ApplyAbandoned",
    "ApplyCancelled",
    "ApplyResult",
    "ApplyStatus",
    "Connection",
    "Interruption",
    "PlanResult",
    "RunOptions",
    "StepStarted",
    "apply_command_line",
    "apply_path",
    "apply_plans",
    "drift_exit_code",
    "drift_file",
    "plan_exit_code",
    "plan_file",
    "plan_for_apply",
    "read_saved_plan",
    "stop_on_signals",
]


@dataclass(frozen=True)
class Connection:
    """How to reach vCenter: each value given wins over its `VSPHERE_*` variable.

    That is the default vCenter, for desired files without `vcenter:`. A file naming another
    vCenter gets its login from the credentials file (`credentials_file`, else
    `$MSCSCTL_CREDENTIALS_FILE`). The password only ever comes from `VSPHERE_PASSWORD` or
    that file. Nothing is read until a run connects, so a desired file's errors are
    reported before a missing setting.
    """

    server: str | None = None
    user: str | None = None
    ca_file: str | None = None
    allow_unverified: bool | None = None
    credentials_file: str | None = None

    def settings(self, vcenter: str | None = None) -> ConnectionSettings:
        """The login for `vcenter` (a desired file's `vcenter:`), or the default vCenter's."""
        return self.logins()(vcenter)

    def logins(self) -> Callable[[str | None], ConnectionSettings]:
        """The login of each vCenter a run names, for all its clusters: the environment and the
        credentials file are read once, however many files name the same vCenter."""
        from providers.vcenter.connection import CREDENTIALS_ENV, read_credentials, settings_for, settings_from_env

        @functools.cache
        def default() -> ConnectionSettings:
            return settings_from_env(
                server=self.server, user=self.user, ca_file=self.ca_file, allow_unverified=self.allow_unverified
            )

        path = self.credentials_file or os.environ.get(CREDENTIALS_ENV) or None

        @functools.cache
        def credentials() -> dict[str, ConnectionSettings]:
            return read_credentials(path) if path else {}

        @functools.cache
        def login(vcenter: str | None) -> ConnectionSettings:
            return default() if vcenter is None else settings_for(vcenter, default, credentials)

        return login


@dataclass(frozen=True)
class RunOptions:
    """What a run is told besides its path, as the flags of `plan`, `apply` and `drift` say it.

    `state` and `state_dir` are `--state` and `--state-dir`: where each cluster's state lives.
    `lock_timeout_s` is `--lock-timeout`: how long to wait for a state lock another run holds.
    `targets` are `--target`: the clusters, nodes or objects to plan, apply or check, and
    what they depend on (reconciler/target.py); none: everything. `notify` hears what a run
    does on its own that the user should know (an older state file moved to its place).
    """

    connection: Connection = field(default_factory=Connection)
    state: str | None = None
    state_dir: str | None = None
    skip_guest: bool = False
    lock_timeout_s: float = 0.0
    targets: tuple[str, ...] = ()
    notify: Callable[[str], None] | None = field(default=None, compare=False, repr=False)
    destroy: bool = False  # `destroy`, `plan --destroy`: decommissioning plans (reconciler/destroy.py)


@dataclass(frozen=True)
class PlanResult:
    """The plans of a run, one a cluster, with what `apply_plans` needs to carry them out."""

    plans: list[Plan]
    targets: Targets
    observed: dict[str, Observed]  # cluster name -> what vCenter showed when planned
    states: StateLocation
    logins: dict[str, ConnectionSettings] = field(repr=False)  # cluster name -> its vCenter's login
    saved: Path | None = None  # the saved plan these were read from: applied without asking again
    serials: dict[str, int | None] = field(default_factory=dict)  # cluster -> state serial when planned
    locked: bool = False  # made under the states' locks, still held (`apply_path`)
    # Clusters whose vCenter could not be reached or logged in to: not planned, the reason.
    failed: dict[str, MscsError] = field(default_factory=dict)

    @property
    def has_changes(self) -> bool:
        return any(p.has_changes for p in self.plans)


class ApplyStatus(StrEnum):
    NO_CHANGES = "no changes"
    APPLIED = "applied"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    NOT_STARTED = "not started"


@dataclass(frozen=True)
class ApplyResult:
    """What became of one cluster's plan: its outcomes, or the error that stopped it."""

    cluster: str
    status: ApplyStatus
    report: ApplyReport | None = None
    error: MscsError | None = None
    note: str = ""  # why a cluster was not started
    # Parts of the file its plan could not check, so apply did not do them (a guest not reached):
    # carried from the plan for the report, not part of the outcome (nor of equality).
    unchecked: tuple[UncheckedPart, ...] = field(default=(), compare=False)

    @property
    def done(self) -> list[Outcome]:
        return self.report.done if self.report is not None else []

    @property
    def skipped(self) -> list[Outcome]:
        return self.report.skipped if self.report is not None else []


@dataclass(frozen=True)
class StepStarted:
    """Progress: a cluster's next step (one vCenter call) is starting, or (`phase` "end") has ended.

    `step` counts steps, one at a time, so a counter shown from it never skips a number; a
    step that fails has no "end".
    """

    cluster: str
    number: int  # actions of the plan started so far, this step's included
    total: int  # actions in the plan
    target: str  # the VM, host or vSphere cluster the step changes
    kinds: tuple[str, ...]
    fleet: bool  # more than one cluster is being applied
    step: int = 0  # steps of the plan started so far, this one included
    steps: int = 0  # steps in the plan
    phase: StepPhase = "start"
    actions: tuple[Action, ...] = ()  # what the step carries out


class ApplyCancelled(MscsError):
    """The plans were not approved: nothing was changed."""


class ApplyAbandoned(MscsError):
    """Asked to stop twice: the run left at once, without waiting for the vCenter call in flight."""


@contextmanager
def stop_on_signals(interruption: Interruption, notify: Callable[[str], None]) -> Iterator[None]:
    """SIGINT and SIGTERM, while the block runs: the first during the apply is a request
    (`notify` says so); a second one, or one before the apply started, leaves at once
    (KeyboardInterrupt), which still releases the state locks on its way out."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_signal(signum: int, frame: object) -> None:
        name = signal.Signals(signum).name
        if interruption.applying and not interruption.requested:
            interruption.request()
            notify(f"{name}: stopping once the vCenter call in flight has ended (send it again to stop at once)")
            return
        raise KeyboardInterrupt(name)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def plan_file(
    path: str | Path, options: RunOptions | None = None, *, on_lock_wait: Callable[[str], None] | None = None
) -> PlanResult:
    """Plan a desired file, or a directory of them (one cluster a file), against vCenter.

    Each cluster's state is locked while it is read and vCenter is observed (`plan`), so
    that no apply writes it meanwhile. Rule errors of every cluster are raised together
    (`RuleViolation`).
    """
    options = options or RunOptions()
    targets = selected(load_targets(path), options.targets)
    states = _states(targets, options)
    with _locked_states(targets, states, "plan", options.lock_timeout_s, on_lock_wait):
        return _plan_targets(targets, states, options)


def read_saved_plan(
    path: str | Path,
    options: RunOptions | None = None,
    plans: list[Plan] | None = None,
    *,
    on_lock_wait: Callable[[str], None] | None = None,
) -> PlanResult:
    """A plan saved by `plan --out`, refused if edited since it was saved (`TamperedPlan`) or
    if a desired file or vCenter changed since it was made (`StaleStateError`).

    `plans` are the plans already read from `path`, if they were. The guests are not asked:
    a saved plan's guest actions read the guest again when they run.
    """
    options = options or RunOptions()
    saved = plans if plans is not None else read_plans(Path(path))
    _refuse_targets_for_saved(Path(path), options)
    targets = targets_of_files([Path(p.desired_file) for p in saved])
    states = _states(targets, options)
    with _locked_states(targets, states, "plan", options.lock_timeout_s, on_lock_wait):
        return _checked_saved_plan(Path(path), saved, targets, states, options)


def plan_for_apply(
    path: str | Path, options: RunOptions | None = None, *, on_lock_wait: Callable[[str], None] | None = None
) -> PlanResult:
    """What `apply PATH` carries out: the plan saved at `path`, or a fresh plan of the desired file(s)."""
    saved = saved_plans_at(Path(path))
    if saved is not None:
        return read_saved_plan(path, options, saved, on_lock_wait=on_lock_wait)
    return plan_file(path, options, on_lock_wait=on_lock_wait)


def apply_path(
    path: str | Path,
    options: RunOptions | None = None,
    *,
    approve: Callable[[list[Plan]], bool],
    planned: Callable[[PlanResult], None] | None = None,
    progress: Callable[[StepStarted], None] | None = None,
    allow_data_loss: bool = False,
    parallelism: int = DEFAULT_PARALLELISM,
    interruption: Interruption | None = None,
    on_lock_wait: Callable[[str], None] | None = None,
) -> list[ApplyResult]:
    """`mscsctl apply PATH`: lock every cluster's state, plan (or read the saved plan), show
    it (`planned`), approve, apply, release; the lock is taken even when nothing changes, so
    a lock left by a dead run is reported by every apply. See `apply_plans` for the rest."""
    options = options or RunOptions()
    path = Path(path)
    saved = saved_plans_at(path)
    if saved is not None:
        _refuse_targets_for_saved(path, options)
        targets = targets_of_files([Path(p.desired_file) for p in saved])
    else:
        targets = selected(load_targets(path), options.targets)
    states = _states(targets, options)
    with _locked_states(targets, states, "apply", options.lock_timeout_s, on_lock_wait):
        if saved is not None:
            result = _checked_saved_plan(path, saved, targets, states, options)
        else:
            result = _plan_targets(targets, states, options)
        result = replace(result, locked=True)
        if planned is not None:
            planned(result)
        return apply_plans(
            result,
            approve=approve,
            progress=progress,
            allow_data_loss=allow_data_loss,
            parallelism=parallelism,
            interruption=interruption,
        )


def apply_plans(
    planned: PlanResult,
    *,
    approve: Callable[[list[Plan]], bool],
    progress: Callable[[StepStarted], None] | None = None,
    allow_data_loss: bool = False,
    parallelism: int = DEFAULT_PARALLELISM,
    interruption: Interruption | None = None,
) -> list[ApplyResult]:
    """Apply the plans that have changes; one result a plan, in the plans' order.

    `approve` is asked once, with every plan, before anything changes (not for a saved
    plan: saving it was the approval); when it answers False, `ApplyCancelled` is raised.
    Unless the plans were made under the states' locks (`apply_path`), each cluster's state
    is locked for its apply and refused (`StaleStateError`) if it changed since the plan.
    Any error in a cluster's apply, an mscsctl error or not, is that cluster's FAILED
    result; its lane stops (NOT_STARTED for the rest), the other lanes go on. `progress` is
    called before every step, one call at a time even when lanes run side by side.
    """
    stop = interruption or Interruption()
    todo = [p for p in planned.plans if p.has_changes]
    if not todo:
        return _with_unchecked(planned, {})
    if planned.saved is None and not approve(planned.plans):
        raise ApplyCancelled("apply cancelled")
    lanes = _Lanes(planned, stop, _Announcer(progress, stop, fleet=len(todo) > 1), allow_data_loss)
    by_name = {d.name: d for d in planned.targets.desired}
    stop.applying = True
    try:
        in_play = [by_name[p.cluster] for p in todo]
        run_lanes(conflict_lanes(in_play, planned.observed, vcenter_keys(planned.logins)), parallelism, lanes.lane)
    except KeyboardInterrupt:
        stop.abandon()
        raise ApplyAbandoned(
            "interrupted again: stopped at once, without waiting for the vCenter call in flight (it may "
            "still finish). A node this apply powered off may still be off: run apply again to finish and "
            "power it on. The state records every step that ended before it; run plan to see what is left."
        ) from None
    finally:
        stop.applying = False
    return _with_unchecked(planned, lanes.results)


def _with_unchecked(planned: PlanResult, results: dict[str, ApplyResult]) -> list[ApplyResult]:
    """One result a cluster, in the files' order, each carrying what its plan could not check (not
    what the user left out on purpose: that was asked for, and the plan shown said it); a cluster
    whose vCenter was not reached is FAILED with the reason."""
    plans = {p.cluster: p for p in planned.plans}
    out = []
    for desired in planned.targets.desired:
        error = planned.failed.get(desired.name)
        plan = plans.get(desired.name)
        if error is not None:
            out.append(ApplyResult(desired.name, ApplyStatus.FAILED, error=error))
        elif plan is not None:
            result = results.get(plan.cluster) or ApplyResult(plan.cluster, ApplyStatus.NO_CHANGES)
            out.append(replace(result, unchecked=tuple(u for u in plan.unchecked if not u.on_purpose)))
    return out


def vcenter_keys(logins: dict[str, ConnectionSettings]) -> dict[str, str]:
    """Cluster name -> its vCenter (`host:port`): VM and host names mean one object only within one."""
    return {name: login.address.lower() for name, login in logins.items()}


def drift_file(path: str | Path, options: RunOptions | None = None) -> list[DriftReport]:
    """What vCenter shows now against each desired file and what was last applied; one report a cluster."""
    options = options or RunOptions()
    targets = selected(load_targets(path), options.targets)
    chosen = parse_targets(options.targets)
    states = _states(targets, options)
    checked_at = utc_now()
    reading = _read_vcenter(options.connection, targets, skip_guest=options.skip_guest)
    observed = reading.observed
    reports = []
    for d in targets.desired:
        if d.name not in observed:
            reports.append(_unreachable_report(d, reading.failed[d.name], checked_at))
            continue
        state = read_state(states.backend(d), d)
        report = detect_drift(
            d.cluster,
            observed[d.name],
            state,
            desired_file=str(d.path),
            checked_at=checked_at,
            fix_command=apply_command_line(d.path, options),
        )
        named = [t for t in chosen if t.cluster == d.name]
        narrow = narrowing(chosen, d.name)
        if narrow:
            check_targets(d.cluster, narrow, cluster_addresses(d.cluster, observed[d.name], state), [])
            report = _narrowed(report, d, narrow)
        if named:
            report = report.model_copy(update={"partial": True, "targets": [str(t) for t in named]})
        if options.skip_guest:
            report = report.model_copy(update={"unchecked": [*report.unchecked, *_skipped_guests(d, narrow)]})
        reports.append(report)
    return reports


def apply_command_line(path: str | Path, options: RunOptions) -> str:
    """`mscsctl apply PATH` as it must be typed to reach the states this run used (printed as
    drift's fix and after `plan --out`): shell-quoted, with `--state`/`--state-dir` when given."""
    words = ["mscsctl", "apply", str(path)]
    if options.state:
        words += ["--state", redact(options.state)]
    if options.state_dir:
        words += ["--state-dir", options.state_dir]
    return shlex.join(words)


def plan_exit_code(plans: list[Plan], *, detailed: bool) -> int:
    """`plan`'s exit code (README, "Exit codes"): with `--detailed-exitcode`, 1 when a part of
    the file could not be checked (left out on purpose does not count), else 2 for changes,
    0 for none; without it, 0."""
    if not detailed:
        return 0
    if any(not u.on_purpose for p in plans for u in p.unchecked):
        return 1
    return 2 if any(p.has_changes for p in plans) else 0


def drift_exit_code(reports: list[DriftReport]) -> int:
    """`drift`'s exit code: 1 when a part of the file could not be checked (a guest, a VM, a
    physical node's WinRM), whatever else was found; else 2 for drift, 0 for none."""
    if not all(r.complete for r in reports):
        return 1
    return 2 if any(r.drifted for r in reports) else 0


def selected(targets: Targets, texts: tuple[str, ...] | list[str]) -> Targets:
    """The files a run's `--target`s name (all without targets); an unknown cluster is an error."""
    if not texts:
        return targets
    chosen = parse_targets(texts)
    names = [d.name for d in targets.desired]
    for target in chosen:
        if target.cluster not in names:
            raise unknown_cluster_error(target, names)
    wanted = clusters_of(chosen)
    return replace(targets, desired=[d for d in targets.desired if d.name in wanted])


def _refuse_targets_for_saved(path: Path, options: RunOptions) -> None:
    if options.targets:
        raise MscsError(
            f"{path} is a saved plan: it is applied as saved, targets included; give --target to `plan --out`"
        )


def _narrowed(report: DriftReport, desired: Desired, narrow: list[Target]) -> DriftReport:
    cluster = desired.cluster
    return report.model_copy(
        update={
            "findings": [f for f in report.findings if any(t.matches(f.address) for t in narrow)],
            "unchecked": [u for u in report.unchecked if _names_node_part(narrow, cluster, u.node, u.part)],
            "notes": [n for n in report.notes if _note_in_reach(narrow, cluster, n)],
        }
    )


def _note_in_reach(narrow: list[Target], cluster: FailoverCluster, note: str) -> bool:
    """A note about a node (`NODE: ...`) is kept when the targets name that node; others are kept."""
    node = next((n for n in cluster.spec.node_names if note.startswith(f"{n}:")), None)
    return node is None or any(t.scope is Scope.NODE and t.owner == node for t in narrow)


def _names_node_part(narrow: list[Target], cluster: FailoverCluster, node: str, part: str) -> bool:
    if part == "guest":
        return any(t.matches(guest_address(cluster, node)) for t in narrow)
    return any(t.scope is Scope.NODE and t.owner == node for t in narrow)


def _skipped_guests(desired: Desired, narrow: list[Target]) -> list[UncheckedPart]:
    """The guest side of each node, left out on purpose (`--skip-guest`): named, never counted as unchecked."""
    cluster = desired.cluster
    return [
        UncheckedPart(node=n, part="guest", reason="skip-guest", detail="--skip-guest", on_purpose=True)
        for n in cluster.spec.node_names
        if not narrow or _names_node_part(narrow, cluster, n, "guest")
    ]


def _unreachable_report(desired: Desired, error: MscsError, checked_at: str) -> DriftReport:
    """A cluster whose vCenter could not be read: nothing compared, which the report says."""
    return DriftReport(
        cluster=desired.name,
        desired_file=str(desired.path),
        checked_at=checked_at,
        unchecked=[UncheckedPart(node=desired.name, part="vcenter", reason="vcenter-unreachable", detail=str(error))],
    )


@dataclass(frozen=True)
class ClusterReading:
    """One cluster as it is now: its desired file, what vCenter shows, the state's record."""

    desired: Desired
    observed: Observed
    state: State | None


def read_clusters(path: str | Path, options: RunOptions | None = None) -> list[ClusterReading]:
    """Each desired file of `path` with the one read of vCenter and its state; nothing planned or changed.

    The guests are not asked (pictures and reports of vCenter's side need only the read).
    """
    options = options or RunOptions()
    targets = load_targets(path)
    states = _states(targets, options)
    records = {d.name: read_state(states.backend(d), d) for d in targets.desired}
    reading = _read_vcenter(options.connection, targets, skip_guest=True)
    reading.raise_first()
    return [ClusterReading(d, reading.observed[d.name], records[d.name]) for d in targets.desired]


def _states(targets: Targets, options: RunOptions) -> StateLocation:
    return StateLocation.for_targets(targets, state=options.state, state_dir=options.state_dir, notify=options.notify)


@contextmanager
def _locked_states(
    targets: Targets,
    states: StateLocation,
    operation: str,
    timeout_s: float,
    on_wait: Callable[[str], None] | None,
) -> Iterator[None]:
    """Every cluster's state lock, taken in cluster-name order (two fleet runs never wait on
    each other crosswise), waited for up to `timeout_s` seconds in all, released at the end."""
    deadline = time.monotonic() + timeout_s

    def waiting(refused: LockedError) -> None:
        if on_wait is not None:
            on_wait(f"waiting up to {timeout_s:g}s for the state lock: {refused}")

    with ExitStack() as held:
        for desired in sorted(targets.desired, key=lambda d: d.name):
            left = max(deadline - time.monotonic(), 0.0)
            held.enter_context(locked(states.backend(desired), operation, timeout_s=left, on_wait=waiting))
        yield


def _plan_targets(targets: Targets, states: StateLocation, options: RunOptions) -> PlanResult:
    serials = _serials(targets, states)
    reading = _read_vcenter(options.connection, targets, skip_guest=options.skip_guest or options.destroy)
    chosen = parse_targets(options.targets)
    vcenters = vcenter_keys(reading.logins)
    plans = _plan_each(targets, reading.observed, states, vcenters, chosen, destroy=options.destroy)
    if options.skip_guest:
        by_name = {d.name: d for d in targets.desired}
        plans = [_with_skipped_guests(p, by_name[p.cluster], chosen) for p in plans]
    return PlanResult(plans, targets, reading.observed, states, reading.logins, serials=serials, failed=reading.failed)


def _checked_saved_plan(
    path: Path, saved: list[Plan], targets: Targets, states: StateLocation, options: RunOptions
) -> PlanResult:
    """The saved plans, once nothing says they were edited and nothing changed since they were made."""
    refuse_stale_file(path, saved, targets.desired)
    serials = _serials(targets, states)
    reading = _read_vcenter(options.connection, targets, skip_guest=True)
    reading.raise_first()  # a saved plan is applied whole or not at all
    observed = reading.observed
    vcenters = vcenter_keys(reading.logins)
    planned_targets = parse_targets([t for p in saved for t in p.targets])  # a partial plan, made again as saved
    destroy = any(p.destroy for p in saved)
    try:
        fresh: list[Plan] | None = _plan_each(targets, observed, states, vcenters, planned_targets, destroy=destroy)
    except RuleViolation:
        fresh = None  # vCenter now breaks a rule: what changed since the plan is said first
    refuse_edited_or_stale(path, saved, targets.desired, observed, fresh)
    if fresh is None:
        _plan_each(targets, observed, states, vcenters, planned_targets, destroy=destroy)  # the rule errors now
    return PlanResult(saved, targets, observed, states, reading.logins, saved=path, serials=serials)


def _serials(targets: Targets, states: StateLocation) -> dict[str, int | None]:
    serials: dict[str, int | None] = {}
    for desired in targets.desired:
        state = read_state(states.backend(desired), desired)
        serials[desired.name] = state.serial if state is not None else None
    return serials


@dataclass(frozen=True)
class _Reading:
    """What the read of every vCenter of a run gave: each cluster's view, or why there is none."""

    observed: dict[str, Observed]
    logins: dict[str, ConnectionSettings]
    failed: dict[str, MscsError]

    def raise_first(self) -> None:
        if self.failed:
            raise next(iter(self.failed.values()))


def _read_vcenter(connection: Connection, targets: Targets, *, skip_guest: bool) -> _Reading:
    """One read of each vCenter for its clusters (vCenters side by side), and each node's guest
    unless left out. A vCenter that cannot be logged in to or read fails its clusters only;
    when that is every cluster of the run, its error is raised as it is."""
    groups: dict[str, list[Desired]] = {}
    logins: dict[str, ConnectionSettings] = {}
    failed: dict[str, MscsError] = {}
    login_for = connection.logins()
    for d in targets.desired:
        try:
            login = login_for(d.cluster.spec.vcenter)
        except MscsError as exc:
            failed[d.name] = exc
            continue
        logins[d.name] = login
        groups.setdefault(login.address.lower(), []).append(d)

    def read(group: list[Desired]) -> dict[str, Observed]:
        with _connect(logins[group[0].name]) as session:
            observed = observe_all(session, group)
            if not skip_guest:
                observed = with_guests(session, group, observed)
        return observed

    observed: dict[str, Observed] = {}
    for group, result in zip(groups.values(), side_by_side(read, list(groups.values())), strict=True):
        if isinstance(result, MscsError):
            failed.update({d.name: result for d in group})
        else:
            observed.update(result)
    if failed and not observed:
        raise next(iter(failed.values()))
    return _Reading(observed, {n: s for n, s in logins.items() if n in observed}, failed)


def _connect(settings: ConnectionSettings) -> Session:
    from providers.vcenter.connection import connect

    return connect(settings)


def _with_skipped_guests(plan: Plan, desired: Desired, chosen: list[Target]) -> Plan:
    narrow = narrowing(chosen, desired.name)
    return plan.model_copy(update={"unchecked": [*plan.unchecked, *_skipped_guests(desired, narrow)]})


def _plan_each(
    targets: Targets,
    observed: dict[str, Observed],
    states: StateLocation,
    vcenters: dict[str, str],
    chosen: Sequence[Target] = (),
    *,
    destroy: bool = False,
) -> list[Plan]:
    """Each cluster's plan from the fleet's one read; rule errors of all clusters at once.

    Clusters whose vCenter could not be read (not in `observed`) are left out. `chosen` are
    the run's targets: a cluster's plan is narrowed to those that name its objects.
    `destroy`: each cluster's decommissioning plan instead."""
    if destroy:
        reached = replace(targets, desired=[d for d in targets.desired if d.name in observed])
        return destroy_plans(reached, observed, states, chosen)
    plans: list[Plan] = []
    errors: list[Finding] = []
    in_play = [d for d in targets.desired if d.name in observed]  # not those whose vCenter failed
    errors += fleet_findings(in_play, observed, vcenters)  # one LUN, one cluster; one VM, one cluster
    for desired in in_play:
        state = read_state(states.backend(desired), desired)
        try:
            plan = build_plan(
                desired.cluster,
                observed[desired.name],
                managed=state.managed() if state is not None else None,
                desired_file=str(desired.path),
                desired_hash=desired.hash,
                created_at=utc_now(),
                locate=desired.locate,
                targets=chosen,
            )
            plans.append(sealed(plan))
        except RuleViolation as exc:
            errors += exc.findings
    if errors:
        raise RuleViolation(errors)
    return plans


def destroy_plans(
    targets: Targets, observed: dict[str, Observed], states: StateLocation, chosen: Sequence[Target] = ()
) -> list[Plan]:
    """Each cluster's decommissioning plan (whole clusters only: a destroy never leaves half a cluster)."""
    narrow = [t for t in chosen if not t.whole_cluster]
    if narrow:
        raise MscsError(f"--target {narrow[0]}: destroy takes whole clusters (--target CLUSTER)")
    plans = []
    for desired in targets.desired:
        plan = build_destroy_plan(
            desired.cluster,
            observed[desired.name],
            read_state(states.backend(desired), desired),
            desired_file=str(desired.path),
            desired_hash=desired.hash,
            created_at=utc_now(),
        )
        plans.append(sealed(plan))
    return plans


class _Lanes:
    """The lanes of one apply, each in its own thread and vCenter session; their results."""

    def __init__(self, planned: PlanResult, stop: Interruption, announce: _Announcer, allow_data_loss: bool) -> None:
        self.planned, self.stop, self.announce = planned, stop, announce
        self.allow_data_loss = allow_data_loss
        self.plan_of = {p.cluster: p for p in planned.plans}
        self.results: dict[str, ApplyResult] = {}

    def lane(self, lane: list[Desired]) -> None:
        """The lane's clusters one after the other; the first that fails stops the lane."""
        with ExitStack() as open_session:
            session: Session | None = None
            for n, desired in enumerate(lane):
                if self.stop.requested:
                    return self._not_started(lane[n:], "the apply was interrupted before it started")
                try:
                    if session is None:  # a lane's clusters share objects, so one vCenter
                        session = open_session.enter_context(_connect(self.planned.logins[desired.name]))
                    report = self._apply_one(session, desired)
                except ApplyInterrupted as exc:
                    self.results[desired.name] = ApplyResult(desired.name, ApplyStatus.INTERRUPTED, error=exc)
                except MscsError as exc:
                    self.results[desired.name] = ApplyResult(desired.name, ApplyStatus.FAILED, error=exc)
                except Exception as exc:
                    error = MscsError(internal_error(exc))
                    error.__cause__ = exc
                    self.results[desired.name] = ApplyResult(desired.name, ApplyStatus.FAILED, error=error)
                else:
                    self.results[desired.name] = ApplyResult(desired.name, ApplyStatus.APPLIED, report=report)
                    continue
                return self._not_started(
                    lane[n + 1 :], f"{desired.name} shares a VM, a host or a LUN with it and did not finish"
                )

    def _not_started(self, rest: list[Desired], why: str) -> None:
        for desired in rest:
            self.results[desired.name] = ApplyResult(desired.name, ApplyStatus.NOT_STARTED, note=why)

    def _apply_one(self, session: Session, desired: Desired) -> ApplyReport:
        from providers.vcenter.executor import VCenterExecutor

        plan = self.plan_of[desired.name]
        backend = self.planned.states.backend(desired)
        with nullcontext() if self.planned.locked else locked(backend, "apply"):
            state = read_state(backend, desired)
            serial = state.serial if state is not None else None
            planned_serial = self.planned.serials.get(desired.name, serial)
            if serial != planned_serial:
                raise StaleStateError(
                    f"state {backend.describe()} changed since the plan was made (serial {planned_serial} -> "
                    f"{serial}): another run wrote it. Run plan again."
                )
            executor = VCenterExecutor(
                session,
                self.planned.observed[desired.name],
                allow_data_loss=self.allow_data_loss,
                guest_nodes={n.name: n for n in desired.cluster.spec.nodes},
                env=dict(os.environ),
            )
            recorder = _StateRecorder(backend, state, desired, self.stop)
            report = apply_plan(
                plan, executor, recorder, self.announce.reporter(plan), stop=lambda: self.stop.requested
            )
            recorder.finish(plan)
        return report


class _StateRecorder:
    """Writes the state after every outcome, so it never lags vCenter by more than one call."""

    def __init__(self, backend: StateBackend, state: State | None, desired: Desired, stop: Interruption) -> None:
        self.backend = backend
        self.serial = state.serial if state is not None else None
        self.state = state or State.new(desired.cluster.name, desired.hash)
        self.desired = desired
        self.stop = stop
        self.deleted: set[str] = set()  # shared VMDK files a detach deleted (--allow-data-loss)

    def __call__(self, outcome: Outcome) -> None:
        now = utc_now()
        if outcome.action.kind is ActionKind.DETACH_DISK and outcome.done and outcome.record.file:
            self.deleted.add(outcome.record.file)
        new = record_outcome(self.state, outcome, now)
        nics = outcome.record.nics
        if outcome.action.kind is ActionKind.POWER_ON and nics is not None:
            vm = outcome.action.target
            new = record_nic_slots(new, self.desired.cluster, vm, outcome.record.vm_moref, list(nics), now)
        if new != self.state or self.serial is None:
            self._write(new)

    def finish(self, plan: Plan) -> None:
        state = self.state.with_desired_hash(self.desired.hash)
        # A destroy records the cluster as gone, with what stays; any other apply as alive again.
        gone = plan.destroy and plan.records_destroyed
        self._write(record_destroyed(state, kept_after(plan, self.deleted), utc_now()) if gone else alive(state))

    def _write(self, state: State) -> None:
        if self.stop.abandoned:
            return  # the run left at once and released the lock: the state is no longer ours to write
        written = self.backend.write(state, expected_serial=self.serial)
        self.state, self.serial = written, written.serial


class _Announcer:
    """Turns each plan's steps into `StepStarted` calls, one at a time across the lanes."""

    def __init__(self, progress: Callable[[StepStarted], None] | None, stop: Interruption, *, fleet: bool) -> None:
        self.progress, self.stop, self.fleet = progress, stop, fleet
        self.lock = threading.Lock()

    def reporter(self, plan: Plan) -> Callable[[list[Action], StepPhase], None]:
        started = steps_started = 0
        total_steps = len(list(steps(plan.actions)))

        def report(step: list[Action], phase: StepPhase) -> None:
            nonlocal started, steps_started
            if self.progress is None:
                return
            if phase == "start":
                started += len(step)
                steps_started += 1
            vsphere_cluster = step[0].vsphere_cluster
            event = StepStarted(
                cluster=plan.cluster,
                number=started,
                total=len(plan.actions),
                target=vsphere_cluster if vsphere_cluster is not None else step[0].target,
                kinds=tuple(sorted({str(a.kind) for a in step})),
                fleet=self.fleet,
                step=steps_started,
                steps=total_steps,
                phase=phase,
                actions=tuple(step),
            )
            with self.lock:
                if not self.stop.abandoned:
                    self.progress(event)

        return report
