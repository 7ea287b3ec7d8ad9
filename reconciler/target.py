"""`--target ADDRESS`: the part of a run the user asked for, as Terraform's `-target` does.

A target is one cluster of a fleet (`sql-prod-01`), one node or host of a cluster
(`sql-prod-01/node/SQLNODE1`, `sql-prod-01/host/esx-a1`), or one object (any `Address`:
`sql-prod-01/node/SQLNODE1/disk/quorum`, `sql-prod-01/rule/mscsctl-sql-prod-01`). A kind
without a name (`sql-prod-01/node/SQLNODE1/disk`) stands for every object of that kind on
the node. Parsed once, into a typed value; nobody splits the text again.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from reconciler.address import Address, AddressError, Scope, _split
from reconciler.errors import MscsError

_OWNER_SCOPES = {Scope.NODE.value: Scope.NODE, Scope.HOST.value: Scope.HOST}


class TargetError(MscsError):
    """A `--target` that is not an address, or that matches nothing."""


@dataclass(frozen=True)
class Target:
    """What one `--target` names: a cluster, an owner (node or host) of it, or an object."""

    text: str
    cluster: str
    scope: Scope | None = None  # with `owner`: a node or host of the cluster
    owner: str = ""
    address: Address | None = None  # one object (its name may be empty: every object of the kind)

    @classmethod
    def parse(cls, text: str) -> Target:
        try:
            parts = _split(text.strip())
        except AddressError as exc:
            raise TargetError(f"--target {text!r}: {exc}") from None
        if len(parts) == 1:
            return cls(text, parts[0])
        if len(parts) == 3 and parts[1] in _OWNER_SCOPES:
            return cls(text, parts[0], _OWNER_SCOPES[parts[1]], parts[2])
        if len(parts) == 4 and parts[1] in _OWNER_SCOPES:  # CLUSTER/node/NODE/KIND: every object of the kind
            scope = _OWNER_SCOPES[parts[1]]
            return cls(text, parts[0], scope, parts[2], Address(parts[0], scope, parts[2], parts[3], ""))
        try:
            address = Address.parse(text.strip())
        except AddressError:
            raise TargetError(
                f"--target {text!r} is not an address: give CLUSTER, CLUSTER/node/NODE, CLUSTER/host/HOST "
                "or an object's address (CLUSTER/node/NODE/KIND/NAME, CLUSTER/host/HOST/KIND/NAME, CLUSTER/KIND/NAME)"
            ) from None
        return cls(text, address.cluster, address.scope, address.owner, address)

    @property
    def whole_cluster(self) -> bool:
        return self.scope is None

    def __str__(self) -> str:
        return self.text.strip()

    def matches(self, address: Address) -> bool:
        """Whether the object at `address` is one this target names."""
        if address.cluster != self.cluster:
            return False
        if self.scope is None:
            return True
        if self.address is None:
            return address.scope is self.scope and address.owner == self.owner
        mine = self.address
        return (
            address.scope is mine.scope
            and address.owner == mine.owner
            and address.kind == mine.kind
            and (mine.name == "" or address.name == mine.name)
        )


def narrowing(targets: Sequence[Target], cluster: str) -> list[Target]:
    """The targets that narrow `cluster`'s run to part of it; none when one of them names the
    whole cluster (targets add up, as Terraform's do: the whole cluster holds the rest)."""
    named = [t for t in targets if t.cluster == cluster]
    return [] if any(t.whole_cluster for t in named) else named


def parse_targets(texts: Sequence[str]) -> list[Target]:
    return [Target.parse(t) for t in texts]


def clusters_of(targets: Sequence[Target]) -> set[str]:
    return {t.cluster for t in targets}


def unknown_cluster_error(target: Target, clusters: Iterable[str]) -> TargetError:
    return TargetError(
        f"--target {target}: no cluster {target.cluster!r} in the files{did_you_mean(target.cluster, clusters)}"
    )


def unmatched_error(target: Target, known: Iterable[Address]) -> TargetError:
    """The error for a target no object of its cluster (in the file or in vCenter) matches."""
    known = list(known)
    if target.address is None:
        owners = sorted({a.owner for a in known if a.scope is target.scope})
        what = "node" if target.scope is Scope.NODE else "host"
        return TargetError(
            f"--target {target}: cluster {target.cluster} has no {what} {target.owner!r}"
            f"{did_you_mean(target.owner, owners, f'{target.cluster}/{what}/')}"
        )
    texts = sorted({str(a) for a in known} | {str(a.with_name("")) for a in known if a.on_node and a.name})
    return TargetError(f"--target {target}: no such object in the file or in vCenter{did_you_mean(str(target), texts)}")


def did_you_mean(text: str, candidates: Iterable[str], prefix: str = "") -> str:
    near = difflib.get_close_matches(text, list(candidates), n=3, cutoff=0.6)
    if not near:
        return ""
    return "; did you mean " + " or ".join(f"{prefix}{n}" for n in near) + "?"
