"""The guest side of a plan and of an apply: observe each node's disk timeout, and set it.

Observing never raises for a guest that cannot be asked: a node powered off, without
VMware Tools running, without credentials in the environment, or refusing them gets an
`ObservedGuest` (what the planner reads) with a reason (`reason`, a stable word, and
`detail`, a sentence), and the other nodes are still observed. Setting reads the value
first, writes only when it differs, and reads it back; any failure there is a `GuestError`.

VM nodes go through VMware Tools guest operations (no network path to the guest needed);
`physical:` nodes through WinRM. The power and Tools state of a VM come from the one
vCenter read (`ObservedVm`), so a powered-off node costs no guest call.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from providers.guest.credentials import credentials_for
from providers.guest.facts import DiskTimeout
from providers.guest.transport import (
    DEFAULT_COMMAND_TIMEOUT_S,
    GuestTransport,
    GuestUnavailable,
    UnavailableReason,
)
from reconciler.errors import GuestError
from reconciler.observed import Observed, ObservedGuest, ObservedVm
from reconciler.spec import PhysicalNode, VmNode

GuestNode = VmNode | PhysicalNode


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
) -> ObservedGuest:
    """Read one node's disk timeout through `transport`; a failure becomes the observation's reason."""
    try:
        value = read_disk_timeout(transport, timeout_s)
    except GuestError as exc:
        return _unavailable(name, exc)
    return ObservedGuest(node=name, timeout_seconds=value)


def observe_node(
    node: GuestNode,
    *,
    session: Any = None,
    vm: ObservedVm | None = None,
    env: Mapping[str, str] | None = None,
    timeout_s: float = DEFAULT_COMMAND_TIMEOUT_S,
    make_transport: Callable[..., GuestTransport] = transport_for,
) -> ObservedGuest:
    """Observe one node; never raises for a guest that cannot be asked.

    A node that is only powered off gets its disk timeout set once apply has powered it on,
    which takes credentials: without them, the missing credentials are its reason too.
    """
    name = node_name(node)
    try:
        transport = make_transport(node, session=session, vm=vm, env=env)
    except GuestError as exc:
        if isinstance(exc, GuestUnavailable) and exc.reason is UnavailableReason.POWERED_OFF:
            try:
                credentials_for(node, env)
            except GuestUnavailable as missing:
                return ObservedGuest(node=name, reason=str(missing.reason), detail=f"{exc}; {missing}")
        return _unavailable(name, exc)
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
) -> list[ObservedGuest]:
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


def _unavailable(name: str, exc: GuestError) -> ObservedGuest:
    reason = exc.reason if isinstance(exc, GuestUnavailable) else UnavailableReason.COMMAND_FAILED
    return ObservedGuest(node=name, reason=str(reason), detail=str(exc))
