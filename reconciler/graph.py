"""A plan as a graph: its actions in order and the `depends_on` edges between them.

Each action is a box labelled `N. kind` (N its place in the plan) and what it changes,
grouped by where it lands: a host, the vSphere cluster (DRS/HA overrides and the VM-VM
rule, one reconfigure) or a VM node. An edge `A --> B` means B waits for A. Mermaid is what
GitHub and GitLab render inside Markdown; DOT is Graphviz's. IDs follow plan order (`a1`,
`a2`...; `c2_a1` in the second cluster of a fleet), so the same plan gives the same text.
The label escaping (`mermaid_label`, `dot_string`, `dot_label`) and the colours are the ones
`reconciler.topology` draws a cluster with, so both pictures read and escape alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from reconciler.diff import Op
from reconciler.findings import one_line
from reconciler.plan import Action, Plan


class GraphFormat(StrEnum):
    MERMAID = "mermaid"
    DOT = "dot"


# GitHub's Primer colours: added, changed, removed.
FILL = {Op.CREATE: "#dafbe1", Op.UPDATE: "#fff8c5", Op.DELETE: "#ffebe9"}
STROKE = {Op.CREATE: "#1a7f37", Op.UPDATE: "#9a6700", Op.DELETE: "#cf222e"}


@dataclass
class _Box:
    id: str
    lines: tuple[str, ...]
    op: Op | None = None


@dataclass
class _Group:
    id: str
    title: str
    boxes: list[_Box] = field(default_factory=list)


@dataclass
class _Section:
    """One cluster's plan: its groups of boxes and its edges."""

    id: str
    title: str
    groups: list[_Group] = field(default_factory=list)
    loose: list[_Box] = field(default_factory=list)  # the "no changes" box
    edges: list[tuple[str, str]] = field(default_factory=list)


def _where(action: Action) -> tuple[str, list[str]]:
    """The group an action belongs to, and its address relative to that group."""
    address = action.address
    rest = [address.kind] + ([address.name] if address.name else [])
    if address.on_host:
        return f"host {address.owner}", rest
    if action.vsphere_cluster is not None:
        name = action.vsphere_cluster
        title = f"vSphere cluster {name}" if name else "vSphere cluster"
        return title, [address.owner, *rest] if address.on_node else rest
    if address.on_node:
        return f"node {address.owner}", rest
    return "cluster", rest


def _section(plan: Plan, prefix: str) -> _Section:
    section = _Section(id=f"{prefix}cluster", title=f"cluster {plan.cluster}")
    ids = {a.id: f"{prefix}a{n}" for n, a in enumerate(plan.actions, 1)}
    groups: dict[str, _Group] = {}
    for n, action in enumerate(plan.actions, 1):
        title, rest = _where(action)
        group = groups.get(title)
        if group is None:
            group = groups[title] = _Group(id=f"{prefix}g{len(groups) + 1}", title=title)
            section.groups.append(group)
        label = (f"{n}. {action.kind}", "/".join(rest) or action.target)
        group.boxes.append(_Box(ids[action.id], label, action.op))
        section.edges += [(ids[dep], ids[action.id]) for dep in action.depends_on if dep in ids]
    if not plan.actions:
        section.loose.append(_Box(f"{prefix}a0", (f"{plan.cluster}: no changes",)))
    return section


# --- Mermaid -------------------------------------------------------------------------------


def _mermaid_text(text: str) -> str:
    """Text inside a quoted Mermaid label: entity codes for what Mermaid or HTML would read."""
    text = one_line(text).replace("#", "#35;")
    for char, code in (('"', "#quot;"), ("&", "#amp;"), ("<", "#lt;"), (">", "#gt;")):
        text = text.replace(char, code)
    return text


def mermaid_label(lines: tuple[str, ...]) -> str:
    """A quoted Mermaid label, its lines joined by `<br/>`: no name can close the quotes or add markup."""
    return '"' + "<br/>".join(_mermaid_text(line) for line in lines) + '"'


def _mermaid(sections: list[_Section], nested: bool) -> str:
    out = ["flowchart TD"]
    edges: list[tuple[str, str]] = []
    classes: dict[Op, list[str]] = {}
    for section in sections:
        indent = "  "
        if nested:
            out.append(f"  subgraph {section.id}[{mermaid_label((section.title,))}]")
            indent = "    "
        for box in section.loose:
            out.append(f"{indent}{box.id}[{mermaid_label(box.lines)}]")
        for group in section.groups:
            out.append(f"{indent}subgraph {group.id}[{mermaid_label((group.title,))}]")
            for box in group.boxes:
                out.append(f"{indent}  {box.id}[{mermaid_label(box.lines)}]")
                if box.op is not None:
                    classes.setdefault(box.op, []).append(box.id)
            out.append(f"{indent}end")
        if nested:
            out.append("  end")
        edges += section.edges
    out += [f"  {a} --> {b}" for a, b in edges]
    for op in (Op.CREATE, Op.UPDATE, Op.DELETE):
        if op in classes:
            out.append(f"  classDef {op} fill:{FILL[op]},stroke:{STROKE[op]},color:#1f2328")
            out.append(f"  class {','.join(classes[op])} {op}")
    return "\n".join(out) + "\n"


# --- DOT -----------------------------------------------------------------------------------


def dot_string(text: str) -> str:
    """A DOT quoted string (escString): backslashes and quotes escaped, control characters shown."""
    return '"' + one_line(text).replace("\\", "\\\\").replace('"', '\\"') + '"'


def dot_label(lines: tuple[str, ...]) -> str:
    # DOT's escString: `\n` is a centred line break, so the lines are joined inside the quotes.
    return '"' + "\\n".join(dot_string(line)[1:-1] for line in lines) + '"'


def _dot(title: str, sections: list[_Section], nested: bool) -> str:
    out = [
        f"digraph {dot_string(title)} {{",
        f"  graph [rankdir=TB, labelloc=t, fontname=Helvetica, label={dot_string(title)}];",
        '  node [shape=box, style="rounded,filled", fontname=Helvetica, fillcolor=white];',
        '  edge [color="#59636e"];',
    ]
    edges: list[tuple[str, str]] = []
    for section in sections:
        indent = "  "
        if nested:
            out.append(f"  subgraph cluster_{section.id} {{")
            out.append(f"    label={dot_string(section.title)};")
            indent = "    "
        for box in section.loose:
            out.append(f"{indent}{box.id} [label={dot_label(box.lines)}];")
        for group in section.groups:
            out.append(f"{indent}subgraph cluster_{group.id} {{")
            out.append(f"{indent}  label={dot_string(group.title)};")
            for box in group.boxes:
                colour = f', fillcolor="{FILL[box.op]}", color="{STROKE[box.op]}"' if box.op is not None else ""
                out.append(f"{indent}  {box.id} [label={dot_label(box.lines)}{colour}];")
            out.append(f"{indent}}}")
        if nested:
            out.append("  }")
        edges += section.edges
    out += [f"  {a} -> {b};" for a, b in edges]
    out.append("}")
    return "\n".join(out) + "\n"


# --- entry points --------------------------------------------------------------------------


def fleet_graph(plans: list[Plan], fmt: GraphFormat | str) -> str:
    """The plans of a fleet in one graph, a box a cluster (one plan: the same as `plan_graph`)."""
    fmt = GraphFormat(fmt)
    nested = len(plans) > 1
    sections = [_section(plan, f"c{n}_" if nested else "") for n, plan in enumerate(plans, 1)]
    if fmt is GraphFormat.MERMAID:
        return _mermaid(sections, nested)
    title = "mscsctl plan: " + ", ".join(p.cluster for p in plans)
    return _dot(title, sections, nested)


def plan_graph(plan: Plan, fmt: GraphFormat | str) -> str:
    """`fmt` is `mermaid` or `dot`; a plan without actions is one box saying so."""
    return fleet_graph([plan], fmt)
