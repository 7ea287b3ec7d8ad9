"""Drift as JUnit XML: the golden file, and the XML read back as a CI system reads it."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from reconciler.address import Address
from reconciler.drift import DriftFinding, DriftReport, DriftSeverity, detect_drift
from reconciler.report.junit import drift_junit
from tests.unit.golden_files import check_golden
from tests.unit.report_world import CHECKED_AT, drifted_world, sample_drift, without_guests


def test_drift_junit_matches_the_golden_file():
    check_golden("drift.xml", drift_junit(sample_drift()))


def test_counts_read_back_match_the_reports():
    reports = sample_drift()
    root = ET.fromstring(drift_junit(reports))
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == [f"mscsctl drift: {r.cluster}" for r in reports]
    total_failures = total_skipped = 0
    for suite, report in zip(suites, reports, strict=True):
        cases = suite.findall("testcase")
        failures = [c.find("failure") for c in cases if c.find("failure") is not None]
        skipped = [c for c in cases if c.find("skipped") is not None]
        assert int(suite.get("skipped")) == len(skipped) == len(report.unchecked)
        assert [c.get("name") for c in skipped] == [f"{u.node}/{u.part}" for u in report.unchecked]
        total_skipped += len(skipped)
        assert int(suite.get("failures")) == len(failures) == len(report.findings)
        assert int(suite.get("tests")) == len(cases)
        cases = [c for c in cases if c not in skipped]
        assert all(c.get("classname") == report.cluster for c in cases)
        assert sum(1 for f in failures if f.get("type") == "critical") == report.critical
        assert sum(1 for f in failures if f.get("type") == "warning") == len(report.findings) - report.critical
        total_failures += len(failures)
        if not report.findings and report.unchecked:
            assert cases == []  # not checked in full: never a passing `no drift`
        elif not report.findings:
            assert [(c.get("name"), list(c)) for c in cases] == [("no drift", [])]
        else:
            names = [c.get("name") for c in cases]
            assert names == [f"{f.address}.{f.field}" if f.field else str(f.address) for f in report.findings]
        props = {p.get("name"): p.get("value") for p in suite.iter("property")}
        assert props == {"cluster": report.cluster, "desired_file": report.desired_file, "checked_at": CHECKED_AT}
    assert int(root.get("failures")) == total_failures
    assert int(root.get("skipped")) == total_skipped == 2
    assert int(root.get("tests")) == sum(int(s.get("tests")) for s in suites)


def test_a_part_not_checked_is_a_skipped_case_that_says_why():
    root = ET.fromstring(drift_junit(sample_drift()))
    suite = next(s for s in root.iter("testsuite") if s.get("name") == "mscsctl drift: sql-prod-02")
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("2", "0", "2")
    skipped = {c.get("name"): c.find("skipped").get("message") for c in suite.iter("testcase")}
    assert skipped == {
        f"{node}/guest": "not checked: no-credentials: no guest credentials: set MSCSCTL_GUEST_USER and "
        "MSCSCTL_GUEST_PASSWORD"
        for node in ("SQLNODE1", "SQLNODE2")
    }


def test_a_failure_says_what_differs_and_how_to_fix_it():
    root = ET.fromstring(drift_junit(sample_drift()))
    case = next(c for c in root.iter("testcase") if c.get("name").endswith("controller/1.sharing"))
    failure = case.find("failure")
    assert failure.get("type") == "critical"
    assert failure.get("message") == "sql-prod-01/node/SQLNODE2/controller/1.sharing: none (desired physical)"
    assert "last applied: physical (at 2026-01-02T03:04:05Z)" in failure.text
    assert "changed outside mscsctl: yes" in failure.text
    assert "fix: mscsctl apply clusters/sql-prod-01.yaml" in failure.text


def test_markup_and_control_characters_are_escaped():
    finding = DriftFinding(
        cluster="c",
        address=Address.node("c", 'N<1>&"2"', "nic", "production"),
        object="nic",
        field="portgroup",
        desired="Prod]]>",
        observed="bad\x01name\nnext",
        changed_outside=False,
        severity=DriftSeverity.WARNING,
        fix="mscsctl apply c.yaml",
    )
    report = DriftReport(
        cluster="c", desired_file="c.yaml", checked_at=CHECKED_AT, findings=[finding], notes=["VM not found: <X>\x02"]
    )
    root = ET.fromstring(drift_junit([report]))  # would raise on malformed XML
    case = root.find("testsuite/testcase")
    assert case.get("name") == 'c/node/"N<1>&\\"2\\""/nic/production.portgroup'
    failure = case.find("failure")
    assert "observed: bad\\x01name\\nnext" in failure.text  # one line, control characters spelt out
    assert "desired: Prod]]>" in failure.text
    assert root.find("testsuite/system-out").text == "VM not found: <X>\\x02\n"


def test_no_reports_is_an_empty_but_valid_document():
    root = ET.fromstring(drift_junit([]))
    assert root.tag == "testsuites" and root.get("tests") == "0" and list(root) == []


def test_same_reports_same_xml():
    assert drift_junit(sample_drift()) == drift_junit(sample_drift())


def test_a_vm_not_found_is_one_part_not_checked_not_also_its_guest():
    cluster, world, state = drifted_world()
    world = without_guests(world, "SQLNODE1", "SQLNODE2")
    world = world.model_copy(update={"vms": {k: v for k, v in world.vms.items() if k != "SQLNODE2"}})
    report = detect_drift(cluster, world, state, desired_file="f.yaml", checked_at=CHECKED_AT)
    assert [(u.node, u.part, u.reason) for u in report.unchecked] == [
        ("SQLNODE2", "vm", "vm-not-found"),
        ("SQLNODE1", "guest", "no-credentials"),
    ]
    suite = ET.fromstring(drift_junit([report])).find("testsuite")
    assert suite.get("skipped") == "2"
    assert [c.get("name") for c in suite.iter("testcase") if c.find("skipped") is not None] == [
        "SQLNODE2/vm",
        "SQLNODE1/guest",
    ]
