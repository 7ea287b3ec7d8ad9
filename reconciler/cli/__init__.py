"""The `mscsctl` command line. Commands live in one module each; this module wires them up.

Exit codes (documented in README and `--help`): 0 success / no changes, 1 error (invalid
input, rule violation, vCenter or guest failure, usage error), 2 changes present (with
`plan --detailed-exitcode`) or drift found.
"""

from __future__ import annotations

import re
import sys
from typing import Any

import typer
from typer.core import TyperArgument, TyperCommand
from typer.exceptions import TyperException

from reconciler.cli import output
from reconciler.errors import MscsError
from reconciler.version import mscsctl_version

EXIT_HELP = "Exit codes: 0 success (no changes), 1 error, 2 changes present (plan --detailed-exitcode) or drift found."

# The global options, and whether each takes a value: accepted before or after the command.
GLOBAL_FLAGS = {"--no-color": False, "--quiet": False, "-q": False, "--log-format": True}

_LIST_TYPE = re.compile(r"<list\[(\w+)\]>")


# What a command's argument is, as README's commands table writes it.
ARGUMENT_NAMES = {
    ("plan", "target"): "FILE|DIR",
    ("apply", "target"): "FILE|DIR|PLAN",
    ("drift", "target"): "FILE|DIR",
    ("destroy", "target"): "FILE|DIR",
    ("graph", "target"): "FILE|DIR|PLAN",
    ("force-unlock", "lock_id"): "ID",
}


def _argument_name(command: str | None, param: TyperArgument) -> str:
    name = param.name or ""
    return param.metavar or ARGUMENT_NAMES.get((command or "", name), name.upper())


class PlainHelpCommand(TyperCommand):
    """Help as admins read it: `mscsctl validate [OPTIONS] FILE...`, `--vm <str>`.

    Typer writes a required argument as `{target}` and a list as `<list[Path]>`; the
    usage line and the help rows here name arguments in capitals, `[X]` when optional,
    `X...` when repeated, and a repeated option by its element type.
    """

    def __init__(self, name: str | None, **kwargs: Any) -> None:
        super().__init__(name, **kwargs)
        for param in self.params:
            if isinstance(param, TyperArgument):
                param.metavar = _argument_name(name, param)  # usage errors name it so too

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if isinstance(param, TyperArgument):
                name = _argument_name(self.name, param)
                name = name if param.required else f"[{name}]"
                pieces.append(name + ("..." if param.nargs != 1 else ""))
            else:
                pieces.extend(param.get_usage_pieces(ctx))
        return pieces

    def format_options(self, ctx: Any, formatter: Any) -> None:
        args: list[tuple[str, str]] = []
        opts: list[tuple[str, str]] = []
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is None:
                continue
            if isinstance(param, TyperArgument):
                name = _argument_name(self.name, param) + ("..." if param.nargs != 1 else "")
                args.append((name, (param.help or "") + ("  [required]" if param.required else "")))
            else:
                opts.append((_LIST_TYPE.sub(lambda m: f"<{m.group(1).lower()}>", record[0]), record[1]))
        if args:
            with formatter.section("Arguments"):
                formatter.write_dl(args)
        if opts:
            with formatter.section("Options"):
                formatter.write_dl(opts)


class MscsctlApp(typer.Typer):
    """Every command registered on the app gets the plain help of `PlainHelpCommand`."""

    def command(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("cls", PlainHelpCommand)
        return super().command(*args, **kwargs)


app = MscsctlApp(
    name="mscsctl",
    help="Declarative reconciler for Microsoft failover clusters on VMware vSphere VMs.\n\n" + EXIT_HELP,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _print_version(value: bool) -> None:
    if value:
        sys.stdout.write(f"mscsctl {mscsctl_version()}\n")
        raise typer.Exit(0)


@app.callback()
def _global(
    no_color: bool = typer.Option(False, "--no-color", help="Never colour the output."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only errors and the final result."),
    log_format: str = typer.Option(
        "text", "--log-format", help="Log lines on stderr as 'text' or 'json' (one object a line, for pipelines)."
    ),
    version: bool = typer.Option(
        False, "--version", "-V", callback=_print_version, is_eager=True, help="Print mscsctl's version and exit."
    ),
) -> None:
    """Global options go before or after the command: `mscsctl plan FILE --no-color` works too."""
    if log_format not in ("text", "json"):
        raise typer.BadParameter("--log-format is 'text' or 'json'")
    try:
        output.configure(no_color=no_color, quiet=quiet, log_format=log_format)  # reads MSCSCTL_LOG_LEVEL too
    except MscsError as exc:
        output.error(str(exc))
        raise typer.Exit(1) from None


def global_options_first(argv: list[str]) -> list[str]:
    """The global options moved before the command, wherever they stand (up to a `--`).

    `mscsctl plan FILE --no-color` then means `mscsctl --no-color plan FILE`, as an admin
    used to Terraform's or kubectl's flags expects.
    """
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            rest += argv[i:]
            break
        name = arg.split("=", 1)[0]
        takes_value = GLOBAL_FLAGS.get(name)
        if takes_value is None:
            rest.append(arg)
        elif takes_value and "=" not in arg and i + 1 < len(argv):
            front += [arg, argv[i + 1]]
            i += 1
        else:
            front.append(arg)
        i += 1
    return front + rest


def _register() -> None:
    # Each command module adds its commands to `app` when imported.
    import importlib

    for name in ("validate_cmd", "plan_cmd", "state_cmd", "drift_cmd", "graph_cmd", "import_cmd", "destroy_cmd"):
        try:
            importlib.import_module(f"reconciler.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"reconciler.cli.{name}":
                raise


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point: run the app, map every failure to an exit code, no traceback."""
    _register()
    args = global_options_first(sys.argv[1:] if argv is None else list(argv))
    try:
        result = app(args=args, standalone_mode=False, prog_name="mscsctl")
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
