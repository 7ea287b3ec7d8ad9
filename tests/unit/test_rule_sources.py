"""Every rule names its sources and its vSphere versions, in `mscsctl rules` and `--json`.

The version ranges and severities here are the ones VMware's guides and KBs give (see each
rule's source); a rule whose fact no 5.x-8.x guide states says so and is a warning.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconciler.cli import main
from reconciler.findings import Severity
from reconciler.loader import load_text
from reconciler.rules import catalogue, get_rule, run_rules
from reconciler.rules.catalogue import rule
from reconciler.rules.guest import GUEST_OS_MATRIX, supported_on
from reconciler.rules.nodes import node_limit
from reconciler.spec import GuestOS

ROOT = Path(__file__).resolve().parent.parent.parent
CAB = ROOT / "examples" / "cluster-across-boxes.yaml"


def rules_json(capsys) -> dict[str, dict]:
    assert main(["rules", "--json"]) == 0
    return {r["id"]: r for r in json.loads(capsys.readouterr().out)["rules"]}


def test_every_rule_cites_a_source_or_says_none_was_found(capsys):
    listed = rules_json(capsys)
    assert set(listed) == {r.id for r in catalogue()}
    for rule_id, r in listed.items():
        assert r["sources"] or r["unsourced"], rule_id
        if r["sources"] == ["mscsctl"]:
            assert r["source"].startswith("mscsctl"), rule_id  # the project's own rule, not VMware's
        assert r["source_found"] is (r["unsourced"] is None), rule_id
        if not r["source_found"]:
            assert r["severity"] == "warning", rule_id
            assert "no source found" in r["source"], rule_id
        assert r["versions"], rule_id
        assert set(r) >= {"since", "until", "sources", "needs_observed", "title"}


def test_a_rule_without_a_source_cannot_be_an_error():
    with pytest.raises(ValueError, match="warning"):
        rule("MSCS-NODE-999", title="t", source="[ch] x", unsourced="nothing found")(lambda ctx: iter(()))


@pytest.mark.parametrize(
    ("rule_id", "severity", "since", "until", "cites"),
    [
        ("MSCS-HOST-004", "warning", "5.0", None, "kb 1016106"),
        ("MSCS-PLACE-002", "error", None, "4.1", "vmw 4.1"),
        ("MSCS-PLACE-006", "error", None, "4.1", "vmw 4.1"),
        ("MSCS-PLACE-004", "warning", "6.5", None, "vmw 6.5"),
        ("MSCS-PLACE-007", "error", "4.1", "6.5", "vmw 6.0"),
        ("MSCS-PLACE-008", "error", "6.0", None, "vmw 6.0"),
        ("MSCS-PLACE-009", "warning", "6.0", None, "vmw 6.7"),
        ("MSCS-STOR-003", "error", None, "5.5", "vmw 5.0"),
        ("MSCS-STOR-006", "error", "6.0", "7.0", "vmw 6.7"),
        ("MSCS-DISK-012", "error", "6.7", None, "vmw 6.7"),
        ("MSCS-GUEST-002", "warning", None, None, "kb 79616"),
        ("MSCS-GUEST-003", "error", "7.0", None, "kb 79616"),
        ("MSCS-NODE-001", "error", None, None, "kb 1037959"),
    ],
)
def test_version_ranges_and_sources_as_the_guides_give_them(capsys, rule_id, severity, since, until, cites):
    r = rules_json(capsys)[rule_id]
    assert (r["severity"], r["since"], r["until"]) == (severity, since, until)
    assert cites in r["sources"]


@pytest.mark.parametrize("rule_id", ["MSCS-HOST-001", "MSCS-HOST-002"])
def test_book_only_rules_are_warnings_that_say_no_later_guide_lists_them(capsys, rule_id):
    r = rules_json(capsys)[rule_id]
    assert r["severity"] == "warning" and r["sources"] == ["ch"]
    assert r["source_found"] is False and "no 5.x-8.x guide" in r["unsourced"]


def test_the_text_listing_shows_versions_and_what_was_not_found(capsys):
    assert main(["rules"]) == 0
    out = capsys.readouterr().out
    host_001 = out[out.index("MSCS-HOST-001") :].splitlines()
    assert "warning" in host_001[0]
    assert "no source found: no 5.x-8.x guide lists these options" in host_001[1]
    assert ">= 5.0" in out[out.index("MSCS-HOST-004") :].splitlines()[0]


@pytest.mark.parametrize(
    ("version", "guest", "limit"),
    [
        ((4, 1), GuestOS.WINDOWS_2008, 2),
        ((5, 0), GuestOS.WINDOWS_2008, 2),
        ((5, 1), GuestOS.WINDOWS_2008, 5),
        ((6, 0), GuestOS.WINDOWS_2016, 5),
        ((6, 7), GuestOS.WINDOWS_2019, 5),
        ((7, 0), GuestOS.WINDOWS_2022, 5),
        ((8, 0), GuestOS.WINDOWS_2025, 5),
        ((6, 7), GuestOS.WINDOWS_2003, 2),
    ],
)
def test_node_limit_per_version(version, guest, limit):
    assert node_limit(version, guest)[0] == limit


TWO_NODES = (
    "    - vm: SQLNODE1 # creates the RDM mapping files\n"
    "    - vm: SQLNODE2 # attaches the same mapping files at the same SCSI bus:unit\n"
)


def cab(**update) -> str:
    text = CAB.read_text()
    for old, new in update.items():
        assert old in text
        text = text.replace(old, new, 1)
    return text


def nodes_text(count: int) -> str:
    return "".join(f"    - vm: SQLNODE{i}\n" for i in range(1, count + 1))


def errors(text: str, version) -> list[str]:
    loaded = load_text(text, "case.yaml")
    assert loaded.cluster is not None, loaded.findings
    return [f.rule_id for f in run_rules(loaded.cluster, version=version) if f.severity is Severity.ERROR]


def findings_of(text: str, version, rule_id: str):
    loaded = load_text(text, "case.yaml")
    assert loaded.cluster is not None, loaded.findings
    return loaded.place([f for f in run_rules(loaded.cluster, version=version) if f.rule_id == rule_id])


def test_five_nodes_on_vsphere_8_and_six_refused_at_node_six():
    two = TWO_NODES
    assert errors(cab(**{two: nodes_text(5)}), (8, 0)) == []
    assert errors(cab(**{two: nodes_text(3)}), (6, 7)) == []
    [f] = findings_of(cab(**{two: nodes_text(6)}), (8, 0), "MSCS-NODE-001")
    assert "at most 5 under vSphere 8.0" in f.message and f.path == ("spec", "nodes", 5)
    assert errors(cab(**{two: nodes_text(3)}), (5, 0)) == ["MSCS-NODE-001"]


def test_windows_2003_refused_from_seven():
    # Windows 2003 takes LSI Logic Parallel (the default for it) and no VMXNET3 requirement before 6.0.
    text = cab(**{"guestOS: windows2016": "guestOS: windows2003"})
    assert "MSCS-GUEST-003" not in errors(text, (6, 7))
    assert "MSCS-GUEST-003" in errors(text, (7, 0))
    [f] = findings_of(text, (8, 0), "MSCS-GUEST-003")
    assert f.path == ("spec", "guestOS")


def test_every_windows_server_version_is_accepted_and_in_the_matrix():
    for guest in GuestOS:
        assert guest in GUEST_OS_MATRIX
    text = cab(**{"guestOS: windows2016": "guestOS: windows2025"})
    assert errors(text, (8, 0)) == []
    assert findings_of(text, (8, 0), "MSCS-GUEST-002")[0].message.endswith("check the hosts' update")
    assert [f.severity for f in findings_of(text, (7, 0), "MSCS-GUEST-002")] == [Severity.WARNING]


@pytest.mark.parametrize(
    ("guest", "version", "listed"),
    [
        (GuestOS.WINDOWS_2003, (6, 7), True),
        (GuestOS.WINDOWS_2003, (7, 0), False),
        (GuestOS.WINDOWS_2008, (6, 7), True),
        (GuestOS.WINDOWS_2012, (8, 0), True),
        (GuestOS.WINDOWS_2016, (5, 5), False),
        (GuestOS.WINDOWS_2019, (6, 0), False),
        (GuestOS.WINDOWS_2019, (6, 7), True),
        (GuestOS.WINDOWS_2022, (6, 7), False),
        (GuestOS.WINDOWS_2022, (7, 0), True),
        (GuestOS.WINDOWS_2025, (7, 0), False),
        (GuestOS.WINDOWS_2025, (8, 0), True),
    ],
)
def test_guest_os_matrix(guest, version, listed):
    assert supported_on(guest, version) is listed


def test_fully_automated_drs_is_a_warning_from_six_five_and_an_error_before():
    text = cab(**{"drs: disabled": "drs: fullyAutomated"})
    assert errors(text, (6, 0)) == ["MSCS-PLACE-007"]
    assert errors(text, (6, 5)) == []
    assert [f.severity for f in findings_of(text, (8, 0), "MSCS-PLACE-004")] == [Severity.WARNING]
    assert get_rule("MSCS-PLACE-004").severity is Severity.WARNING
