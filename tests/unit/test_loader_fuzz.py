"""Random and mutated documents: never a traceback, always a located error or a valid file.

Whatever the input, `validate` ends in one of two ways: exit 0 (the file is valid, perhaps
with warnings), or exit 1 with every error as `FILE:LINE:COLUMN: ... [RULE-ID]` pointing
inside the file. The rules (file-only and, for valid files, vCenter-side against a lab
world) must not crash on any document the loader accepts.
"""

from __future__ import annotations

import contextlib
import copy
import io
import re
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.cli import main
from reconciler.findings import Severity
from reconciler.loader import load_bytes, load_text
from reconciler.loader.yaml_source import parse_yaml
from reconciler.rules import run_rules
from tests.unit.test_rules import world

ROOT = Path(__file__).resolve().parent.parent.parent
EXAMPLES = {p.name: p.read_text() for p in sorted((ROOT / "examples").glob("*.yaml"))}
CASES = [p.read_text() for p in sorted((ROOT / "tests" / "unit" / "rules_cases").glob("*.yaml"))]
LOCATED = re.compile(r"^fuzz\.yaml:(\d+):(\d+): .+ \[[A-Z0-9-]+\]$")
VERSIONS = [None, (4, 1), (5, 1), (5, 5), (6, 0), (6, 7), (7, 0), (8, 0)]

settings.register_profile(
    "loader-fuzz",
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
FUZZ = settings.get_profile("loader-fuzz")


def check(text: str | bytes, version: tuple[int, int] | None = None) -> None:
    """The property: a valid model, or errors located inside the text; rules never crash."""
    loaded = load_bytes(text, "fuzz.yaml") if isinstance(text, bytes) else load_text(text, "fuzz.yaml")
    lines = (text.decode("utf-8", "replace") if isinstance(text, bytes) else text).count("\n") + 2
    if loaded.cluster is not None:
        loaded.add(run_rules(loaded.cluster, version=version))
        loaded.add(run_rules(loaded.cluster, version=version, observed=world()))
    else:
        assert any(f.severity is Severity.ERROR for f in loaded.findings)
    for finding in loaded.findings:
        assert finding.file == "fuzz.yaml"
        assert finding.line is not None and 1 <= finding.line <= lines, str(finding)
        assert finding.column is not None and finding.column >= 1, str(finding)
        assert LOCATED.match(str(finding)), str(finding)
    if isinstance(text, str):
        # libyaml (the fast path) and the pure-Python composer read a text the same way. They
        # differ only on degenerate input: the pure-Python scanner refuses a few texts the YAML
        # spec allows (a tab inside a plain scalar), and they place or type an *empty* value
        # differently (`?` alone, a lone `!`). Those are left out of the comparison.
        fast, strict = parse_yaml(text, "fuzz.yaml"), parse_yaml(text, "fuzz.yaml", fast=False)
        if fast.ok and strict.ok:
            assert _blank_is_null(fast.data) == _blank_is_null(strict.data)
            assert [f.rule_id for f in fast.findings] == [f.rule_id for f in strict.findings]
            assert _solid_spans(fast) == _solid_spans(strict)


def _blank_is_null(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _blank_is_null(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_blank_is_null(v) for v in data]
    if data == "" or data is None:
        return None
    return repr(data)  # nan != nan


def _solid_spans(parsed: Any) -> dict:
    out = {}
    for path, span in parsed.source.spans.items():
        value = parsed.data
        for part in path:
            value = value[part]
        if value not in ("", None):
            out[path] = span
    return out


# --------------------------------------------------------------------------- strategies

FIELD_NAMES = [
    "apiVersion",
    "kind",
    "metadata",
    "name",
    "spec",
    "topology",
    "datacenter",
    "guestOS",
    "vsphereVersion",
    "nodes",
    "vm",
    "physical",
    "winrm",
    "address",
    "port",
    "ssl",
    "credentialsEnv",
    "user",
    "password",
    "sharedDisks",
    "controller",
    "bus",
    "type",
    "sharing",
    "disks",
    "lun",
    "unit",
    "compatibility",
    "mappingDatastore",
    "sizeGB",
    "datastore",
    "networks",
    "production",
    "heartbeat",
    "portgroup",
    "adapter",
    "hostOptions",
    "guest",
    "diskTimeoutSeconds",
    "placement",
    "drs",
    "ha",
    "separateHosts",
]
WORDS = [
    "mscsctl/v1",
    "FailoverCluster",
    "cluster-in-a-box",
    "cluster-across-boxes",
    "physical-to-virtual",
    "windows2003",
    "windows2016",
    "auto",
    "6.7",
    "lsilogic",
    "lsilogic-sas",
    "pvscsi",
    "none",
    "virtual",
    "physical",
    "vmxnet3",
    "e1000",
    "naa.6006016012345678000000000000a001",
    "SAN-VMFS-01",
    "disabled",
    "fullyAutomated",
    "Production",
    "Heartbeat",
]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(WORDS),
    st.text(max_size=20),
)
keys = st.one_of(st.sampled_from(FIELD_NAMES), st.text(max_size=12))
trees = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(keys, children, max_size=5),
    ),
    max_leaves=25,
)


def dump(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def _paths(data: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(data, dict):
        for key, value in data.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            out += _paths(value, (*prefix, index))
    return out


@st.composite
def mutated_documents(draw: st.DrawFn) -> str:
    """A valid document (an example or a failing case) with a few structural changes."""
    source = draw(st.sampled_from([*EXAMPLES.values(), *CASES]))
    data = yaml.safe_load(source)
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        paths = [p for p in _paths(data) if p]
        path = draw(st.sampled_from(paths))
        parent = data
        for part in path[:-1]:
            parent = parent[part]
        op = draw(st.sampled_from(["delete", "replace", "add", "rename", "wrap"]))
        last = path[-1]
        if op == "delete":
            del parent[last]
        elif op == "replace":
            parent[last] = draw(trees)
        elif op == "wrap":
            parent[last] = [copy.deepcopy(parent[last])]
        elif op == "add" and isinstance(parent, dict):
            parent[draw(keys)] = draw(trees)
        elif op == "add" and isinstance(parent, list):
            parent.append(draw(trees))
        elif op == "rename" and isinstance(parent, dict):
            parent[draw(keys)] = parent.pop(last)
    return dump(data)


@st.composite
def edited_texts(draw: st.DrawFn) -> str:
    """An example's text with characters or lines inserted, deleted, duplicated or swapped."""
    text = draw(st.sampled_from([*EXAMPLES.values(), *CASES]))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        lines = text.splitlines(keepends=True)
        op = draw(st.sampled_from(["char-insert", "char-delete", "line-delete", "line-dup", "line-swap", "indent"]))
        if not text:
            break
        if op == "char-insert":
            at = draw(st.integers(min_value=0, max_value=len(text)))
            text = (
                text[:at]
                + draw(st.sampled_from([":", "-", " ", "\t", "[", "{", "&a ", "*a", "!!", "#", '"', "\n"]))
                + text[at:]
            )
        elif op == "char-delete":
            at = draw(st.integers(min_value=0, max_value=len(text) - 1))
            text = text[:at] + text[at + 1 :]
        else:
            i = draw(st.integers(min_value=0, max_value=len(lines) - 1))
            if op == "line-delete":
                del lines[i]
            elif op == "line-dup":
                lines.insert(i, lines[i])
            elif op == "line-swap":
                j = draw(st.integers(min_value=0, max_value=len(lines) - 1))
                lines[i], lines[j] = lines[j], lines[i]
            else:
                lines[i] = draw(st.sampled_from(["", " ", "  ", "    "])) + lines[i].lstrip()
            text = "".join(lines)
    return text


# --------------------------------------------------------------------------- properties


@FUZZ
@given(st.text(max_size=300))
def test_random_text(text):
    check(text)


@FUZZ
@given(st.binary(max_size=300))
def test_random_bytes(raw):
    check(raw)


@FUZZ
@given(trees, st.sampled_from(VERSIONS))
def test_random_documents(data, version):
    check(dump(data), version)


@FUZZ
@given(mutated_documents(), st.sampled_from(VERSIONS))
def test_mutated_documents(text, version):
    check(text, version)


@settings(FUZZ, max_examples=300)
@given(edited_texts(), st.sampled_from(VERSIONS))
def test_edited_texts(text, version):
    check(text, version)


@settings(FUZZ, max_examples=40)
@given(st.one_of(mutated_documents(), edited_texts(), st.text(max_size=200)))
def test_through_the_command_line(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("fuzz") / "fuzz.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["validate", str(path)])
    lines = out.getvalue().splitlines()
    assert code in (0, 1)
    assert "Traceback" not in err.getvalue() and "internal error" not in err.getvalue(), err.getvalue()
    *findings, summary = lines
    assert summary.startswith(f"{path}: ")
    assert ("valid" in summary) == (code == 0)
    for line in findings:
        assert re.match(rf"^{re.escape(str(path))}:\d+:\d+: .+ \[[A-Z0-9-]+\]$", line), line
