"""A fleet whose clusters live in two vCenters: two labs, one session each, read side by side.

The second cluster's file names its vCenter (`vcenter:`); its login comes from the
credentials file, the first cluster's from the environment. One vCenter going away fails
its own cluster only.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml
from pyVmomi import vim

from labctl import find, prop
from tests.integration.cli import DEFAULT_LAB, EXAMPLES, run

pytestmark = pytest.mark.slow

# The second vCenter presents other LUNs to its hosts: the same NAA ID in two vCenters is the
# same array LUN, which two clusters may never share (MSCS-SAFE-004).
SECOND_LUNS = {"a001": "c001", "a002": "c002"}


def _second_lab_text() -> str:
    text = DEFAULT_LAB.read_text()
    for old, new in SECOND_LUNS.items():
        text = text.replace(f"naa.6006016012345678000000000000{old}", f"naa.6006016012345678000000000000{new}")
    return text


def _cluster(path: Path, name: str, *, vcenter: str | None = None, second_luns: bool = False) -> Path:
    doc = yaml.safe_load((EXAMPLES / "cluster-across-boxes.yaml").read_text())
    doc["metadata"]["name"] = name
    if vcenter is not None:
        doc["spec"] = {"vcenter": vcenter, **doc["spec"]}
    if second_luns:
        for disk in doc["spec"]["sharedDisks"]["disks"]:
            for old, new in SECOND_LUNS.items():
                disk["lun"] = disk["lun"].replace(old, new)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _credentials(path: Path, lab, *, mode: int = 0o600) -> Path:
    entry = {"user": lab.username, "password": lab.password, "ca_file": lab.ca_file}
    path.write_text(yaml.safe_dump({"vcenters": {lab.server: entry}}))
    os.chmod(path, mode)
    return path


@pytest.fixture
def two_vcenters(lab_factory, tmp_path):
    first = lab_factory()
    second = lab_factory(_second_lab_text())
    fleet = tmp_path / "fleet"
    fleet.mkdir()
    _cluster(fleet / "a.yaml", "sql-prod-01")
    _cluster(fleet / "b.yaml", "sql-prod-02", vcenter=f"https://{second.server}/sdk", second_luns=True)
    creds = _credentials(tmp_path / "credentials.yaml", second)
    return first, second, fleet, {"MSCSCTL_CREDENTIALS_FILE": str(creds)}


def _rdm_luns(lab, vm: str) -> list[str]:
    si = lab.connect()
    devices = prop(si, find(si, vim.VirtualMachine, vm), "config.hardware.device")
    return sorted(
        d.backing.lunUuid[10:42]
        for d in devices
        if isinstance(d, vim.vm.device.VirtualDisk) and getattr(d.backing, "compatibilityMode", None)
    )


def test_a_fleet_in_two_vcenters_plans_applies_and_stays_clean(two_vcenters):
    first, second, fleet, env = two_vcenters
    planned = run(first, "plan", str(fleet), "--skip-guest", "--detailed-exitcode", "--json", env=env)
    assert planned.code == 2, planned
    assert sorted(p["cluster"] for p in json.loads(planned.out)["plans"]) == ["sql-prod-01", "sql-prod-02"]
    # One session per vCenter: each lab saw exactly one login.
    assert first.calls().get("Login", 0) == 1 and second.calls().get("Login", 0) == 1

    applied = run(first, "apply", str(fleet), "--skip-guest", "--auto-approve", "--json", env=env)
    assert applied.code == 0, applied
    assert {r["cluster"]: r["status"] for r in json.loads(applied.out)["clusters"]} == {
        "sql-prod-01": "applied",
        "sql-prod-02": "applied",
    }
    # Each cluster's disks are in its own vCenter, on its own LUNs.
    assert _rdm_luns(first, "SQLNODE2") == ["6006016012345678000000000000a001", "6006016012345678000000000000a002"]
    assert _rdm_luns(second, "SQLNODE2") == ["6006016012345678000000000000c001", "6006016012345678000000000000c002"]

    again = run(first, "plan", str(fleet), "--skip-guest", "--detailed-exitcode", env=env)
    assert again.code == 0, again
    drift = run(first, "drift", str(fleet), "--skip-guest", env=env)
    assert drift.code == 0, drift
    assert "sql-prod-01: no drift." in drift.out and "sql-prod-02: no drift." in drift.out


def test_one_vcenter_unreachable_fails_its_cluster_only(two_vcenters):
    first, second, fleet, env = two_vcenters
    second.stop()
    planned = run(first, "plan", str(fleet), "--skip-guest", env=env)
    assert planned.code == 1, planned
    assert "sql-prod-01" in planned.out  # the other cluster was planned and shown
    errors = [line for line in planned.err.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "sql-prod-02" in errors[0] and second.server in errors[0], planned.err
    assert "Traceback" not in planned.err

    applied = run(first, "apply", str(fleet), "--skip-guest", "--auto-approve", "--json", env=env)
    assert applied.code == 1, applied
    rows = {r["cluster"]: r for r in json.loads(applied.out)["clusters"]}
    assert rows["sql-prod-01"]["status"] == "applied"
    assert rows["sql-prod-02"]["status"] == "failed" and second.server in rows["sql-prod-02"]["error"]

    drift = run(first, "drift", str(fleet), "--skip-guest", env=env)
    assert drift.code == 1, drift  # never "no drift" for a cluster that could not be read
    assert "sql-prod-01: no drift." in drift.out
    assert "sql-prod-02: not checked in full" in drift.out


def test_a_vcenter_without_a_login_is_refused_and_no_password_goes_to_it(lab_factory, tmp_path):
    first = lab_factory()
    path = _cluster(tmp_path / "b.yaml", "sql-prod-02", vcenter="vc-elsewhere.example.com")
    result = run(first, "plan", str(path), "--skip-guest")
    assert result.code == 1, result
    assert "no login for vCenter vc-elsewhere.example.com:443" in result.err
    assert "credentials file" in result.err and "Traceback" not in result.err
    assert first.calls().get("Login", 0) == 0  # nothing was sent anywhere


def test_the_credentials_file_must_be_private(lab_factory, tmp_path):
    first = lab_factory()
    path = _cluster(tmp_path / "b.yaml", "sql-prod-02", vcenter=first.server)
    creds = _credentials(tmp_path / "credentials.yaml", first, mode=0o644)
    result = run(first, "plan", str(path), "--skip-guest", "--credentials-file", str(creds))
    assert result.code == 1, result
    assert f"chmod 600 {creds}" in result.err and "readable or writable by others" in result.err


def test_a_login_in_the_desired_file_is_a_located_error(tmp_path):
    path = _cluster(tmp_path / "b.yaml", "sql-prod-02", vcenter="https://admin:secret@vc2.example.com/sdk")
    result = run(None, "validate", str(path))
    assert result.code == 1, result
    line = f"{path}:6:12: spec.vcenter: "
    assert line in result.out and "never from the desired file [SPEC-VALUE]" in result.out, result
    assert "secret" not in result.err + result.out  # the password is not repeated back
