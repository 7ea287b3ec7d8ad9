"""The machine forms of mscsctl's outputs (`--json`), built in one place and versioned.

Every document carries `format_version` (of its own format) and `mscsctl_version` (the
mscsctl that wrote it), as Terraform's JSON outputs do. A format's version changes only on
a breaking change: a field removed or renamed, its type or meaning changed, a value of a
closed set removed. New fields and new values of an open set come within a version, so a
reader ignores what it does not know (docs/json-formats.md; a schema per format in
docs/schemas/). The plan's document is the saved plan too and lives with its reader
(reconciler/plan_file.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler.drift import DRIFT_FORMAT_VERSION, DriftReport
from reconciler.findings import Finding, Severity
from reconciler.plan_file import plan_document
from reconciler.run import ApplyResult, ApplyStatus
from reconciler.spec import with_defaults
from reconciler.version import mscsctl_version
from state.model import State

if TYPE_CHECKING:
    from reconciler.loader import LoadedFile
    from reconciler.rules.catalogue import Rule

APPLY_FORMAT_VERSION = 1
STATES_FORMAT_VERSION = 1
VALIDATE_FORMAT_VERSION = 1
RULES_FORMAT_VERSION = 1

__all__ = [
    "apply_document",
    "drift_document",
    "plan_document",
    "rules_document",
    "show_document",
    "states_document",
    "validate_document",
]


def _versioned(format_version: int, body: dict[str, Any]) -> dict[str, Any]:
    return {"format_version": format_version, "mscsctl_version": mscsctl_version(), **body}


def apply_document(results: list[ApplyResult]) -> dict[str, Any]:
    """`apply --json`: each cluster's outcome and the number of changes made."""
    return _versioned(
        APPLY_FORMAT_VERSION,
        {"clusters": [_apply_result(r) for r in results], "changes": sum(len(r.done) for r in results)},
    )


def _apply_result(result: ApplyResult) -> dict[str, Any]:
    row: dict[str, Any] = {"cluster": result.cluster, "status": str(result.status)}
    if result.error is not None:
        row["error"] = str(result.error)
        row["done"] = list(getattr(result.error, "done", []))
        row["left"] = list(getattr(result.error, "left", []))
    elif result.status is ApplyStatus.NOT_STARTED:
        row["why"] = result.note
    else:
        row["done"] = [o.action.id for o in result.done]
        row["skipped"] = [o.action.id for o in result.skipped]
    row["not_done"] = [u.model_dump(mode="json") for u in result.unchecked]
    return row


def drift_document(reports: list[DriftReport]) -> dict[str, Any]:
    """`drift --json`: one report a cluster."""
    return _versioned(DRIFT_FORMAT_VERSION, {"reports": [r.model_dump(mode="json") for r in reports]})


def show_document(state: State) -> dict[str, Any]:
    """`show --json`: the recorded state, its format's number as `format_version`.

    The state file (and the PostgreSQL row) keep calling it `version` and are read as they
    are; the document names it as every other output does. It is the state's format: both
    change together.
    """
    data = state.model_dump(mode="json")
    return _versioned(data.pop("version"), data)


def states_document(rows: list[tuple[Path, str | None, int | None]]) -> dict[str, Any]:
    """`show --json` in a directory of several states: each state file, its cluster and serial."""
    return _versioned(
        STATES_FORMAT_VERSION,
        {"states": [{"state": str(path), "cluster": cluster, "serial": serial} for path, cluster, serial in rows]},
    )


def validate_document(results: list[LoadedFile], *, show_defaults: bool) -> dict[str, Any]:
    """`validate --json`: every file's findings and counts, and whether all are valid."""
    return _versioned(
        VALIDATE_FORMAT_VERSION,
        {"valid": all(r.valid for r in results), "files": [_validated_file(r, show_defaults) for r in results]},
    )


def _validated_file(loaded: LoadedFile, show_defaults: bool) -> dict[str, Any]:
    errors = sum(f.severity is Severity.ERROR for f in loaded.findings)
    data: dict[str, Any] = {
        "file": loaded.file,
        "valid": loaded.valid,
        "errors": errors,
        "warnings": len(loaded.findings) - errors,
        "findings": [finding_dict(f) for f in loaded.findings],
    }
    if show_defaults and loaded.valid and loaded.cluster is not None:
        data["normalized"] = with_defaults(loaded.cluster).to_yaml_dict()
    return data


def finding_dict(finding: Finding) -> dict[str, Any]:
    """A finding with its dotted field path and the one line the text output prints."""
    data = finding.model_dump(mode="json")
    data["field"] = finding.dotted_path
    data["text"] = str(finding)
    return data


def rules_document(rules: list[Rule]) -> dict[str, Any]:
    """`rules --json`: the rule catalogue."""
    return _versioned(RULES_FORMAT_VERSION, {"rules": [r.as_dict() for r in rules]})
