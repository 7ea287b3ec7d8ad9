"""`mscsctl show` and `mscsctl force-unlock`: read and unlock the recorded state."""

from __future__ import annotations

from pathlib import Path

import typer

from reconciler.cli import app, output
from reconciler.cli.options import STATE, STATE_DIR
from reconciler.errors import MscsError
from reconciler.record import KEPT, destroyed
from reconciler.report.json_formats import show_document, states_document
from reconciler.workspace import STATE_DIR_NAME, locked_state, recorded_state
from state import STATE_FILE_NAME, open_backend


@app.command("show")
@output.reports_errors
def show_command(
    file: Path | None = typer.Argument(
        None, help="Desired-state file whose state to show (default: the state of the current directory)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the state as JSON."),
    state_path: str | None = STATE,
    state_dir: str | None = STATE_DIR,
) -> int:
    """Print what mscsctl recorded the last time it applied.

    Without FILE or --state, the state of the current directory: .mscsctl/*.state.json (or
    --state-dir DIR) and an older version's mscsctl.state.json; one is shown, several are
    listed with their clusters. Exit codes: 0 ok, 1 error (no state found).
    """
    if file is None and state_path is None:
        found = states_here(Path(state_dir) if state_dir else None)
        if len(found) != 1:
            return _list_states(found, state_dir, as_json)
        state_path = str(found[0])
    backend = recorded_state(file, state=state_path, state_dir=state_dir)
    output.debug(f"reading the state at {backend.describe()}")
    state = backend.read()
    if state is None:
        raise MscsError(f"no state yet at {backend.describe()}: nothing was applied")
    if as_json:
        output.print_json(show_document(state))
        return 0
    con = output.stdout()
    con.print(f"cluster {state.cluster}  serial {state.serial}  lineage {state.lineage}", highlight=False)
    con.print(f"updated {state.updated_at}  desired file sha256 {state.desired_hash[:12]}", highlight=False)
    gone = destroyed(state)
    if gone is not None:
        con.print(f"destroyed {gone.applied_at} (mscsctl destroy); left in vCenter:", highlight=False, markup=False)
        for kept in gone.applied_value(KEPT) or []:
            con.print(f"  {kept}", highlight=False, markup=False)
    for address, res in state.resources.items():
        if res is gone:
            continue
        where = res.file or (f"key {res.device_key}" if res.device_key is not None else "")
        con.print(f"  {address}  ({res.kind}{', ' + where if where else ''})", highlight=False, markup=False)
    return 0


def states_here(state_dir: Path | None = None) -> list[Path]:
    """The state files of the current directory, as `plan` and `apply` place them.

    Each cluster's state is `.mscsctl/NAME.state.json` beside its desired file (or in the
    --state-dir given), for a single file as for a directory; an older version's
    `mscsctl.state.json` (moved to `.mscsctl/` by the next run of its file) is listed too.
    """
    directory = state_dir if state_dir is not None else Path(STATE_DIR_NAME)
    found = sorted(p for p in directory.glob("*.state.json") if p.is_file())
    single = Path(STATE_FILE_NAME)
    if state_dir is None and single.is_file():
        found.append(single)
    return found


def _list_states(found: list[Path], state_dir: str | None, as_json: bool) -> int:
    if not found:
        where = f"{state_dir}/*.state.json" if state_dir else f"{STATE_DIR_NAME}/*.state.json or {STATE_FILE_NAME}"
        raise MscsError(f"no state in this directory ({where}): give a desired FILE or --state PATH")
    rows = []
    for path in found:
        state = open_backend(str(path)).read()
        rows.append((path, state.cluster if state else None, state.serial if state else None))
    if as_json:
        output.print_json(states_document(rows))
        return 0
    con = output.stdout()
    con.print(f"{len(rows)} states here; show one with: mscsctl show --state PATH", highlight=False, markup=False)
    width = max(len(str(p)) for p, _, _ in rows)
    for path, cluster, serial in rows:
        what = f"cluster {cluster}  serial {serial}" if cluster else "empty"
        con.print(f"  {path!s:<{width}}  {what}", highlight=False, markup=False)
    return 0


@app.command("force-unlock")
@output.reports_errors
def force_unlock_command(
    lock_id: str = typer.Argument(
        ..., help="The lock ID named in the 'locked' error (UUID@STATE: it says which state it locks)."
    ),
    file: Path | None = typer.Option(
        None, "--file", "-f", help="Desired-state file whose state is locked (only for a bare UUID)."
    ),
    state_path: str | None = STATE,
    state_dir: str | None = STATE_DIR,
) -> int:
    """Remove a stale state lock left by a run that died, if its ID is the one given.

    The ID the 'locked' message prints names the state, so it is all that is needed; for
    PostgreSQL, a password comes from --state or MSCSCTL_STATE (same database), PGPASSWORD
    or ~/.pgpass. Exit codes: 0 removed, 1 error.
    """
    backend, lock_uuid = locked_state(lock_id, file, state=state_path, state_dir=state_dir)
    output.debug(f"removing lock {lock_uuid} from the state at {backend.describe()}")
    backend.force_unlock(lock_uuid)
    output.info(f"lock {lock_uuid} removed from state {backend.describe()}")
    return 0
