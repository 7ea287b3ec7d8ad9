"""The WinRM transport: the request it would send, and real reg.exe answers read through it.

No Windows host is reached: a fake client stands where `pypsrp.client.Client` goes (the
transport's `client_factory` seam) and answers with the reg.exe samples. The options are
also handed to the real pypsrp classes, which build their endpoint without connecting, to
show pypsrp accepts them as they are.
"""

from __future__ import annotations

import socket
import ssl
from pathlib import Path
from typing import Any

import pytest
import requests
import urllib3
from pypsrp.client import Client
from pypsrp.exceptions import AuthenticationError, WinRMTransportError, WSManFaultError

from providers.guest.credentials import GuestCredentials
from providers.guest.facts import DiskTimeout
from providers.guest.service import read_disk_timeout, set_disk_timeout
from providers.guest.transport import CommandResult, GuestUnavailable, UnavailableReason
from providers.guest.winrm import WinRmTransport, endpoint_url, network_reason, winrs_command
from reconciler.errors import GuestError
from reconciler.spec import WinRM

SAMPLES = Path(__file__).parent / "guest_samples"
CREDS = GuestCredentials(user="CORP\\clusteradmin", password="hunter2", user_env="NODE3_USER", password_env="NODE3_PW")


def sample(name: str) -> tuple[str, int]:
    (path,) = SAMPLES.glob(f"{name}.rc*.txt")
    return path.read_bytes().decode("cp437"), int(path.name.rsplit(".rc", 1)[1].split(".")[0])


class FakeWinRmHost:
    """Stands where pypsrp's Client goes: records what it is given, answers from samples."""

    def __init__(self, *answers: str | BaseException) -> None:
        self.answers = list(answers)
        self.clients: list[dict[str, Any]] = []
        self.commands: list[tuple[str, str]] = []
        self.closed = 0

    def __call__(self, server: str, **options: Any) -> FakeWinRmHost:
        self.clients.append({"server": server, **options})
        return self

    def execute_cmd(self, command: str, encoding: str = "437") -> tuple[str, str, int]:
        self.commands.append((command, encoding))
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        text, rc = sample(answer)
        return text, "", rc

    def close(self) -> None:
        self.closed += 1


def transport(host: FakeWinRmHost, settings: WinRM | None = None, **kwargs: Any) -> WinRmTransport:
    return WinRmTransport(settings or WinRM(address="sqlphys1.corp.example"), CREDS, client_factory=host, **kwargs)


def test_endpoint_urls() -> None:
    assert endpoint_url(WinRM(address="sqlphys1.corp.example")) == "https://sqlphys1.corp.example:5986/wsman"
    assert endpoint_url(WinRM(address="10.0.0.5", port=5985, ssl=False)) == "http://10.0.0.5:5985/wsman"
    assert endpoint_url(WinRM(address="fd00::5")) == "https://[fd00::5]:5986/wsman"


def test_the_command_line_goes_to_the_cmd_shell_with_stderr_merged() -> None:
    assert winrs_command(DiskTimeout.query_command()) == (
        r"reg.exe query HKLM\System\CurrentControlSet\Services\Disk /v TimeOutValue 2>&1"
    )


def test_the_request_it_would_send() -> None:
    host = FakeWinRmHost("windows-query-60")
    result = transport(host, ca_file="winrm-ca.pem").run(DiskTimeout.query_command(), timeout_s=45)
    assert result == CommandResult(0, sample("windows-query-60")[0])
    assert host.commands == [(r"reg.exe query HKLM\System\CurrentControlSet\Services\Disk /v TimeOutValue 2>&1", "437")]
    assert host.clients == [
        {
            "server": "sqlphys1.corp.example",
            "port": 5986,
            "ssl": True,
            "path": "wsman",
            "auth": "negotiate",
            "username": "CORP\\clusteradmin",
            "password": "hunter2",
            "cert_validation": "winrm-ca.pem",
            "encryption": "auto",
            "connection_timeout": 30,
            "operation_timeout": 45,
            "read_timeout": 55,
            "no_proxy": True,
        }
    ]
    assert host.closed == 1


def test_tls_verification_choices() -> None:
    settings = WinRM(address="sqlphys1.corp.example")
    assert transport(FakeWinRmHost(), settings).client_options(60)["cert_validation"] is True
    assert transport(FakeWinRmHost(), settings, verify_tls=False).client_options(60)["cert_validation"] is False
    plain = transport(FakeWinRmHost(), WinRM(address="10.0.0.5", port=5985, ssl=False)).client_options(5)
    assert plain["ssl"] is False and plain["port"] == 5985 and plain["connection_timeout"] == 5


def test_pypsrp_accepts_the_options_as_they_are() -> None:
    winrm = WinRmTransport(WinRM(address="sqlphys1.corp.example", port=15986), CREDS, ca_file="winrm-ca.pem")
    client = Client(winrm.settings.address, **winrm.client_options(120))  # builds, does not connect
    http = client.wsman.transport
    assert http.endpoint == winrm.endpoint == "https://sqlphys1.corp.example:15986/wsman"
    assert (http.auth, http.username, http.cert_validation, http.no_proxy) == (
        "negotiate",
        "CORP\\clusteradmin",
        "winrm-ca.pem",
        True,
    )
    assert client.wsman.operation_timeout == 120 and http.read_timeout == 130
    assert "hunter2" not in repr(winrm)
    plain = WinRmTransport(WinRM(address="10.0.0.5", port=5985, ssl=False), CREDS)
    assert Client("10.0.0.5", **plain.client_options(60)).wsman.transport.wrap_required  # HTTP: messages encrypted


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("windows-query-60", 60),
        ("windows2003-query-60", 60),
        ("windows-query-value-missing", None),
        ("wine-query-190", 190),
    ],
)
def test_reading_real_answers_through_winrm(answer: str, expected: int | None) -> None:
    assert read_disk_timeout(transport(FakeWinRmHost(answer))) == expected


def test_setting_reads_first_sets_then_reads_back() -> None:
    host = FakeWinRmHost("windows-query-value-missing", "windows-add-success", "windows-query-60")
    change = set_disk_timeout(transport(host), 60)
    assert (change.before, change.after, change.changed) == (None, 60, True)
    assert [c for c, _ in host.commands] == [
        r"reg.exe query HKLM\System\CurrentControlSet\Services\Disk /v TimeOutValue 2>&1",
        r"reg.exe add HKLM\System\CurrentControlSet\Services\Disk /v TimeOutValue /t REG_DWORD /d 60 /f 2>&1",
        r"reg.exe query HKLM\System\CurrentControlSet\Services\Disk /v TimeOutValue 2>&1",
    ]


def test_access_denied_when_setting_is_an_error_quoting_windows() -> None:
    host = FakeWinRmHost("windows-query-value-missing", "windows-add-access-denied")
    with pytest.raises(GuestError, match="ERROR: Access is denied"):
        set_disk_timeout(transport(host), 60)


@pytest.mark.parametrize(
    ("exc", "reason", "words"),
    [
        (
            AuthenticationError("Failed to authenticate the user CORP\\clusteradmin with ntlm"),
            "bad-credentials",
            "check NODE3_USER / NODE3_PW",
        ),
        (WinRMTransportError("http", 401, "unauthorized"), "bad-credentials", "refused the login"),
        (WinRMTransportError("http", 500, "internal"), "unreachable", "HTTP 500"),
        (
            WSManFaultError(
                2150858770, "host", "The WS-Management service cannot process the request.", None, None, None
            ),
            "command-failed",
            "cannot process",
        ),
        (requests.exceptions.SSLError("certificate verify failed"), "unreachable", "TLS: certificate verify failed"),
        (requests.exceptions.ConnectTimeout("timed out"), "timeout", ": timed out"),
        (requests.exceptions.ConnectionError("Connection refused"), "unreachable", ": connection refused"),
    ],
)
def test_winrm_failures_become_reasons(exc: BaseException, reason: str, words: str) -> None:
    with pytest.raises(GuestUnavailable) as info:
        transport(FakeWinRmHost(exc)).run(DiskTimeout.query_command())
    assert info.value.reason is UnavailableReason(reason)
    assert words in str(info.value) and "https://sqlphys1.corp.example:5986" in str(info.value)
    assert "hunter2" not in str(info.value)


def _real_transport(address: str, port: int) -> WinRmTransport:
    """The transport with pypsrp's own client: it really connects."""
    return WinRmTransport(WinRM(address=address, port=port), CREDS)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize(
    ("address", "why"),
    [("127.0.0.1", "connection refused"), ("nonexistent.invalid", "cannot resolve host name")],
)
def test_a_network_failure_is_one_line_with_host_port_and_reason(address: str, why: str) -> None:
    port = _closed_port() if address == "127.0.0.1" else 5986
    with pytest.raises(GuestUnavailable) as info:
        _real_transport(address, port).run(DiskTimeout.query_command(), timeout_s=5)
    assert str(info.value) == f"winrm https://{address}:{port}: {why}"
    assert info.value.reason is UnavailableReason.UNREACHABLE


def test_requests_wrapping_is_read_to_the_cause() -> None:
    """What requests raises: its error around urllib3's, around the socket's; the innermost says why."""
    verify = ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed")
    wrapped = requests.exceptions.SSLError(urllib3.exceptions.MaxRetryError(None, "/wsman", verify))
    assert network_reason(wrapped) == (
        UnavailableReason.UNREACHABLE,
        "TLS: certificate verify failed (give its CA bundle)",
    )
    timeout = requests.exceptions.ConnectionError(urllib3.exceptions.MaxRetryError(None, "/wsman", TimeoutError()))
    assert network_reason(timeout) == (UnavailableReason.TIMEOUT, "timed out")
