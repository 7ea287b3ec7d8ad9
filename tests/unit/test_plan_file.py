"""Saved plans: written as docs/plan-format.md says, read back exactly, anything else refused in one line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from reconciler.cli import main
from reconciler.plan import PLAN_FORMAT_VERSION, ActionKind, Plan
from reconciler.plan_file import PlanFileError, parse_plans, plan_document, read_plans, saved_plans_at, write_plans
from reconciler.planner import build_plan
from reconciler.seal import seal_problem, sealed
from tests.unit.plan_world import cab_cluster, cab_world

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def first_plan(name: str = "sql-prod-01") -> Plan:
    plan = build_plan(
        cab_cluster(),
        cab_world(),
        desired_file="examples/cluster-across-boxes.yaml",
        desired_hash="0" * 64,
        created_at="2026-01-01T00:00:00Z",
    )
    return plan.model_copy(update={"cluster": name})


def saved(data: Any, tmp_path: Path) -> Path:
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(data, indent=2))
    return path


def refusal(data: Any, tmp_path: Path) -> str:
    path = saved(data, tmp_path)
    with pytest.raises(PlanFileError) as info:
        read_plans(path)
    message = str(info.value)
    assert len(message.splitlines()) == 1, message
    assert message.startswith(f"{path}")
    return message.removeprefix(f"{path}")


def test_a_real_plan_round_trips_unchanged(tmp_path: Path) -> None:
    plan = first_plan()
    assert plan.actions and {a.after is not None for a in plan.actions} == {True}
    path = tmp_path / "plan.json"
    write_plans(path, [plan], fleet=False)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    data = json.loads(path.read_text())
    assert data["format_version"] == PLAN_FORMAT_VERSION and data["summary"] == {
        "create": 14,  # with the VM-Host rule of the HA-enabled vSphere cluster (MSCS-PLACE-010)
        "update": 14,
        "delete": 0,
    }
    power_on = next(a for a in data["actions"] if a["kind"] == str(ActionKind.POWER_ON))
    assert power_on["after"] == {"state": "poweredOn", "waitForTools": True}  # payloads by their JSON names
    assert read_plans(path) == [sealed(plan)]  # a saved plan carries its seal
    assert seal_problem(read_plans(path)[0]) is None
    assert saved_plans_at(path) == [sealed(plan)]


def test_a_directory_plan_round_trips_unchanged(tmp_path: Path) -> None:
    plans = [first_plan(), first_plan("sql-prod-02")]
    document = plan_document(plans, fleet=True)
    assert list(document) == ["format_version", "mscsctl_version", "plans"]
    assert parse_plans(json.dumps(document).encode(), "plan.json") == [sealed(p) for p in plans]


def test_an_unknown_top_level_field_is_refused(tmp_path: Path) -> None:
    single = {**plan_document([first_plan()], fleet=False), "approved_by": "me"}
    assert refusal(single, tmp_path) == ": approved_by: unknown field"
    fleet = {**plan_document([first_plan()], fleet=True), "approved_by": "me"}
    assert refusal(fleet, tmp_path) == ": approved_by: unknown field"


def test_an_unknown_field_inside_an_action_payload_is_refused(tmp_path: Path) -> None:
    document = plan_document([first_plan(), first_plan("sql-prod-02")], fleet=True)
    document["plans"][1]["actions"][3]["after"]["bogus"] = 1
    assert refusal(document, tmp_path) == ": plans[1].actions[3].after.bogus: unknown field"


def test_a_payload_with_variants_is_located_by_its_fields_not_its_variant(tmp_path: Path) -> None:
    document = plan_document([first_plan()], fleet=False)
    n, disk = next((n, a) for n, a in enumerate(document["actions"]) if a["kind"] == str(ActionKind.CREATE_DISK))
    del disk["after"]["file"]
    assert refusal(document, tmp_path) == f": actions[{n}].after.file: Field required"


@pytest.mark.parametrize("where", ["top", "inner"])
def test_a_newer_format_version_asks_for_a_newer_mscsctl(tmp_path: Path, where: str) -> None:
    document = plan_document([first_plan()], fleet=True)
    (document if where == "top" else document["plans"][0])["format_version"] = PLAN_FORMAT_VERSION + 1
    field = "format_version" if where == "top" else "plans[0].format_version"
    assert refusal(document, tmp_path) == (
        f": {field}: the plan has format version 2; this mscsctl reads version 1 only. Use a newer mscsctl."
    )


@pytest.mark.parametrize("version", [0, "1", None, True, 1.0])
def test_an_unknown_format_version_is_refused(tmp_path: Path, version: Any) -> None:
    document = {**plan_document([first_plan()], fleet=False), "format_version": version}
    assert refusal(document, tmp_path) == (
        f": format_version: no known plan format version ({version!r}): not a plan written by mscsctl"
    )


def test_a_truncated_plan_says_where_its_json_breaks(tmp_path: Path) -> None:
    text = json.dumps(plan_document([first_plan()], fleet=False), indent=2)
    path = tmp_path / "plan.json"
    path.write_text(text[:200])
    with pytest.raises(PlanFileError) as info:
        saved_plans_at(path)
    line = text[:200].count("\n") + 1
    assert str(info.value).startswith(f"{path}:{line}:")
    assert "not a plan written by mscsctl (invalid JSON: " in str(info.value)


def test_json_that_is_no_plan_is_refused(tmp_path: Path) -> None:
    assert refusal([1, 2], tmp_path).endswith(
        ": not a plan written by mscsctl (expected a JSON object with format_version and actions or plans)"
    )
    assert "not a plan written by mscsctl" in refusal({"clusters": []}, tmp_path)


def test_desired_files_and_directories_are_not_saved_plans(tmp_path: Path) -> None:
    assert saved_plans_at(EXAMPLES / "cluster-across-boxes.yaml") is None
    assert saved_plans_at(EXAMPLES / "fleet") is None
    as_json = tmp_path / "cluster.json"
    as_json.write_text(json.dumps({"apiVersion": "mscsctl/v1", "kind": "FailoverCluster"}))
    assert saved_plans_at(as_json) is None


def test_apply_of_a_plan_with_an_unknown_field_exits_1_with_one_line(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("VSPHERE_SERVER", "127.0.0.1:9")  # never reached: the plan is refused first
    document = plan_document([first_plan()], fleet=False)
    document["actions"][0]["after"]["bogus"] = True
    path = saved(document, tmp_path)
    code = main(["apply", str(path)])
    out, err = capsys.readouterr()
    assert code == 1
    assert out == ""
    assert err == f"Error: {path}: actions[0].after.bogus: unknown field\n"
