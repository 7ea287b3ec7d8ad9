"""Placement in the vSphere cluster: the nodes' DRS and HA overrides and the VM-VM rule.

All of a vSphere cluster's placement actions go to vCenter in one ReconfigureComputeResource_Task
(one batch). Each is compared, as observe converts it, with the cluster's configuration read
right before; only what differs is in the spec.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pyVmomi import vim

from providers.vcenter.handlers.base import ApplyContext, after
from providers.vcenter.observe import CLUSTER_PATHS, observed_cluster
from reconciler.errors import MscsError
from reconciler.kinds import ActionKind, Payload
from reconciler.kinds.placement import DrsOverridePayload, HaOverridePayload, VmRulePayload
from reconciler.observed import ObservedCluster
from reconciler.outcome import Outcome, done, skipped
from reconciler.plan import Action

RULE_CLASSES: dict[str, type] = {
    "anti-affinity": vim.cluster.AntiAffinityRuleSpec,
    "affinity": vim.cluster.AffinityRuleSpec,
}
RULE_ACTIONS = (ActionKind.CREATE_RULE, ActionKind.UPDATE_RULE, ActionKind.DELETE_RULE)
BATCH_ACTIONS = (ActionKind.SET_DRS_OVERRIDE, ActionKind.SET_HA_OVERRIDE, *RULE_ACTIONS)


@dataclass
class ClusterBatch:
    """The vSphere cluster as just read, and the specs its batch's actions add."""

    obj: Any
    now: ObservedCluster
    ha_entries: set[str]  # morefs of the VMs with an HA entry, with or without settings
    drs: list[Any] = field(default_factory=list)
    das: list[Any] = field(default_factory=list)
    rules: list[Any] = field(default_factory=list)

    @classmethod
    def read(cls, ctx: ApplyContext, obj: Any) -> ClusterBatch:
        return cls.of(ctx, obj, ctx.read(obj, CLUSTER_PATHS))

    @classmethod
    def of(cls, ctx: ApplyContext, obj: Any, props: dict[str, Any]) -> ClusterBatch:
        """The cluster's batch from its `CLUSTER_PATHS` just read."""
        if not props:
            raise MscsError(f"vSphere cluster {obj._moId} is gone from vCenter")
        vm_names = {vm.moref: name for name, vm in ctx.observed.vms.items()}
        host_names = {host.moref: name for name, host in ctx.observed.hosts.items()}
        cfg = props.get("configurationEx")
        ha_entries = {e.key._moId for e in cfg.dasVmConfig or []} if cfg is not None else set()
        return cls(obj, observed_cluster(obj, props, vm_names, host_names), ha_entries)

    @property
    def specs(self) -> bool:
        return bool(self.drs or self.das or self.rules)


def reconfigure_cluster(ctx: ApplyContext, step: list[Action]) -> list[Outcome]:
    name = step[0].vsphere_cluster or ""
    cluster = ctx.observed.clusters.get(name)
    if cluster is None:
        raise MscsError(f"{step[0].address}: vSphere cluster {name!r} not found")
    obj = ctx.stub(vim.ClusterComputeResource, cluster.moref)
    batch = ClusterBatch.read(ctx, obj)
    planned = [_plan(ctx, batch, action) for action in step]
    rule_keys: dict[str, int] = {}
    if batch.specs:
        spec = vim.cluster.ConfigSpecEx(drsVmConfigSpec=batch.drs, dasVmConfigSpec=batch.das, rulesSpec=batch.rules)
        # the rules' keys, which vCenter gives, read with the task's end
        props = ctx.run_task(
            f"reconfigure vSphere cluster {name}",
            lambda: obj.ReconfigureComputeResource_Task(spec=spec, modify=True),
            then_read={obj: CLUSTER_PATHS} if batch.rules else None,
        )
        if batch.rules:
            rule_keys = {n: r.key for n, r in ClusterBatch.of(ctx, obj, props.get(obj._moId, {})).now.rules.items()}
    return [
        outcome
        or done(
            action,
            cluster_moref=cluster.moref,
            rule_key=rule_keys.get(action.address.name) if action.kind in RULE_ACTIONS else None,
        )
        for action, outcome in zip(step, planned, strict=True)
    ]


def _plan(ctx: ApplyContext, batch: ClusterBatch, action: Action) -> Outcome | None:
    """Skipped when vCenter already shows `after`; otherwise the action's specs join the batch."""
    if _observed(batch, action) == action.after:
        rule = batch.now.rules.get(action.address.name) if action.kind in RULE_ACTIONS else None
        detail = "already gone" if action.kind is ActionKind.DELETE_RULE else "already set"
        return skipped(action, detail, rule_key=rule.key if rule is not None else None)
    _BUILDERS[action.kind](ctx, batch, action)
    return None


def _observed(batch: ClusterBatch, action: Action) -> Payload | None:
    """The action's object in the cluster just read, as observe converts it (None: absent)."""
    vm = action.address.owner
    if action.kind is ActionKind.SET_DRS_OVERRIDE:
        behavior = batch.now.drs_overrides.get(vm)
        return DrsOverridePayload(behavior=behavior) if behavior is not None else None
    if action.kind is ActionKind.SET_HA_OVERRIDE:
        restart = batch.now.ha_overrides.get(vm)
        return HaOverridePayload(restart=restart) if restart is not None else None
    rule = batch.now.rules.get(action.address.name)
    return VmRulePayload(kind=rule.kind, vms=sorted(rule.vms), enabled=rule.enabled) if rule is not None else None


def _drs_override(ctx: ApplyContext, batch: ClusterBatch, action: Action) -> None:
    want = after(action, DrsOverridePayload)
    vm_name = action.address.owner
    info = vim.cluster.DrsVmConfigInfo(key=ctx.vm(vm_name), enabled=want.behavior != "disabled")
    if want.behavior != "disabled":
        info.behavior = want.behavior
    operation = "edit" if vm_name in batch.now.drs_overrides else "add"
    batch.drs.append(vim.cluster.DrsVmConfigSpec(operation=operation, info=info))


def _ha_override(ctx: ApplyContext, batch: ClusterBatch, action: Action) -> None:
    vm = ctx.vm(action.address.owner)
    restart = "disabled" if after(action, HaOverridePayload).restart == "disabled" else "medium"
    info = vim.cluster.DasVmConfigInfo(key=vm, dasSettings=vim.cluster.DasVmSettings(restartPriority=restart))
    operation = "edit" if vm._moId in batch.ha_entries else "add"
    batch.das.append(vim.cluster.DasVmConfigSpec(operation=operation, info=info))


def _vm_rule(ctx: ApplyContext, batch: ClusterBatch, action: Action) -> None:
    name = action.address.name
    current = batch.now.rules.get(name)
    if current is not None and (
        action.kind is ActionKind.DELETE_RULE or current.kind != after(action, VmRulePayload).kind
    ):
        # Deleted, or affinity <-> anti-affinity (another rule type): remove, then add.
        batch.rules.append(vim.cluster.RuleSpec(operation="remove", removeKey=current.key))
        current = None
    if action.kind is ActionKind.DELETE_RULE:
        return
    want = after(action, VmRulePayload)
    info = RULE_CLASSES[want.kind](name=name, enabled=want.enabled, vm=[ctx.vm(v) for v in want.vms])
    if current is not None:
        info.key = current.key
    batch.rules.append(vim.cluster.RuleSpec(operation="add" if current is None else "edit", info=info))


_BUILDERS: dict[ActionKind, Callable[[ApplyContext, ClusterBatch, Action], None]] = {
    ActionKind.SET_DRS_OVERRIDE: _drs_override,
    ActionKind.SET_HA_OVERRIDE: _ha_override,
    ActionKind.CREATE_RULE: _vm_rule,
    ActionKind.UPDATE_RULE: _vm_rule,
    ActionKind.DELETE_RULE: _vm_rule,
}
