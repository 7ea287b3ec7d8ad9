"""The options several commands share: how to reach vCenter, where state lives, what to leave out.

Declared once so that `plan`, `apply`, `drift`, `graph`, `show` and `force-unlock` spell
them, and explain them, the same way.
"""

from __future__ import annotations

import typer

from reconciler.run import DEFAULT_PARALLELISM, Connection, RunOptions
from state import parse_duration

SERVER = typer.Option(None, "--server", help="vCenter host[:port] (default: $VSPHERE_SERVER).")
USER = typer.Option(None, "--user", help="vCenter user (default: $VSPHERE_USER). Password: $VSPHERE_PASSWORD.")
CA_FILE = typer.Option(None, "--ca-file", help="PEM CA bundle for vCenter's certificate ($VSPHERE_CA_FILE).")
INSECURE = typer.Option(
    None,
    "--allow-unverified-ssl",
    help="Do not verify vCenter's certificate ($VSPHERE_ALLOW_UNVERIFIED_SSL=true). Not recommended.",
)
STATE = typer.Option(
    None, "--state", help="State file or postgresql:// URL (default: $MSCSCTL_STATE, else beside the file)."
)
STATE_DIR = typer.Option(
    None, "--state-dir", help="One state file per cluster in this directory (default for a directory: .mscsctl/)."
)
PARALLELISM = typer.Option(
    DEFAULT_PARALLELISM, "--parallelism", min=1, max=64, help="Clusters applied at once (default 10)."
)
SKIP_GUEST = typer.Option(False, "--skip-guest", help="Leave the guest side (disk timeout) out.")
LOCK_TIMEOUT = typer.Option(
    "0s",
    "--lock-timeout",
    help="How long to wait for a state lock another run holds, e.g. 30s, 5m (default 0s: fail at once).",
)


def run_options(
    server: str | None,
    user: str | None,
    ca_file: str | None,
    insecure: bool | None,
    state: str | None = None,
    state_dir: str | None = None,
    skip_guest: bool = False,
    lock_timeout: str = "0s",
) -> RunOptions:
    """A command's shared options, as the run loop takes them."""
    vcenter = Connection(server=server, user=user, ca_file=ca_file, allow_unverified=insecure)
    return RunOptions(
        connection=vcenter,
        state=state,
        state_dir=state_dir,
        skip_guest=skip_guest,
        lock_timeout_s=parse_duration(lock_timeout, option="--lock-timeout"),
    )
