"""A finding: one thing wrong (or worth a warning) in a desired file or in what vCenter shows.

Findings are plain data. Rules and the loader produce them with a field path; the loader's
source map turns the path into FILE:LINE:COLUMN so every message points at a YAML node.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict

FieldPath = tuple[str | int, ...]


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


class Finding(BaseModel):
    model_config = ConfigDict(frozen=True)

    rule_id: str
    severity: Severity = Severity.ERROR
    message: str
    path: FieldPath = ()
    file: str | None = None
    line: int | None = None
    column: int | None = None

    @property
    def dotted_path(self) -> str:
        return dotted(self.path)

    def located(self, file: str | None, line: int | None, column: int | None) -> Finding:
        return self.model_copy(update={"file": file, "line": line, "column": column})

    def __str__(self) -> str:
        where = ":".join(str(p) for p in (self.file, self.line, self.column) if p is not None)
        prefix = f"{where}: " if where else ""
        field = f"{self.dotted_path}: " if self.path else ""
        level = "" if self.severity is Severity.ERROR else "warning: "
        return one_line(f"{prefix}{field}{level}{self.message} [{self.rule_id}]")


def one_line(text: str) -> str:
    """Escape control characters (a key written as "a\\nb" in the file) so a finding stays one line."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def dotted(path: FieldPath) -> str:
    """`('spec', 'sharedDisks', 'disks', 0, 'unit')` -> `spec.sharedDisks.disks[0].unit`."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def has_errors(findings: list[Finding]) -> bool:
    return any(f.severity is Severity.ERROR for f in findings)
