"""Guest facts: what command to run, and a strict parser of what it answers.

A fact is a command plus a parser. The parser accepts exactly the shapes reg.exe is known
to print (Windows Server 2003 to 2022, and Wine's reg.exe, which the tests and the lab run)
and raises a `GuestError` quoting anything else: an unexpected answer is reported, never
guessed at. Real samples of each shape live in `tests/unit/guest_samples/`.

Commands use reg.exe, present on every Windows Server from 2003 on (PowerShell is not on
2003), and carry no quotes: Wine's reg.exe reads a quoted key inside `cmd.exe /c` as an
"Invalid system key", and none of these arguments needs quoting anyway.
"""

from __future__ import annotations

import re

from providers.guest.transport import check_command_line, quote_output
from reconciler.errors import GuestError

DWORD_MAX = 0xFFFFFFFF

_REG_EXE_BANNER = re.compile(r"^! REG\.EXE VERSION \d+(\.\d+)*$", re.IGNORECASE)  # Windows Server 2003
_VALUE_LINE = re.compile(r"^[ \t]+(?P<name>\S+)[ \t]+(?P<type>REG_[A-Z_]+)(?:[ \t]+(?P<data>.*?))?[ \t]*$")
_DWORD_DATA = re.compile(r"^0x(?P<hex>[0-9a-fA-F]{1,8})$")
_NOT_FOUND = (
    # Windows Server 2008 and later; 2003 writes "Error:" and may leave out the full stop.
    re.compile(r"^error:\s+the system was unable to find the specified registry key or value\.?$", re.IGNORECASE),
    # Wine tells a missing key from a missing value.
    re.compile(r"^reg: unable to find the specified registry (key|value)\.?$", re.IGNORECASE),
)
_ADD_DONE = re.compile(r"^(reg: )?the operation completed successfully\.?$", re.IGNORECASE)


def _lines(output: str) -> list[str]:
    """Non-blank lines, trailing blanks removed, reg.exe's version banner (2003) left out."""
    lines = [line.rstrip() for line in output.splitlines()]
    return [line for line in lines if line.strip() and not _REG_EXE_BANNER.match(line.strip())]


class DiskTimeout:
    """`HKLM\\System\\CurrentControlSet\\Services\\Disk\\TimeOutValue` (REG_DWORD, seconds).

    How long Windows waits for a disk before giving up on it; a failover cluster node needs
    60 seconds or more so that a shared disk survives a path or node failover, and Windows
    resets it when the cluster is created again.
    """

    key = r"HKLM\System\CurrentControlSet\Services\Disk"
    key_as_printed = r"HKEY_LOCAL_MACHINE\System\CurrentControlSet\Services\Disk"
    value = "TimeOutValue"

    @classmethod
    def query_command(cls) -> str:
        return check_command_line(f"reg.exe query {cls.key} /v {cls.value}")

    @classmethod
    def set_command(cls, seconds: int) -> str:
        if isinstance(seconds, bool) or not isinstance(seconds, int) or not 0 <= seconds <= DWORD_MAX:
            raise ValueError(f"TimeOutValue {seconds!r}: a REG_DWORD holds a whole number from 0 to {DWORD_MAX}")
        return check_command_line(f"reg.exe add {cls.key} /v {cls.value} /t REG_DWORD /d {seconds} /f")

    @classmethod
    def parse_query(cls, output: str, exit_code: int) -> int | None:
        """Seconds, or None when the value (or, on Wine, the key) does not exist."""
        lines = _lines(output)
        if exit_code == 1 and len(lines) == 1 and any(p.match(lines[0].strip()) for p in _NOT_FOUND):
            return None
        if exit_code != 0:
            raise GuestError(f"`{cls.query_command()}` exited with {exit_code}: {quote_output(output)}")
        if len(lines) != 2 or lines[0].strip().lower() != cls.key_as_printed.lower():
            raise GuestError(
                f"`{cls.query_command()}` answered something other than {cls.key_as_printed} and one value: "
                f"{quote_output(output)}"
            )
        match = _VALUE_LINE.match(lines[1])
        if match is None or match["name"].lower() != cls.value.lower():
            raise GuestError(f"`{cls.query_command()}` answered a line that is not {cls.value}: {quote_output(output)}")
        if match["type"] != "REG_DWORD":
            raise GuestError(
                f"{cls.value} is {match['type']} ({match['data'] or ''}), not REG_DWORD, so Windows ignores it; "
                f"delete it or make it a REG_DWORD (`{cls.set_command(60)}`): {quote_output(output)}"
            )
        data = _DWORD_DATA.match(match["data"] or "")
        if data is None:
            raise GuestError(f"{cls.value} holds REG_DWORD data that is not 0x…: {quote_output(output)}")
        return int(data["hex"], 16)

    @classmethod
    def parse_set(cls, output: str, exit_code: int) -> None:
        """Nothing when reg.exe says it set the value; a `GuestError` quoting it otherwise."""
        lines = _lines(output)
        if exit_code == 0 and len(lines) == 1 and _ADD_DONE.match(lines[0].strip()):
            return
        raise GuestError(f"setting {cls.value} with reg.exe failed (exit code {exit_code}): {quote_output(output)}")
