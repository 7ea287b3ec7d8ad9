"""What one applied action did, as typed values: the apply loop records them in the state."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from reconciler.observed import ObservedNic
from reconciler.plan import Action


class OutcomeStatus(StrEnum):
    DONE = "done"  # vCenter (or the guest) was changed
    SKIPPED = "skipped"  # already satisfied when re-read right before acting


@dataclass(frozen=True)
class OutcomeRecord:
    """Which vCenter objects an action ended up as, for the state to remember."""

    vm_moref: str | None = None
    host_moref: str | None = None
    cluster_moref: str | None = None
    device_key: int | None = None
    file: str | None = None
    rule_key: int | None = None
    pci_slot: int | None = None
    # After a power-on: the node's adapters with the PCI slots vCenter gave them.
    nics: tuple[ObservedNic, ...] | None = None


@dataclass(frozen=True)
class Outcome:
    action: Action
    status: OutcomeStatus
    record: OutcomeRecord = field(default_factory=OutcomeRecord)
    detail: str = ""

    @property
    def done(self) -> bool:
        return self.status is OutcomeStatus.DONE


def done(action: Action, detail: str = "", **record: object) -> Outcome:
    return Outcome(action, OutcomeStatus.DONE, OutcomeRecord(**record), detail)  # type: ignore[arg-type]


def skipped(action: Action, detail: str, **record: object) -> Outcome:
    return Outcome(action, OutcomeStatus.SKIPPED, OutcomeRecord(**record), detail)  # type: ignore[arg-type]
