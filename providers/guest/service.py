"""The guest side of a plan and of an apply: observe each node's disk timeout, and set it.

Observing never raises for a guest that cannot be asked: a node powered off, without
VMware Tools running, without credentials in the environment, or refusing them gets a
`GuestObservation` with a reason (`reason`, a stable word, and `reason_unavailable`, a
sentence), and the other nodes are still observed. Setting reads the value first, writes
only when it differs, and reads it back; any failure there is a `GuestError`.

VM nodes go through VMware Tools guest operations (no network path to the guest needed);
`physical:` nodes through WinRM. The power and Tools state of a VM come from the one
vCenter read (`ObservedVm`), so a powered-off node costs no guest call.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict

from providers.guest.credentials import credentials_for
from providers.guest.facts import DiskTimeout
from providers.guest.transport import (
    DEFAULT_COMMAND_TIMEOUT_S,
    GuestTransport,
    GuestUnavailable,
    UnavailableReason,
)
from reconciler.errors import GuestError
from reconciler.observed import Observed, ObservedVm
from reconciler.spec import PhysicalNode, VmNode

GuestNode = VmNode | PhysicalNode


class GuestObservation(BaseModel):
    """One node's disk timeout as observed, or why it could not be.

    `timeout_seconds` is None both when the value does not exist in the guest (then
    `reason` is None) and when the guest could not be asked (then `reason` says why).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    node: str
    timeout_seconds: int | None = None
    reason_unavailable: str | None = None
    reason: UnavailableReason | None = None
    transport: str | None = None  # vmtools | winrm

    @property
    def available(self) -> bool:
        return self.reason is None


@dataclass(frozen=True)
class DiskTimeoutChange:
    """What `set_disk_timeout` found and left: `changed` is False when it was already right."""

    before: int | None
    after: int
    changed: bool


def node_name(node: GuestNode) -> str:
    return node.vm if isinstance(node, VmNode) else node.physical


def transport_for(
    node: GuestNode,
    *,
    session: Any = None,
    vm: ObservedVm | None = None,
    env: Mapping[str, str] | None = None,
    winrm_ca_file: str | None = None,
) -> GuestTransport:
    """The transport that reaches `node`, or `GuestUnavailable` saying why there is none.

    For a VM node `vm` is what the vCenter read showed of it and `session` the vCenter
    session; for a physical node the `winrm:` settings of the desired file are used.
    """
    name = node_name(node)
    if isinstance(node, VmNode):
        if vm is None:
            raise GuestUnavailable(UnavailableReason.VM_NOT_FOUND, f"VM {name} does not exist (yet) in vCenter")
        if not vm.powered_on:
            raise GuestUnavailable(UnavailableReason.POWERED_OFF, f"VM {name} is {vm.power_state}")
        if not vm.tools_running:
            raise GuestUnavailable(UnavailableReason.TOOLS_NOT_RUNNING, f"VMware Tools is not running in VM {name}")
        credentials = credentials_for(node, env)
        if session is None:
            raise ValueError("a vCenter session is needed to reach a VM node's guest")
        from providers.guest.vmtools import VmToolsTransport

        return VmToolsTransport.for_session(session, vm.moref, credentials)
    if node.winrm is None:
        raise GuestUnavailable(
            UnavailableReason.NOT_CONFIGURED,
            f"physical node {name} has no `winrm:` settings, so its disk timeout cannot be read or set",
        )
    credentials = credentials_for(node, env)
    from providers.guest.winrm import WinRmTransport

    return WinRmTransport(node.winrm, credentials, ca_file=winrm_ca_file)


def read_disk_timeout(transport: GuestTransport, timeout_s: float = DEFAULT_COMMAND_TIMEOUT_S) -> int | None:
    """TimeOutValue in seconds, None when absent; `GuestError` for anything else."""
    result = transport.run(DiskTimeout.query_command(), timeout_s)
    return DiskTimeout.parse_query(result.output, result.exit_code)


def observe_disk_timeout(
    name: str, transport: GuestTransport, timeout_s: float = DEFAULT_COMMAND_TIMEOUT_S
) -> GuestObservation:
    """Read one node's disk timeout through `transport`; a failure becomes the observation's reason."""
    try:
        value = read_disk_timeout(transport, timeout_s)
    except GuestError as exc:
        return _unavailable(name, exc, transport.name)
    return GuestObservation(node=name, timeout_seconds=value, transport=transport.name)


def observe_node(
    node: GuestNode,
    *,
    session: Any = None,
    vm: ObservedVm | None = None,
    env: Mapping[str, str] | None = None,
    timeout_s: float = DEFAULT_COMMAND_TIMEOUT_S,
    make_transport: Callable[..., GuestTransport] = transport_for,
) -> GuestObservation:
    """Observe one node; never raises for a guest that cannot be asked."""
    name = node_name(node)
    try:
        transport = make_transport(node, session=session, vm=vm, env=env)
    except GuestError as exc:
        return _unavailable(name, exc, None)
    try:
        return observe_disk_timeout(name, transport, timeout_s)
    finally:
        with contextlib.suppress(Exception):  # closing must not hide the observation
            transport.close()


def observe_nodes(
    nodes: Iterable[GuestNode],
    *,
    session: Any = None,
    observed: Observed | None = None,
    env: Mapping[str, str] | None = None,
    timeout_s: float = DEFAULT_COMMAND_TIMEOUT_S,
    make_transport: Callable[..., GuestTransport] = transport_for,
) -> list[GuestObservation]:
    """Every node's observation, in the order of the desired file."""
    vms = observed.vms if observed is not None else {}
    return [
        observe_node(
            node,
            session=session,
            vm=vms.get(node.vm) if isinstance(node, VmNode) else None,
            env=env,
            timeout_s=timeout_s,
            make_transport=make_transport,
        )
        for node in nodes
    ]


def set_disk_timeout(
    transport: GuestTransport, seconds: int, timeout_s: float = DEFAULT_COMMAND_TIMEOUT_S
) -> DiskTimeoutChange:
    """Make TimeOutValue `seconds`: read it, write it only if it differs, read it back.

    Raises `GuestError` (a `GuestUnavailable` with its reason when the guest cannot be
    asked) when any step fails or the value read back is not the one written.
    """
    set_command = DiskTimeout.set_command(seconds)  # checks the value before any guest call
    before = read_disk_timeout(transport, timeout_s)
    if before == seconds:
        return DiskTimeoutChange(before=before, after=before, changed=False)
    result = transport.run(set_command, timeout_s)
    DiskTimeout.parse_set(result.output, result.exit_code)
    after = read_disk_timeout(transport, timeout_s)
    if after != seconds:
        raise GuestError(
            f"{DiskTimeout.value} reads {after if after is not None else 'absent'} after `{set_command}` "
            f"reported success; expected {seconds}"
        )
    return DiskTimeoutChange(before=before, after=after, changed=True)


def _unavailable(name: str, exc: GuestError, transport: str | None) -> GuestObservation:
    reason = exc.reason if isinstance(exc, GuestUnavailable) else UnavailableReason.COMMAND_FAILED
    return GuestObservation(node=name, reason=reason, reason_unavailable=str(exc), transport=transport)
