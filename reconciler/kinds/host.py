"""What mscsctl sets on the ESXi hosts: advanced options, and perennial reservation of RDM LUNs."""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import Field

from reconciler.address import Address, Scope
from reconciler.kinds.base import ActionKind, Context, Managed, ObservedSide, Payload, ResourceKind, fixed
from reconciler.observed import Observed
from reconciler.spec import FailoverCluster

OPTION = "option"
LUN = "lun"


class HostOptionPayload(Payload):
    value: int | str | None


class LunReservationPayload(Payload):
    perennially_reserved: bool = Field(alias="perenniallyReserved")


def desired_options(cluster: FailoverCluster, ctx: Context, observed: Observed) -> Iterator[tuple[Address, Payload]]:
    for host in ctx.node_host_names:
        for key, value in (cluster.spec.host_options or {}).items():
            yield Address.host(cluster.name, host, OPTION, key), HostOptionPayload(value=value)


def observe_options(
    cluster: FailoverCluster, observed: Observed, ctx: Context, managed: Managed, out: ObservedSide
) -> None:
    for host_name in ctx.node_host_names:
        host = observed.hosts.get(host_name)
        if host is None:
            continue
        for key in cluster.spec.host_options or {}:
            if key in host.options:
                out.tree[Address.host(cluster.name, host_name, OPTION, key)] = HostOptionPayload(
                    value=host.options[key]
                )


def desired_reservations(
    cluster: FailoverCluster, ctx: Context, observed: Observed
) -> Iterator[tuple[Address, Payload]]:
    for lun, hosts in ctx.reservation_hosts.items():
        for host in hosts:
            yield Address.host(cluster.name, host, LUN, lun), LunReservationPayload(perennially_reserved=True)


def observe_reservations(
    cluster: FailoverCluster, observed: Observed, ctx: Context, managed: Managed, out: ObservedSide
) -> None:
    for lun, hosts in ctx.reservation_hosts.items():
        for host in hosts:
            out.tree[Address.host(cluster.name, host, LUN, lun)] = LunReservationPayload(
                perennially_reserved=observed.hosts[host].luns[lun].perennially_reserved
            )


OPTION_KIND = ResourceKind(
    name=OPTION,
    title="host advanced option",
    scope=Scope.HOST,
    payload=HostOptionPayload,
    state_kind=fixed("host-option"),
    actions=(ActionKind.SET_HOST_OPTION, ActionKind.RESTORE_HOST_OPTION),
    desired=desired_options,
    observed=observe_options,
    doc="Once per host that runs a node, before any node is touched.",
)

LUN_KIND = ResourceKind(
    name=LUN,
    title="perennial LUN reservation",
    scope=Scope.HOST,
    payload=LunReservationPayload,
    state_kind=fixed("perennial-reservation"),
    actions=(ActionKind.RESERVE_LUN, ActionKind.RELEASE_LUN),
    desired=desired_reservations,
    observed=observe_reservations,
    doc="On every host of the nodes' vSphere clusters that sees the RDM LUN.",
)
