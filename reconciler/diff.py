"""Observed tree vs desired tree -> changes, one per address, with deepdiff.

Both trees come from `reconciler.normalize`, so everything that does not matter (device
keys, PCI slots, MAC addresses, capacity rounding) is already out of them; what deepdiff
reports is exactly what must change.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any

from deepdiff import DeepDiff
from pydantic import BaseModel, ConfigDict

from reconciler.normalize import Tree

_ADDRESS = re.compile(r"^root\['((?:[^'\\]|\\.)*)'\]")


class Op(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"


class Change(BaseModel):
    model_config = ConfigDict(frozen=True)

    address: str
    op: Op
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    fields: tuple[str, ...] = ()  # changed fields, for an update

    @property
    def object_type(self) -> str:
        """The kind of object at the address: controller, disk, nic, option, lun, rule..."""
        parts = self.address.split("/")
        if parts[1] == "node":
            return parts[3]
        if parts[1] == "host":
            return parts[3]
        return parts[1]


def diff_trees(observed: Tree, desired: Tree) -> list[Change]:
    """Changes that turn `observed` into `desired`, sorted by address (deterministic)."""
    dd = DeepDiff(observed, desired, ignore_order=True, view="tree", report_repetition=False)
    touched: dict[str, set[str]] = {}
    for report_type, items in dd.items():
        for item in items:
            path = item.path()
            match = _ADDRESS.match(path)
            if match is None:  # pragma: no cover - both trees are dicts keyed by address
                continue
            address = match.group(1).replace("\\'", "'")
            if (report_type == "dictionary_item_added" and path == match.group(0)) or (
                report_type == "dictionary_item_removed" and path == match.group(0)
            ):
                touched.setdefault(address, set())
            else:
                field = re.findall(r"\['([^']*)'\]", path[len(match.group(0)) :])
                touched.setdefault(address, set()).add(field[0] if field else "")
    changes = []
    for address in sorted(touched):
        before, after = observed.get(address), desired.get(address)
        if before is None:
            changes.append(Change(address=address, op=Op.CREATE, after=after))
        elif after is None:
            changes.append(Change(address=address, op=Op.DELETE, before=before))
        else:
            fields = tuple(sorted(f for f in touched[address] if f))
            changes.append(Change(address=address, op=Op.UPDATE, before=before, after=after, fields=fields))
    return changes
