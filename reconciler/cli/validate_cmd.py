"""`mscsctl validate`, `mscsctl schema` and `mscsctl rules`: the desired file on its own, no vCenter."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
import yaml

from reconciler.cli import app, output
from reconciler.findings import Severity, one_line
from reconciler.loader import LoadedFile, validate_file
from reconciler.report.json_formats import rules_document, validate_document
from reconciler.rules import catalogue
from reconciler.schema import schema_text
from reconciler.spec import with_defaults
from reconciler.workspace import desired_files


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def summary(loaded: LoadedFile) -> str:
    """`sql-prod-01.yaml: valid (2 warnings)` or `sql-prod-01.yaml: 3 errors, 1 warning`."""
    errors = sum(f.severity is Severity.ERROR for f in loaded.findings)
    warnings = len(loaded.findings) - errors
    if errors:
        text = _count(errors, "error") + (f", {_count(warnings, 'warning')}" if warnings else "")
    else:
        text = "valid" + (f" ({_count(warnings, 'warning')})" if warnings else "")
    return one_line(f"{loaded.file}: {text}")


class _IndentedDumper(yaml.SafeDumper):
    """Indent list items under their key, as the examples are written."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def normalized_yaml(loaded: LoadedFile) -> str:
    assert loaded.cluster is not None
    return yaml.dump(
        with_defaults(loaded.cluster).to_yaml_dict(),
        Dumper=_IndentedDumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
    )


@app.command("validate")
@output.reports_errors
def validate_command(
    files: list[Path] = typer.Argument(
        ...,
        metavar="FILE|DIR",
        help="Desired-state files (YAML), or directories of them (one cluster a file); - reads standard input.",
        show_default=False,
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the findings as JSON."),
    show_defaults: bool = typer.Option(
        False,
        "--show-defaults",
        help="Print each valid file normalized, every default filled in, as YAML (findings go to stderr).",
    ),
) -> None:
    """Check desired files against the file format and the rule catalogue's file-only rules.

    Each finding is one line, FILE:LINE:COLUMN: field.path: message [RULE-ID], then one
    summary line per file. Rules that need vCenter, and rules that depend on the vSphere
    version while the file says vsphereVersion: auto, run at plan time.

    Exit codes: 0 every file is valid (warnings alone are fine), 1 a file has errors.
    """
    results = [validate_file(f) for path in files for f in (desired_files(path) if path.is_dir() else [path])]
    invalid = any(not r.valid for r in results)
    if as_json:
        output.print_json(validate_document(results, show_defaults=show_defaults))
        raise typer.Exit(1 if invalid else 0)

    report = output.stderr() if show_defaults else output.stdout()
    documents = []
    for loaded in results:
        for finding in loaded.findings:
            if finding.severity is Severity.WARNING and output.is_quiet():
                continue
            style = "red" if finding.severity is Severity.ERROR else "yellow"
            report.print(str(finding), style=style, markup=False, highlight=False)
        report.print(summary(loaded), style=None if loaded.valid else "bold red", markup=False, highlight=False)
        if show_defaults and loaded.valid:
            documents.append(normalized_yaml(loaded))
    if documents:
        sys.stdout.write("---\n".join(documents))
    raise typer.Exit(1 if invalid else 0)


@app.command("schema")
@output.reports_errors
def schema_command() -> None:
    """Print the JSON Schema of the desired file (for editor completion and validation).

    The same schema ships as reconciler/schema/failover-cluster.schema.json; point an
    editor at it with a first line such as
    # yaml-language-server: $schema=<path to>/failover-cluster.schema.json

    Exit codes: 0 success.
    """
    sys.stdout.write(schema_text())


@app.command("rules")
@output.reports_errors
def rules_command(
    as_json: bool = typer.Option(False, "--json", help="Print the catalogue as JSON."),
) -> None:
    """List the rule catalogue: ID, severity, vSphere versions, what it checks, and its source.

    "file" rules run at validate and plan; "vCenter" rules need what vCenter shows and run at
    plan. Sources: [ch] the vSphere 4 book chapter, [vmw X] VMware's failover clustering
    guide for vSphere X, [kb N] a VMware knowledge-base article; "no source found" where no
    guide or KB of the rule's versions states the fact (such a rule is a warning). --json
    gives each rule's citations (`sources`) and its range (`since`, `until`).

    Exit codes: 0 success.
    """
    rules = catalogue()
    if as_json:
        output.print_json(rules_document(rules))
        return
    console = output.stdout()
    width = max(len(r.id) for r in rules)
    vwidth = max(len(r.versions.text) for r in rules)
    for r in rules:
        where = "vCenter" if r.needs_observed else "file"
        console.print(
            f"{r.id:<{width}}  {r.severity.value:<7}  {r.versions.text:<{vwidth}}  {where:<7}  {r.title}",
            markup=False,
            highlight=False,
        )
        console.print(f"{'':<{width}}  source: {r.source_text}", style="dim", markup=False, highlight=False)
