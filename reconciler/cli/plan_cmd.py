"""`mscsctl plan` and `mscsctl apply`, for one desired file or a directory of them (a fleet)."""

from __future__ import annotations

import os
import sys
import traceback
from dataclasses import replace
from pathlib import Path

import typer

from reconciler.cli import app, output
from reconciler.cli.options import (
    PARALLELISM,
    with_run_options,
)
from reconciler.cli.progress import ApplyProgress, apply_totals
from reconciler.errors import MscsError
from reconciler.plan import Plan
from reconciler.plan_file import write_plans
from reconciler.render import render_text
from reconciler.report.json_formats import apply_document, plan_document
from reconciler.run import (
    ApplyResult,
    ApplyStatus,
    Interruption,
    PlanResult,
    RunOptions,
    apply_command_line,
    apply_path,
    plan_exit_code,
    plan_file,
    stop_on_signals,
)


def print_plans(plans: list[Plan]) -> None:
    console = output.stdout()
    for n, plan in enumerate(plans):
        if n:
            console.print("")
        if plan.partial:
            console.print(_partial_line(plan), markup=False, highlight=False)
        console.print(render_text(plan), markup=True, highlight=False)
        for part in plan.unchecked:
            said = "Skipped" if part.on_purpose else "Not checked"
            console.print(f"{said}: {part.summary}", markup=False, highlight=False)


def _partial_line(plan: Plan) -> str:
    if plan.cluster in plan.targets:  # the whole cluster (whatever else was named): only other files left out
        return f"Partial run (--target {plan.cluster}): {plan.cluster} is planned in full, no other cluster."
    return f"Partial plan: only {', '.join(plan.targets)} and what it depends on; the rest of the file is not planned."


def warn_partial(plans: list[Plan]) -> None:
    """On stderr, that a plan is partial (`--target`), as Terraform warns on every `-target`."""
    for plan in plans:
        if plan.partial:
            output.warn(
                f"{plan.cluster}: targeting is in effect ({', '.join(plan.targets)}): this plan may not hold every "
                "change the file asks for; use --target for exceptions, not routinely"
            )


def report_unreached(planned: PlanResult) -> None:
    """One line a cluster whose vCenter could not be read (the other clusters were planned)."""
    for cluster, error in planned.failed.items():
        output.error(f"{cluster}: {error}")


def warn_unchecked(plans: list[Plan]) -> None:
    """On stderr, each part of the file a plan could not check (a pipeline's log shows it),
    what was left out on purpose, and that a plan is partial (`--target`)."""
    warn_partial(plans)
    for plan in plans:
        for part in plan.unchecked:
            if part.on_purpose:
                output.info(f"{plan.cluster}: skipped: {part.summary}")
            else:
                output.warn(f"{plan.cluster}: not checked: {part.summary}")


@app.command("plan")
@output.reports_errors
@with_run_options(target=True)
def plan_command(
    target: Path = typer.Argument(..., help="Desired-state file (YAML), or a directory of them (one cluster each)."),
    out: Path | None = typer.Option(None, "--out", help="Save the plan (JSON, mode 0600) for `apply PLAN`."),
    as_json: bool = typer.Option(False, "--json", help="Print the plan as JSON (docs/plan-format.md)."),
    markdown: bool = typer.Option(False, "--markdown", help="Print the plan as Markdown, for a merge request."),
    detailed_exitcode: bool = typer.Option(
        False,
        "--detailed-exitcode",
        help="Exit 0 when nothing changes, 2 when there are changes, 1 on error or when a part of the file "
        "could not be checked (--skip-guest: left out on purpose, not counted).",
    ),
    destroy: bool = typer.Option(
        False, "--destroy", help="Plan the decommissioning of the cluster(s) instead (what `mscsctl destroy` does)."
    ),
    *,
    options: RunOptions,
) -> int:
    """Show, in order, what must change in vCenter for the nodes to match the desired file(s).

    Each cluster's state is locked while it is planned (--lock-timeout: how long to wait
    for a lock another run holds). Exit codes: 0 success (with --detailed-exitcode: no
    changes), 1 error (with --detailed-exitcode also: a part of the file could not be checked,
    e.g. a guest not reached), 2 changes present (with --detailed-exitcode). Each unchecked
    part is named in every output and on stderr; --skip-guest leaves the guests out on
    purpose (named as skipped, not counted). --target ADDRESS plans only that cluster, node
    or object and what it depends on; the plan says it is partial. --destroy plans the
    decommissioning (README, "Decommissioning a cluster"); `apply PLAN` applies it when saved.
    """
    if destroy:
        options = replace(options, destroy=True)
    planned = plan_file(target, options, on_lock_wait=output.info)
    plans, fleet = planned.plans, planned.targets.is_fleet
    if out is not None:
        write_plans(out, plans, fleet=fleet)
    if as_json:
        output.print_json(plan_document(plans, fleet=fleet))
    elif markdown:
        from reconciler.report.markdown import plan_markdown

        sys.stdout.write(plan_markdown(plans))
    else:
        print_plans(plans)
        if out is not None:
            output.info(f"Saved the plan to {out}. Apply exactly this plan with: {apply_command_line(out, options)}")
    warn_unchecked(plans)
    report_unreached(planned)
    code = plan_exit_code(plans, detailed=detailed_exitcode)
    if code == 1 and not planned.failed:
        output.error(
            "part of the file could not be checked (named above): exit 1; --skip-guest leaves the guests out on purpose"
        )
    if planned.failed:
        raise typer.Exit(1)
    if code:
        raise typer.Exit(code)
    return 0


@app.command("apply")
@output.reports_errors
@with_run_options(target=True)
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
    *,
    options: RunOptions,
) -> int:
    """Make the changes in vCenter, in order, and record them in the state.

    With a saved plan, apply exactly that plan, or refuse if it was edited, or if vCenter
    or a desired file changed since it was made. On a terminal it asks for `yes`; without
    one it needs --auto-approve. Every cluster's state is locked from before the plan to
    the end (--lock-timeout: how long to wait for a lock another run holds). Independent
    clusters of a directory are applied in parallel; clusters that share a VM, a host or a
    LUN one after the other. SIGINT or SIGTERM lets the vCenter call in flight end, then
    stops; a second one stops at once.
    Exit codes: 0 applied (or nothing to do), 1 error. A part of the file not done because
    its plan could not check it (a guest not reached) is said at the end and on stderr.
    """
    return apply_and_report(target, options, auto_approve, allow_data_loss, parallelism, as_json)


def apply_and_report(
    target: Path, options: RunOptions, auto_approve: bool, allow_data_loss: bool, parallelism: int, as_json: bool
) -> int:
    """Plan (or read the saved plan), show, approve, apply and report: `apply`, and `destroy`'s plans."""
    interruption = Interruption()
    progress = ApplyProgress()

    def show(planned: PlanResult) -> None:
        progress.expect(planned.plans)
        warn_partial(planned.plans)
        if not as_json:
            print_plans(planned.plans)
            totals = apply_totals(planned.plans)
            if totals is not None:
                output.stdout().print(totals, markup=False, highlight=False)
        if planned.failed:
            output.info(f"Not planned ({len(planned.failed)}): their vCenter could not be read; the rest goes on.")

    with stop_on_signals(interruption, output.info), progress:
        results = apply_path(
            target,
            options,
            approve=_approved if not auto_approve else lambda plans: True,
            planned=show,
            progress=progress,
            allow_data_loss=allow_data_loss,
            parallelism=parallelism,
            interruption=interruption,
            on_lock_wait=output.info,
        )
    return _report(results, as_json)


def _approved(plans: list[Plan]) -> bool:
    if not output.interactive():
        raise MscsError("not a terminal: refusing to apply without --auto-approve (or apply a saved plan)")
    gone = " They decommission the cluster: what the plan keeps stays." if any(p.destroy for p in plans) else ""
    output.stdout().print(f"Apply these actions?{gone} Only 'yes' is accepted: ", end="")
    return sys.stdin.readline().strip() == "yes"


def _report(results: list[ApplyResult], as_json: bool) -> int:
    """Every cluster's outcome: applied, no changes, failed, interrupted, not started; exit 1 on any failure."""
    failed = [r for r in results if r.error is not None]
    fleet = len(results) > 1
    if as_json:
        output.print_json(apply_document(results))
    else:
        console = output.stdout()
        for result in results:
            not_done = "; not done: " + "; ".join(u.summary for u in result.unchecked) if result.unchecked else ""
            if result.status is ApplyStatus.APPLIED:
                line = (
                    f"{result.cluster}: apply complete: {len(result.done)} done, "
                    f"{len(result.skipped)} already satisfied{not_done}."
                )
            elif result.status is ApplyStatus.NO_CHANGES and (fleet or not_done):
                line = f"{result.cluster}: no changes{not_done}."
            elif result.status is ApplyStatus.NOT_STARTED:
                line = f"{result.cluster}: not started: {result.note}."
            else:
                continue
            console.print(line, highlight=False, markup=False)
    for result in failed:
        output.error(f"{result.cluster}: {result.error}" if fleet else str(result.error))
        cause = result.error.__cause__ if result.error is not None else None
        if cause is not None and os.environ.get("MSCSCTL_DEBUG"):
            traceback.print_exception(cause, file=sys.stderr)
    for result in results:
        for part in result.unchecked:
            output.warn(f"{result.cluster}: not done: {part.summary}")
    if failed:
        raise typer.Exit(1)
    return 0
