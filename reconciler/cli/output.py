"""Terminal output: one stdout console for results, one stderr console for messages.

Colour and progress only on a TTY (and never with --no-color or NO_COLOR); `--quiet`
keeps only errors and the final result.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console

from reconciler.errors import MscsError

_settings = {"no_color": False, "quiet": False}


def configure(*, no_color: bool, quiet: bool) -> None:
    _settings["no_color"] = no_color or bool(os.environ.get("NO_COLOR"))
    _settings["quiet"] = quiet


def _console(stream: Any) -> Console:
    tty = stream.isatty()
    return Console(
        file=stream,
        force_terminal=tty,
        no_color=_settings["no_color"] or not tty,
        highlight=False,
        soft_wrap=True,
    )


def stdout() -> Console:
    return _console(sys.stdout)


def stderr() -> Console:
    return _console(sys.stderr)


def is_quiet() -> bool:
    return _settings["quiet"]


def interactive() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


def error(message: str) -> None:
    stderr().print(f"[bold red]Error:[/] {message}", markup=True, highlight=False)


def warn(message: str) -> None:
    if not is_quiet():
        stderr().print(f"[yellow]Warning:[/] {message}", markup=True, highlight=False)


def info(message: str) -> None:
    if not is_quiet():
        stderr().print(message, markup=False, highlight=False)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


F = TypeVar("F", bound=Callable[..., Any])


def reports_errors(fn: F) -> F:
    """Turn every MscsError into its message and exit code 1; never a traceback.

    Anything else is a bug: say so in one line (MSCSCTL_DEBUG=1 shows the traceback).
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except MscsError as exc:
            error(str(exc))
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            error("interrupted")
            raise typer.Exit(1) from None
        except Exception as exc:
            if os.environ.get("MSCSCTL_DEBUG"):
                raise
            error(f"internal error: {type(exc).__name__}: {exc} (set MSCSCTL_DEBUG=1 for details)")
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]
