"""Apply progress through the real CLI against the lab: a bar a cluster on a terminal, with the
step and what it waits for, its elapsed time and an ETA; timestamped lines with durations off
a terminal and in --log-format json, each cluster's counter going up by one; the fleet's total
said before `Apply these actions?`."""

from __future__ import annotations

import json
import re

import pytest

from tests.fleet import write_fleet
from tests.integration.cli import example, on_a_terminal, run

pytestmark = pytest.mark.slow

CSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"
LINE = re.compile(rf"^{STAMP} (?P<cluster>[\w-]+): \[(?P<step>\d+)/(?P<steps>\d+)\] (?P<target>\S+): (?P<rest>.+)$")
LAB_CREDENTIALS = {"username": "administrator@vsphere.local", "password": "Lab-Passw0rd!"}


def test_on_a_terminal_a_bar_shows_the_step_what_it_waits_for_and_how_long(lab, tmp_path):
    desired = str(example("cluster-across-boxes", tmp_path))
    # The guest shutdown and the reconfigure of node 1 take a few seconds, as on a real vCenter.
    lab.inject_fault(method="ShutdownGuest", object="SQLNODE1", action="delay", delay_ms=2500)
    lab.inject_fault(method="PowerOffVM_Task", object="SQLNODE1", action="delay", delay_ms=2500)
    lab.inject_fault(method="ReconfigVM_Task", object="SQLNODE2", action="delay", delay_ms=2500)
    code, screen = on_a_terminal(lab, "apply", desired, "--auto-approve", "--skip-guest")
    text = CSI.sub("", screen)
    assert code == 0, text
    assert "sql-prod-01" in text and "SQLNODE1: waiting for guest shutdown" in text, text
    assert "SQLNODE2: waiting for the reconfigure task" in text, text
    # The step's own time and the cluster's, while it waits: seconds counted up on the bar.
    assert re.search(r"SQLNODE1: waiting for guest shutdown\s+step [12]\.\ds, total \d+\.\ds", text), text
    # Before any step ended there is nothing to learn from; once some did, an ETA is shown.
    assert "ETA ?" in text and re.search(r"ETA \d+\.\ds", text), text
    assert re.search(r"(\d+)/\1 steps\s+done", text), text
    assert re.search(r"sql-prod-01: apply complete: \d+ done", text), text


def test_no_color_draws_the_bars_without_colour(lab, tmp_path):
    desired = str(example("cluster-in-a-box", tmp_path))
    code, screen = on_a_terminal(lab, "apply", desired, "--auto-approve", "--skip-guest", env={"NO_COLOR": "1"})
    text = CSI.sub("", screen)
    assert code == 0, text
    assert re.search(r"(\d+)/\1 steps\s+done", text), text
    assert not re.search(r"\x1b\[[0-9;]*m", screen), "no colour, no bold: no SGR escape at all"


def test_off_a_terminal_timestamped_lines_with_durations_and_a_counter_that_never_jumps(lab, tmp_path):
    desired = str(example("cluster-across-boxes", tmp_path))
    lab.inject_fault(method="ReconfigVM_Task", object="SQLNODE1", action="delay", delay_ms=1200)
    applied = run(lab, "apply", desired, "--auto-approve", "--skip-guest")
    assert applied.code == 0, applied
    lines = [LINE.match(line) for line in applied.err.splitlines() if re.match(STAMP, line)]
    assert lines and all(lines), applied.err
    starts = [m for m in lines if m["rest"].split(": ")[-1].startswith("waiting for")]
    ends = [m for m in lines if " done in " in f" {m['rest']}"]
    steps = int(starts[0]["steps"])
    assert [int(m["step"]) for m in starts] == list(range(1, steps + 1)), applied.err
    assert [int(m["step"]) for m in ends] == list(range(1, steps + 1)), applied.err
    assert any(m["target"] == "SQLNODE1" and re.search(r"done in 1\.\ds$", m["rest"]) for m in ends), applied.err
    assert not re.search(r"\x1b\[", applied.err), "no escape codes off a terminal"


def test_log_format_json_gives_one_object_a_line_for_each_step_start_and_end(lab, tmp_path):
    desired = str(example("cluster-in-a-box", tmp_path))
    applied = run(lab, "--log-format", "json", "apply", desired, "--auto-approve", "--skip-guest")
    assert applied.code == 0, applied
    records = [json.loads(line) for line in applied.err.splitlines()]
    steps = [r for r in records if "step" in r]
    assert steps and all(
        {"time", "level", "msg", "cluster", "steps", "phase", "target", "kinds"} <= r.keys() for r in steps
    )
    starts = [r["step"] for r in steps if r["phase"] == "start"]
    assert starts == list(range(1, steps[0]["steps"] + 1))
    assert all(r["duration_s"] >= 0 for r in steps if r["phase"] == "end")
    assert any(r["waiting_for"] == "waiting for VMware Tools" for r in steps if r["phase"] == "start"), steps


@pytest.fixture
def fleet_lab(lab_factory, tmp_path):
    lab = lab_factory({"datacenter": "DC1", "credentials": LAB_CREDENTIALS}, fleet=3)
    write_fleet(3, tmp_path / "fleet")
    return lab, tmp_path / "fleet"


def test_fleet_lines_start_with_their_cluster_and_each_counter_goes_up_by_one(fleet_lab):
    lab, fleet = fleet_lab
    applied = run(lab, "apply", str(fleet), "--auto-approve", "--parallelism", "3")
    assert applied.code == 0, applied
    lines = [LINE.match(line) for line in applied.err.splitlines() if re.match(STAMP, line)]
    assert lines and all(lines), applied.err
    for cluster in ("fleet-01", "fleet-02", "fleet-03"):
        own = [m for m in lines if m["cluster"] == cluster and m["rest"].split(": ")[-1].startswith("waiting for")]
        assert [int(m["step"]) for m in own] == list(range(1, int(own[0]["steps"]) + 1)), applied.err


def test_the_fleet_total_is_said_before_the_prompt(fleet_lab):
    lab, fleet = fleet_lab
    code, screen = on_a_terminal(lab, "apply", str(fleet), "--skip-guest", answer="no")
    text = CSI.sub("", screen)
    assert code == 1 and "apply cancelled" in text, text
    total = text.index("Total: 3 clusters, ")
    assert total < text.index("Apply these actions?"), text
    line = text[total:].splitlines()[0]
    assert "6 power-off" in line and "6 nodes power off" in line and "fleet-02/F02-NODE1" in line, line


def test_a_fleet_on_a_terminal_has_a_bar_a_cluster_from_the_start(fleet_lab):
    lab, fleet = fleet_lab
    code, screen = on_a_terminal(lab, "apply", str(fleet), "--skip-guest", "--parallelism", "1", answer="yes")
    text = CSI.sub("", screen)
    assert code == 0, text
    after = text[text.index("Apply these actions?") :]
    # One lane at a time: the clusters after the first wait in their rows until their turn.
    assert re.search(r"fleet-03 \S+ 0/(\d+) steps not started yet", after), after
    for cluster in ("fleet-01", "fleet-02", "fleet-03"):
        assert re.search(rf"{cluster} \S+ (\d+)/\1 steps done", after), after
        assert f"{cluster}: apply complete" in after, after
