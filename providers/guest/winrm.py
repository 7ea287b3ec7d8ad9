"""Running a command on a Windows node through WinRM (pypsrp), for `physical:` nodes.

A WinRM shell is a `cmd.exe`, so the command line goes as it is with `2>&1` appended:
reg.exe's error messages arrive in the same output as its answers, as on the console.
The endpoint is `https://<address>:5986/wsman` by default (`winrm: {address, port, ssl}`
on the node); over plain HTTP, pypsrp encrypts the messages with the negotiated
(Kerberos or NTLM) session key instead.

What pypsrp is given is built by `WinRmTransport.client_options()` and handed to a client
factory (`pypsrp.client.Client` unless one is injected), so the request can be checked
without a Windows host. This transport is not exercised against a live Windows host in
this repository's tests: those cover the request it would send and the parsing of real
reg.exe output samples (Windows' and Wine's); the VMware Tools transport is the one the
lab runs end to end.
"""

from __future__ import annotations

import math
import socket
import ssl
from collections.abc import Callable
from typing import Any

import requests
from pypsrp.exceptions import AuthenticationError, WinRMError, WinRMTransportError, WSManFaultError

from providers.guest.credentials import GuestCredentials
from providers.guest.transport import (
    DEFAULT_COMMAND_TIMEOUT_S,
    CommandResult,
    GuestTransport,
    GuestUnavailable,
    UnavailableReason,
    check_command_line,
)
from reconciler.spec import WinRM

AUTH = "negotiate"  # Kerberos in a domain, NTLM otherwise; never basic (it would send the password as is)
CONNECT_TIMEOUT_S = 30
OUTPUT_CODEPAGE = "437"


def winrs_command(command_line: str) -> str:
    """What the WinRM shell runs: the command with standard error merged into the output."""
    return f"{check_command_line(command_line)} 2>&1"


def endpoint_url(settings: WinRM, path: str = "wsman") -> str:
    scheme = "https" if settings.ssl else "http"
    host = f"[{settings.address}]" if ":" in settings.address else settings.address
    return f"{scheme}://{host}:{settings.port}/{path}"


def error_from_winrm(exc: BaseException, where: str, credentials_source: str) -> GuestUnavailable:
    """What a pypsrp/requests exception means, as a reason; the password never appears.

    A network failure is one line, `winrm https://HOST:5986: connection refused`, never
    the chain of requests' and urllib3's reprs (`HTTPSConnectionPool(...): Max retries ...`).
    """
    R = UnavailableReason
    if isinstance(exc, AuthenticationError) or (isinstance(exc, WinRMTransportError) and exc.code == 401):
        return GuestUnavailable(R.BAD_CREDENTIALS, f"WinRM at {where} refused the login: check {credentials_source}")
    if isinstance(exc, WinRMTransportError):
        return GuestUnavailable(R.UNREACHABLE, f"WinRM at {where} answered HTTP {exc.code}: {exc.response_text[:200]}")
    if isinstance(exc, WSManFaultError):
        return GuestUnavailable(R.COMMAND_FAILED, f"WinRM at {where} answered a fault: {exc.reason or exc.code}")
    if isinstance(exc, requests.exceptions.RequestException | OSError):
        reason, why = network_reason(exc)
        return GuestUnavailable(reason, f"winrm {_base_url(where)}: {why}")
    return GuestUnavailable(R.COMMAND_FAILED, f"WinRM at {where} failed: {type(exc).__name__}: {exc}")


def _base_url(where: str) -> str:
    """`https://host:5986/wsman` -> `https://host:5986`."""
    scheme, sep, rest = where.partition("://")
    return f"{scheme}{sep}{rest.split('/', 1)[0]}" if sep else where


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and everything it wraps: causes, contexts, urllib3's `reason`, exceptions in args."""
    seen: list[BaseException] = []
    todo = [exc]
    while todo and len(seen) < 20:
        current = todo.pop(0)
        if any(current is s for s in seen):
            continue
        seen.append(current)
        wrapped = [getattr(current, "reason", None), current.__cause__, current.__context__, *current.args]
        todo += [w for w in wrapped if isinstance(w, BaseException)]
    return seen


def network_reason(exc: BaseException) -> tuple[UnavailableReason, str]:
    """The reason a connection failed, in a few words: what an admin needs to fix it."""
    R = UnavailableReason
    chain = _chain(exc)
    text = " ".join(str(e) for e in chain).lower()
    if any(isinstance(e, ssl.SSLCertVerificationError) for e in chain) or "certificate verify failed" in text:
        return R.UNREACHABLE, "TLS: certificate verify failed (give its CA bundle)"
    if any(isinstance(e, socket.gaierror) for e in chain) or "name resolution" in text or "not known" in text:
        return R.UNREACHABLE, "cannot resolve host name"
    if any(isinstance(e, ConnectionRefusedError) for e in chain) or "connection refused" in text:
        return R.UNREACHABLE, "connection refused"
    if any(isinstance(e, requests.exceptions.Timeout | TimeoutError) for e in chain) or "timed out" in text:
        return R.TIMEOUT, "timed out"
    if any(isinstance(e, ssl.SSLError | requests.exceptions.SSLError) for e in chain):
        return R.UNREACHABLE, "TLS: handshake failed"
    if any(isinstance(e, ConnectionResetError) for e in chain) or "connection reset" in text:
        return R.UNREACHABLE, "connection reset"
    innermost = str(chain[-1]).strip().splitlines()[0][:200] if str(chain[-1]).strip() else type(chain[-1]).__name__
    return R.UNREACHABLE, f"cannot connect: {innermost}"


class WinRmTransport(GuestTransport):
    """Commands over WinRM to one Windows host, as one user."""

    name = "winrm"

    def __init__(
        self,
        settings: WinRM,
        credentials: GuestCredentials,
        *,
        ca_file: str | None = None,
        verify_tls: bool = True,
        client_factory: Callable[..., Any] | None = None,
    ) -> None:
        """`ca_file` is a PEM bundle that signs the host's WinRM certificate (default: the system's)."""
        self.settings = settings
        self._credentials = credentials
        self._ca_file = ca_file
        self._verify_tls = verify_tls
        self._client_factory = client_factory

    def __repr__(self) -> str:
        return f"WinRmTransport({self.endpoint!r})"

    @property
    def endpoint(self) -> str:
        return endpoint_url(self.settings)

    def client_options(self, timeout_s: float) -> dict[str, Any]:
        """Keyword arguments of `pypsrp.client.Client(address, **options)` (and so of `WSMan`).

        WinRM's operation timeout bounds each wait for output; the HTTP read timeout must
        outlast it, or every quiet wait would look like a dropped connection.
        """
        operation = max(1, math.ceil(timeout_s))
        cert_validation: bool | str = (self._ca_file or True) if self._verify_tls else False
        return {
            "port": self.settings.port,
            "ssl": self.settings.ssl,
            "path": "wsman",
            "auth": AUTH,
            "username": self._credentials.user,
            "password": self._credentials.password,
            "cert_validation": cert_validation,
            "encryption": "auto",
            "connection_timeout": min(CONNECT_TIMEOUT_S, operation),
            "operation_timeout": operation,
            "read_timeout": operation + 10,
            "no_proxy": True,
        }

    def run(self, command_line: str, timeout_s: float = DEFAULT_COMMAND_TIMEOUT_S) -> CommandResult:
        command = winrs_command(command_line)
        factory = self._client_factory or _pypsrp_client
        where = self.endpoint
        try:
            client = factory(self.settings.address, **self.client_options(timeout_s))
            try:
                stdout, stderr, rc = client.execute_cmd(command, encoding=OUTPUT_CODEPAGE)
            finally:
                close = getattr(client, "close", None)
                if close is not None:
                    close()
        except (WinRMError, requests.exceptions.RequestException, OSError) as exc:
            raise error_from_winrm(exc, where, self._credentials.source) from None
        return CommandResult(int(rc), stdout + stderr)


def _pypsrp_client(server: str, **options: Any) -> Any:
    from pypsrp.client import Client

    return Client(server, **options)
