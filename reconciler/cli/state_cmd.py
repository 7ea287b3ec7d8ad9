"""`mscsctl show` and `mscsctl force-unlock`: read and unlock the recorded state."""

from __future__ import annotations

from pathlib import Path

import typer

from reconciler.cli import app, output
from reconciler.cli.options import STATE, STATE_DIR
from reconciler.errors import MscsError
from reconciler.workspace import locked_state, recorded_state


@app.command("show")
@output.reports_errors
def show_command(
    file: Path | None = typer.Argument(None, help="Desired-state file whose state to show."),
    as_json: bool = typer.Option(False, "--json", help="Print the state as JSON."),
    state_path: str | None = STATE,
    state_dir: str | None = STATE_DIR,
) -> int:
    """Print what mscsctl recorded the last time it applied. Exit codes: 0 ok, 1 error."""
    backend = recorded_state(file, state=state_path, state_dir=state_dir)
    output.debug(f"reading the state at {backend.describe()}")
    state = backend.read()
    if state is None:
        raise MscsError(f"no state yet at {backend.describe()}: nothing was applied")
    if as_json:
        output.print_json(state.model_dump(mode="json"))
        return 0
    con = output.stdout()
    con.print(f"cluster {state.cluster}  serial {state.serial}  lineage {state.lineage}", highlight=False)
    con.print(f"updated {state.updated_at}  desired file sha256 {state.desired_hash[:12]}", highlight=False)
    for address, res in state.resources.items():
        where = res.file or (f"key {res.device_key}" if res.device_key is not None else "")
        con.print(f"  {address}  ({res.kind}{', ' + where if where else ''})", highlight=False, markup=False)
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
