"""Field paths of the desired file, in its YAML names, for locating findings."""

from __future__ import annotations

from reconciler.findings import FieldPath
from reconciler.spec import PhysicalNode, VmNode

SPEC: FieldPath = ("spec",)
TOPOLOGY: FieldPath = ("spec", "topology")
GUEST_OS: FieldPath = ("spec", "guestOS")
NODES: FieldPath = ("spec", "nodes")
CONTROLLER: FieldPath = ("spec", "sharedDisks", "controller")
DISKS: FieldPath = ("spec", "sharedDisks", "disks")
NETWORKS: FieldPath = ("spec", "networks")
HOST_OPTIONS: FieldPath = ("spec", "hostOptions")
PLACEMENT: FieldPath = ("spec", "placement")
GUEST: FieldPath = ("spec", "guest")


def node(index: int, node: VmNode | PhysicalNode | None = None) -> FieldPath:
    """The node's name field (`vm:` or `physical:`), or the node itself."""
    if isinstance(node, VmNode):
        return (*NODES, index, "vm")
    if isinstance(node, PhysicalNode):
        return (*NODES, index, "physical")
    return (*NODES, index)


def disk(index: int, field: str | None = None) -> FieldPath:
    return (*DISKS, index, field) if field else (*DISKS, index)


def network(role: str, field: str | None = None) -> FieldPath:
    return (*NETWORKS, role, field) if field else (*NETWORKS, role)
