"""A setting inside a node's guest: the Windows disk timeout (TimeOutValue)."""

from __future__ import annotations

from collections.abc import Iterator

from reconciler.address import Address, Scope
from reconciler.kinds.base import ActionKind, Context, Managed, ObservedSide, Payload, ResourceKind, fixed
from reconciler.kinds.facts import guest_plannable
from reconciler.observed import Observed
from reconciler.spec import FailoverCluster

NAME = "guest"
DISK_TIMEOUT = "diskTimeout"
UNKNOWN_POWERED_OFF = "unknown (powered off)"


class GuestSettingPayload(Payload):
    seconds: int | str | None  # None: absent in the guest; a sentence where it cannot be read yet


def address(cluster: FailoverCluster, node: str) -> Address:
    return Address.node(cluster.name, node, NAME, DISK_TIMEOUT)


def desired(cluster: FailoverCluster, ctx: Context, observed: Observed) -> Iterator[tuple[Address, Payload]]:
    for node in cluster.spec.node_names:
        if guest_plannable(observed, node):
            yield address(cluster, node), GuestSettingPayload(seconds=cluster.spec.guest.disk_timeout_seconds)


def observe(cluster: FailoverCluster, observed: Observed, ctx: Context, managed: Managed, out: ObservedSide) -> None:
    for node in cluster.spec.node_names:
        if guest_plannable(observed, node):
            guest = observed.guests[node]  # type: ignore[index]
            seconds = guest.timeout_seconds if guest.available else UNKNOWN_POWERED_OFF
            out.tree[address(cluster, node)] = GuestSettingPayload(seconds=seconds)


KIND = ResourceKind(
    name=NAME,
    title="guest setting",
    scope=Scope.NODE,
    payload=GuestSettingPayload,
    state_kind=fixed("guest-setting"),
    actions=(ActionKind.SET_GUEST_SETTING,),
    desired=desired,
    observed=observe,
    doc="Set last on a node, once it runs again with VMware Tools (or through WinRM for a physical node).",
)
