"""README's rule table, file-format section and pictures, docs/rules.md and docs/graph.md, match the code."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from reconciler.rules import catalogue

ROOT = Path(__file__).resolve().parent.parent.parent


def _gen():
    spec = importlib.util.spec_from_file_location("docs_gen", ROOT / "docs" / "gen.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _section(text: str, name: str) -> str:
    begin, end = f"<!-- {name}:begin -->\n", f"<!-- {name}:end -->"
    assert begin in text and end in text, f"README.md lacks the {name} markers"
    return text.split(begin, 1)[1].split(end, 1)[0]


def test_readme_rule_table_is_current():
    gen = _gen()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert _section(readme, "rules") == gen.readme_rules_section(), "README rule table is stale: python docs/gen.py"


def test_readme_file_format_section_is_current():
    gen = _gen()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert _section(readme, "spec") == gen.readme_spec_section(), "README file format is stale: python docs/gen.py"


def test_docs_rules_md_is_current():
    gen = _gen()
    assert (ROOT / "docs" / "rules.md").read_text(encoding="utf-8") == gen.rules_doc()


def test_the_table_lists_every_rule_once():
    table = _gen().rules_table()
    for rule in catalogue():
        assert table.count(f"| `{rule.id}` |") == 1


def test_readme_graph_section_and_docs_graph_md_are_current():
    gen = _gen()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert _section(readme, "graph") == gen.readme_graph_section(), "README graph is stale: python docs/gen.py"
    assert (ROOT / "docs" / "graph.md").read_text(encoding="utf-8") == gen.graph_doc()


def test_readme_topology_section_is_current():
    gen = _gen()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = _section(readme, "topology")
    assert section == gen.readme_topology_section(), "README topology picture is stale: python docs/gen.py"
    assert readme.index("<!-- graph:end -->") < readme.index("<!-- topology:begin -->")  # right after the plan's
