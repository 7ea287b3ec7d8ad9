"""Saved plans (`plan --out`, `plan --json`): the versioned JSON form, written and read strictly.

A saved plan is one cluster's plan object, or a directory's `{"format_version", "plans"}`
(docs/plan-format.md). `apply PLAN` runs exactly what the file says, so the reader refuses
anything it does not know instead of guessing: another format version, an unknown field
anywhere (the plan, an action, an action's payload), a value of the wrong type. Each
refusal is one located line, `PATH: field.path: message`, as a desired file's errors are.
The bytes are parsed once; no part of the file is encoded and read again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from reconciler.bounded import InputRefused, read_bounded
from reconciler.errors import MscsError
from reconciler.kinds import ActionKind, parse_payload
from reconciler.plan import PLAN_FORMAT_VERSION, Plan
from reconciler.render import counts
from reconciler.seal import seal_of
from reconciler.version import mscsctl_version
from reconciler.workspace import write_private

NOT_A_PLAN = "not a plan written by mscsctl"
FLEET_FIELDS = ("format_version", "mscsctl_version", "plans")
# Written for readers, not read back: `summary` is derived from the actions, `mscsctl_version` names the writer.
DERIVED_FIELDS = ("mscsctl_version", "summary")


class PlanFileError(MscsError):
    """A saved plan that cannot be applied as it is; the message is one located line."""


def plan_json(plan: Plan) -> dict[str, Any]:
    """The documented machine form of one plan; `format_version` changes on breaking edits.

    Payload fields go by their JSON names (`waitForTools`, `pciSlot`), as the state's do.
    The `seal` is computed here, from what is written, so that `apply PLAN` can tell an
    edited plan (reconciler/seal.py).
    """
    data = plan.model_dump(mode="json", by_alias=True)
    data["format_version"] = PLAN_FORMAT_VERSION
    data["mscsctl_version"] = mscsctl_version()
    data["seal"] = seal_of(plan)
    data["summary"] = counts(plan)
    return data


def plan_document(plans: list[Plan], *, fleet: bool) -> dict[str, Any]:
    """What `plan --json` prints and `plan --out` saves: one plan, or a directory's plans."""
    if not fleet:
        return plan_json(plans[0])
    return {
        "format_version": PLAN_FORMAT_VERSION,
        "mscsctl_version": mscsctl_version(),
        "plans": [plan_json(p) for p in plans],
    }


def write_plans(path: Path, plans: list[Plan], *, fleet: bool) -> None:
    """Save the plans for `apply PLAN`, readable by their owner only (they carry what vCenter showed)."""
    write_private(path, json.dumps(plan_document(plans, fleet=fleet), indent=2) + "\n")


def read_plans(path: Path) -> list[Plan]:
    """The plans saved at `path`, or `PlanFileError` saying what is wrong with the file."""
    try:
        raw = read_bounded(path, "saved plan")
    except InputRefused as exc:
        raise PlanFileError(str(exc)) from None
    except OSError as exc:
        raise PlanFileError(f"{path}: cannot read the plan: {exc.strerror or exc}") from None
    return parse_plans(raw, str(path))


def saved_plans_at(path: Path) -> list[Plan] | None:
    """The plans saved at `path`, or None when `path` is a desired file or a directory.

    A file is a saved plan when it is named `*.json` (unless it is a desired file written
    as JSON: an object with `apiVersion`) or when it is a JSON object with a plan's fields;
    a broken plan is then refused, not read as a desired file. A path that is not a regular
    file (a FIFO, a device) or is over the size limit is never read: refused here when it is
    named `*.json`, else left to the desired-file loader, which refuses it in its own words.
    """
    if path.is_dir():
        return None
    named_json = path.suffix.lower() == ".json"
    try:
        raw = read_bounded(path, "saved plan")
    except InputRefused as exc:
        if named_json:
            raise PlanFileError(str(exc)) from None
        return None  # the desired-file loader refuses it too, in a desired file's words
    except OSError:
        return None  # the desired-file loader says what is wrong with the path
    if not named_json and raw.lstrip()[:1] != b"{":
        return None
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        if not named_json:
            return None  # e.g. a desired file in YAML's flow style
        raise _invalid_json(exc, str(path)) from None
    if isinstance(data, dict) and "apiVersion" in data and not {"format_version", "actions", "plans"} & data.keys():
        return None
    if not named_json and not (isinstance(data, dict) and "format_version" in data):
        return None
    return _plans_of(data, str(path))


def parse_plans(raw: bytes | str, source: str) -> list[Plan]:
    """A saved plan's plans, from the file's bytes; `source` names the file in messages."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _invalid_json(exc, source) from None
    return _plans_of(data, source)


def _invalid_json(exc: ValueError, source: str) -> PlanFileError:
    """A truncated or garbled file: where its JSON breaks, as the JSON reader says."""
    if isinstance(exc, json.JSONDecodeError):
        return PlanFileError(f"{source}:{exc.lineno}:{exc.colno}: {NOT_A_PLAN} (invalid JSON: {exc.msg})")
    return PlanFileError(f"{source}: {NOT_A_PLAN} (invalid JSON: {exc})")


def _plans_of(data: Any, source: str) -> list[Plan]:
    if not isinstance(data, dict) or not ({"actions", "plans", "format_version"} & data.keys()):
        raise PlanFileError(f"{source}: {NOT_A_PLAN} (expected a JSON object with format_version and actions or plans)")
    if "plans" not in data:
        return [_plan(data, source, "")]
    _check_version(data, source, "")
    unknown = sorted(data.keys() - set(FLEET_FIELDS))
    if unknown:
        raise PlanFileError(f"{source}: {unknown[0]}: unknown field")
    items = data["plans"]
    if not isinstance(items, list) or not items:
        raise PlanFileError(f"{source}: plans: expected a non-empty list of plans")
    return [_plan(item, source, f"plans[{n}]") for n, item in enumerate(items)]


def _plan(data: Any, source: str, where: str) -> Plan:
    if not isinstance(data, dict):
        raise PlanFileError(f"{source}: {where or '(top)'}: expected a plan (a JSON object)")
    _check_version(data, source, where)
    data = {k: v for k, v in data.items() if k not in DERIVED_FIELDS}
    actions = data.get("actions")
    if isinstance(actions, list):
        data["actions"] = [_typed_payloads(a, source, _join(where, f"actions[{n}]")) for n, a in enumerate(actions)]
    try:
        return Plan.model_validate(data)
    except ValidationError as exc:
        raise PlanFileError(_first_problem(exc, source, where)) from None


def _check_version(data: dict[str, Any], source: str, where: str) -> None:
    """Like the state's: a newer version needs a newer mscsctl, anything else is refused."""
    field = _join(where, "format_version")
    if "format_version" not in data:
        raise PlanFileError(f"{source}: {field}: missing: {NOT_A_PLAN}")
    version = data["format_version"]
    if type(version) is int and version > PLAN_FORMAT_VERSION:
        raise PlanFileError(
            f"{source}: {field}: the plan has format version {version}; this mscsctl reads version "
            f"{PLAN_FORMAT_VERSION} only. Use a newer mscsctl."
        )
    if type(version) is not int or version != PLAN_FORMAT_VERSION:
        raise PlanFileError(f"{source}: {field}: no known plan format version ({version!r}): {NOT_A_PLAN}")


def _typed_payloads(action: Any, source: str, where: str) -> Any:
    """An action with `before`/`after` read as its kind's payload, so an error names the side."""
    if not isinstance(action, dict) or "kind" not in action:
        return action  # the plan model says what is wrong with it
    if not isinstance(action["kind"], str) or action["kind"] not in ActionKind._value2member_map_:
        raise PlanFileError(
            f"{source}: {_join(where, 'kind')}: unknown action kind {action['kind']!r} "
            "(docs/plan-format.md lists the kinds; a plan made by a newer mscsctl needs that mscsctl)"
        )
    kind = ActionKind(action["kind"])
    action = dict(action)
    for side in ("before", "after"):
        value = action.get(side)
        if not isinstance(value, dict):
            continue
        try:
            action[side] = parse_payload(kind, value)
        except ValidationError as exc:
            raise PlanFileError(_first_problem(exc, source, _join(where, side), value)) from None
    return action


def _first_problem(exc: ValidationError, source: str, where: str, data: Any = None) -> str:
    """One line for a validation error: its first problem, located, and how many more there are."""
    errors = exc.errors()
    first = errors[0]
    loc = list(first["loc"])
    # A payload with variants (an RDM or a shared VMDK) puts the variant's tag first: not a field.
    if isinstance(data, dict) and len(loc) > 1 and isinstance(loc[0], str) and loc[0] not in data:
        loc = loc[1:]
    path = where
    for part in loc:
        path = f"{path}[{part}]" if isinstance(part, int) else _join(path, str(part))
    message = "unknown field" if first["type"] == "extra_forbidden" else first["msg"].splitlines()[0]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{source}: {path or '(top)'}: {message}{more}"


def _join(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name
