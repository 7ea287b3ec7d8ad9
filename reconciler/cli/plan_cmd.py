"""`mscsctl plan` and `mscsctl apply`, for one desired file or a directory of them (a fleet)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from reconciler.cli import app, output
from reconciler.cli.options import (
    CA_FILE,
    INSECURE,
    PARALLELISM,
    SERVER,
    SKIP_GUEST,
    STATE,
    STATE_DIR,
    USER,
    run_options,
)
from reconciler.errors import MscsError
from reconciler.plan import Plan
from reconciler.plan_file import plan_document, write_plans
from reconciler.render import render_text
from reconciler.run import ApplyResult, ApplyStatus, StepStarted, apply_plans, plan_file, plan_for_apply


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
    planned = plan_file(target, run_options(server, user, ca_file, insecure, state_path, state_dir, skip_guest))
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
            output.info(f"Saved the plan to {out}. Apply exactly this plan with: mscsctl apply {out}")
    if detailed_exitcode and planned.has_changes:
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
    planned = plan_for_apply(target, run_options(server, user, ca_file, insecure, state_path, state_dir, skip_guest))
    if not as_json:
        print_plans(planned.plans)
    results = apply_plans(
        planned,
        approve=_approved if not auto_approve else lambda plans: True,
        progress=_progress,
        allow_data_loss=allow_data_loss,
        parallelism=parallelism,
    )
    return _report(results, as_json)


def _approved(plans: list[Plan]) -> bool:
    if not output.interactive():
        raise MscsError("not a terminal: refusing to apply without --auto-approve (or apply a saved plan)")
    output.stdout().print("Apply these actions? Only 'yes' is accepted: ", end="")
    return sys.stdin.readline().strip() == "yes"


def _progress(step: StepStarted) -> None:
    prefix = f"{step.cluster}: " if step.fleet else ""
    kinds = ", ".join(step.kinds)
    output.progress(
        f"{prefix}[{step.number}/{step.total}] {step.target}: {kinds}",
        cluster=step.cluster,
        step=step.number,
        total=step.total,
        target=step.target,
        kinds=kinds,
    )


def _result_json(result: ApplyResult) -> dict[str, Any]:
    if result.status is ApplyStatus.FAILED:
        return {"cluster": result.cluster, "status": str(result.status), "error": str(result.error)}
    return {
        "cluster": result.cluster,
        "status": str(result.status),
        "done": [o.action.id for o in result.done],
        "skipped": [o.action.id for o in result.skipped],
    }


def _report(results: list[ApplyResult], as_json: bool) -> int:
    failed = [r for r in results if r.status is ApplyStatus.FAILED]
    if as_json:
        changes = sum(len(r.done) for r in results)
        output.print_json({"clusters": [_result_json(r) for r in results], "changes": changes})
    else:
        console = output.stdout()
        for result in results:
            if result.status is ApplyStatus.APPLIED:
                console.print(
                    f"{result.cluster}: apply complete: {len(result.done)} done, "
                    f"{len(result.skipped)} already satisfied.",
                    highlight=False,
                    markup=False,
                )
    for result in failed:
        output.error(f"{result.cluster}: {result.error}" if len(results) > 1 else str(result.error))
    if failed:
        raise typer.Exit(1)
    return 0
