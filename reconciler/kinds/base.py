"""What every resource kind is made of: its payload model, its catalogue entry, the shared context.

A *payload* is the typed value of one managed object, the same model on both sides of the
diff: what the desired file asks for and what vCenter (or the guest) shows. Its JSON form
(`fields()`) is what plans, drift reports and the state carry; nothing else reads a payload
by string key.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, TypeAdapter, model_serializer

from reconciler.address import Address, Scope

if TYPE_CHECKING:
    from reconciler.observed import Observed
    from reconciler.spec import FailoverCluster
    from state.model import ManagedResource


class ActionKind(StrEnum):
    SET_HOST_OPTION = "set-host-option"
    RESERVE_LUN = "reserve-lun"
    ENABLE_CLUSTERED_VMDK = "enable-clustered-vmdk"
    SET_DRS_OVERRIDE = "set-drs-override"
    SET_HA_OVERRIDE = "set-ha-override"
    CREATE_RULE = "create-rule"
    UPDATE_RULE = "update-rule"
    DELETE_RULE = "delete-rule"
    SET_CLUSTER_OPTION = "set-cluster-option"  # a vSphere cluster's HA (das.*) or DRS advanced option
    SET_VM_HOST_RULE = "set-vm-host-rule"  # the nodes' VM-Host rule and its two DRS groups
    POWER_OFF = "power-off"
    ADD_CONTROLLER = "add-controller"
    EDIT_CONTROLLER = "edit-controller"
    DETACH_DISK = "detach-disk"
    CREATE_DISK = "create-disk"
    ATTACH_DISK = "attach-disk"
    REMOVE_NIC = "remove-nic"
    ADD_NIC = "add-nic"
    EDIT_NIC = "edit-nic"
    POWER_ON = "power-on"
    SET_GUEST_SETTING = "set-guest-setting"
    RECORD_NIC_SLOT = "record-nic-slot"  # nothing changes in vCenter: the state learns a moved adapter's slot
    # Decommissioning (`mscsctl destroy`): what mscsctl set up, taken away again.
    REMOVE_CONTROLLER = "remove-controller"
    REMOVE_DRS_OVERRIDE = "remove-drs-override"
    REMOVE_HA_OVERRIDE = "remove-ha-override"
    DELETE_VM_HOST_RULE = "delete-vm-host-rule"  # with its two DRS groups
    RELEASE_LUN = "release-lun"
    RESTORE_HOST_OPTION = "restore-host-option"


class Severity(StrEnum):
    """How serious a drift of this kind is."""

    CRITICAL = "critical"  # the cluster's storage safety is at stake
    WARNING = "warning"


class Payload(BaseModel):
    """The typed value of one managed object. Field aliases are the names plans and state show."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True, serialize_by_alias=True)

    # Fields left out of the JSON form while they are None (e.g. a power-on's `waitForTools`).
    omit_when_none: ClassVar[frozenset[str]] = frozenset()

    @model_serializer(mode="wrap")
    def _serialize(self, handler: Any) -> dict[str, Any]:
        data = handler(self)
        for name in self.omit_when_none:
            if data.get(name, 0) is None:
                del data[name]
        return data

    def fields(self) -> dict[str, Any]:
        """The JSON form: alias -> value, as plans, drift reports and the state carry it."""
        return self.model_dump(mode="json", by_alias=True)

    def field_value(self, name: str) -> Any:
        """One field by its JSON name (drift reports name the field that differs)."""
        return self.fields().get(name)

    def differing(self, other: Payload) -> tuple[str, ...]:
        """The JSON names of the fields whose values differ from `other`'s (either side may lack one)."""
        mine, theirs = self.fields(), other.fields()
        return tuple(sorted(k for k in mine.keys() | theirs.keys() if mine.get(k) != theirs.get(k)))


@dataclass(frozen=True)
class Context:
    """Facts derived once from spec + observed, shared by every kind and the planner."""

    vm_nodes: list[str]
    node_hosts: dict[str, str]
    vsphere_clusters: dict[str, str]  # vm -> vSphere cluster name, for VMs inside one
    version: tuple[int, int] | None
    reservation_hosts: dict[str, list[str]] = field(default_factory=dict)  # lun -> hosts
    # VMs that were nodes (the state says so) and still hold the cluster's disks (vCenter says
    # so): the cluster's devices are taken off them, after every node (`ownership.former_nodes`).
    former_nodes: list[str] = field(default_factory=list)

    @property
    def node_host_names(self) -> list[str]:
        return sorted(set(self.node_hosts.values()))


Managed = dict[Address, "ManagedResource"]
Tree = dict[Address, Payload]


@dataclass
class Unmanaged:
    """A device on a node that mscsctl neither created nor finds in the file: left alone."""

    vm: str
    description: str


@dataclass
class ObservedSide:
    """What the kinds fill when they read vCenter: the tree, and the devices left alone."""

    tree: Tree = field(default_factory=dict)
    unmanaged: list[Unmanaged] = field(default_factory=list)


DesiredFn = Callable[["FailoverCluster", Context, "Observed"], Iterable[tuple[Address, Payload]]]
ObservedFn = Callable[["FailoverCluster", "Observed", Context, Managed, ObservedSide], None]


@dataclass(frozen=True)
class ResourceKind:
    """One entry of the catalogue: everything mscsctl knows about one kind of managed object.

    `name` is the kind's word in addresses; `payload` validates its JSON form (a union for
    kinds with variants, such as RDM and shared-VMDK disks); `state_kind` says what the state
    records for an applied payload; `actions` are the action kinds that change it, in the
    order apply runs them within a node or host; `critical_fields` are the fields whose drift
    puts shared storage at risk (`critical_presence`: the object appearing or vanishing does).
    """

    name: str
    title: str
    scope: Scope
    payload: Any  # a Payload subclass, or an annotated union of them
    state_kind: Callable[[Payload], str]
    actions: tuple[ActionKind, ...]
    desired: DesiredFn | None = None
    observed: ObservedFn | None = None
    critical_fields: frozenset[str] = frozenset()
    critical_presence: bool = False
    doc: str = ""

    def parse(self, data: Any) -> Payload:
        return _adapter(self.payload).validate_python(data)

    def severity(self, changed_field: str | None) -> Severity:
        """`changed_field` None: the whole object is missing or extra."""
        if changed_field is None:
            return Severity.CRITICAL if self.critical_presence else Severity.WARNING
        return Severity.CRITICAL if changed_field in self.critical_fields else Severity.WARNING


_ADAPTERS: dict[int, TypeAdapter[Any]] = {}


def _adapter(tp: Any) -> TypeAdapter[Any]:
    key = id(tp)
    if key not in _ADAPTERS:
        _ADAPTERS[key] = TypeAdapter(tp)
    return _ADAPTERS[key]


def fixed(name: str) -> Callable[[Payload], str]:
    return lambda payload: name
