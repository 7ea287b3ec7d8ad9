"""Terminal etiquette, through the real CLI: colour only on a terminal and never with
--no-color or NO_COLOR; --log-format json gives one JSON object a stderr line; --quiet keeps
only the result."""

from __future__ import annotations

import json
import re

import pytest

from tests.integration.cli import example, on_a_terminal, run

pytestmark = pytest.mark.slow

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def test_colour_on_a_terminal_only_and_never_when_asked_not_to(lab_readonly, tmp_path):
    desired = str(example("cluster-across-boxes", tmp_path))
    code, text = on_a_terminal(lab_readonly, "plan", desired, "--skip-guest")
    assert code == 0, text
    assert ANSI.search(text), "a plan on a terminal is coloured"
    assert "+ 18. sql-prod-01/node/SQLNODE1/controller/1" in ANSI.sub("", text)  # after the VM-Host rule

    code, text = on_a_terminal(lab_readonly, "--no-color", "plan", desired, "--skip-guest")
    assert code == 0 and not ANSI.search(text), text
    code, text = on_a_terminal(lab_readonly, "plan", desired, "--skip-guest", env={"NO_COLOR": "1"})
    assert code == 0 and not ANSI.search(text), text

    piped = run(lab_readonly, "plan", desired, "--skip-guest")
    assert piped.code == 0, piped
    assert not ANSI.search(piped.out + piped.err), "a pipe gets no escape codes"


def test_log_format_json_and_quiet_on_apply(lab, tmp_path):
    desired = str(example("cluster-in-a-box", tmp_path))
    result = run(lab, "--log-format", "json", "apply", desired, "--auto-approve", "--skip-guest")
    assert result.code == 0, result
    records = [json.loads(line) for line in result.err.splitlines()]
    assert records and all({"time", "level", "msg"} <= r.keys() for r in records)
    assert any(r.get("kinds") == "power-on" and r.get("phase") == "end" for r in records), records

    broken = tmp_path / "broken.yaml"
    broken.write_text("apiVersion: mscsctl/v1\nkind: FailoverCluster\n")
    failed = run(lab, "--log-format", "json", "plan", str(broken))
    assert failed.code == 1
    errors = [json.loads(line) for line in failed.err.splitlines()]
    assert errors and {r["level"] for r in errors} == {"error"}
    assert all("broken.yaml" in r["msg"] for r in errors), errors

    quiet = run(lab, "--quiet", "apply", desired, "--auto-approve", "--skip-guest")
    assert quiet.code == 0, quiet
    assert quiet.err == ""
    assert "no changes" in quiet.out.lower() or "0 done" in quiet.out, quiet
