"""The lab's event record: power and reconfiguration events per VM, with real,
increasing keys and creation times, read through EventManager.QueryEvents and
event history collectors. Proves a rolling power cycle never had both nodes
of a cluster off at the same time."""

from __future__ import annotations

import pytest
from pyVmomi import vim

from labctl import find, wait

POWER_EVENTS = ["VmPoweredOffEvent", "VmPoweredOnEvent"]


def vm_filter(vm, since, types=POWER_EVENTS) -> vim.event.EventFilterSpec:
    return vim.event.EventFilterSpec(
        entity=vim.event.EventFilterSpec.ByEntity(entity=vm, recursion="self"),
        eventTypeId=list(types),
        time=vim.event.EventFilterSpec.ByTime(beginTime=since),
    )


def power_events(si, vms, since) -> list[vim.event.Event]:
    em = si.content.eventManager
    events = []
    for vm in vms:
        events += em.QueryEvents(vm_filter(vm, since))
    return sorted(events, key=lambda e: e.key)


def max_off_together(events: list[vim.event.Event]) -> int:
    """Replay power events in order: the most VMs that were off at once."""
    off: set[str] = set()
    worst = 0
    for e in events:
        if isinstance(e, vim.event.VmPoweredOffEvent):
            off.add(e.vm.vm._moId)
        elif isinstance(e, vim.event.VmPoweredOnEvent):
            off.discard(e.vm.vm._moId)
        worst = max(worst, len(off))
    return worst


def cycle(vm):
    wait(vm.PowerOffVM_Task())
    wait(vm.PowerOnVM_Task())


def test_rolling_power_cycle_never_had_both_nodes_off(lab):
    si = lab.connect()
    n1 = find(si, vim.VirtualMachine, "SQLNODE1")
    n2 = find(si, vim.VirtualMachine, "SQLNODE2")
    since = si.CurrentTime()
    cycle(n1)
    cycle(n2)

    events = power_events(si, [n1, n2], since)
    assert [(e.vm.name, type(e).__name__.rsplit(".", 1)[-1]) for e in events] == [
        ("SQLNODE1", "VmPoweredOffEvent"),
        ("SQLNODE1", "VmPoweredOnEvent"),
        ("SQLNODE2", "VmPoweredOffEvent"),
        ("SQLNODE2", "VmPoweredOnEvent"),
    ]
    keys = [e.key for e in events]
    assert keys == sorted(set(keys))
    times = [e.createdTime for e in events]
    assert times == sorted(times)
    assert all(t >= since for t in times)
    assert all(e.chainId for e in events)
    assert all(e.userName == lab.username for e in events)
    assert max_off_together(events) == 1

    # the same replay catches an overlap
    since = si.CurrentTime()
    wait(n1.PowerOffVM_Task())
    wait(n2.PowerOffVM_Task())
    wait(n1.PowerOnVM_Task())
    wait(n2.PowerOnVM_Task())
    assert max_off_together(power_events(si, [n1, n2], since)) == 2


def test_entity_filter_is_per_vm(lab):
    si = lab.connect()
    n1 = find(si, vim.VirtualMachine, "CIB-NODE1")
    n2 = find(si, vim.VirtualMachine, "CIB-NODE2")
    since = si.CurrentTime()
    cycle(n1)
    em = si.content.eventManager
    assert len(em.QueryEvents(vm_filter(n1, since))) == 2
    assert em.QueryEvents(vm_filter(n2, since)) == []


def test_reconfigured_event_and_collector(lab):
    si = lab.connect()
    vm = find(si, vim.VirtualMachine, "P2V-NODE1")
    since = si.CurrentTime()
    wait(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(annotation="first")))
    # a refused reconfiguration records no event
    bad = vim.vm.device.VirtualDeviceSpec(
        operation="add",
        device=vim.vm.device.VirtualLsiLogicSASController(key=-1, busNumber=1, sharedBus="physicalSharing"),
    )
    with pytest.raises(vim.fault.InvalidPowerState):
        wait(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(deviceChange=[bad])))
    wait(vm.PowerOffVM_Task())

    em = si.content.eventManager
    spec = vm_filter(vm, since, ["VmReconfiguredEvent", "VmPoweredOffEvent"])
    collector = em.CreateCollectorForEvents(spec)
    try:
        collector.RewindCollector()
        page = collector.ReadNextEvents(maxCount=100)
        kinds = [type(e).__name__.rsplit(".", 1)[-1] for e in page]
        assert kinds == ["VmReconfiguredEvent", "VmPoweredOffEvent"]
        assert page[0].configSpec.annotation == "first"
        assert page[0].createdTime <= page[1].createdTime and page[0].key < page[1].key
    finally:
        collector.DestroyCollector()


def test_query_events_returns_more_than_one_page(lab):
    """QueryEvents without maxCount answers every matching event (up to 1000), as vCenter does."""
    si = lab.connect()
    vm = find(si, vim.VirtualMachine, "B-NODE1")
    since = si.CurrentTime()
    for _ in range(8):
        cycle(vm)
    events = si.content.eventManager.QueryEvents(vm_filter(vm, since))
    assert len(events) == 16
    assert [e.key for e in events] == sorted((e.key for e in events), reverse=True)  # newest first
