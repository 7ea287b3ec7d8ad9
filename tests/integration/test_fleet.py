"""A fleet of 20 clusters in one directory: observed together, planned, applied in parallel,
each with its own state."""

from __future__ import annotations

import json

import pytest
from pyVmomi import vim

from labctl import find, prop
from tests.fleet import write_fleet
from tests.integration.cli import run

pytestmark = pytest.mark.slow

FLEET = 20


def test_fleet_of_twenty_plans_and_applies_in_parallel_with_per_cluster_state(lab_factory, tmp_path):
    lab = lab_factory(
        {"datacenter": "DC1", "credentials": {"username": "administrator@vsphere.local", "password": "Lab-Passw0rd!"}},
        fleet=FLEET,
    )
    fleet = tmp_path / "fleet"
    write_fleet(FLEET, fleet)
    planned = run(lab, "plan", str(fleet), "--detailed-exitcode", "--json", "--skip-guest")
    assert planned.code == 2, planned
    plans = json.loads(planned.out)["plans"]
    assert sorted(p["cluster"] for p in plans) == [f"fleet-{i:02d}" for i in range(1, FLEET + 1)]
    lab.reset_calls()
    started = lab.connect().CurrentTime()
    applied = run(lab, "apply", str(fleet), "--auto-approve", "--parallelism", "10", "--json", timeout=600)
    assert applied.code == 0, applied
    rows = json.loads(applied.out)["clusters"]
    assert {r["status"] for r in rows} == {"applied"}
    # Each cluster has its own state, named after it, in .mscsctl/ next to the files.
    states = sorted(p.name for p in (fleet / ".mscsctl").glob("*.state.json"))
    assert states == [f"fleet-{i:02d}.state.json" for i in range(1, FLEET + 1)]
    assert json.loads((fleet / ".mscsctl" / "fleet-07.state.json").read_text())["cluster"] == "fleet-07"
    stats = lab.calls()
    assert stats.get("ReconfigVM_Task", 0) == FLEET * 2 * 2  # 2 nodes x (disks, NICs): batched
    si = lab.connect()
    # Independent clusters ran at the same time: their power cycles overlap in the event log.
    spans = _power_spans(si, since=started)
    assert len(spans) == FLEET
    overlapping = sum(
        1 for a in spans for b in spans if a < b and spans[a][0] < spans[b][1] and spans[b][0] < spans[a][1]
    )
    assert overlapping > 0, spans
    again = run(lab, "plan", str(fleet), "--detailed-exitcode", "--skip-guest")
    assert again.code == 0, again
    vm = find(si, vim.VirtualMachine, "F13-NODE2")
    disks = [d for d in prop(si, vm, "config.hardware.device") if isinstance(d, vim.vm.device.VirtualDisk)]
    assert sorted(d.backing.fileName for d in disks if d.unitNumber is not None)[-2:] == [
        "[SAN-VMFS-13] fleet-13/data-physical.vmdk",
        "[SAN-VMFS-13] fleet-13/quorum-physical.vmdk",
    ]


def _power_spans(si, since):
    """Cluster number -> (first, last) power event time of its two nodes."""
    spec = vim.event.EventFilterSpec(eventTypeId=["VmPoweredOffEvent", "VmPoweredOnEvent"])
    collector = si.content.eventManager.CreateCollectorForEvents(spec)
    try:
        collector.SetCollectorPageSize(1000)
        events = list(collector.latestPage)
    finally:
        collector.DestroyCollector()
    spans: dict[str, tuple] = {}
    for event in events:
        name = event.vm.name if event.vm else ""
        if not name.startswith("F") or event.createdTime < since:
            continue
        key = name[1:3]
        first, last = spans.get(key, (event.createdTime, event.createdTime))
        spans[key] = (min(first, event.createdTime), max(last, event.createdTime))
    return spans
