"""The `mscsctl` command line. Commands live in one module each; this module wires them up.

Exit codes (documented in README and `--help`): 0 success / no changes, 1 error (invalid
input, rule violation, vCenter or guest failure, usage error), 2 changes present (with
`plan --detailed-exitcode`) or drift found.
"""

from __future__ import annotations

import sys

import typer
from typer.exceptions import TyperException

from reconciler.cli import output
from reconciler.errors import MscsError

EXIT_HELP = "Exit codes: 0 success (no changes), 1 error, 2 changes present (plan --detailed-exitcode) or drift found."

app = typer.Typer(
    name="mscsctl",
    help="Declarative reconciler for Microsoft failover clusters on VMware vSphere VMs.\n\n" + EXIT_HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


@app.callback()
def _global(
    no_color: bool = typer.Option(False, "--no-color", help="Never colour the output."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only errors and the final result."),
    log_format: str = typer.Option(
        "text", "--log-format", help="Log lines on stderr as 'text' or 'json' (one object a line, for pipelines)."
    ),
) -> None:
    if log_format not in ("text", "json"):
        raise typer.BadParameter("--log-format is 'text' or 'json'")
    try:
        output.configure(no_color=no_color, quiet=quiet, log_format=log_format)  # reads MSCSCTL_LOG_LEVEL too
    except MscsError as exc:
        output.error(str(exc))
        raise typer.Exit(1) from None


def _register() -> None:
    # Each command module adds its commands to `app` when imported.
    import importlib

    for name in ("validate_cmd", "plan_cmd", "state_cmd", "drift_cmd", "graph_cmd", "import_cmd"):
        try:
            importlib.import_module(f"reconciler.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"reconciler.cli.{name}":
                raise


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point: run the app, map every failure to an exit code, no traceback."""
    _register()
    try:
        result = app(args=argv, standalone_mode=False, prog_name="mscsctl")
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        output.error("aborted")
        return 1
    except TyperException as exc:
        # Usage errors exit 1, not 2: 2 means "changes present" in this tool.
        show = getattr(exc, "show", None)
        if show is not None:
            show(file=sys.stderr)
        else:
            output.error(exc.format_message())
        return 1
    return result if isinstance(result, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
