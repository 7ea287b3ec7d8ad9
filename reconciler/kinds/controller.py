"""The shared controllers of a node (SCSI, or NVMe from vSphere 8.0 U2): one on each bus the
shared disks sit on, all of the file's type and bus sharing, the same on every node. An NVMe
controller's number is its bus: `controller/1` is the NVMe controller 1 when the file's type is
nvme, the SCSI controller on bus 1 otherwise."""

from __future__ import annotations

from collections.abc import Iterator

from reconciler.address import Address, Scope
from reconciler.kinds.base import ActionKind, Context, Managed, ObservedSide, Payload, ResourceKind, fixed
from reconciler.kinds.facts import node_vms, owned, shared_controller
from reconciler.observed import Observed
from reconciler.spec import FailoverCluster

NAME = "controller"


class ControllerPayload(Payload):
    type: str  # lsilogic | lsilogic-sas | pvscsi | nvme
    sharing: str  # none | virtual | physical


def desired(cluster: FailoverCluster, ctx: Context, observed: Observed) -> Iterator[tuple[Address, Payload]]:
    controller = cluster.spec.shared_disks.controller
    if not cluster.spec.shared_disks.disks:
        return
    for vm in ctx.vm_nodes:
        for bus in cluster.spec.shared_buses:
            yield (
                Address.node(cluster.name, vm, NAME, bus),
                ControllerPayload(type=str(controller.type), sharing=str(controller.sharing)),
            )


def observe(cluster: FailoverCluster, observed: Observed, ctx: Context, managed: Managed, out: ObservedSide) -> None:
    for vm, node in node_vms(ctx, observed):
        recorded = owned(managed, cluster.name, vm, NAME)
        buses = cluster.spec.shared_buses if cluster.spec.shared_disks.disks else []
        buses = [*buses, *sorted({int(a.name) for a in recorded if a.name.isdigit()} - set(buses))]
        for bus in buses:
            ctrl = shared_controller(cluster, node, bus)
            if ctrl is not None:
                out.tree[Address.node(cluster.name, vm, NAME, bus)] = ControllerPayload(
                    type=ctrl.type, sharing=ctrl.sharing
                )


KIND = ResourceKind(
    name=NAME,
    title="shared disk controller",
    scope=Scope.NODE,
    payload=ControllerPayload,
    state_kind=fixed("controller"),
    actions=(ActionKind.ADD_CONTROLLER, ActionKind.EDIT_CONTROLLER, ActionKind.REMOVE_CONTROLLER),
    desired=desired,
    observed=observe,
    critical_fields=frozenset({"sharing", "type"}),
    critical_presence=True,
    doc=(
        "Added once per node on each shared bus; edited in place (cold); removed only by destroy, once empty, "
        "when mscsctl added it."
    ),
)
