"""Plans as text a person reads (in Terraform's manner) and as versioned JSON a pipeline reads."""

from __future__ import annotations

import json
from typing import Any

from reconciler.diff import Op
from reconciler.plan import PLAN_FORMAT_VERSION, REASON_TEXT, SYMBOL, Action, ActionKind, Plan
from reconciler.values import show_value as _value

STYLE = {Op.CREATE: "green", Op.UPDATE: "yellow", Op.DELETE: "red"}


def summary(action: Action) -> str:
    """One line saying what changes: `sharing: none -> physical`, or the new object's fields."""
    before = action.before.fields() if action.before else {}
    after = action.after.fields() if action.after else {}
    if action.kind in (ActionKind.POWER_OFF, ActionKind.POWER_ON):
        return f"{before.get('state', '?')} -> {after.get('state', '?')}"
    if action.kind in (ActionKind.DETACH_DISK, ActionKind.REMOVE_NIC) and action.op is not Op.UPDATE:
        return ", ".join(f"{k}={_value(v)}" for k, v in before.items())
    if before and after:
        changed = [k for k in after if before.get(k) != after.get(k)]
        if changed:
            return ", ".join(f"{k}: {_value(before.get(k))} -> {_value(after[k])}" for k in changed)
    return ", ".join(f"{k}={_value(v)}" for k, v in after.items() if k != "waitForTools")


def counts(plan: Plan) -> dict[str, int]:
    out = {"create": 0, "update": 0, "delete": 0}
    for action in plan.actions:
        out[str(action.op)] += 1
    return out


def render_text(plan: Plan) -> str:
    """Markup for a rich console (colours are dropped when the console has none)."""
    lines: list[str] = []
    if not plan.actions:
        lines.append(f"[bold]{plan.cluster}[/]: no changes. vCenter matches the desired file.")
    else:
        version = f" (vSphere {plan.vsphere_version})" if plan.vsphere_version else ""
        lines.append(f"mscsctl will perform these actions on [bold]{plan.cluster}[/]{version}, in this order:")
        lines.append("")
        for n, action in enumerate(plan.actions, 1):
            style = STYLE[action.op]
            symbol = SYMBOL[action.op]
            lines.append(f"  [{style}]{symbol}[/] {n:>2}. [bold]{_esc(str(action.address))}[/]  {action.kind}")
            lines.append(f"        {_esc(summary(action))}")
            why = REASON_TEXT[action.reason]
            rule = f" [{_esc(action.rule)}]" if action.rule else ""
            lines.append(f"        [dim]why: {why}{_esc(rule)}[/]")
        c = counts(plan)
        lines.append("")
        lines.append(f"Plan: {c['create']} to add, {c['update']} to change, {c['delete']} to detach.")
    for note in plan.notes:
        lines.append(f"[yellow]Note:[/] {_esc(note)}")
    for finding in plan.findings:
        lines.append(f"[yellow]Warning:[/] {_esc(str(finding))}")
    if plan.unmanaged:
        lines.append("Left alone (not created by mscsctl, not in the desired file):")
        lines += [f"  {_esc(u)}" for u in plan.unmanaged]
    return "\n".join(lines)


def _esc(text: str) -> str:
    return text.replace("[", "\\[")


def plan_json(plan: Plan) -> dict[str, Any]:
    """The documented machine form (docs/plan-format.md); `format_version` changes on breaking edits."""
    data = plan.model_dump(mode="json")
    data["format_version"] = PLAN_FORMAT_VERSION
    data["summary"] = counts(plan)
    return data


def plan_from_json(text: str) -> Plan:
    data = json.loads(text)
    data.pop("summary", None)
    return Plan.model_validate(data)
