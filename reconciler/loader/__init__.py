"""Desired file -> a `FailoverCluster`, or findings that point at the offending YAML node.

Every problem, whatever its cause (a file too large, YAML syntax, an unknown field, a wrong
type, later a rule of the catalogue), becomes a `Finding` located as `FILE:LINE:COLUMN`,
1-based as editors show them. All the problems of a file are reported at once.

    loaded = load_file("sql-prod-01.yaml")
    loaded.cluster      # FailoverCluster, or None when the shape is wrong
    loaded.findings     # located, sorted by position
    loaded.place(fs)    # locate findings produced later (the rule catalogue, the plan)

`validate_file()` is the same plus the rule catalogue's file-only rules.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from reconciler.bounded import InputRefused, read_bounded
from reconciler.findings import Finding, has_errors
from reconciler.loader.model_errors import describe, validation_findings
from reconciler.loader.yaml_source import Position, SourceMap, at, parse_yaml, position_in
from reconciler.spec import FailoverCluster

__all__ = [
    "LOADER_FINDINGS",
    "MAX_FILE_BYTES",
    "LoadedFile",
    "Position",
    "SourceMap",
    "load_bytes",
    "load_file",
    "load_text",
    "sort_findings",
    "validate_file",
]

MAX_FILE_BYTES = 1024 * 1024

# The loader's own finding IDs: what is wrong before any rule of the catalogue can run.
LOADER_FINDINGS: dict[str, str] = {
    "SPEC-FILE": "The file cannot be read, is empty, holds no document, or is larger than 1 MiB.",
    "SPEC-YAML": "Not YAML: syntax, encoding (UTF-8 expected), control characters, a second "
    "document, nesting deeper than 32 levels.",
    "SPEC-ALIAS": "An anchor (`&name`) or alias (`*name`): refused, write the value out.",
    "SPEC-TAG": "A tag other than the standard `!!str`, `!!int`, `!!float`, `!!bool`, `!!null`, `!!map`, `!!seq`.",
    "SPEC-DUPLICATE-KEY": "The same key twice in one mapping.",
    "SPEC-UNKNOWN-FIELD": "A field the format does not have; the message suggests the nearest name.",
    "SPEC-REQUIRED": "A required field is missing; located at the mapping that lacks it.",
    "SPEC-TYPE": "A value of the wrong type: a list for a mapping, a number for a string...",
    "SPEC-VALUE": "A value that is not allowed: not one of the choices, out of range, not matching the pattern.",
}


@dataclass
class LoadedFile:
    """One desired file: the model when its shape is valid, the findings, and the source map."""

    file: str
    cluster: FailoverCluster | None
    findings: list[Finding]
    source: SourceMap
    raw: bytes = field(default=b"", repr=False)  # the bytes `load_file` read: hashed as they were parsed

    @property
    def valid(self) -> bool:
        """A model was built and no finding is an error (warnings alone are fine)."""
        return self.cluster is not None and not has_errors(self.findings)

    def place(self, findings: Iterable[Finding]) -> list[Finding]:
        """Locate findings produced after loading (rule catalogue, plan) by their field path."""
        return [f if f.line is not None else self.source.place(f) for f in findings]

    def add(self, findings: Iterable[Finding]) -> None:
        self.findings = sort_findings([*self.findings, *self.place(findings)])


def sort_findings(findings: Iterable[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: (f.file or "", f.line or 0, f.column or 0, f.rule_id, f.message))


def _file_error(file: str, message: str) -> LoadedFile:
    return LoadedFile(file, None, [at("SPEC-FILE", file, Position(1, 1), message)], SourceMap(file))


def load_text(text: str, file: str = "<string>") -> LoadedFile:
    """Parse a desired file given as text and check its shape against the models."""
    if not text.strip():
        return _file_error(file, "the file is empty; a desired file starts with `apiVersion: mscsctl/v1`")
    parsed = parse_yaml(text, file)
    findings = list(parsed.findings)
    if not parsed.ok:
        return LoadedFile(file, None, findings, parsed.source)
    if not isinstance(parsed.data, dict):
        findings.append(
            at(
                "SPEC-TYPE",
                file,
                parsed.source.locate_value(()),
                f"a desired file is a mapping (apiVersion, kind, metadata, spec); got {describe(parsed.data)}",
            )
        )
        return LoadedFile(file, None, sort_findings(findings), parsed.source)
    cluster: FailoverCluster | None = None
    try:
        cluster = FailoverCluster.model_validate(parsed.data, by_alias=True, by_name=False)
    except ValidationError as exc:
        # A node the YAML reading already reported (a refused tag, a bad number) is not
        # reported again by the models.
        seen = [f.path for f in findings]
        findings.extend(
            f
            for f in validation_findings(exc, parsed.source, parsed.plain_scalars)
            if not any(f.path[: len(p)] == p for p in seen)
        )
    if has_errors(findings):
        cluster = None
    return LoadedFile(file, cluster, sort_findings(findings), parsed.source)


def load_bytes(raw: bytes, file: str) -> LoadedFile:
    """Decode (UTF-8, or UTF-16 with a byte-order mark), then `load_text`."""
    if len(raw) > MAX_FILE_BYTES:
        return _file_error(file, "the file is larger than 1 MiB; a desired file is a few kilobytes")
    try:
        utf16 = raw.startswith((b"\xff\xfe", b"\xfe\xff"))
        text = raw.decode("utf-16") if utf16 else raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        prefix = raw[: exc.start].decode("utf-8", "replace")
        pos = position_in(prefix, len(prefix))
        return LoadedFile(file, None, [at("SPEC-YAML", file, pos, "not UTF-8 text")], SourceMap(file))
    return load_text(text, file)


def load_file(path: str | Path) -> LoadedFile:
    """Read and parse a desired file (`-` reads standard input). Never raises for bad input.

    A path that is not a regular file (a FIFO, a device) or is over the size limit is a
    finding at once: it is never read, so it can neither hang the run nor fill memory.
    """
    name = str(path)
    try:
        if name == "-":
            name = "<stdin>"
            raw = sys.stdin.buffer.read(MAX_FILE_BYTES + 1)
        else:
            raw = read_bounded(path, "desired file", limit=MAX_FILE_BYTES)
    except InputRefused as exc:
        return _file_error(name, exc.reason)
    except IsADirectoryError:
        return _file_error(name, "is a directory, not a desired file")
    except OSError as exc:
        return _file_error(name, f"cannot read the file: {exc.strerror or exc}")
    loaded = load_bytes(raw, name)
    loaded.raw = raw
    return loaded


def validate_file(path: str | Path) -> LoadedFile:
    """`load_file`, then the rule catalogue's file-only rules, all findings located.

    The vSphere version is the one the file pins (`spec.vsphereVersion`); with `auto`, the
    rules that depend on the version stay silent until the plan reads it from the hosts.
    """
    from reconciler.rules import run_rules

    loaded = load_file(path)
    if loaded.cluster is not None:
        loaded.add(run_rules(loaded.cluster))
    return loaded
