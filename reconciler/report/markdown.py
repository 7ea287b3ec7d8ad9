"""Plans and drift reports as GitHub-flavoured Markdown: what a pipeline posts on a merge request.

A reviewer reads the summary table first (one row a cluster), then each cluster's actions in
the order apply runs them. Every value that comes from vCenter or the desired file is an
inline code span and every `|` in a cell is escaped, so a port group or file name cannot
break the table or turn into Markdown.
"""

from __future__ import annotations

import re
from typing import Any

from reconciler.drift import DriftFinding, DriftReport, DriftSeverity
from reconciler.findings import Finding, Severity, one_line
from reconciler.plan import REASON_TEXT, SYMBOL, Plan, UncheckedPart
from reconciler.render import counts, summary
from reconciler.report import show_value
from reconciler.rules import catalogue

_MARKDOWN_PUNCTUATION = re.compile(r"([\\`*_\[\]<>|&~#])")
_LIST_MARKER = re.compile(r"^(\d*)([-+.)])(?=\s|$)")


def _text(text: str) -> str:
    """Plain text that Markdown shows as written (backslash-escaped punctuation, one line)."""
    text = _MARKDOWN_PUNCTUATION.sub(r"\\\1", one_line(text))
    # Nor may it start a list item of its own where it begins a line.
    return _LIST_MARKER.sub(r"\1\\\2", text)


def _code(text: str, *, cell: bool = False) -> str:
    """An inline code span holding `text` whatever backticks it contains; `cell`: inside a table."""
    text = one_line(text)
    if not text:
        return ""
    fence = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    edge = text[0] == "`" or text[-1] == "`" or (text[0] == " " and text[-1] == " ")
    pad = " " if edge else ""
    span = f"{fence}{pad}{text}{pad}{fence}"
    # GFM splits table cells on `|` before it parses code spans: escaped, it stays in the span.
    return span.replace("|", "\\|") if cell else span


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _table(header: list[str], align: str, rows: list[list[str]]) -> list[str]:
    """`align` has one letter a column: `l` left, `r` right."""
    rule = ["---:" if a == "r" else "---" for a in align]
    return [_row(header), _row(rule), *(_row(r) for r in rows), ""]


# --- plans ---------------------------------------------------------------------------------


def plan_markdown(plans: list[Plan]) -> str:
    """The plans of one run (a file, or a directory of clusters) as one Markdown document."""
    lines = ["## mscsctl plan", ""]
    if not plans:
        return "\n".join([*lines, "No clusters."]) + "\n"
    rows = []
    totals = {"create": 0, "update": 0, "delete": 0, "warnings": 0}
    for plan in plans:
        c = counts(plan)
        rows.append(
            [_text(plan.cluster), str(c["create"]), str(c["update"]), str(c["delete"]), str(len(plan.findings))]
        )
        for key in ("create", "update", "delete"):
            totals[key] += c[key]
        totals["warnings"] += len(plan.findings)
    if len(plans) > 1:
        rows.append(["**total**", *(f"**{totals[k]}**" for k in ("create", "update", "delete", "warnings"))])
    lines += _table(["cluster", "to add", "to change", "to detach", "warnings"], "lrrrr", rows)
    for plan in plans:
        lines += _plan_section(plan)
    lines += _rules_cited(plans)
    return "\n".join(lines).rstrip("\n") + "\n"


def _about(desired_file: str, more: str) -> str:
    """What a cluster's section is about: its desired file, then one more fact when there is one."""
    parts = [f"Desired file {_code(desired_file)}"] if desired_file else []
    return ", ".join([*parts, *([more] if more else [])])


def _plan_section(plan: Plan) -> list[str]:
    lines = [f"### {_text(plan.cluster)}", ""]
    about = _about(plan.desired_file, plan.vsphere_version and f"vSphere {_text(plan.vsphere_version)}")
    intro = about + ". " if about else ""
    if not plan.actions:
        lines += [f"{intro}No changes: vCenter matches the desired file.", ""]
    else:
        lines += [f"{intro}mscsctl will perform these actions, in this order:", ""]
        rows = [
            [
                str(n),
                _code(SYMBOL[action.op], cell=True),
                _code(str(action.address), cell=True),
                _text(str(action.kind)),
                _code(summary(action), cell=True),
                _text(REASON_TEXT[action.reason]),
                _code(action.rule or "", cell=True),
            ]
            for n, action in enumerate(plan.actions, 1)
        ]
        lines += _table(["#", "op", "address", "kind", "what changes", "why", "rule"], "rllllll", rows)
        c = counts(plan)
        lines += [f"**Plan: {c['create']} to add, {c['update']} to change, {c['delete']} to detach.**", ""]
    if plan.findings:
        lines += ["**Warnings**", ""]
        lines += [f"- {_finding(f)}" for f in plan.findings]
        lines.append("")
    if plan.unmanaged:
        lines += ["**Left alone** (not created by mscsctl, not in the desired file):", ""]
        lines += [f"- {_code(u)}" for u in plan.unmanaged]
        lines.append("")
    lines += _not_checked(plan.unchecked)
    if plan.notes:
        lines += ["**Notes**", ""]
        lines += [f"- {_text(n)}" for n in plan.notes]
        lines.append("")
    return lines


def _not_checked(unchecked: list[UncheckedPart]) -> list[str]:
    """The parts of the file that could not be checked (a reviewer must not read the rest as all),
    then those left out on purpose (`--skip-guest`)."""
    lines: list[str] = []
    for title, parts in (
        ("**Not checked** (this report does not cover them):", [u for u in unchecked if not u.on_purpose]),
        ("**Skipped on purpose** (`--skip-guest`):", [u for u in unchecked if u.on_purpose]),
    ):
        if not parts:
            continue
        lines += [title, ""]
        for part in parts:
            detail = f": {_text(part.detail)}" if part.detail else ""
            lines.append(f"- {_code(part.node)} {_text(part.part)}, {_code(part.reason)}{detail}")
        lines.append("")
    return lines


def _finding(finding: Finding) -> str:
    where = ":".join(str(p) for p in (finding.file, finding.line, finding.column) if p is not None)
    parts = [_code(finding.rule_id)]
    if where:
        parts.append(_code(where))
    if finding.path:
        parts.append(_code(finding.dotted_path))
    level = "" if finding.severity is Severity.WARNING else f"{finding.severity}: "
    return " ".join(parts) + f": {level}{_text(finding.message)}"


def _rules_cited(plans: list[Plan]) -> list[str]:
    """Every rule an action or a warning cites, once, in catalogue order, with its source."""
    cited = {a.rule for p in plans for a in p.actions if a.rule} | {f.rule_id for p in plans for f in p.findings}
    if not cited:
        return []
    rows = []
    for rule in catalogue():
        if rule.id in cited:
            rows.append([_code(rule.id, cell=True), _text(rule.title), _text(rule.source)])
            cited.discard(rule.id)
    rows += [[_code(rule_id, cell=True), "", ""] for rule_id in sorted(cited)]
    return ["### Rules cited", "", *_table(["rule", "what it asks", "source"], "lll", rows)]


# --- drift ---------------------------------------------------------------------------------


def drift_markdown(reports: list[DriftReport]) -> str:
    """The drift reports of one check (a file, or a directory of clusters) as one Markdown document."""
    lines = ["## mscsctl drift", ""]
    if not reports:
        return "\n".join([*lines, "No clusters."]) + "\n"
    rows = []
    for report in reports:
        critical = report.critical
        rows.append(
            [
                _text(report.cluster),
                str(len(report.findings)),
                str(critical),
                str(len(report.findings) - critical),
                str(len(report.unchecked)),
            ]
        )
    if len(reports) > 1:
        total = sum(len(r.findings) for r in reports)
        critical = sum(r.critical for r in reports)
        unchecked = sum(len(r.unchecked) for r in reports)
        rows.append(["**total**", f"**{total}**", f"**{critical}**", f"**{total - critical}**", f"**{unchecked}**"])
    lines += _table(["cluster", "findings", "critical", "warning", "not checked"], "lrrrr", rows)
    for report in reports:
        lines += _drift_section(report)
    return "\n".join(lines).rstrip("\n") + "\n"


def _drift_section(report: DriftReport) -> list[str]:
    lines = [f"### {_text(report.cluster)}", ""]
    intro = _about(report.desired_file, report.checked_at and f"checked at {_text(report.checked_at)}")
    intro = intro[:1].upper() + intro[1:]
    if not report.findings and not report.complete:
        partly = "not checked in full; no drift in the parts that were checked."
        lines += [f"{intro}: {partly}" if intro else partly[:1].upper() + partly[1:], ""]
    elif not report.findings:
        lines += [f"{intro}: no drift, vCenter matches the desired file." if intro else "No drift.", ""]
    else:
        n = len(report.findings)
        found = f"{n} finding{'s' if n != 1 else ''}, {report.critical} critical."
        lines += [f"{intro}: {found}" if intro else found, ""]
        header = [
            "severity",
            "address",
            "field",
            "observed",
            "desired",
            "last applied (when)",
            "changed outside mscsctl",
            "fix",
        ]
        lines += _table(header, "llllllll", [_finding_row(f) for f in report.findings])
    lines += _not_checked(report.unchecked)
    if report.notes:
        lines += ["**Notes**", ""]
        lines += [f"- {_text(n)}" for n in report.notes]
        lines.append("")
    return lines


def _value_cell(value: Any) -> str:
    return "*absent*" if value is None else _code(show_value(value), cell=True)


def _finding_row(finding: DriftFinding) -> list[str]:
    severity = str(finding.severity)
    if finding.severity is DriftSeverity.CRITICAL:
        severity = f"**{severity}**"
    if finding.last_applied_at is None and finding.last_applied is None:
        applied = "never"
    else:
        applied = _value_cell(finding.last_applied)
        if finding.last_applied_at:
            applied += f" ({_text(finding.last_applied_at)})"
    return [
        severity,
        _code(str(finding.address), cell=True),
        _code(finding.field, cell=True),
        _value_cell(finding.observed),
        _value_cell(finding.desired),
        applied,
        "yes" if finding.changed_outside else "no",
        _fix_cell(finding.fix),
    ]


def _fix_cell(fix: str) -> str:
    """The command as code, any words before it ("detach the extra mapping by hand, then") as text."""
    head, command, tail = fix.partition("mscsctl ")
    if not command:
        return _text(fix)
    return _text(head) + _code(command + tail, cell=True)
