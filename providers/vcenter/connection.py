"""Connecting to vCenter with pyvmomi: settings from the Terraform provider's variables, TLS verified.

`VSPHERE_SERVER`, `VSPHERE_USER`, `VSPHERE_PASSWORD`, `VSPHERE_CA_FILE` and
`VSPHERE_ALLOW_UNVERIFIED_SSL` are the names the Terraform vSphere provider and govc users
already have in their environment. The password is never a command-line argument.
"""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim, vmodl

from reconciler.errors import VCenterConnectionError

T = TypeVar("T")

TRUE_WORDS = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class ConnectionSettings:
    host: str
    port: int
    user: str
    password: str
    ca_file: str | None = None
    allow_unverified: bool = False

    def __repr__(self) -> str:  # never show the password
        return f"ConnectionSettings(host={self.host!r}, port={self.port}, user={self.user!r})"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


def settings_from_env(
    server: str | None = None,
    user: str | None = None,
    ca_file: str | None = None,
    allow_unverified: bool | None = None,
    env: dict[str, str] | None = None,
) -> ConnectionSettings:
    """Flags win over the environment; a missing server, user or password is a clear error."""
    env = dict(os.environ) if env is None else env
    server = server or env.get("VSPHERE_SERVER", "")
    user = user or env.get("VSPHERE_USER", "")
    password = env.get("VSPHERE_PASSWORD", "")
    missing = [
        name
        for name, value in (("VSPHERE_SERVER", server), ("VSPHERE_USER", user), ("VSPHERE_PASSWORD", password))
        if not value
    ]
    if missing:
        raise VCenterConnectionError(
            "vCenter connection not configured: set "
            + ", ".join(missing)
            + " (or --server/--user; the password only through VSPHERE_PASSWORD)"
        )
    host, port = split_server(server)
    if allow_unverified is None:
        allow_unverified = env.get("VSPHERE_ALLOW_UNVERIFIED_SSL", "").strip().lower() in TRUE_WORDS
    return ConnectionSettings(
        host=host,
        port=port,
        user=user,
        password=password,
        ca_file=ca_file or env.get("VSPHERE_CA_FILE") or None,
        allow_unverified=allow_unverified,
    )


def split_server(server: str) -> tuple[str, int]:
    """'vc.example.com' -> (host, 443); 'host:8989' and 'https://host:8989/sdk' are accepted too."""
    text = server.strip()
    for scheme in ("https://", "http://"):
        if text.startswith(scheme):
            text = text[len(scheme) :]
    text = text.split("/", 1)[0]
    if text.startswith("["):  # [::1]:443
        host, _, rest = text[1:].partition("]")
        return host, int(rest.lstrip(":") or 443)
    if text.count(":") == 1:
        host, port = text.split(":")
        if not port.isdigit():
            raise VCenterConnectionError(f"VSPHERE_SERVER {server!r}: the port is not a number")
        return host, int(port)
    return text, 443


def ssl_context(settings: ConnectionSettings) -> ssl.SSLContext:
    if settings.allow_unverified:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    try:
        return ssl.create_default_context(cafile=settings.ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise VCenterConnectionError(f"cannot read CA file {settings.ca_file}: {exc}") from None


class Session:
    """A logged-in vCenter session that logs in again when vCenter ends it.

    `call()` runs a function of the ServiceInstance; on `NotAuthenticated` (session expired
    or ended by an administrator) it logs in once more and repeats the call.
    """

    def __init__(self, settings: ConnectionSettings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self.si = _login(settings)

    @property
    def content(self) -> vim.ServiceInstanceContent:
        return self.si.RetrieveContent()

    def call(self, fn: Callable[[Any], T]) -> T:
        try:
            return fn(self.si)
        except vim.fault.NotAuthenticated:
            self.relogin()
            return fn(self.si)

    def relogin(self) -> None:
        """Log in again on the same connection, so objects bound to it keep working."""
        with self._lock:
            try:
                content = self.si.RetrieveContent()
                content.sessionManager.Login(userName=self.settings.user, password=self.settings.password)
            except vim.fault.InvalidLogin:
                raise VCenterConnectionError(
                    f"vCenter {self.settings.address} ended the session and refused a new login of "
                    f"{self.settings.user!r}"
                ) from None

    def close(self) -> None:
        with contextlib.suppress(Exception):
            Disconnect(self.si)

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect(settings: ConnectionSettings) -> Session:
    return Session(settings)


def _login(settings: ConnectionSettings) -> Any:
    where = settings.address
    try:
        return SmartConnect(
            host=settings.host,
            port=settings.port,
            user=settings.user,
            pwd=settings.password,
            sslContext=ssl_context(settings),
            connectionPoolTimeout=60,
        )
    except ssl.SSLCertVerificationError as exc:
        raise VCenterConnectionError(
            f"TLS certificate of {where} could not be verified ({exc.verify_message}). "
            "Give the CA that signed it with --ca-file or VSPHERE_CA_FILE; "
            "VSPHERE_ALLOW_UNVERIFIED_SSL=true turns verification off (not recommended)."
        ) from None
    except ssl.SSLError as exc:
        raise VCenterConnectionError(f"TLS error talking to {where}: {exc}") from None
    except vim.fault.InvalidLogin:
        raise VCenterConnectionError(
            f"vCenter {where} refused the login of {settings.user!r}: check VSPHERE_USER/VSPHERE_PASSWORD"
        ) from None
    except (TimeoutError, ConnectionError, socket.gaierror, OSError) as exc:
        raise VCenterConnectionError(f"cannot reach vCenter at {where}: {exc}") from None
    except vmodl.MethodFault as exc:
        raise VCenterConnectionError(f"vCenter {where} refused the login: {exc.msg}") from None
