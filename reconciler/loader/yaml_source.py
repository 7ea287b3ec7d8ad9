"""Strict YAML reading that remembers where every value was written: the source map.

The text is composed (not loaded) with a SafeLoader subclass, and the nodes are turned into
plain data here, so every mapping entry, list item and scalar keeps its line and column.

What is refused, and why:
- anchors and aliases: a few lines can expand into gigabytes ("billion laughs"), and a
  desired file gains nothing from them;
- tags other than the standard ones (`!!str`, `!!int`, ...): a tag asks for an arbitrary
  object to be built;
- nesting deeper than `MAX_DEPTH` (the composer recurses), more than one document;
- duplicate keys, which YAML libraries silently resolve to the last one.

Scalars follow the YAML 1.2 core schema, as editors do: `yes`, `no`, `on`, `off` are
strings, `010` is ten, dates are strings.
"""

from __future__ import annotations

import re
import typing
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from reconciler.findings import FieldPath, Finding

MAX_DEPTH = 32

_STD = "tag:yaml.org,2002:"
_SCALAR_TAGS = {_STD + t for t in ("str", "int", "float", "bool", "null")}
_MAP_TAG = _STD + "map"
_SEQ_TAG = _STD + "seq"


@dataclass(frozen=True)
class Position:
    line: int  # 1-based
    column: int  # 1-based


@dataclass(frozen=True)
class NodeSpan:
    value: Position  # where the value starts
    key: Position | None = None  # where `key:` is, for a mapping entry
    collection: bool = False  # the value is a mapping or a list


@dataclass
class SourceMap:
    """Field path (as the file writes it) -> where it is written. `()` is the document."""

    file: str
    spans: dict[FieldPath, NodeSpan] = field(default_factory=dict)

    def locate(self, path: FieldPath) -> Position:
        """Where a finding about `path` belongs.

        A scalar: its value. A mapping or a list: its `key:` line. A path the file does not
        write (a default, a missing field): the nearest enclosing field it does write.
        """
        path = tuple(path)
        span = self.spans.get(path)
        if span is not None:
            return span.key if span.collection and span.key is not None else span.value
        for end in range(len(path) - 1, -1, -1):
            span = self.spans.get(path[:end])
            if span is not None:
                return span.key or span.value
        return Position(1, 1)

    def locate_value(self, path: FieldPath) -> Position:
        span = self.spans.get(tuple(path))
        return span.value if span is not None else self.locate(path)

    def locate_key(self, path: FieldPath) -> Position:
        span = self.spans.get(tuple(path))
        return (span.key or span.value) if span is not None else self.locate(path)

    def place(self, finding: Finding) -> Finding:
        """`finding` with this file's name and the position of its field path."""
        pos = self.locate(finding.path)
        return finding.located(self.file, pos.line, pos.column)


def at(rule_id: str, file: str, pos: Position, message: str, path: FieldPath = ()) -> Finding:
    return Finding(rule_id=rule_id, message=message, path=path, file=file, line=pos.line, column=pos.column)


def position_in(text: str, offset: int) -> Position:
    """Line and column of a character offset."""
    before = text[:offset]
    return Position(before.count("\n") + 1, offset - (before.rfind("\n") + 1) + 1)


def _pos(mark: yaml.Mark | None) -> Position:
    return Position(mark.line + 1, mark.column + 1) if mark is not None else Position(1, 1)


class _Refused(yaml.MarkedYAMLError):
    def __init__(self, rule_id: str, problem: str, mark: yaml.Mark | None) -> None:
        super().__init__(problem=problem, problem_mark=mark)
        self.rule_id = rule_id


class _StrictLoader(yaml.SafeLoader):
    """Used for composing only: no anchors, no aliases, bounded depth, YAML 1.2 scalars."""

    yaml_implicit_resolvers: typing.ClassVar[dict[str, list[tuple[str, re.Pattern[str]]]]] = {}

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        event = self.peek_event()
        anchor = getattr(event, "anchor", None)
        if anchor is not None:
            sign = "*" if isinstance(event, yaml.AliasEvent) else "&"
            raise _Refused(
                "SPEC-ALIAS",
                f"{sign}{anchor}: anchors and aliases are not allowed in a desired file; write the value out",
                event.start_mark,
            )
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise _Refused("SPEC-YAML", f"nested more than {MAX_DEPTH} levels deep", event.start_mark)
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


# The YAML 1.2 core schema, which editors and JSON Schema tooling assume.
_StrictLoader.add_implicit_resolver(_STD + "null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""])
_StrictLoader.add_implicit_resolver(_STD + "bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
_StrictLoader.add_implicit_resolver(
    _STD + "int", re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"), list("-+0123456789")
)
_StrictLoader.add_implicit_resolver(
    _STD + "float",
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+.0123456789"),
)


class _Unconvertible(Exception):
    pass


def _scalar(tag: str, text: str) -> Any:
    if tag == _STD + "str":
        return text
    if tag == _STD + "null":
        if text in ("", "~", "null", "Null", "NULL"):
            return None
        raise _Unconvertible(f"{text[:40]!r} is not null")
    if tag == _STD + "bool":
        if text in ("true", "True", "TRUE"):
            return True
        if text in ("false", "False", "FALSE"):
            return False
        raise _Unconvertible(f"{text[:40]!r} is not a boolean (true or false)")
    if tag == _STD + "int":
        try:
            if text.startswith("0o"):
                return int(text[2:], 8)
            if text.startswith("0x"):
                return int(text[2:], 16)
            return int(text, 10)
        except ValueError:  # not a number, or more digits than Python converts
            raise _Unconvertible(f"{text[:40]!r} is not an integer") from None
    lowered = text.lower()
    if lowered in (".inf", "+.inf", "-.inf", ".nan"):
        return float(lowered.replace(".", ""))
    try:
        return float(text)
    except ValueError:
        raise _Unconvertible(f"{text[:40]!r} is not a number") from None


@dataclass
class ParsedYaml:
    """Plain data (None when the text is not YAML), its source map, and what was wrong."""

    data: Any
    source: SourceMap
    findings: list[Finding]
    plain_scalars: dict[FieldPath, str]  # unquoted scalars read as numbers/booleans/null: their text
    ok: bool  # the text is one YAML document; `data` is meaningful


@dataclass
class _Builder:
    source: SourceMap
    findings: list[Finding] = field(default_factory=list)
    plain_scalars: dict[FieldPath, str] = field(default_factory=dict)

    def error(self, rule_id: str, path: FieldPath, pos: Position, message: str) -> None:
        self.findings.append(at(rule_id, self.source.file, pos, message, path))

    def build(self, node: Node, path: FieldPath, key: Position | None) -> Any:
        collection = isinstance(node, MappingNode | SequenceNode)
        self.source.spans[path] = NodeSpan(_pos(node.start_mark), key, collection)
        if isinstance(node, MappingNode):
            if node.tag != _MAP_TAG:
                self._bad_tag(node, path)
            return self._mapping(node, path)
        if isinstance(node, SequenceNode):
            if node.tag != _SEQ_TAG:
                self._bad_tag(node, path)
            return [self.build(item, (*path, i), None) for i, item in enumerate(node.value)]
        if node.tag not in _SCALAR_TAGS:
            self._bad_tag(node, path)
            return node.value
        try:
            value = _scalar(node.tag, node.value)
        except _Unconvertible as exc:
            self.error("SPEC-TYPE", path, _pos(node.start_mark), str(exc))
            return node.value
        if not node.style and not isinstance(value, str):  # plain: libyaml says "", PyYAML None
            self.plain_scalars[path] = node.value
        return value

    def _bad_tag(self, node: Node, path: FieldPath) -> None:
        self.error(
            "SPEC-TAG",
            path,
            _pos(node.start_mark),
            f"tag {node.tag.replace(_STD, '!!')} is not allowed: a desired file holds only "
            "mappings, lists, strings, numbers and booleans",
        )

    def _mapping(self, node: MappingNode, path: FieldPath) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key_pos = _pos(key_node.start_mark)
            if not isinstance(key_node, ScalarNode):
                self.error("SPEC-TYPE", path, key_pos, "a key is a plain name, not a mapping or a list")
                continue
            if key_node.tag not in _SCALAR_TAGS:
                self._bad_tag(key_node, path)
            key = key_node.value
            child = (*path, key)
            if key in out:
                first = self.source.locate_key(child)
                self.error(
                    "SPEC-DUPLICATE-KEY",
                    child,
                    key_pos,
                    f"`{key}` is already set on line {first.line}; a key appears once per mapping",
                )
                continue
            out[key] = self.build(value_node, child, key_pos)
        return out


class _NeedsStrictPass(Exception):
    pass


# libyaml's parser with the same YAML 1.2 resolvers, when PyYAML was built with it.
_FastLoader: Any = (
    type("_FastLoader", (yaml.CSafeLoader,), {"yaml_implicit_resolvers": _StrictLoader.yaml_implicit_resolvers})
    if getattr(yaml, "__with_libyaml__", False)
    else None
)


def _compose_fast(text: str) -> Node | None:
    """Compose with libyaml when the text is plain: one document, no anchors, not too deep.

    On a large file the pure-Python scanner and parser dominate; libyaml is several times faster.
    Anything unusual (and every error) goes to the strict pass, whose messages are the
    ones users see.
    """
    if _FastLoader is None:
        raise _NeedsStrictPass
    loader = _FastLoader(text)
    depth = documents = 0
    try:
        while loader.check_event():
            event = loader.get_event()
            if getattr(event, "anchor", None) is not None:
                raise _NeedsStrictPass
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth >= MAX_DEPTH - 1:
                    raise _NeedsStrictPass
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
            elif isinstance(event, yaml.DocumentStartEvent):
                documents += 1
                if documents > 1:
                    raise _NeedsStrictPass
    except yaml.YAMLError:
        raise _NeedsStrictPass from None
    finally:
        loader.dispose()
    loader = _FastLoader(text)
    try:
        return loader.get_single_node()
    except yaml.YAMLError:
        raise _NeedsStrictPass from None
    finally:
        loader.dispose()


def parse_yaml(text: str, file: str, *, fast: bool = True) -> ParsedYaml:
    """One YAML document -> plain data and its source map. Never raises for bad input."""
    source = SourceMap(file)

    def failed(finding: Finding) -> ParsedYaml:
        return ParsedYaml(None, source, [finding], {}, ok=False)

    try:
        if not fast:
            raise _NeedsStrictPass
        root = _compose_fast(text)
    except _NeedsStrictPass:
        root = None
        fast = False
    try:
        if not fast:
            root = yaml.compose(text, Loader=_StrictLoader)
    except _Refused as exc:
        return failed(at(exc.rule_id, file, _pos(exc.problem_mark), exc.problem or ""))
    except yaml.reader.ReaderError as exc:
        what = f"character #x{exc.character:04x}" if isinstance(exc.character, int) else "a character"
        return failed(at("SPEC-YAML", file, position_in(text, exc.position), f"{what} is not allowed in YAML"))
    except yaml.MarkedYAMLError as exc:
        problem = exc.problem or "not valid YAML"
        if "expected a single document" in f"{exc.problem} {exc.context}":
            problem = "a second YAML document: a desired file holds exactly one cluster"
        elif exc.context:
            problem = f"{problem} ({exc.context}"
            if exc.context_mark is not None and exc.context_mark.line != (exc.problem_mark or exc.context_mark).line:
                problem += f" on line {exc.context_mark.line + 1}"
            problem += ")"
        return failed(at("SPEC-YAML", file, _pos(exc.problem_mark or exc.context_mark), f"YAML: {problem}"))
    except (yaml.YAMLError, RecursionError, ValueError) as exc:  # defensive: never a traceback
        return failed(at("SPEC-YAML", file, Position(1, 1), f"not valid YAML ({type(exc).__name__})"))
    if root is None:
        return failed(
            at(
                "SPEC-FILE",
                file,
                Position(1, 1),
                "the file holds no YAML document; a desired file starts with `apiVersion: mscsctl/v1`",
            )
        )
    builder = _Builder(source)
    data = builder.build(root, (), None)
    return ParsedYaml(data, source, builder.findings, builder.plain_scalars, ok=True)
