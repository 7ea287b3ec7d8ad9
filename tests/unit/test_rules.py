"""The rule catalogue: one failing file per file-only rule, one vCenter world per vCenter rule.

A failing file in `rules_cases/` is named after its rule and marks the line the finding
must point at with `# <- RULE-ID`; `mscsctl validate` must exit 1 (0 for a warning) and
print that rule on that line. The vCenter-side rules run against the examples and
hand-built `Observed` worlds, and must point at the field of the file they concern.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from reconciler.address import Address
from reconciler.cli import main
from reconciler.findings import Severity
from reconciler.loader import load_file
from reconciler.observed import (
    Observed,
    ObservedCluster,
    ObservedDatastore,
    ObservedDisk,
    ObservedHba,
    ObservedHost,
    ObservedLun,
    ObservedVm,
)
from reconciler.rules import Versions, before, catalogue, get_rule, run_rules, since, target_version
from reconciler.spec import with_defaults

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
CASES = HERE / "rules_cases"
EXAMPLES = ROOT / "examples"
CAB = EXAMPLES / "cluster-across-boxes.yaml"
CIB = EXAMPLES / "cluster-in-a-box.yaml"
P2V = EXAMPLES / "physical-to-virtual.yaml"

FILE_RULES = sorted(r.id for r in catalogue() if not r.needs_observed)
LINE = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<col>\d+): (?P<rest>.*) \[(?P<rule>[A-Z0-9-]+)\]$")


def marked_line(path: Path, rule_id: str) -> int:
    for number, text in enumerate(path.read_text().splitlines(), start=1):
        if text.rstrip().endswith(f"# <- {rule_id}"):
            return number
    raise AssertionError(f"{path.name} marks no line with '# <- {rule_id}'")


def line_of(path: Path, needle: str, nth: int = 1) -> int:
    hits = [i for i, text in enumerate(path.read_text().splitlines(), start=1) if needle in text]
    return hits[nth - 1]


# --------------------------------------------------------------------------- the catalogue as data


def test_every_rule_is_well_formed():
    rules = catalogue()
    assert len({r.id for r in rules}) == len(rules)
    for r in rules:
        assert re.fullmatch(r"MSCS-(NODE|DISK|NET|GUEST|PLACE|HOST|STOR|VM|INV|SAFE)-\d{3}", r.id), r.id
        assert r.severity in (Severity.ERROR, Severity.WARNING)
        assert r.title and "\n" not in r.title and len(r.title) <= 110, r.id
        assert r.source, r.id
        assert r.versions.text


def test_each_file_rule_has_a_failing_file_and_nothing_else_is_there():
    cases = sorted(p.stem for p in CASES.glob("*.yaml"))
    assert cases == FILE_RULES


def test_versions_read_like_the_catalogue_says():
    assert Versions().text == "all" and Versions().applies(None) is True
    assert before(6, 0).text == "< 6.0" and before(6, 0).applies((5, 5)) and not before(6, 0).applies((6, 0))
    assert since(7, 0).text == ">= 7.0" and since(7, 0).applies((8, 0)) and not since(7, 0).applies((6, 7))
    assert since(6, 0).applies(None) is None  # unknown version: the rule stays silent


# --------------------------------------------------------------------------- file-only rules


@pytest.mark.parametrize("rule_id", FILE_RULES)
def test_failing_file(rule_id, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    path = CASES.relative_to(ROOT) / f"{rule_id}.yaml"
    rule = get_rule(rule_id)
    code = main(["validate", str(path)])
    out = capsys.readouterr().out
    expected_line = marked_line(path, rule_id)
    found = [m for m in map(LINE.match, out.splitlines()) if m]
    hits = [m for m in found if m["rule"] == rule_id]
    assert any(m["file"] == str(path) and int(m["line"]) == expected_line for m in hits), out
    errors = {m["rule"] for m in found if ": warning: " not in m.group(0)}
    summary = out.splitlines()[-1]
    if rule.severity is Severity.ERROR:
        assert code == 1
        # Each failing file is wrong in one way only: no other rule reports an error on it.
        assert errors == {rule_id}, out
        assert summary.startswith(f"{path}: 1 error"), summary
    else:
        assert code == 0, out
        assert errors == set(), out
        assert summary.startswith(f"{path}: valid ("), summary


def test_examples_are_valid_and_the_box_warns(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    code = main(
        [
            "validate",
            "examples/cluster-across-boxes.yaml",
            "examples/cluster-in-a-box.yaml",
            "examples/physical-to-virtual.yaml",
        ]
    )
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert "examples/cluster-across-boxes.yaml: valid" in out
    assert "examples/physical-to-virtual.yaml: valid" in out
    assert "examples/cluster-in-a-box.yaml: valid (1 warning)" in out
    assert any(line.endswith("[MSCS-PLACE-001]") for line in out)


@pytest.mark.parametrize("pinned", ["4.1", "5.5", "6.0", "6.7", "7.0", "8.0"])
@pytest.mark.parametrize("example", [CAB, P2V])
def test_examples_stay_valid_under_every_version(example, pinned):
    cluster = load_file(example).cluster
    assert cluster is not None
    assert [
        f for f in run_rules(cluster, version=tuple(map(int, pinned.split(".")))) if f.severity is Severity.ERROR
    ] == []


def test_version_rules_are_silent_with_auto_and_fire_when_pinned():
    text = (CASES / "MSCS-DISK-008.yaml").read_text().replace('vsphereVersion: "6.7"', "vsphereVersion: auto")
    from reconciler.loader import load_text

    loaded = load_text(text, "auto.yaml")
    assert loaded.cluster is not None
    assert run_rules(loaded.cluster) == []
    assert [f.rule_id for f in run_rules(loaded.cluster, version=(6, 7))] == ["MSCS-DISK-008"]
    # From 7.0 the same disk is refused by the clustered-VMDK rule instead: it must say so.
    assert [f.rule_id for f in run_rules(loaded.cluster, version=(7, 0))] == ["MSCS-DISK-108"]


def test_virtual_compatibility_across_boxes_is_fine_for_windows_2003():
    text = (CASES / "MSCS-DISK-006.yaml").read_text().replace("windows2016", "windows2003")
    from reconciler.loader import load_text

    loaded = load_text(text, "w2003.yaml")
    assert loaded.cluster is not None
    assert [f for f in run_rules(loaded.cluster) if f.rule_id == "MSCS-DISK-006"] == []


# --------------------------------------------------------------------------- vCenter-side rules

LUN1 = "naa.6006016012345678000000000000a001"
LUN2 = "naa.6006016012345678000000000000a002"
LUN3 = "naa.6006016012345678000000000000a003"
LUN4 = "naa.6006016012345678000000000000a004"
LUN_DS = "naa.6006016012345678000000000000a000"
QLOGIC = ObservedHba(
    device="vmhba1", model="ISP2532-based 8Gb Fibre Channel to PCI Express HBA", driver="qlnativefc", kind="fc"
)
EMULEX = ObservedHba(device="vmhba2", model="Emulex LightPulse LPe12000", driver="lpfc", kind="fc")


def host(
    name: str,
    *,
    version: str = "8.0.2",
    luns=(LUN_DS, LUN1, LUN2, LUN3, LUN4),
    transport="fc",
    hbas=(QLOGIC,),
    datastores=None,
) -> ObservedHost:
    short = name.split(".")[0]
    return ObservedHost(
        name=name,
        moref=f"host-{short}",
        version=version,
        cluster="Cluster-A",
        luns={n: ObservedLun(canonical_name=n, uuid="02" + n[-8:], transport=transport) for n in luns},
        hbas=list(hbas),
        datastores=datastores if datastores is not None else ["SAN-VMFS-01", "NFS-01", f"{short}-local"],
        networks=["Production", "Heartbeat"],
    )


def vm(name: str, host_name: str) -> ObservedVm:
    return ObservedVm(name=name, moref=f"vm-{name}", host=host_name, cluster="Cluster-A")


def world(*, vms=None, hosts=None, datastores=None, drs=False, ha=False, networks=("Production", "Heartbeat")):
    hosts = hosts or {h.name: h for h in (host("esx-a1.lab.local"), host("esx-a2.lab.local"))}
    vms = vms or {
        "SQLNODE1": vm("SQLNODE1", "esx-a1.lab.local"),
        "SQLNODE2": vm("SQLNODE2", "esx-a2.lab.local"),
        "CIB-NODE1": vm("CIB-NODE1", "esx-a1.lab.local"),
        "CIB-NODE2": vm("CIB-NODE2", "esx-a1.lab.local"),
        "P2V-NODE1": vm("P2V-NODE1", "esx-a2.lab.local"),
    }
    default_ds = {
        "SAN-VMFS-01": ObservedDatastore(
            name="SAN-VMFS-01", moref="datastore-1", type="VMFS", extents=[LUN_DS], hosts=sorted(hosts)
        ),
        "esx-a1-local": ObservedDatastore(
            name="esx-a1-local", moref="datastore-2", type="VMFS", hosts=["esx-a1.lab.local"]
        ),
        "NFS-01": ObservedDatastore(name="NFS-01", moref="datastore-3", type="NFS", hosts=sorted(hosts)),
    }
    return Observed(
        datacenter="DC1",
        vms=vms,
        hosts=hosts,
        datastores=datastores or default_ds,
        networks=list(networks),
        clusters={
            "Cluster-A": ObservedCluster(
                name="Cluster-A", moref="domain-c1", drs_enabled=drs, ha_enabled=ha, hosts=sorted(hosts)
            )
        },
    )


def observed_findings(path: Path, observed: Observed, text: str | None = None, version=None):
    from reconciler.loader import load_text

    loaded = load_text(text, str(path)) if text is not None else load_file(path)
    assert loaded.cluster is not None, loaded.findings
    return loaded.place(run_rules(loaded.cluster, observed=observed, version=version))


def only(findings, rule_id):
    errors = [f for f in findings if f.severity is Severity.ERROR]
    assert {f.rule_id for f in errors} == {rule_id}, [str(f) for f in findings]
    return [f for f in findings if f.rule_id == rule_id]


def test_the_examples_pass_every_rule_against_the_lab_world():
    for example in (CAB, CIB, P2V):
        assert [f for f in observed_findings(example, world()) if f.severity is Severity.ERROR] == []


def test_target_version_is_pinned_or_the_oldest_node_host():
    cluster = load_file(CAB).cluster
    hosts = {h.name: h for h in (host("esx-a1.lab.local", version="7.0.3"), host("esx-a2.lab.local"))}
    assert target_version(cluster) is None
    assert target_version(cluster, world(hosts=hosts)) == (7, 0)
    pinned = cluster.model_copy(update={"spec": cluster.spec.model_copy(update={"vsphere_version": "6.7"})})
    assert target_version(pinned, world(hosts=hosts)) == (6, 7)


def test_stor_001_a_lun_that_backs_a_vmfs_datastore():
    text = CAB.read_text().replace(LUN2, LUN_DS)
    [f] = only(observed_findings(CAB, world(), text), "MSCS-STOR-001")
    assert f.line == line_of(CAB, "lun: naa.6006016012345678000000000000a002")
    assert f.path == ("spec", "sharedDisks", "disks", 1, "lun")
    assert "SAN-VMFS-01" in f.message and "data" in f.message


def test_stor_002_mapping_files_on_nfs():
    text = CAB.read_text().replace("mappingDatastore: SAN-VMFS-01", "mappingDatastore: NFS-01")
    found = only(observed_findings(CAB, world(), text), "MSCS-STOR-002")
    assert [f.line for f in found] == [
        line_of(CAB, "mappingDatastore: SAN-VMFS-01", 1),
        line_of(CAB, "mappingDatastore: SAN-VMFS-01", 2),
    ]
    assert "NFS" in found[0].message


def test_stor_002_shared_vmdk_on_nfs():
    text = CIB.read_text().replace("datastore: esx-a1-local", "datastore: NFS-01", 1)
    [f] = only(observed_findings(CIB, world(), text), "MSCS-STOR-002")
    assert f.line == line_of(CIB, "datastore: esx-a1-local", 1)


def test_stor_003_iscsi_only_from_five_five():
    hosts = {h.name: h for h in (host("esx-a1.lab.local", transport="iscsi"), host("esx-a2.lab.local"))}
    found = only(observed_findings(CAB, world(hosts=hosts), version=(5, 1)), "MSCS-STOR-003")
    assert [f.line for f in found] == [line_of(CAB, LUN1), line_of(CAB, LUN2)]
    assert "esx-a1.lab.local" in found[0].message
    assert [f for f in observed_findings(CAB, world(hosts=hosts), version=(5, 5)) if f.severity is Severity.ERROR] == []


def test_stor_003_fcoe_before_five_five_too():
    hosts = {h.name: h for h in (host("esx-a1.lab.local"), host("esx-a2.lab.local", transport="fcoe"))}
    found = only(observed_findings(CAB, world(hosts=hosts), version=(5, 0)), "MSCS-STOR-003")
    assert [f.line for f in found] == [line_of(CAB, LUN1), line_of(CAB, LUN2)]
    assert "FCoE on esx-a2.lab.local" in found[0].message


def test_stor_006_fc_and_iscsi_mixed_across_nodes_under_six():
    hosts = {h.name: h for h in (host("esx-a1.lab.local"), host("esx-a2.lab.local", transport="iscsi"))}
    found = only(observed_findings(CAB, world(hosts=hosts), version=(6, 7)), "MSCS-STOR-006")
    assert [f.line for f in found] == [line_of(CAB, LUN1), line_of(CAB, LUN2)]
    assert "Fibre Channel on esx-a1.lab.local; iSCSI on esx-a2.lab.local" in found[0].message
    # All iSCSI is fine under 6.7; the 6.x ban is not in the 7.0 guide's range.
    same = {name: host(name, transport="iscsi") for name in ("esx-a1.lab.local", "esx-a2.lab.local")}
    assert only_errors(observed_findings(CAB, world(hosts=same), version=(6, 7))) == []
    assert only_errors(observed_findings(CAB, world(hosts=hosts), version=(7, 0))) == []


def test_stor_004_a_lun_not_visible_from_a_node_host():
    hosts = {h.name: h for h in (host("esx-a1.lab.local"), host("esx-a2.lab.local", luns=(LUN1,)))}
    [f] = only(observed_findings(CAB, world(hosts=hosts)), "MSCS-STOR-004")
    assert f.line == line_of(CAB, LUN2)
    assert "esx-a2.lab.local (SQLNODE2)" in f.message


def test_stor_005_a_datastore_not_mounted_on_a_node_host():
    hosts = {h.name: h for h in (host("esx-a1.lab.local"), host("esx-a2.lab.local", datastores=["esx-a2-local"]))}
    ds = world().datastores | {
        "SAN-VMFS-01": ObservedDatastore(
            name="SAN-VMFS-01", moref="datastore-1", type="VMFS", hosts=["esx-a1.lab.local"]
        )
    }
    found = only(observed_findings(CAB, world(hosts=hosts, datastores=ds)), "MSCS-STOR-005")
    assert found[0].line == line_of(CAB, "mappingDatastore: SAN-VMFS-01")
    assert "esx-a2.lab.local (SQLNODE2)" in found[0].message


def test_host_002_qlogic_and_emulex_on_one_host():
    hosts = {h.name: h for h in (host("esx-a1.lab.local"), host("esx-a2.lab.local", hbas=(QLOGIC, EMULEX)))}
    found = observed_findings(CAB, world(hosts=hosts))
    assert only_errors(found) == []  # the book alone says so: a warning
    [f] = [f for f in found if f.rule_id == "MSCS-HOST-002"]
    assert f.severity is Severity.WARNING
    assert f.line == line_of(CAB, "- vm: SQLNODE2")
    assert "QLogic and Emulex" in f.message and "no 5.x-8.x guide" in f.message


def test_host_003_mixed_esxi_versions():
    hosts = {h.name: h for h in (host("esx-a1.lab.local", version="7.0.3"), host("esx-a2.lab.local"))}
    [f] = only(observed_findings(CAB, world(hosts=hosts)), "MSCS-HOST-003")
    assert f.line == line_of(CAB, "- vm: SQLNODE2")
    assert "7.0.3" in f.message and "8.0.2" in f.message


def test_inv_001_unknown_vm():
    text = CAB.read_text().replace("vm: SQLNODE2", "vm: sqlnode2")
    [f] = only(observed_findings(CAB, world(), text), "MSCS-INV-001")
    assert f.line == line_of(CAB, "- vm: SQLNODE2")
    assert "SQLNODE2" in f.message  # the name vCenter has, differing only in case


def test_inv_002_unknown_portgroup():
    text = CAB.read_text().replace("portgroup: Heartbeat", "portgroup: HB-Net")
    [f] = only(observed_findings(CAB, world(), text), "MSCS-INV-002")
    assert f.line == line_of(CAB, "portgroup: Heartbeat")


def test_inv_003_unknown_datastore():
    text = CIB.read_text().replace("datastore: esx-a1-local", "datastore: esx-a9-local", 1)
    [f] = only(observed_findings(CIB, world(), text), "MSCS-INV-003")
    assert f.line == line_of(CIB, "datastore: esx-a1-local", 1)


def test_place_005_box_nodes_on_two_hosts():
    vms = {"CIB-NODE1": vm("CIB-NODE1", "esx-a1.lab.local"), "CIB-NODE2": vm("CIB-NODE2", "esx-a2.lab.local")}
    found = observed_findings(CIB, world(vms=vms))
    [f] = [f for f in found if f.rule_id == "MSCS-PLACE-005"]
    assert f.severity is Severity.ERROR
    assert f.line == line_of(CIB, "topology: cluster-in-a-box")


def test_place_005_across_boxes_nodes_on_one_host():
    vms = {"SQLNODE1": vm("SQLNODE1", "esx-a1.lab.local"), "SQLNODE2": vm("SQLNODE2", "esx-a1.lab.local")}
    [f] = only(observed_findings(CAB, world(vms=vms)), "MSCS-PLACE-005")
    assert f.line == line_of(CAB, "topology: cluster-across-boxes")
    assert "esx-a1.lab.local" in f.message


def test_place_006_drs_ha_cluster_under_vsphere_4():
    hosts = {h.name: h for h in (host("esx-a1.lab.local", version="4.0.0"), host("esx-a2.lab.local", version="4.0.0"))}
    found = only(observed_findings(CAB, world(hosts=hosts, drs=True, ha=True)), "MSCS-PLACE-006")
    assert [f.line for f in found] == [line_of(CAB, "- vm: SQLNODE1"), line_of(CAB, "- vm: SQLNODE2")]
    assert "DRS and HA" in found[0].message
    # From vSphere 4.1 (the first guide with HA/DRS for clustered VMs) the same cluster is fine.
    later = {h.name: h for h in (host("esx-a1.lab.local", version="4.1.0"), host("esx-a2.lab.local", version="4.1.0"))}
    assert only_errors(observed_findings(CAB, world(hosts=later, drs=True, ha=True))) == []
    assert only_errors(observed_findings(CAB, world(drs=True, ha=True))) == []


def only_errors(findings):
    return [f for f in findings if f.severity is Severity.ERROR]


def test_vcenter_rules_stay_out_of_validate():
    cluster = load_file(CAB).cluster
    assert all(not get_rule(f.rule_id).needs_observed for f in run_rules(cluster))


def test_every_vcenter_rule_has_a_test_here():
    # Here or in the unit tests of the rule's own subject (test_<subject>.py beside this file).
    text = "\n".join(p.read_text() for p in HERE.glob("test_*.py"))
    for r in catalogue():
        if r.needs_observed:
            assert f"test_{r.id.lower().removeprefix('mscs-').replace('-', '_')}" in text, r.id


def test_host_004_a_lun_seen_unreserved_outside_the_nodes_cluster():
    outsider = host("esx-b1.lab.local", luns=(LUN2,)).model_copy(update={"cluster": "Cluster-B"})
    hosts = {h.name: h for h in (host("esx-a1.lab.local"), host("esx-a2.lab.local"), outsider)}
    found = observed_findings(CAB, in_cluster_a(world(hosts=hosts), "esx-a1.lab.local", "esx-a2.lab.local"))
    assert only_errors(found) == []
    [f] = [f for f in found if f.rule_id == "MSCS-HOST-004"]
    assert f.severity is Severity.WARNING
    assert f.line == line_of(CAB, LUN2)
    assert "esx-b1.lab.local" in f.message
    reserved = outsider.model_copy(
        update={"luns": {LUN2: outsider.luns[LUN2].model_copy(update={"perennially_reserved": True})}}
    )
    hosts[reserved.name] = reserved
    again = in_cluster_a(world(hosts=hosts), "esx-a1.lab.local", "esx-a2.lab.local")
    assert [f for f in observed_findings(CAB, again) if f.rule_id == "MSCS-HOST-004"] == []


def test_host_004_is_silent_before_esxi_five():
    outsider = host("esx-b1.lab.local", luns=(LUN2,)).model_copy(update={"cluster": "Cluster-B"})
    hosts = {h.name: h for h in (host("esx-a1.lab.local"), host("esx-a2.lab.local"), outsider)}
    observed = in_cluster_a(world(hosts=hosts), "esx-a1.lab.local", "esx-a2.lab.local")
    assert [f for f in observed_findings(CAB, observed, version=(4, 1)) if f.rule_id == "MSCS-HOST-004"] == []
    assert [f for f in observed_findings(CAB, observed, version=(5, 0)) if f.rule_id == "MSCS-HOST-004"] != []


def with_hardware(observed: Observed, version: str) -> Observed:
    vms = {name: vm.model_copy(update={"hardware_version": version}) for name, vm in observed.vms.items()}
    return observed.model_copy(update={"vms": vms})


def test_place_009_nodes_drs_may_move_on_hardware_before_11():
    text = CAB.read_text().replace("drs: disabled", "drs: partiallyAutomated")
    found = observed_findings(CAB, with_hardware(world(), "vmx-10"), text=text)
    assert only_errors(found) == []
    hits = [f for f in found if f.rule_id == "MSCS-PLACE-009"]
    assert [f.line for f in hits] == [line_of(CAB, "- vm: SQLNODE1"), line_of(CAB, "- vm: SQLNODE2")]
    assert all(f.severity is Severity.WARNING and "hardware 10" in f.message for f in hits)
    newer = observed_findings(CAB, with_hardware(world(), "vmx-11"), text=text)
    assert [f for f in newer if f.rule_id == "MSCS-PLACE-009"] == []
    # DRS off: vMotion is not in play.
    off = observed_findings(CAB, with_hardware(world(), "vmx-10"))
    assert [f for f in off if f.rule_id == "MSCS-PLACE-009"] == []


def with_unit(kind: str | None, unit: int):
    """The across-boxes example with its `data` disk at `unit` on a `kind` controller (set on the
    model, past the schema's own bound, so that the rule is what is tested)."""
    from reconciler.spec import ControllerType

    cluster = load_file(CAB).cluster
    assert cluster is not None
    shared = cluster.spec.shared_disks
    controller = shared.controller.model_copy(update={"type": ControllerType(kind) if kind else None})
    disks = [d.model_copy(update={"unit": unit}) if d.name == "data" else d for d in shared.disks]
    shared = shared.model_copy(update={"controller": controller, "disks": disks})
    return cluster.model_copy(update={"spec": cluster.spec.model_copy(update={"shared_disks": shared})})


def rule_hits(cluster, rule_id, **kwargs):
    return [f for f in run_rules(cluster, **kwargs) if f.rule_id == rule_id]


def test_disk_012_pvscsi_units_above_15_need_hardware_14():
    cluster = with_unit("pvscsi", 40)
    hits = rule_hits(cluster, "MSCS-DISK-012", observed=with_hardware(world(), "vmx-13"), version=(8, 0))
    assert [f.path for f in hits] == [("spec", "nodes", 0, "vm"), ("spec", "nodes", 1, "vm")]
    assert all(f.severity is Severity.ERROR for f in hits)
    assert "data (unit 40)" in hits[0].message and "hardware 13" in hits[0].message
    assert rule_hits(cluster, "MSCS-DISK-012", observed=with_hardware(world(), "vmx-14"), version=(8, 0)) == []
    assert rule_hits(cluster, "MSCS-DISK-009", observed=with_hardware(world(), "vmx-14"), version=(8, 0)) == []


def test_disk_009_unit_ranges_follow_the_controller_and_version():
    wide = with_unit("pvscsi", 40)
    assert rule_hits(wide, "MSCS-DISK-009", version=(6, 7)) == []
    [f] = rule_hits(wide, "MSCS-DISK-009", version=(6, 5))  # 64 targets arrive with hardware 14 (6.7)
    assert f.path == ("spec", "sharedDisks", "disks", 1, "unit") and "from vSphere 6.7" in f.message
    [f] = rule_hits(with_unit("lsilogic-sas", 20), "MSCS-DISK-009", version=(8, 0))
    assert "units 0-15" in f.message
    [f] = rule_hits(with_unit(None, 7), "MSCS-DISK-009", version=(8, 0))
    assert "unit 7 is the SCSI controller's own" in f.message


def in_cluster_a(observed: Observed, *hosts: str) -> Observed:
    cluster = observed.clusters["Cluster-A"].model_copy(update={"hosts": list(hosts)})
    return observed.model_copy(update={"clusters": {"Cluster-A": cluster}})


# --------------------------------------------------------------------------- safety rules


def test_safe_001_a_state_record_of_a_disk_vcenter_shows_as_another():
    from state.model import ManagedResource

    boot = ObservedDisk(key=2000, bus=0, unit=0, kind="vmdk", file="[SAN-VMFS-01] SQLNODE1/SQLNODE1.vmdk")
    node = vm("SQLNODE1", "esx-a1.lab.local").model_copy(update={"disks": {"0:0": boot}})
    observed = world(vms={"SQLNODE1": node, "SQLNODE2": vm("SQLNODE2", "esx-a2.lab.local")})
    claim = ManagedResource(
        kind="shared-vmdk",
        vm_moref="vm-SQLNODE1",
        file=boot.file,
        created_by_mscsctl=True,
        applied_at="2026-01-01T00:00:00Z",
    )
    loaded = load_file(CAB)
    managed = {Address.parse("sql-prod-01/node/SQLNODE1/disk/boot"): claim}
    found = loaded.place(run_rules(loaded.cluster, observed=observed, managed=managed))
    [f] = only(found, "MSCS-SAFE-001")
    assert f.line == line_of(CAB, "- vm: SQLNODE1")
    assert "state says sql-prod-01/node/SQLNODE1/disk/boot" in f.message and "vCenter shows" in f.message
    assert only_errors(observed_findings(CAB, observed)) == []  # without the claim, nothing


def test_safe_002_a_unit_of_the_file_held_by_another_disk():
    other = ObservedDisk(key=2016, bus=1, unit=1, kind="vmdk", file="[SAN-VMFS-01] SQLNODE2/SQLNODE2_1.vmdk")
    node = vm("SQLNODE2", "esx-a2.lab.local").model_copy(update={"disks": {"1:1": other}})
    [f] = only(
        observed_findings(CAB, world(vms={"SQLNODE1": vm("SQLNODE1", "esx-a1.lab.local"), "SQLNODE2": node})),
        "MSCS-SAFE-002",
    )
    assert f.path == ("spec", "sharedDisks", "disks", 1, "unit")
    assert "SCSI 1:1 of SQLNODE2" in f.message


def test_safe_003_a_lun_mapped_by_a_vm_outside_the_cluster():
    rdm = ObservedDisk(key=2001, bus=0, unit=1, kind="rdm", file="[SAN-VMFS-01] P2V-NODE1/x.vmdk", lun=LUN1)
    outsider = vm("P2V-NODE1", "esx-a2.lab.local").model_copy(update={"disks": {"0:1": rdm}})
    vms = {
        "SQLNODE1": vm("SQLNODE1", "esx-a1.lab.local"),
        "SQLNODE2": vm("SQLNODE2", "esx-a2.lab.local"),
        "P2V-NODE1": outsider,
    }
    [f] = only(observed_findings(CAB, world(vms=vms)), "MSCS-SAFE-003")
    assert f.line == line_of(CAB, LUN1)
    assert "P2V-NODE1" in f.message and "sql-prod-01" in f.message


class _Desired:
    def __init__(self, path: Path, text: str | None = None):
        from reconciler.loader import load_text

        self.loaded = load_text(text, str(path)) if text is not None else load_file(path)
        self.cluster = with_defaults(self.loaded.cluster)
        self.path, self.name = path, self.cluster.name

    def locate(self, finding):
        return self.loaded.place([finding])[0]


def test_safe_004_a_lun_listed_by_two_clusters_of_the_run():
    from reconciler.rules.fleet import fleet_findings

    other = P2V.read_text().replace(LUN3, LUN1)
    found = fleet_findings([_Desired(CAB), _Desired(P2V, other)], {"sql-prod-01": world(), "p2v-file-01": world()})
    assert sorted((f.rule_id, f.file) for f in found) == [
        ("MSCS-SAFE-004", str(CAB)),
        ("MSCS-SAFE-004", str(P2V)),
    ]
    assert next(f for f in found if f.file == str(CAB)).line == line_of(CAB, LUN1)


def test_safe_005_a_vm_in_two_clusters_of_the_run():
    from reconciler.rules.fleet import fleet_findings

    other = P2V.read_text().replace("vm: P2V-NODE1", "vm: SQLNODE2")
    found = fleet_findings([_Desired(CAB), _Desired(P2V, other)], {"sql-prod-01": world(), "p2v-file-01": world()})
    assert sorted((f.rule_id, f.file) for f in found) == [
        ("MSCS-SAFE-005", str(CAB)),
        ("MSCS-SAFE-005", str(P2V)),
    ]
    assert next(f for f in found if f.file == str(CAB)).line == line_of(CAB, "- vm: SQLNODE2")


# --------------------------------------------------------------------------- HA and DRS per version


def test_place_010_vm_host_rule_turned_off_under_ha():
    text = CAB.read_text().replace("    separateHosts: true\n", "    separateHosts: true\n    vmHostRule: false\n")
    [f] = only(observed_findings(CAB, world(drs=True, ha=True), text=text), "MSCS-PLACE-010")
    assert f.line == len(CAB.read_text().splitlines()) + 1  # the added vmHostRule line
    assert "Cluster-A has HA on" in f.message
    assert only_errors(observed_findings(CAB, world(drs=True, ha=False), text=text)) == []
    assert only_errors(observed_findings(CAB, world(drs=True, ha=True), text=text, version=(6, 0))) == []


def plan_of(version: str, **placement):
    from reconciler.planner import build_plan
    from tests.unit.plan_world import cab_cluster, cab_world

    return build_plan(cab_cluster(vsphereVersion=version, placement=placement), cab_world())


def test_ha_restart_follows_the_vsphere_version_unless_written():
    from reconciler.plan import ActionKind

    def restarts(plan):
        return {a.target: a.after.restart for a in plan.actions if a.kind is ActionKind.SET_HA_OVERRIDE}

    assert restarts(plan_of("8.0")) == {"SQLNODE1": "enabled", "SQLNODE2": "enabled"}
    assert restarts(plan_of("6.7")) == {"SQLNODE1": "enabled", "SQLNODE2": "enabled"}
    from reconciler.spec import HaRestart
    from tests.unit.plan_world import cab_cluster

    assert with_defaults(cab_cluster(), (4, 0)).spec.placement.ha is HaRestart.DISABLED  # before the 4.1 guide
    assert with_defaults(cab_cluster(vsphereVersion="4.1")).spec.placement.ha is HaRestart.ENABLED
    assert restarts(plan_of("8.0", ha="disabled")) == {"SQLNODE1": "disabled", "SQLNODE2": "disabled"}


def test_the_vm_host_rule_from_six_five_in_an_ha_cluster():
    from reconciler.plan import ActionKind

    [action] = [a for a in plan_of("8.0").actions if a.kind is ActionKind.SET_VM_HOST_RULE]
    assert str(action.address) == "sql-prod-01/vm-host-rule/mscsctl-sql-prod-01-on-hosts"
    assert action.rule == "MSCS-PLACE-010" and action.batch == "vcluster/Cluster-A"
    assert action.after.model_dump(by_alias=True) == {
        "vmGroup": "mscsctl-sql-prod-01-nodes",
        "hostGroup": "mscsctl-sql-prod-01-hosts",
        "vms": ["SQLNODE1", "SQLNODE2"],
        "hosts": ["esx-a1.lab.local", "esx-a2.lab.local", "esx-a3.lab.local"],
        "mandatory": True,
        "enabled": True,
    }
    assert [a for a in plan_of("6.0").actions if a.kind is ActionKind.SET_VM_HOST_RULE] == []
    from reconciler.errors import RuleViolation

    with pytest.raises(RuleViolation, match="MSCS-PLACE-010"):  # turned off while HA is on: refused
        plan_of("8.0", vmHostRule=False)


def test_cluster_options_only_when_written_and_from_their_versions():
    from reconciler.plan import ActionKind

    def options(plan):
        return {
            (str(a.address), a.after.value, a.rule) for a in plan.actions if a.kind is ActionKind.SET_CLUSTER_OPTION
        }

    assert options(plan_of("8.0")) == set()  # settings of the whole vSphere cluster: only when asked
    both = {"respectVmVmAntiAffinityRules": True, "forceAffinePoweron": True}
    assert options(plan_of("8.0", **both)) == {
        ("sql-prod-01/cluster-option/das.respectVmVmAntiAffinityRules", "true", "MSCS-PLACE-011"),
        ("sql-prod-01/cluster-option/drs.ForceAffinePoweron", "1", "MSCS-PLACE-012"),
    }
    force = ("sql-prod-01/cluster-option/drs.ForceAffinePoweron", "1", "MSCS-PLACE-012")
    assert options(plan_of("5.1", **both)) == {force}  # das.respectVmVmAntiAffinityRules: 5.5+


def test_applied_vm_host_rule_and_options_plan_no_changes_and_a_hand_change_is_planned_back():
    from reconciler.planner import build_plan
    from tests.unit.plan_world import as_applied, cab_cluster, cab_world

    cluster = cab_cluster(
        vsphereVersion="8.0", placement={"respectVmVmAntiAffinityRules": True, "forceAffinePoweron": True}
    )
    world = as_applied(cluster, cab_world(), build_plan(cluster, cab_world()))
    assert build_plan(cluster, world).actions == []
    vsc = world.clusters["Cluster-A"]
    hand = vsc.model_copy(update={"das_options": {**vsc.das_options, "das.respectVmVmAntiAffinityRules": "false"}})
    [action] = build_plan(cluster, world.model_copy(update={"clusters": {"Cluster-A": hand}})).actions
    assert (action.before.value, action.after.value) == ("false", "true")


def test_options_and_a_vm_host_rule_the_file_does_not_ask_for_are_left_alone():
    from reconciler.planner import build_plan
    from tests.unit.plan_world import as_applied, cab_cluster, cab_world

    asked = cab_cluster(
        vsphereVersion="8.0", placement={"respectVmVmAntiAffinityRules": True, "forceAffinePoweron": True}
    )
    world = as_applied(asked, cab_world(), build_plan(asked, cab_world()))
    vsc = world.clusters["Cluster-A"].model_copy(update={"ha_enabled": False})
    world = world.model_copy(update={"clusters": {"Cluster-A": vsc}})
    # A file that writes no option, under a vSphere cluster with HA now off (no VM-Host rule wanted):
    # what vCenter holds is neither planned away nor reported.
    plain = cab_cluster(vsphereVersion="8.0")
    plan = build_plan(plain, world)
    assert [a for a in plan.actions if a.address.kind in ("vm-host-rule", "cluster-option")] == []
    from reconciler import normalize
    from reconciler.rules import target_version

    ctx = normalize.context(plain, world, target_version(plain, world))
    current, _ = normalize.observed_tree(plain, world, ctx, {})
    assert [a for a in current if a.kind in ("vm-host-rule", "cluster-option")] == []
