"""`mscsctl validate`, `schema` and `rules`, through the real console entry point."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from reconciler.cli import main
from reconciler.loader import load_text
from reconciler.rules import catalogue
from reconciler.schema import SCHEMA_FILE

ROOT = Path(__file__).resolve().parent.parent.parent
CAB = "examples/cluster-across-boxes.yaml"
CIB = "examples/cluster-in-a-box.yaml"
P2V = "examples/physical-to-virtual.yaml"
LOCATED = re.compile(r"^\S+:\d+:\d+: .+ \[[A-Z0-9-]+\]$")


@pytest.fixture(autouse=True)
def _in_repo(monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("NO_COLOR", raising=False)


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def broken(tmp_path: Path) -> Path:
    path = tmp_path / "broken.yaml"
    text = (ROOT / CAB).read_text()
    text = text.replace("  datacenter: DC1\n", "").replace("bus: 1", "bus: 0").replace("diskTimeoutSeconds: 60", "x: 1")
    path.write_text(text)
    return path


def test_valid_file(capsys):
    code, out, err = run(capsys, "validate", CAB)
    assert code == 0
    assert out == f"{CAB}: valid\n"
    assert err == ""


def test_warnings_alone_exit_zero_and_are_printed(capsys):
    code, out, _ = run(capsys, "validate", CIB)
    assert code == 0
    first, summary = out.splitlines()
    assert LOCATED.match(first) and first.endswith("[MSCS-PLACE-001]") and ": warning: " in first
    assert summary == f"{CIB}: valid (1 warning)"


def test_quiet_hides_warnings_not_the_result(capsys):
    code, out, _ = run(capsys, "--quiet", "validate", CIB)
    assert code == 0
    assert out == f"{CIB}: valid (1 warning)\n"


def test_every_error_located_then_a_summary(capsys, tmp_path):
    path = broken(tmp_path)
    code, out, _ = run(capsys, "validate", str(path))
    assert code == 1
    *findings, summary = out.splitlines()
    assert findings and all(LOCATED.match(line) for line in findings), out
    assert all(line.startswith(f"{path}:") for line in findings)
    assert [line.rsplit("[", 1)[1] for line in findings] == ["SPEC-REQUIRED]", "SPEC-UNKNOWN-FIELD]"]
    assert summary == f"{path}: 2 errors"
    assert "Traceback" not in out


def test_rule_errors_when_the_shape_is_right(capsys, tmp_path):
    path = tmp_path / "bus0.yaml"
    path.write_text((ROOT / CAB).read_text().replace("bus: 1", "bus: 0"))
    code, out, _ = run(capsys, "validate", str(path))
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if "bus: 0" in text)
    assert code == 1
    assert out.splitlines()[0].startswith(f"{path}:{line}:12: spec.sharedDisks.controller.bus: bus 0 holds")
    assert out.splitlines()[-1] == f"{path}: 1 error"


def test_several_files_each_get_a_summary_and_one_bad_file_fails_all(capsys, tmp_path):
    code, out, _ = run(capsys, "validate", CAB, str(broken(tmp_path)), P2V)
    assert code == 1
    summaries = [line for line in out.splitlines() if not LOCATED.match(line)]
    assert summaries == [f"{CAB}: valid", f"{tmp_path / 'broken.yaml'}: 2 errors", f"{P2V}: valid"]


def test_json(capsys, tmp_path):
    code, out, _ = run(capsys, "validate", "--json", CIB, str(broken(tmp_path)))
    assert code == 1
    data = json.loads(out)
    assert data["valid"] is False
    box, bad = data["files"]
    assert (box["valid"], box["errors"], box["warnings"]) == (True, 0, 1)
    assert box["findings"][0]["rule_id"] == "MSCS-PLACE-001"
    assert box["findings"][0]["severity"] == "warning"
    assert box["findings"][0]["field"] == "spec.topology"
    assert box["findings"][0]["path"] == ["spec", "topology"]
    assert bad["errors"] == 2 and not bad["valid"]
    for f in bad["findings"]:
        assert f["file"].endswith("broken.yaml") and f["line"] >= 1 and f["column"] >= 1
        assert LOCATED.match(f["text"])


def test_json_valid_exits_zero(capsys):
    code, out, _ = run(capsys, "validate", "--json", CAB, P2V)
    assert code == 0 and json.loads(out)["valid"] is True


def test_show_defaults_prints_yaml_that_validates_again(capsys):
    code, out, err = run(capsys, "validate", "--show-defaults", CIB)
    assert code == 0
    assert err.splitlines()[-1] == f"{CIB}: valid (1 warning)"
    doc = yaml.safe_load(out)
    controller = doc["spec"]["sharedDisks"]["controller"]
    assert controller == {"bus": 1, "type": "lsilogic-sas", "sharing": "virtual"}
    assert [d["unit"] for d in doc["spec"]["sharedDisks"]["disks"]] == [0, 1]
    assert doc["spec"]["placement"]["separateHosts"] is False
    assert doc["spec"]["hostOptions"] == {"Disk.ResetOnFailure": 1, "Disk.UseLunReset": 1, "Disk.UseDeviceReset": 0}
    again = load_text(out, "normalized.yaml")
    assert again.valid


def test_show_defaults_of_several_files_is_a_yaml_stream(capsys):
    code, out, _ = run(capsys, "validate", "--show-defaults", CAB, P2V)
    assert code == 0
    docs = list(yaml.safe_load_all(out))
    assert [d["metadata"]["name"] for d in docs] == ["sql-prod-01", "p2v-file-01"]
    assert docs[1]["spec"]["sharedDisks"]["disks"][0]["unit"] == 0


def test_show_defaults_with_json(capsys):
    code, out, _ = run(capsys, "validate", "--json", "--show-defaults", P2V)
    assert code == 0
    normalized = json.loads(out)["files"][0]["normalized"]
    assert normalized["spec"]["sharedDisks"]["controller"]["sharing"] == "physical"


def test_unreadable_inputs_are_findings_not_tracebacks(capsys, tmp_path):
    (tmp_path / "bin.yaml").write_bytes(bytes(range(256)))
    code, out, err = run(capsys, "validate", str(tmp_path / "missing.yaml"), str(tmp_path), str(tmp_path / "bin.yaml"))
    assert code == 1
    assert "Traceback" not in out + err
    rules = [line.rsplit("[", 1)[1] for line in out.splitlines() if LOCATED.match(line)]
    assert rules == ["SPEC-FILE]", "SPEC-YAML]", "SPEC-YAML]"]  # the directory's one file is read too


def test_a_directory_is_every_desired_file_in_it(capsys):
    code, out, _ = run(capsys, "validate", str(ROOT / "examples" / "fleet"))
    assert code == 0, out
    assert sorted(line.split(":")[0].rsplit("/", 1)[-1] for line in out.splitlines()) == [
        "fleet-01.yaml",
        "fleet-02.yaml",
        "fleet-03.yaml",
    ]


def test_standard_input(capsys, monkeypatch):
    import io

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO((ROOT / P2V).read_bytes())))
    code, out, _ = run(capsys, "validate", "-")
    assert code == 0 and out == "<stdin>: valid\n"


def test_no_file_is_a_usage_error_exit_1(capsys):
    code, _, err = run(capsys, "validate")
    assert code == 1
    assert "Missing argument" in err


def test_schema_prints_the_shipped_schema(capsys):
    code, out, _ = run(capsys, "schema")
    assert code == 0
    assert out == SCHEMA_FILE.read_text(encoding="utf-8")
    assert json.loads(out)["$id"]


def test_rules_lists_the_catalogue(capsys):
    code, out, _ = run(capsys, "rules")
    assert code == 0
    for rule in catalogue():
        line = next(line for line in out.splitlines() if line.startswith(rule.id + " "))
        assert rule.title in line and rule.severity.value in line
    assert "source: [ch]" in out


def test_rules_json(capsys):
    code, out, _ = run(capsys, "rules", "--json")
    assert code == 0
    data = json.loads(out)["rules"]
    assert [r["id"] for r in data] == [r.id for r in catalogue()]
    assert set(data[0]) == {
        "id",
        "severity",
        "title",
        "source",
        "sources",
        "source_found",
        "unsourced",
        "versions",
        "since",
        "until",
        "needs_observed",
    }
    assert {r["versions"] for r in data} >= {"all", "< 6.0", ">= 6.0", "< 5.5", "< 7.0"}


@pytest.mark.parametrize("command", ["validate", "schema", "rules"])
def test_help(capsys, command):
    code, out, _ = run(capsys, command, "--help")
    assert code == 0
    assert f"Usage: mscsctl {command}" in out
    assert "Exit codes" in out


def test_the_installed_console_script(tmp_path):
    script = Path(sys.executable).with_name("mscsctl")
    if not script.exists():
        pytest.skip("the mscsctl console script is not installed beside this Python")
    ok = subprocess.run([str(script), "validate", CAB], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert (ok.returncode, ok.stdout) == (0, f"{CAB}: valid\n")
    bad = subprocess.run([str(script), "validate", str(broken(tmp_path))], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr


def test_an_unknown_log_level_is_one_line_and_exit_1(capsys, monkeypatch):
    monkeypatch.setenv("MSCSCTL_LOG_LEVEL", "loud")
    code, out, err = run(capsys, "validate", CAB)
    assert (code, out) == (1, "")
    assert err == "Error: MSCSCTL_LOG_LEVEL is one of debug, info, warning, error, not 'loud'\n"


@pytest.mark.parametrize(
    ("level", "shown"),
    [
        ("debug", ["d", "i", "Warning: w", "Error: e"]),
        ("INFO", ["i", "Warning: w", "Error: e"]),
        ("", ["i", "Warning: w", "Error: e"]),
        ("warning", ["Warning: w", "Error: e"]),
        ("error", ["Error: e"]),
    ],
)
def test_the_log_level_says_which_messages_reach_stderr(capsys, monkeypatch, level, shown):
    from reconciler.cli import output

    monkeypatch.setenv("MSCSCTL_LOG_LEVEL", level)
    output.configure(no_color=True, quiet=False)
    try:
        output.debug("d")
        output.info("i")
        output.warn("w")
        output.error("e")
    finally:
        monkeypatch.delenv("MSCSCTL_LOG_LEVEL")
        output.configure(no_color=False, quiet=False)
    out, err = capsys.readouterr()
    assert (out, err.splitlines()) == ("", shown)


def test_messages_never_show_a_database_password(capsys, monkeypatch):
    from reconciler.cli import output

    monkeypatch.setenv("MSCSCTL_LOG_LEVEL", "debug")
    output.configure(no_color=True, quiet=False, log_format="json")
    try:
        output.debug("state postgresql://mscsctl:Winter2024!@db/mscsctl")
        output.error("cannot connect: host=db password=Winter2024! dbname=mscsctl")
    finally:
        monkeypatch.delenv("MSCSCTL_LOG_LEVEL")
        output.configure(no_color=False, quiet=False)
    records = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [(r["level"], r["msg"]) for r in records] == [
        ("debug", "state postgresql://mscsctl:***@db/mscsctl"),
        ("error", "cannot connect: host=db password=*** dbname=mscsctl"),
    ]
