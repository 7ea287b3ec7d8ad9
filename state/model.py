"""The recorded state, as pydantic models: what mscsctl last applied, and to which objects.

The state is pure data. It is what lets a later run tell "mscsctl created this RDM" from
"someone attached this disk by hand", and which vCenter objects (morefs, device keys, rule
keys) the desired file's addresses ended up as. Backends store it; nothing here does I/O.

Models are frozen and every helper returns a new `State`, so a state read from a backend
can be handed around without anyone changing it behind the reader's back.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, JsonValue, ValidationError, field_validator

from reconciler.address import Address, AddressError
from reconciler.errors import MscsError

STATE_FORMAT_VERSION = 1

# Words that must never appear in a key of the stored state: the state is a plain file
# (or a database row) that people copy around and commit by mistake.
SECRET_KEY_WORDS = ("password", "passwd", "secret", "token")


def utc_now() -> str:
    """The current time as the state writes it: UTC, ISO 8601, seconds, `Z` suffix."""
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _check_utc_iso(value: str) -> str:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"expected an ISO 8601 time such as 2024-05-01T12:00:00Z, got {value!r}") from None
    if moment.utcoffset() is None or moment.utcoffset().total_seconds() != 0:
        raise ValueError(f"expected a UTC time (ending in Z or +00:00), got {value!r}")
    return value


def _check_uuid(value: str) -> str:
    try:
        uuid.UUID(value)
    except ValueError:
        raise ValueError(f"expected a UUID, got {value!r}") from None
    return value


UtcTimestamp = Annotated[str, AfterValidator(_check_utc_iso)]
Uuid = Annotated[str, AfterValidator(_check_uuid)]
Sha256Hex = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class _StateModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ManagedResource(_StateModel):
    """One object mscsctl applied, keyed in `State.resources` by its address."""

    kind: str = Field(
        description="controller, rdm-disk, shared-vmdk, nic, host-option, perennial-reservation, "
        "drs-override, ha-override, vm-rule or guest-setting."
    )
    vm_moref: str | None = Field(default=None, description="The VM the object belongs to, e.g. vm-1042.")
    host_moref: str | None = Field(default=None, description="The ESXi host, e.g. host-31.")
    cluster_moref: str | None = Field(default=None, description="The vSphere cluster, e.g. domain-c7.")
    device_key: int | None = Field(default=None, description="The virtual device key on the VM.")
    file: str | None = Field(
        default=None,
        description="A datastore path, e.g. the RDM mapping file `[SAN-VMFS-01] SQLNODE1/SQLNODE1_quorum.vmdk`.",
    )
    rule_key: int | None = Field(default=None, description="The key of a DRS rule in its cluster.")
    created_by_mscsctl: bool = Field(
        description="True when mscsctl created the object (so it may delete it); "
        "False when it only adopted or changed an existing one."
    )
    applied: dict[str, JsonValue] = Field(default_factory=dict, description="The values mscsctl last applied, as JSON.")
    applied_at: UtcTimestamp = Field(description="When they were applied (UTC).")

    # The state records a network adapter's PCI slot beside its payload (`applied.pciSlot`).
    PCI_SLOT: ClassVar[str] = "pciSlot"

    @property
    def pci_slot(self) -> int | None:
        slot = self.applied.get(self.PCI_SLOT)
        return slot if isinstance(slot, int) else None

    def applied_value(self, name: str) -> JsonValue:
        """One applied field by its JSON name (drift shows what was last applied)."""
        return self.applied.get(name)


class State(_StateModel):
    """Everything mscsctl recorded about one cluster after its last successful apply."""

    version: int = Field(default=STATE_FORMAT_VERSION, description="State format version.")
    lineage: Uuid = Field(description="Created once with the state and never changed.")
    serial: int = Field(ge=0, description="Increased by one on every write.")
    cluster: str = Field(description="The cluster's `metadata.name` in the desired file.")
    desired_hash: Sha256Hex = Field(description="sha256 of the desired file last applied.")
    updated_at: UtcTimestamp = Field(description="When the state was last written (UTC).")
    resources: dict[str, ManagedResource] = Field(default_factory=dict, description="Managed objects by address.")

    @field_validator("resources")
    @classmethod
    def _sorted_by_address(cls, resources: dict[str, ManagedResource]) -> dict[str, ManagedResource]:
        """Kept in address order so the stored file and every listing are deterministic; each key
        must read as an address."""
        for key in resources:
            try:
                Address.parse(key)
            except AddressError as exc:
                raise ValueError(str(exc)) from None
        return dict(sorted(resources.items()))

    @classmethod
    def new(cls, cluster: str, desired_hash: str, *, now: str | None = None) -> State:
        """A first, empty state with a fresh lineage; serial 0 means "never written"."""
        return cls(
            lineage=str(uuid.uuid4()),
            serial=0,
            cluster=cluster,
            desired_hash=desired_hash,
            updated_at=now or utc_now(),
        )

    def get(self, address: Address | str) -> ManagedResource | None:
        return self.resources.get(str(address))

    def managed(self) -> dict[Address, ManagedResource]:
        """The resources by typed address, as the planner and drift read them."""
        return {Address.parse(a): r for a, r in self.resources.items()}

    def with_resource(self, address: Address | str, resource: ManagedResource) -> State:
        """A copy with `address` set to `resource` (added or replaced)."""
        return self._replace(resources={**self.resources, str(address): resource})

    def without_resource(self, address: Address | str) -> State:
        """A copy without `address`. Removing an address that is not there is not an error,
        because an apply that deleted the object may be run again."""
        return self._replace(resources={a: r for a, r in self.resources.items() if a != str(address)})

    def with_desired_hash(self, desired_hash: str) -> State:
        return self._replace(desired_hash=desired_hash)

    def as_written(self, *, serial: int, now: str) -> State:
        """The copy a backend stores: its serial and write time, everything else kept."""
        return self._replace(serial=serial, updated_at=now)

    def to_json(self) -> str:
        """The stored form: indented, resources in address order, ending with a newline."""
        return self.model_dump_json(indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes) -> State:
        return cls.model_validate_json(text)

    def _replace(self, **changes: Any) -> State:
        # model_copy(update=...) skips validation; a changed state is validated like a read one.
        return type(self).model_validate({**dict(self), **changes})


def desired_file_hash(content: bytes) -> str:
    """The `desired_hash` of a desired file: sha256 of its bytes, as read from disk."""
    return hashlib.sha256(content).hexdigest()


def find_secret_keys(data: Any, where: str = "") -> list[str]:
    """Paths of every key in a JSON value whose name contains a secret word.

    Resource addresses (the keys of `resources`) are names of things, not fields holding
    values, so they are not checked themselves; what is stored under them is.
    """
    found: list[str] = []
    if isinstance(data, dict):
        addresses = where == "" and isinstance(data.get("resources"), dict)
        for key, value in data.items():
            path = f"{where}.{key}" if where else str(key)
            if any(word in str(key).lower() for word in SECRET_KEY_WORDS):
                found.append(path)
            if addresses and key == "resources":
                for address, resource in value.items():
                    found.extend(find_secret_keys(resource, f"resources[{address!r}]"))
            else:
                found.extend(find_secret_keys(value, path))
    elif isinstance(data, list):
        for index, item in enumerate(data):
            found.extend(find_secret_keys(item, f"{where}[{index}]"))
    return found


def check_no_secrets(state: State) -> None:
    """Refuse a state that holds a key named like a secret; backends call this before writing."""
    found = find_secret_keys(state.model_dump(mode="json"))
    if found:
        raise MscsError(
            "refusing to write the state: it would contain keys named like secrets "
            f"({', '.join(found)}). Credentials never belong in the state; "
            "keep them out of what the apply records."
        )


def parse_state(raw: bytes | str, source: str) -> State:
    """A stored state, or an `MscsError` naming `source` and saying what is wrong with it.

    A state that cannot be read is never replaced silently: the error stops the run, and the
    user decides between the backup and a fresh start.
    """
    advice = "It was left as it is; compare it with its backup or move it aside to start afresh."
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MscsError(f"state {source} is not valid JSON ({exc}). {advice}") from None
    if not isinstance(data, dict):
        raise MscsError(f"state {source} is not an mscsctl state (expected a JSON object). {advice}")
    version = data.get("version")
    if isinstance(version, int) and version > STATE_FORMAT_VERSION:
        raise MscsError(
            f"state {source} has format version {version}; this mscsctl reads version "
            f"{STATE_FORMAT_VERSION} only. Use a newer mscsctl."
        )
    if version != STATE_FORMAT_VERSION:
        raise MscsError(f"state {source} has no known format version ({version!r}). {advice}")
    try:
        return State.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or '(top)'}: {error['msg']}" for error in exc.errors()[:5]
        )
        more = f" and {exc.error_count() - 5} more" if exc.error_count() > 5 else ""
        raise MscsError(f"state {source} is not a valid mscsctl state ({problems}{more}). {advice}") from None
