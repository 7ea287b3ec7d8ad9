"""Rules over every cluster of a run at once: one LUN, one cluster; one VM, one cluster.

A single file cannot tell that another file of the same run lists its LUN or its VM, so
these run once for the whole run, before any change (`fleet_findings`, called where the
run plans every cluster). Each cluster gets its own finding, located in its own file.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING

from reconciler.findings import Finding
from reconciler.observed import Observed
from reconciler.rules import paths
from reconciler.rules.catalogue import FleetMember, RuleContext, catalogue, rule, target_version
from reconciler.spec import RdmDisk

if TYPE_CHECKING:
    from reconciler.workspace import Desired


# Fleet rules run at plan, once the clusters' vCenter has been read, over every file of the run.
fleet_rule = partial(rule, needs_observed=True, fleet=True)


@fleet_rule(
    "MSCS-SAFE-004",
    title="A LUN is listed by one cluster of the run",
    source="mscsctl: two clusters sharing a LUN overwrite each other's data",
)
def lun_in_one_cluster(ctx: RuleContext) -> Iterator[Finding]:
    for index, disk in enumerate(ctx.spec.shared_disks.disks):
        if not isinstance(disk, RdmDisk):
            continue
        others = [
            f"{m.cluster.name} ({m.file}, disk {d.name})"
            for m in ctx.fleet
            for d in m.cluster.spec.shared_disks.disks
            if isinstance(d, RdmDisk) and d.lun.lower() == disk.lun.lower()
        ]
        if others:
            yield ctx.finding(
                paths.disk(index, "lun"),
                f"{disk.lun} is {ctx.cluster.name}'s disk {disk.name} and is also listed by "
                f"{', '.join(others)}: a LUN serves one cluster, or they destroy each other's data. "
                "Give one of them another LUN",
            )


@fleet_rule(
    "MSCS-SAFE-005",
    title="A VM is a node of one cluster of the run",
    source="mscsctl: a VM's shared bus and disks belong to one cluster; two would detach each other's disks",
)
def vm_in_one_cluster(ctx: RuleContext) -> Iterator[Finding]:
    for index, node in ctx.vm_nodes:
        others = [
            f"{m.cluster.name} ({m.file})" for m in ctx.fleet if m.same_vcenter and node.vm in m.cluster.spec.vm_names
        ]
        if others:
            yield ctx.finding(
                paths.node(index, node),
                f"VM {node.vm} is a node of {ctx.cluster.name} and also of {', '.join(others)}: a VM is a "
                "node of one cluster. Remove it from all files but one",
            )


def fleet_findings(
    desired: Sequence[Desired], observed: Mapping[str, Observed], vcenters: Mapping[str, str] | None = None
) -> list[Finding]:
    """The fleet rules' findings for every cluster of a run, each located in its own file.

    `vcenters` maps a cluster to its vCenter: a VM name is one VM only within a vCenter,
    while a LUN's NAA ID names the same LUN whichever vCenter's hosts see it.
    """
    if len(desired) < 2:
        return []
    vc = vcenters or {}
    rules = [r for r in catalogue() if r.fleet]
    out: list[Finding] = []
    for d in desired:
        members = tuple(
            FleetMember(o.cluster, str(o.path), same_vcenter=vc.get(o.name) == vc.get(d.name))
            for o in desired
            if o is not d
        )
        seen = observed.get(d.name)
        base = RuleContext(
            cluster=d.cluster,
            effective=d.cluster,
            version=target_version(d.cluster, seen),
            observed=seen,
            fleet=members,
        )
        for r in rules:
            if r.versions.applies(base.version):
                out += [d.locate(f) for f in r.check(replace(base, rule=r))]
    return out
