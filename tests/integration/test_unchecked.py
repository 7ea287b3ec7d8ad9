"""A report never reads as clean when part of the file could not be checked.

Through the real CLI against the lab: a node's guest side not observed (no credentials, a
physical node's WinRM unreachable) is named on stderr, in the text, the JSON, the Markdown
and the JUnit outputs, and apply says the guest step was not done; `plan
--detailed-exitcode` and `drift` exit 1 for it, never 0 or 2. `--skip-guest` leaves the
guests out on purpose: they are named as skipped and do not change the exit code. Each row
of README's exit-code table is run here.
"""

from __future__ import annotations

import json
import socket
import xml.etree.ElementTree as ET

import pytest
from pyVmomi import VmomiSupport, vim

import labctl
from labctl import find, prop
from tests.integration.cli import default_lab, example, run

pytestmark = [pytest.mark.lab, pytest.mark.slow]

GUEST_ENV = {"MSCSCTL_GUEST_USER": labctl.GUEST_USER, "MSCSCTL_GUEST_PASSWORD": labctl.GUEST_PASSWORD}
NO_GUEST_ENV = {"MSCSCTL_GUEST_USER": "", "MSCSCTL_GUEST_PASSWORD": ""}  # empty is unset


def lab_with(**vms: dict) -> dict:
    doc = default_lab()
    for vm in doc["vms"]:
        vm.update(vms.get(vm["name"], {}))
    return doc


def closed_port() -> int:
    """A local TCP port nothing listens on (bound once, then let go)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def unchecked_of(out: str) -> list[tuple[str, str, str]]:
    return [(u["node"], u["part"], u["reason"]) for r in json.loads(out)["reports"] for u in r["unchecked"]]


def test_drift_without_guest_credentials_names_both_guests_and_exits_1(lab, tmp_path):
    """No guest credentials: drift and plan --detailed-exitcode exit 1 and say why; --skip-guest: 0."""
    desired = example("cluster-across-boxes", tmp_path)
    assert run(lab, "apply", str(desired), "--auto-approve", "--skip-guest").code == 0

    junit = tmp_path / "drift.xml"
    result = run(lab, "drift", str(desired), "--junit", str(junit), env=NO_GUEST_ENV)
    assert result.code == 1, result
    assert "part of the file could not be checked (named above): exit 1, not 'no drift'" in result.err
    assert "no drift." not in result.out
    assert "not checked in full" in result.out
    for node in ("SQLNODE1", "SQLNODE2"):
        assert f"not checked: {node} guest disk timeout (no-credentials: guest credentials not set" in result.out
        assert f"sql-prod-01: not checked: {node} guest disk timeout (no-credentials" in result.err
    suite = ET.parse(junit).getroot().find("testsuite")
    assert (suite.get("failures"), suite.get("skipped")) == ("0", "2")
    skipped = {c.get("name"): c.find("skipped").get("message") for c in suite.iter("testcase")}
    assert set(skipped) == {"SQLNODE1/guest", "SQLNODE2/guest"}
    assert all(m.startswith("not checked: no-credentials: guest credentials not set") for m in skipped.values())

    as_json = run(lab, "drift", str(desired), "--json", env=NO_GUEST_ENV)
    assert as_json.code == 1, as_json
    assert unchecked_of(as_json.out) == [
        ("SQLNODE1", "guest", "no-credentials"),
        ("SQLNODE2", "guest", "no-credentials"),
    ]
    markdown = run(lab, "drift", str(desired), "--markdown", env=NO_GUEST_ENV)
    assert markdown.code == 1, markdown
    assert "**Not checked** (this report does not cover them):" in markdown.out
    assert "- `SQLNODE1` guest, `no-credentials`" in markdown.out
    assert "- `SQLNODE2` guest, `no-credentials`" in markdown.out

    plan = run(lab, "plan", str(desired), "--detailed-exitcode", "--json", env=NO_GUEST_ENV)
    assert plan.code == 1, plan
    assert "part of the file could not be checked (named above): exit 1" in plan.err
    assert [(u["node"], u["reason"]) for u in json.loads(plan.out)["unchecked"]] == [
        ("SQLNODE1", "no-credentials"),
        ("SQLNODE2", "no-credentials"),
    ]

    # Left out on purpose: named as skipped, and the exit code is that of the rest.
    skipped_on_purpose = run(lab, "drift", str(desired), "--skip-guest", "--junit", str(junit), env=NO_GUEST_ENV)
    assert skipped_on_purpose.code == 0, skipped_on_purpose
    assert "sql-prod-01: no drift." in skipped_on_purpose.out and "not checked" not in skipped_on_purpose.out
    for node in ("SQLNODE1", "SQLNODE2"):
        assert f"skipped: {node} guest disk timeout (skipped on purpose: --skip-guest)" in skipped_on_purpose.out
        assert f"sql-prod-01: skipped: {node} guest disk timeout" in skipped_on_purpose.err
    cases = ET.parse(junit).getroot().find("testsuite")
    assert (cases.get("failures"), cases.get("skipped")) == ("0", "2")
    as_json = run(lab, "drift", str(desired), "--skip-guest", "--json", env=NO_GUEST_ENV)
    assert as_json.code == 0, as_json
    (report,) = json.loads(as_json.out)["reports"]
    assert [(u["node"], u["reason"], u["on_purpose"]) for u in report["unchecked"]] == [
        ("SQLNODE1", "skip-guest", True),
        ("SQLNODE2", "skip-guest", True),
    ]
    plan = run(lab, "plan", str(desired), "--skip-guest", "--detailed-exitcode", env=NO_GUEST_ENV)
    assert plan.code == 0, plan
    assert "not checked" not in plan.out + plan.err.lower()
    assert "Skipped: SQLNODE1 guest disk timeout (skipped on purpose: --skip-guest)" in plan.out


@pytest.mark.wine
def test_physical_node_with_winrm_unreachable_is_named_by_drift_plan_and_apply(lab, lab_wine, tmp_path):
    port = closed_port()
    nodes = [
        {"physical": "FILESRV1", "winrm": {"address": "127.0.0.1", "port": port, "ssl": False}},
        {"vm": "P2V-NODE1"},
    ]
    desired = example("physical-to-virtual", tmp_path, nodes=nodes)

    plan = run(lab, "plan", str(desired), "--detailed-exitcode", env=GUEST_ENV)
    assert plan.code == 1, plan  # changes, but part of the file unchecked: 1, not 2
    assert "Not checked: FILESRV1 guest disk timeout (" in plan.out, plan
    assert "p2v-file-01: not checked: FILESRV1 guest disk timeout" in plan.err

    applied = run(lab, "apply", str(desired), "--auto-approve", env=GUEST_ENV)
    assert applied.code == 0, applied
    assert "p2v-file-01: apply complete: " in applied.out
    assert "; not done: FILESRV1 guest disk timeout (" in applied.out, applied
    assert "p2v-file-01: not done: FILESRV1 guest disk timeout" in applied.err
    assert lab.guest_disk_timeout("P2V-NODE1") == ("REG_DWORD", "0x3c")  # the VM node's was done

    again = run(lab, "apply", str(desired), "--auto-approve", "--json", env=GUEST_ENV)
    assert again.code == 0, again
    (cluster,) = json.loads(again.out)["clusters"]
    assert [(u["node"], u["part"]) for u in cluster["not_done"]] == [("FILESRV1", "guest")]

    drift = run(lab, "drift", str(desired), "--json", env=GUEST_ENV)
    assert drift.code == 1, drift
    assert [u[:2] for u in unchecked_of(drift.out)] == [("FILESRV1", "guest")]
    text = run(lab, "drift", str(desired), env=GUEST_ENV)
    assert text.code == 1 and "not checked: FILESRV1 guest disk timeout" in text.out, text

    on_purpose = run(lab, "apply", str(desired), "--auto-approve", "--skip-guest", env=GUEST_ENV)
    assert on_purpose.code == 0 and "not done" not in on_purpose.out + on_purpose.err, on_purpose
    assert run(lab, "drift", str(desired), "--skip-guest", env=GUEST_ENV).code == 0


@pytest.mark.wine
def test_a_disk_timeout_the_guests_do_not_have_is_a_change(lab_factory, lab_wine, tmp_path):
    lab = lab_factory(lab_with(SQLNODE1={"diskTimeout": 60}, SQLNODE2={"diskTimeout": 60}))
    at_60 = example("cluster-across-boxes", tmp_path)
    assert run(lab, "apply", str(at_60), "--auto-approve", env=GUEST_ENV).code == 0
    assert run(lab, "plan", str(at_60), "--detailed-exitcode", env=GUEST_ENV).code == 0

    desired = example("cluster-across-boxes", tmp_path, guest={"diskTimeoutSeconds": 90})
    plan = run(lab, "plan", str(desired), "--detailed-exitcode", env=GUEST_ENV)
    assert plan.code == 2, plan
    for node in ("SQLNODE1", "SQLNODE2"):
        assert f"/node/{node}/guest/diskTimeout" in plan.out, plan
    assert plan.out.count("seconds: 60 -> 90") == 2, plan
    # Without credentials the guests are not compared: never "no changes".
    blind = run(lab, "plan", str(desired), "--detailed-exitcode", env=NO_GUEST_ENV)
    assert blind.code == 1, blind
    assert "Not checked: SQLNODE1 guest disk timeout (no-credentials" in blind.out


def test_each_row_of_the_exit_code_table(lab, tmp_path):
    """README's exit-code table, row by row, for plan --detailed-exitcode and drift (no Wine needed:
    the guests are either left out on purpose or not reachable for want of credentials)."""
    desired = example("cluster-across-boxes", tmp_path)

    def plan(*extra: str) -> int:
        return run(lab, "plan", str(desired), "--detailed-exitcode", *extra, env=NO_GUEST_ENV).code

    def drift(*extra: str) -> int:
        return run(lab, "drift", str(desired), *extra, env=NO_GUEST_ENV).code

    assert plan("--skip-guest") == 2  # changes, the rest checked
    assert plan() == 1  # changes, guests unchecked: 1
    assert run(lab, "plan", str(desired), env=NO_GUEST_ENV).code == 0  # without --detailed-exitcode: 0
    applied = run(lab, "apply", str(desired), "--auto-approve", "--skip-guest", "--json")
    assert applied.code == 0, applied
    assert [c["not_done"] for c in json.loads(applied.out)["clusters"]] == [[]]  # asked for: not "not done"
    assert "not done" not in applied.err
    assert plan("--skip-guest") == 0  # no changes
    assert plan() == 1  # no changes found, guests unchecked: never 0
    assert drift("--skip-guest") == 0  # no drift
    assert drift() == 1  # guests unchecked: never "no drift"
    si = lab.connect()
    host = find(si, vim.HostSystem, "esx-a2.lab.local")
    prop(si, host, "configManager.advancedOption").UpdateOptions(
        changedValue=[vim.option.OptionValue(key="Disk.UseDeviceReset", value=VmomiSupport.long(1))]
    )
    assert drift("--skip-guest") == 2  # drift found
    assert drift() == 1  # drift found and guests unchecked: 1 (the findings are still printed)
    gone = example("cluster-across-boxes", tmp_path, nodes=[{"vm": "SQLNODE1"}, {"vm": "NO-SUCH-VM"}])
    missing = run(lab, "drift", str(gone), "--skip-guest", env=NO_GUEST_ENV)
    assert missing.code == 1, missing  # a VM not found: unchecked, not skipped on purpose
    assert "not checked: NO-SUCH-VM vm (vm-not-found" in missing.out
    refused = run(lab, "plan", str(gone), "--detailed-exitcode", "--skip-guest", env=NO_GUEST_ENV)
    assert refused.code == 1 and "[MSCS-INV-001]" in refused.err, refused  # plan: a rule error, nothing planned
    assert run(lab, "plan", str(desired), "--detailed-exitcode", "--skip-guest", "--server", "127.0.0.1:1").code == 1


def test_a_physical_nodes_winrm_unreachable_makes_plan_and_drift_exit_1(lab, tmp_path):
    """The WinRM row of the table, without Wine: --target narrows the run to the physical node."""
    nodes = [
        {"physical": "FILESRV1", "winrm": {"address": "127.0.0.1", "port": closed_port(), "ssl": False}},
        {"vm": "P2V-NODE1"},
    ]
    desired = example("physical-to-virtual", tmp_path, nodes=nodes)
    assert run(lab, "apply", str(desired), "--auto-approve", "--skip-guest").code == 0
    physical = ("--target", "p2v-file-01/node/FILESRV1")
    drift = run(lab, "drift", str(desired), *physical, env=GUEST_ENV)
    assert drift.code == 1, drift
    assert "not checked: FILESRV1 guest disk timeout (" in drift.out and "P2V-NODE1" not in drift.out
    plan = run(lab, "plan", str(desired), "--detailed-exitcode", *physical, env=GUEST_ENV)
    assert plan.code == 1, plan
    assert "p2v-file-01: not checked: FILESRV1 guest disk timeout" in plan.err
    assert run(lab, "drift", str(desired), "--skip-guest", env=GUEST_ENV).code == 0
    assert run(lab, "plan", str(desired), "--detailed-exitcode", "--skip-guest", env=GUEST_ENV).code == 0
