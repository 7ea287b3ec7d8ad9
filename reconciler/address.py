"""Addresses: where a managed object lives, as a typed value that is never split apart again.

An address names one object of one cluster: a device of a node (`sql-prod-01/node/SQLNODE1/
disk/quorum`), a setting of a host (`sql-prod-01/host/esx-a1/option/Disk.UseLunReset`), or an
object of the vSphere cluster (`sql-prod-01/rule/mscsctl-sql-prod-01`). The text form is what
plans, state files and drift reports show; `Address.parse` reads it back exactly.

vCenter allows `/` in a VM name, so a name part that holds `/`, `"` or `\\`, that is empty or
that starts or ends with white space is written in double quotes with backslash escapes
(`sql-prod-01/node/"SQL/NODE 1"/disk/quorum`), in the manner of Terraform's `aws_instance.x["a/b"]`.
Every other name reads as the user typed it. Ordering is that of the text form, so sorted
addresses read as the plan and the state have always listed them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import total_ordering
from typing import Any

from pydantic import GetCoreSchemaHandler
from pydantic_core import core_schema


class Scope(StrEnum):
    """What owns the object: a node (VM or physical), an ESXi host, or the vSphere cluster."""

    NODE = "node"
    HOST = "host"
    VSPHERE_CLUSTER = "vcluster"  # written without a scope word: `CLUSTER/KIND/NAME`


class AddressError(ValueError):
    """A text that is not an address."""


_SCOPE_WORDS = {Scope.NODE.value: Scope.NODE, Scope.HOST.value: Scope.HOST}


def _needs_quotes(part: str) -> bool:
    return part == "" or part != part.strip() or any(c in part for c in '/"\\')


def quote_part(part: str) -> str:
    if not _needs_quotes(part):
        return part
    return '"' + part.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _split(text: str) -> list[str]:
    """The `/`-separated parts of an address text, with quoted parts unquoted."""
    parts: list[str] = []
    i, n = 0, len(text)
    while True:
        if i < n and text[i] == '"':
            i += 1
            buf: list[str] = []
            while True:
                if i >= n:
                    raise AddressError(f"unterminated quote in address {text!r}")
                c = text[i]
                if c == "\\" and i + 1 < n:
                    buf.append(text[i + 1])
                    i += 2
                elif c == '"':
                    i += 1
                    break
                else:
                    buf.append(c)
                    i += 1
            parts.append("".join(buf))
            if i < n and text[i] != "/":
                raise AddressError(f"expected '/' after a quoted part at position {i} of address {text!r}")
        else:
            j = text.find("/", i)
            end = n if j < 0 else j
            raw = text[i:end]
            if raw == "":
                raise AddressError(f'empty part at position {i} of address {text!r} (an empty name is written "")')
            if '"' in raw or "\\" in raw:
                raise AddressError(f"a part holding '\"' or '\\' must be quoted, in address {text!r}")
            parts.append(raw)
            i = end
        if i >= n:
            return parts
        i += 1  # the '/'
        if i == n:
            raise AddressError(f"address {text!r} ends with '/'")


@total_ordering
@dataclass(frozen=True)
class Address:
    """One managed object: `cluster`, the `scope` and `owner` that hold it, its `kind` and `name`.

    `owner` is the node or host name (empty for the vSphere cluster's objects); `name` is the
    object's own name within its kind (a disk's name, a bus number, an option key), empty for
    kinds a node has only one of (power, DRS and HA overrides).
    """

    cluster: str
    scope: Scope
    owner: str
    kind: str
    name: str = ""

    @classmethod
    def node(cls, cluster: str, node: str, kind: str, name: str | int = "") -> Address:
        return cls(cluster, Scope.NODE, node, kind, str(name))

    @classmethod
    def host(cls, cluster: str, host: str, kind: str, name: str) -> Address:
        return cls(cluster, Scope.HOST, host, kind, name)

    @classmethod
    def vsphere_cluster(cls, cluster: str, kind: str, name: str) -> Address:
        return cls(cluster, Scope.VSPHERE_CLUSTER, "", kind, name)

    def __str__(self) -> str:
        parts = [self.cluster]
        if self.scope is not Scope.VSPHERE_CLUSTER:
            parts += [self.scope.value, self.owner]
        parts.append(self.kind)
        if self.name != "" or self.scope is Scope.VSPHERE_CLUSTER:
            parts.append(self.name)
        return "/".join(quote_part(p) for p in parts)

    def __repr__(self) -> str:
        return f"Address({str(self)!r})"

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Address):
            return NotImplemented
        return str(self) < str(other)

    @property
    def on_node(self) -> bool:
        return self.scope is Scope.NODE

    @property
    def on_host(self) -> bool:
        return self.scope is Scope.HOST

    def with_name(self, name: str) -> Address:
        return Address(self.cluster, self.scope, self.owner, self.kind, name)

    @classmethod
    def parse(cls, text: str) -> Address:
        parts = _split(text)
        if len(parts) >= 4 and parts[1] in _SCOPE_WORDS:
            if len(parts) > 5:
                raise AddressError(f"address {text!r} has {len(parts)} parts; quote a name that holds '/'")
            cluster, scope, owner, kind, *rest = parts
            return cls(cluster, _SCOPE_WORDS[scope], owner, kind, rest[0] if rest else "")
        if len(parts) == 3 and parts[1] not in _SCOPE_WORDS:
            return cls(parts[0], Scope.VSPHERE_CLUSTER, "", parts[1], parts[2])
        raise AddressError(
            f"not an address: {text!r} (expected CLUSTER/node/NODE/KIND[/NAME], CLUSTER/host/HOST/KIND/NAME "
            "or CLUSTER/KIND/NAME)"
        )

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        """In models and JSON an address is its text form; `parse` reads it back."""

        def coerce(value: Any) -> Address:
            if isinstance(value, Address):
                return value
            if isinstance(value, str):
                try:
                    return cls.parse(value)
                except AddressError as exc:
                    raise ValueError(str(exc)) from None
            raise ValueError(f"expected an address string, got {type(value).__name__}")

        return core_schema.no_info_plain_validator_function(
            coerce,
            json_schema_input_schema=core_schema.str_schema(),
            serialization=core_schema.plain_serializer_function_ser_schema(str, when_used="always"),
        )
