"""Carrying out plan actions in vCenter.

Each step (one action, or a batch of actions for one VM or one vSphere cluster) re-reads
its target right before acting and leaves out what is already satisfied, so that running
apply again after any failure converges instead of adding a second device. Device changes
of a batch go to vCenter in one `ReconfigVM_Task` carrying the `config.changeVersion` just
read.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from pyVim.task import WaitForTask
from pyVmomi import VmomiSupport, vim, vmodl
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential

from providers.vcenter import devices as dev
from providers.vcenter.connection import Session
from reconciler.errors import MscsError, VCenterTaskError
from reconciler.observed import Observed, ObservedNic
from reconciler.plan import Action, ActionKind

TOOLS_TIMEOUT_S = 600.0
SHUTDOWN_TIMEOUT_S = 600.0
POLL_S = 0.2


@dataclass
class Outcome:
    """What one action did: `done` or `skipped` (already satisfied), and what to record."""

    action: Action
    status: str
    record: dict[str, Any] = field(default_factory=dict)
    detail: str = ""


class _Busy(Exception):
    """vCenter answered TaskInProgress: another task holds the object; try again shortly."""


class VCenterExecutor:
    def __init__(
        self,
        session: Session,
        observed: Observed,
        *,
        allow_data_loss: bool = False,
        tools_timeout_s: float = TOOLS_TIMEOUT_S,
        guest_nodes: dict[str, Any] | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.session = session
        self.observed = observed
        self.allow_data_loss = allow_data_loss
        self.tools_timeout_s = tools_timeout_s
        self.guest_nodes = guest_nodes or {}
        self.env = env

    # --- entry point ---------------------------------------------------------------------

    def execute(self, step: list[Action]) -> list[Outcome]:
        first = step[0]
        kind = first.kind
        if kind in (ActionKind.POWER_OFF, ActionKind.POWER_ON):
            return [self._power(first)]
        if kind is ActionKind.SET_HOST_OPTION:
            return [self._host_option(a) for a in step]
        if kind is ActionKind.SET_GUEST_SETTING:
            return [self._guest_setting(a) for a in step]
        if kind is ActionKind.RECORD_NIC_SLOT:
            return [self._record_nic_slot(a) for a in step]
        if kind is ActionKind.RESERVE_LUN:
            return [self._reserve(a) for a in step]
        if kind in (
            ActionKind.SET_DRS_OVERRIDE,
            ActionKind.SET_HA_OVERRIDE,
            ActionKind.CREATE_RULE,
            ActionKind.UPDATE_RULE,
            ActionKind.DELETE_RULE,
        ):
            return self._cluster_config(step)
        if kind in (ActionKind.ADD_NIC, ActionKind.REMOVE_NIC, ActionKind.EDIT_NIC):
            return self._nics(step)
        if kind in (
            ActionKind.ADD_CONTROLLER,
            ActionKind.EDIT_CONTROLLER,
            ActionKind.CREATE_DISK,
            ActionKind.ATTACH_DISK,
            ActionKind.DETACH_DISK,
        ):
            return self._disks(step)
        raise MscsError(f"{first.address}: no vCenter action for {kind}")

    # --- helpers ---------------------------------------------------------------------------

    def _stub(self, cls: type, moref: str) -> Any:
        return cls(moref, stub=self.session.si._stub)

    def _vm(self, name: str) -> Any:
        node = self.observed.vms.get(name)
        if node is None:
            raise MscsError(f"VM {name!r} not found in vCenter")
        return self._stub(vim.VirtualMachine, node.moref)

    def _read(self, obj: Any, paths: list[str]) -> dict[str, Any]:
        def fetch(si: Any) -> dict[str, Any]:
            pc = si.RetrieveContent().propertyCollector
            spec = vmodl.query.PropertyCollector.FilterSpec(
                objectSet=[vmodl.query.PropertyCollector.ObjectSpec(obj=obj, skip=False)],
                propSet=[vmodl.query.PropertyCollector.PropertySpec(type=type(obj), pathSet=paths)],
            )
            result = pc.RetrievePropertiesEx([spec], vmodl.query.PropertyCollector.RetrieveOptions())
            props: dict[str, Any] = {}
            for o in result.objects if result else []:
                for p in o.propSet or []:
                    props[p.name] = p.val
            return props

        return self.session.call(fetch)

    def _run_task(self, what: str, start: Any) -> Any:
        """Start a vCenter task and wait for it; a failure carries vCenter's own message."""

        @retry(
            retry=retry_if_exception_type(_Busy),
            stop=stop_after_attempt(5),
            wait=wait_exponential(multiplier=0.2, max=5),
            reraise=True,
        )
        def attempt() -> Any:
            try:
                task = self.session.call(lambda si: start())
                WaitForTask(task, si=self.session.si)
                return task
            except vim.fault.TaskInProgress as exc:
                raise _Busy(str(exc.msg)) from exc

        try:
            return attempt()
        except _Busy as exc:
            raise VCenterTaskError(f"{what}: vCenter kept answering TaskInProgress ({exc})") from None
        except vmodl.MethodFault as exc:
            raise VCenterTaskError(f"{what}: vCenter said: {fault_message(exc)}") from None

    # --- power -----------------------------------------------------------------------------

    def _power(self, action: Action) -> Outcome:
        vm = self._vm(action.target)
        props = self._read(vm, ["runtime.powerState", "guest.toolsRunningStatus"])
        state = str(props.get("runtime.powerState"))
        if action.kind is ActionKind.POWER_OFF:
            if state == "poweredOff":
                return Outcome(action, "skipped", detail="already powered off")
            if props.get("guest.toolsRunningStatus") == "guestToolsRunning":
                self.session.call(lambda si: vm.ShutdownGuest())
                self._wait_for(vm, "runtime.powerState", "poweredOff", SHUTDOWN_TIMEOUT_S, action)
                return Outcome(action, "done", detail="guest shut down")
            self._run_task(f"power off {action.target}", vm.PowerOffVM_Task)
            return Outcome(action, "done")
        if state == "poweredOn":
            return Outcome(action, "skipped", detail="already powered on")
        self._run_task(f"power on {action.target}", vm.PowerOnVM_Task)
        if (action.after or {}).get("waitForTools", True):
            self._wait_for(vm, "guest.toolsRunningStatus", "guestToolsRunning", self.tools_timeout_s, action)
        # vCenter assigns PCI slots at power-on: the adapters' slots, for the state to record.
        return Outcome(action, "done", record={"vm_moref": vm._moId, "nics": self._nics_now(vm)})

    def _nics_now(self, vm: Any) -> list[ObservedNic]:
        devices, _ = self._devices(vm)
        return dev.nics_of(devices, self._network_names())

    def _network_names(self) -> dict[str, str]:
        return {ref.split(":", 1)[1]: n for n, ref in self.observed.network_refs.items()}

    def _record_nic_slot(self, action: Action) -> Outcome:
        """Nothing to change in vCenter: read the adapter's slot now, for the state."""
        key = (action.after or {}).get("deviceKey")
        nic = next((n for n in self._nics_now(self._vm(action.target)) if n.key == key), None)
        if nic is None or nic.pci_slot is None:
            raise MscsError(f"{action.address}: the adapter (device key {key}) has no PCI slot now; plan again")
        return Outcome(action, "done", record={"pci_slot": nic.pci_slot, "device_key": nic.key})

    def _wait_for(self, obj: Any, path: str, value: str, timeout: float, action: Action) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if str(self._read(obj, [path]).get(path)) == value:
                return
            if time.monotonic() > deadline:
                raise VCenterTaskError(f"{action.address}: {path} did not become {value} within {timeout:.0f}s")
            time.sleep(POLL_S)

    # --- guests ----------------------------------------------------------------------------

    def _guest_setting(self, action: Action) -> Outcome:
        """Read the guest's disk timeout, set it only if it differs, read it back."""
        from providers.guest.service import set_disk_timeout, transport_for

        node = self.guest_nodes.get(action.target)
        if node is None:
            raise MscsError(f"{action.address}: node {action.target} is not in the desired file")
        vm = self.observed.vms.get(action.target)
        if vm is not None:  # what the plan saw is old: the node may have been powered on since
            now = self._read(self._vm(action.target), ["runtime.powerState", "guest.toolsRunningStatus"])
            vm = vm.model_copy(
                update={
                    "power_state": str(now.get("runtime.powerState")),
                    "tools_running": now.get("guest.toolsRunningStatus") == "guestToolsRunning",
                }
            )
        transport = transport_for(node, session=self.session, vm=vm, env=self.env)
        try:
            change = set_disk_timeout(transport, int((action.after or {})["seconds"]))
        finally:
            transport.close()
        record = {"vm_moref": vm.moref} if vm is not None else {}
        if not change.changed:
            return Outcome(action, "skipped", record=record, detail="already set")
        return Outcome(action, "done", record=record, detail=f"{change.before} -> {change.after}")

    # --- hosts -----------------------------------------------------------------------------

    def _host_option(self, action: Action) -> Outcome:
        host = self.observed.hosts[action.target]
        if host.option_manager is None:
            raise MscsError(f"{action.address}: host {host.name} has no advanced-option manager")
        mgr = self._stub(vim.option.OptionManager, host.option_manager)
        key = action.address.rsplit("/", 1)[-1]
        value = (action.after or {})["value"]
        current = self._query_option(mgr, key)
        if current == value:
            return Outcome(action, "skipped", record={"host_moref": host.moref}, detail="already set")
        wire = VmomiSupport.long(value) if isinstance(value, int) else value
        try:
            self.session.call(lambda si: mgr.UpdateOptions(changedValue=[vim.option.OptionValue(key=key, value=wire)]))
        except vmodl.MethodFault as exc:
            raise VCenterTaskError(f"set {key} on {host.name}: vCenter said: {fault_message(exc)}") from None
        return Outcome(action, "done", record={"host_moref": host.moref})

    def _query_option(self, mgr: Any, key: str) -> Any:
        try:
            values = self.session.call(lambda si: mgr.QueryOptions(name=key))
        except vim.fault.InvalidName:
            return None
        for opt in values or []:
            if opt.key == key:
                return int(opt.value) if str(opt.value).lstrip("-").isdigit() else opt.value
        return None

    def _reserve(self, action: Action) -> Outcome:
        host = self.observed.hosts[action.target]
        lun_name = action.address.rsplit("/", 1)[-1]
        lun = host.luns.get(lun_name)
        if lun is None or host.storage_system is None:
            raise MscsError(f"{action.address}: host {host.name} does not see LUN {lun_name}")
        host_obj = self._stub(vim.HostSystem, host.moref)
        luns = self._read(host_obj, ["config.storageDevice.scsiLun"]).get("config.storageDevice.scsiLun") or []
        current = next((x for x in luns if getattr(x, "canonicalName", None) == lun_name), None)
        if current is not None and getattr(current, "perenniallyReserved", False):
            return Outcome(action, "skipped", record={"host_moref": host.moref}, detail="already reserved")
        storage = self._stub(vim.host.StorageSystem, host.storage_system)
        try:
            self.session.call(lambda si: storage.MarkPerenniallyReserved(lunUuid=lun.uuid, state=True))
        except vmodl.MethodFault as exc:
            raise VCenterTaskError(
                f"mark {lun_name} perennially reserved on {host.name}: vCenter said: {fault_message(exc)}"
            ) from None
        return Outcome(action, "done", record={"host_moref": host.moref})

    # --- vSphere cluster: overrides and rules -------------------------------------------------

    def _cluster_config(self, step: list[Action]) -> list[Outcome]:
        cluster_name = (step[0].batch or "").split("/", 1)[-1]
        cluster = self.observed.clusters.get(cluster_name)
        if cluster is None:
            raise MscsError(f"{step[0].address}: vSphere cluster {cluster_name!r} not found")
        obj = self._stub(vim.ClusterComputeResource, cluster.moref)
        cfg = self._read(obj, ["configurationEx"]).get("configurationEx")
        existing_drs = {e.key._moId: e for e in (cfg.drsVmConfig or [])} if cfg else {}
        existing_das = {e.key._moId: e for e in (cfg.dasVmConfig or [])} if cfg else {}
        existing_rules = {r.name: r for r in (cfg.rule or [])} if cfg else {}
        spec = vim.cluster.ConfigSpecEx()
        drs_specs, das_specs, rule_specs = [], [], []
        outcomes = []
        for action in step:
            after = action.after or {}
            if action.kind is ActionKind.SET_DRS_OVERRIDE:
                vm = self._vm(action.target)
                behavior = after["behavior"]
                info = vim.cluster.DrsVmConfigInfo(key=vm, enabled=behavior != "disabled")
                if behavior != "disabled":
                    info.behavior = behavior
                op = "edit" if vm._moId in existing_drs else "add"
                current = existing_drs.get(vm._moId)
                if current is not None and _drs_behavior(current) == behavior:
                    outcomes.append(Outcome(action, "skipped", detail="already set"))
                    continue
                drs_specs.append(vim.cluster.DrsVmConfigSpec(operation=op, info=info))
            elif action.kind is ActionKind.SET_HA_OVERRIDE:
                vm = self._vm(action.target)
                restart = "disabled" if after["restart"] == "disabled" else "medium"
                current = existing_das.get(vm._moId)
                if (
                    current is not None
                    and current.dasSettings is not None
                    and ((current.dasSettings.restartPriority == "disabled") == (restart == "disabled"))
                ):
                    outcomes.append(Outcome(action, "skipped", detail="already set"))
                    continue
                info = vim.cluster.DasVmConfigInfo(
                    key=vm, dasSettings=vim.cluster.DasVmSettings(restartPriority=restart)
                )
                das_specs.append(vim.cluster.DasVmConfigSpec(operation="edit" if current else "add", info=info))
            else:
                name = action.target
                current = existing_rules.get(name)
                if action.kind is ActionKind.DELETE_RULE:
                    if current is None:
                        outcomes.append(Outcome(action, "skipped", detail="already gone"))
                        continue
                    rule_specs.append(vim.cluster.RuleSpec(operation="remove", removeKey=current.key))
                    continue
                cls = (
                    vim.cluster.AntiAffinityRuleSpec
                    if after["kind"] == "anti-affinity"
                    else (vim.cluster.AffinityRuleSpec)
                )
                vms = [self._vm(v) for v in after["vms"]]
                if (
                    current is not None
                    and isinstance(current, cls)
                    and bool(current.enabled)
                    and sorted(v._moId for v in current.vm or []) == sorted(v._moId for v in vms)
                ):
                    outcomes.append(Outcome(action, "skipped", record={"rule_key": current.key}, detail="already set"))
                    continue
                if current is not None and not isinstance(current, cls):
                    # Affinity <-> anti-affinity is another rule type: remove, then add.
                    rule_specs.append(vim.cluster.RuleSpec(operation="remove", removeKey=current.key))
                    current = None
                info = cls(name=name, enabled=True, vm=vms)
                if current is not None:
                    info.key = current.key
                rule_specs.append(vim.cluster.RuleSpec(operation="edit" if current else "add", info=info))
        if drs_specs or das_specs or rule_specs:
            spec.drsVmConfigSpec = drs_specs
            spec.dasVmConfigSpec = das_specs
            spec.rulesSpec = rule_specs
            self._run_task(
                f"reconfigure vSphere cluster {cluster_name}",
                lambda: obj.ReconfigureComputeResource_Task(spec=spec, modify=True),
            )
        done_ids = {o.action.id for o in outcomes}
        rules_now = {}
        if rule_specs:
            cfg = self._read(obj, ["configurationEx"]).get("configurationEx")
            rules_now = {r.name: r.key for r in (cfg.rule or [])} if cfg else {}
        for action in step:
            if action.id in done_ids:
                continue
            record = {"cluster_moref": cluster.moref}
            if action.target in rules_now:
                record["rule_key"] = rules_now[action.target]
            outcomes.append(Outcome(action, "done", record=record))
        return outcomes

    # --- devices -----------------------------------------------------------------------------

    def _reconfigure(self, vm: Any, name: str, changes: list[Any], change_version: str) -> None:
        spec = vim.vm.ConfigSpec(deviceChange=changes, changeVersion=change_version or None)
        self._run_task(f"reconfigure {name}", lambda: vm.ReconfigVM_Task(spec=spec))

    def _devices(self, vm: Any) -> tuple[list[Any], str]:
        props = self._read(vm, ["config.hardware.device", "config.changeVersion"])
        return list(props.get("config.hardware.device") or []), props.get("config.changeVersion") or ""

    def _disks(self, step: list[Action]) -> list[Outcome]:
        name = step[0].target
        vm = self._vm(name)
        devices, change_version = self._devices(vm)
        ctrls = dev.controllers_of(devices)
        ctrl_by_bus = {c.bus: c for c in ctrls.values()}
        device_by_key = {d.key: d for d in devices}
        disks = {(d.bus, d.unit): d for d in dev.disks_of(devices, ctrls)}
        changes: list[Any] = []
        outcomes: list[Outcome] = []
        pending: list[Action] = []
        temp_key = -100
        new_ctrl_key: dict[int, int] = {}
        for action in step:
            after = action.after or {}
            if action.kind in (ActionKind.ADD_CONTROLLER, ActionKind.EDIT_CONTROLLER):
                bus = int(action.address.rsplit("/", 1)[-1])
                current = ctrl_by_bus.get(bus)
                if current is not None and current.sharing == after["sharing"] and current.type == after["type"]:
                    outcomes.append(Outcome(action, "skipped", detail="already present"))
                    continue
                if current is None:
                    temp_key -= 1
                    new_ctrl_key[bus] = temp_key
                    changes.append(dev.add_controller_spec(temp_key, bus, after["type"], after["sharing"]))
                elif current.type != after["type"]:
                    raise MscsError(
                        f"{action.address}: the controller on bus {bus} is {current.type}, the file asks for "
                        f"{after['type']}; changing a controller's type is not done in place (its disks would "
                        "move): change it by hand or choose another bus"
                    )
                else:
                    changes.append(dev.edit_controller_spec(device_by_key[current.key], after["sharing"]))
                pending.append(action)
            elif action.kind is ActionKind.DETACH_DISK:
                before = action.before or {}
                current = disks.get((before.get("bus"), before.get("unit")))
                if current is None or current.file != before.get("file"):
                    outcomes.append(Outcome(action, "skipped", detail="already detached"))
                    continue
                destroy = self.allow_data_loss and action.after is None and current.kind == "vmdk"
                changes.append(dev.remove_device_spec(device_by_key[current.key], destroy_file=destroy))
                disks.pop((current.bus, current.unit))
                pending.append(action)
            else:  # create or attach a disk
                bus, unit = after["bus"], after["unit"]
                current = disks.get((bus, unit))
                if current is not None:
                    if current.file == after["file"]:
                        outcomes.append(
                            Outcome(
                                action,
                                "skipped",
                                record={"device_key": current.key, "file": current.file},
                                detail="already attached",
                            )
                        )
                        continue
                    raise MscsError(
                        f"{action.address}: SCSI {bus}:{unit} of {name} already holds {current.file or 'a disk'}; "
                        "mscsctl does not replace a disk it did not create"
                    )
                controller_key = new_ctrl_key.get(bus) or (ctrl_by_bus[bus].key if bus in ctrl_by_bus else None)
                if controller_key is None:
                    raise MscsError(f"{action.address}: {name} has no SCSI controller on bus {bus}")
                temp_key -= 1
                changes.append(self._disk_spec(action, name, temp_key, controller_key))
                pending.append(action)
        if changes:
            try:
                self._reconfigure(vm, name, changes, change_version)
            except VCenterTaskError as exc:
                # The shared file is there already (an earlier run created it, then failed, or
                # every node detached it): attach it instead of creating it again.
                if "FileAlreadyExists" not in str(exc) or not any(a.kind is ActionKind.CREATE_DISK for a in step):
                    raise
                retry = [
                    a.model_copy(update={"kind": ActionKind.ATTACH_DISK}) if a.kind is ActionKind.CREATE_DISK else a
                    for a in step
                ]
                return self._disks(retry)
            devices, _ = self._devices(vm)
        ctrls = dev.controllers_of(devices)
        now = {(d.bus, d.unit): d for d in dev.disks_of(devices, ctrls)}
        ctrl_now = {c.bus: c for c in ctrls.values()}
        for action in pending:
            record: dict[str, Any] = {"vm_moref": vm._moId}
            if action.kind in (ActionKind.ADD_CONTROLLER, ActionKind.EDIT_CONTROLLER):
                bus = int(action.address.rsplit("/", 1)[-1])
                if bus in ctrl_now:
                    record["device_key"] = ctrl_now[bus].key
            elif action.kind is not ActionKind.DETACH_DISK:
                after = action.after or {}
                disk = now.get((after["bus"], after["unit"]))
                if disk is None:
                    raise VCenterTaskError(
                        f"{action.address}: vCenter accepted the change but shows no disk at "
                        f"SCSI {after['bus']}:{after['unit']}"
                    )
                record.update(device_key=disk.key, file=disk.file)
            outcomes.append(Outcome(action, "done", record=record))
        return outcomes

    def _disk_spec(self, action: Action, vm_name: str, temp_key: int, controller_key: int) -> Any:
        after = action.after or {}
        create = action.kind is ActionKind.CREATE_DISK
        if after["kind"] == "rdm":
            device_path = lun_uuid = None
            if create:
                host = self.observed.host_of(vm_name)
                lun = host.luns.get(after["lun"]) if host else None
                if lun is None:
                    raise MscsError(f"{action.address}: the host of {vm_name} does not see LUN {after['lun']}")
                device_path = lun.device_path or f"/vmfs/devices/disks/{lun.canonical_name}"
                lun_uuid = lun.uuid
            return dev.rdm_disk_spec(
                temp_key=temp_key,
                controller_key=controller_key,
                unit=after["unit"],
                file=after["file"],
                compatibility=after["compatibility"],
                device_path=device_path,
                lun_uuid=lun_uuid,
                create=create,
            )
        return dev.vmdk_disk_spec(
            temp_key=temp_key,
            controller_key=controller_key,
            unit=after["unit"],
            file=after["file"],
            size_gb=after["sizeGB"],
            create=create,
        )

    def _nics(self, step: list[Action]) -> list[Outcome]:
        name = step[0].target
        vm = self._vm(name)
        devices, change_version = self._devices(vm)
        net_names = self._network_names()
        nics = dev.nics_of(devices, net_names)
        device_by_key = {d.key: d for d in devices}
        taken: set[int] = set()
        changes: list[Any] = []
        outcomes: list[Outcome] = []
        pending: list[Action] = []
        temp_key = -200
        for action in step:
            before, after = action.before or {}, action.after or {}
            if action.kind is ActionKind.REMOVE_NIC:
                match = next(
                    (
                        n
                        for n in nics
                        if n.network == before.get("portgroup")
                        and n.adapter == before.get("adapter")
                        and n.key not in taken
                    ),
                    None,
                )
                if match is None:
                    outcomes.append(Outcome(action, "skipped", detail="already removed"))
                    continue
                taken.add(match.key)
                changes.append(dev.remove_device_spec(device_by_key[match.key]))
                pending.append(action)
                continue
            existing = next(
                (
                    n
                    for n in nics
                    if n.network == after["portgroup"] and n.adapter == after["adapter"] and n.key not in taken
                ),
                None,
            )
            if existing is not None:
                taken.add(existing.key)
                outcomes.append(
                    Outcome(action, "skipped", record={"device_key": existing.key}, detail="already present")
                )
                continue
            backing = dev.nic_backing(self._network(after["portgroup"]))
            if action.kind is ActionKind.EDIT_NIC:
                match = next(
                    (
                        n
                        for n in nics
                        if n.network == before.get("portgroup")
                        and n.adapter == before.get("adapter")
                        and n.key not in taken
                    ),
                    None,
                )
                if match is not None:
                    taken.add(match.key)
                    changes.append(dev.edit_nic_spec(device_by_key[match.key], backing))
                    pending.append(action)
                    continue
            temp_key -= 1
            changes.append(dev.add_nic_spec(temp_key, after["adapter"], backing))
            pending.append(action)
        if changes:
            self._reconfigure(vm, name, changes, change_version)
            devices, _ = self._devices(vm)
        now = dev.nics_of(devices, net_names)
        for action in pending:
            record: dict[str, Any] = {"vm_moref": vm._moId}
            if action.kind is not ActionKind.REMOVE_NIC:
                after = action.after or {}
                nic = next((n for n in now if n.network == after["portgroup"] and n.adapter == after["adapter"]), None)
                if nic is not None:
                    record.update(device_key=nic.key, pci_slot=nic.pci_slot)
            outcomes.append(Outcome(action, "done", record=record))
        return outcomes

    def _network(self, name: str) -> Any:
        ref = self.observed.network_refs.get(name)
        if ref is None:
            raise MscsError(f"port group {name!r} not found in datacenter {self.observed.datacenter}")
        type_name, moref = ref.split(":", 1)
        return self._stub(VmomiSupport.GetVmodlType(type_name), moref)


def _drs_behavior(entry: Any) -> str:
    return "disabled" if entry.enabled is False else str(entry.behavior or "fullyAutomated")


def fault_message(exc: Any) -> str:
    """vCenter's own words for a fault: its message, else its localized messages, else its type."""
    msg = getattr(exc, "msg", None) or ""
    if not msg:
        msgs = [m.message for m in getattr(exc, "faultMessage", None) or [] if getattr(m, "message", None)]
        msg = "; ".join(msgs)
    name = type(exc).__name__.rsplit(".", 1)[-1]
    return f"{name}: {msg}" if msg else name
