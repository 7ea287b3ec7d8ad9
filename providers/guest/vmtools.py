"""Running a command in a guest through VMware Tools guest operations (the default transport).

No network path to the guest is needed: vCenter hands the request to the VM's host, which
hands it to VMware Tools inside the guest. For one command:

1. `processManager.StartProgramInGuest(vm, auth, spec)` with
   `spec.programPath = C:\\Windows\\System32\\cmd.exe` and
   `spec.arguments = /c <command line> > C:\\Windows\\Temp\\mscsctl-<hex>.txt 2>&1`
   (Tools gives a program no console to read from, so the output goes to a file);
2. `processManager.ListProcessesInGuest(vm, auth, pids=[pid])` until the process has an
   `endTime`, then its `exitCode`; past the time limit, `TerminateProcessInGuest`;
3. `fileManager.InitiateFileTransferFromGuest(vm, auth, path)`, then an HTTPS GET of the
   URL it returns, with the TLS settings of the vCenter connection (a URL whose host is
   `*` means "the host you are talking to": vCenter's host and port go there);
4. `fileManager.DeleteFileInGuest(vm, auth, path)`, whatever happened.

The VM is addressed by its moref only; no property of the VM is read here (power and Tools
state come from the one vCenter read, see `service.py`). vSphere faults become
`GuestUnavailable` with a reason (`error_from_fault`), never a pyvmomi exception.
`LAB.md` in this folder says what the simulated vCenter lab must answer for all of this.
"""

from __future__ import annotations

import contextlib
import http.client
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from typing import Any

from pyVmomi import vim, vmodl

from providers.guest.credentials import GuestCredentials
from providers.guest.transport import (
    DEFAULT_COMMAND_TIMEOUT_S,
    CommandResult,
    GuestCommandTimeout,
    GuestTransport,
    GuestUnavailable,
    UnavailableReason,
    check_command_line,
    decode_output,
)
from reconciler.errors import GuestError

CMD_EXE = r"C:\Windows\System32\cmd.exe"
TEMP_DIR = r"C:\Windows\Temp"
OUTPUT_PREFIX = "mscsctl-"
MAX_OUTPUT_BYTES = 1 << 20
FIRST_POLL_S = 0.25
MAX_POLL_S = 1.0
MIN_DOWNLOAD_TIMEOUT_S = 30.0


def output_path(temp_dir: str = TEMP_DIR, token: str | None = None) -> str:
    r"""`C:\Windows\Temp\mscsctl-<32 hex digits>.txt`: unique, no blanks, nothing to quote."""
    token = token or uuid.uuid4().hex
    path = f"{temp_dir.rstrip(chr(92))}\\{OUTPUT_PREFIX}{token}.txt"
    if any(c in path for c in ' "%&|<>^'):
        raise ValueError(f"guest output path {path!r} must hold no blanks, quotes or cmd.exe operators")
    return path


def program_spec_fields(command_line: str, out_path: str, program_path: str = CMD_EXE) -> tuple[str, str]:
    """`(programPath, arguments)` of the `GuestProgramSpec` that runs `command_line`.

    The arguments are words separated by single spaces with no quotes, so that splitting
    them on spaces (as the lab does to run them under Wine) gives back exactly what
    Windows' cmd.exe reads.
    """
    return program_path, f"/c {check_command_line(command_line)} > {out_path} 2>&1"


def transfer_url(url: str, vcenter_host: str, vcenter_port: int) -> str:
    """The URL to GET, with a host of `*` replaced by vCenter's host and port.

    vCenter (and the simulator) may answer `https://*/guestFile?id=…&token=…` or
    `https://*:443/…`, meaning "the server you are connected to"; any other host (the ESXi
    host running the VM) is used as given.
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise GuestError(f"vCenter returned a file-transfer URL that is not http(s): {redact_url(url)!r}")
    if parts.hostname != "*":
        return url
    host = f"[{vcenter_host}]" if ":" in vcenter_host else vcenter_host
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{host}:{vcenter_port}"))


def redact_url(url: str) -> str:
    """The URL without its query, which carries a one-time access token."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(query="…" if parts.query else "", fragment=""))


def error_from_fault(fault: vmodl.MethodFault, credentials_source: str) -> GuestError:
    """The `GuestError` (mostly `GuestUnavailable`, with its reason) a vSphere fault means for a guest command."""
    name = type(fault).__name__.rsplit(".", 1)[-1]
    said = f" ({fault.msg})" if getattr(fault, "msg", None) else ""
    R = UnavailableReason
    if isinstance(fault, vim.fault.InvalidGuestLogin | vim.fault.GuestAuthenticationChallenge):
        return GuestUnavailable(
            R.BAD_CREDENTIALS, f"the guest refused the login ({name}){said}: check {credentials_source}"
        )
    if isinstance(fault, vim.fault.GuestPermissionDenied):
        return GuestUnavailable(
            R.PERMISSION_DENIED,
            f"the guest user ({credentials_source}) may not do this ({name}){said}: "
            "it must be a local administrator of the guest",
        )
    if isinstance(fault, vim.fault.OperationDisabledByGuest | vim.fault.OperationNotSupportedByGuest):
        return GuestUnavailable(
            R.GUEST_OPERATIONS_DISABLED, f"guest operations are turned off in this guest's VMware Tools ({name}){said}"
        )
    if isinstance(fault, vim.fault.GuestComponentsOutOfDate):
        return GuestUnavailable(
            R.GUEST_OPERATIONS_DISABLED, f"VMware Tools in the guest is too old for guest operations ({name}){said}"
        )
    if isinstance(fault, vim.fault.GuestOperationsUnavailable):
        return GuestUnavailable(
            R.GUEST_OPERATIONS_UNAVAILABLE,
            f"VMware Tools in the guest cannot run guest operations now ({name}){said}: "
            "Tools may be starting, stopped or not installed",
        )
    if isinstance(fault, vim.fault.TooManyGuestLogons):
        return GuestUnavailable(R.BUSY, f"the guest has too many guest-operation logons open ({name}){said}")
    if isinstance(fault, vim.fault.ToolsUnavailable):
        return GuestUnavailable(R.TOOLS_NOT_RUNNING, f"VMware Tools is not running in the guest ({name}){said}")
    if isinstance(fault, vim.fault.InvalidPowerState):
        state = getattr(fault, "existingState", None) or "not powered on"
        return GuestUnavailable(R.POWERED_OFF, f"the VM is {state} ({name}){said}")
    if isinstance(fault, vim.fault.TaskInProgress):
        return GuestUnavailable(R.BUSY, f"the VM is busy with another task ({name}){said}; try again")
    if isinstance(fault, vim.fault.NotAuthenticated):
        return GuestUnavailable(R.UNREACHABLE, f"the vCenter session ended ({name}){said}")
    if isinstance(fault, vim.fault.NoPermission):
        privilege = getattr(fault, "privilegeId", None) or "VirtualMachine.GuestOperations.*"
        return GuestUnavailable(
            R.PERMISSION_DENIED, f"the vCenter user lacks the privilege {privilege} on this VM ({name}){said}"
        )
    if isinstance(fault, vmodl.fault.ManagedObjectNotFound):
        return GuestUnavailable(R.VM_NOT_FOUND, f"the VM no longer exists in vCenter ({name}){said}")
    if isinstance(fault, vim.fault.InvalidState):
        return GuestUnavailable(
            R.GUEST_OPERATIONS_UNAVAILABLE, f"the VM is in a state that allows no guest operations ({name}){said}"
        )
    if isinstance(fault, vim.fault.FileNotFound):
        return GuestUnavailable(
            R.COMMAND_FAILED, f"the command left no output file in the guest ({name}){said}: did cmd.exe run?"
        )
    return GuestUnavailable(R.COMMAND_FAILED, f"vCenter answered {name}{said}")


def download_error(url: str, exc: BaseException) -> GuestUnavailable:
    """What a failed HTTPS GET of the output file means; the URL is shown without its token."""
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, ssl.SSLCertVerificationError):
        return GuestUnavailable(
            UnavailableReason.UNREACHABLE,
            f"the TLS certificate of {redact_url(url)} could not be verified ({reason.verify_message}); "
            "the CA given for vCenter must also sign the certificates of the hosts that run the VMs",
        )
    return GuestUnavailable(
        UnavailableReason.UNREACHABLE, f"downloading the command output from {redact_url(url)} failed: {reason}"
    )


def fetch_output(url: str, ssl_context: ssl.SSLContext, timeout_s: float) -> bytes:
    """GET the output file from the URL vCenter gave, with the vCenter connection's TLS settings."""
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}),  # like the vCenter connection: no proxy from the environment
        urllib.request.HTTPSHandler(context=ssl_context),
    )
    try:
        with opener.open(urllib.request.Request(url, method="GET"), timeout=timeout_s) as response:
            data = response.read(MAX_OUTPUT_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise GuestUnavailable(
            UnavailableReason.COMMAND_FAILED,
            f"downloading the command output from {redact_url(url)} failed: HTTP {exc.code} {exc.reason}",
        ) from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        raise download_error(url, exc) from None
    if len(data) > MAX_OUTPUT_BYTES:
        raise GuestError(f"the command wrote more than {MAX_OUTPUT_BYTES} bytes; that is not reg.exe's answer")
    return data


class VmToolsTransport(GuestTransport):
    """Commands through VMware Tools, for one VM and one guest user."""

    name = "vmtools"

    def __init__(
        self,
        service_instance: Any,
        vm: Any,
        credentials: GuestCredentials,
        *,
        ssl_context: ssl.SSLContext,
        vcenter_host: str,
        vcenter_port: int = 443,
        program_path: str = CMD_EXE,
        temp_dir: str = TEMP_DIR,
    ) -> None:
        """`vm` is a `vim.VirtualMachine` or its moref value (`vm-42`)."""
        self._si = service_instance
        self._vm = vim.VirtualMachine(vm, service_instance._stub) if isinstance(vm, str) else vm
        self._auth = vim.vm.guest.NamePasswordAuthentication(
            username=credentials.user, password=credentials.password, interactiveSession=False
        )
        self._credentials_source = credentials.source
        self._ssl_context = ssl_context
        self._vcenter_host = vcenter_host
        self._vcenter_port = vcenter_port
        self._program_path = program_path
        self._temp_dir = temp_dir
        self._manager: Any = None

    @classmethod
    def for_session(cls, session: Any, vm: Any, credentials: GuestCredentials, **options: Any) -> VmToolsTransport:
        """From a `providers.vcenter.connection.Session`: its ServiceInstance, TLS settings and address."""
        from providers.vcenter.connection import ssl_context

        return cls(
            session.si,
            vm,
            credentials,
            ssl_context=ssl_context(session.settings),
            vcenter_host=session.settings.host,
            vcenter_port=session.settings.port,
            **options,
        )

    def __repr__(self) -> str:
        return f"VmToolsTransport(vm={self._vm!r})"

    # --- the one operation --------------------------------------------------------------

    def run(self, command_line: str, timeout_s: float = DEFAULT_COMMAND_TIMEOUT_S) -> CommandResult:
        deadline = time.monotonic() + timeout_s
        out_path = output_path(self._temp_dir)
        program_path, arguments = program_spec_fields(command_line, out_path, self._program_path)
        started = False
        try:
            manager = self._guest_operations()
            spec = vim.vm.guest.ProcessManager.ProgramSpec(programPath=program_path, arguments=arguments)
            pid = manager.processManager.StartProgramInGuest(vm=self._vm, auth=self._auth, spec=spec)
            started = True
            exit_code = self._wait(manager.processManager, pid, command_line, timeout_s, deadline)
            data = self._download(manager.fileManager, out_path, deadline)
        except vmodl.MethodFault as fault:
            raise error_from_fault(fault, self._credentials_source) from None
        except (OSError, http.client.HTTPException) as exc:
            raise GuestUnavailable(UnavailableReason.UNREACHABLE, f"talking to vCenter failed: {exc}") from None
        finally:
            if started:
                self._delete_quietly(out_path)
        return CommandResult(exit_code, decode_output(data))

    # --- steps ----------------------------------------------------------------------------

    def _guest_operations(self) -> Any:
        if self._manager is None:
            manager = self._si.RetrieveContent().guestOperationsManager
            if manager is None:
                raise GuestUnavailable(
                    UnavailableReason.GUEST_OPERATIONS_UNAVAILABLE, "this vCenter offers no guest operations manager"
                )
            self._manager = manager
        return self._manager

    def _wait(self, processes: Any, pid: int, command_line: str, timeout_s: float, deadline: float) -> int:
        pause = FIRST_POLL_S
        while True:
            infos = processes.ListProcessesInGuest(vm=self._vm, auth=self._auth, pids=[pid]) or []
            info = next((p for p in infos if p.pid == pid), None)
            if info is None:
                raise GuestUnavailable(
                    UnavailableReason.COMMAND_FAILED, f"the guest no longer lists process {pid} (`{command_line}`)"
                )
            if info.endTime is not None:
                if info.exitCode is None:
                    raise GuestUnavailable(
                        UnavailableReason.COMMAND_FAILED, f"process {pid} (`{command_line}`) ended with no exit code"
                    )
                return int(info.exitCode)
            if time.monotonic() + pause > deadline:
                self._terminate_quietly(processes, pid)
                raise GuestCommandTimeout(f"`{command_line}` did not finish within {timeout_s:g} s (guest pid {pid})")
            time.sleep(pause)
            pause = min(pause * 2, MAX_POLL_S)

    def _download(self, files: Any, out_path: str, deadline: float) -> bytes:
        info = files.InitiateFileTransferFromGuest(vm=self._vm, auth=self._auth, guestFilePath=out_path)
        url = transfer_url(info.url, self._vcenter_host, self._vcenter_port)
        return fetch_output(url, self._ssl_context, max(deadline - time.monotonic(), MIN_DOWNLOAD_TIMEOUT_S))

    def _terminate_quietly(self, processes: Any, pid: int) -> None:
        # It may have ended meanwhile; the timeout is what gets reported.
        with contextlib.suppress(vmodl.MethodFault, OSError, http.client.HTTPException):
            processes.TerminateProcessInGuest(vm=self._vm, auth=self._auth, pid=pid)

    def _delete_quietly(self, out_path: str) -> None:
        # A leftover file of a few bytes in the guest's temp folder is harmless.
        with contextlib.suppress(vmodl.MethodFault, OSError, http.client.HTTPException):
            self._guest_operations().fileManager.DeleteFileInGuest(vm=self._vm, auth=self._auth, filePath=out_path)
