"""Golden files: the expected output of a renderer, kept in tests/unit/golden/.

A test compares what the code renders now with the file and fails with a diff when they
differ. After a deliberate change, rewrite them and review the diff in git:

    UPDATE_GOLDENS=1 .venv/bin/python -m pytest tests/unit -k "report or graph"
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import pytest

GOLDEN_DIR = Path(__file__).resolve().parent / "golden"


def check_golden(name: str, text: str) -> None:
    path = GOLDEN_DIR / name
    if os.environ.get("UPDATE_GOLDENS") == "1":
        path.write_bytes(text.encode("utf-8"))
        return
    if not path.exists():
        pytest.fail(f"{path.name} is missing: run the tests with UPDATE_GOLDENS=1 to write it")
    expected = path.read_bytes().decode("utf-8")
    if text != expected:
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(keepends=True),
                text.splitlines(keepends=True),
                fromfile=f"golden/{name}",
                tofile="rendered now",
            )
        )
        pytest.fail(f"output differs from golden/{name} (UPDATE_GOLDENS=1 rewrites it):\n{diff}")
