"""Drift as JUnit XML: CI systems (GitLab, Jenkins, GitHub test reporters) show each finding as a failed test.

One test suite a cluster, one failed test case a finding (`ADDRESS.field`), of type
`critical` or `warning`; a cluster without drift has one passing case, `no drift`, so that
it still appears, green, in the pipeline's test view. Each part of the file that could not be
checked (a node's guest not reached, a VM not found) is a skipped case, `NODE/part`, whose
message says why: the suite's `skipped` counts them, so a partial check never reads as clean.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from reconciler.drift import DriftFinding, DriftReport
from reconciler.report import show_value

# XML 1.0 cannot hold most control characters, even escaped: they become \\xNN text.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml_text(text: str) -> str:
    return _NOT_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def case_name(finding: DriftFinding) -> str:
    return f"{finding.address}.{finding.field}" if finding.field else str(finding.address)


def _message(finding: DriftFinding) -> str:
    return f"{case_name(finding)}: {show_value(finding.observed)} (desired {show_value(finding.desired)})"


def _details(finding: DriftFinding) -> str:
    if finding.last_applied_at is None and finding.last_applied is None:
        applied = "never"
    else:
        applied = show_value(finding.last_applied)
        if finding.last_applied_at:
            applied += f" (at {finding.last_applied_at})"
    lines = [
        f"severity: {finding.severity}",
        f"address: {finding.address}",
        f"object: {finding.object}",
        f"field: {finding.field or '(the whole object)'}",
        f"observed: {show_value(finding.observed)}",
        f"desired: {show_value(finding.desired)}",
        f"last applied: {applied}",
        f"changed outside mscsctl: {'yes' if finding.changed_outside else 'no'}",
        f"fix: {finding.fix}",
    ]
    return "\n".join(lines) + "\n"


def _cases(report: DriftReport) -> int:
    """The suite's test cases: a finding each, a skipped one an unchecked part, or `no drift`."""
    return len(report.findings) + len(report.unchecked) or 1


def _suite(parent: ET.Element, report: DriftReport) -> None:
    failures = len(report.findings)
    suite = ET.SubElement(
        parent,
        "testsuite",
        {
            "name": _xml_text(f"mscsctl drift: {report.cluster}"),
            "tests": str(_cases(report)),
            "failures": str(failures),
            "errors": "0",
            "skipped": str(len(report.unchecked)),
        },
    )
    properties = ET.SubElement(suite, "properties")
    for name, value in (("cluster", report.cluster), ("desired_file", report.desired_file)):
        ET.SubElement(properties, "property", {"name": name, "value": _xml_text(value)})
    # Not the `timestamp` attribute: JUnit's schema wants it without a time zone, and this one is UTC.
    ET.SubElement(properties, "property", {"name": "checked_at", "value": _xml_text(report.checked_at)})
    classname = _xml_text(report.cluster)
    if not report.findings and not report.unchecked:
        ET.SubElement(suite, "testcase", {"classname": classname, "name": "no drift"})
    for finding in report.findings:
        case = ET.SubElement(suite, "testcase", {"classname": classname, "name": _xml_text(case_name(finding))})
        failure = ET.SubElement(
            case, "failure", {"type": str(finding.severity), "message": _xml_text(_message(finding))}
        )
        failure.text = _xml_text(_details(finding))
    for part in report.unchecked:
        case = ET.SubElement(suite, "testcase", {"classname": classname, "name": _xml_text(f"{part.node}/{part.part}")})
        said = "skipped on purpose" if part.on_purpose else "not checked"  # on purpose: --skip-guest
        message = f"{said}: {part.reason}" + (f": {part.detail}" if part.detail else "")
        ET.SubElement(case, "skipped", {"message": _xml_text(message)})
    if report.notes:
        out = ET.SubElement(suite, "system-out")
        out.text = _xml_text("\n".join(report.notes) + "\n")


def drift_junit(reports: list[DriftReport]) -> str:
    """The reports of one drift check as one JUnit XML document (UTF-8, ending in a newline)."""
    failures = sum(len(r.findings) for r in reports)
    tests = sum(_cases(r) for r in reports)
    skipped = sum(len(r.unchecked) for r in reports)
    root = ET.Element(
        "testsuites",
        {
            "name": "mscsctl drift",
            "tests": str(tests),
            "failures": str(failures),
            "errors": "0",
            "skipped": str(skipped),
        },
    )
    for report in reports:
        _suite(root, report)
    ET.indent(root, space="  ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
