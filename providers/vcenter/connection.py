"""Connecting to vCenter with pyvmomi: settings from the Terraform provider's variables, TLS verified.

`VSPHERE_SERVER`, `VSPHERE_USER`, `VSPHERE_PASSWORD`, `VSPHERE_CA_FILE` and
`VSPHERE_ALLOW_UNVERIFIED_SSL` are the names the Terraform vSphere provider's users already
have in their environment; govc's `GOVC_URL`, `GOVC_USERNAME`, `GOVC_PASSWORD` and
`GOVC_INSECURE` are read after them. The password is never a command-line argument.

A fleet may span several vCenters: a desired file names its own with `vcenter:`. The
environment's settings are the *default* vCenter's (files without `vcenter:`, and files
naming that same server). Any other vCenter's login comes only from a credentials file
(`--credentials-file`, `MSCSCTL_CREDENTIALS_FILE`; `credentials_for`): a desired file is
often edited by many people, and a password is never sent to a server just because a file
names it.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

from pyVim.connect import SmartStubAdapter
from pyVmomi import vim, vmodl
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

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
    """Flags win over the environment, `VSPHERE_*` over govc's `GOVC_*`; anything missing is a clear error.

    `GOVC_URL` is a URL (`https://user:pass@host/sdk`) or a bare host; its user and
    password, when present, come after `GOVC_USERNAME` / `GOVC_PASSWORD`.
    """
    env = dict(os.environ) if env is None else env
    govc = govc_settings(env)
    server = server or env.get("VSPHERE_SERVER", "") or govc["server"]
    user = user or env.get("VSPHERE_USER", "") or govc["user"]
    password = env.get("VSPHERE_PASSWORD", "") or govc["password"]
    missing = [
        name
        for name, value in (("VSPHERE_SERVER", server), ("VSPHERE_USER", user), ("VSPHERE_PASSWORD", password))
        if not value
    ]
    if missing:
        raise VCenterConnectionError(
            "vCenter connection not configured: set "
            + ", ".join(missing)
            + " (or --server/--user, or govc's GOVC_URL, GOVC_USERNAME, GOVC_PASSWORD;"
            " the password only through the environment)"
        )
    host, port = split_server(server)
    if allow_unverified is None:
        insecure = env.get("VSPHERE_ALLOW_UNVERIFIED_SSL", "").strip() or env.get("GOVC_INSECURE", "").strip()
        allow_unverified = insecure.lower() in TRUE_WORDS
    return ConnectionSettings(
        host=host,
        port=port,
        user=user,
        password=password,
        ca_file=ca_file or env.get("VSPHERE_CA_FILE") or None,
        allow_unverified=allow_unverified,
    )


def govc_settings(env: dict[str, str]) -> dict[str, str]:
    """govc's `GOVC_URL`, `GOVC_USERNAME`, `GOVC_PASSWORD` as server, user and password ('' when unset)."""
    url = env.get("GOVC_URL", "").strip()
    user = env.get("GOVC_USERNAME", "")
    password = env.get("GOVC_PASSWORD", "")
    server = ""
    if url:
        parts = urlsplit(url if "://" in url else f"https://{url}")
        try:
            port = parts.port
        except ValueError:
            raise VCenterConnectionError(
                f"GOVC_URL {parts.netloc.rpartition('@')[2]!r}: the port is not a number"
            ) from None
        host = parts.hostname or ""
        host = f"[{host}]" if ":" in host else host
        server = f"{host}:{port}" if port else host
        user = user or unquote(parts.username or "")
        password = password or unquote(parts.password or "")
    return {"server": server, "user": user, "password": password}


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


def vcenter_key(server: str) -> str:
    """One spelling of a vCenter: `VC.example.com`, `vc.example.com:443` and
    `https://vc.example.com/sdk` are all `vc.example.com:443`."""
    host, port = split_server(server)
    return f"{host.lower()}:{port}"


CREDENTIALS_ENV = "MSCSCTL_CREDENTIALS_FILE"
CREDENTIALS_MAX_BYTES = 256 * 1024
_CREDENTIAL_FIELDS = {"user", "password", "ca_file", "allow_unverified"}


def read_credentials(path: str | os.PathLike[str]) -> dict[str, ConnectionSettings]:
    """The logins of a credentials file, by `vcenter_key`; refused when others may read it.

    The file is YAML (README, "Several vCenters"):

        vcenters:
          vc2.example.com:
            user: svc-mscsctl@vsphere.local
            password: ...
            ca_file: /etc/mscsctl/vc2-ca.pem   # optional; relative to the file
            allow_unverified: false           # optional

    Every problem is one `VCenterConnectionError` line naming the file (and the entry).
    """
    import yaml

    from reconciler.bounded import read_bounded

    name = os.fspath(path)
    try:
        mode = os.stat(name).st_mode
        if mode & 0o077:
            raise VCenterConnectionError(
                f"{name}: credentials file readable or writable by others (mode {mode & 0o777:o}); "
                f"fix it with: chmod 600 {name}"
            )
        data = yaml.safe_load(read_bounded(name, "credentials file", limit=CREDENTIALS_MAX_BYTES)) or {}
    except OSError as exc:
        raise VCenterConnectionError(f"{name}: cannot read the credentials file ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f":{where.line + 1}" if where is not None else ""
        raise VCenterConnectionError(f"{name}{line}: not YAML ({getattr(exc, 'problem', exc)})") from None
    entries = data.get("vcenters") if isinstance(data, dict) else None
    if not isinstance(entries, dict) or set(data) != {"vcenters"}:
        raise VCenterConnectionError(f"{name}: expected one key, `vcenters:`, a mapping of vCenter to its login")
    out: dict[str, ConnectionSettings] = {}
    for server, entry in entries.items():
        where = f"{name}: vcenters.{server}"
        if not isinstance(entry, dict) or not {"user", "password"} <= set(entry) or set(entry) - _CREDENTIAL_FIELDS:
            raise VCenterConnectionError(
                f"{where}: needs `user` and `password` (and optionally `ca_file`, `allow_unverified`), nothing else"
            )
        host, port = split_server(str(server))
        ca_file = entry.get("ca_file")
        out[vcenter_key(str(server))] = ConnectionSettings(
            host=host,
            port=port,
            user=str(entry["user"]),
            password=str(entry["password"]),
            ca_file=str(Path(name).parent / str(ca_file)) if ca_file else None,
            allow_unverified=bool(entry.get("allow_unverified", False)),
        )
    return out


def settings_for(
    vcenter: str,
    default: Callable[[], ConnectionSettings],
    credentials: Callable[[], dict[str, ConnectionSettings]],
) -> ConnectionSettings:
    """The login for the vCenter a desired file names: its credentials-file entry, else the
    default vCenter's settings when it is that same server; never the default password for
    another server."""
    key = vcenter_key(vcenter)
    found = credentials().get(key)
    if found is not None:
        return found
    try:
        fallback = default()
    except VCenterConnectionError:
        fallback = None
    if fallback is not None and f"{fallback.host.lower()}:{fallback.port}" == key:
        return fallback
    raise VCenterConnectionError(
        f"no login for vCenter {key}: add it to the credentials file ({CREDENTIALS_ENV} or --credentials-file); "
        "the environment's VSPHERE_* login is only sent to VSPHERE_SERVER"
    )


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


# What a dropped connection looks like to pyVmomi: http.client.RemoteDisconnected (a
# ConnectionResetError), ConnectionResetError, BrokenPipeError, an ssl.SSLError (EOF in the
# middle of a record), http.client.IncompleteRead, a timeout. All are OSError or HTTPException.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (OSError, http.client.HTTPException)
ATTEMPTS = 4  # a read is sent at most this many times (a change: when vCenter says the session ended)
RETRY_WAIT_S = 0.25  # the first wait before a call is sent again, doubled each time
RETRY_WAIT_MAX_S = 2.0


class VCenterUnreachable(VCenterConnectionError):
    """vCenter stopped answering a read, and kept not answering when it was asked again."""


class SessionEnded(VCenterConnectionError):
    """vCenter ended the session (NotAuthenticated) and logging in again did not help."""


class _SendAgain(Exception):
    """A call to send again (tenacity retries on it); `error` is what to raise once attempts run out."""

    def __init__(self, error: VCenterConnectionError) -> None:
        super().__init__(str(error))
        self.error = error


class ConnectionLost(VCenterConnectionError):
    """The connection dropped during a call that changes something: vCenter may or may not
    have run it, so it is never sent again blindly; the caller reads its target again."""

    def __init__(self, what: str, address: str, cause: BaseException) -> None:
        self.what, self.cause = what, cause
        self.on: Any = None  # the object the call was on, when the caller knows it (a task's entity)
        self.detail = f"the connection to vCenter {address} dropped during the call ({describe_error(cause)})"
        super().__init__(f"{what}: {self.detail}")


def describe_error(exc: BaseException) -> str:
    """An exception as one line: its type and text (an ssl or socket error's text can be empty)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def fault_message(exc: Any) -> str:
    """vCenter's own words for a fault: its message, else its localized messages, else its type."""
    msg = getattr(exc, "msg", None) or ""
    if not msg:
        msgs = [m.message for m in getattr(exc, "faultMessage", None) or [] if getattr(m, "message", None)]
        msg = "; ".join(msgs)
    name = type(exc).__name__.rsplit(".", 1)[-1]
    return f"{name}: {msg}" if msg else name


class Session:
    """A logged-in vCenter session that survives a dropped connection or an ended session.

    Two kinds of call: `read()` is for what
    changes nothing (property reads, QueryOptions, task states) and is sent again, with
    backoff, when the connection drops or vCenter ended the session (after logging in
    again). `change()` is for what changes vCenter (ReconfigVM_Task, power, UpdateOptions,
    MarkPerenniallyReserved, ReconfigureComputeResource_Task): it is sent again only after
    NotAuthenticated, which vCenter answers without running the call; a dropped connection
    raises `ConnectionLost`, since vCenter may have run it, and the caller reads again.
    """

    def __init__(self, settings: ConnectionSettings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self.si, self.content = _login(settings)

    # `content`: the ServiceInstanceContent read once at login (RetrieveServiceContent); its
    # managed objects (property collector, session manager ...) stay valid for the process.

    def read(self, fn: Callable[[Any], T], what: str = "read from vCenter") -> T:
        """`fn(si)`, which changes nothing, sent again when the connection drops or the session ended."""
        return self._send(fn, what, resend_on_drop=True)

    def call(self, fn: Callable[[Any], T]) -> T:
        """A read (see `read`); kept for callers that read through the session as a whole."""
        return self.read(fn)

    def change(self, fn: Callable[[Any], T], what: str) -> T:
        """`fn(si)`, which changes vCenter: sent again only after NotAuthenticated (not run)."""
        return self._send(fn, what, resend_on_drop=False)

    def _send(self, fn: Callable[[Any], T], what: str, *, resend_on_drop: bool) -> T:
        def attempt() -> T:
            try:
                return fn(self.si)
            except vim.fault.NotAuthenticated:
                self.relogin(what)
                raise _SendAgain(self._kept_ending(what)) from None
            except CONNECTION_ERRORS as exc:
                if not resend_on_drop:
                    raise ConnectionLost(what, self.settings.address, exc) from None
                raise _SendAgain(
                    VCenterUnreachable(
                        f"{what}: lost the connection to vCenter {self.settings.address} and it did not "
                        f"answer {ATTEMPTS} attempts ({describe_error(exc)})"
                    )
                ) from None

        retrying = Retrying(
            retry=retry_if_exception_type(_SendAgain),
            stop=stop_after_attempt(ATTEMPTS),
            wait=wait_exponential(multiplier=RETRY_WAIT_S, max=RETRY_WAIT_MAX_S),
            reraise=True,
        )
        try:
            return retrying(attempt)
        except _SendAgain as exhausted:
            raise exhausted.error from None

    def relogin(self, what: str = "a call") -> None:
        """Log in again on the same connection, so objects bound to it keep working.

        vCenter answers NotAuthenticated when the session ended (expired, ended by an
        administrator); a session that is in fact still logged in is left as it is.
        """
        with self._lock:
            manager = self.content.sessionManager
            try:
                if manager.currentSession is not None:
                    return
            except (vmodl.MethodFault, *CONNECTION_ERRORS):
                pass  # the session is gone (or the read failed): log in
            try:
                manager.Login(userName=self.settings.user, password=self.settings.password)
            except vmodl.MethodFault as exc:
                raise SessionEnded(
                    f"{what}: vCenter {self.settings.address} ended the session (NotAuthenticated) and "
                    f"answered the new login of {self.settings.user!r} with {fault_message(exc)}"
                ) from None
            except CONNECTION_ERRORS as exc:
                raise VCenterUnreachable(
                    f"{what}: vCenter {self.settings.address} ended the session (NotAuthenticated) and the "
                    f"connection dropped while logging in again ({describe_error(exc)})"
                ) from None

    def _kept_ending(self, what: str) -> SessionEnded:
        return SessionEnded(
            f"{what}: vCenter {self.settings.address} answered NotAuthenticated {ATTEMPTS} times: the session "
            "ended each time, and logging in again did not help"
        )

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.content.sessionManager.Logout()
        with contextlib.suppress(Exception):
            self.si._stub.DropConnections()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect(settings: ConnectionSettings) -> Session:
    return Session(settings)


def _login(settings: ConnectionSettings) -> tuple[Any, Any]:
    """The service instance and its content: one RetrieveServiceContent, one Login (the API
    version is agreed beforehand from /sdk/vimServiceVersions.xml, as SmartConnect does)."""
    where = settings.address
    try:
        stub = SmartStubAdapter(
            host=settings.host, port=settings.port, sslContext=ssl_context(settings), connectionPoolTimeout=60
        )
        si = vim.ServiceInstance("ServiceInstance", stub)
        content = si.RetrieveContent()
        content.sessionManager.Login(settings.user, settings.password, None)
        return si, content
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
