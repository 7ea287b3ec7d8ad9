"""`make demo [EXAMPLE=FILE]`: start a lab, run validate -> plan -> apply -> plan -> drift on an example.

The lab is the one the example names in a `# lab: tests/lab/labs/NAME.yaml` comment line (the
vSphere 8 examples run against `vsphere8.yaml`), else the default lab. Each command is printed
before it runs, as a user would type it, with the lab's VSPHERE_* variables in the environment.
The lab and a scratch state directory are removed at the end.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import labctl

REPO = Path(__file__).resolve().parents[1]
LAB_LINE = re.compile(r"^#\s*lab:\s*(?P<path>\S+)\s*$", re.MULTILINE)


def lab_of(example: Path) -> Path:
    """The lab file the example names (`# lab: PATH`, relative to the repository), or the default lab."""
    found = LAB_LINE.search((REPO / example).read_text())
    return REPO / found["path"] if found else labctl.DEFAULT_LAB


def main(argv: list[str]) -> int:
    example = Path(argv[0] if argv else "examples/cluster-across-boxes.yaml")
    mscsctl = str(Path(sys.executable).with_name("mscsctl"))
    work = Path(tempfile.mkdtemp(prefix="mscsctl-demo-"))
    desired = work / example.name
    shutil.copy(REPO / example, desired)
    lab_file = lab_of(example)
    print(f"== starting the simulated vCenter lab ({lab_file.relative_to(REPO)})", flush=True)
    lab = labctl.start(lab_file, work / "lab")
    # The lab's guests (Wine) take the lab's guest login, so the plan shows the disk timeout too.
    env = {
        "MSCSCTL_GUEST_USER": labctl.GUEST_USER,
        "MSCSCTL_GUEST_PASSWORD": labctl.GUEST_PASSWORD,
        **os.environ,
        **lab.env(),
    }
    print(f"   {lab.url} (CA file {lab.ca_file})", flush=True)
    steps = [
        ["validate", str(desired)],
        ["plan", str(desired), "--detailed-exitcode"],
        ["apply", str(desired), "--auto-approve"],
        ["plan", str(desired), "--detailed-exitcode"],
        ["drift", str(desired)],
    ]
    # validate ok, plan finds changes (2), apply ok, the second plan finds none, no drift
    expected = [0, 2, 0, 0, 0]
    try:
        for n, step in enumerate(steps):
            print(f"\n$ mscsctl {' '.join(step)}", flush=True)
            code = subprocess.run([mscsctl, *step], env=env, cwd=work).returncode
            print(f"(exit {code})", flush=True)
            if code != expected[n]:
                print(f"demo: unexpected exit code {code}", file=sys.stderr)
                return 1
    finally:
        lab.stop()
        shutil.rmtree(work, ignore_errors=True)
    print("\n== done: the cluster was configured, and the second plan found nothing to change.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
