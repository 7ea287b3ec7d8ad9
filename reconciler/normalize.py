"""Desired and observed, turned into the same flat shape: `{Address: Payload}`.

Both trees are keyed by the addresses the plan and the state use, and each value is the
kind's typed payload, so comparing the two says what must be created, changed or detached.
Each resource kind (`reconciler.kinds`) yields its own part of both trees. The desired tree
needs a few facts only vCenter knows (which host runs each node, which hosts of its vSphere
cluster see each LUN, the version), so both functions take the observed model; neither
does I/O.
"""

from __future__ import annotations

from reconciler.kinds import KINDS, Context, Managed, ObservedSide, Tree, Unmanaged
from reconciler.kinds.facts import context, mapping_file, nics_by_role, rule_name, wants_vm_rule
from reconciler.observed import Observed
from reconciler.spec import FailoverCluster

__all__ = [
    "Context",
    "Tree",
    "Unmanaged",
    "context",
    "desired_tree",
    "mapping_file",
    "nics_by_role",
    "observed_tree",
    "rule_name",
    "wants_vm_rule",
]


def desired_tree(cluster: FailoverCluster, ctx: Context, observed: Observed) -> Tree:
    tree: Tree = {}
    for kind in KINDS:
        if kind.desired is not None:
            tree.update(kind.desired(cluster, ctx, observed))
    return tree


def observed_tree(
    cluster: FailoverCluster, observed: Observed, ctx: Context, managed: Managed | None = None
) -> tuple[Tree, list[Unmanaged]]:
    """The same addresses as `desired_tree`, filled from vCenter.

    `managed` is the state's record (address -> resource): a device it names that the file no
    longer describes appears here under its old address, so the diff plans its detach. Any
    other extra device on the shared controller is reported as unmanaged and never touched.
    """
    side = ObservedSide()
    for kind in KINDS:
        if kind.observed is not None:
            kind.observed(cluster, observed, ctx, managed or {}, side)
    return side.tree, side.unmanaged
