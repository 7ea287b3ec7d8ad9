"""The pipelines in examples/ci/ run: their own `mscsctl` lines, taken from the YAML as the CI
service would run them, against a lab of the fleet in examples/fleet/ and a PostgreSQL state.

Merge request: validate and plan (the Markdown posted, the plan kept); merge: apply exactly that
plan; nightly: drift, which passes while vCenter matches and fails (exit 2, a JUnit failure)
once someone changes a host option by hand. The lab's guests are not reached here, as in a
pipeline without a guest login: with `MSCSCTL_SKIP_GUEST=--skip-guest` (what examples/ci
says such a pipeline sets) the guests are skipped on purpose; without it drift exits 1.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import quote

import pytest
import yaml
from pyVmomi import VmomiSupport, vim

from labctl import find, prop
from tests.integration.cli import EXAMPLES
from tests.state_pg_fixture import postgres_dsn, postgres_server  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

CI_DIR = EXAMPLES / "ci"
FLEET = EXAMPLES / "fleet"


def mscsctl_lines(script: str) -> list[str]:
    """The shell lines of a step that call mscsctl."""
    return [line.strip() for line in script.splitlines() if line.strip().startswith("mscsctl ")]


def github_commands() -> dict[str, list[str]]:
    workflow = yaml.safe_load((CI_DIR / "github-actions.yml").read_text())
    return {
        name: [line for step in job["steps"] for line in mscsctl_lines(step.get("run", ""))]
        for name, job in workflow["jobs"].items()
    }


def gitlab_commands() -> dict[str, list[str]]:
    pipeline = yaml.safe_load((CI_DIR / "gitlab-ci.yml").read_text())
    return {
        name: [line for entry in job["script"] for line in mscsctl_lines(entry)]
        for name, job in pipeline.items()
        if isinstance(job, dict) and "script" in job
    }


def test_both_pipelines_run_the_same_mscsctl_commands():
    github, gitlab = github_commands(), gitlab_commands()
    assert set(github) == set(gitlab) == {"plan", "apply", "drift"}
    for job in github:
        assert github[job] == gitlab[job], job
    assert [c.split()[1] for c in github["plan"]] == ["validate", "plan"]
    assert [c.split()[1] for c in github["apply"]] == ["apply"]
    assert [c.split()[1] for c in github["drift"]] == ["drift"]


def _postgres_url(dsn: str) -> str:
    """`host=/dir port=N user=U dbname=D` as the URL the pipelines pass to --state."""
    parts = dict(item.split("=", 1) for item in dsn.split())
    return f"postgresql://{parts['user']}@/{parts['dbname']}?host={quote(parts['host'], safe='')}&port={parts['port']}"


def _shell(line: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", f"set -o pipefail; {line}"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
        check=False,
    )


@pytest.mark.parametrize("pipeline", ["github", "gitlab"])
def test_the_pipeline_commands_plan_apply_and_catch_drift(lab_factory, postgres_dsn, tmp_path, pipeline):  # noqa: F811
    commands = github_commands() if pipeline == "github" else gitlab_commands()
    lab = lab_factory(fleet=3)
    work = tmp_path / "checkout"
    shutil.copytree(FLEET, work / "examples" / "fleet")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("MSCSCTL_", "VSPHERE_"))},
        **lab.env(),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "FLEET": "examples/fleet",
        "MSCSCTL_STATE_URL": _postgres_url(postgres_dsn),
        "MSCSCTL_SKIP_GUEST": "--skip-guest",
        "NO_COLOR": "1",
    }

    for line in commands["plan"]:
        done = _shell(line, work, env)
        assert done.returncode == 0, (line, done.stderr)
    plan = json.loads((work / "plan.json").read_text())
    assert sorted(p["cluster"] for p in plan["plans"]) == ["fleet-01", "fleet-02", "fleet-03"]
    markdown = (work / "plan.md").read_text()
    assert markdown.startswith("## mscsctl plan")
    assert "| fleet-02 |" in markdown

    # The apply job finds the reviewed plan in reviewed/ (the artifact of the merge request).
    (work / "reviewed").mkdir()
    shutil.copy(work / "plan.json", work / "reviewed" / "plan.json")
    for line in commands["apply"]:
        done = _shell(line, work, env)
        assert done.returncode == 0, (line, done.stdout, done.stderr)

    (drift_line,) = commands["drift"]
    clean = _shell(drift_line, work, env)
    assert clean.returncode == 0, clean.stderr
    assert ET.parse(work / "drift.xml").getroot().get("failures") == "0"
    assert ET.parse(work / "drift.xml").getroot().get("skipped") == "6"  # 3 clusters x 2 guests, on purpose
    unchecked = _shell(drift_line, work, {k: v for k, v in env.items() if k != "MSCSCTL_SKIP_GUEST"})
    assert unchecked.returncode == 1, unchecked.stderr  # guests it cannot reach: never "no drift"
    assert "part of the file could not be checked" in unchecked.stderr

    si = lab.connect()
    host = find(si, vim.HostSystem, "esx-f02-1.lab.local")
    prop(si, host, "configManager.advancedOption").UpdateOptions(
        changedValue=[vim.option.OptionValue(key="Disk.UseDeviceReset", value=VmomiSupport.long(1))]
    )
    drifted = _shell(drift_line, work, env)
    assert drifted.returncode == 2, drifted.stderr
    failures = ET.parse(work / "drift.xml").getroot().findall(".//failure")
    assert [f.get("message") for f in failures] == [
        "fleet-02/host/esx-f02-1.lab.local/option/Disk.UseDeviceReset.value: 1 (desired 0)"
    ]
    assert "esx-f02-1.lab.local/option/Disk.UseDeviceReset" in (work / "drift.md").read_text()
