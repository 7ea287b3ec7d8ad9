"""Run the real `mscsctl` console script against a lab, as a user would."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
DEFAULT_LAB = REPO / "tests" / "lab" / "labs" / "default.yaml"
MSCSCTL = [sys.executable, "-c", "import sys; from reconciler.cli import main; sys.exit(main())"]


@dataclass
class Result:
    code: int
    out: str
    err: str

    def __str__(self) -> str:
        return f"exit {self.code}\n--- stdout\n{self.out}\n--- stderr\n{self.err}"


def run(lab: Any, *args: str, env: dict[str, str] | None = None, timeout: float = 300) -> Result:
    full_env = {**os.environ, **(lab.env() if lab is not None else {}), **(env or {})}
    full_env.pop("MSCSCTL_STATE", None)
    full_env.pop("MSCSCTL_DEBUG", None)
    proc = subprocess.run(
        [*MSCSCTL, *args],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        stdin=subprocess.DEVNULL,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def default_lab() -> dict[str, Any]:
    return yaml.safe_load(DEFAULT_LAB.read_text())


def example(name: str, tmp_path: Path, **spec_changes: Any) -> Path:
    """A copy of an example in tmp_path (so its state file lands there), with spec changes."""
    doc = yaml.safe_load((EXAMPLES / f"{name}.yaml").read_text())
    doc = copy.deepcopy(doc)
    doc["spec"].update(spec_changes)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path
