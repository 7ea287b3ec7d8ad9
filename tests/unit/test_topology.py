"""`mscsctl graph --view topology`: the cluster as vCenter shows it and as the file wants it.

On the hand-built world: two fresh VMs before the first apply, the same after it
(`as_applied`), and a hand change in vCenter afterwards.
"""

from __future__ import annotations

import re

from reconciler.observed import Observed, ObservedDisk
from reconciler.planner import build_plan
from reconciler.spec import FailoverCluster
from reconciler.topology import LEGEND, ClusterView, Mark, fleet_topology, topology_graph
from tests.unit.golden_files import check_golden
from tests.unit.plan_world import LUN2, as_applied, cab_cluster, cab_world, fresh_vm

# A box or subgraph line of the Mermaid text: its ID and its label (one quoted string).
BOX = re.compile(r'^\s+(?:subgraph )?([a-z0-9_]+)(?:\[\(|\[|\(|\{\{)"([^"]*)"(?:\)\]|\]|\)|\}\})$')


def applied(cluster: FailoverCluster | None = None, world: Observed | None = None) -> tuple[FailoverCluster, Observed]:
    cluster = cluster or cab_cluster()
    world = world or cab_world()
    return cluster, as_applied(cluster, world, build_plan(cluster, world))


def with_sharing(world: Observed, vm: str, sharing: str) -> Observed:
    """`world` after someone set the shared controller's bus sharing of `vm` by hand."""
    node = world.vms[vm]
    controller = node.controllers[1].model_copy(update={"sharing": sharing})
    node = node.model_copy(update={"controllers": {**node.controllers, 1: controller}})
    return world.model_copy(update={"vms": {**world.vms, vm: node}})


def labels(text: str) -> dict[str, str]:
    """Every box and subgraph of a Mermaid picture: ID -> label."""
    found = {}
    for line in text.splitlines():
        match = BOX.match(line)
        if match:
            found[match.group(1)] = match.group(2)
    return found


def marks(text: str) -> dict[str, str]:
    """ID -> mark, from the `class` lines (boxes) and `style` lines (subgraphs) of a Mermaid picture."""
    out = {}
    for ids, mark in re.findall(r"^  class (\S+) (\w+)$", text, re.MULTILINE):
        out |= dict.fromkeys(ids.split(","), mark)
    fills = {Mark.MISSING: "#dafbe1", Mark.EXTRA: "#ffebe9", Mark.DIFFERS: "#fff8c5"}
    for gid, fill in re.findall(r"^  style (\S+) fill:(#\w+),", text, re.MULTILINE):
        out[gid] = next(str(m) for m, f in fills.items() if f == fill)
    return out


def boxes_labelled(text: str, prefix: str) -> list[str]:
    return [i for i, label in labels(text).items() if label.startswith(prefix)]


def test_before_the_first_apply_every_shared_disk_is_in_the_file_not_in_vcenter():
    text = topology_graph(ClusterView(cab_cluster(), cab_world()), "mermaid")
    marked = marks(text)
    disks = boxes_labelled(text, "disk ")
    assert len(disks) == 4  # quorum and data on each node
    assert all(marked.get(d) == Mark.MISSING for d in disks)
    for prefix in ("SCSI controller 1", "NIC heartbeat", "VM-VM rule mscsctl-sql-prod-01"):
        assert all(marked.get(b) == Mark.MISSING for b in boxes_labelled(text, prefix)), prefix
    # What vCenter already has is not marked: the production NICs, the LUNs, the port groups.
    for prefix in ("NIC production", "LUN ", "port group "):
        found = boxes_labelled(text, prefix)
        assert found and not any(b in marked for b in found), prefix
    assert labels(text)["legend_missing"] == LEGEND[Mark.MISSING] == "in the file, not in vCenter"
    # A disk's line to its LUN is on the file's side only: dotted.
    for disk in disks:
        assert re.search(rf"^  {disk} -\.- s\d$", text, re.MULTILINE), disk


def test_each_element_the_first_plan_adds_is_marked_in_the_file_not_in_vcenter():
    """One truth: the picture's marks are the planner's creates, element for element."""
    cluster, world = cab_cluster(), cab_world()
    plan = build_plan(cluster, world)
    drawn = {"add-controller", "create-disk", "attach-disk", "add-nic", "create-rule"}
    text = topology_graph(ClusterView(cluster, world), "mermaid")
    missing = [i for i, m in marks(text).items() if m == Mark.MISSING and not i.startswith("legend")]
    assert len(missing) == sum(a.kind in drawn for a in plan.actions)


def test_after_apply_nothing_is_marked():
    cluster, world = applied()
    mermaid = topology_graph(ClusterView(cluster, world), "mermaid")
    assert not marks(mermaid)
    assert "legend" not in mermaid and "classDef" not in mermaid and "-.-" not in mermaid
    dot = topology_graph(ClusterView(cluster, world), "dot")
    assert 'fillcolor="#' not in dot and "dashed" not in dot and "legend" not in dot


def test_a_hand_change_of_the_controller_sharing_is_marked_with_both_values():
    cluster, world = applied()
    changed = with_sharing(world, "SQLNODE2", "virtual")
    text = topology_graph(ClusterView(cluster, changed), "mermaid")
    assert marks(text) == {"n2_1": Mark.DIFFERS, "legend_differs": Mark.DIFFERS}
    assert labels(text)["n2_1"] == (
        "SCSI controller 1<br/>lsilogic-sas, bus sharing virtual<br/>differs: sharing vCenter virtual, file physical"
    )
    assert labels(text)["legend_differs"] == "differs: FIELD vCenter X, file Y"
    dot = topology_graph(ClusterView(cluster, changed), "dot")
    assert (
        '    n2_1 [label="SCSI controller 1\\nlsilogic-sas, bus sharing virtual\\n'
        'differs: sharing vCenter virtual, file physical", fillcolor="#fff8c5", color="#9a6700"];'
    ) in dot


def test_mermaid_of_the_applied_cross_box_cluster_matches_the_golden_file():
    cluster, world = applied()
    check_golden("topology-graph.mmd", topology_graph(ClusterView(cluster, world), "mermaid"))


def test_dot_of_the_applied_cross_box_cluster_matches_the_golden_file():
    cluster, world = applied()
    check_golden("topology-graph.dot", topology_graph(ClusterView(cluster, world), "dot"))


def test_nodes_sit_on_their_hosts_inside_their_vsphere_cluster_and_share_the_luns():
    cluster, world = applied()
    text = topology_graph(ClusterView(cluster, world), "mermaid")
    lines = text.splitlines()
    order = [line.strip() for line in lines if line.lstrip().startswith(("subgraph", "end"))]
    assert order[:7] == [
        'subgraph v1["vSphere cluster Cluster-A"]',
        'subgraph h1["host esx-a1.lab.local (ESXi 8.0.2)"]',
        'subgraph n1["VM SQLNODE1"]',
        "end",
        "end",
        'subgraph h2["host esx-a2.lab.local (ESXi 8.0.2)"]',
        'subgraph n2["VM SQLNODE2"]',
    ]
    lun = next(i for i, label in labels(text).items() if label == f"LUN {LUN2}")
    data = [i for i, label in labels(text).items() if label == "disk data<br/>SCSI 1:1, RDM physical"]
    assert [f"  {d} --- {lun}" in lines for d in data] == [True, True]  # one LUN, both nodes' disks
    assert labels(text)["r1"] == "VM-VM rule mscsctl-sql-prod-01<br/>anti-affinity: SQLNODE1, SQLNODE2"


def test_odd_vm_names_cannot_break_out_of_a_label():
    odd = ["SQL/NODE 1", "Ö'NODE%2", 'N"3 <b>#1</b> & \\x']
    cluster = cab_cluster(nodes=[{"vm": name} for name in odd[:2]])
    hosts = ["esx-a1.lab.local", "esx-a2.lab.local"]
    world = cab_world().model_copy(update={"vms": {n: fresh_vm(n, h) for n, h in zip(odd, hosts, strict=False)}})
    three = cab_cluster(nodes=[{"vm": odd[0]}, {"vm": odd[2]}])
    world = world.model_copy(update={"vms": {**world.vms, odd[2]: fresh_vm(odd[2], hosts[1])}})
    mermaid = fleet_topology([ClusterView(*applied(cluster, world)), ClusterView(*applied(three, world))], "mermaid")
    named = labels(mermaid)
    assert named["c1_n1"] == "VM SQL/NODE 1" and named["c1_n2"] == "VM Ö'NODE%2"
    assert named["c2_n2"] == "VM N#quot;3 #lt;b#gt;#35;1#lt;/b#gt; #amp; \\x"
    # Every line that opens a label is one whole quoted label: nothing leaks out of the quotes.
    for line in mermaid.splitlines():
        if '"' in line:
            assert BOX.match(line), line
    dot = fleet_topology([ClusterView(*applied(cluster, world)), ClusterView(*applied(three, world))], "dot")
    assert 'label="VM SQL/NODE 1";' in dot
    assert 'label="VM N\\"3 <b>#1</b> & \\\\x";' in dot
    assert "anti-affinity: SQL/NODE 1, Ö'NODE%2" in dot


def test_a_vm_the_file_names_that_vcenter_lacks_is_marked_whole():
    cluster = cab_cluster(nodes=[{"vm": "SQLNODE1"}, {"vm": "SQLNODE3"}])
    text = topology_graph(ClusterView(cluster, cab_world()), "mermaid")
    assert '  subgraph n2["VM SQLNODE3 (in the file, not in vCenter)"]' in text  # on no host
    assert marks(text)["n2"] == Mark.MISSING
    assert all(marks(text)[f"n2_{i}"] == Mark.MISSING for i in range(1, 6))


def test_a_disk_the_file_no_longer_lists_and_a_stranger_on_the_shared_bus_are_in_vcenter_only():
    _, world = applied()
    node = world.vms["SQLNODE1"]
    stranger = ObservedDisk(key=2090, bus=1, unit=5, kind="vmdk", file="[SAN-VMFS-01] other/x.vmdk", size_gb=1)
    world = world.model_copy(
        update={"vms": {**world.vms, "SQLNODE1": node.model_copy(update={"disks": {**node.disks, "1:5": stranger}})}}
    )
    cluster = cab_cluster(
        sharedDisks={
            "disks": [
                {"name": "quorum", "lun": LUN2.replace("a002", "a001"), "unit": 0, "mappingDatastore": "SAN-VMFS-01"}
            ]
        }
    )
    text = topology_graph(ClusterView(cluster, world), "mermaid")
    marked, named = marks(text), labels(text)
    extra = sorted(named[i] for i, m in marked.items() if m == Mark.EXTRA)
    assert extra == [
        f"LUN {LUN2}",
        "disk data<br/>SCSI 1:1, RDM physical",
        "disk data<br/>SCSI 1:1, RDM physical",
        "in vCenter, not in the file",
        "unmanaged: left alone<br/>disk 1:5 [SAN-VMFS-01] other/x.vmdk",
    ]


def test_a_shared_vmdk_shows_its_datastore_and_file_and_a_physical_node_stands_outside_vsphere():
    cib = cab_cluster(
        topology="cluster-in-a-box", sharedDisks={"disks": [{"name": "data", "sizeGB": 10, "datastore": "SAN-VMFS-01"}]}
    )
    one_host = cab_world()
    one_host = one_host.model_copy(
        update={"vms": {**one_host.vms, "SQLNODE2": fresh_vm("SQLNODE2", "esx-a1.lab.local")}}
    )
    text = topology_graph(ClusterView(*applied(cib, one_host)), "mermaid")
    assert labels(text)["s1"] == "datastore SAN-VMFS-01<br/>sql-prod-01/data.vmdk"
    assert labels(text)["n1_2"] == "disk data<br/>SCSI 1:0, shared VMDK 10 GB"
    assert labels(text)["r1"].endswith("<br/>affinity: SQLNODE1, SQLNODE2")
    p2v = cab_cluster(
        topology="physical-to-virtual",
        nodes=[{"physical": "PHYS1", "winrm": {"address": "phys1.lab.local"}}, {"vm": "SQLNODE2"}],
    )
    text = topology_graph(ClusterView(*applied(p2v)), "mermaid")
    assert '\n  n1["physical node PHYS1<br/>WinRM phys1.lab.local:5986"]\n' in text
    assert "VM-VM rule" not in text


def test_a_fleet_gets_a_box_per_cluster_and_one_legend():
    first = ClusterView(cab_cluster(), cab_world())
    second = ClusterView(*applied())
    text = fleet_topology([first, second], "mermaid")
    assert text.count('subgraph c1_cluster["cluster sql-prod-01"]') == 1
    assert text.count('subgraph c2_cluster["cluster sql-prod-01"]') == 1
    assert text.count("subgraph legend[") == 1
    ids = re.findall(r"^\s+(?:subgraph )?([a-z0-9_]+)[\[({]", text, re.MULTILINE)
    assert len(ids) == len(set(ids))
    assert not any(i.startswith("c2_") for i in marks(text))
    dot = fleet_topology([first, second], "dot")
    assert dot.startswith('graph "mscsctl topology: sql-prod-01, sql-prod-01" {\n')
