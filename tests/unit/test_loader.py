"""The loader: YAML text -> a FailoverCluster, or findings located at the offending node."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from reconciler.findings import Finding
from reconciler.loader import MAX_FILE_BYTES, load_bytes, load_file, load_text, validate_file
from reconciler.spec import FailoverCluster, Topology, VmNode

ROOT = Path(__file__).resolve().parent.parent.parent
CAB = ROOT / "examples" / "cluster-across-boxes.yaml"

GOOD = """\
apiVersion: mscsctl/v1
kind: FailoverCluster
metadata:
  name: sql-prod-01
spec:
  topology: cluster-across-boxes
  datacenter: DC1
  guestOS: windows2016
  nodes:
    - vm: SQLNODE1
    - vm: SQLNODE2
  sharedDisks:
    disks:
      - name: quorum
        lun: naa.6006016012345678000000000000a001
        mappingDatastore: SAN-VMFS-01
  networks:
    production: {portgroup: Production}
    heartbeat: {portgroup: Heartbeat}
"""


def where(f: Finding) -> tuple[str, int | None, int | None]:
    return f.rule_id, f.line, f.column


def one(text: str, file: str = "c.yaml") -> Finding:
    loaded = load_text(text, file)
    assert loaded.cluster is None
    assert len(loaded.findings) == 1, [str(f) for f in loaded.findings]
    return loaded.findings[0]


def test_a_valid_file_loads_with_no_findings():
    loaded = load_text(GOOD, "good.yaml")
    assert loaded.valid and loaded.findings == []
    assert isinstance(loaded.cluster, FailoverCluster)
    assert loaded.cluster.spec.topology is Topology.CLUSTER_ACROSS_BOXES
    assert loaded.cluster.spec.nodes == [VmNode(vm="SQLNODE1"), VmNode(vm="SQLNODE2")]


def test_the_examples_load():
    for path in sorted((ROOT / "examples").glob("*.yaml")):
        loaded = load_file(path)
        assert loaded.cluster is not None, [str(f) for f in loaded.findings]


# --------------------------------------------------------------------------- the file itself


def test_empty_and_comment_only_files():
    assert where(one("")) == ("SPEC-FILE", 1, 1)
    assert where(one("  \n\n")) == ("SPEC-FILE", 1, 1)
    assert where(one("# nothing here\n")) == ("SPEC-FILE", 1, 1)


def test_a_file_over_the_size_limit_is_refused_before_parsing(tmp_path):
    big = tmp_path / "big.yaml"
    big.write_bytes(b"a: " + b"x" * MAX_FILE_BYTES + b"\n")
    loaded = load_file(big)
    assert [where(f) for f in loaded.findings] == [("SPEC-FILE", 1, 1)]
    assert "1 MiB" in loaded.findings[0].message


def test_missing_file_and_directory(tmp_path):
    [missing] = load_file(tmp_path / "nope.yaml").findings
    assert where(missing) == ("SPEC-FILE", 1, 1) and "cannot read" in missing.message
    [directory] = load_file(tmp_path).findings
    assert "directory" in directory.message


def test_not_utf8_is_located_at_the_bad_byte():
    [f] = load_bytes(b"apiVersion: mscsctl/v1\nkind: \xff\xfe\n", "bin.yaml").findings
    assert where(f) == ("SPEC-YAML", 2, 7)


def test_utf16_with_a_byte_order_mark_is_read():
    loaded = load_bytes(GOOD.encode("utf-16"), "u16.yaml")
    assert loaded.valid, [str(f) for f in loaded.findings]


def test_binary_and_control_characters():
    assert where(one("apiVersion: a\x00b\n")) == ("SPEC-YAML", 1, 14)
    assert load_bytes(bytes(range(256)), "noise.bin").findings[0].rule_id == "SPEC-YAML"


def test_standard_input(monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(GOOD.encode())))
    loaded = load_file("-")
    assert loaded.file == "<stdin>" and loaded.valid


# --------------------------------------------------------------------------- YAML


def test_syntax_error_points_at_the_problem():
    f = one("apiVersion: mscsctl/v1\nkind: [FailoverCluster\nmetadata: {}\n")
    assert f.rule_id == "SPEC-YAML" and f.line == 3
    f = one("spec:\n  topology: x\n datacenter: y\n")
    assert where(f) == ("SPEC-YAML", 3, 2)


def test_a_second_document_is_refused():
    f = one(GOOD + "---\n" + GOOD)
    assert where(f) == ("SPEC-YAML", 20, 1)
    assert "second YAML document" in f.message


def test_anchors_and_aliases_are_refused():
    f = one("metadata: &m {name: x}\nother: *m\n")
    assert where(f) == ("SPEC-ALIAS", 1, 11)
    laughs = 'a: &a ["lol","lol"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n'
    assert one(laughs).rule_id == "SPEC-ALIAS"


def test_tags_other_than_the_standard_ones_are_refused():
    text = GOOD.replace("datacenter: DC1", "datacenter: !!python/object/apply:os.system [echo hi]")
    f = one(text)
    assert where(f) == ("SPEC-TAG", 7, 15)
    assert one(GOOD.replace("name: sql-prod-01", "name: !Ref other")).rule_id == "SPEC-TAG"
    # The standard ones are fine.
    assert load_text(GOOD.replace("datacenter: DC1", "datacenter: !!str DC1"), "c.yaml").valid


def test_deep_nesting_is_refused_not_a_recursion_error():
    f = one("a: " + "[" * 5000 + "]" * 5000 + "\n")
    assert f.rule_id == "SPEC-YAML" and "nested" in f.message


def test_duplicate_keys_are_reported_at_the_second_one():
    text = GOOD.replace("  datacenter: DC1\n", "  datacenter: DC1\n  datacenter: DC2\n")
    f = one(text)
    assert where(f) == ("SPEC-DUPLICATE-KEY", 8, 3)
    assert "line 7" in f.message


def test_yaml_1_2_scalars():
    # `on`/`yes` stay strings (a port group may be called that); 010 is ten, not eight.
    text = GOOD.replace("{portgroup: Production}", "{portgroup: on}").replace(
        "        mappingDatastore", "        unit: 010\n        mappingDatastore"
    )
    loaded = load_text(text, "c.yaml")
    assert loaded.valid, [str(f) for f in loaded.findings]
    assert loaded.cluster.spec.networks.production.portgroup == "on"
    assert loaded.cluster.spec.shared_disks.disks[0].unit == 10


def test_huge_integers_do_not_crash():
    f = one(GOOD.replace("        mappingDatastore", "        unit: " + "9" * 5000 + "\n        mappingDatastore"))
    assert f.rule_id == "SPEC-TYPE" and f.line == 16


# --------------------------------------------------------------------------- shape


def test_not_a_mapping():
    assert where(one("- a\n- b\n")) == ("SPEC-TYPE", 1, 1)
    assert where(one("just words\n")) == ("SPEC-TYPE", 1, 1)


def test_unknown_field_is_located_at_its_key_with_a_suggestion():
    f = one(GOOD.replace("  datacenter: DC1", "  datacenter: DC1\n  sharedDisk: {}"))
    assert where(f) == ("SPEC-UNKNOWN-FIELD", 8, 3)
    assert f.dotted_path == "spec.sharedDisk"
    assert "did you mean `sharedDisks`" in f.message


@pytest.mark.parametrize(
    ("written", "meant", "line", "column"),
    [
        ("guest_os", "guestOS", 8, 3),  # Python names are not YAML names
        ("datacentre", "datacenter", 7, 3),
        ("mapingDatastore", "mappingDatastore", 16, 9),
    ],
)
def test_a_misspelt_field_is_one_error_with_its_suggestion(written, meant, line, column):
    """The unknown key's line says it; the required field it stands for is not reported missing too."""
    f = one(GOOD.replace(f"{meant}:", f"{written}:"))
    assert where(f) == ("SPEC-UNKNOWN-FIELD", line, column)
    assert f.message == f"unknown field `{written}`; did you mean `{meant}`?"


def test_an_unknown_key_that_suggests_a_field_already_there_keeps_both():
    """The suggestion is not the missing field: both mistakes are reported."""
    text = GOOD.replace("  datacenter: DC1\n", "").replace(
        "  guestOS: windows2016", "  guestOS: windows2016\n  guestOs: x"
    )
    loaded = load_text(text, "c.yaml")
    assert [f.rule_id for f in loaded.findings] == ["SPEC-REQUIRED", "SPEC-UNKNOWN-FIELD"]


def test_missing_field_is_located_at_the_mapping_that_lacks_it():
    f = one(GOOD.replace("  datacenter: DC1\n", ""))
    assert where(f) == ("SPEC-REQUIRED", 5, 1)  # the `spec:` line
    assert f.dotted_path == "spec.datacenter"
    f = one(GOOD.replace("        mappingDatastore: SAN-VMFS-01\n", ""))
    assert where(f) == ("SPEC-REQUIRED", 14, 9)  # the list item
    f = one(GOOD.replace("kind: FailoverCluster\n", ""))
    assert where(f) == ("SPEC-REQUIRED", 1, 1)


def test_wrong_type_with_a_quoting_hint():
    f = one(GOOD.replace("  guestOS: windows2016", "  guestOS: windows2016\n  vsphereVersion: 6.7"))
    assert where(f) == ("SPEC-TYPE", 9, 19)
    assert 'write it in quotes: "6.7"' in f.message
    assert load_text(
        GOOD.replace("  guestOS: windows2016", '  guestOS: windows2016\n  vsphereVersion: "6.7"'), "c.yaml"
    ).valid


def test_a_list_where_a_mapping_belongs():
    f = one(GOOD.replace("  name: sql-prod-01", "  - sql-prod-01"))
    assert where(f) == ("SPEC-TYPE", 4, 3)
    assert "expected a mapping; got a list" in f.message


def test_wrong_value_with_a_suggestion():
    f = one(GOOD.replace("cluster-across-boxes", "cluster-accross-boxes"))
    assert where(f) == ("SPEC-VALUE", 6, 13)
    assert "did you mean 'cluster-across-boxes'" in f.message
    f = one(GOOD.replace("sql-prod-01", "SQL_Prod"))
    assert where(f) == ("SPEC-VALUE", 4, 9)


def test_a_node_that_is_neither_vm_nor_physical():
    f = one(GOOD.replace("    - vm: SQLNODE2", "    - name: SQLNODE2"))
    assert where(f) == ("SPEC-VALUE", 11, 7)
    assert "`vm: NAME` or `physical: NAME`" in f.message


def test_union_levels_do_not_show_in_paths():
    text = GOOD.replace("    - vm: SQLNODE1", "    - vm: SQLNODE1\n      credentialsEnv: {user: 7, pasword: P}")
    loaded = load_text(text, "c.yaml")
    paths = {f.dotted_path: f for f in loaded.findings}
    assert set(paths) == {
        "spec.nodes[0].credentialsEnv.user",
        "spec.nodes[0].credentialsEnv.pasword",  # the missing `password` is this misspelling, reported once
    }
    assert "did you mean `password`" in paths["spec.nodes[0].credentialsEnv.pasword"].message
    assert paths["spec.nodes[0].credentialsEnv.user"].line == 11


def test_every_error_of_a_file_at_once():
    text = (
        GOOD.replace("kind: FailoverCluster", "kind: Cluster")
        .replace("datacenter: DC1", "datacenter: [DC1]")
        .replace("windows2016", "windows2017")
        .replace("  nodes:", "  node: []\n  nodes:")
        .replace("lun: naa.6006016012345678000000000000a001", "lun: wwn.600601601234")
        .replace("heartbeat: {portgroup: Heartbeat}", "heartbeat: {portgroup: Heartbeat}\n    heartbeat: {}")
    )
    loaded = load_text(text, "c.yaml")
    assert loaded.cluster is None
    got = [(f.rule_id, f.line) for f in loaded.findings]
    assert got == [
        ("SPEC-VALUE", 2),
        ("SPEC-TYPE", 7),
        ("SPEC-VALUE", 8),
        ("SPEC-UNKNOWN-FIELD", 9),
        ("SPEC-VALUE", 16),
        ("SPEC-DUPLICATE-KEY", 21),
    ]
    for f in loaded.findings:
        assert str(f).startswith(f"c.yaml:{f.line}:{f.column}: ") and str(f).endswith(f"[{f.rule_id}]")


# --------------------------------------------------------------------------- locating later findings


def test_place_locates_by_path_and_falls_back_to_the_nearest_written_field():
    loaded = load_file(CAB)
    lines = CAB.read_text().splitlines()
    lun = loaded.place([Finding(rule_id="X", message="m", path=("spec", "sharedDisks", "disks", 1, "lun"))])[0]
    assert lines[lun.line - 1].strip() == "lun: naa.6006016012345678000000000000a002"
    assert lun.column == lines[lun.line - 1].index("naa.") + 1
    # A default the file does not write: the nearest field it does write (the disk item).
    unit = loaded.place([Finding(rule_id="X", message="m", path=("spec", "hostOptions", "Disk.UseLunReset"))])[0]
    assert lines[unit.line - 1].startswith("spec:")
    # A mapping is located at its key.
    nets = loaded.place([Finding(rule_id="X", message="m", path=("spec", "networks"))])[0]
    assert lines[nets.line - 1].strip() == "networks:"
    assert str(nets).startswith(f"{CAB}:{nets.line}:3: spec.networks: m")


def test_validate_file_adds_the_rules_located(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(GOOD.replace("  sharedDisks:\n", "  sharedDisks:\n    controller: {bus: 0}\n"))
    loaded = validate_file(path)
    assert not loaded.valid and loaded.cluster is not None
    [f] = loaded.findings
    assert (f.rule_id, f.line, f.column) == ("MSCS-DISK-002", 13, 23)


@pytest.mark.parametrize("path", sorted((ROOT / "tests" / "unit" / "rules_cases").glob("*.yaml")), ids=lambda p: p.stem)
def test_failing_files_are_shape_valid(path):
    assert load_file(path).cluster is not None


def _both_ways(text: str):
    from reconciler.loader.yaml_source import parse_yaml

    fast, strict = parse_yaml(text, "c.yaml"), parse_yaml(text, "c.yaml", fast=False)
    return fast, strict


@pytest.mark.parametrize(
    "text",
    [
        GOOD,
        GOOD.replace("DC1", "Zürich-DC ✓").replace("Heartbeat}", "Herzschlag é}"),
        "a: 'x'\nb: \"y\"\nc: |\n  literal\n  text\nd: >\n  folded\ne: [1, 0x1F, 0o17, .inf, -.INF, .nan, ~, true]\n",
        "? complex\n: value\n{a: 1}: 2\n",
        "a: !!str 3\nb: !custom x\n",
        *[p.read_text() for p in sorted((ROOT / "examples").glob("*.yaml"))],
    ],
)
def test_libyaml_and_pure_python_read_the_same(text):
    fast, strict = _both_ways(text)
    assert fast.ok and strict.ok
    assert repr(fast.data) == repr(strict.data)  # repr: nan != nan
    assert fast.source.spans == strict.source.spans
    assert fast.plain_scalars == strict.plain_scalars
    assert fast.findings == strict.findings
