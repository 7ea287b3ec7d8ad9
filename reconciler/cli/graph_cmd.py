"""`mscsctl graph`: a plan's actions and what each waits for, as Mermaid or Graphviz DOT."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from pydantic import ValidationError

from reconciler.cli import app, output
from reconciler.cli.plan_cmd import (
    CA_FILE,
    INSECURE,
    SERVER,
    SKIP_GUEST,
    STATE,
    STATE_DIR,
    USER,
    StateOptions,
    make_plans,
    read_saved,
)
from reconciler.cli.workflow import connect, is_saved_plan, load_targets
from reconciler.errors import MscsError
from reconciler.graph import GraphFormat, fleet_graph
from reconciler.plan import Plan


def _saved_plans(path: Path) -> list[Plan]:
    try:
        return read_saved(path)
    except (ValidationError, ValueError, KeyError, TypeError) as exc:
        first = str(exc).splitlines()[0]
        raise MscsError(f"{path}: not a plan saved by `mscsctl plan --out` ({first})") from None


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
    if is_saved_plan(target):
        plans = _saved_plans(target)
    else:
        targets = load_targets(target)
        states = StateOptions(state_path, state_dir, targets)
        with connect(server, user, ca_file, insecure) as session:
            plans, _ = make_plans(session, targets, states, skip_guest=skip_guest)
    sys.stdout.write(fleet_graph(plans, fmt))
    return 0
