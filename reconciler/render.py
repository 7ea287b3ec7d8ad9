"""Plans as text a person reads, in Terraform's manner (the JSON form is `reconciler.plan_file`)."""

from __future__ import annotations

from reconciler.diff import Op
from reconciler.kinds import Payload
from reconciler.kinds.power import PowerPayload
from reconciler.plan import REASON_TEXT, SYMBOL, Action, ActionKind, Plan
from reconciler.values import show_value as _value

STYLE = {Op.CREATE: "green", Op.UPDATE: "yellow", Op.DELETE: "red"}


def summary(action: Action) -> str:
    """One line saying what changes: `sharing: none -> physical`, or the new object's fields."""
    before, after = action.before, action.after
    if isinstance(before, PowerPayload) and isinstance(after, PowerPayload):
        return f"{before.state} -> {after.state}"
    if after is None or (action.kind in (ActionKind.DETACH_DISK, ActionKind.REMOVE_NIC) and action.op is not Op.UPDATE):
        return _listed(before)
    if before is not None:
        differing = set(after.differing(before))
        changed = [k for k in after.fields() if k in differing]
        if changed:
            return ", ".join(f"{k}: {_value(before.field_value(k))} -> {_value(after.field_value(k))}" for k in changed)
    return _listed(after)


def _listed(payload: Payload | None) -> str:
    fields = payload.fields() if payload is not None else {}
    return ", ".join(f"{k}={_value(v)}" for k, v in fields.items() if k != "waitForTools")


def counts(plan: Plan) -> dict[str, int]:
    out = {"create": 0, "update": 0, "delete": 0}
    for action in plan.actions:
        out[str(action.op)] += 1
    return out


def render_text(plan: Plan) -> str:
    """Markup for a rich console (colours are dropped when the console has none)."""
    lines: list[str] = []
    if not plan.actions and plan.destroy:
        record = " apply records it as destroyed in the state." if plan.records_destroyed else ""
        lines.append(f"[bold]{plan.cluster}[/]: nothing of mscsctl's left to remove in vCenter.{record}")
    elif not plan.actions:
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
        if plan.destroy:
            lines.append(f"Destroy: {c['delete']} to remove, {c['update']} to change (power, reservations, options).")
        else:
            lines.append(f"Plan: {c['create']} to add, {c['update']} to change, {c['delete']} to detach.")
    if plan.kept:
        lines.append("Kept (destroy leaves these in place):")
        lines += [f"  {_esc(k)}" for k in plan.kept]
    for note in plan.notes:
        lines.append(f"[yellow]Note:[/] {_esc(note)}")
    for finding in plan.findings:
        lines.append(f"[yellow]{_esc(str(finding))}[/]")  # the finding says "warning:" itself
    if plan.unmanaged:
        lines.append("Left alone (not created by mscsctl, not in the desired file):")
        lines += [f"  {_esc(u)}" for u in plan.unmanaged]
    return "\n".join(lines)


def _esc(text: str) -> str:
    return text.replace("[", "\\[")
