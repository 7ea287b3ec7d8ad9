"""Drift as JUnit XML: the golden file, and the XML read back as a CI system reads it."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from reconciler.address import Address
from reconciler.drift import DriftFinding, DriftReport, DriftSeverity
from reconciler.report.junit import drift_junit
from tests.unit.golden_files import check_golden
from tests.unit.report_world import CHECKED_AT, sample_drift


def test_drift_junit_matches_the_golden_file():
    check_golden("drift.xml", drift_junit(sample_drift()))


def test_counts_read_back_match_the_reports():
    reports = sample_drift()
    root = ET.fromstring(drift_junit(reports))
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == [f"mscsctl drift: {r.cluster}" for r in reports]
    total_failures = 0
    for suite, report in zip(suites, reports, strict=True):
        cases = suite.findall("testcase")
        failures = [c.find("failure") for c in cases if c.find("failure") is not None]
        assert int(suite.get("failures")) == len(failures) == len(report.findings)
        assert int(suite.get("tests")) == len(cases)
        assert all(c.get("classname") == report.cluster for c in cases)
        assert sum(1 for f in failures if f.get("type") == "critical") == report.critical
        assert sum(1 for f in failures if f.get("type") == "warning") == len(report.findings) - report.critical
        total_failures += len(failures)
        if not report.findings:
            assert [(c.get("name"), list(c)) for c in cases] == [("no drift", [])]
        else:
            names = [c.get("name") for c in cases]
            assert names == [f"{f.address}.{f.field}" if f.field else str(f.address) for f in report.findings]
        props = {p.get("name"): p.get("value") for p in suite.iter("property")}
        assert props == {"cluster": report.cluster, "desired_file": report.desired_file, "checked_at": CHECKED_AT}
    assert int(root.get("failures")) == total_failures
    assert int(root.get("tests")) == sum(int(s.get("tests")) for s in suites)


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
