"""Power: a node is powered off only for a change that cannot be hot-plugged, then back on.

Off is a guest shutdown where VMware Tools run (the cluster service stops cleanly), a power
off otherwise. On waits for Tools where they ran before, so the next node is touched only
once this one is back; vCenter assigns PCI slots at power-on, so the adapters' slots are
read then, for the state to record. A node found running already (a run that stopped after
powering it on, or whose answer was lost) is waited for in the same way before it is
called back: "back" means Tools running again, whoever powered it on.
"""

from __future__ import annotations

from providers.vcenter.handlers.base import ApplyContext, after
from providers.vcenter.handlers.reconfigure import DEVICE_PATHS, VmDevices
from reconciler.kinds.power import PowerPayload
from reconciler.outcome import Outcome, done, skipped
from reconciler.plan import Action

SHUTDOWN_TIMEOUT_S = 600.0
POWER_PATHS = ["runtime.powerState", "guest.toolsRunningStatus"]
TOOLS_RUNNING = "guestToolsRunning"


def power_off(ctx: ApplyContext, action: Action) -> Outcome:
    vm = ctx.vm(action.target)
    now = ctx.read(vm, POWER_PATHS)
    if str(now.get("runtime.powerState")) == "poweredOff":
        return skipped(action, "already powered off")
    if now.get("guest.toolsRunningStatus") == TOOLS_RUNNING:
        ctx.call(f"shut down the guest of {action.target}", vm.ShutdownGuest)
        ctx.wait_for(vm, "runtime.powerState", "poweredOff", SHUTDOWN_TIMEOUT_S, action)
        return done(action, "guest shut down")
    ctx.run_task(f"power off {action.target}", vm.PowerOffVM_Task, on=vm)
    return done(action)


def power_on(ctx: ApplyContext, action: Action) -> Outcome:
    vm = ctx.vm(action.target)
    now = ctx.read(vm, POWER_PATHS)
    wait = after(action, PowerPayload).wait_for_tools
    if str(now.get("runtime.powerState")) == "poweredOn":
        if wait is True and now.get("guest.toolsRunningStatus") != TOOLS_RUNNING:
            ctx.wait_for(vm, "guest.toolsRunningStatus", TOOLS_RUNNING, ctx.tools_timeout_s, action)
        return skipped(action, "already powered on")
    # The devices (vCenter assigns the adapters' slots at power-on) and Tools are read with the
    # task's end; Tools are waited for only if they were not running by then.
    paths = [*DEVICE_PATHS, "guest.toolsRunningStatus"]
    now = ctx.run_task(f"power on {action.target}", vm.PowerOnVM_Task, on=vm, then_read={vm: paths}).get(vm._moId, {})
    if wait is not False:
        ctx.wait_for(vm, "guest.toolsRunningStatus", TOOLS_RUNNING, ctx.tools_timeout_s, action, now=now)
    nics = VmDevices.of(ctx, action.target, vm, now).nics
    return done(action, vm_moref=vm._moId, nics=tuple(nics))
