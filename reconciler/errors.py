"""One exception hierarchy. Each error carries what a user needs to act on it.

The CLI maps these to exit codes and messages; nothing below the CLI prints.
"""

from __future__ import annotations


class MscsError(Exception):
    """Base of every error mscsctl reports to a user (exit code 1, no traceback)."""


class SpecError(MscsError):
    """The desired file is unreadable or invalid. Carries every finding, located."""

    def __init__(self, findings: list) -> None:  # list[Finding]
        self.findings = findings
        super().__init__("\n".join(str(f) for f in findings))


class RuleViolation(MscsError):
    """A rule of the catalogue failed against what vCenter shows; carries the findings."""

    def __init__(self, findings: list) -> None:  # list[Finding]
        self.findings = findings
        super().__init__("\n".join(str(f) for f in findings))


class VCenterConnectionError(MscsError):
    """vCenter could not be reached, logged into, or its certificate could not be verified."""


class StaleStateError(MscsError):
    """A saved plan or a state write no longer matches what is there now."""


class LockedError(MscsError):
    """The state is locked by another run; the message names the holder."""


class VCenterTaskError(MscsError):
    """A vCenter task failed; the message is vCenter's own fault message."""


class GuestError(MscsError):
    """A guest command failed or answered something unexpected (quoted in the message)."""
