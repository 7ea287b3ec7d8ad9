"""`mscsctl destroy`: decommission the cluster(s) of a desired file or directory."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import typer

from reconciler.cli import app, output
from reconciler.cli.options import PARALLELISM, with_run_options
from reconciler.cli.plan_cmd import apply_and_report
from reconciler.errors import MscsError
from reconciler.plan_file import saved_plans_at
from reconciler.run import RunOptions


@app.command("destroy")
@output.reports_errors
@with_run_options(guest=False, target=True)
def destroy_command(
    target: Path = typer.Argument(..., help="Desired-state file (YAML), or a directory of them (one cluster each)."),
    auto_approve: bool = typer.Option(False, "--auto-approve", help="Do not ask for confirmation."),
    allow_data_loss: bool = typer.Option(
        False,
        "--allow-data-loss",
        help="Delete the shared VMDKs once detached and no VM uses them (a LUN's data is never touched).",
    ),
    parallelism: int = PARALLELISM,
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    *,
    options: RunOptions,
) -> int:
    """Take away what mscsctl set up for the cluster, in the reverse order of apply, and record it as destroyed.

    Node by node (the last node first), each powered off only when a removal needs it and
    powered on again after: the cluster's disks detached (a LUN's data and its RDM mapping
    file kept; a shared VMDK kept unless --allow-data-loss), the shared controller and the
    adapters mscsctl added removed; then its DRS/HA overrides and VM-VM rule; then the LUN
    reservations and host options it set. Only what the state records as mscsctl's and
    vCenter still shows so; everything else is kept and listed. The nodes' own disks are
    never touched. The plan is shown and asked for as by apply (--auto-approve); the states
    are locked throughout. A second destroy has nothing to do. `plan --destroy --out PLAN`
    saves the same plan for `apply PLAN`. Exit codes: 0 done (or nothing to do), 1 error.
    """
    if saved_plans_at(target) is not None:
        raise MscsError(f"{target} is a saved plan: apply a saved destroy plan with `mscsctl apply {target}`")
    destroying = replace(options, destroy=True)
    return apply_and_report(target, destroying, auto_approve, allow_data_loss, parallelism, as_json)
