"""The disk-timeout fact: the exact commands, and the strict parsing of real reg.exe output.

Every file in `guest_samples/` is parsed here; the `wine-*` ones are captured from Wine's
reg.exe, the `windows*` ones written from Windows Server's (see guest_samples/README.md).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from providers.guest.facts import DiskTimeout
from providers.guest.transport import check_command_line, decode_output, quote_output
from reconciler.errors import GuestError

SAMPLES = Path(__file__).parent / "guest_samples"
_NAME = re.compile(r"^(?P<stem>.+)\.rc(?P<rc>\d+)\.txt$")


def sample(name: str) -> tuple[str, int]:
    """(text, exit code) of a sample, by its name without `.rc<N>.txt`."""
    (path,) = SAMPLES.glob(f"{name}.rc*.txt")
    match = _NAME.match(path.name)
    assert match is not None
    return decode_output(path.read_bytes()), int(match["rc"])


def all_samples() -> list[str]:
    names = []
    for path in sorted(SAMPLES.glob("*.txt")):
        match = _NAME.match(path.name)
        assert match is not None, f"{path.name}: samples are named <name>.rc<exit code>.txt"
        names.append(match["stem"])
    return names


# What each sample means: seconds, None (absent), or the words the error must say.
QUERY_EXPECTED: dict[str, int | tuple[str, ...] | None] = {
    "wine-query-60": 60,
    "wine-query-190": 190,
    "wine-query-value-missing": None,
    "wine-query-key-missing": None,
    "wine-query-reg-sz": ("REG_SZ (60)", "not REG_DWORD", r"\Services\Disk\n    TimeOutValue    REG_SZ    60"),
    "wine-query-escaped-quotes": ("exited with 1", "Invalid system key"),
    "windows-query-60": 60,
    "windows-query-value-missing": None,
    "windows-query-key-missing": None,
    "windows-query-access-denied": ("exited with 1", "ERROR: Access is denied."),
    "windows-query-reg-sz": ("REG_SZ", "not REG_DWORD"),
    "windows2003-query-60": 60,
    "windows2003-query-value-missing": None,
}
SET_EXPECTED: dict[str, tuple[str, ...] | None] = {
    "wine-add-success": None,
    "windows-add-success": None,
    "windows2003-add-success": None,
    "windows-add-access-denied": ("exit code 1", "ERROR: Access is denied."),
}


def test_every_sample_is_covered_and_keeps_its_crlf_line_ends() -> None:
    assert sorted(all_samples()) == sorted([*QUERY_EXPECTED, *SET_EXPECTED])
    for path in SAMPLES.glob("*.txt"):
        data = path.read_bytes()
        assert b"\r\n" in data and data.count(b"\n") == data.count(b"\r\n"), path.name


def test_commands_are_plain_reg_exe_command_lines() -> None:
    assert DiskTimeout.query_command() == r"reg.exe query HKLM\System\CurrentControlSet\Services\Disk /v TimeOutValue"
    assert (
        DiskTimeout.set_command(60)
        == r"reg.exe add HKLM\System\CurrentControlSet\Services\Disk /v TimeOutValue /t REG_DWORD /d 60 /f"
    )
    assert DiskTimeout.set_command(4294967295).endswith("/d 4294967295 /f")


@pytest.mark.parametrize("bad", [-1, 4294967296, 60.0, "60", True, None])
def test_set_command_refuses_what_a_dword_cannot_hold(bad: object) -> None:
    with pytest.raises(ValueError, match="REG_DWORD"):
        DiskTimeout.set_command(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", sorted(QUERY_EXPECTED))
def test_query_samples(name: str) -> None:
    text, rc = sample(name)
    expected = QUERY_EXPECTED[name]
    if isinstance(expected, tuple):
        with pytest.raises(GuestError) as info:
            DiskTimeout.parse_query(text, rc)
        for words in expected:
            assert words in str(info.value)
    else:
        assert DiskTimeout.parse_query(text, rc) == expected


@pytest.mark.parametrize("name", sorted(SET_EXPECTED))
def test_set_samples(name: str) -> None:
    text, rc = sample(name)
    expected = SET_EXPECTED[name]
    if expected is None:
        assert DiskTimeout.parse_set(text, rc) is None
    else:
        with pytest.raises(GuestError) as info:
            DiskTimeout.parse_set(text, rc)
        for words in expected:
            assert words in str(info.value)


K = "HKEY_LOCAL_MACHINE\\System\\CurrentControlSet\\Services\\Disk"


@pytest.mark.parametrize(
    ("output", "rc", "words"),
    [
        # a success exit code with a not-found message, and the reverse
        ("ERROR: The system was unable to find the specified registry key or value.\r\n", 0, "other than"),
        (f"\r\n{K}\r\n    TimeOutValue    REG_DWORD    0x3c\r\n", 1, "exited with 1"),
        # another exit code
        ("", 5, "(no output)"),
        # a localized Windows (German) says "not found" in words the parser does not know
        (
            "FEHLER: Der angegebene Registrierungsschlüssel bzw. Wert wurde nicht gefunden.\r\n",
            1,
            "Registrierungsschlüssel",
        ),
        # another key, another value, a second value, nothing at all
        (f"\r\n{K}\\Enum\r\n    TimeOutValue    REG_DWORD    0x3c\r\n", 0, "other than"),
        (f"\r\n{K}\r\n    TimeOutValueX    REG_DWORD    0x3c\r\n", 0, "not TimeOutValue"),
        (f"\r\n{K}\r\n    TimeOutValue    REG_DWORD    0x3c\r\n    Other    REG_DWORD    0x1\r\n", 0, "other than"),
        ("\r\n\r\n", 0, "other than"),
        # data that is not what reg.exe prints for a DWORD
        (f"\r\n{K}\r\n    TimeOutValue    REG_DWORD    60\r\n", 0, "not 0x"),
        (f"\r\n{K}\r\n    TimeOutValue    REG_DWORD    0x1ffffffff\r\n", 0, "not 0x"),
        (f"\r\n{K}\r\n    TimeOutValue    REG_DWORD\r\n", 0, "not 0x"),
        (f"\r\n{K}\r\n    TimeOutValue    REG_QWORD    0x3c\r\n", 0, "REG_QWORD"),
        # two not-found lines are not one answer
        ("reg: Unable to find the specified registry key\r\nreg: Unable to find the specified registry key\r\n", 1, ""),
    ],
)
def test_query_refuses_anything_unexpected_and_quotes_it(output: str, rc: int, words: str) -> None:
    with pytest.raises(GuestError) as info:
        DiskTimeout.parse_query(output, rc)
    assert words in str(info.value)


def test_query_reads_names_case_insensitively_and_any_line_end() -> None:
    output = f"\n{K.upper()}\n\tTIMEOUTVALUE\tREG_DWORD\t0xFFFFFFFF\n"
    assert DiskTimeout.parse_query(output, 0) == 0xFFFFFFFF


@pytest.mark.parametrize(
    ("output", "rc"),
    [
        ("The operation completed successfully.\r\n", 1),
        ("", 0),
        ("The operation completed successfully.\r\nERROR: Invalid syntax.\r\n", 0),
        ('ERROR: Invalid syntax.\r\nType "REG ADD /?" for usage.\r\n', 1),
    ],
)
def test_set_refuses_anything_but_success(output: str, rc: int) -> None:
    with pytest.raises(GuestError, match="setting TimeOutValue"):
        DiskTimeout.parse_set(output, rc)


@pytest.mark.parametrize(
    "line",
    ["", " reg.exe", 'reg.exe query "HKLM\\X"', "a & b", "a > f", "a | b", "a  b", "echo %PATH%", "a\r\nb"],
)
def test_command_lines_with_quotes_operators_or_odd_blanks_are_refused(line: str) -> None:
    with pytest.raises(ValueError):
        check_command_line(line)


def test_output_decoding_and_quoting() -> None:
    assert decode_output(b"\xff\xfe" + "ok\r\n".encode("utf-16-le")) == "ok\r\n"
    assert decode_output(b"\xef\xbb\xbfok") == "ok"
    assert decode_output("FEHLER: Schlüssel".encode("cp850")) == "FEHLER: Schl\u00fcssel"  # 0x81 in cp437 and cp850
    assert quote_output("  \r\n") == "(no output)"
    assert quote_output("a\r\nb\r\n") == r'"a\nb"'
    assert quote_output("HKEY_LOCAL_MACHINE\\X\r\n\tV\x07") == r'"HKEY_LOCAL_MACHINE\X\n\tV\x07"'
    assert quote_output("x" * 1000).endswith('…"')
