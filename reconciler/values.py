"""Values as one line of text: the one formatter of plans, drift reports and their renderings."""

from __future__ import annotations

import json
from typing import Any

from reconciler.findings import one_line


def show_value(value: Any) -> str:
    """`absent` for a value vCenter or the file does not have; `k=v, k=v` for an object, `[a, b]`
    for a list, JSON's true/false/null inside them."""
    if value is None:
        return "absent"
    return _inner(value)


def _inner(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={_inner(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(map(_inner, value)) + "]"
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    return one_line(str(value))
