"""`mscsctl plan` and `mscsctl apply`, for one desired file or a directory of them (a fleet)."""

from __future__ import annotations

import json
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import typer

from reconciler.apply import ApplyReport, apply_plan
from reconciler.cli import app, output
from reconciler.cli.workflow import (
    Desired,
    Targets,
    conflict_lanes,
    connect,
    is_saved_plan,
    load_desired,
    load_targets,
    observe_all,
    read_state,
    state_backend,
    with_guests,
    write_private,
)
from reconciler.errors import MscsError, RuleViolation, StaleStateError
from reconciler.observed import Observed
from reconciler.plan import PLAN_FORMAT_VERSION, Action, ActionKind, Plan
from reconciler.planner import build_plan, stale_reasons
from reconciler.record import record_nic_slots, record_outcome
from reconciler.render import plan_from_json, plan_json, render_text
from state import locked
from state.model import State, utc_now

SERVER = typer.Option(None, "--server", help="vCenter host[:port] (default: $VSPHERE_SERVER).")
USER = typer.Option(None, "--user", help="vCenter user (default: $VSPHERE_USER). Password: $VSPHERE_PASSWORD.")
CA_FILE = typer.Option(None, "--ca-file", help="PEM CA bundle for vCenter's certificate ($VSPHERE_CA_FILE).")
INSECURE = typer.Option(
    None,
    "--allow-unverified-ssl",
    help="Do not verify vCenter's certificate ($VSPHERE_ALLOW_UNVERIFIED_SSL=true). Not recommended.",
)
STATE = typer.Option(
    None, "--state", help="State file or postgresql:// URL (default: $MSCSCTL_STATE, else beside the file)."
)
STATE_DIR = typer.Option(
    None, "--state-dir", help="One state file per cluster in this directory (default for a directory: .mscsctl/)."
)
PARALLELISM = typer.Option(10, "--parallelism", min=1, max=64, help="Clusters applied at once (default 10).")
SKIP_GUEST = typer.Option(False, "--skip-guest", help="Leave the guest side (disk timeout) out.")


class StateOptions:
    def __init__(self, state: str | None, state_dir: str | None, targets: Targets) -> None:
        self.state, self.state_dir, self.targets = state, state_dir, targets
        if state and targets.is_fleet and "://" not in state:
            raise MscsError(
                "--state names one file: for a directory of clusters use --state-dir (or a postgresql:// URL)"
            )

    def backend(self, desired: Desired) -> Any:
        return state_backend(
            desired,
            state=self.state,
            state_dir=self.state_dir,
            fleet_root=self.targets.root if self.targets.is_fleet else None,
        )


def make_plans(
    session: Any, targets: Targets, states: StateOptions, *, skip_guest: bool = False
) -> tuple[list[Plan], dict[str, Observed]]:
    """Observe every cluster together, then plan each; rule errors of all clusters at once."""
    observed = observe_all(session, targets.desired)
    if not skip_guest:
        observed = with_guests(session, targets.desired, observed)
    plans: list[Plan] = []
    errors: list[Any] = []
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
    return plans, observed


def saved_form(plans: list[Plan], fleet: bool) -> dict[str, Any]:
    if not fleet:
        return plan_json(plans[0])
    return {"format_version": PLAN_FORMAT_VERSION, "plans": [plan_json(p) for p in plans]}


def read_saved(path: Path) -> list[Plan]:
    data = json.loads(path.read_text(encoding="utf-8"))
    if "plans" in data:
        return [plan_from_json(json.dumps(p)) for p in data["plans"]]
    return [plan_from_json(json.dumps(data))]


def print_plans(plans: list[Plan]) -> None:
    console = output.stdout()
    for n, plan in enumerate(plans):
        if n:
            console.print("")
        console.print(render_text(plan), markup=True, highlight=False)


@app.command("plan")
@output.reports_errors
def plan_command(
    target: Path = typer.Argument(..., help="Desired-state file (YAML), or a directory of them (one cluster each)."),
    out: Path | None = typer.Option(None, "--out", help="Save the plan (JSON, mode 0600) for `apply PLAN`."),
    as_json: bool = typer.Option(False, "--json", help="Print the plan as JSON (docs/plan-format.md)."),
    markdown: bool = typer.Option(False, "--markdown", help="Print the plan as Markdown, for a merge request."),
    detailed_exitcode: bool = typer.Option(
        False, "--detailed-exitcode", help="Exit 0 when nothing changes, 2 when there are changes, 1 on error."
    ),
    skip_guest: bool = SKIP_GUEST,
    state_path: str | None = STATE,
    state_dir: str | None = STATE_DIR,
    server: str | None = SERVER,
    user: str | None = USER,
    ca_file: str | None = CA_FILE,
    insecure: bool | None = INSECURE,
) -> int:
    """Show, in order, what must change in vCenter for the nodes to match the desired file(s).

    Exit codes: 0 success (with --detailed-exitcode: no changes), 1 error, 2 changes present
    (with --detailed-exitcode).
    """
    targets = load_targets(target)
    states = StateOptions(state_path, state_dir, targets)
    with connect(server, user, ca_file, insecure) as session:
        plans, _ = make_plans(session, targets, states, skip_guest=skip_guest)
    if out is not None:
        write_private(out, json.dumps(saved_form(plans, targets.is_fleet), indent=2) + "\n")
    if as_json:
        output.print_json(saved_form(plans, targets.is_fleet))
    elif markdown:
        from reconciler.report.markdown import plan_markdown

        sys.stdout.write(plan_markdown(plans))
    else:
        print_plans(plans)
        if out is not None:
            output.info(f"Saved the plan to {out}. Apply exactly this plan with: mscsctl apply {out}")
    if detailed_exitcode and any(p.has_changes for p in plans):
        raise typer.Exit(2)
    return 0


@app.command("apply")
@output.reports_errors
def apply_command(
    target: Path = typer.Argument(
        ..., help="Desired-state file (YAML), a directory of them, or a plan saved by `plan --out`."
    ),
    auto_approve: bool = typer.Option(False, "--auto-approve", help="Do not ask for confirmation."),
    allow_data_loss: bool = typer.Option(
        False, "--allow-data-loss", help="Let a detached shared VMDK be deleted (never a LUN's data)."
    ),
    parallelism: int = PARALLELISM,
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    skip_guest: bool = SKIP_GUEST,
    state_path: str | None = STATE,
    state_dir: str | None = STATE_DIR,
    server: str | None = SERVER,
    user: str | None = USER,
    ca_file: str | None = CA_FILE,
    insecure: bool | None = INSECURE,
) -> int:
    """Make the changes in vCenter, in order, and record them in the state.

    With a saved plan, apply exactly that plan, or refuse if vCenter or a desired file
    changed since it was made. On a terminal it asks for `yes`; without one it needs
    --auto-approve. Independent clusters of a directory are applied in parallel; clusters
    that share a VM, a host or a LUN one after the other.
    Exit codes: 0 applied (or nothing to do), 1 error.
    """
    saved = read_saved(target) if is_saved_plan(target) else None
    if saved is not None:
        desired_list = [load_desired(Path(p.desired_file)) for p in saved]
        for plan, desired in zip(saved, desired_list, strict=True):
            if plan.desired_hash != desired.hash:
                raise StaleStateError(
                    f"the plan {target} is stale: {desired.path} changed since it was made; run `mscsctl plan` again"
                )
        fleet_root = desired_list[0].path.parent if len(desired_list) > 1 else None
        targets = Targets(fleet_root or desired_list[0].path, fleet_root is not None, desired_list)
    else:
        targets = load_targets(target)
    states = StateOptions(state_path, state_dir, targets)
    with connect(server, user, ca_file, insecure) as session:
        if saved is not None:
            observed = observe_all(session, targets.desired)
            reasons = [r for plan in saved for r in stale_reasons(plan, observed[plan.cluster])]
            if reasons:
                raise StaleStateError(
                    f"the plan {target} is stale, vCenter changed since it was made: "
                    + "; ".join(reasons)
                    + ". Run `mscsctl plan` again."
                )
            plans = saved
        else:
            plans, observed = make_plans(session, targets, states, skip_guest=skip_guest)
        if not as_json:
            print_plans(plans)
        if not any(p.has_changes for p in plans):
            if as_json:
                output.print_json({"clusters": [_result(p.cluster, None) for p in plans], "changes": 0})
            return 0
        if saved is None and not auto_approve:
            _confirm()
    by_name = {d.name: d for d in targets.desired}
    todo = [by_name[p.cluster] for p in plans if p.has_changes]
    plan_of = {p.cluster: p for p in plans}
    lanes = conflict_lanes(todo, observed)
    results: dict[str, ApplyReport | Exception] = {}
    settings = session.settings

    def run_lane(lane: list[Desired]) -> None:
        from providers.vcenter.connection import Session

        with Session(settings) as lane_session:
            for desired in lane:
                try:
                    results[desired.name] = _apply_one(
                        lane_session,
                        desired,
                        plan_of[desired.name],
                        observed[desired.name],
                        states.backend(desired),
                        allow_data_loss=allow_data_loss,
                        fleet=len(todo) > 1,
                    )
                except MscsError as exc:
                    results[desired.name] = exc

    if len(lanes) == 1:
        run_lane(lanes[0])
    else:
        with ThreadPoolExecutor(max_workers=min(parallelism, len(lanes))) as pool:
            for future in [pool.submit(run_lane, lane) for lane in lanes]:
                future.result()
    return _report(plans, results, as_json)


def _apply_one(
    session: Any, desired: Desired, plan: Plan, observed: Observed, backend: Any, *, allow_data_loss: bool, fleet: bool
) -> ApplyReport:
    from providers.vcenter.actions import VCenterExecutor

    with locked(backend, "apply"):
        state = read_state(backend, desired)
        executor = VCenterExecutor(
            session,
            observed,
            allow_data_loss=allow_data_loss,
            guest_nodes={getattr(n, "vm", None) or n.physical: n for n in desired.cluster.spec.nodes},
            env=dict(os.environ),
        )
        recorder = _StateRecorder(backend, state, desired)
        report = apply_plan(plan, executor, recorder, _progress(plan, fleet))
        recorder.finish()
    return report


def _result(cluster: str, result: ApplyReport | Exception | None) -> dict[str, Any]:
    if result is None:
        return {"cluster": cluster, "status": "no changes", "done": [], "skipped": []}
    if isinstance(result, Exception):
        return {"cluster": cluster, "status": "failed", "error": str(result)}
    return {
        "cluster": cluster,
        "status": "applied",
        "done": [o.action.id for o in result.done],
        "skipped": [o.action.id for o in result.skipped],
    }


def _report(plans: list[Plan], results: dict[str, ApplyReport | Exception], as_json: bool) -> int:
    failed = {name: r for name, r in results.items() if isinstance(r, Exception)}
    if as_json:
        rows = [_result(p.cluster, results.get(p.cluster)) for p in plans]
        changes = sum(len(r.done) for r in results.values() if isinstance(r, ApplyReport))
        output.print_json({"clusters": rows, "changes": changes})
    else:
        console = output.stdout()
        for plan in plans:
            result = results.get(plan.cluster)
            if isinstance(result, ApplyReport):
                console.print(
                    f"{plan.cluster}: apply complete: {len(result.done)} done, "
                    f"{len(result.skipped)} already satisfied.",
                    highlight=False,
                    markup=False,
                )
    for name, exc in failed.items():
        output.error(f"{name}: {exc}" if len(plans) > 1 else str(exc))
    if failed:
        raise typer.Exit(1)
    return 0


def _confirm() -> None:
    if not output.interactive():
        raise MscsError("not a terminal: refusing to apply without --auto-approve (or apply a saved plan)")
    output.stdout().print("Apply these actions? Only 'yes' is accepted: ", end="")
    answer = sys.stdin.readline().strip()
    if answer != "yes":
        raise MscsError("apply cancelled")


class _StateRecorder:
    """Writes the state after every outcome, so it never lags vCenter by more than one call."""

    def __init__(self, backend: Any, state: State | None, desired: Desired) -> None:
        self.backend = backend
        self.serial = state.serial if state is not None else None
        self.state = state or State.new(desired.cluster.name, desired.hash)
        self.desired = desired

    def __call__(self, outcome: Any) -> None:
        now = utc_now()
        new = record_outcome(self.state, outcome, now)
        if outcome.action.kind is ActionKind.POWER_ON and "nics" in outcome.record:
            vm = outcome.action.target
            new = record_nic_slots(
                new, self.desired.cluster, vm, outcome.record.get("vm_moref"), outcome.record["nics"], now
            )
        if new != self.state or self.serial is None:
            self._write(new)

    def finish(self) -> None:
        self._write(self.state.with_desired_hash(self.desired.hash))

    def _write(self, state: State) -> None:
        written = self.backend.write(state, expected_serial=self.serial)
        self.state, self.serial = written, written.serial


_print_lock = threading.Lock()


def _progress(plan: Plan, fleet: bool) -> Any:
    total = len(plan.actions)
    counter = {"n": 0}
    prefix = f"{plan.cluster}: " if fleet else ""

    def report(step: list[Action], phase: str) -> None:
        if phase == "start":
            counter["n"] += len(step)
            kinds = ", ".join(sorted({str(a.kind) for a in step}))
            target = (
                step[0].batch.split("/", 1)[-1]
                if step[0].batch and step[0].batch.startswith("vcluster/")
                else (step[0].target)
            )
            with _print_lock:
                output.progress(
                    f"{prefix}[{counter['n']}/{total}] {target}: {kinds}",
                    cluster=plan.cluster,
                    step=counter["n"],
                    total=total,
                    target=target,
                    kinds=kinds,
                )

    return report
