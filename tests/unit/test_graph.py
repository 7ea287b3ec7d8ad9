"""`mscsctl graph`: a plan's actions and their dependencies as Mermaid and DOT."""

from __future__ import annotations

import re

from reconciler.address import Address
from reconciler.diff import Op
from reconciler.graph import fleet_graph, plan_graph
from reconciler.plan import Action, ActionKind, Plan, Reason
from tests.unit.golden_files import check_golden
from tests.unit.report_world import sample_plans


def first_plan() -> Plan:
    return sample_plans()[0]


def test_mermaid_of_the_cross_box_plan_matches_the_golden_file():
    check_golden("plan-graph.mmd", plan_graph(first_plan(), "mermaid"))


def test_dot_of_the_cross_box_plan_matches_the_golden_file():
    check_golden("plan-graph.dot", plan_graph(first_plan(), "dot"))


def test_every_dependency_is_an_edge_and_every_action_a_box():
    plan = first_plan()
    text = plan_graph(plan, "mermaid")
    ids = {a.id: f"a{n}" for n, a in enumerate(plan.actions, 1)}
    edges = set(re.findall(r"^  (a\d+) --> (a\d+)$", text, re.MULTILINE))
    expected = {(ids[d], ids[a.id]) for a in plan.actions for d in a.depends_on}
    assert edges == expected and edges
    for n, action in enumerate(plan.actions, 1):
        assert re.search(rf'^\s+a{n}\["{n}\. {action.kind}<br/>', text, re.MULTILINE), action.id


def test_the_second_node_waits_for_the_first_to_run_again():
    plan = first_plan()
    text = plan_graph(plan, "dot")
    n = {a.id: i for i, a in enumerate(plan.actions, 1)}
    power_on_1 = next(a for a in plan.actions if a.kind is ActionKind.POWER_ON and a.target == "SQLNODE1")
    power_off_2 = next(a for a in plan.actions if a.kind is ActionKind.POWER_OFF and a.target == "SQLNODE2")
    assert f"  a{n[power_on_1.id]} -> a{n[power_off_2.id]};" in text


def test_a_fleet_gets_a_box_per_cluster_with_ids_that_do_not_collide():
    plans = sample_plans()
    text = fleet_graph(plans, "mermaid")
    for n, plan in enumerate(plans, 1):
        assert f'  subgraph c{n}_cluster["cluster {plan.cluster}"]' in text
    assert 'c3_a0["sql-prod-03: no changes"]' in text
    boxes = re.findall(r"^\s+(c\d+_a\d+)\[", text, re.MULTILINE)
    assert len(boxes) == len(set(boxes)) == sum(max(len(p.actions), 1) for p in plans)
    dot = fleet_graph(plans, "dot")
    assert re.findall(r"subgraph cluster_(c\d+)_cluster ", dot) == [f"c{n}" for n in range(1, len(plans) + 1)]


def test_quotes_and_markup_in_names_cannot_break_out_of_a_label():
    action = Action(
        id='c/node/N"1/nic/production#add-nic',
        address=Address.node("c", 'N"1', "nic", "production"),
        kind=ActionKind.ADD_NIC,
        op=Op.CREATE,
        target='N"1',
        after={"portgroup": "P", "adapter": "vmxnet3"},
        reason=Reason.MISSING,
    )
    plan = Plan(cluster="c", actions=[action])
    mermaid = plan_graph(plan, "mermaid")
    assert 'subgraph g1["node N#quot;1"]' in mermaid
    assert '"N"1' not in mermaid
    dot = plan_graph(plan, "dot")
    assert 'label="node N\\"1";' in dot


def test_a_plan_without_actions_is_one_box_saying_so():
    plan = Plan(cluster="quiet", actions=[])
    assert plan_graph(plan, "mermaid") == 'flowchart TD\n  a0["quiet: no changes"]\n'
