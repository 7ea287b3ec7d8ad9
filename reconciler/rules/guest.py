"""Rules about settings inside the guests."""

from __future__ import annotations

from collections.abc import Iterator

from reconciler.findings import Finding
from reconciler.rules import paths
from reconciler.rules.catalogue import RuleContext, rule

MIN_DISK_TIMEOUT = 60


@rule(
    "MSCS-GUEST-001",
    title="The guests' disk timeout (TimeOutValue) is at least 60 seconds",
    source='[ch] "set the I/O timeout to 60 seconds or more"; [vmw] checklist',
)
def disk_timeout(ctx: RuleContext) -> Iterator[Finding]:
    value = ctx.spec.guest.disk_timeout_seconds
    if value < MIN_DISK_TIMEOUT:
        yield ctx.finding(
            (*paths.GUEST, "diskTimeoutSeconds"),
            f"{value} seconds: Windows gives up on a shared disk that stalls during a path or node "
            f"failover; TimeOutValue must be {MIN_DISK_TIMEOUT} or more",
        )
