"""Every `--json` output, produced through the real CLI, validates against its JSON Schema.

The schemas in docs/schemas/ forbid properties they do not list (`additionalProperties:
false`), so an output that gains a field fails here until the field is in its schema; and
every property a schema lists must be in docs/json-formats.md or docs/plan-format.md, so a
field is never in a schema without its documentation. Plans and drift come from the
hand-built worlds of the planner tests (vCenter's one read replaced by the world, nothing
else), show from a state those worlds leave, validate and rules from the examples; one apply
against the lab gives the apply result.
"""

from __future__ import annotations

import json
import re
from importlib.metadata import version
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from reconciler import run as run_loop
from reconciler.apply import ApplyFailed
from reconciler.cli import main
from reconciler.observed import ObservedNic
from reconciler.plan import UncheckedPart
from reconciler.report.json_formats import apply_document
from reconciler.run import ApplyResult, ApplyStatus
from state import LocalFileBackend
from tests.unit.plan_world import CAB_YAML, cab_world
from tests.unit.report_world import (
    _with_vm,
    applied,
    drifted_world,
    named_cluster,
    without_guests,
)

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "docs" / "schemas"
DOCS = [ROOT / "docs" / "json-formats.md", ROOT / "docs" / "plan-format.md"]
FORMATS = ["plan", "fleet-plan", "apply", "drift", "show", "states", "validate", "rules"]


def schema(name: str) -> dict[str, Any]:
    return json.loads((SCHEMAS / f"{name}.schema.json").read_text(encoding="utf-8"))


# The schemas refer to each other by `$id` (`urn:mscsctl:schema:plan#/$defs/unchecked`).
REGISTRY = Registry().with_resources(
    (schema(name)["$id"], Resource.from_contents(schema(name), default_specification=DRAFT202012)) for name in FORMATS
)


def check(name: str, document: Any) -> None:
    """`document` is valid under the schema `name`, and says which mscsctl wrote it."""
    validator = jsonschema.Draft202012Validator(schema(name), registry=REGISTRY)
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}" for e in errors)
    assert document["mscsctl_version"] == version("mscsctl")
    assert isinstance(document["format_version"], int)


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any]:
    code = main(list(args))
    out, err = capsys.readouterr()
    assert out.startswith("{"), f"exit {code}, stderr: {err}"
    return code, json.loads(out)


@pytest.fixture(autouse=True)
def _vcenter_settings(monkeypatch):
    """A vCenter named, so that the settings are complete; nothing connects to it."""
    for name in ("VSPHERE_SERVER", "VSPHERE_USER", "VSPHERE_PASSWORD"):
        monkeypatch.setenv(name, "vcenter.invalid" if name == "VSPHERE_SERVER" else "x")
    monkeypatch.delenv("MSCSCTL_STATE", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)


def desired(directory: Path, name: str, **spec_changes: Any) -> Path:
    doc = {**CAB_YAML, "metadata": {"name": name}, "spec": {**CAB_YAML["spec"], **spec_changes}}
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def vcenter_shows(monkeypatch, worlds: dict[str, Any]) -> None:
    """vCenter's one read of a run answered by the hand-built worlds, cluster by cluster."""

    def read(connection, targets, skip_guest):
        login = connection.settings()
        seen = {d.name: worlds[d.name] for d in targets.desired}
        return run_loop._Reading(seen, dict.fromkeys(seen, login), {})

    monkeypatch.setattr(run_loop, "_read_vcenter", read)


@pytest.fixture
def clusters(tmp_path, monkeypatch) -> tuple[Path, Path]:
    """Three clusters' files, each in its own directory (they share the world's VMs and LUNs,
    which one directory refuses), and their states: one to build, one edited with its guests
    not reached, one applied with nothing to do."""
    files, states = tmp_path / "clusters", tmp_path / "states"
    states.mkdir()
    desired(files / "new", "sql-prod-01")
    world2, state2 = applied(named_cluster("sql-prod-02"))
    node = world2.vms["SQLNODE1"]
    world2 = _with_vm(world2, "SQLNODE1", nics=[*node.nics, ObservedNic(key=4009, adapter="e1000e", network="Backup")])
    desired(
        files / "edited",
        "sql-prod-02",
        sharedDisks={"disks": CAB_YAML["spec"]["sharedDisks"]["disks"][:1]},
        hostOptions={"Disk.UseLunReset": 0},
    )
    world3, state3 = applied(named_cluster("sql-prod-03"))
    desired(files / "done", "sql-prod-03")
    for state in (state2, state3):
        LocalFileBackend(states / f"{state.cluster}.state.json").write(state, expected_serial=None)
    vcenter_shows(
        monkeypatch,
        {
            "sql-prod-01": cab_world(),
            "sql-prod-02": without_guests(world2, "SQLNODE1", "SQLNODE2"),
            "sql-prod-03": world3,
        },
    )
    return files, states


def test_plan_of_a_file_and_of_a_directory(capsys, clusters):
    files, states = clusters
    code, one = cli(capsys, "plan", str(files / "new" / "sql-prod-01.yaml"), "--json", "--state-dir", str(states))
    assert code == 0
    check("plan", one)
    kinds = {a["kind"] for a in one["actions"]}
    assert {"power-off", "add-controller", "create-rule", "set-host-option", "reserve-lun", "attach-disk"} <= kinds
    code, edited = cli(capsys, "plan", str(files / "edited"), "--json", "--state-dir", str(states))
    assert code == 0
    check("fleet-plan", edited)
    (plan,) = edited["plans"]
    assert plan["unchecked"] and plan["findings"] and plan["unmanaged"] and plan["summary"]["delete"]
    code, done = cli(capsys, "plan", str(files / "done"), "--json", "--state-dir", str(states))
    assert code == 0
    check("fleet-plan", done)
    assert done["plans"][0]["actions"] == []


def test_a_decommissioning_plan(capsys, clusters):
    files, states = clusters
    done = str(files / "done" / "sql-prod-03.yaml")
    code, plan = cli(capsys, "plan", done, "--destroy", "--json", "--state-dir", str(states))
    assert code == 0
    check("plan", plan)
    assert plan["destroy"] and plan["records_destroyed"] and plan["kept"]
    assert {"detach-disk", "remove-controller", "release-lun"} <= {a["kind"] for a in plan["actions"]}


def test_a_saved_plan_is_the_same_document_and_is_read_back(capsys, clusters, tmp_path):
    files, states = clusters
    out = tmp_path / "plan.json"
    code = main(["plan", str(files / "edited"), "--out", str(out), "--state-dir", str(states)])
    capsys.readouterr()
    assert code == 0
    check("fleet-plan", json.loads(out.read_text()))
    code = main(["graph", str(out)])  # read back strictly: the version fields are known to the reader
    _, err = capsys.readouterr()
    assert code == 0, err


def test_drift(capsys, tmp_path, monkeypatch):
    files, states = tmp_path / "clusters", tmp_path / "states"
    states.mkdir()
    _, world, state = drifted_world()
    desired(files / "drifted", "sql-prod-01")
    LocalFileBackend(states / "sql-prod-01.state.json").write(state, expected_serial=None)
    clean_world, clean_state = applied(named_cluster("sql-prod-03"))
    desired(files / "partial", "sql-prod-03")
    LocalFileBackend(states / "sql-prod-03.state.json").write(clean_state, expected_serial=None)
    vcenter_shows(monkeypatch, {"sql-prod-01": world, "sql-prod-03": without_guests(clean_world, "SQLNODE2")})
    code, drifted = cli(capsys, "drift", str(files / "drifted"), "--json", "--state-dir", str(states))
    assert code == 2
    check("drift", drifted)
    assert any(f["last_applied_at"] and f["changed_outside"] for f in drifted["reports"][0]["findings"])
    code, partial = cli(capsys, "drift", str(files / "partial"), "--json", "--state-dir", str(states))
    check("drift", partial)
    assert partial["reports"][0]["unchecked"] and not partial["reports"][0]["findings"]


def test_show_one_state_and_a_directory_of_them(capsys, clusters, monkeypatch):
    _, states = clusters
    code, shown = cli(capsys, "show", "--state", str(states / "sql-prod-02.state.json"), "--json")
    assert code == 0
    check("show", shown)
    assert "version" not in shown and shown["resources"]
    monkeypatch.chdir(states.parent)
    code, listed = cli(capsys, "show", "--state-dir", str(states), "--json")
    assert code == 0
    check("states", listed)
    assert [s["cluster"] for s in listed["states"]] == ["sql-prod-02", "sql-prod-03"]


def test_validate(capsys, tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("apiVersion: mscsctl/v1\nkind: FailoverCluster\nmetadata: {name: x}\nspec: {topology: nope}\n")
    code, report = cli(capsys, "validate", str(ROOT / "examples"), str(broken), "--json", "--show-defaults")
    assert code == 1
    check("validate", report)
    assert not report["valid"] and report["files"][-1]["findings"]
    assert any("normalized" in f for f in report["files"])


def test_rules(capsys):
    code, rules = cli(capsys, "rules", "--json")
    assert code == 0
    check("rules", rules)
    assert len(rules["rules"]) > 20


def test_apply_results_that_failed_or_did_not_start():
    """A failed and a not-started cluster's forms (an apply that ran is checked against the lab)."""
    failed = ApplyFailed("vCenter said no", done=["a#power-off"], left=["a#power-on"])
    unchecked = (UncheckedPart(node="SQLNODE1", part="guest", reason="no-credentials", detail="set them"),)
    document = apply_document(
        [
            ApplyResult("sql-prod-01", ApplyStatus.FAILED, error=failed, unchecked=unchecked),
            ApplyResult("sql-prod-02", ApplyStatus.NOT_STARTED, note="sql-prod-01 shares a host with it"),
            ApplyResult("sql-prod-03", ApplyStatus.NO_CHANGES),
        ]
    )
    check("apply", document)
    assert document["changes"] == 0


@pytest.mark.slow
def test_apply_plan_and_drift_against_the_lab(lab, tmp_path):
    from tests.integration.cli import example, run

    path = str(example("cluster-in-a-box", tmp_path))
    applied_now = run(lab, "apply", path, "--auto-approve", "--skip-guest", "--json")
    assert applied_now.code == 0, applied_now
    document = json.loads(applied_now.out)
    check("apply", document)
    assert document["changes"] > 0 and document["clusters"][0]["status"] == "applied"
    planned = run(lab, "plan", path, "--skip-guest", "--json")
    assert planned.code == 0, planned
    check("plan", json.loads(planned.out))
    drift = run(lab, "drift", path, "--skip-guest", "--json")
    assert drift.code == 0, drift
    check("drift", json.loads(drift.out))


# The schemas and the docs


def _properties(node: Any, found: set[str]) -> set[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "properties" and isinstance(value, dict):
                found |= set(value)
            _properties(value, found)
    elif isinstance(node, list):
        for item in node:
            _properties(item, found)
    return found


@pytest.mark.parametrize("name", FORMATS)
def test_every_field_a_schema_allows_is_documented(name):
    documented = set(re.findall(r"`([A-Za-z_]+)`", "\n".join(d.read_text(encoding="utf-8") for d in DOCS)))
    missing = sorted(_properties(schema(name), set()) - documented)
    assert not missing, f"{name}.schema.json: not in docs/json-formats.md or docs/plan-format.md: {missing}"


@pytest.mark.parametrize("name", FORMATS)
def test_each_schema_is_a_valid_strict_schema(name):
    data = schema(name)
    jsonschema.Draft202012Validator.check_schema(data)
    assert data["additionalProperties"] is False
    assert {"format_version", "mscsctl_version"} <= set(data["required"])
    assert f"docs/schemas/{name}.schema.json" in (ROOT / "docs" / "json-formats.md").read_text(encoding="utf-8")
