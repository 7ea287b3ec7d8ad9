"""Pydantic's validation errors -> findings located in the desired file.

Each error gets a rule ID by its kind (`SPEC-REQUIRED`, `SPEC-UNKNOWN-FIELD`, `SPEC-TYPE`,
`SPEC-VALUE`), a message in the file's own terms (YAML names, "a mapping", "a list"), and
the position of the node it concerns: the value for a wrong value, the key for an unknown
field, the mapping that lacks it for a missing field.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from typing import Any

from pydantic import BaseModel, Discriminator, Tag, ValidationError

from reconciler.findings import FieldPath, Finding
from reconciler.loader.yaml_source import SourceMap, at
from reconciler.spec import FailoverCluster


def _unwrap(tp: Any) -> Any:
    """Strip `X | None` and plain `Annotated[...]`; keep discriminated unions as they are."""
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            base, *meta = typing.get_args(tp)
            if any(isinstance(m, Discriminator) for m in meta):
                return tp
            tp = base
            continue
        if origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(args) == 1:
                tp = args[0]
                continue
        return tp


def _union_tags(tp: Any) -> dict[str, Any]:
    """`Annotated[Annotated[A, Tag("a")] | Annotated[B, Tag("b")], Discriminator]` -> {"a": A, "b": B}."""
    out: dict[str, Any] = {}
    for member in typing.get_args(typing.get_args(tp)[0]):
        base, *meta = typing.get_args(member)
        out.update({m.tag: base for m in meta if isinstance(m, Tag)})
    return out


def field_types(model: type[BaseModel]) -> dict[str, Any]:
    """YAML name -> annotation, for one model."""
    return {(info.alias or name): info.annotation for name, info in model.model_fields.items()}


def yaml_path(loc: tuple[int | str, ...], root: Any = FailoverCluster) -> tuple[FieldPath, Any]:
    """A pydantic error location -> the path as the file writes it, and the type expected there.

    Pydantic inserts the tag of a discriminated union (`nodes.0.vm.credentialsEnv`) where
    the file has no level; walking the model types alongside tells a tag from a field.
    """
    path: list[str | int] = []
    tp: Any = root
    for part in loc:
        tp = _unwrap(tp)
        if typing.get_origin(tp) is typing.Annotated:
            tags = _union_tags(tp)
            if isinstance(part, str) and part in tags:
                tp = tags[part]
                continue
            tp = None
        path.append(part)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            tp = field_types(tp).get(str(part))
        elif typing.get_origin(tp) in (list, dict):
            tp = typing.get_args(tp)[-1]
        else:
            tp = None
    return tuple(path), (_unwrap(tp) if tp is not None else None)


def _model_at(loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    tp = yaml_path(loc)[1] if loc else FailoverCluster
    return tp if isinstance(tp, type) and issubclass(tp, BaseModel) else None


def describe(value: Any) -> str:
    """How a YAML value reads to a user: "a string 'x'", "an integer 3", "a mapping"."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "null"
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{names.get(type(value), type(value).__name__)} {text}"


_PLAIN_MESSAGES = {
    "model_type": "expected a mapping",
    "model_attributes_type": "expected a mapping",
    "dict_type": "expected a mapping",
    "list_type": "expected a list",
    "string_type": "expected a string",
    "int_type": "expected an integer",
    "int_parsing": "expected an integer",
    "int_from_float": "expected a whole number",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
}


def _folded(name: str) -> str:
    return name.replace("_", "").replace("-", "").casefold()


def _known_fields(err: dict[str, Any]) -> list[str]:
    model = _model_at(tuple(err["loc"])[:-1])
    return list(field_types(model)) if model else []


def _suggestion(err: dict[str, Any], path: FieldPath) -> str | None:
    """The field an unknown key was probably meant to be (`guest_os` -> `guestOS`), if any."""
    known = _known_fields(err)
    key = str(path[-1])
    same = [k for k in known if _folded(k) == _folded(key)]
    near = same or difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    return near[0] if near else None


def _message(err: dict[str, Any], path: FieldPath, plain: dict[FieldPath, str]) -> tuple[str, str]:
    kind: str = err["type"]
    value = err.get("input")
    if kind == "missing":
        return "SPEC-REQUIRED", f"required field `{path[-1]}` is missing"
    if kind == "extra_forbidden":
        known = _known_fields(err)
        near = _suggestion(err, path)
        if near:
            hint = f"; did you mean `{near}`?"
        elif known:
            hint = f"; the fields here are: {', '.join(known)}"
        else:
            hint = ""
        return "SPEC-UNKNOWN-FIELD", f"unknown field `{str(path[-1])[:60]}`{hint}"
    if kind == "string_pattern_mismatch" and path[-1] == "vcenter":
        return "SPEC-VALUE", (
            f"`vcenter` is host, host:port or https://host/sdk, without a user, password or spaces; got "
            f"{describe(value) if '@' not in str(value) else 'a value with a login in it'}: a vCenter's login comes "
            "from the environment or the credentials file, never from the desired file"
        )
    text = _PLAIN_MESSAGES.get(kind) or re.sub(r"^Input should be ", "expected ", err["msg"])
    text = f"{text[0].lower()}{text[1:]}; got {describe(value)}"
    if kind in ("literal_error", "enum") and isinstance(value, str):
        near = difflib.get_close_matches(value, re.findall(r"'([^']*)'", err["msg"]), n=1, cutoff=0.6)
        if near:
            text += f"; did you mean '{near[0]}'?"
    if kind == "string_type" and path in plain:
        text += f'; write it in quotes: "{plain[path][:60]}"'
    if kind in _PLAIN_MESSAGES or kind.endswith("_type"):
        return "SPEC-TYPE", text
    return "SPEC-VALUE", text


def validation_findings(
    exc: ValidationError, source: SourceMap, plain: dict[FieldPath, str] | None = None
) -> list[Finding]:
    """Every error of one validation, located.

    A misspelt key is one mistake, not two: when an unknown key's suggestion is a required
    field missing from the same mapping (`datacentre` for `datacenter`), only the unknown
    key is reported, at its own line, with its "did you mean".
    """
    errors = exc.errors(include_url=False)
    meant: set[FieldPath] = set()
    for err in errors:
        if err["type"] == "extra_forbidden":
            path, _ = yaml_path(tuple(err["loc"]))
            near = _suggestion(err, path)
            if near is not None:
                meant.add((*path[:-1], near))
    out = []
    for err in errors:
        path, _ = yaml_path(tuple(err["loc"]))
        if err["type"] == "missing" and path in meant:
            continue
        rule_id, message = _message(err, path, plain or {})
        if rule_id == "SPEC-REQUIRED":
            pos = source.locate_key(path[:-1])
        elif rule_id == "SPEC-UNKNOWN-FIELD":
            pos = source.locate_key(path)
        else:
            pos = source.locate_value(path)
        out.append(at(rule_id, source.file, pos, message, path))
    return out
