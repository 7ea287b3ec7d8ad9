"""The Python API (README, "Python API"): plan -> apply -> plan again against the lab, no CLI involved."""

from __future__ import annotations

import pytest
from pyVmomi import vim

from labctl import find, prop
from reconciler.plan_file import write_plans
from reconciler.run import (
    ApplyCancelled,
    ApplyResult,
    ApplyStatus,
    RunOptions,
    StepStarted,
    apply_plans,
    plan_file,
    plan_for_apply,
)
from state.model import parse_state
from tests.integration.cli import example

pytestmark = pytest.mark.slow

CLUSTER = "sql-prod-01"
NODES = ("SQLNODE1", "SQLNODE2")


@pytest.fixture
def lab_env(lab, monkeypatch):
    """The lab's VSPHERE_* settings in this process's environment, as a user's shell would have them."""
    for name, value in lab.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("MSCSCTL_STATE", raising=False)
    return lab


def never(plans):
    raise AssertionError("approval asked for plans without changes, or for a saved plan")


def test_plan_apply_and_plan_again_from_python(lab_env, tmp_path):
    desired = example("cluster-across-boxes", tmp_path)
    planned = plan_file(desired)
    assert [p.cluster for p in planned.plans] == [CLUSTER] and planned.has_changes

    with pytest.raises(ApplyCancelled, match="apply cancelled"):
        apply_plans(planned, approve=lambda plans: False)
    assert not (tmp_path / ".mscsctl" / f"{CLUSTER}.state.json").exists()

    asked: list[list[str]] = []
    steps: list[StepStarted] = []

    def approve(plans):
        asked.append([p.cluster for p in plans])
        return True

    (result,) = apply_plans(planned, approve=approve, progress=steps.append)
    assert asked == [[CLUSTER]]
    assert result.status is ApplyStatus.APPLIED and result.error is None, result.error
    actions = [a.id for a in planned.plans[0].actions]
    assert sorted(o.action.id for o in result.done + result.skipped) == sorted(actions)
    assert steps[-1].number == steps[-1].total == len(actions) and not steps[-1].fleet

    again = plan_file(desired)
    assert not again.has_changes, [a.id for p in again.plans for a in p.actions]
    assert apply_plans(again, approve=never) == [ApplyResult(CLUSTER, ApplyStatus.NO_CHANGES)]

    si = lab_env.connect()
    state_file = tmp_path / ".mscsctl" / f"{CLUSTER}.state.json"
    state = parse_state(state_file.read_bytes(), str(state_file))
    assert state.cluster == CLUSTER and state.desired_hash == planned.targets.desired[0].hash
    mapping_files = set()
    for name in NODES:
        vm = find(si, vim.VirtualMachine, name)
        devices = prop(si, vm, "config.hardware.device")
        ctrl = next(d for d in devices if isinstance(d, vim.vm.device.VirtualSCSIController) and d.busNumber == 1)
        assert isinstance(ctrl, vim.vm.device.VirtualLsiLogicSASController)
        assert ctrl.sharedBus == "physicalSharing"
        disks = {
            d.unitNumber: d for d in devices if isinstance(d, vim.vm.device.VirtualDisk) and d.controllerKey == ctrl.key
        }
        assert sorted(disks) == [0, 1]
        assert {d.backing.compatibilityMode for d in disks.values()} == {"physicalMode"}
        assert prop(si, vm, "runtime.powerState") == "poweredOn"

        recorded_ctrl = state.get(f"{CLUSTER}/node/{name}/controller/1")
        assert recorded_ctrl is not None and recorded_ctrl.device_key == ctrl.key
        assert recorded_ctrl.vm_moref == vm._moId and recorded_ctrl.applied["sharing"] == "physical"
        for unit, disk_name in ((0, "quorum"), (1, "data")):
            recorded = state.get(f"{CLUSTER}/node/{name}/disk/{disk_name}")
            assert recorded is not None and recorded.kind == "rdm-disk", recorded
            assert recorded.device_key == disks[unit].key and recorded.file == disks[unit].backing.fileName
            mapping_files.add((disk_name, recorded.file))
        heartbeat = state.get(f"{CLUSTER}/node/{name}/nic/heartbeat")
        assert heartbeat is not None and heartbeat.created_by_mscsctl and heartbeat.pci_slot is not None
    # Node 2 attached the very mapping files node 1 created: one a clustered disk.
    assert len(mapping_files) == 2, mapping_files
    assert f"{CLUSTER}/rule/mscsctl-{CLUSTER}" in state.resources


def test_a_saved_plan_is_applied_from_python_without_asking(lab_env, tmp_path):
    desired = example("cluster-across-boxes", tmp_path)
    planned = plan_file(desired, RunOptions(skip_guest=True))
    saved = tmp_path / "sql.plan.json"
    write_plans(saved, planned.plans, fleet=False)

    reread = plan_for_apply(saved)
    assert reread.saved == saved and reread.plans == planned.plans
    (result,) = apply_plans(reread, approve=never)
    assert result.status is ApplyStatus.APPLIED, result.error
    assert not plan_file(desired, RunOptions(skip_guest=True)).has_changes
