"""One state layout: `.mscsctl/NAME.state.json` beside the files, for a single file and a directory.

Through the real CLI against the lab: two clusters' files in one folder each keep their own
state, whether run one file at a time or as the directory; an older version's
`mscsctl.state.json` moves to its place once (said on stderr, only when it holds that
cluster, never over a newer state, never while a run holds its lock); and every command
mscsctl prints for the user to run (drift's fix, `plan --out`'s apply, force-unlock) works as
printed, run through bash, and converges on the same state, never a second one.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from pyVmomi import VmomiSupport, vim

from labctl import find, prop
from state import LocalFileBackend, new_lock_info
from tests.integration.cli import example, run

pytestmark = pytest.mark.slow

SKIP = "--skip-guest"  # the lab here plays no guests: left out on purpose


def two_clusters(tmp_path: Path) -> Path:
    folder = tmp_path / "clusters"
    folder.mkdir()
    for name in ("cluster-across-boxes", "cluster-in-a-box"):
        shutil.move(example(name, tmp_path), folder / f"{name}.yaml")
    return folder


def files_under(folder: Path) -> list[str]:
    """The state files (and any lock) under the folder; backups left out."""
    return sorted(
        str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and p.suffix not in (".yaml", ".backup")
    )


def bash(lab, command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """A printed command, run as a user pastes it: `mscsctl` is the installed console script on PATH."""
    env = {**os.environ, **lab.env(), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    env.pop("MSCSCTL_STATE", None)
    return subprocess.run(
        ["bash", "-c", command], env=env, cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )


def test_two_clusters_files_in_one_folder_keep_one_state_each_run_alone_or_as_the_folder(lab, tmp_path):
    folder = two_clusters(tmp_path)
    for name in ("cluster-across-boxes", "cluster-in-a-box"):
        applied = run(lab, "apply", str(folder / f"{name}.yaml"), "--auto-approve", SKIP)
        assert applied.code == 0, applied
    assert files_under(folder) == [".mscsctl/cib-test-01.state.json", ".mscsctl/sql-prod-01.state.json"]

    # The folder finds the very states the single files wrote: nothing to change, no new state.
    as_folder = run(lab, "plan", str(folder), "--detailed-exitcode", SKIP)
    assert as_folder.code == 0, as_folder
    alone = run(lab, "plan", str(folder / "cluster-in-a-box.yaml"), "--detailed-exitcode", SKIP)
    assert alone.code == 0, alone
    shown = run(lab, "show", str(folder / "cluster-across-boxes.yaml"), "--json")
    assert shown.code == 0 and json.loads(shown.out)["cluster"] == "sql-prod-01", shown
    assert files_under(folder) == [".mscsctl/cib-test-01.state.json", ".mscsctl/sql-prod-01.state.json"]


def test_an_older_state_beside_a_single_file_moves_once_and_says_so(lab, tmp_path):
    folder = two_clusters(tmp_path)
    cab = folder / "cluster-across-boxes.yaml"
    old = folder / "mscsctl.state.json"
    # As an older version left it: the single file's state beside it.
    applied = run(lab, "apply", str(cab), "--auto-approve", SKIP, "--state", str(old))
    assert applied.code == 0, applied
    serial = json.loads(old.read_text())["serial"]

    # The other cluster's file does not take it (it holds sql-prod-01) and gets its own state.
    cib = run(lab, "plan", str(folder / "cluster-in-a-box.yaml"), SKIP)
    assert cib.code == 0, cib
    assert "moved the state" not in cib.err and old.is_file()

    # A run of an older version holds its lock: not moved, and the lock is named with its fix.
    backend = LocalFileBackend(old)
    held = backend.lock(new_lock_info("apply", who="old-version@admin01"))
    refused = run(lab, "plan", str(cab), SKIP)
    assert refused.code == 1, refused
    assert "old-version@admin01" in refused.err and old.is_file()
    assert not (folder / ".mscsctl" / "sql-prod-01.state.json").exists()
    fix = re.search(r"(mscsctl force-unlock \S+)", refused.err)
    assert fix is not None, refused.err
    unlocked = bash(lab, fix.group(1), tmp_path)
    assert unlocked.returncode == 0, unlocked.stderr
    assert held.id in unlocked.stderr

    moved = run(lab, "plan", str(cab), "--detailed-exitcode", SKIP)
    assert moved.code == 0, moved  # the same state: nothing to change
    new = folder / ".mscsctl" / "sql-prod-01.state.json"
    assert f"moved the state of cluster sql-prod-01 from {old} to {new}" in moved.err
    assert json.loads(new.read_text())["serial"] == serial
    assert files_under(folder) == [".mscsctl/sql-prod-01.state.json"]
    assert (folder / ".mscsctl" / "sql-prod-01.state.json.backup").is_file()  # the backup went with it
    assert not (folder / "mscsctl.state.json.backup").exists()
    again = run(lab, "plan", str(folder), "--detailed-exitcode", SKIP)
    assert again.code == 2, again  # cib-test-01 was never applied
    assert "moved the state" not in again.err


def test_an_older_state_never_overwrites_the_new_one(lab, tmp_path):
    folder = two_clusters(tmp_path)
    cab = folder / "cluster-across-boxes.yaml"
    assert run(lab, "apply", str(cab), "--auto-approve", SKIP).code == 0
    new = folder / ".mscsctl" / "sql-prod-01.state.json"
    kept = new.read_bytes()
    stray = folder / "mscsctl.state.json"
    stray.write_bytes(kept)
    stray.chmod(0o600)

    planned = run(lab, "plan", str(cab), "--detailed-exitcode", SKIP)
    assert planned.code == 0, planned
    assert new.read_bytes() == kept and stray.is_file()
    assert f"{stray} also holds a state of cluster sql-prod-01" in planned.err


def test_every_printed_command_works_as_printed_and_converges_on_the_same_state(lab, tmp_path):
    folder = two_clusters(tmp_path)
    applied = run(lab, "apply", str(folder), "--auto-approve", SKIP)
    assert applied.code == 0, applied
    states = files_under(folder)
    si = lab.connect()
    host = find(si, vim.HostSystem, "esx-a2.lab.local")
    mgr = prop(si, host, "configManager.advancedOption")
    mgr.UpdateOptions(changedValue=[vim.option.OptionValue(key="Disk.UseDeviceReset", value=VmomiSupport.long(1))])

    # drift's fix, for the folder and for the single file: each run as printed.
    for checked in (folder, folder / "cluster-across-boxes.yaml"):
        drift = run(lab, "drift", str(checked), SKIP)
        assert drift.code == 2, drift
        (fix,) = set(re.findall(r"fix: (mscsctl apply \S+)$", drift.out, re.M))
        assert fix == f"mscsctl apply {folder / 'cluster-across-boxes.yaml'}"
        fixed = bash(lab, f"{fix} --auto-approve {SKIP}", tmp_path)
        assert fixed.returncode == 0, fixed.stdout + fixed.stderr
        assert run(lab, "drift", str(folder), SKIP).code == 0
        assert files_under(folder) == states
        mgr.UpdateOptions(changedValue=[vim.option.OptionValue(key="Disk.UseDeviceReset", value=VmomiSupport.long(1))])

    # With --state-dir, the printed commands carry it: the fix reaches the same state.
    elsewhere = tmp_path / "states"
    assert run(lab, "apply", str(folder), "--auto-approve", SKIP, "--state-dir", str(elsewhere)).code == 0
    mgr.UpdateOptions(changedValue=[vim.option.OptionValue(key="Disk.UseDeviceReset", value=VmomiSupport.long(1))])
    drift = run(lab, "drift", str(folder), SKIP, "--state-dir", str(elsewhere))
    assert drift.code == 2, drift
    (fix,) = set(re.findall(r"fix: (mscsctl apply .+)$", drift.out, re.M))
    assert fix.endswith(f"--state-dir {elsewhere}"), fix
    fixed = bash(lab, f"{fix} --auto-approve {SKIP}", tmp_path)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert run(lab, "drift", str(folder), SKIP, "--state-dir", str(elsewhere)).code == 0
    # Only the cluster the fix changed has a state there (the other had nothing to apply).
    assert sorted(p.name for p in elsewhere.glob("*.state.json")) == ["sql-prod-01.state.json"]

    # plan --out's "apply exactly this plan with": as printed.
    mgr.UpdateOptions(changedValue=[vim.option.OptionValue(key="Disk.UseDeviceReset", value=VmomiSupport.long(1))])
    saved = tmp_path / "plan.json"
    planned = run(lab, "plan", str(folder), "--out", str(saved), SKIP)
    assert planned.code == 0, planned
    printed = re.search(r"Apply exactly this plan with: (.+)$", planned.err, re.M)
    assert printed is not None, planned.err
    done = bash(lab, printed.group(1), tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert run(lab, "plan", str(folder), "--detailed-exitcode", SKIP).code == 0

    # force-unlock as the 'locked' message prints it.
    backend = LocalFileBackend(folder / ".mscsctl" / "cib-test-01.state.json")
    backend.lock(new_lock_info("apply", who="crashed@admin01"))
    locked = run(lab, "apply", str(folder), "--auto-approve", SKIP)
    assert locked.code == 1 and "crashed@admin01" in locked.err, locked
    unlock = re.search(r"(mscsctl force-unlock \S+)", locked.err)
    assert unlock is not None, locked.err
    assert bash(lab, unlock.group(1), tmp_path).returncode == 0
    assert run(lab, "apply", str(folder), "--auto-approve", SKIP).code == 0
    assert sorted(str(p.relative_to(folder)) for p in folder.rglob("*.state.json")) == [
        ".mscsctl/cib-test-01.state.json",
        ".mscsctl/sql-prod-01.state.json",
    ]
