"""Rules that the names in the file exist in vCenter: VMs, port groups, datastores."""

from __future__ import annotations

from collections.abc import Iterator

from reconciler.findings import Finding
from reconciler.rules import paths
from reconciler.rules.catalogue import RuleContext, rule
from reconciler.rules.storage import file_datastores


def _known(name: str, names: list[str]) -> str:
    near = [n for n in names if n.casefold() == name.casefold()]
    return f" (vCenter has {near[0]}: names are case-sensitive)" if near else ""


@rule(
    "MSCS-INV-001",
    title="Each VM node exists in the datacenter",
    source="mscsctl configures existing virtual machines",
    needs_observed=True,
)
def vm_exists(ctx: RuleContext) -> Iterator[Finding]:
    assert ctx.observed is not None
    for index, node in ctx.vm_nodes:
        if node.vm not in ctx.observed.vms:
            yield ctx.finding(
                paths.node(index, node),
                f"no virtual machine named {node.vm} in datacenter {ctx.observed.datacenter}"
                f"{_known(node.vm, list(ctx.observed.vms))}",
            )


@rule(
    "MSCS-INV-002",
    title="Each port group exists in the datacenter",
    source="mscsctl connects adapters to existing port groups",
    needs_observed=True,
)
def portgroup_exists(ctx: RuleContext) -> Iterator[Finding]:
    assert ctx.observed is not None
    for role, net in ctx.spec.networks.by_role():
        if net is not None and net.portgroup not in ctx.observed.networks:
            yield ctx.finding(
                paths.network(role, "portgroup"),
                f"no port group named {net.portgroup} in datacenter {ctx.observed.datacenter}"
                f"{_known(net.portgroup, ctx.observed.networks)}",
            )


@rule(
    "MSCS-INV-003",
    title="Each datastore named for mapping files or shared VMDKs exists",
    source="mscsctl places files on existing datastores",
    needs_observed=True,
)
def datastore_exists(ctx: RuleContext) -> Iterator[Finding]:
    assert ctx.observed is not None
    for path, name, _ in file_datastores(ctx):
        if name not in ctx.observed.datastores:
            yield ctx.finding(
                path,
                f"no datastore named {name} in datacenter {ctx.observed.datacenter}"
                f"{_known(name, list(ctx.observed.datastores))}",
            )
