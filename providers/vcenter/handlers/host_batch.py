"""The host-level actions of a plan (advanced options, perennial reservations), in one step.

One read of every host concerned (its LUNs, its option manager's options by key); for each
host, one UpdateOptions with every option it needs; then, for every host at once, one
MarkPerenniallyReservedEx_Task for the LUNs it needs marked (one more for any it needs
unmarked), and one wait for all those tasks. The hosts are independent of one another.

A host whose call fails does not keep the others from being done: their outcomes are
recorded, and the step fails with the first fault (`StepPartlyDone`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pyVmomi import vim

from providers.vcenter.connection import ConnectionLost
from providers.vcenter.handlers import host_option, lun_reservation
from providers.vcenter.handlers.base import ApplyContext
from reconciler.apply import HOST_LEVEL, StepPartlyDone
from reconciler.errors import MscsError
from reconciler.kinds import ActionKind
from reconciler.outcome import Outcome, done
from reconciler.plan import Action

OPTION_ACTIONS = (ActionKind.SET_HOST_OPTION, ActionKind.RESTORE_HOST_OPTION)  # a destroy puts the value back
LUN_ACTIONS = (ActionKind.RESERVE_LUN, ActionKind.RELEASE_LUN)
HOST_ACTIONS = tuple(sorted(HOST_LEVEL))  # the kinds the apply loop puts together in one host step
if set(OPTION_ACTIONS) | set(LUN_ACTIONS) != HOST_LEVEL:
    raise RuntimeError("host_batch: every host-level kind of reconciler.apply.HOST_LEVEL needs a handler here")


def apply_hosts(ctx: ApplyContext, step: list[Action]) -> list[Outcome]:
    by_host: dict[str, list[Action]] = {}
    for action in step:
        by_host.setdefault(action.target, []).append(action)
    hosts = {name: ctx.observed.hosts[name] for name in by_host}
    for name, host in hosts.items():
        if host.option_manager is None and any(a.kind in OPTION_ACTIONS for a in by_host[name]):
            raise MscsError(f"{by_host[name][0].address}: host {name} has no advanced-option manager")

    # One read: the LUNs of the hosts that reserve some, the options (by key) of those that set some.
    targets: dict[Any, list[str]] = {}
    for name, actions in by_host.items():
        host = hosts[name]
        keys = [host_option.setting_path(a.address.name) for a in actions if a.kind in OPTION_ACTIONS]
        if keys:
            targets[ctx.stub(vim.option.OptionManager, host.option_manager)] = keys
        if any(a.kind in LUN_ACTIONS for a in actions):
            targets[ctx.stub(vim.HostSystem, host.moref)] = [lun_reservation.LUN_PATH]
    now = ctx.read_all(targets)

    outcomes: dict[str, Outcome] = {}
    option_calls: list[tuple[str, list[Action], Callable[[], Any]]] = []
    task_starts: list[tuple[str, list[Action], Callable[[], Any], Any]] = []
    for name, actions in by_host.items():
        host = hosts[name]
        settings = now.get(host.option_manager or "", {})
        scsi_luns = now.get(host.moref, {}).get(lun_reservation.LUN_PATH) or []
        options: list[tuple[Action, Any]] = []
        marks: dict[bool, list[tuple[Action, str]]] = {}
        for action in actions:
            if action.kind in OPTION_ACTIONS:
                wanted = host_option.change(action, host.moref, settings)
                if isinstance(wanted, Outcome):
                    outcomes[action.id] = wanted
                else:
                    options.append((action, wanted))
            else:
                found = lun_reservation.change(action, host, scsi_luns)
                if isinstance(found, Outcome):
                    outcomes[action.id] = found
                else:
                    marks.setdefault(found[1], []).append((action, found[0]))
        if options:
            manager = ctx.stub(vim.option.OptionManager, host.option_manager)
            values = [v for _, v in options]
            keys = [v.key for v in values]
            what = ", ".join(f"set {key}" for key in reversed(keys)) + f" on {name}"
            option_calls.append(
                (what, [a for a, _ in options], lambda m=manager, v=values: m.UpdateOptions(changedValue=v))
            )
        storage = ctx.stub(vim.host.StorageSystem, host.storage_system) if marks else None
        for state, luns in sorted(marks.items()):
            uuids = [uuid for _, uuid in luns]
            verb = "perennially reserved" if state else "no longer perennially reserved"
            what = f"mark {', '.join(a.address.name for a, _ in luns)} {verb} on {name}"
            task_starts.append(
                (
                    what,
                    [a for a, _ in luns],
                    lambda s=storage, u=uuids, st=state: s.MarkPerenniallyReservedEx_Task(lunUuid=u, state=st),
                    storage,
                )
            )

    failures: list[MscsError] = []

    def settle(actions: list[Action], error: MscsError | None) -> None:
        if error is not None:
            failures.append(error)
            return
        for action in actions:
            outcomes[action.id] = done(action, host_moref=ctx.observed.hosts[action.target].moref)

    # The options, one UpdateOptions a host (no task: each is its own round trip), one host after
    # the other: after a failure nothing more is sent.
    for what, actions, fn in option_calls:
        try:
            ctx.call(what, fn)
        except MscsError as exc:
            settle(actions, exc)
            break
        settle(actions, None)
    # Every reservation task started, then one wait for all of them.
    if task_starts and not failures:
        faults = ctx.run_tasks([(what, start, on) for what, _, start, on in task_starts])
        for (_, actions, _, _), fault in zip(task_starts, faults, strict=True):
            settle(actions, fault)
    finished = [outcomes[a.id] for a in step if a.id in outcomes]
    lost = next((f for f in failures if isinstance(f, ConnectionLost)), None)
    if lost is not None:
        raise lost  # the executor reads every host again before anything is sent again
    if failures:
        raise StepPartlyDone(finished, failures[0])
    return finished
