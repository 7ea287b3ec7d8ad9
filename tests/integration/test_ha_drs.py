"""HA and DRS as VMware's guides ask, through the CLI against the lab: the VM-Host rule and its
two DRS groups in vCenter after apply, the nodes' HA restart on by default on vSphere 8, a hand
change to the rule as drift that apply puts back, the HA/DRS advanced options the file writes,
and turning the VM-Host rule off under HA refused before any change."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pyVmomi import vim

from labctl import find, prop, wait
from tests.integration.cli import example, run

pytestmark = pytest.mark.slow

RULE = "mscsctl-sql-prod-01-on-hosts"
VM_GROUP = "mscsctl-sql-prod-01-nodes"
HOST_GROUP = "mscsctl-sql-prod-01-hosts"
CLUSTER_A_HOSTS = ["esx-a1.lab.local", "esx-a2.lab.local", "esx-a3.lab.local"]


def cluster_config(lab) -> tuple[Any, Any]:
    si = lab.connect()
    cluster = find(si, vim.ClusterComputeResource, "Cluster-A")
    return cluster, prop(si, cluster, "configurationEx")


def names(objs) -> list[str]:
    return sorted(o.name for o in objs or [])


def applied(lab, tmp_path, **spec_changes):
    desired = example("cluster-across-boxes", tmp_path, **spec_changes)
    result = run(lab, "apply", str(desired), "--auto-approve", "--skip-guest")
    assert result.code == 0, result
    return desired


def test_apply_puts_the_vm_host_rule_and_its_groups_in_vcenter_and_plans_no_changes_after(lab, tmp_path):
    desired = example("cluster-across-boxes", tmp_path)
    planned = run(lab, "plan", str(desired), "--skip-guest", "--json")
    assert planned.code == 0, planned
    data = json.loads(planned.out)
    actions = [a for p in data.get("plans", [data]) for a in p["actions"]]
    [rule_action] = [a for a in actions if a["kind"] == "set-vm-host-rule"]
    assert rule_action["rule"] == "MSCS-PLACE-010" and rule_action["after"]["hosts"] == CLUSTER_A_HOSTS

    applied(lab, tmp_path)
    _, cfg = cluster_config(lab)
    groups = {g.name: g for g in cfg.group or []}
    assert isinstance(groups[VM_GROUP], vim.cluster.VmGroup) and names(groups[VM_GROUP].vm) == ["SQLNODE1", "SQLNODE2"]
    assert isinstance(groups[HOST_GROUP], vim.cluster.HostGroup) and names(groups[HOST_GROUP].host) == CLUSTER_A_HOSTS
    [rule] = [r for r in cfg.rule or [] if r.name == RULE]
    assert isinstance(rule, vim.cluster.VmHostRuleInfo)
    assert (rule.vmGroupName, rule.affineHostGroupName) == (VM_GROUP, HOST_GROUP)
    assert rule.mandatory is True and rule.enabled is True
    # The VM-VM anti-affinity rule is still there, beside it.
    assert [type(r) for r in cfg.rule if r.name == "mscsctl-sql-prod-01"] == [vim.cluster.AntiAffinityRuleSpec]

    again = run(lab, "plan", str(desired), "--skip-guest", "--detailed-exitcode")
    assert again.code == 0, again
    clean = run(lab, "drift", str(desired), "--skip-guest")
    assert clean.code == 0 and "no drift" in clean.out, clean


def test_the_nodes_ha_restart_is_on_by_default_on_vsphere_8(lab, tmp_path):
    desired = example("cluster-across-boxes", tmp_path, placement={"drs": "disabled"})  # no `ha:`
    result = run(lab, "apply", str(desired), "--auto-approve", "--skip-guest")
    assert result.code == 0, result
    si = lab.connect()
    _, cfg = cluster_config(lab)
    nodes = {find(si, vim.VirtualMachine, n)._moId for n in ("SQLNODE1", "SQLNODE2")}
    restart = {e.key._moId: e.dasSettings.restartPriority for e in cfg.dasVmConfig or [] if e.key._moId in nodes}
    assert len(restart) == 2 and "disabled" not in restart.values(), restart


def test_a_host_taken_out_of_the_host_group_by_hand_is_drift_and_apply_puts_it_back(lab, tmp_path):
    desired = applied(lab, tmp_path)
    cluster, cfg = cluster_config(lab)
    group = next(g for g in cfg.group if g.name == HOST_GROUP)
    group.host = [h for h in group.host if h.name != "esx-a3.lab.local"]
    spec = vim.cluster.ConfigSpecEx(groupSpec=[vim.cluster.GroupSpec(operation="edit", info=group)])
    wait(cluster.ReconfigureComputeResource_Task(spec=spec, modify=True))

    drift = run(lab, "drift", str(desired), "--skip-guest", "--json")
    assert drift.code == 2, drift
    findings = [f for r in json.loads(drift.out)["reports"] for f in r["findings"]]
    [finding] = [f for f in findings if f["address"] == f"sql-prod-01/vm-host-rule/{RULE}"]
    assert finding["field"] == "hosts" and finding["severity"] == "warning"

    fixed = run(lab, "apply", str(desired), "--auto-approve", "--skip-guest")
    assert fixed.code == 0, fixed
    _, cfg = cluster_config(lab)
    assert names(next(g for g in cfg.group if g.name == HOST_GROUP).host) == CLUSTER_A_HOSTS


def test_turning_the_vm_host_rule_off_under_ha_is_refused_before_any_change(lab, tmp_path):
    placement = {"drs": "disabled", "ha": "disabled", "separateHosts": True, "vmHostRule": False}
    desired = example("cluster-across-boxes", tmp_path, placement=placement)
    result = run(lab, "apply", str(desired), "--auto-approve", "--skip-guest")
    assert result.code == 1, result
    assert "MSCS-PLACE-010" in result.out + result.err and "Traceback" not in result.err
    _, cfg = cluster_config(lab)
    assert not [r for r in cfg.rule or [] if r.name.startswith("mscsctl-")]


def test_the_ha_and_drs_options_the_file_writes_are_in_vcenter(lab, tmp_path):
    placement = {
        "drs": "disabled",
        "ha": "disabled",
        "separateHosts": True,
        "respectVmVmAntiAffinityRules": True,
        "forceAffinePoweron": True,
    }
    desired = applied(lab, tmp_path, placement=placement)
    _, cfg = cluster_config(lab)
    das = {o.key: str(o.value) for o in cfg.dasConfig.option or []}
    drs = {o.key: str(o.value) for o in cfg.drsConfig.option or []}
    assert das.get("das.respectVmVmAntiAffinityRules") == "true" and drs.get("ForceAffinePoweron") == "1"
    again = run(lab, "plan", str(desired), "--skip-guest", "--detailed-exitcode")
    assert again.code == 0, again

    # An option turned off by hand is drift, and apply puts it back.
    cluster, _ = cluster_config(lab)
    off = vim.cluster.DasConfigInfo(
        option=[vim.option.OptionValue(key="das.respectVmVmAntiAffinityRules", value="false")]
    )
    wait(cluster.ReconfigureComputeResource_Task(spec=vim.cluster.ConfigSpecEx(dasConfig=off), modify=True))
    drift = run(lab, "drift", str(desired), "--skip-guest", "--json")
    assert drift.code == 2, drift
    findings = [f for r in json.loads(drift.out)["reports"] for f in r["findings"]]
    assert any("respectVmVmAntiAffinityRules" in f["address"] + f["field"] for f in findings), findings
    fixed = run(lab, "apply", str(desired), "--auto-approve", "--skip-guest")
    assert fixed.code == 0, fixed
    _, cfg = cluster_config(lab)
    assert {o.key: str(o.value) for o in cfg.dasConfig.option or []}["das.respectVmVmAntiAffinityRules"] == "true"
