"""Rules about the guests: the Windows Server version for the vSphere version, and settings inside."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from reconciler.findings import Finding, Severity
from reconciler.rules import paths
from reconciler.rules.catalogue import RuleContext, Version, rule, since
from reconciler.spec import GuestOS

MIN_DISK_TIMEOUT = 60


@rule(
    "MSCS-GUEST-001",
    title="The guests' disk timeout (TimeOutValue) is at least 60 seconds",
    source='[ch] "set the I/O timeout to 60 seconds or more"; [vmw 6.7] [vmw 7.0] [vmw 8.0] requirements table',
)
def disk_timeout(ctx: RuleContext) -> Iterator[Finding]:
    value = ctx.spec.guest.disk_timeout_seconds
    if value < MIN_DISK_TIMEOUT:
        yield ctx.finding(
            (*paths.GUEST, "diskTimeoutSeconds"),
            f"{value} seconds: Windows gives up on a shared disk that stalls during a path or node "
            f"failover; TimeOutValue must be {MIN_DISK_TIMEOUT} or more",
        )


@dataclass(frozen=True)
class GuestSupport:
    """The vSphere versions on which VMware lists a Windows Server version for clustering with
    shared disks: `first <= version < end` (end None: still listed), and where that is said."""

    first: Version
    end: Version | None
    source: str

    def covers(self, version: Version) -> bool:
        return version >= self.first and (self.end is None or version < self.end)


# The guest OS x vSphere version matrix. The KBs list what VMware qualified per major version:
# [kb 2147661] for 6.x, [kb 79616] for 7.x, [kb 89327] (article 313472) for 8.x; the guides'
# requirement tables for 4.x-6.7. Windows Server 2019 needs 6.5 U3 or 6.7 U3, 2022 7.0 U3 and
# 2025 8.0 U3 (the update is not part of the version the rules see: the message says it).
GUEST_OS_MATRIX: dict[GuestOS, GuestSupport] = {
    GuestOS.WINDOWS_2003: GuestSupport((0, 0), (7, 0), "[ch] [vmw 6.7] Windows Server 2003 SP1/SP2; not in [kb 79616]"),
    GuestOS.WINDOWS_2008: GuestSupport((4, 0), (7, 0), "[vmw 6.7] 2008 SP2 and later; [kb 2147661] 2008 R2"),
    GuestOS.WINDOWS_2012: GuestSupport((5, 5), None, "[vmw 5.5] [kb 2147661] [kb 79616] [kb 89327] 2012 / 2012 R2"),
    GuestOS.WINDOWS_2016: GuestSupport((6, 0), None, "[kb 2147661] [kb 79616] [kb 89327] 2016"),
    GuestOS.WINDOWS_2019: GuestSupport((6, 5), None, "[kb 2147661] 2019 from 6.5 U3 / 6.7 U3; [kb 79616] [kb 89327]"),
    GuestOS.WINDOWS_2022: GuestSupport((7, 0), None, "[kb 79616] 2022 from 7.0 U3; [kb 89327]"),
    GuestOS.WINDOWS_2025: GuestSupport((8, 0), None, "[kb 89327] 2025 from 8.0 U3"),
}
UPDATE_NEEDED = {
    GuestOS.WINDOWS_2019: "6.5 U3 or 6.7 U3",
    GuestOS.WINDOWS_2022: "7.0 U3",
    GuestOS.WINDOWS_2025: "8.0 U3",
}

# Windows Server 2003 is in no KB from 7.0 on ([kb 79616], [kb 89327]); the 6.7 guide is the
# last to list it.
WINDOWS_2003_DROPPED: Version = (7, 0)


def supported_on(guest: GuestOS, version: Version) -> bool:
    return GUEST_OS_MATRIX[guest].covers(version)


@rule(
    "MSCS-GUEST-002",
    severity=Severity.WARNING,
    title="VMware lists the file's Windows Server version for clustering on the target vSphere version",
    source="[kb 2147661] 6.x; [kb 79616] 7.x; [kb 89327] 8.x; [vmw 6.7] requirements table (the matrix "
    "GUEST_OS_MATRIX in reconciler/rules/guest.py)",
)
def guest_os_in_matrix(ctx: RuleContext) -> Iterator[Finding]:
    guest = ctx.spec.guest_os
    if ctx.version is None or (guest is GuestOS.WINDOWS_2003 and ctx.version >= WINDOWS_2003_DROPPED):
        return  # unknown version; 2003 from 7.0 is MSCS-GUEST-003's
    support = GUEST_OS_MATRIX[guest]
    if not support.covers(ctx.version):
        yield ctx.finding(
            paths.GUEST_OS,
            f"{guest} is not among the Windows Server versions VMware lists for failover clustering with "
            f"shared disks on vSphere {ctx.version_text} ({support.source})",
        )
    elif guest in UPDATE_NEEDED and ctx.version == support.first:
        yield ctx.finding(
            paths.GUEST_OS,
            f"{guest} on vSphere {ctx.version_text}: VMware lists it from {UPDATE_NEEDED[guest]} "
            f"({support.source}); check the hosts' update",
        )


@rule(
    "MSCS-GUEST-003",
    title="From vSphere 7.0, Windows Server 2003 is not a supported cluster node",
    source="[kb 79616] [kb 89327] list no Windows Server 2003 for 7.x and 8.x; [vmw 6.7] the last edition "
    "with Windows Server 2003 SP1/SP2 (two nodes)",
    versions=since(*WINDOWS_2003_DROPPED),
)
def no_windows_2003(ctx: RuleContext) -> Iterator[Finding]:
    if ctx.spec.guest_os is GuestOS.WINDOWS_2003:
        yield ctx.finding(
            paths.GUEST_OS,
            f"windows2003 under vSphere {ctx.version_text}: VMware dropped Windows Server 2003 clusters after "
            "the 6.7 guide; upgrade the nodes to a Windows Server version the 7.x/8.x KBs list",
        )
