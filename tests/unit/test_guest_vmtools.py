"""The VMware Tools transport's pure pieces: what it sends, where it downloads, what faults mean.

The transport itself runs end to end against the simulated vCenter lab (tests/integration);
here nothing talks to vCenter. Faults are real pyvmomi fault objects, as vCenter's answers
deserialize to; pyvmomi itself is not replaced.
"""

from __future__ import annotations

import datetime
import http.server
import ipaddress
import ssl
import threading
import typing
import urllib.error
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pyVmomi import SoapStubAdapter, vim, vmodl

from providers.guest.credentials import GuestCredentials
from providers.guest.facts import DiskTimeout
from providers.guest.transport import GuestCommandTimeout, GuestUnavailable, UnavailableReason
from providers.guest.vmtools import (
    CMD_EXE,
    MAX_OUTPUT_BYTES,
    VmToolsTransport,
    download_error,
    error_from_fault,
    fetch_output,
    output_path,
    program_spec_fields,
    redact_url,
    transfer_url,
)
from reconciler.errors import GuestError

SOURCE = "MSCSCTL_GUEST_USER / MSCSCTL_GUEST_PASSWORD"


def test_output_file_is_in_the_windows_temp_folder_with_a_unique_plain_name() -> None:
    assert output_path(token="0123abcd") == r"C:\Windows\Temp\mscsctl-0123abcd.txt"
    assert output_path("D:\\Temp\\", token="x") == r"D:\Temp\mscsctl-x.txt"
    first, second = output_path(), output_path()
    assert first != second and first.startswith("C:\\Windows\\Temp\\mscsctl-") and first.endswith(".txt")
    with pytest.raises(ValueError):
        output_path(r"C:\Documents and Settings\Temp")


def test_program_spec_for_the_disk_timeout_query() -> None:
    out = output_path(token="0f" * 16)
    assert program_spec_fields(DiskTimeout.query_command(), out) == (
        CMD_EXE,
        r"/c reg.exe query HKLM\System\CurrentControlSet\Services\Disk /v TimeOutValue"
        r" > C:\Windows\Temp\mscsctl-0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f.txt 2>&1",
    )
    assert CMD_EXE == r"C:\Windows\System32\cmd.exe"


def test_program_spec_for_setting_the_disk_timeout_splits_back_into_its_words() -> None:
    _, arguments = program_spec_fields(DiskTimeout.set_command(60), r"C:\Windows\Temp\mscsctl-1.txt")
    assert arguments.split(" ") == [
        "/c",
        "reg.exe",
        "add",
        r"HKLM\System\CurrentControlSet\Services\Disk",
        "/v",
        "TimeOutValue",
        "/t",
        "REG_DWORD",
        "/d",
        "60",
        "/f",
        ">",
        r"C:\Windows\Temp\mscsctl-1.txt",
        "2>&1",
    ]
    assert '"' not in arguments


def test_program_spec_refuses_a_command_line_with_its_own_redirection() -> None:
    with pytest.raises(ValueError):
        program_spec_fields("reg.exe query X > C:\\elsewhere.txt", output_path())


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        # vCenter / the simulator: "*" means the server the client is connected to
        (
            "https://*/guestFile?id=139&token=52a1",
            "https://vc.example.com:8989/guestFile?id=139&token=52a1",
        ),
        (
            "https://*:443/guestFile/C:%5CWindows%5CTemp%5Cmscsctl-1.txt?id=vm-42&token=abc",
            "https://vc.example.com:8989/guestFile/C:%5CWindows%5CTemp%5Cmscsctl-1.txt?id=vm-42&token=abc",
        ),
        # a real host name (the ESXi host running the VM) is kept as it is
        (
            "https://esx01.example.com:443/guestFile?id=139&token=52a1",
            "https://esx01.example.com:443/guestFile?id=139&token=52a1",
        ),
    ],
)
def test_transfer_url_host_substitution(url: str, expected: str) -> None:
    assert transfer_url(url, "vc.example.com", 8989) == expected


def test_transfer_url_with_an_ipv6_vcenter_and_a_bad_url() -> None:
    assert (
        transfer_url("https://*/guestFile?id=1&token=t", "fd00::5", 443)
        == "https://[fd00::5]:443/guestFile?id=1&token=t"
    )
    with pytest.raises(Exception, match="not http") as info:
        transfer_url("ftp://*/guestFile?id=1&token=secret-token", "vc", 443)
    assert "secret-token" not in str(info.value)


def test_redact_url_drops_the_token() -> None:
    assert redact_url("https://esx01:443/guestFile?id=1&token=s3cret") == "https://esx01:443/guestFile?…"
    assert redact_url("https://esx01/guestFile") == "https://esx01/guestFile"


FAULTS = [
    (vim.fault.InvalidGuestLogin(msg="Failed to authenticate with the guest operating system"), "bad-credentials"),
    (vim.fault.GuestAuthenticationChallenge(), "bad-credentials"),
    (vim.fault.GuestPermissionDenied(), "permission-denied"),
    (
        vim.fault.GuestOperationsUnavailable(msg="The guest operations agent could not be contacted."),
        "guest-operations-unavailable",
    ),
    (vim.fault.OperationDisabledByGuest(), "guest-operations-disabled"),
    (vim.fault.OperationNotSupportedByGuest(), "guest-operations-disabled"),
    (vim.fault.GuestComponentsOutOfDate(), "guest-operations-disabled"),
    (vim.fault.TooManyGuestLogons(), "busy"),
    (vim.fault.ToolsUnavailable(), "tools-not-running"),
    (vim.fault.InvalidPowerState(existingState="poweredOff", requestedState="poweredOn"), "powered-off"),
    (vim.fault.InvalidState(), "guest-operations-unavailable"),
    (vim.fault.TaskInProgress(), "busy"),
    (vim.fault.NoPermission(privilegeId="VirtualMachine.GuestOperations.Execute"), "permission-denied"),
    (vim.fault.NotAuthenticated(), "unreachable"),
    (vmodl.fault.ManagedObjectNotFound(), "vm-not-found"),
    (vim.fault.FileNotFound(file=r"C:\Windows\Temp\mscsctl-1.txt"), "command-failed"),
    (vim.fault.GuestOperationsFault(), "command-failed"),
    (vmodl.fault.SystemError(reason="boom"), "command-failed"),
]


@pytest.mark.parametrize(("fault", "reason"), FAULTS, ids=[type(f).__name__ for f, _ in FAULTS])
def test_each_vsphere_fault_becomes_a_reason(fault: vmodl.MethodFault, reason: str) -> None:
    error = error_from_fault(fault, SOURCE)
    assert isinstance(error, GuestUnavailable)
    assert error.reason == UnavailableReason(reason)
    assert type(fault).__name__.rsplit(".", 1)[-1] in str(error)


def test_fault_messages_say_what_to_do() -> None:
    assert "check MSCSCTL_GUEST_USER / MSCSCTL_GUEST_PASSWORD" in str(
        error_from_fault(vim.fault.InvalidGuestLogin(), SOURCE)
    )
    assert "is poweredOff" in str(error_from_fault(vim.fault.InvalidPowerState(existingState="poweredOff"), SOURCE))
    assert "VirtualMachine.GuestOperations.Execute" in str(
        error_from_fault(vim.fault.NoPermission(privilegeId="VirtualMachine.GuestOperations.Execute"), SOURCE)
    )
    said = error_from_fault(vim.fault.GuestOperationsUnavailable(msg="agent could not be contacted"), SOURCE)
    assert "(agent could not be contacted)" in str(said)


def test_download_errors_hide_the_token() -> None:
    url = "https://esx01:443/guestFile?id=1&token=s3cret"
    cert = ssl.SSLCertVerificationError(1, "certificate verify failed")
    cert.verify_message = "self-signed certificate"
    tls = download_error(url, urllib.error.URLError(cert))
    assert tls.reason is UnavailableReason.UNREACHABLE
    assert "self-signed certificate" in str(tls) and "s3cret" not in str(tls)
    refused = download_error(url, urllib.error.URLError(ConnectionRefusedError(111, "Connection refused")))
    assert "Connection refused" in str(refused) and "s3cret" not in str(refused)


def test_a_timeout_is_a_reason_too() -> None:
    error = GuestCommandTimeout("`reg.exe query …` did not finish within 120 s (guest pid 4242)")
    assert error.reason is UnavailableReason.TIMEOUT


def test_credentials_never_show_in_repr() -> None:
    creds = GuestCredentials(user="CORP\\clusteradmin", password="hunter2")
    assert "hunter2" not in repr(creds) and "clusteradmin" not in repr(creds)
    assert creds.source == SOURCE


# --- the HTTPS GET of the output file, against a local TLS server ------------------------


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lab-host")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


class _GuestFileHandler(http.server.BaseHTTPRequestHandler):
    files: typing.ClassVar[dict[str, bytes]] = {
        "/guestFile": (Path(__file__).parent / "guest_samples" / "wine-query-60.rc0.txt").read_bytes(),
        "/big": b"x" * (MAX_OUTPUT_BYTES + 10),
    }

    def do_GET(self) -> None:
        path, _, query = self.path.partition("?")
        body = self.files.get(path) if query == "id=vm-42&token=t0k3n" else None
        self.send_response(200 if body is not None else 404)
        self.send_header("Content-Length", str(len(body or b"")))
        self.end_headers()
        self.wfile.write(body or b"")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def guest_file_server(tls_files: tuple[Path, Path]) -> typing.Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _GuestFileHandler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*tls_files)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_fetch_output_with_the_vcenter_tls_settings(guest_file_server: int, tls_files: tuple[Path, Path]) -> None:
    url = transfer_url("https://*/guestFile?id=vm-42&token=t0k3n", "127.0.0.1", guest_file_server)
    trusted = ssl.create_default_context(cafile=str(tls_files[0]))
    data = fetch_output(url, trusted, 10)
    assert data.startswith(b"\r\nHKEY_LOCAL_MACHINE\\System") and data.endswith(b"0x3c\r\n\r\n")


def test_fetch_output_refuses_an_unverified_certificate(guest_file_server: int) -> None:
    url = f"https://127.0.0.1:{guest_file_server}/guestFile?id=vm-42&token=t0k3n"
    with pytest.raises(GuestUnavailable) as info:
        fetch_output(url, ssl.create_default_context(), 10)
    assert info.value.reason is UnavailableReason.UNREACHABLE
    assert "could not be verified" in str(info.value) and "t0k3n" not in str(info.value)


def test_fetch_output_http_errors_and_oversized_output(guest_file_server: int, tls_files: tuple[Path, Path]) -> None:
    trusted = ssl.create_default_context(cafile=str(tls_files[0]))
    with pytest.raises(GuestUnavailable, match="HTTP 404") as info:
        fetch_output(f"https://127.0.0.1:{guest_file_server}/guestFile?id=vm-42&token=wrong", trusted, 10)
    assert info.value.reason is UnavailableReason.COMMAND_FAILED and "wrong" not in str(info.value)
    with pytest.raises(GuestError, match="more than"):
        fetch_output(f"https://127.0.0.1:{guest_file_server}/big?id=vm-42&token=t0k3n", trusted, 10)


def test_transport_addresses_the_vm_by_moref_and_shows_no_credentials() -> None:
    stub = SoapStubAdapter(host="vc.invalid", port=443)  # builds no connection until a call is made
    si = vim.ServiceInstance("ServiceInstance", stub)
    transport = VmToolsTransport(
        si,
        "vm-42",
        GuestCredentials(user="CORP\\clusteradmin", password="hunter2"),
        ssl_context=ssl.create_default_context(),
        vcenter_host="vc.invalid",
    )
    assert repr(transport) == "VmToolsTransport(vm='vim.VirtualMachine:vm-42')"
    assert "hunter2" not in repr(transport) and "clusteradmin" not in repr(transport)
