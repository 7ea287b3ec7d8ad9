"""A fleet of clusters read together, and split into lanes that can be applied side by side.

A fleet is observed in one session per vCenter (vCenters side by side) and a constant number
of round trips per datacenter, however many clusters it holds; the guests are asked in parallel. Clusters that share a
VM, a host or a LUN are put in one lane, so two applies never change the same object at once;
`run_lanes` runs the lanes side by side.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, TypeVar

from reconciler.errors import MscsError
from reconciler.observed import Observed, ObservedGuest
from reconciler.spec import DEFAULT_HOST_OPTIONS, PhysicalNode, RdmDisk, SharedVmdk, VmNode
from reconciler.workspace import Desired

if TYPE_CHECKING:
    from providers.vcenter.connection import Session

GUEST_PARALLELISM = 10
VCENTER_PARALLELISM = 8  # vCenters read at once
T = TypeVar("T")
R = TypeVar("R")
WAIT_POLL_S = 0.2  # how often the waiting thread looks up (to see a signal)


def observe_all(session: Session, desired: list[Desired]) -> dict[str, Observed]:
    """One read per datacenter for all the clusters in it; cluster name -> its datacenter's view."""
    from providers.vcenter.observe import observe

    by_dc: dict[str, list[Desired]] = {}
    for d in desired:
        by_dc.setdefault(d.cluster.spec.datacenter, []).append(d)
    out: dict[str, Observed] = {}
    for dc, group in by_dc.items():
        vms = sorted({vm for d in group for vm in d.cluster.spec.vm_names})
        # Just the advanced options the plans set, and the datastores the files name.
        option_keys = sorted({k for d in group for k in d.cluster.spec.host_options or {}} | set(DEFAULT_HOST_OPTIONS))
        disks = [disk for d in group for disk in d.cluster.spec.shared_disks.disks]
        # The LUNs whose users are looked for: exactly those of the clusters in play.
        luns = sorted({disk.lun for disk in disks if isinstance(disk, RdmDisk)})
        named = {disk.mapping_datastore for disk in disks if isinstance(disk, RdmDisk)} | {
            disk.datastore for disk in disks if isinstance(disk, SharedVmdk)
        }
        datastores = sorted(name for name in named if name)
        observed = observe(session, dc, vms, option_keys, luns=luns, datastores=datastores)
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


def conflict_lanes(
    desired: list[Desired], observed: dict[str, Observed], vcenters: Mapping[str, str] | None = None
) -> list[list[Desired]]:
    """Clusters that share a VM, a host (host options, reservations) or a LUN, in one lane.

    Lanes run in parallel; the clusters of a lane run one after the other, in file order,
    so two applies never change the same object at once. `vcenters` maps a cluster to its
    vCenter: VM and host names are compared within one vCenter; a LUN (its NAA ID) across
    all, as the same array LUN may be presented to hosts of two vCenters.
    """
    vc = vcenters or {}
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
        where = vc.get(d.name, "")
        keys = {f"vm:{where}:{vm}" for vm in spec.vm_names}
        keys |= {f"lun:{disk.lun.lower()}" for disk in spec.shared_disks.disks if hasattr(disk, "lun")}
        if obs is not None:
            keys |= {f"host:{where}:{obs.vms[vm].host}" for vm in spec.vm_names if vm in obs.vms}
        for key in keys:
            if key in owner:
                parent[find(i)] = find(owner[key])
            else:
                owner[key] = i
    lanes: dict[int, list[Desired]] = {}
    for i, d in enumerate(desired):
        lanes.setdefault(find(i), []).append(d)
    return list(lanes.values())


def side_by_side(work: Callable[[T], R], items: list[T]) -> list[R | MscsError]:
    """`work(item)` for each item, concurrently, in the items' order; an item whose work
    raised an mscsctl error gets the error instead (one vCenter failing is its own)."""

    def one(item: T) -> R | MscsError:
        try:
            return work(item)
        except MscsError as exc:
            return exc

    if len(items) <= 1:
        return [one(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(VCENTER_PARALLELISM, len(items))) as pool:
        return list(pool.map(one, items))


def run_lanes(lanes: list[list[Desired]], parallelism: int, run_lane: Callable[[list[Desired]], None]) -> None:
    """`run_lane` for each lane, at most `parallelism` at once, in daemon threads.

    The calling thread only waits, a little at a time, so that the main thread sees a
    signal while lanes run; and a run told to leave at once is not held up at exit by a
    vCenter call that has no timeout. `run_lane` handles its own errors.
    """
    queue = list(lanes)
    taken = threading.Lock()

    def worker() -> None:
        while True:
            with taken:
                if not queue:
                    return
                lane = queue.pop(0)
            run_lane(lane)

    threads = [
        threading.Thread(target=worker, name=f"mscsctl-lane-{n}", daemon=True)
        for n in range(min(parallelism, len(lanes)))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        while thread.is_alive():
            thread.join(WAIT_POLL_S)
