"""The JSON Schema of the desired file, generated from the models, and its field reference.

`failover-cluster.schema.json` beside this module is `schema_text()` checked in, so editors
can use it for YAML completion (`# yaml-language-server: $schema=...`); a unit test keeps it
in sync with the models. Regenerate with `python docs/gen.py` (or `mscsctl schema > FILE`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from reconciler.spec import API_VERSION, FailoverCluster

SCHEMA_FILE = Path(__file__).with_name("failover-cluster.schema.json")
SCHEMA_ID = "urn:mscsctl:schema:failover-cluster:v1"


def build_schema() -> dict[str, Any]:
    schema = FailoverCluster.model_json_schema(by_alias=True)
    _drop_field_titles(schema)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": f"mscsctl FailoverCluster ({API_VERSION})",
        "description": "Desired state of one Microsoft failover cluster on vSphere VMs, for mscsctl.",
        **{k: v for k, v in schema.items() if k != "title"},
    }


def schema_text() -> str:
    return json.dumps(build_schema(), indent=2, ensure_ascii=False) + "\n"


def _drop_field_titles(node: Any) -> None:
    """Pydantic titles every field after its Python name ("Vsphereversion"); the key says it better."""
    if isinstance(node, dict):
        for prop in (node.get("properties") or {}).values():
            if isinstance(prop, dict):
                prop.pop("title", None)
        for value in node.values():
            _drop_field_titles(value)
    elif isinstance(node, list):
        for value in node:
            _drop_field_titles(value)


# --------------------------------------------------------------------------- field reference


def field_rows(schema: dict[str, Any] | None = None) -> list[tuple[str, str, str, str]]:
    """(field path, type, required or default, description) for every field of the file."""
    schema = schema or build_schema()
    defs = schema.get("$defs", {})
    rows: list[tuple[str, str, str, str]] = []

    def resolve(node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            node = {**defs[node["$ref"].rsplit("/", 1)[-1]], **{k: v for k, v in node.items() if k != "$ref"}}
        return node

    def kind(node: dict[str, Any]) -> str:
        node = resolve(node)
        if "anyOf" in node:
            return " or ".join(kind(n) for n in node["anyOf"] if n.get("type") != "null")
        if "oneOf" in node:
            return " or ".join(resolve(n).get("title") or kind(n) for n in node["oneOf"])
        if "enum" in node:
            return " \\| ".join(f"`{v}`" for v in node["enum"])
        if "const" in node:
            return f"`{node['const']}`"
        if node.get("type") == "array":
            return f"list of {kind(node.get('items', {}))}"
        if node.get("type") == "object" and "properties" not in node:
            return f"map of {kind(node.get('additionalProperties', {}))}"
        if node.get("type") == "object":
            return "mapping"
        return str(node.get("type", "any"))

    def walk(node: dict[str, Any], prefix: str) -> None:
        node = resolve(node)
        required = set(node.get("required", []))
        for name, prop in node.get("properties", {}).items():
            path = f"{prefix}.{name}" if prefix else name
            target = resolve(prop)
            desc = (prop.get("description") or target.get("description") or "").replace("|", "\\|")
            if name in required:
                need = "required"
            elif "default" in prop and prop["default"] not in (None, [], {}):
                need = f"default `{json.dumps(prop['default'])}`"
            else:
                need = ""
            rows.append((path, kind(prop), need, " ".join(desc.split())))
            for child, child_prefix in _children(target, path, resolve):
                walk(child, child_prefix)

    walk(schema, "")
    return rows


def _children(node: dict[str, Any], path: str, resolve: Any) -> list[tuple[dict[str, Any], str]]:
    if node.get("type") == "object" and "properties" in node:
        return [(node, path)]
    options = node.get("anyOf") or node.get("oneOf")
    if options:
        return [c for option in options for c in _children(resolve(option), path, resolve)]
    if node.get("type") == "array":
        return _children(resolve(node.get("items", {})), f"{path}[]", resolve)
    return []


def field_reference_markdown() -> str:
    lines = ["| field | type | required / default | meaning |", "|---|---|---|---|"]
    seen: set[str] = set()
    for path, kind, need, desc in field_rows():
        if path in seen:
            continue
        seen.add(path)
        lines.append(f"| `{path}` | {kind} | {need} | {desc} |")
    return "\n".join(lines) + "\n"
