"""A cluster whose VM names hold '/', quotes, '%' and non-ASCII letters, and whose port groups hold
spaces: vCenter returns such names escaped (`SQL%2fNODE 1`); mscsctl matches them as the user
typed them in the file, and every node still gets its devices, overrides and rule."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pyVmomi import vim

from labctl import prop, wait
from tests.integration.cli import REPO, example, run

pytestmark = pytest.mark.slow

ODD_LAB = REPO / "tests" / "lab" / "labs" / "odd-names.yaml"
NODE1, NODE2 = "SQL/NODE 1", "Ö'NODE%2"
# As vCenter returns them (ManagedEntity.name escapes '%', '/' and '\').
ESCAPED = {NODE1: "SQL%2fNODE 1", NODE2: "Ö'NODE%252"}


def _desired(tmp_path: Path) -> Path:
    return example(
        "cluster-across-boxes",
        tmp_path,
        nodes=[{"vm": NODE1}, {"vm": NODE2}],
        networks={"production": {"portgroup": "Prod Net"}, "heartbeat": {"portgroup": "Heart Beat"}},
    )


def _by_name(si, vimtype, name):
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vimtype], True)
    try:
        return next(obj for obj in view.view if obj.name == name)
    finally:
        view.Destroy()


def test_odd_names_plan_apply_replan_and_drift(lab_factory, tmp_path):
    lab = lab_factory(ODD_LAB, extra_args=("--wine", "off"))
    desired = _desired(tmp_path)
    first = run(lab, "plan", str(desired), "--detailed-exitcode", "--skip-guest")
    assert first.code == 2, first
    assert '"SQL/NODE 1"' in first.out and "%2f" not in first.out
    applied = run(lab, "apply", str(desired), "--auto-approve", "--skip-guest")
    assert applied.code == 0, applied
    again = run(lab, "plan", str(desired), "--detailed-exitcode", "--skip-guest")
    assert again.code == 0, again
    clean = run(lab, "drift", str(desired), "--skip-guest")
    assert clean.code == 0, clean

    si = lab.connect()
    vms = [_by_name(si, vim.VirtualMachine, ESCAPED[n]) for n in (NODE1, NODE2)]
    for vm in vms:
        devices = prop(si, vm, "config.hardware.device")
        ctrl = next(d for d in devices if isinstance(d, vim.vm.device.VirtualSCSIController) and d.busNumber == 1)
        assert ctrl.sharedBus == "physicalSharing"
        disks = sorted(
            d.unitNumber for d in devices if isinstance(d, vim.vm.device.VirtualDisk) and d.controllerKey == ctrl.key
        )
        assert disks == [0, 1]
        networks = sorted(prop(si, n, "name") for n in prop(si, vm, "network"))
        assert networks == ["Heart Beat", "Prod Net"]
    cluster = _by_name(si, vim.ClusterComputeResource, "Cluster-A")
    cfg = prop(si, cluster, "configurationEx")
    ids = {vm._moId for vm in vms}
    assert {e.key._moId for e in cfg.drsVmConfig or [] if e.enabled is False} >= ids
    assert {e.key._moId for e in cfg.dasVmConfig or [] if e.dasSettings.restartPriority == "disabled"} >= ids
    (rule,) = [r for r in cfg.rule or [] if r.name == "mscsctl-sql-prod-01"]
    assert isinstance(rule, vim.cluster.AntiAffinityRuleSpec) and {v._moId for v in rule.vm} == ids

    state = json.loads((tmp_path / ".mscsctl" / "sql-prod-01.state.json").read_text())
    assert 'sql-prod-01/node/"SQL/NODE 1"/drs' in state["resources"]
    assert "sql-prod-01/node/Ö'NODE%2/ha" in state["resources"]

    # A DRS override changed by hand on the node with '/' in its name: drift names the object type.
    spec = vim.cluster.ConfigSpecEx(
        drsVmConfigSpec=[
            vim.cluster.DrsVmConfigSpec(
                operation="edit", info=vim.cluster.DrsVmConfigInfo(key=vms[0], enabled=True, behavior="fullyAutomated")
            )
        ]
    )
    wait(cluster.ReconfigureComputeResource_Task(spec=spec, modify=True))
    drift = run(lab, "drift", str(desired), "--skip-guest", "--json")
    assert drift.code == 2, drift
    findings = [f for report in json.loads(drift.out)["reports"] for f in report["findings"]]
    assert [(f["address"], f["object"], f["field"], f["observed"]) for f in findings] == [
        ('sql-prod-01/node/"SQL/NODE 1"/drs', "drs", "behavior", "fullyAutomated")
    ]
