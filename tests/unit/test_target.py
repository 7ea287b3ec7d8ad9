"""`--target` addresses as users type them, and the exit codes of plan and drift (README's table)."""

from __future__ import annotations

import pytest

from reconciler.address import Address, Scope
from reconciler.drift import DriftFinding, DriftReport, DriftSeverity
from reconciler.plan import Plan, UncheckedPart
from reconciler.run import drift_exit_code, plan_exit_code
from reconciler.target import Target, TargetError, narrowing

QUORUM = Address.node("sql-prod-01", "SQLNODE1", "disk", "quorum")
OPTION = Address.host("sql-prod-01", "esx-a1", "option", "Disk.UseLunReset")
RULE = Address.vsphere_cluster("sql-prod-01", "rule", "mscsctl-sql-prod-01")


@pytest.mark.parametrize(
    ("text", "matched"),
    [
        ("sql-prod-01", {QUORUM, OPTION, RULE}),
        ("sql-prod-01/node/SQLNODE1", {QUORUM}),
        ("sql-prod-01/node/SQLNODE1/disk", {QUORUM}),
        ("sql-prod-01/node/SQLNODE1/disk/quorum", {QUORUM}),
        ("sql-prod-01/host/esx-a1", {OPTION}),
        ("sql-prod-01/rule/mscsctl-sql-prod-01", {RULE}),
        ("sql-prod-01/node/SQLNODE2", set()),
        ("cib-test-01", set()),
    ],
)
def test_a_target_names_a_cluster_an_owner_a_kind_or_one_object(text, matched):
    target = Target.parse(text)
    assert {a for a in (QUORUM, OPTION, RULE) if target.matches(a)} == matched
    assert str(target) == text


def test_a_quoted_node_name_is_read_as_addresses_write_it():
    target = Target.parse('sql-prod-01/node/"SQL/NODE 1"')
    assert (target.scope, target.owner) == (Scope.NODE, "SQL/NODE 1")
    assert target.matches(Address.node("sql-prod-01", "SQL/NODE 1", "disk", "quorum"))


@pytest.mark.parametrize("text", ["sql-prod-01//node", "sql-prod-01/node/", "a/b", 'sql-prod-01/node/"open'])
def test_a_target_that_is_not_an_address_is_refused_naming_it(text):
    with pytest.raises(TargetError, match="--target"):
        Target.parse(text)


def _plan(*, changes: bool, unchecked: list[UncheckedPart]) -> Plan:
    actions = []
    if changes:
        actions = [
            {
                "id": f"{QUORUM}#create-disk",
                "address": str(QUORUM),
                "kind": "create-disk",
                "op": "create",
                "target": "SQLNODE1",
                "reason": "missing",
            }
        ]
    return Plan.model_validate({"cluster": "sql-prod-01", "actions": actions, "unchecked": unchecked})


NOT_SEEN = UncheckedPart(node="SQLNODE1", part="guest", reason="no-credentials")
SKIPPED = UncheckedPart(node="SQLNODE1", part="guest", reason="skip-guest", on_purpose=True)


@pytest.mark.parametrize(
    ("changes", "unchecked", "detailed", "plain"),
    [
        (False, [], 0, 0),
        (True, [], 2, 0),
        (False, [NOT_SEEN], 1, 0),
        (True, [NOT_SEEN], 1, 0),
        (False, [SKIPPED], 0, 0),
        (True, [SKIPPED], 2, 0),
    ],
)
def test_plan_exit_codes(changes, unchecked, detailed, plain):
    plans = [_plan(changes=changes, unchecked=unchecked)]
    assert plan_exit_code(plans, detailed=True) == detailed
    assert plan_exit_code(plans, detailed=False) == plain


def _report(*, drifted: bool, unchecked: list[UncheckedPart]) -> DriftReport:
    findings = []
    if drifted:
        findings = [
            DriftFinding(
                cluster="sql-prod-01",
                address=OPTION,
                object="option",
                field="value",
                changed_outside=True,
                severity=DriftSeverity.WARNING,
                fix="mscsctl apply sql-prod-01.yaml",
            )
        ]
    return DriftReport(
        cluster="sql-prod-01", desired_file="x.yaml", checked_at="", findings=findings, unchecked=unchecked
    )


@pytest.mark.parametrize(
    ("drifted", "unchecked", "code"),
    [
        (False, [], 0),
        (True, [], 2),
        (False, [NOT_SEEN], 1),
        (True, [NOT_SEEN], 1),
        (False, [SKIPPED], 0),
        (True, [SKIPPED], 2),
    ],
)
def test_drift_exit_codes(drifted, unchecked, code):
    assert drift_exit_code([_report(drifted=drifted, unchecked=unchecked)]) == code
    clean = _report(drifted=False, unchecked=[])
    assert drift_exit_code([clean, _report(drifted=drifted, unchecked=unchecked)]) == code


def test_targets_add_up_a_whole_cluster_holds_a_node_of_it():
    node, whole, other = (Target.parse(t) for t in ("sql-prod-01/node/SQLNODE1", "sql-prod-01", "cib-test-01"))
    assert narrowing([node, other], "sql-prod-01") == [node]
    assert narrowing([node, whole], "sql-prod-01") == []
    assert narrowing([other], "sql-prod-01") == []
