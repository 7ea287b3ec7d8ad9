"""`mscsctl graph`: a plan's actions and what each waits for, as Mermaid or Graphviz DOT."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from reconciler.cli import app, output
from reconciler.cli.options import CA_FILE, INSECURE, SERVER, SKIP_GUEST, STATE, STATE_DIR, USER, run_options
from reconciler.graph import GraphFormat, fleet_graph
from reconciler.plan_file import saved_plans_at
from reconciler.run import plan_file


@app.command("graph")
@output.reports_errors
def graph_command(
    target: Path = typer.Argument(
        ...,
        help="Desired-state file (YAML), a directory of them, or a plan saved by `plan --out` (needs no vCenter).",
    ),
    fmt: GraphFormat = typer.Option(
        GraphFormat.MERMAID,
        "--format",
        help="mermaid (GitHub and GitLab render it in Markdown) or dot (Graphviz: `dot -Tsvg`).",
        case_sensitive=False,
    ),
    skip_guest: bool = SKIP_GUEST,
    state_path: str | None = STATE,
    state_dir: str | None = STATE_DIR,
    server: str | None = SERVER,
    user: str | None = USER,
    ca_file: str | None = CA_FILE,
    insecure: bool | None = INSECURE,
) -> int:
    """Draw the plan: its actions in order, grouped by host, vSphere cluster and node, with their dependencies.

    A saved plan is drawn as it is; a desired file (or directory) is planned first, which
    reads vCenter as `plan` does. Exit codes: 0 success, 1 error.
    """
    plans = saved_plans_at(target)
    if plans is None:
        plans = plan_file(target, run_options(server, user, ca_file, insecure, state_path, state_dir, skip_guest)).plans
    sys.stdout.write(fleet_graph(plans, fmt))
    return 0
