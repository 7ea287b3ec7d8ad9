"""Observed tree vs desired tree -> changes, one per address.

Both trees come from `reconciler.normalize`, so everything that does not matter (device
keys, PCI slots, MAC addresses, capacity rounding) is already out of them; two payloads that
differ in a field are exactly what must change.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, SerializeAsAny

from reconciler.address import Address
from reconciler.kinds import Payload, Tree


class Op(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"


class Change(BaseModel):
    model_config = ConfigDict(frozen=True)

    address: Address
    op: Op
    before: SerializeAsAny[Payload] | None = None
    after: SerializeAsAny[Payload] | None = None
    fields: tuple[str, ...] = ()  # changed fields, for an update

    @property
    def object_type(self) -> str:
        """The kind of object at the address: controller, disk, nic, option, lun, rule..."""
        return self.address.kind


def diff_trees(observed: Tree, desired: Tree) -> list[Change]:
    """Changes that turn `observed` into `desired`, sorted by address (deterministic)."""
    changes = []
    for address in sorted(observed.keys() | desired.keys()):
        before, after = observed.get(address), desired.get(address)
        if before is None:
            changes.append(Change(address=address, op=Op.CREATE, after=after))
        elif after is None:
            changes.append(Change(address=address, op=Op.DELETE, before=before))
        elif fields := after.differing(before):
            changes.append(Change(address=address, op=Op.UPDATE, before=before, after=after, fields=fields))
    return changes
