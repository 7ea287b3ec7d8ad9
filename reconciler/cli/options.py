"""The options several commands share: how to reach vCenter, where state lives, what to leave out.

Declared once so that `plan`, `apply`, `drift`, `graph`, `show` and `force-unlock` spell
them, and explain them, the same way.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

import typer

from reconciler.run import DEFAULT_PARALLELISM, Connection, RunOptions
from state import parse_duration

SERVER = typer.Option(None, "--server", help="vCenter host[:port] (default: $VSPHERE_SERVER).")
USER = typer.Option(None, "--user", help="vCenter user (default: $VSPHERE_USER). Password: $VSPHERE_PASSWORD.")
CA_FILE = typer.Option(None, "--ca-file", help="PEM CA bundle for vCenter's certificate ($VSPHERE_CA_FILE).")
CREDENTIALS = typer.Option(
    None,
    "--credentials-file",
    help="Logins of the vCenters desired files name with `vcenter:` ($MSCSCTL_CREDENTIALS_FILE; mode 0600).",
)
INSECURE = typer.Option(
    None,
    "--allow-unverified-ssl",
    help="Do not verify vCenter's certificate ($VSPHERE_ALLOW_UNVERIFIED_SSL=true). Not recommended.",
)
STATE = typer.Option(
    None,
    "--state",
    help="State file or postgresql:// URL (default: $MSCSCTL_STATE, else .mscsctl/NAME.state.json beside the file).",
)
STATE_DIR = typer.Option(
    None, "--state-dir", help="One state file per cluster in this directory (default: .mscsctl/ beside the file(s))."
)
PARALLELISM = typer.Option(
    DEFAULT_PARALLELISM, "--parallelism", min=1, max=64, help="Clusters applied at once (default 10)."
)
SKIP_GUEST = typer.Option(
    False,
    "--skip-guest",
    help="Leave the guest side (disk timeout) out on purpose: named as skipped, not counted as unchecked.",
)
TARGET = typer.Option(
    None,
    "--target",
    metavar="ADDRESS",
    help="Only this cluster, node (CLUSTER/node/NODE) or object address, and what it depends on (repeatable).",
)
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
    credentials_file: str | None = None,
    state: str | None = None,
    state_dir: str | None = None,
    skip_guest: bool = False,
    lock_timeout: str = "0s",
    targets: list[str] | None = None,
) -> RunOptions:
    """A command's shared options, as the run loop takes them."""
    from reconciler.cli import output

    vcenter = Connection(
        server=server, user=user, ca_file=ca_file, allow_unverified=insecure, credentials_file=credentials_file
    )
    return RunOptions(
        connection=vcenter,
        state=state,
        state_dir=state_dir,
        skip_guest=skip_guest,
        lock_timeout_s=parse_duration(lock_timeout, option="--lock-timeout"),
        targets=tuple(targets or ()),
        notify=output.info,
    )


def with_run_options(
    *, guest: bool = True, lock: bool = True, target: bool = False
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Add the shared vCenter and state options to a command, handed to it as one `options: RunOptions`.

    The command declares `options: RunOptions` as its last parameter; typer sees the shared
    flags instead (`--skip-guest`, `--lock-timeout` and `--target` where `guest`, `lock` and
    `target` say), so each
    command spells and explains them the same way without listing them again.
    """
    shared: list[tuple[str, Any, Any]] = []
    if guest:
        shared.append(("skip_guest", bool, SKIP_GUEST))
    shared += [("state_path", str | None, STATE), ("state_dir", str | None, STATE_DIR)]
    if lock:
        shared.append(("lock_timeout", str, LOCK_TIMEOUT))
    if target:
        shared.append(("targets", list[str] | None, TARGET))
    shared += [
        ("server", str | None, SERVER),
        ("user", str | None, USER),
        ("ca_file", str | None, CA_FILE),
        ("insecure", bool | None, INSECURE),
        ("credentials_file", str | None, CREDENTIALS),
    ]

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        signature = inspect.signature(command, eval_str=True)
        own = [p for name, p in signature.parameters.items() if name != "options"]
        added = [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=d, annotation=a) for n, a, d in shared]

        @functools.wraps(command)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            values = {name: kwargs.pop(name) for name, _, _ in shared}
            kwargs["options"] = run_options(
                values["server"],
                values["user"],
                values["ca_file"],
                values["insecure"],
                values["credentials_file"],
                values["state_path"],
                values["state_dir"],
                values.get("skip_guest", False),
                values.get("lock_timeout", "0s"),
                values.get("targets"),
            )
            return command(*args, **kwargs)

        params = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own] + added
        wrapper.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in params} | {"return": signature.return_annotation}
        return wrapper

    return decorate
