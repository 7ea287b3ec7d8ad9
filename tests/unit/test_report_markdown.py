"""Plans and drift as Markdown for a merge request: golden files, table shape, escaping."""

from __future__ import annotations

import re

from reconciler.diff import Op
from reconciler.drift import DriftFinding, DriftReport, DriftSeverity, detect_drift
from reconciler.plan import Action, ActionKind, Plan, Reason
from reconciler.render import counts
from reconciler.report.markdown import drift_markdown, plan_markdown
from tests.unit.golden_files import check_golden
from tests.unit.report_world import CHECKED_AT, drifted_world, sample_drift, sample_plans


def cells(row: str) -> list[str]:
    """A GFM table row split as GitHub splits it: on every `|` not escaped with a backslash."""
    assert row.startswith("|") and row.endswith("|"), row
    return [c.strip() for c in re.split(r"(?<!\\)\|", row[1:-1])]


def tables(text: str) -> list[list[list[str]]]:
    out: list[list[list[str]]] = []
    current: list[list[str]] = []
    for line in text.splitlines():
        if line.startswith("|"):
            current.append(cells(line))
        elif current:
            out.append(current)
            current = []
    if current:
        out.append(current)
    return out


def assert_tables_are_rectangular(text: str) -> None:
    for table in tables(text):
        header, rule, *rows = table
        assert all(re.fullmatch(r"-{3,}:?", c) for c in rule), rule
        for row in rows:
            assert len(row) == len(header), (header, row)


def test_plan_markdown_matches_the_golden_file():
    check_golden("plan.md", plan_markdown(sample_plans()))


def test_drift_markdown_matches_the_golden_file():
    check_golden("drift.md", drift_markdown(sample_drift()))


def test_plan_summary_counts_each_cluster_and_the_total():
    plans = sample_plans()
    text = plan_markdown(plans)
    assert_tables_are_rectangular(text)
    summary = tables(text)[0]
    assert summary[0] == ["cluster", "to add", "to change", "to detach", "warnings"]
    for plan, row in zip(plans, summary[2:], strict=False):
        c = counts(plan)
        assert row == [plan.cluster, str(c["create"]), str(c["update"]), str(c["delete"]), str(len(plan.findings))]
    assert summary[-1][0] == "**total**"
    assert summary[-1][1] == f"**{sum(counts(p)['create'] for p in plans)}**"


def test_actions_are_listed_per_cluster_in_plan_order_with_symbol_kind_and_rule():
    plans = sample_plans()
    text = plan_markdown(plans)
    for plan in plans:
        section = text.split(f"### {plan.cluster}\n", 1)[1].split("\n### ", 1)[0]
        if not plan.actions:
            assert "No changes" in section
            continue
        rows = tables(section)[0][2:]
        assert [r[0] for r in rows] == [str(n) for n in range(1, len(plan.actions) + 1)]
        for action, row in zip(plan.actions, rows, strict=True):
            symbol = {Op.CREATE: "+", Op.UPDATE: "~", Op.DELETE: "-"}[action.op]
            assert row[1] == f"`{symbol}`"
            assert row[2] == f"`{action.address}`"
            assert row[3] == str(action.kind)
            assert row[6] == (f"`{action.rule}`" if action.rule else "")


def test_warnings_unmanaged_devices_notes_and_rules_cited_are_shown():
    text = plan_markdown(sample_plans())
    assert "**Warnings**\n\n- `MSCS-HOST-001` `spec.hostOptions.Disk.UseLunReset`: Disk.UseLunReset=0" in text
    assert "- `SQLNODE1: nic e1000e on Backup (key 4009)`" in text
    assert "MSCSCTL\\_GUEST\\_USER is not set" in text  # escaped, so not read as emphasis
    cited = text.split("### Rules cited\n", 1)[1]
    for rule_id in ("MSCS-HOST-001", "MSCS-HOST-004", "MSCS-DISK-009", "MSCS-PLACE-003"):
        assert cited.count(f"`{rule_id}`") == 1


def test_pipes_backticks_and_markup_in_values_stay_inside_their_cell():
    action = Action(
        id="c/node/N|1/nic/production#add-nic",
        address="c/node/N|1/nic/production",
        kind=ActionKind.ADD_NIC,
        op=Op.CREATE,
        target="N|1",
        after={"portgroup": "Prod|`A`", "adapter": "vmxnet3"},
        reason=Reason.MISSING,
        rule="MSCS-NET-001",
    )
    plan = Plan(cluster="c", actions=[action], notes=["a *note* with | and <b>html</b>"])
    text = plan_markdown([plan])
    assert_tables_are_rectangular(text)
    row = tables(text)[1][2]
    assert row[2] == "`c/node/N\\|1/nic/production`"
    # A value holding a backtick gets a longer fence, so the span is not cut short.
    assert row[4] == "``portgroup=Prod\\|`A`, adapter=vmxnet3``"
    assert "- a \\*note\\* with \\| and \\<b\\>html\\</b\\>" in text


def test_same_plans_same_text_and_no_clock():
    plans = sample_plans()
    assert plan_markdown(plans) == plan_markdown([p.model_copy() for p in plans])
    # created_at is data of the saved plan, not of the review comment.
    assert plans[0].created_at not in plan_markdown(plans)


def test_no_plans():
    assert plan_markdown([]) == "## mscsctl plan\n\nNo clusters.\n"


def test_drift_summary_and_findings_table():
    reports = sample_drift()
    text = drift_markdown(reports)
    assert_tables_are_rectangular(text)
    summary = tables(text)[0]
    assert summary[0] == ["cluster", "findings", "critical", "warning", "not checked"]
    drifted, _partial, _clean = reports
    assert summary[2] == ["sql-prod-01", str(len(drifted.findings)), "1", str(len(drifted.findings) - 1), "0"]
    assert summary[3] == ["sql-prod-02", "0", "0", "0", "2"]
    assert summary[4] == ["sql-prod-03", "0", "0", "0", "0"]
    assert summary[5] == [
        "**total**",
        f"**{len(drifted.findings)}**",
        "**1**",
        f"**{len(drifted.findings) - 1}**",
        "**2**",
    ]
    findings = tables(text)[1]
    assert findings[0] == [
        "severity",
        "address",
        "field",
        "observed",
        "desired",
        "last applied (when)",
        "changed outside mscsctl",
        "fix",
    ]
    sharing = next(r for r in findings[2:] if r[2] == "`sharing`")
    assert sharing == [
        "**critical**",
        "`sql-prod-01/node/SQLNODE2/controller/1`",
        "`sharing`",
        "`none`",
        "`physical`",
        "`physical` (2026-01-02T03:04:05Z)",
        "yes",
        "`mscsctl apply clusters/sql-prod-01.yaml`",
    ]
    nic = next(r for r in findings[2:] if r[1].endswith("nic/heartbeat`"))
    assert nic[3] == "*absent*" and nic[4] == "`portgroup=Heartbeat, adapter=vmxnet3`"
    assert "### sql-prod-03\n\nDesired file `clusters/sql-prod-03.yaml`, checked at" in text
    assert "no drift" in text.split("### sql-prod-03", 1)[1]


def test_parts_not_checked_are_listed_and_never_read_as_no_drift():
    text = drift_markdown(sample_drift())
    partial = text.split("### sql-prod-02", 1)[1].split("### ", 1)[0]
    assert "no drift, vCenter matches" not in partial
    assert "not checked in full; no drift in the parts that were checked." in partial
    assert "**Not checked** (this report does not cover them):" in partial
    for node in ("SQLNODE1", "SQLNODE2"):
        assert f"- `{node}` guest, `no-credentials`: no guest credentials: set MSCSCTL\\_GUEST\\_USER" in partial
    plan = plan_markdown(sample_plans())
    edited = plan.split("### sql-prod-02", 1)[1].split("### ", 1)[0]
    assert "- `SQLNODE1` guest, `no-credentials`" in edited and "- `SQLNODE2` guest, `no-credentials`" in edited
    assert "Not checked" not in plan.split("### sql-prod-02", 1)[0]


def test_drift_without_state_was_never_applied_nor_changed_outside():
    cluster, world, _ = drifted_world()
    report = detect_drift(cluster, world, None, desired_file="f.yaml", checked_at=CHECKED_AT)
    rows = tables(drift_markdown([report]))[1][2:]
    assert rows and all(r[5] == "never" and r[6] == "no" for r in rows)


def test_drift_fix_with_words_before_the_command_and_escaped_values():
    finding = DriftFinding(
        cluster="c",
        address="c/node/N/disk",
        object="disk",
        field="lun",
        desired="naa.1 mapped once",
        observed="naa.1 at SCSI 1:0 and 1:2|x",
        changed_outside=True,
        severity=DriftSeverity.CRITICAL,
        fix="detach the extra mapping by hand, then mscsctl apply c.yaml",
    )
    report = DriftReport(cluster="c", desired_file="c.yaml", checked_at=CHECKED_AT, findings=[finding])
    text = drift_markdown([report])
    assert_tables_are_rectangular(text)
    row = tables(text)[1][2]
    assert row[3] == "`naa.1 at SCSI 1:0 and 1:2\\|x`"
    assert row[7] == "detach the extra mapping by hand, then `mscsctl apply c.yaml`"
