"""Drift: what vCenter shows now against the desired file and against what was last applied.

Pure: the same normalized trees and diff as the plan, each difference turned into a finding
that says what changed, what the file wants, what mscsctl last applied and when, whether it
was changed outside mscsctl since, how serious it is and the command that fixes it.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from reconciler import normalize
from reconciler.address import Address
from reconciler.diff import Change, Op, diff_trees
from reconciler.kinds import Managed, kind_named
from reconciler.kinds import Severity as DriftSeverity
from reconciler.kinds.disk import NAME as DISK
from reconciler.kinds.ownership import former_nodes, held_outside
from reconciler.nic_slots import moved_nics
from reconciler.observed import Observed
from reconciler.plan import UncheckedPart
from reconciler.planner import unchecked_guests
from reconciler.rules.catalogue import target_version
from reconciler.rules.forbidden import ForbiddenSetting, forbidden_settings
from reconciler.spec import FailoverCluster
from reconciler.values import show_value
from state.model import State

DRIFT_FORMAT_VERSION = 1

__all__ = ["DRIFT_FORMAT_VERSION", "DriftFinding", "DriftReport", "DriftSeverity", "detect_drift", "severity_of"]


class DriftFinding(BaseModel):
    model_config = ConfigDict(frozen=True)

    cluster: str
    address: Address
    object: str  # controller, disk, nic, power, drs, ha, option, lun, rule, guest; snapshot, hotadd, ft
    field: str  # the field that differs ("" when the whole object is missing or extra)
    desired: Any = None
    observed: Any = None
    last_applied: Any = None
    last_applied_at: str | None = None
    changed_outside: bool  # vCenter differs from what mscsctl last applied
    severity: DriftSeverity
    fix: str
    rule: str | None = None  # the catalogue rule a finding of a forbidden setting breaks

    @property
    def summary(self) -> str:
        field = f".{self.field}" if self.field else ""
        return f"{self.address}{field}: {show_value(self.observed)} (desired {show_value(self.desired)})"


class DriftReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    format_version: int = DRIFT_FORMAT_VERSION
    cluster: str
    desired_file: str
    checked_at: str
    findings: list[DriftFinding] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    unchecked: list[UncheckedPart] = Field(default_factory=list)  # parts of the file not compared
    # `--target`: only the objects these name were compared (the rest of the file was not).
    partial: bool = False
    targets: list[str] = Field(default_factory=list)

    @property
    def drifted(self) -> bool:
        return bool(self.findings)

    @property
    def complete(self) -> bool:
        """Every part of the file was compared, but those the user left out on purpose (--skip-guest)."""
        return all(u.on_purpose for u in self.unchecked)

    @property
    def critical(self) -> int:
        return sum(1 for f in self.findings if f.severity is DriftSeverity.CRITICAL)


def severity_of(object_type: str, field: str, op: Op) -> DriftSeverity:
    """From the kind's catalogue entry: a shared disk or its controller appearing or vanishing,
    or disagreeing on how it is shared, puts the data at risk."""
    return kind_named(object_type).severity(field if op is Op.UPDATE else None)


def detect_drift(
    cluster: FailoverCluster,
    observed: Observed,
    state: State | None,
    *,
    desired_file: str,
    checked_at: str,
    fix_command: str | None = None,
) -> DriftReport:
    """`fix_command` is the command that makes vCenter match the file, as it must be typed
    (the state options of the run included); `mscsctl apply DESIRED_FILE` when not given."""
    version = target_version(cluster, observed)
    ctx = normalize.context(cluster, observed, version)
    managed: Managed = state.managed() if state else {}
    notes = []
    missing = [vm for vm in ctx.vm_nodes if vm not in observed.vms]
    unchecked = [
        UncheckedPart(node=vm, part="vm", reason="vm-not-found", detail=f"VM {vm} not found in vCenter")
        for vm in missing
    ]
    unchecked += [u for u in unchecked_guests(cluster, observed, powered_off_planned=False) if u.node not in missing]
    if observed.guests is not None:
        unseen = {n: g for n, g in observed.guests.items() if not g.available}
        notes += [
            f"{n}: guest not observed: {g.detail} [{g.reason}]"
            for n, g in sorted(unseen.items())
            if n in cluster.spec.node_names
        ]
        observed = observed.model_copy(update={"guests": {n: g for n, g in observed.guests.items() if g.available}})
    desired = normalize.desired_tree(cluster, ctx, observed)
    current, _ = normalize.observed_tree(cluster, observed, ctx, managed)
    findings: list[DriftFinding] = []
    fix = fix_command or f"mscsctl apply {desired_file}"
    if missing:
        notes.append("VM not found in vCenter: " + ", ".join(missing))
    for change in diff_trees(current, desired):
        findings += _findings_for(cluster.name, change, state, fix)
    findings += _lun_mapped_twice(cluster, observed, ctx, fix)
    findings += _held_outside(cluster, observed, managed, fix)
    findings += _moved_nics(cluster, observed, state, managed, fix)
    settings = forbidden_settings(cluster, observed, version)
    findings += [_forbidden(cluster.name, s) for s in settings if not s.note_only]
    notes += [f"{s.message} (fix: {s.fix}) [{s.rule_id}]" for s in settings if s.note_only]
    return DriftReport(
        cluster=cluster.name,
        desired_file=desired_file,
        checked_at=checked_at,
        findings=findings,
        notes=notes,
        unchecked=unchecked,
    )


def _findings_for(cluster: str, change: Change, state: State | None, fix: str) -> list[DriftFinding]:
    resource = state.get(change.address) if state else None
    applied_at = resource.applied_at if resource else None
    object_type = change.object_type
    out = []
    if change.op is Op.UPDATE and change.before is not None and change.after is not None:
        for field in change.fields:
            observed_value = change.before.field_value(field)
            last = resource.applied_value(field) if resource else None
            out.append(
                DriftFinding(
                    cluster=cluster,
                    address=change.address,
                    object=object_type,
                    field=field,
                    desired=change.after.field_value(field),
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
            desired=change.after.fields() if change.after else None,
            observed=change.before.fields() if change.before else None,
            last_applied=dict(resource.applied) if resource and resource.applied else None,
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
                        address=Address.node(cluster.name, vm, DISK),
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


def _held_outside(cluster: FailoverCluster, observed: Observed, managed: Managed, fix: str) -> list[DriftFinding]:
    """A LUN or shared file of the cluster that a VM other than its nodes holds: critical, two
    systems writing one disk. A former node (the state says it was one) is fixed by apply."""
    former = set(former_nodes(cluster, observed, managed))
    nodes = ", ".join(cluster.spec.vm_names) or "no VM"
    out = []
    for held in held_outside(cluster, observed):
        if held.vm.name in former:
            how = f"{fix} (it was a node: apply takes the cluster's devices off it)"
        else:
            how = f"detach it from {held.vm.name} by hand (mscsctl changes only the nodes and the former nodes)"
        out.append(
            DriftFinding(
                cluster=cluster.name,
                address=Address.node(cluster.name, held.vm.name, DISK, held.name),
                object="disk",
                field="lun" if held.disk.kind == "rdm" else "file",
                desired=f"{held.what} held by the nodes only ({nodes})",
                observed=f"{held.what}: {held.where}, not a node",
                changed_outside=True,
                severity=DriftSeverity.CRITICAL,
                fix=how,
            )
        )
    return out


def _moved_nics(
    cluster: FailoverCluster, observed: Observed, state: State | None, managed: Managed, fix: str
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


def _forbidden(cluster: str, setting: ForbiddenSetting) -> DriftFinding:
    """A setting VMware does not support on a clustered node, made by hand: apply does not undo
    it (mscsctl never sets it), so the fix is what the administrator does."""
    return DriftFinding(
        cluster=cluster,
        address=Address.node(cluster, setting.vm, setting.kind, setting.name),
        object=setting.kind,
        field=setting.field,
        desired=setting.desired,
        observed=setting.observed,
        changed_outside=True,
        severity=DriftSeverity.CRITICAL if setting.critical else DriftSeverity.WARNING,
        fix=f"{setting.fix} [{setting.rule_id}]",
        rule=setting.rule_id,
    )
