"""Connecting to vCenter: TLS verified by default, clear messages, re-login, constant reads."""

from __future__ import annotations

import json

import pytest

from tests.fleet import write_fleet
from tests.integration.cli import example, run

READS = ("RetrievePropertiesEx", "ContinueRetrievePropertiesEx", "RetrieveProperties")


def test_certificate_is_verified_by_default(lab_readonly, tmp_path):
    desired = example("cluster-across-boxes", tmp_path)
    no_ca = run(lab_readonly, "plan", str(desired), env={"VSPHERE_CA_FILE": ""})
    assert no_ca.code == 1, no_ca
    assert "could not be verified" in no_ca.err and "VSPHERE_CA_FILE" in no_ca.err
    assert "Traceback" not in no_ca.err
    with_ca = run(lab_readonly, "plan", str(desired))
    assert with_ca.code == 0, with_ca


def test_unverified_only_when_asked(lab_readonly, tmp_path):
    desired = example("cluster-across-boxes", tmp_path)
    result = run(
        lab_readonly, "plan", str(desired), env={"VSPHERE_CA_FILE": "", "VSPHERE_ALLOW_UNVERIFIED_SSL": "true"}
    )
    assert result.code == 0, result


def test_wrong_password_and_missing_settings_are_clear_errors(lab_readonly, tmp_path):
    desired = example("cluster-across-boxes", tmp_path)
    wrong = run(lab_readonly, "plan", str(desired), env={"VSPHERE_PASSWORD": "not-the-password"})
    assert wrong.code == 1 and "refused the login" in wrong.err, wrong
    assert "not-the-password" not in wrong.err
    missing = run(lab_readonly, "plan", str(desired), env={"VSPHERE_PASSWORD": "", "VSPHERE_SERVER": ""})
    assert missing.code == 1
    assert "VSPHERE_SERVER" in missing.err and "VSPHERE_PASSWORD" in missing.err


def test_apply_logs_in_again_when_vcenter_ends_the_session(lab, tmp_path):
    desired = example("cluster-across-boxes", tmp_path)
    lab.inject_fault(method="ReconfigVM_Task", call=2, action="end_sessions")
    result = run(lab, "apply", str(desired), "--auto-approve")
    assert result.code == 0, result
    assert run(lab, "plan", str(desired), "--detailed-exitcode", "--skip-guest").code == 0
    assert lab.calls().get("Login", 0) >= 2


def test_observation_reads_are_constant_in_the_number_of_clusters(lab_factory, tmp_path):
    counts = {}
    for n in (1, 12):
        lab = lab_factory({"datacenter": "DC1"}, fleet=n)
        fleet = tmp_path / f"fleet{n}"
        write_fleet(n, fleet)
        lab.reset_calls()
        result = run(lab, "plan", str(fleet), "--json")
        assert result.code == 0, result
        plans = json.loads(result.out)
        assert len(plans.get("plans", [plans])) == n
        calls = lab.calls()
        counts[n] = sum(calls.get(m, 0) for m in READS)
    assert counts[1] == counts[12], counts
    assert counts[1] <= 6, counts


@pytest.mark.parametrize("fault", ["TaskInProgress"])
def test_busy_vm_is_retried(lab, tmp_path, fault):
    desired = example("cluster-across-boxes", tmp_path)
    lab.inject_fault(method="ReconfigVM_Task", call=1, fault=fault)
    result = run(lab, "apply", str(desired), "--auto-approve")
    assert result.code == 0, result
