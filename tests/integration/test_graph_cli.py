"""`mscsctl graph` through the CLI: from a desired file (reads vCenter) and from a saved plan
(needs no vCenter), the cluster's topology before and after apply, and `plan --markdown` for a
merge request."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.integration.cli import example, run

pytestmark = pytest.mark.slow


def test_graph_of_a_file_and_of_its_saved_plan_are_the_same_picture(lab_readonly, tmp_path):
    desired = example("cluster-across-boxes", tmp_path)
    saved = tmp_path / "plan.json"
    planned = run(lab_readonly, "plan", str(desired), "--out", str(saved), "--skip-guest")
    assert planned.code == 0, planned
    actions = json.loads(saved.read_text())["actions"]

    from_file = run(lab_readonly, "graph", str(desired), "--format", "mermaid", "--skip-guest")
    assert from_file.code == 0, from_file
    assert from_file.out.startswith("flowchart TD\n")
    boxes = re.findall(r'^\s+a(\d+)\["\d+\. ([a-z-]+)<br/>', from_file.out, re.MULTILINE)
    assert [kind for _, kind in boxes] == [a["kind"] for a in actions]

    # A saved plan is drawn offline: no vCenter is asked.
    offline = run(None, "graph", str(saved), "--format", "mermaid", env={"VSPHERE_SERVER": "127.0.0.1:9"})
    assert offline.code == 0, offline
    assert offline.out == from_file.out

    dot = run(None, "graph", str(saved), "--format", "dot")
    assert dot.code == 0, dot
    assert dot.out.startswith('digraph "mscsctl plan: sql-prod-01" {')
    assert dot.out.count(" -> ") == sum(len(a["depends_on"]) for a in actions)


def test_graph_of_something_that_is_not_a_plan_is_a_located_error(tmp_path):
    bogus = tmp_path / "plan.json"
    bogus.write_text('{"format_version": 1, "plans": [{"nope": 1}]}')
    result = run(None, "graph", str(bogus))
    assert result.code == 1, result
    assert str(bogus) in result.err
    assert "Traceback" not in result.err


def test_plan_markdown_for_a_merge_request(lab_readonly, tmp_path):
    desired = example("cluster-in-a-box", tmp_path)
    result = run(lab_readonly, "plan", str(desired), "--markdown", "--skip-guest", "--detailed-exitcode")
    assert result.code == 2, result
    assert result.out.startswith("## mscsctl plan\n")
    # Three warnings: a box is a single point of failure (MSCS-PLACE-001), the lab's fully
    # automated DRS (MSCS-PLACE-004) and its VMs' guestId, Windows 2012, against windows2019 (MSCS-VM-006).
    assert re.search(r"^\| cib-test-01 \| \d+ \| \d+ \| 0 \| 3 \|$", result.out, re.MULTILINE), result.out
    warned = result.out.partition("**Warnings**")[2]
    assert all(f"`{rule}`" in warned for rule in ("MSCS-PLACE-001", "MSCS-PLACE-004", "MSCS-VM-006")), result.out


def test_topology_of_the_cross_box_example_before_and_after_apply(lab, tmp_path):
    desired = example("cluster-across-boxes", tmp_path)
    before = run(lab, "graph", "--view", "topology", str(desired))
    assert before.code == 0, before
    assert before.out.startswith("flowchart LR\n")
    missing = re.search(r"^  class (\S+) missing$", before.out, re.MULTILINE)
    assert missing, before.out
    disks = re.findall(r'^\s+(n\d_\d)\["disk (?:quorum|data)<br/>SCSI 1:\d, RDM physical"\]$', before.out, re.MULTILINE)
    assert len(disks) == 4 and set(disks) <= set(missing.group(1).split(","))
    assert '["in the file, not in vCenter"]' in before.out

    applied = run(lab, "apply", str(desired), "--auto-approve", "--skip-guest")
    assert applied.code == 0, applied
    after = run(lab, "graph", "--view", "topology", str(desired))
    assert after.code == 0, after
    assert "classDef" not in after.out and "legend" not in after.out and "-.-" not in after.out
    # The lab's cluster is the unit tests' hand-built one after apply, with the LUN sizes it reports.
    golden = Path(__file__).resolve().parents[1] / "unit" / "golden" / "topology-graph.mmd"
    assert after.out.replace("<br/>10 GiB", "") == golden.read_text(encoding="utf-8")
    dot = run(lab, "graph", "--view", "topology", str(desired), "--format", "dot")
    assert dot.code == 0, dot
    assert dot.out.startswith('graph "mscsctl topology: sql-prod-01" {') and 'fillcolor="#' not in dot.out

    # A saved plan holds actions, not the cluster: refused, in one line.
    saved = tmp_path / "plan.json"
    assert run(lab, "plan", str(desired), "--out", str(saved), "--skip-guest").code == 0
    refused = run(lab, "graph", "--view", "topology", str(saved))
    assert refused.code == 1 and "is a saved plan" in refused.err and "Traceback" not in refused.err
