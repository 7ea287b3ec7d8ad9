"""A cluster as a picture: what vCenter shows and what the desired file asks for, in one graph.

`mscsctl graph --view topology` draws the nodes on their ESXi hosts (grouped by vSphere
cluster), each node's shared SCSI controller, its clustered disks at their `bus:unit`, the
LUN or shared VMDK file behind each disk, each node's adapters on the two port groups, and
the VM-VM rule. It is drawn from the planner's own trees (`normalize.desired_tree` and
`normalize.observed_tree`, keyed by `Address`), so the picture and the plan cannot disagree:
an object in the desired tree only is "in the file, not in vCenter", one in the observed
tree only is "in vCenter, not in the file", one in both whose payloads differ names each
field with both values. Those are coloured as the plan graph colours what apply would do to
them (add, remove, change) and explained in a legend; an applied cluster has no marks.

Host options, LUN reservations, DRS/HA overrides and the guest's disk timeout are settings
rather than topology: `plan` and `drift` show them. Pure: no I/O; IDs are numbered in file
order (`n1`, `n1_2`, `s1`...; `c2_` in the second cluster of a fleet), so the same inputs give
the same text.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum

from reconciler import normalize
from reconciler.address import Address, Scope
from reconciler.diff import Op
from reconciler.graph import FILL, STROKE, GraphFormat, dot_label, dot_string, mermaid_label
from reconciler.kinds import Managed, Payload, Tree, Unmanaged
from reconciler.kinds.controller import ControllerPayload
from reconciler.kinds.disk import RdmDiskPayload, VmdkDiskPayload
from reconciler.kinds.nic import NicPayload
from reconciler.kinds.placement import VmRulePayload
from reconciler.observed import Observed
from reconciler.rules.catalogue import target_version
from reconciler.spec import NIC_ROLES, FailoverCluster, PhysicalNode, VmNode
from reconciler.values import show_value

__all__ = ["LEGEND", "ClusterView", "Mark", "fleet_topology", "topology_graph"]


class Mark(StrEnum):
    """How an element of the picture stands between the file and vCenter (none: they agree)."""

    MISSING = "missing"
    EXTRA = "extra"
    DIFFERS = "differs"


LEGEND = {
    Mark.MISSING: "in the file, not in vCenter",
    Mark.EXTRA: "in vCenter, not in the file",
    Mark.DIFFERS: "differs: FIELD vCenter X, file Y",
}
# The plan graph's colours for what apply would do: add it, remove it, change it.
_OP = {Mark.MISSING: Op.CREATE, Mark.EXTRA: Op.DELETE, Mark.DIFFERS: Op.UPDATE}
_NODE_KINDS = ("controller", "disk", "nic")  # drawn inside a node, in this order


@dataclass(frozen=True)
class ClusterView:
    """One cluster to draw: its desired file (defaults filled), what vCenter shows, and the
    state's record (`State.managed()`), which names devices the file no longer describes."""

    cluster: FailoverCluster
    observed: Observed
    managed: Managed | None = None


@dataclass
class _Box:
    id: str
    lines: list[str]
    shape: str = "box"  # box | round | storage | network
    mark: Mark | None = None


@dataclass
class _Group:
    id: str
    title: str
    mark: Mark | None = None
    groups: list[_Group] = field(default_factory=list)
    boxes: list[_Box] = field(default_factory=list)


@dataclass(frozen=True)
class _Edge:
    a: str
    b: str
    solid: bool  # False: on one side only (the file's or vCenter's), drawn dotted
    long: bool = False  # an adapter to its port group: one rank further, beside the LUNs


@dataclass
class _Section:
    id: str
    title: str
    groups: list[_Group] = field(default_factory=list)
    boxes: list[_Box] = field(default_factory=list)
    edges: list[_Edge] = field(default_factory=list)

    def marks(self) -> set[Mark]:
        return {item.mark for _, item, _ in _walk(self.groups, self.boxes, "") if item.mark is not None}


@dataclass
class _Shared:
    """A LUN, a shared VMDK file or a port group: one box, whichever nodes point at it."""

    box: _Box
    in_file: bool = False
    in_vcenter: bool = False

    def settle(self) -> None:
        if not self.in_file:
            self.box.mark = Mark.EXTRA
        elif not self.in_vcenter:
            self.box.mark = Mark.MISSING


def _compare(want: Payload | None, have: Payload | None) -> tuple[Mark | None, list[str]]:
    """The element's mark, and a `differs:` line per field whose values are not the same."""
    if have is None:
        return Mark.MISSING, []
    if want is None:
        return Mark.EXTRA, []
    lines = [
        f"differs: {name} vCenter {show_value(have.field_value(name))}, file {show_value(want.field_value(name))}"
        for name in want.differing(have)
    ]
    return (Mark.DIFFERS if lines else None), lines


def _file_parts(file: str) -> list[str]:
    """`[DS] folder/name.vmdk` as the datastore and the path in it."""
    if file.startswith("[") and "] " in file:
        datastore, path = file[1:].split("] ", 1)
        return [f"datastore {datastore}", path]
    return ["file", file]


class _Builder:
    """One cluster's section: its groups (vSphere cluster > host > node), boxes and edges."""

    def __init__(self, view: ClusterView, prefix: str) -> None:
        cluster, observed = view.cluster, view.observed
        # The planner's own steps (`planner.build_plan`), without the rules and the ordering.
        ctx = normalize.context(cluster, observed, target_version(cluster, observed), view.managed)
        self.want: Tree = normalize.desired_tree(cluster, ctx, observed)
        self.have: Tree
        self.have, self.unmanaged = normalize.observed_tree(cluster, observed, ctx, view.managed)
        self.cluster, self.observed, self.prefix = cluster, observed, prefix
        self.section = _Section(id=f"{prefix}cluster", title=f"cluster {cluster.name}")
        self.vclusters: dict[str, _Group] = {}
        self.hosts: dict[str, _Group] = {}
        self.nodes = 0
        self.storage: dict[str, _Shared] = {}
        self.networks: dict[str, _Shared] = {}

    def build(self) -> _Section:
        for node in self.cluster.spec.nodes:
            if isinstance(node, VmNode):
                self._vm(node.vm, in_file=True)
            else:
                self._physical(node)
        files = set(self.cluster.spec.vm_names)
        for vm in sorted({a.owner for a in self._drawn() if a.on_node and a.owner not in files}):
            self._vm(vm, in_file=False)  # a former node that still holds the cluster's devices
        self._rules()
        for shared in [*self.storage.values(), *self.networks.values()]:
            shared.settle()
            self.section.boxes.append(shared.box)
        return self.section

    def _drawn(self) -> Iterable[Address]:
        for address in self.want.keys() | self.have.keys():
            if (address.on_node and address.kind in _NODE_KINDS) or (
                address.scope is Scope.VSPHERE_CLUSTER and address.kind == "rule"
            ):
                yield address

    def _id(self, text: str) -> str:
        return f"{self.prefix}{text}"

    # --- where a node is -----------------------------------------------------------------

    def _place(self, vm: str) -> list[_Group]:
        """The list the node's group goes in: its host's, inside its vSphere cluster's."""
        seen = self.observed.vms.get(vm)
        if seen is None or not seen.host:
            return self.section.groups
        host = self.hosts.get(seen.host)
        if host is None:
            outer = self.section.groups
            if seen.cluster:
                vcluster = self.vclusters.get(seen.cluster)
                if vcluster is None:
                    vcluster = _Group(self._id(f"v{len(self.vclusters) + 1}"), f"vSphere cluster {seen.cluster}")
                    self.vclusters[seen.cluster] = vcluster
                    outer.append(vcluster)
                outer = vcluster.groups
            known = self.observed.hosts.get(seen.host)
            version = f" (ESXi {known.version})" if known is not None and known.version else ""
            host = _Group(self._id(f"h{len(self.hosts) + 1}"), f"host {seen.host}{version}")
            self.hosts[seen.host] = host
            outer.append(host)
        return host.groups

    def _physical(self, node: PhysicalNode) -> None:
        self.nodes += 1
        lines = [f"physical node {node.physical}"]
        if node.winrm is not None:
            lines.append(f"WinRM {node.winrm.address}:{node.winrm.port}")
        self.section.boxes.append(_Box(self._id(f"n{self.nodes}"), lines))

    # --- a VM node and its devices -------------------------------------------------------

    def _vm(self, vm: str, *, in_file: bool) -> None:
        self.nodes += 1
        node_id = self._id(f"n{self.nodes}")
        mark = None if in_file and vm in self.observed.vms else Mark.MISSING if in_file else Mark.EXTRA
        title = f"VM {vm}" + (f" ({LEGEND[mark]})" if mark else "")
        group = _Group(node_id, title, mark)
        self._place(vm).append(group)
        controllers: dict[int, str] = {}
        for address in sorted((a for a in self._drawn() if a.on_node and a.owner == vm), key=self._order):
            want, have = self.want.get(address), self.have.get(address)
            shown = have if have is not None else want
            mark, differs = _compare(want, have)
            box = _Box(f"{node_id}_{len(group.boxes) + 1}", [], mark=mark)
            if isinstance(shown, ControllerPayload):
                what = "NVMe" if shown.type == "nvme" else "SCSI"
                box.lines = [f"{what} controller {address.name}", f"{shown.type}, bus sharing {shown.sharing}"]
                controllers[int(address.name)] = box.id
            elif isinstance(shown, RdmDiskPayload | VmdkDiskPayload):
                box.lines = [f"disk {address.name}", self._disk_line(shown)]
                self._disk_edges(box.id, shown, want, have, controllers)
            elif isinstance(shown, NicPayload):
                box.lines = [f"NIC {address.name}", shown.adapter]
                self._nic_edges(box.id, want, have)
            box.lines += differs
            group.boxes.append(box)
        for item in self.unmanaged:
            if item.vm == vm:
                group.boxes.append(self._unmanaged(f"{node_id}_{len(group.boxes) + 1}", item))

    def _order(self, address: Address) -> tuple[int, int, str]:
        disks = [d.name for d in self.cluster.spec.shared_disks.disks]
        if address.kind == "controller":
            rank = int(address.name) if address.name.isdigit() else 99
        elif address.kind == "disk":
            rank = disks.index(address.name) if address.name in disks else len(disks)
        else:
            rank = NIC_ROLES.index(address.name) if address.name in NIC_ROLES else len(NIC_ROLES)
        return _NODE_KINDS.index(address.kind), rank, address.name

    @staticmethod
    def _disk_line(disk: RdmDiskPayload | VmdkDiskPayload) -> str:
        unit = "?" if disk.unit is None else disk.unit
        if isinstance(disk, RdmDiskPayload):
            what = f"RDM {disk.compatibility}" if disk.compatibility else "RDM"
        else:
            what = "shared VMDK" + (f" {disk.size_gb} GB" if disk.size_gb is not None else "")
        adapter = "NVMe" if getattr(disk, "adapter", None) == "nvme" else "SCSI"
        return f"{adapter} {disk.bus}:{unit}, {what}"

    @staticmethod
    def _unmanaged(box_id: str, item: Unmanaged) -> _Box:
        return _Box(box_id, ["unmanaged: left alone", item.description], mark=Mark.EXTRA)

    def _disk_edges(
        self,
        box_id: str,
        shown: RdmDiskPayload | VmdkDiskPayload,
        want: Payload | None,
        have: Payload | None,
        controllers: dict[int, str],
    ) -> None:
        spec_bus = self.cluster.spec.shared_disks.controller.bus
        controller = controllers.get(shown.bus) or controllers.get(spec_bus)
        if controller is not None:
            self.section.edges.append(_Edge(controller, box_id, want is not None and have is not None))
        sides: dict[str, set[str]] = {}
        for side, payload in (("file", want), ("vcenter", have)):
            if isinstance(payload, RdmDiskPayload | VmdkDiskPayload):
                key = self._backing(payload, side)
                sides.setdefault(key, set()).add(side)
        for key, seen_by in sides.items():
            self.section.edges.append(_Edge(box_id, self.storage[key].box.id, len(seen_by) == 2))

    def _backing(self, disk: RdmDiskPayload | VmdkDiskPayload, side: str) -> str:
        """The LUN (an RDM) or file (a shared VMDK) behind a disk, registered as one box."""
        lun = disk.lun if isinstance(disk, RdmDiskPayload) else None
        key = f"lun:{lun}" if lun else f"file:{disk.file}"
        shared = self.storage.get(key)
        if shared is None:
            box = _Box(self._id(f"s{len(self.storage) + 1}"), [], shape="storage")
            shared = self.storage[key] = _Shared(box)
            if lun:
                box.lines = [f"LUN {lun}", *self._lun_size(lun)]
                shared.in_vcenter = any(lun in h.luns for h in self.observed.hosts.values())
            else:
                box.lines = _file_parts(disk.file)
                shared.in_vcenter = any(
                    d.file == disk.file for vm in self.observed.vms.values() for d in vm.disks.values()
                )
        if side == "file":
            shared.in_file = True
        else:
            shared.in_vcenter = True
        return key

    def _lun_size(self, lun: str) -> list[str]:
        for host in self.observed.hosts.values():
            seen = host.luns.get(lun)
            if seen is not None and seen.capacity_bytes:
                return [f"{seen.capacity_bytes / 2**30:g} GiB"]
        return []

    def _nic_edges(self, box_id: str, want: Payload | None, have: Payload | None) -> None:
        sides: dict[str, set[str]] = {}
        for side, payload in (("file", want), ("vcenter", have)):
            if isinstance(payload, NicPayload):
                name = payload.portgroup
                shared = self.networks.get(name)
                if shared is None:
                    box = _Box(self._id(f"p{len(self.networks) + 1}"), [f"port group {name}"], shape="network")
                    shared = self.networks[name] = _Shared(box, in_vcenter=name in self.observed.networks)
                if side == "file":
                    shared.in_file = True
                else:
                    shared.in_vcenter = True
                sides.setdefault(name, set()).add(side)
        for name, seen_by in sides.items():
            self.section.edges.append(_Edge(box_id, self.networks[name].box.id, len(seen_by) == 2, long=True))

    # --- the VM-VM rule ------------------------------------------------------------------

    def _rules(self) -> None:
        rules = sorted(a for a in self._drawn() if a.scope is Scope.VSPHERE_CLUSTER)
        for n, address in enumerate(rules, 1):
            want, have = self.want.get(address), self.have.get(address)
            shown = have if have is not None else want
            mark, differs = _compare(want, have)
            lines = [f"VM-VM rule {address.name}"]
            if isinstance(shown, VmRulePayload):
                lines.append(f"{shown.kind}: {', '.join(shown.vms)}" + ("" if shown.enabled else ", disabled"))
            box = _Box(self._id(f"r{n}"), lines + differs, shape="round", mark=mark)
            self._rule_home(address.name).append(box)

    def _rule_home(self, name: str) -> list[_Box]:
        """The vSphere cluster that holds the rule (or, not yet created, the nodes' first one)."""
        for vcluster_name, group in self.vclusters.items():
            seen = self.observed.clusters.get(vcluster_name)
            if seen is not None and name in seen.rules:
                return group.boxes
        if self.vclusters:
            return next(iter(self.vclusters.values())).boxes
        return self.section.boxes


# --- the walk both syntaxes write ------------------------------------------------------

_Event = tuple[str, "_Group | _Box", str]  # ("open" | "box" | "close", what, its indent)


def _walk(groups: list[_Group], boxes: list[_Box], indent: str) -> Iterator[_Event]:
    for group in groups:
        yield "open", group, indent
        yield from _walk(group.groups, group.boxes, indent + "  ")
        yield "close", group, indent
    for box in boxes:
        yield "box", box, indent


def _events(sections: list[_Section], nested: bool, legend: list[_Box]) -> Iterator[_Event]:
    """Every group and box in drawing order: a fleet's clusters each in a box, the legend last."""
    if nested:
        yield from _walk([_Group(s.id, s.title, groups=s.groups, boxes=s.boxes) for s in sections], [], "  ")
    else:
        for section in sections:
            yield from _walk(section.groups, section.boxes, "  ")
    if legend:
        yield from _walk([_Group("legend", "legend", boxes=legend)], [], "  ")


# --- Mermaid -------------------------------------------------------------------------------

_MERMAID_SHAPES = {"box": ("[", "]"), "round": ("(", ")"), "storage": ("[(", ")]"), "network": ("{{", "}}")}
# (solid, long): a line without arrow heads; one more dash or dot spans one more rank.
_MERMAID_LINKS = {(True, False): "---", (True, True): "----", (False, False): "-.-", (False, True): "-..-"}


def _colours(mark: Mark) -> str:
    op = _OP[mark]
    return f"fill:{FILL[op]},stroke:{STROKE[op]},color:#1f2328"


def _mermaid(sections: list[_Section], nested: bool, legend: list[_Box]) -> str:
    out = ["flowchart LR"]
    classes: dict[Mark, list[str]] = {}
    styles: list[str] = []
    for event, item, indent in _events(sections, nested, legend):
        if event == "close":
            out.append(f"{indent}end")
        elif isinstance(item, _Group):
            out.append(f"{indent}subgraph {item.id}[{mermaid_label((item.title,))}]")
            if item.mark is not None:  # a subgraph takes `style`, not `class`, in every Mermaid
                styles.append(f"  style {item.id} {_colours(item.mark)}")
        else:
            left, right = _MERMAID_SHAPES[item.shape]
            out.append(f"{indent}{item.id}{left}{mermaid_label(tuple(item.lines))}{right}")
            if item.mark is not None:
                classes.setdefault(item.mark, []).append(item.id)
    out += [f"  {e.a} {_MERMAID_LINKS[e.solid, e.long]} {e.b}" for s in sections for e in s.edges]
    for mark, ids in sorted(classes.items(), key=lambda kv: list(Mark).index(kv[0])):
        out.append(f"  classDef {mark} {_colours(mark)}")
        out.append(f"  class {','.join(ids)} {mark}")
    return "\n".join(out + styles) + "\n"


# --- DOT -----------------------------------------------------------------------------------

_DOT_SHAPES = {"box": "", "round": "", "storage": ", shape=cylinder", "network": ", shape=hexagon"}


def _dot_colours(mark: Mark | None, sep: str = ", ") -> str:
    if mark is None:
        return ""
    op = _OP[mark]
    return f'{sep}fillcolor="{FILL[op]}"{sep}color="{STROKE[op]}"'


def _dot_edge(edge: _Edge) -> str:
    attrs = ([] if edge.solid else ["style=dashed"]) + (["minlen=2"] if edge.long else [])
    return f" [{', '.join(attrs)}]" if attrs else ""


def _dot(title: str, sections: list[_Section], nested: bool, legend: list[_Box]) -> str:
    out = [
        f"graph {dot_string(title)} {{",
        f"  graph [rankdir=LR, labelloc=t, fontname=Helvetica, label={dot_string(title)}];",
        '  node [shape=box, style="rounded,filled", fontname=Helvetica, fillcolor=white];',
        '  edge [color="#59636e"];',
    ]
    for event, item, indent in _events(sections, nested, legend):
        if event == "close":
            out.append(f"{indent}}}")
        elif isinstance(item, _Group):
            out += [f"{indent}subgraph cluster_{item.id} {{", f"{indent}  label={dot_string(item.title)};"]
            if item.mark is not None:
                out.append(f"{indent}  style=filled{_dot_colours(item.mark, '; ')};")
        else:
            label = dot_label(tuple(item.lines))
            out.append(f"{indent}{item.id} [label={label}{_DOT_SHAPES[item.shape]}{_dot_colours(item.mark)}];")
    out += [f"  {e.a} -- {e.b}{_dot_edge(e)};" for s in sections for e in s.edges]
    out.append("}")
    return "\n".join(out) + "\n"


# --- entry points --------------------------------------------------------------------------


def fleet_topology(views: list[ClusterView], fmt: GraphFormat | str) -> str:
    """The clusters of a fleet in one picture, a box a cluster (one: the same as `topology_graph`)."""
    fmt = GraphFormat(fmt)
    nested = len(views) > 1
    sections = [_Builder(view, f"c{n}_" if nested else "").build() for n, view in enumerate(views, 1)]
    used = set().union(*(s.marks() for s in sections))
    legend = [_Box(f"legend_{m}", [LEGEND[m]], mark=m) for m in Mark if m in used]
    if fmt is GraphFormat.MERMAID:
        return _mermaid(sections, nested, legend)
    title = "mscsctl topology: " + ", ".join(v.cluster.name for v in views)
    return _dot(title, sections, nested, legend)


def topology_graph(view: ClusterView, fmt: GraphFormat | str) -> str:
    """`fmt` is `mermaid` or `dot`: the cluster in vCenter and in its file, differences marked."""
    return fleet_topology([view], fmt)
