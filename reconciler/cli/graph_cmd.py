"""`mscsctl graph`: a plan's actions and what each waits for, or the cluster itself, as Mermaid or Graphviz DOT."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path

import typer

from reconciler.cli import app, output
from reconciler.cli.options import (
    with_run_options,
)
from reconciler.errors import MscsError
from reconciler.graph import GraphFormat, fleet_graph
from reconciler.plan_file import saved_plans_at
from reconciler.run import RunOptions, plan_file, read_clusters
from reconciler.topology import ClusterView, fleet_topology


class GraphView(StrEnum):
    PLAN = "plan"
    TOPOLOGY = "topology"


@app.command("graph")
@output.reports_errors
@with_run_options(lock=False)
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
    view: GraphView = typer.Option(
        GraphView.PLAN,
        "--view",
        help="plan: the plan's actions and what each waits for. topology: the cluster as vCenter shows it "
        "and as the file wants it, differences marked (a desired file or directory, not a saved plan).",
        case_sensitive=False,
    ),
    *,
    options: RunOptions,
) -> int:
    """Draw the plan (its actions in order, grouped by host, vSphere cluster and node, with their
    dependencies), or with `--view topology` the cluster: nodes on their hosts, shared controller,
    disks and LUNs, adapters on their port groups, the VM-VM rule.

    A saved plan is drawn as it is; a desired file (or directory) is planned first, which
    reads vCenter as `plan` does. The topology reads vCenter and the state as `plan` does,
    never the guests, and changes nothing. Exit codes: 0 success, 1 error.
    """
    if view is GraphView.TOPOLOGY:
        sys.stdout.write(fleet_topology(_cluster_views(target, options), fmt))
        return 0
    plans = saved_plans_at(target)
    if plans is None:
        plans = plan_file(target, options).plans
    sys.stdout.write(fleet_graph(plans, fmt))
    return 0


def _cluster_views(target: Path, options: RunOptions) -> list[ClusterView]:
    """Each desired file with what vCenter shows (one read for the fleet) and its state's record."""
    if saved_plans_at(target) is not None:
        raise MscsError(
            f"{target} is a saved plan: --view topology draws a desired file or a directory of them "
            "(the plan names its file in desired_file)"
        )
    return [
        ClusterView(r.desired.cluster, r.observed, r.state.managed() if r.state else None)
        for r in read_clusters(target, options)
    ]
