"""Observing and setting a node's disk timeout: per-node reasons, credentials, read/set/read back.

Guests are played by `ScriptedGuest`, a transport that answers each expected command line
with a real reg.exe sample; the same flow runs against Wine's reg.exe in test_guest_wine.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from providers.guest.credentials import credentials_for
from providers.guest.facts import DiskTimeout
from providers.guest.service import (
    observe_node,
    observe_nodes,
    set_disk_timeout,
    transport_for,
)
from providers.guest.transport import (
    CommandResult,
    GuestCommandTimeout,
    GuestTransport,
    GuestUnavailable,
    UnavailableReason,
    decode_output,
)
from reconciler.errors import GuestError
from reconciler.observed import Observed, ObservedGuest, ObservedVm
from reconciler.spec import CredentialsEnv, PhysicalNode, VmNode, WinRM

SAMPLES = Path(__file__).parent / "guest_samples"
QUERY = DiskTimeout.query_command()
ENV = {"MSCSCTL_GUEST_USER": "CORP\\clusteradmin", "MSCSCTL_GUEST_PASSWORD": "hunter2"}


def answer(name: str) -> CommandResult:
    (path,) = SAMPLES.glob(f"{name}.rc*.txt")
    return CommandResult(int(path.name.rsplit(".rc", 1)[1].split(".")[0]), decode_output(path.read_bytes()))


class ScriptedGuest(GuestTransport):
    """A guest that expects these command lines in this order and answers each with a sample."""

    name = "scripted"

    def __init__(self, *script: tuple[str, str | BaseException]) -> None:
        self.script = list(script)
        self.closed = False

    def run(self, command_line: str, timeout_s: float = 120.0) -> CommandResult:
        expected, reply = self.script.pop(0)
        assert command_line == expected
        if isinstance(reply, BaseException):
            raise reply
        return answer(reply)

    def close(self) -> None:
        self.closed = True


def vm(name: str, **kw: Any) -> ObservedVm:
    return ObservedVm(
        name=name,
        moref=f"vm-{len(name)}",
        power_state=kw.get("power", "poweredOn"),
        tools_running=kw.get("tools", True),
    )


# --- credentials --------------------------------------------------------------------------


def test_credentials_from_the_default_variables() -> None:
    creds = credentials_for(VmNode(vm="SQLNODE1"), ENV)
    assert (creds.user, creds.password, creds.source) == (
        "CORP\\clusteradmin",
        "hunter2",
        "MSCSCTL_GUEST_USER / MSCSCTL_GUEST_PASSWORD",
    )


def test_per_node_variables_are_used_and_never_fall_back_to_the_defaults() -> None:
    node = VmNode(vm="SQLNODE2", credentials_env=CredentialsEnv(user="NODE2_USER", password="NODE2_PW"))
    creds = credentials_for(node, {**ENV, "NODE2_USER": "node2admin", "NODE2_PW": "s3cret"})
    assert (creds.user, creds.password, creds.source) == ("node2admin", "s3cret", "NODE2_USER / NODE2_PW")
    with pytest.raises(GuestUnavailable) as info:
        credentials_for(node, {**ENV, "NODE2_USER": "node2admin"})
    assert info.value.reason is UnavailableReason.NO_CREDENTIALS
    assert "NODE2_PW" in str(info.value) and "node2admin" not in str(info.value) and "hunter2" not in str(info.value)


def test_missing_or_empty_default_variables_are_named() -> None:
    with pytest.raises(GuestUnavailable, match="set MSCSCTL_GUEST_USER and MSCSCTL_GUEST_PASSWORD"):
        credentials_for(VmNode(vm="SQLNODE1"), {"MSCSCTL_GUEST_USER": ""})


# --- choosing a transport, or a reason ----------------------------------------------------


@pytest.mark.parametrize(
    ("node", "observed_vm", "env", "reason", "words"),
    [
        (VmNode(vm="SQLNODE1"), None, ENV, "vm-not-found", "does not exist"),
        (VmNode(vm="SQLNODE1"), vm("SQLNODE1", power="poweredOff"), ENV, "powered-off", "is poweredOff"),
        (VmNode(vm="SQLNODE1"), vm("SQLNODE1", power="suspended"), ENV, "powered-off", "is suspended"),
        (VmNode(vm="SQLNODE1"), vm("SQLNODE1", tools=False), ENV, "tools-not-running", "VMware Tools"),
        (VmNode(vm="SQLNODE1"), vm("SQLNODE1"), {}, "no-credentials", "MSCSCTL_GUEST_PASSWORD"),
        (PhysicalNode(physical="SQLPHYS1"), None, ENV, "not-configured", "no `winrm:` settings"),
        (
            PhysicalNode(physical="SQLPHYS1", winrm=WinRM(address="sqlphys1.corp.example")),
            None,
            {},
            "no-credentials",
            "MSCSCTL_GUEST_USER",
        ),
    ],
)
def test_a_node_that_cannot_be_reached_gets_a_reason_and_no_guest_call(
    node: Any, observed_vm: ObservedVm | None, env: dict[str, str], reason: str, words: str
) -> None:
    seen = observe_node(node, vm=observed_vm, env=env)
    assert seen.reason == UnavailableReason(reason) and seen.timeout_seconds is None and not seen.available
    assert words in seen.detail
    assert "hunter2" not in seen.model_dump_json()


def test_a_physical_node_with_winrm_gets_the_winrm_transport() -> None:
    node = PhysicalNode(physical="SQLPHYS1", winrm=WinRM(address="sqlphys1.corp.example"))
    chosen = transport_for(node, env=ENV)
    assert chosen.name == "winrm" and repr(chosen) == "WinRmTransport('https://sqlphys1.corp.example:5986/wsman')"


# --- observing ------------------------------------------------------------------------------


def test_observe_nodes_reads_each_node_and_keeps_going_past_one_that_fails() -> None:
    guests = {
        "SQLNODE1": ScriptedGuest((QUERY, "windows-query-60")),
        "SQLNODE2": ScriptedGuest((QUERY, vim_login_refused())),
        "SQLNODE3": ScriptedGuest((QUERY, "windows-query-value-missing")),
        "SQLNODE4": ScriptedGuest((QUERY, "windows-query-reg-sz")),
        "SQLNODE5": ScriptedGuest((QUERY, GuestCommandTimeout("`reg.exe query …` did not finish within 120 s"))),
    }
    nodes = [VmNode(vm=name) for name in [*guests, "SQLNODE6"]]
    observed = Observed(
        datacenter="dc1",
        vms={n: vm(n) for n in guests} | {"SQLNODE6": vm("SQLNODE6", power="poweredOff")},
    )

    def make_transport(node: VmNode, **kw: Any) -> GuestTransport:
        return transport_for(node, **kw) if node.vm == "SQLNODE6" else guests[node.vm]

    seen = observe_nodes(nodes, observed=observed, env=ENV, make_transport=make_transport)
    assert [(s.node, s.timeout_seconds, s.reason) for s in seen] == [
        ("SQLNODE1", 60, None),
        ("SQLNODE2", None, UnavailableReason.BAD_CREDENTIALS),
        ("SQLNODE3", None, None),
        ("SQLNODE4", None, UnavailableReason.COMMAND_FAILED),
        ("SQLNODE5", None, UnavailableReason.TIMEOUT),
        ("SQLNODE6", None, UnavailableReason.POWERED_OFF),
    ]
    assert seen[0] == ObservedGuest(node="SQLNODE1", timeout_seconds=60)
    assert "REG_SZ" in seen[3].detail
    assert all(g.closed and not g.script for g in guests.values())
    assert [ObservedGuest.model_validate_json(s.model_dump_json()) for s in seen] == seen


def vim_login_refused() -> GuestUnavailable:
    from pyVmomi import vim

    from providers.guest.vmtools import error_from_fault

    return error_from_fault(vim.fault.InvalidGuestLogin(), "MSCSCTL_GUEST_USER / MSCSCTL_GUEST_PASSWORD")


# --- setting ---------------------------------------------------------------------------------


def test_set_leaves_a_value_that_is_already_right() -> None:
    guest = ScriptedGuest((QUERY, "wine-query-60"))
    change = set_disk_timeout(guest, 60)
    assert (change.before, change.after, change.changed) == (60, 60, False)
    assert not guest.script


def test_set_changes_a_different_value_and_reads_it_back() -> None:
    guest = ScriptedGuest(
        (QUERY, "wine-query-190"), (DiskTimeout.set_command(60), "wine-add-success"), (QUERY, "wine-query-60")
    )
    change = set_disk_timeout(guest, 60)
    assert (change.before, change.after, change.changed) == (190, 60, True)


def test_set_fails_when_the_value_read_back_is_not_the_one_written() -> None:
    guest = ScriptedGuest(
        (QUERY, "windows-query-value-missing"),
        (DiskTimeout.set_command(90), "windows-add-success"),
        (QUERY, "windows-query-60"),
    )
    with pytest.raises(GuestError, match=r"reads 60 after .* reported success; expected 90"):
        set_disk_timeout(guest, 90)


def test_set_refuses_a_reg_sz_value_rather_than_guessing() -> None:
    with pytest.raises(GuestError, match="REG_SZ"):
        set_disk_timeout(ScriptedGuest((QUERY, "windows-query-reg-sz")), 60)


def test_set_refuses_a_bad_value_before_any_guest_call() -> None:
    with pytest.raises(ValueError):
        set_disk_timeout(ScriptedGuest(), -5)
