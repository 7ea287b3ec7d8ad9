"""`mscsctl plan` and `mscsctl apply`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer

from reconciler.apply import apply_plan
from reconciler.cli import app, output
from reconciler.cli.workflow import (
    Desired,
    connect,
    is_saved_plan,
    load_desired,
    observe_cluster,
    state_backend,
    write_private,
)
from reconciler.errors import MscsError, StaleStateError
from reconciler.plan import Action, Plan
from reconciler.planner import build_plan, stale_reasons
from reconciler.record import managed_view, record_outcome
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
SKIP_GUEST = typer.Option(False, "--skip-guest", help="Leave the guest side (disk timeout) out.")


def _make_plan(desired: Desired, session: Any, state: State | None) -> Plan:
    observed = observe_cluster(session, desired)
    return build_plan(
        desired.cluster,
        observed,
        managed=managed_view(state),
        desired_file=str(desired.path),
        desired_hash=desired.hash,
        created_at=utc_now(),
        locate=desired.locate,
    )


@app.command("plan")
@output.reports_errors
def plan_command(
    file: Path = typer.Argument(..., help="Desired-state file (YAML)."),
    out: Path | None = typer.Option(None, "--out", help="Save the plan (JSON, mode 0600) for `apply PLAN`."),
    as_json: bool = typer.Option(False, "--json", help="Print the plan as JSON (docs/plan-format.md)."),
    detailed_exitcode: bool = typer.Option(
        False, "--detailed-exitcode", help="Exit 0 when nothing changes, 2 when there are changes, 1 on error."
    ),
    skip_guest: bool = SKIP_GUEST,
    state_path: str | None = STATE,
    server: str | None = SERVER,
    user: str | None = USER,
    ca_file: str | None = CA_FILE,
    insecure: bool | None = INSECURE,
) -> int:
    """Show, in order, what must change in vCenter for the nodes to match FILE.

    Exit codes: 0 success (with --detailed-exitcode: no changes), 1 error, 2 changes present
    (with --detailed-exitcode).
    """
    desired = load_desired(file)
    backend = state_backend(desired.path, state_path, desired.cluster.name)
    state = backend.read()
    with connect(server, user, ca_file, insecure) as session:
        plan = _make_plan(desired, session, state)
    if out is not None:
        write_private(out, json.dumps(plan_json(plan), indent=2) + "\n")
    if as_json:
        output.print_json(plan_json(plan))
    else:
        output.stdout().print(render_text(plan), markup=True, highlight=False)
        if out is not None:
            output.info(f"Saved the plan to {out}. Apply exactly this plan with: mscsctl apply {out}")
    if detailed_exitcode and plan.has_changes:
        raise typer.Exit(2)
    return 0


@app.command("apply")
@output.reports_errors
def apply_command(
    target: Path = typer.Argument(..., help="Desired-state file (YAML), or a plan saved by `plan --out`."),
    auto_approve: bool = typer.Option(False, "--auto-approve", help="Do not ask for confirmation."),
    allow_data_loss: bool = typer.Option(
        False, "--allow-data-loss", help="Let a detached shared VMDK be deleted (never a LUN's data)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    skip_guest: bool = SKIP_GUEST,
    state_path: str | None = STATE,
    server: str | None = SERVER,
    user: str | None = USER,
    ca_file: str | None = CA_FILE,
    insecure: bool | None = INSECURE,
) -> int:
    """Make the changes of the plan in vCenter, in order, and record them in the state.

    With a saved plan, apply exactly that plan, or refuse if vCenter or the desired file
    changed since it was made. On a terminal it asks for `yes`; without a terminal it
    needs --auto-approve. Exit codes: 0 applied (or nothing to do), 1 error.
    """
    saved = plan_from_json(target.read_text(encoding="utf-8")) if is_saved_plan(target) else None
    desired = load_desired(Path(saved.desired_file) if saved else target)
    if saved is not None and saved.desired_hash != desired.hash:
        raise StaleStateError(
            f"the plan {target} is stale: {desired.path} changed since it was made; run `mscsctl plan` again"
        )
    backend = state_backend(desired.path, state_path, desired.cluster.name)
    with connect(server, user, ca_file, insecure) as session:
        with locked(backend, "apply"):
            state = backend.read()
            if saved is not None:
                from reconciler.cli.workflow import observe_cluster as _observe

                reasons = stale_reasons(saved, _observe(session, desired))
                if reasons:
                    raise StaleStateError(
                        f"the plan {target} is stale, vCenter changed since it was made: "
                        + "; ".join(reasons)
                        + ". Run `mscsctl plan` again."
                    )
                plan = saved
                observed = None
            else:
                plan = _make_plan(desired, session, state)
                observed = None
            if not as_json:
                output.stdout().print(render_text(plan), markup=True, highlight=False)
            if not plan.has_changes:
                if as_json:
                    output.print_json({"cluster": plan.cluster, "done": [], "skipped": [], "changes": 0})
                return 0
            if saved is None and not auto_approve:
                _confirm()
            from providers.vcenter.actions import VCenterExecutor

            observed = observe_cluster(session, desired) if observed is None else observed
            executor = VCenterExecutor(session, observed, allow_data_loss=allow_data_loss)
            recorder = _StateRecorder(backend, state, desired)
            report = apply_plan(plan, executor, recorder, _progress(len(plan.actions)))
            recorder.finish()
    done, skipped = len(report.done), len(report.skipped)
    if as_json:
        output.print_json(
            {
                "cluster": plan.cluster,
                "done": [o.action.id for o in report.done],
                "skipped": [o.action.id for o in report.skipped],
                "changes": done,
            }
        )
    else:
        output.stdout().print(f"Apply complete: {done} done, {skipped} already satisfied.", highlight=False)
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
        new = record_outcome(self.state, outcome, utc_now())
        if new != self.state or self.serial is None:
            self._write(new)

    def finish(self) -> None:
        self._write(self.state.with_desired_hash(self.desired.hash))

    def _write(self, state: State) -> None:
        written = self.backend.write(state, expected_serial=self.serial)
        self.state, self.serial = written, written.serial


def _progress(total: int) -> Any:
    counter = {"n": 0}

    def report(step: list[Action], phase: str) -> None:
        if phase == "start":
            counter["n"] += len(step)
            kinds = ", ".join(sorted({str(a.kind) for a in step}))
            output.info(f"[{counter['n']}/{total}] {step[0].target}: {kinds}")

    return report
