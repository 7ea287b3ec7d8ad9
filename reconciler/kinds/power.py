"""A node's power state: cluster nodes run; apply powers one off only for a cold change."""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import Field

from reconciler.address import Address, Scope
from reconciler.kinds.base import ActionKind, Context, Managed, ObservedSide, Payload, ResourceKind, fixed
from reconciler.kinds.facts import node_vms
from reconciler.observed import Observed
from reconciler.spec import FailoverCluster

NAME = "power"


class PowerPayload(Payload):
    omit_when_none = frozenset({"waitForTools"})

    state: str  # poweredOn | poweredOff | suspended
    wait_for_tools: bool | None = Field(default=None, alias="waitForTools")


def desired(cluster: FailoverCluster, ctx: Context, observed: Observed) -> Iterator[tuple[Address, Payload]]:
    for vm in ctx.vm_nodes:
        yield Address.node(cluster.name, vm, NAME), PowerPayload(state="poweredOn")


def observe(cluster: FailoverCluster, observed: Observed, ctx: Context, managed: Managed, out: ObservedSide) -> None:
    for vm, node in node_vms(ctx, observed):
        out.tree[Address.node(cluster.name, vm, NAME)] = PowerPayload(state=node.power_state)


KIND = ResourceKind(
    name=NAME,
    title="power state",
    scope=Scope.NODE,
    payload=PowerPayload,
    state_kind=fixed(""),
    actions=(ActionKind.POWER_OFF, ActionKind.POWER_ON),
    desired=desired,
    observed=observe,
    doc="Not recorded in the state. Power-off comes first in a node's actions, power-on last but for guest settings.",
)
