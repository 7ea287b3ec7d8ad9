"""Reading and setting TimeOutValue against Wine's real reg.exe, end to end through the service.

`WineGuest` runs each command exactly as the VMware Tools transport asks a guest to
(`programPath` and `arguments` from `program_spec_fields`, the arguments split on their
single spaces, as the lab runs them) in a private Wine prefix, then reads the output file
the command wrote. What is checked is everything above the vSphere calls: the command
lines, cmd.exe's redirection, reg.exe's answers and their parsing, read → set → read back.

Needs Wine (`wine64`); skipped without it, except under CI=true, where it fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

from providers.guest.facts import DiskTimeout
from providers.guest.service import observe_disk_timeout, read_disk_timeout, set_disk_timeout
from providers.guest.transport import CommandResult, GuestTransport, UnavailableReason, decode_output
from providers.guest.vmtools import output_path, program_spec_fields
from reconciler.errors import GuestError

pytestmark = [pytest.mark.wine, pytest.mark.slow]

WINE_CANDIDATES = ("wine64", "wine", "/usr/lib/wine/wine64", "/usr/lib64/wine/wine64")


def find_wine() -> str | None:
    for candidate in WINE_CANDIDATES:
        found = shutil.which(candidate) or (candidate if os.access(candidate, os.X_OK) else None)
        if found:
            return found
    return None


def unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI") == "true":
        pytest.fail(f"Wine tests cannot run: {reason}", pytrace=False)
    pytest.skip(f"Wine tests need Wine: {reason}")


class WineGuest(GuestTransport):
    """A Windows guest played by Wine: runs what VMware Tools would be asked to run."""

    name = "wine"

    def __init__(self, wine: str, prefix: Path) -> None:
        self.wine = wine
        self.prefix = prefix
        self.env = {**os.environ, "WINEPREFIX": str(prefix), "WINEDEBUG": "-all"}
        self.sent: list[tuple[str, str]] = []

    def run(self, command_line: str, timeout_s: float = 120.0) -> CommandResult:
        out = output_path()
        program_path, arguments = program_spec_fields(command_line, out)
        self.sent.append((program_path, arguments))
        done = subprocess.run(
            [self.wine, program_path, *arguments.split(" ")],
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,  # the command's output goes to its file, as under VMware Tools
            stderr=subprocess.DEVNULL,
            timeout=timeout_s,
            check=False,
        )
        windows_dir, _, file_name = out.rpartition("\\")
        assert windows_dir == r"C:\Windows\Temp"
        host_file = self.prefix / "drive_c" / "windows" / "temp" / file_name
        data = host_file.read_bytes()
        host_file.unlink()
        return CommandResult(done.returncode, decode_output(data))


@pytest.fixture(scope="module")
def wine_guest(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WineGuest]:
    wine = find_wine()
    if wine is None:
        unavailable("no wine64 or wine on PATH")
        return
    prefix = tmp_path_factory.mktemp("wineprefix")
    guest = WineGuest(wine, prefix)
    # Debian's Wine keeps the wineserver's socket directory under TMPDIR and `wineserver -k`
    # leaves it: a directory of this test's own, removed with its other files.
    guest.env["TMPDIR"] = str(tmp_path_factory.mktemp("winetmp"))
    wineserver = shutil.which("wineserver") or str(Path(wine).with_name("wineserver"))
    quiet = {"stdin": subprocess.DEVNULL, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    # A persistent wineserver for this prefix: without it every command starts one, which
    # holds the command's pipes open for seconds after the command is done.
    subprocess.run([wineserver, "-p"], env=guest.env, timeout=60, check=False, **quiet)  # type: ignore[call-overload]
    try:
        boot = subprocess.run([wine, "wineboot", "-i"], env=guest.env, timeout=300, check=False, **quiet)  # type: ignore[call-overload]
        if boot.returncode != 0:
            unavailable(f"`wine wineboot -i` exited with {boot.returncode}")
        yield guest
    finally:
        subprocess.run([wineserver, "-k"], env=guest.env, timeout=60, check=False, **quiet)  # type: ignore[call-overload]


def test_a_fresh_guest_has_no_value_then_gets_it_set_and_read_back(wine_guest: WineGuest) -> None:
    # A fresh prefix has no Services\Disk key at all: Wine says the key is missing.
    assert read_disk_timeout(wine_guest) is None
    change = set_disk_timeout(wine_guest, 60)
    assert (change.before, change.after, change.changed) == (None, 60, True)
    assert observe_disk_timeout("SQLNODE1", wine_guest).timeout_seconds == 60
    assert wine_guest.sent[2] == (
        r"C:\Windows\System32\cmd.exe",
        r"/c reg.exe add HKLM\System\CurrentControlSet\Services\Disk /v TimeOutValue /t REG_DWORD /d 60 /f > "
        + wine_guest.sent[2][1].split(" > ", 1)[1],
    )


def test_setting_again_changes_nothing_and_a_new_value_replaces_the_old(wine_guest: WineGuest) -> None:
    set_disk_timeout(wine_guest, 60)
    sent = len(wine_guest.sent)
    again = set_disk_timeout(wine_guest, 60)
    assert (again.before, again.changed) == (60, False)
    assert len(wine_guest.sent) == sent + 1  # one read, no write
    longer = set_disk_timeout(wine_guest, 190)
    assert (longer.before, longer.after, longer.changed) == (60, 190, True)
    assert read_disk_timeout(wine_guest) == 190


def test_a_reg_sz_value_is_reported_not_guessed(wine_guest: WineGuest) -> None:
    result = wine_guest.run(
        "reg.exe add HKLM\\System\\CurrentControlSet\\Services\\Disk /v TimeOutValue /t REG_SZ /d 60 /f"
    )
    DiskTimeout.parse_set(result.output, result.exit_code)
    seen = observe_disk_timeout("SQLNODE1", wine_guest)
    assert seen.reason == UnavailableReason.COMMAND_FAILED and "REG_SZ (60)" in seen.detail
    with pytest.raises(GuestError, match="REG_SZ"):
        set_disk_timeout(wine_guest, 60)
    # Cleared by hand (as an administrator would), the value is set again normally.
    wine_guest.run("reg.exe delete HKLM\\System\\CurrentControlSet\\Services\\Disk /v TimeOutValue /f")
    assert set_disk_timeout(wine_guest, 60).before is None


def test_the_output_files_are_not_left_behind(wine_guest: WineGuest) -> None:
    assert not list((wine_guest.prefix / "drive_c" / "windows" / "temp").glob("mscsctl-*.txt"))
