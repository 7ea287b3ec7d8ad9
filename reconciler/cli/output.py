"""Terminal output: one stdout console for results, one stderr console for messages.

Colour and progress only on a TTY (and never with --no-color or NO_COLOR); `--quiet`
keeps only errors and the final result. `MSCSCTL_LOG_LEVEL` (debug, info, warning, error;
default info) says which messages reach stderr. Every message has the password of any
PostgreSQL URL or `password=` keyword in it masked, whatever produced the text.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.text import Text

from reconciler.errors import MscsError
from state.location import redact

LOG_LEVEL_ENV = "MSCSCTL_LOG_LEVEL"
LOG_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}

_settings: dict[str, Any] = {"no_color": False, "quiet": False, "log_format": "text", "level": LOG_LEVELS["info"]}


def configure(*, no_color: bool, quiet: bool, log_format: str = "text") -> None:
    """Set the output up from the global options and the environment (`NO_COLOR`, `MSCSCTL_LOG_LEVEL`)."""
    _settings["no_color"] = no_color or bool(os.environ.get("NO_COLOR"))
    _settings["quiet"] = quiet
    _settings["log_format"] = log_format
    _settings["level"] = log_level(os.environ.get(LOG_LEVEL_ENV))


def log_level(text: str | None) -> int:
    """The level `MSCSCTL_LOG_LEVEL` names (unset or empty: info); anything else is a usage error."""
    if text is None or not text.strip():
        return LOG_LEVELS["info"]
    level = LOG_LEVELS.get(text.strip().lower())
    if level is None:
        raise MscsError(f"{LOG_LEVEL_ENV} is one of {', '.join(LOG_LEVELS)}, not {text!r}")
    return level


def _shown(level: str) -> bool:
    return LOG_LEVELS[level] >= _settings["level"]


def _log_json(level: str, message: str, **fields: Any) -> None:
    message = redact(message)
    record = {"time": datetime.now(UTC).isoformat(timespec="milliseconds"), "level": level, "msg": message, **fields}
    sys.stderr.write(json.dumps(record, default=str) + "\n")
    sys.stderr.flush()


def _console(stream: Any) -> Console:
    tty = stream.isatty()
    plain = _settings["no_color"] or not tty
    return Console(
        file=stream,
        force_terminal=tty,
        # No colour also means no bold or dim: no escape code at all, as Terraform's -no-color.
        color_system=None if plain else "auto",
        no_color=plain,
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
    if _settings["log_format"] == "json":
        _log_json("error", message)
        return
    stderr().print(Text.assemble(("Error:", "bold red"), " ", redact(message)), highlight=False)


def warn(message: str) -> None:
    if is_quiet() or not _shown("warning"):
        return
    if _settings["log_format"] == "json":
        _log_json("warning", message)
        return
    stderr().print(Text.assemble(("Warning:", "yellow"), " ", redact(message)), highlight=False)


def info(message: str) -> None:
    if is_quiet() or not _shown("info"):
        return
    if _settings["log_format"] == "json":
        _log_json("info", message)
        return
    stderr().print(redact(message), markup=False, highlight=False)


def debug(message: str, **fields: Any) -> None:
    """Detail for finding out what a run did; shown only with MSCSCTL_LOG_LEVEL=debug."""
    if not _shown("debug"):
        return
    if _settings["log_format"] == "json":
        _log_json("debug", message, **fields)
        return
    stderr().print(redact(message), markup=False, highlight=False)


def progress(message: str, **fields: Any) -> None:
    """One line per step of a long run (structured with --log-format json)."""
    if is_quiet() or not _shown("info"):
        return
    if _settings["log_format"] == "json":
        _log_json("info", message, **fields)
        return
    stderr().print(redact(message), markup=False, highlight=False)


def progress_mode() -> str:
    """How an apply shows its steps: `bars` on a terminal, `lines` elsewhere, `json` with
    --log-format json, `quiet` with --quiet or a log level above info."""
    if is_quiet() or not _shown("info"):
        return "quiet"
    if _settings["log_format"] == "json":
        return "json"
    return "bars" if sys.stderr.isatty() else "lines"


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
