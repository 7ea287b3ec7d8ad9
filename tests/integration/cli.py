"""Run the real `mscsctl` console script against a lab, as a user would."""

from __future__ import annotations

import copy
import os
import pty
import select
import subprocess
import sys
import time
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


def _env(lab: Any, env: dict[str, str] | None) -> dict[str, str]:
    full_env = {**os.environ, **(lab.env() if lab is not None else {}), **(env or {})}
    full_env.pop("MSCSCTL_STATE", None)
    full_env.pop("MSCSCTL_DEBUG", None)
    return full_env


def start(lab: Any, *args: str) -> subprocess.Popen[bytes]:
    """`mscsctl ARGS` started in the background (output discarded), for a test to kill it mid-run."""
    return subprocess.Popen(
        [*MSCSCTL, *args],
        env=_env(lab, None),
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def run(lab: Any, *args: str, env: dict[str, str] | None = None, timeout: float = 300) -> Result:
    proc = subprocess.run(
        [*MSCSCTL, *args],
        env=_env(lab, env),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        stdin=subprocess.DEVNULL,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def on_a_terminal(
    lab: Any, *args: str, env: dict[str, str] | None = None, answer: str | None = None, timeout: float = 180
) -> tuple[int, str]:
    """mscsctl with stdout and stderr on a pseudo-terminal, as in an interactive shell; with
    `answer`, stdin too, and `answer` is typed once `Apply these actions?` is asked."""
    main, child = pty.openpty()
    inherited = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "MSCSCTL_STATE")}
    full_env = {**inherited, **lab.env(), "TERM": "xterm-256color", "COLUMNS": "200", **(env or {})}
    stdin = child if answer is not None else subprocess.DEVNULL
    proc = subprocess.Popen([*MSCSCTL, *args], stdin=stdin, stdout=child, stderr=child, env=full_env, cwd=REPO)
    os.close(child)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    while True:
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"mscsctl on a terminal did not end within {timeout} s")
        ready, _, _ = select.select([main], [], [], 1)
        if not ready:
            continue
        try:
            data = os.read(main, 65536)
        except OSError:  # the terminal is closed once the process is gone
            break
        if not data:
            break
        chunks.append(data)
        if answer is not None and b"Apply these actions?" in b"".join(chunks):
            os.write(main, answer.encode() + b"\n")
            answer = None
    os.close(main)
    return proc.wait(timeout=60), b"".join(chunks).decode(errors="replace")


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
