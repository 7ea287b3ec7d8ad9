"""The one small interface every way into a Windows guest implements, and its errors.

A transport runs one `cmd.exe` command line in the guest and hands back the exit code and
everything the command wrote (standard output and standard error merged, in order), as
text. What the command means and how its answer is read is the business of a fact
(`facts.py`); how the command gets there (VMware Tools guest operations, WinRM) is the
business of a transport. Nothing above this module knows which transport is in use.

Every failure a transport raises is a `GuestError`. Those that mean "this guest cannot be
reached or asked right now" are `GuestUnavailable` and carry a reason from a closed enum,
so that observing a whole cluster can report "SQLNODE2: bad-credentials (…)" for one node
and carry on with the others.
"""

from __future__ import annotations

import abc
import codecs
from dataclasses import dataclass
from enum import StrEnum

from reconciler.errors import GuestError

DEFAULT_COMMAND_TIMEOUT_S = 120.0
MAX_QUOTED_CHARS = 400


class UnavailableReason(StrEnum):
    """Why a guest could not be observed or changed. Stable strings: they appear in plan JSON."""

    NO_CREDENTIALS = "no-credentials"
    BAD_CREDENTIALS = "bad-credentials"
    NOT_CONFIGURED = "not-configured"
    VM_NOT_FOUND = "vm-not-found"
    POWERED_OFF = "powered-off"
    TOOLS_NOT_RUNNING = "tools-not-running"
    GUEST_OPERATIONS_UNAVAILABLE = "guest-operations-unavailable"
    GUEST_OPERATIONS_DISABLED = "guest-operations-disabled"
    PERMISSION_DENIED = "permission-denied"
    BUSY = "busy"
    UNREACHABLE = "unreachable"
    TIMEOUT = "timeout"
    COMMAND_FAILED = "command-failed"


class GuestUnavailable(GuestError):
    """The guest could not be asked: powered off, Tools not running, credentials refused, …

    `reason` is the closed-enum word a plan shows; the message says what to do about it.
    """

    def __init__(self, reason: UnavailableReason, message: str) -> None:
        self.reason = reason
        super().__init__(message)


class GuestCommandTimeout(GuestUnavailable):
    """The command did not finish within its time limit."""

    def __init__(self, message: str) -> None:
        super().__init__(UnavailableReason.TIMEOUT, message)


@dataclass(frozen=True)
class CommandResult:
    """What one command did: its exit code and its merged output, line ends as the guest wrote them."""

    exit_code: int
    output: str


class GuestTransport(abc.ABC):
    """Runs one command line through `cmd.exe` in one guest.

    `command_line` is what follows `cmd.exe /c`: a program and its arguments separated by
    single spaces, without quotes or redirections (the transport adds its own). Both
    transports merge standard error into the output so that a fact sees what a user at the
    console would see.
    """

    #: short name for messages ("vmtools", "winrm")
    name: str = "transport"

    @abc.abstractmethod
    def run(self, command_line: str, timeout_s: float = DEFAULT_COMMAND_TIMEOUT_S) -> CommandResult:
        """Run `command_line`, wait at most `timeout_s`, return its exit code and output."""

    def close(self) -> None:  # noqa: B027 - optional hook, most transports hold nothing open
        """Release what the transport holds open (a WinRM connection, …)."""


def check_command_line(command_line: str) -> str:
    """Refuse what could not travel unchanged through every transport.

    Quotes nested inside `cmd.exe /c` are read differently by Windows' and Wine's reg.exe,
    and a redirection or a second command would change what the output means; the facts
    never need them, so a command line holding one is a programming error.
    """
    if not command_line or command_line != command_line.strip():
        raise ValueError(f"command line {command_line!r}: empty or with leading/trailing blanks")
    for forbidden in ('"', "%", "&", "|", "<", ">", "^", "\r", "\n", "  "):
        if forbidden in command_line:
            raise ValueError(f"command line {command_line!r} holds {forbidden!r}; build it without")
    return command_line


def decode_output(data: bytes) -> str:
    """Text from the bytes a guest command wrote to a file.

    reg.exe writes in the console's code page when redirected (ASCII for everything the
    facts accept); a UTF-16 file starts with its byte-order mark. Bytes that are not UTF-8
    are read as code page 437 so that an error message is still quoted, never dropped.
    """
    if data.startswith(codecs.BOM_UTF16_LE) or data.startswith(codecs.BOM_UTF16_BE):
        return data.decode("utf-16")
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp437")


def quote_output(output: str) -> str:
    """The output as it may appear in an error message: one line, in double quotes, bounded.

    Line ends show as `\\n` and tabs as `\\t`; backslashes stay single, so registry paths
    read as they do on the console.
    """
    text = output.strip()
    if not text:
        return "(no output)"
    body = "\\n".join(line.rstrip() for line in text.splitlines())
    body = "".join(_visible(c) for c in body)
    if len(body) > MAX_QUOTED_CHARS:
        body = body[:MAX_QUOTED_CHARS] + "…"
    return f'"{body}"'


def _visible(char: str) -> str:
    if char == "\t":
        return "\\t"
    return char if char.isprintable() else f"\\x{ord(char):02x}"
