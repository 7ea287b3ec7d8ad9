"""A fleet of clusters read together, and split into lanes that can be applied side by side.

A fleet is observed in one session and a constant number of round trips per datacenter,
however many clusters it holds; the guests are asked in parallel. Clusters that share a
VM, a host or a LUN are put in one lane, so two applies never change the same object at once.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from reconciler.observed import Observed, ObservedGuest
from reconciler.spec import PhysicalNode, VmNode
from reconciler.workspace import Desired

if TYPE_CHECKING:
    from providers.vcenter.connection import Session

GUEST_PARALLELISM = 10


def observe_all(session: Session, desired: list[Desired]) -> dict[str, Observed]:
    """One read per datacenter for all the clusters in it; cluster name -> its datacenter's view."""
    from providers.vcenter.observe import observe

    by_dc: dict[str, list[Desired]] = {}
    for d in desired:
        by_dc.setdefault(d.cluster.spec.datacenter, []).append(d)
    out: dict[str, Observed] = {}
    for dc, group in by_dc.items():
        vms = sorted({vm for d in group for vm in d.cluster.spec.vm_names})
        prefixes = sorted(
            {k.split(".", 1)[0] + "." for d in group for k in d.cluster.spec.host_options or {}} or {"Disk."}
        )
        observed = observe(session, dc, vms, tuple(prefixes))
        for d in group:
            out[d.name] = observed
    return out


def with_guests(
    session: Session,
    desired: list[Desired],
    observed: dict[str, Observed],
    env: Mapping[str, str] | None = None,
) -> dict[str, Observed]:
    """Each cluster's view with its nodes' guest facts added (the disk timeout, or why not).

    Guests are asked in parallel (each question is a few round trips and a program run in
    the guest); a guest that cannot be asked is a per-node reason, never a failed plan.
    """
    from providers.guest.service import observe_node

    environ = os.environ if env is None else env
    jobs = [(d, node) for d in desired for node in d.cluster.spec.nodes]
    if not jobs:
        return observed

    def ask(job: tuple[Desired, VmNode | PhysicalNode]) -> tuple[str, ObservedGuest]:
        d, node = job
        vm = observed[d.name].vms.get(node.vm) if isinstance(node, VmNode) else None
        return d.name, observe_node(node, session=session, vm=vm, env=environ)

    with ThreadPoolExecutor(max_workers=min(GUEST_PARALLELISM, len(jobs))) as pool:
        results = list(pool.map(ask, jobs))
    out = {}
    for d in desired:
        guests = {g.node: g for name, g in results if name == d.name}
        out[d.name] = observed[d.name].model_copy(update={"guests": guests})
    return out


def conflict_lanes(desired: list[Desired], observed: dict[str, Observed]) -> list[list[Desired]]:
    """Clusters that share a VM, a host (host options, reservations) or a LUN, in one lane.

    Lanes run in parallel; the clusters of a lane run one after the other, in file order,
    so two applies never change the same object at once.
    """
    parent = list(range(len(desired)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owner: dict[str, int] = {}
    for i, d in enumerate(desired):
        spec = d.cluster.spec
        obs = observed.get(d.name)
        keys = {f"vm:{vm}" for vm in spec.vm_names}
        keys |= {f"lun:{disk.lun}" for disk in spec.shared_disks.disks if hasattr(disk, "lun")}
        if obs is not None:
            keys |= {f"host:{obs.vms[vm].host}" for vm in spec.vm_names if vm in obs.vms}
        for key in keys:
            if key in owner:
                parent[find(i)] = find(owner[key])
            else:
                owner[key] = i
    lanes: dict[int, list[Desired]] = {}
    for i, d in enumerate(desired):
        lanes.setdefault(find(i), []).append(d)
    return list(lanes.values())
