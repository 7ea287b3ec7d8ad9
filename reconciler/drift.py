"""Drift: what vCenter shows now against the desired file and against what was last applied.

Pure: the same normalized trees and diff as the plan, each difference turned into a finding
that says what changed, what the file wants, what mscsctl last applied and when, whether it
was changed outside mscsctl since, how serious it is and the command that fixes it.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from reconciler import normalize
from reconciler.diff import Change, Op, diff_trees
from reconciler.nic_slots import moved_nics
from reconciler.observed import Observed
from reconciler.planner import resolve_version
from reconciler.spec import FailoverCluster
from state.model import State

DRIFT_FORMAT_VERSION = 1


class DriftSeverity(StrEnum):
    CRITICAL = "critical"  # the cluster's storage safety is at stake
    WARNING = "warning"


# Fields whose drift puts shared storage at risk: two nodes that disagree on how a disk is
# shared can corrupt it.
_CRITICAL_FIELDS = {
    ("controller", "sharing"),
    ("controller", "type"),
    ("disk", "compatibility"),
    ("disk", "unit"),
    ("disk", "bus"),
    ("disk", "lun"),
    ("disk", "file"),
    ("disk", "kind"),
}


class DriftFinding(BaseModel):
    model_config = ConfigDict(frozen=True)

    cluster: str
    address: str
    object: str  # controller, disk, nic, power, drs, ha, option, lun, rule, guest
    field: str  # the field that differs ("" when the whole object is missing or extra)
    desired: Any = None
    observed: Any = None
    last_applied: Any = None
    last_applied_at: str | None = None
    changed_outside: bool  # vCenter differs from what mscsctl last applied
    severity: DriftSeverity
    fix: str

    @property
    def summary(self) -> str:
        field = f".{self.field}" if self.field else ""
        return f"{self.address}{field}: {_show(self.observed)} (desired {_show(self.desired)})"


class DriftReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    format_version: int = DRIFT_FORMAT_VERSION
    cluster: str
    desired_file: str
    checked_at: str
    findings: list[DriftFinding] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)

    @property
    def drifted(self) -> bool:
        return bool(self.findings)

    @property
    def critical(self) -> int:
        return sum(1 for f in self.findings if f.severity is DriftSeverity.CRITICAL)


def _show(value: Any) -> str:
    if value is None:
        return "absent"
    return str(value)


def severity_of(object_type: str, field: str, op: Op) -> DriftSeverity:
    if object_type in ("controller", "disk"):
        if op is not Op.UPDATE:
            return DriftSeverity.CRITICAL  # a shared disk or its controller appeared or vanished
        if (object_type, field) in _CRITICAL_FIELDS:
            return DriftSeverity.CRITICAL
    return DriftSeverity.WARNING


def detect_drift(
    cluster: FailoverCluster,
    observed: Observed,
    state: State | None,
    *,
    desired_file: str,
    checked_at: str,
) -> DriftReport:
    version = resolve_version(cluster, observed)
    ctx = normalize.context(cluster, observed, version)
    managed = {a: r.model_dump() for a, r in state.resources.items()} if state else {}
    notes = []
    if observed.guests is not None:
        unseen = {n: g for n, g in observed.guests.items() if not g.available}
        notes += [
            f"{n}: guest not observed: {g.detail} [{g.reason}]"
            for n, g in sorted(unseen.items())
            if n in normalize.node_names(cluster)
        ]
        observed = observed.model_copy(update={"guests": {n: g for n, g in observed.guests.items() if g.available}})
    desired = normalize.desired_tree(cluster, ctx, observed)
    current, _ = normalize.observed_tree(cluster, observed, ctx, managed)
    findings: list[DriftFinding] = []
    fix = f"mscsctl apply {desired_file}"
    missing = [vm for vm in ctx.vm_nodes if vm not in observed.vms]
    if missing:
        notes.append("VM not found in vCenter: " + ", ".join(missing))
    for change in diff_trees(current, desired):
        findings += _findings_for(cluster.name, change, state, fix)
    findings += _lun_mapped_twice(cluster, observed, ctx, fix)
    findings += _moved_nics(cluster, observed, state, managed, fix)
    return DriftReport(
        cluster=cluster.name,
        desired_file=desired_file,
        checked_at=checked_at,
        findings=findings,
        notes=notes,
    )


def _findings_for(cluster: str, change: Change, state: State | None, fix: str) -> list[DriftFinding]:
    resource = state.get(change.address) if state else None
    applied = dict(resource.applied) if resource else {}
    applied_at = resource.applied_at if resource else None
    object_type = change.object_type
    out = []
    if change.op is Op.UPDATE:
        for field in change.fields:
            observed_value = (change.before or {}).get(field)
            last = applied.get(field) if resource else None
            out.append(
                DriftFinding(
                    cluster=cluster,
                    address=change.address,
                    object=object_type,
                    field=field,
                    desired=(change.after or {}).get(field),
                    observed=observed_value,
                    last_applied=last,
                    last_applied_at=applied_at,
                    changed_outside=resource is not None and last != observed_value,
                    severity=severity_of(object_type, field, change.op),
                    fix=fix,
                )
            )
        return out
    return [
        DriftFinding(
            cluster=cluster,
            address=change.address,
            object=object_type,
            field="",
            desired=change.after,
            observed=change.before,
            last_applied=applied or None,
            last_applied_at=applied_at,
            changed_outside=resource is not None,
            severity=severity_of(object_type, "", change.op),
            fix=fix,
        )
    ]


def _lun_mapped_twice(
    cluster: FailoverCluster, observed: Observed, ctx: normalize.Context, fix: str
) -> list[DriftFinding]:
    """A LUN of the cluster mapped at two units of one node: two paths to one disk."""
    out = []
    for vm in ctx.vm_nodes:
        node = observed.vms.get(vm)
        if node is None:
            continue
        seen: dict[str, str] = {}
        for slot, disk in sorted(node.disks.items()):
            if disk.lun is None:
                continue
            if disk.lun in seen:
                out.append(
                    DriftFinding(
                        cluster=cluster.name,
                        address=normalize.node_address(cluster, vm, "disk"),
                        object="disk",
                        field="lun",
                        desired=f"{disk.lun} mapped once",
                        observed=f"{disk.lun} at SCSI {seen[disk.lun]} and {slot}",
                        changed_outside=True,
                        severity=DriftSeverity.CRITICAL,
                        fix=f"detach the extra mapping by hand, then {fix}",
                    )
                )
            seen[disk.lun] = slot
    return out


def _moved_nics(
    cluster: FailoverCluster, observed: Observed, state: State | None, managed: dict[str, Any], fix: str
) -> list[DriftFinding]:
    """An adapter in another PCI slot than recorded: Windows sees a new adapter without its IP settings."""
    out = []
    for moved in moved_nics(cluster, observed, managed):
        resource = state.get(moved.address) if state else None
        out.append(
            DriftFinding(
                cluster=cluster.name,
                address=moved.address,
                object="nic",
                field="pciSlot",
                desired=moved.recorded,
                observed=moved.now,
                last_applied=moved.recorded,
                last_applied_at=resource.applied_at if resource else None,
                changed_outside=True,
                severity=DriftSeverity.WARNING,
                fix=f"set the adapter's IP settings in Windows again, then {fix} (records the new slot)",
            )
        )
    return out
