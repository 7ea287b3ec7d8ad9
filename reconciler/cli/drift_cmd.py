"""`mscsctl drift`: what changed in vCenter since the last apply, for people and pipelines."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from reconciler.cli import app, output
from reconciler.cli.options import (
    with_run_options,
)
from reconciler.drift import DriftReport, DriftSeverity
from reconciler.report.json_formats import drift_document
from reconciler.run import RunOptions, drift_exit_code, drift_file
from reconciler.values import show_value
from reconciler.workspace import write_private


def render_drift(reports: list[DriftReport]) -> str:
    lines = []
    for report in reports:
        if report.partial:
            lines.append(f"[bold]{report.cluster}[/]: only {_esc(', '.join(report.targets))} checked (--target).")
        if not report.findings:
            if not report.complete:
                lines.append(f"[bold]{report.cluster}[/]: not checked in full; no drift in the rest.")
            else:
                lines.append(f"[bold]{report.cluster}[/]: no drift.")
            lines += _unchecked_lines(report)
            lines += [f"  [yellow]note:[/] {_esc(note)}" for note in report.notes]  # e.g. MSCS-VM-006
            continue
        lines.append(f"[bold]{report.cluster}[/]: {len(report.findings)} finding(s), {report.critical} critical")
        for f in report.findings:
            style = "red" if f.severity is DriftSeverity.CRITICAL else "yellow"
            field = f".{f.field}" if f.field else ""
            lines.append(f"  [{style}]{f.severity}[/] {_esc(str(f.address))}{_esc(field)}")
            seen, wanted = _esc(show_value(f.observed)), _esc(show_value(f.desired))
            lines.append(f"      vCenter shows {seen}; the file wants {wanted}")
            if f.last_applied_at:
                outside = "changed outside mscsctl since" if f.changed_outside else "not applied yet"
                last = _esc(show_value(f.last_applied))
                lines.append(f"      last applied {last} at {f.last_applied_at} ({outside})")
            lines.append(f"      fix: {_esc(f.fix)}")
        lines += _unchecked_lines(report)
        lines += [f"  [yellow]note:[/] {_esc(note)}" for note in report.notes]
    return "\n".join(lines)


def _unchecked_lines(report: DriftReport) -> list[str]:
    return [
        f"  [yellow]skipped:[/] {_esc(u.summary)}" if u.on_purpose else f"  [red]not checked:[/] {_esc(u.summary)}"
        for u in report.unchecked
    ]


def _esc(text: str) -> str:
    return text.replace("[", "\\[")


@app.command("drift")
@output.reports_errors
@with_run_options(lock=False, target=True)
def drift_command(
    target: Path = typer.Argument(..., help="Desired-state file (YAML), or a directory of them."),
    as_json: bool = typer.Option(False, "--json", help="Print the findings as JSON."),
    markdown: bool = typer.Option(False, "--markdown", help="Print the findings as Markdown."),
    junit: Path | None = typer.Option(None, "--junit", help="Also write the findings as JUnit XML to this file."),
    *,
    options: RunOptions,
) -> int:
    """Compare what vCenter shows now with the desired file(s) and with what was last applied.

    Exit codes: 0 no drift, 2 drift found, 1 error (an unreachable vCenter is an error,
    never "no drift") or a part of the file that could not be checked (a guest not reached,
    a VM not found), named in every output and on stderr; --skip-guest leaves the guests out
    on purpose (named as skipped, not counted). --target ADDRESS checks only that cluster,
    node or object.
    """
    reports = drift_file(target, options)
    if junit is not None:
        from reconciler.report.junit import drift_junit

        write_private(junit, drift_junit(reports))
    if as_json:
        output.print_json(drift_document(reports))
    elif markdown:
        from reconciler.report.markdown import drift_markdown

        sys.stdout.write(drift_markdown(reports))
    else:
        output.stdout().print(render_drift(reports), markup=True, highlight=False)
    for report in reports:
        for part in report.unchecked:
            if part.on_purpose:
                output.info(f"{report.cluster}: skipped: {part.summary}")
            else:
                output.warn(f"{report.cluster}: not checked: {part.summary}")
    code = drift_exit_code(reports)
    if code == 1:
        output.error(
            "part of the file could not be checked (named above): exit 1, not 'no drift'; "
            "--skip-guest leaves the guests out on purpose"
        )
    if code:
        raise typer.Exit(code)
    return 0
