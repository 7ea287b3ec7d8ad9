"""Reports for pipelines: a plan or a drift check as Markdown (merge requests) or JUnit XML (CI test views).

Pure: plans and drift reports in, text out, the same text for the same data (no clock, no
environment), so a pipeline can diff two runs and a test can compare with a golden file.
"""

from __future__ import annotations

import json
from typing import Any

from reconciler.findings import one_line


def show_value(value: Any) -> str:
    """A value as one line: `k=v, k=v` for an object, `[a, b]` for a list, JSON's true/false/null."""
    if isinstance(value, dict):
        return ", ".join(f"{k}={show_value(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(map(show_value, value)) + "]"
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    return one_line(str(value))
