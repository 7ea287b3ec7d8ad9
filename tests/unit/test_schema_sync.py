"""The shipped JSON Schema is the models' schema: editors and `mscsctl schema` agree."""

from __future__ import annotations

import json

import yaml

from reconciler.schema import SCHEMA_FILE, SCHEMA_ID, build_schema, schema_text
from tests.unit.test_docs_sync import ROOT


def test_the_shipped_schema_is_current():
    assert SCHEMA_FILE.read_text(encoding="utf-8") == schema_text(), (
        "reconciler/schema/failover-cluster.schema.json is out of date: run python docs/gen.py"
    )


def test_schema_names_the_yaml_fields_and_refuses_unknown_ones():
    schema = build_schema()
    assert schema["$id"] == SCHEMA_ID
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert schema["required"] == ["apiVersion", "kind", "metadata", "spec"]
    spec = schema["$defs"]["ClusterSpec"]
    assert {"guestOS", "sharedDisks", "vsphereVersion", "hostOptions"} <= set(spec["properties"])
    assert spec["additionalProperties"] is False
    assert "sizeGB" in schema["$defs"]["SharedVmdk"]["properties"]


def _conforms(value, node, defs) -> bool:
    """A small JSON Schema check, enough for the keywords pydantic emits for these models."""
    while "$ref" in node:
        node = {**defs[node["$ref"].rsplit("/", 1)[-1]], **{k: v for k, v in node.items() if k != "$ref"}}
    if "anyOf" in node:
        return any(_conforms(value, n, defs) for n in node["anyOf"])
    if "oneOf" in node:
        return sum(_conforms(value, n, defs) for n in node["oneOf"]) == 1
    if "const" in node and value != node["const"]:
        return False
    if "enum" in node and value not in node["enum"]:
        return False
    kind = node.get("type")
    if kind == "object":
        if not isinstance(value, dict) or not set(node.get("required", [])) <= set(value):
            return False
        props = node.get("properties", {})
        extra = node.get("additionalProperties", True)
        for key, item in value.items():
            schema = props.get(key, extra)
            if schema is False or (isinstance(schema, dict) and not _conforms(item, schema, defs)):
                return False
        return True
    if kind == "array":
        return isinstance(value, list) and all(_conforms(v, node.get("items", {}), defs) for v in value)
    if kind == "string":
        return isinstance(value, str)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "null":
        return value is None
    return True


def test_the_examples_conform_to_the_shipped_schema():
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    for path in sorted((ROOT / "examples").glob("*.yaml")):
        doc = yaml.safe_load(path.read_text())
        assert _conforms(doc, schema, schema["$defs"]), path.name
    bad = yaml.safe_load((ROOT / "examples" / "cluster-across-boxes.yaml").read_text())
    bad["spec"]["sharedDisk"] = {}
    assert not _conforms(bad, schema, schema["$defs"])
