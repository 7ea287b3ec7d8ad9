package main

// ESXi/vCenter behaviour where the simulator is lenient.
//
// The simulator lets a Registry.Handler see every SOAP call before dispatch.
// For the calls the lab refines, dispatch swaps the call's per-request
// session registry for one holding a wrapper object: the simulator then
// invokes the wrapper's method, which checks what ESXi checks and delegates
// to the simulator's own implementation.

import (
	"fmt"
	"os"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// interceptor builds the wrapper object that serves one call, or nil.
type interceptor func(l *Lab, ctx *simulator.Context, m *simulator.Method) mo.Reference

// interceptors by managed object type, then wire method name. Other files
// (e.g. guest operations) add entries from their init().
var interceptors = map[string]map[string]interceptor{}

func intercept(kind string, method string, f interceptor) {
	if interceptors[kind] == nil {
		interceptors[kind] = map[string]interceptor{}
	}
	interceptors[kind][method] = f
}

func init() {
	vm := func(l *Lab, ctx *simulator.Context, m *simulator.Method) mo.Reference {
		if v, ok := ctx.Map.Get(m.This).(*simulator.VirtualMachine); ok {
			return &vmHandler{VirtualMachine: v, lab: l}
		}
		return nil
	}
	for _, name := range []string{"ReconfigVM_Task", "PowerOnVM_Task", "ShutdownGuest"} {
		intercept("VirtualMachine", name, vm)
	}
	storage := func(l *Lab, ctx *simulator.Context, m *simulator.Method) mo.Reference {
		h := l.storageSystems[m.This.Value]
		if h == nil {
			return nil
		}
		return &storageSystemHandler{HostStorageSystem: h.storage, lab: l, host: h}
	}
	intercept("HostStorageSystem", "MarkPerenniallyReserved", storage)
	intercept("HostStorageSystem", "MarkPerenniallyReservedEx_Task", storage)
	intercept("OptionManager", "UpdateOptions", func(l *Lab, ctx *simulator.Context, m *simulator.Method) mo.Reference {
		h := l.hostOptions[m.This.Value]
		if h == nil {
			return nil
		}
		if om, ok := ctx.Map.Get(m.This).(*simulator.OptionManager); ok {
			return &hostOptionHandler{OptionManager: om, host: h}
		}
		return nil
	})
	// The simulator's EnvironmentBrowser parses the ESXi versions of a
	// cluster's hosts on AddHost and panics on those it does not know
	// (7.0.3 ...): refuse instead.
	addHost := func(l *Lab, ctx *simulator.Context, m *simulator.Method) mo.Reference {
		cl, ok := ctx.Map.Get(m.This).(*simulator.ClusterComputeResource)
		if !ok {
			return nil
		}
		for _, ref := range cl.Host {
			if h, ok := ctx.Map.Get(ref).(*simulator.HostSystem); ok {
				v := h.Config.Product.Version
				if _, err := types.ParseESXiVersion(v); err != nil {
					return &addHostRefused{ClusterComputeResource: cl, version: v}
				}
			}
		}
		return nil
	}
	intercept("ClusterComputeResource", "AddHost_Task", addHost)
	cluster := func(l *Lab, ctx *simulator.Context, m *simulator.Method) mo.Reference {
		if cl, ok := ctx.Map.Get(m.This).(*simulator.ClusterComputeResource); ok {
			return &clusterHandler{ClusterComputeResource: cl}
		}
		return nil
	}
	intercept("ClusterComputeResource", "ReconfigureCluster_Task", cluster)
	intercept("ClusterComputeResource", "ReconfigureComputeResource_Task", cluster)
	intercept("Datastore", "RefreshDatastore", func(l *Lab, ctx *simulator.Context, m *simulator.Method) mo.Reference {
		if ds, ok := ctx.Map.Get(m.This).(*simulator.Datastore); ok {
			l.mu.Lock()
			known := l.dsKind[ds.Name] != ""
			l.mu.Unlock()
			if known {
				return &datastoreHandler{Datastore: ds}
			}
		}
		return nil
	})
}

// dispatch is installed as the simulator Registry.Handler.
func (l *Lab) dispatch(ctx *simulator.Context, m *simulator.Method) (mo.Reference, types.BaseMethodFault) {
	// the call's state, for its tasks and for recovery (tasks.go, recover.go)
	cs := attachCall(ctx, m)
	cs.mu.Lock()
	inject := cs.inject
	if inject == "panic" {
		cs.inject = ""
	}
	cs.mu.Unlock()
	if inject == "panic" {
		injectedPanic(ctx, m.This, m.Name)
	}
	if ctx.Session == nil {
		return nil, nil // the simulator answers NotAuthenticated
	}
	// names as vCenter stores them (names.go)
	escapeRequestNames(m.Body)
	f := interceptors[m.This.Type][m.Name]
	if f == nil {
		return nil, nil
	}
	h := f(l, ctx, m)
	if h == nil {
		return nil, nil
	}
	// ctx.Session is this request's own copy: the swap lasts for this call
	// only. Methods that register session objects (CreateCollectorForEvents,
	// CreateFilter, views ...) must not be intercepted: they would land in
	// the temporary registry.
	r := simulator.NewRegistry()
	r.Put(h)
	ctx.Session.Registry = r
	return nil, nil
}

// ---- tasks ------------------------------------------------------------------

// failedTask registers a Task that has already ended in error with fault and
// msg as its info.error, like vCenter's answer to a refused reconfiguration.
// The caller holds the entity's lock, or lock is true.
func (l *Lab) failedTask(ctx *simulator.Context, this types.ManagedObjectReference, method string, fault types.BaseMethodFault, msg string, lock bool) types.ManagedObjectReference {
	entity := l.taskEntity(this)
	t := simulator.CreateTask(entity, strings.TrimSuffix(method, "_Task")+"Task", nil)
	now := time.Now()
	nameTask(t, method, this)
	if e, ok := ctx.Map.Get(entity).(mo.Entity); ok {
		t.Info.EntityName = e.Entity().Name
	}
	user := "lab"
	if ctx.Session != nil && ctx.Session.UserName != "" {
		user = ctx.Session.UserName
	}
	t.Info.Reason = &types.TaskReasonUser{UserName: user}
	t.Info.State = types.TaskInfoStateError
	t.Info.StartTime = &now
	t.Info.CompleteTime = &now
	t.Info.Error = &types.LocalizedMethodFault{Fault: fault, LocalizedMessage: msg}
	put := func() {
		ref := ctx.Map.Put(t).Reference()
		t.Info.Key = ref.Value
		t.Info.Task = ref
	}
	if obj := ctx.Map.Get(entity); lock && obj != nil {
		ctx.WithLock(obj, put)
	} else {
		put()
	}
	return t.Self
}

// taskEntity is the managed entity a task on this object is filed under:
// the object itself, the host of a host's configuration manager, or the
// inventory root.
func (l *Lab) taskEntity(this types.ManagedObjectReference) types.ManagedObjectReference {
	if _, ok := l.reg.Get(this).(mo.Entity); ok {
		return this
	}
	if h := l.storageSystems[this.Value]; h != nil {
		return h.ref
	}
	if h := l.hostOptions[this.Value]; h != nil {
		return h.ref
	}
	return l.model.ServiceContent.RootFolder
}

func lcFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}

// afterTask runs f once the simulator task ref has ended.
func afterTask(ctx *simulator.Context, ref types.ManagedObjectReference, f func(ok bool)) {
	t, ok := ctx.Map.Get(ref).(*simulator.Task)
	if !ok {
		return
	}
	go func() {
		t.Wait()
		f(t.Info.State == types.TaskInfoStateSuccess)
	}()
}

// ---- virtual machines -------------------------------------------------------

type vmHandler struct {
	*simulator.VirtualMachine
	lab *Lab
}

const poweredOnMsg = "The attempted operation cannot be performed in the current state (Powered on)."

func sharing(c types.BaseVirtualSCSIController) types.VirtualSCSISharing {
	s := c.GetVirtualSCSIController().SharedBus
	if s == "" {
		return types.VirtualSCSISharingNoSharing
	}
	return s
}

// checkHotPlug refuses, on a VM that is not powered off, the device changes
// vCenter cannot hot-plug: a SCSI controller with bus sharing (add, remove,
// edit), a change of any controller's sharedBus, and a disk added to or
// removed from a controller with bus sharing.
func checkHotPlug(vm *simulator.VirtualMachine, spec *types.VirtualMachineConfigSpec) (types.BaseMethodFault, string) {
	if vm.Runtime.PowerState == types.VirtualMachinePowerStatePoweredOff {
		return nil, ""
	}
	devices := object.VirtualDeviceList(vm.Config.Hardware.Device)
	// SCSI and NVMe controllers by key (NVMe bus sharing: checkNVMe)
	controllers := map[int32]types.BaseVirtualDevice{}
	for _, d := range devices {
		switch d.(type) {
		case types.BaseVirtualSCSIController, *types.VirtualNVMEController:
			controllers[d.GetVirtualDevice().Key] = d
		}
	}
	for _, change := range spec.DeviceChange {
		ds := change.GetVirtualDeviceConfigSpec()
		switch ds.Device.(type) {
		case types.BaseVirtualSCSIController, *types.VirtualNVMEController:
			if ds.Operation == types.VirtualDeviceConfigSpecOperationAdd {
				controllers[ds.Device.GetVirtualDevice().Key] = ds.Device
			}
		}
	}
	refuse := &types.InvalidPowerState{
		RequestedState: types.VirtualMachinePowerStatePoweredOff,
		ExistingState:  vm.Runtime.PowerState,
	}
	msg := poweredOnMsg
	if vm.Runtime.PowerState == types.VirtualMachinePowerStateSuspended {
		msg = strings.Replace(msg, "Powered on", "Suspended", 1)
	}
	for _, change := range spec.DeviceChange {
		ds := change.GetVirtualDeviceConfigSpec()
		dev := ds.Device.GetVirtualDevice()
		switch d := ds.Device.(type) {
		case types.BaseVirtualSCSIController:
			switch ds.Operation {
			case types.VirtualDeviceConfigSpecOperationAdd:
				if sharing(d) != types.VirtualSCSISharingNoSharing {
					return refuse, msg
				}
			case types.VirtualDeviceConfigSpecOperationRemove, types.VirtualDeviceConfigSpecOperationEdit:
				old, ok := devices.FindByKey(dev.Key).(types.BaseVirtualSCSIController)
				if !ok {
					continue
				}
				if sharing(old) != types.VirtualSCSISharingNoSharing {
					return refuse, msg
				}
				if ds.Operation == types.VirtualDeviceConfigSpecOperationEdit && sharing(d) != sharing(old) {
					return refuse, msg
				}
			}
		case *types.VirtualDisk:
			var ckey int32
			switch ds.Operation {
			case types.VirtualDeviceConfigSpecOperationAdd:
				ckey = dev.ControllerKey
			case types.VirtualDeviceConfigSpecOperationRemove:
				old := devices.FindByKey(dev.Key)
				if old == nil {
					continue
				}
				ckey = old.GetVirtualDevice().ControllerKey
			default:
				continue
			}
			if c := controllers[ckey]; c != nil && controllerShared(c) {
				return refuse, msg
			}
		}
	}
	return nil, ""
}

// scsiLastUnit: the highest SCSI unit number of a controller: 15, or 64 on
// a VMware Paravirtual controller of a VM of hardware version 14 (ESXi 6.7)
// or later, which takes 64 disks.
func scsiLastUnit(c types.BaseVirtualDevice, version string) int32 {
	if _, ok := c.(*types.ParaVirtualSCSIController); ok && hwVersion(version) >= 14 {
		return 64
	}
	return 15
}

func invalidDevice(index int, msg string) (types.BaseMethodFault, string) {
	return &types.InvalidDeviceSpec{
		InvalidVmConfig: types.InvalidVmConfig{Property: "virtualDeviceSpec.device"},
		DeviceIndex:     int32(index),
	}, fmt.Sprintf("Invalid configuration for device '%d'. %s", index, msg)
}

// checkDeviceLayout refuses what vCenter refuses and the simulator lets
// through: a SCSI controller on a bus number outside 0-3 or already used, a
// disk on a controller that does not exist, a SCSI disk on unit 7 (the
// controller's own) or beyond 15 (64 on a VMware Paravirtual controller from
// hardware version 14).
func checkDeviceLayout(vm *simulator.VirtualMachine, spec *types.VirtualMachineConfigSpec) (types.BaseMethodFault, string) {
	devices := object.VirtualDeviceList(vm.Config.Hardware.Device)
	removed := map[int32]bool{}
	for _, change := range spec.DeviceChange {
		ds := change.GetVirtualDeviceConfigSpec()
		if ds.Operation == types.VirtualDeviceConfigSpecOperationRemove && ds.Device != nil {
			removed[ds.Device.GetVirtualDevice().Key] = true
		}
	}
	controllers := map[int32]types.BaseVirtualDevice{}
	buses := map[int32]int32{} // SCSI bus number -> controller key
	for _, d := range devices {
		key := d.GetVirtualDevice().Key
		if _, ok := d.(types.BaseVirtualController); !ok || removed[key] {
			continue
		}
		controllers[key] = d
		if c, ok := d.(types.BaseVirtualSCSIController); ok {
			buses[c.GetVirtualSCSIController().BusNumber] = key
		}
	}
	for i, change := range spec.DeviceChange {
		ds := change.GetVirtualDeviceConfigSpec()
		if ds.Device == nil || ds.Operation != types.VirtualDeviceConfigSpecOperationAdd {
			continue
		}
		if c, ok := ds.Device.(types.BaseVirtualSCSIController); ok {
			bus := c.GetVirtualSCSIController().BusNumber
			if bus < 0 || bus > 3 {
				return invalidDevice(i, fmt.Sprintf("SCSI bus number %d is out of range (0-3).", bus))
			}
			if _, used := buses[bus]; used {
				return invalidDevice(i, fmt.Sprintf("SCSI bus number %d is already in use.", bus))
			}
			buses[bus] = ds.Device.GetVirtualDevice().Key
		}
		if _, ok := ds.Device.(types.BaseVirtualController); ok {
			controllers[ds.Device.GetVirtualDevice().Key] = ds.Device
		}
	}
	for i, change := range spec.DeviceChange {
		ds := change.GetVirtualDeviceConfigSpec()
		if ds.Device == nil || ds.Operation != types.VirtualDeviceConfigSpecOperationRemove {
			continue
		}
		if _, ok := ds.Device.(types.BaseVirtualController); !ok {
			continue
		}
		key := ds.Device.GetVirtualDevice().Key
		for _, d := range devices {
			if d.GetVirtualDevice().ControllerKey == key && !removed[d.GetVirtualDevice().Key] {
				return invalidDevice(i, fmt.Sprintf("The controller still has device %d attached.", d.GetVirtualDevice().Key))
			}
		}
	}
	for i, change := range spec.DeviceChange {
		ds := change.GetVirtualDeviceConfigSpec()
		disk, ok := ds.Device.(*types.VirtualDisk)
		if !ok || ds.Operation == types.VirtualDeviceConfigSpecOperationRemove {
			continue
		}
		c, ok := controllers[disk.ControllerKey]
		if !ok {
			return &types.InvalidController{
				InvalidDeviceSpec: types.InvalidDeviceSpec{
					InvalidVmConfig: types.InvalidVmConfig{Property: "virtualDeviceSpec.device.controllerKey"},
					DeviceIndex:     int32(i),
				},
				ControllerKey: disk.ControllerKey,
			}, fmt.Sprintf("Device '%d' refers to a nonexistent controller '%d'.", i, disk.ControllerKey)
		}
		if sc, ok := c.(types.BaseVirtualSCSIController); ok && disk.UnitNumber != nil {
			unit := *disk.UnitNumber
			reserved := sc.GetVirtualSCSIController().ScsiCtlrUnitNumber
			if reserved == 0 {
				reserved = 7
			}
			last := scsiLastUnit(c, vm.Config.Version)
			if unit < 0 || unit > last || unit == reserved {
				return invalidDevice(i, fmt.Sprintf("SCSI unit number %d is not available (0-%d, %d is the controller's).", unit, last, reserved))
			}
		}
	}
	return nil, ""
}

// checkHostDatastores: the files a VM's devices (and, at creation, its
// vmx) name must be on datastores its host mounts. The simulator looks such
// a datastore up among the host's and crashes when it is not there (a disk
// of another host's local datastore: "interface conversion: mo.Entity is
// nil"). ESXi refuses it: the vSphere API reference lists InvalidDatastore
// for ReconfigVM_Task and CreateVM_Task, "thrown if the operation cannot be
// performed on the target datastores". Datastore names are the inventory's
// (checkDevices has normalized them).
func checkHostDatastores(ctx *simulator.Context, dc *simulator.Datacenter, host *simulator.HostSystem, vmx string, changes []types.BaseVirtualDeviceConfigSpec) (types.BaseMethodFault, string) {
	check := func(file string, what string) (types.BaseMethodFault, string) {
		var p object.DatastorePath
		if !p.FromString(file) || p.Datastore == "" {
			return nil, ""
		}
		if ctx.Map.FindByName(p.Datastore, host.Datastore) != nil {
			return nil, ""
		}
		fault := &types.InvalidDatastore{Name: p.Datastore}
		if ds := findNamed(ctx, p.Datastore, dc.Datastore); ds != nil {
			ref := ds.Reference()
			fault.Datastore = &ref
		}
		return fault, fmt.Sprintf("%sThe datastore '%s' of '%s' is not accessible from host %s.", what, p.Datastore, file, host.Name)
	}
	if vmx != "" {
		if fault, msg := check(vmx, ""); fault != nil {
			return fault, msg
		}
	}
	for i, change := range changes {
		ds := change.GetVirtualDeviceConfigSpec()
		if ds.Device == nil || ds.Operation == types.VirtualDeviceConfigSpecOperationRemove {
			continue
		}
		b, ok := ds.Device.GetVirtualDevice().Backing.(types.BaseVirtualDeviceFileBackingInfo)
		if !ok {
			continue
		}
		if fault, msg := check(b.GetVirtualDeviceFileBackingInfo().FileName, fmt.Sprintf("Invalid configuration for device '%d'. ", i)); fault != nil {
			return fault, msg
		}
	}
	return nil, ""
}

func (h *vmHandler) ReconfigVMTask(ctx *simulator.Context, req *types.ReconfigVM_Task) soap.HasFault {
	vm := h.VirtualMachine
	fail := func(fault types.BaseMethodFault, msg string) soap.HasFault {
		return &methods.ReconfigVM_TaskBody{Res: &types.ReconfigVM_TaskResponse{
			Returnval: h.lab.failedTask(ctx, vm.Self, "ReconfigVM_Task", fault, msg, false),
		}}
	}
	if cv := req.Spec.ChangeVersion; cv != "" && cv != vm.Config.ChangeVersion {
		return fail(&types.ConcurrentAccess{}, "Cannot complete operation due to concurrent modification by another operation.")
	}
	if dc := datacenterOf(ctx, vm); dc != nil {
		if fault, msg := checkDevices(ctx, dc, req.Spec.DeviceChange); fault != nil {
			return fail(fault, msg)
		}
		if vm.Runtime.Host != nil {
			if host, ok := ctx.Map.Get(*vm.Runtime.Host).(*simulator.HostSystem); ok {
				if fault, msg := checkHostDatastores(ctx, dc, host, "", req.Spec.DeviceChange); fault != nil {
					return fail(fault, msg)
				}
			}
		}
	}
	if fault, msg := checkDeviceLayout(vm, &req.Spec); fault != nil {
		return fail(fault, msg)
	}
	if fault, msg := checkHotPlug(vm, &req.Spec); fault != nil {
		return fail(fault, msg)
	}
	if fault, msg := h.lab.checkNVMe(vm, nil, &req.Spec); fault != nil {
		return fail(fault, msg)
	}
	if fault, msg := checkDiskSharing(&req.Spec); fault != nil {
		return fail(fault, msg)
	}
	if fault, msg := checkHotAddFlags(vm, &req.Spec); fault != nil {
		return fail(fault, msg)
	}
	created, fault, msg := h.lab.prepareDisksTracked(vm, &req.Spec)
	if fault != nil {
		removeFiles(created)
		return fail(fault, msg)
	}
	keepSlots(vm, &req.Spec)
	body := vm.ReconfigVMTask(ctx, req)
	if len(created) > 0 {
		if b, ok := body.(*methods.ReconfigVM_TaskBody); ok && b.Res != nil {
			afterTask(ctx, b.Res.Returnval, func(ok bool) {
				if !ok {
					removeFiles(created)
				}
			})
		}
	}
	return body
}

func removeFiles(files []string) {
	for _, f := range files {
		_ = os.Remove(f)
	}
}

func (h *vmHandler) PowerOnVMTask(ctx *simulator.Context, req *types.PowerOnVM_Task) soap.HasFault {
	vm := h.VirtualMachine
	if vm.Runtime.PowerState == types.VirtualMachinePowerStatePoweredOff && !vm.Config.Template {
		fault, msg := checkClusteredDisks(vm)
		if fault == nil && h.lab.file.DiskLocks {
			fault, msg = h.lab.checkDiskLocks(ctx, vm)
		}
		if fault != nil {
			return &methods.PowerOnVM_TaskBody{Res: &types.PowerOnVM_TaskResponse{
				Returnval: h.lab.failedTask(ctx, vm.Self, "PowerOnVM_Task", fault, msg, false),
			}}
		}
		assignSlots(ctx, vm)
	}
	return vm.PowerOnVMTask(ctx, req)
}

// checkClusteredDisks: ESXi opens the VMDKs of a SCSI controller with bus
// sharing for clustering only when they are eager-zeroed thick; a thin or
// lazy-zeroed disk there makes the power-on fail.
func checkClusteredDisks(vm *simulator.VirtualMachine) (types.BaseMethodFault, string) {
	devices := object.VirtualDeviceList(vm.Config.Hardware.Device)
	for _, d := range devices {
		disk, ok := d.(*types.VirtualDisk)
		if !ok {
			continue
		}
		if !controllerShared(devices.FindByKey(disk.ControllerKey)) {
			continue
		}
		b, ok := disk.Backing.(*types.VirtualDiskFlatVer2BackingInfo)
		if !ok {
			continue
		}
		thin := b.ThinProvisioned != nil && *b.ThinProvisioned
		eager := b.EagerlyScrub != nil && *b.EagerlyScrub
		if thin || !eager {
			msg := fmt.Sprintf("VMware ESX cannot open the virtual disk \"%s\" for clustering. Verify that the virtual disk was created using the thick option.", b.FileName)
			return &types.GenericVmConfigFault{Reason: msg}, msg
		}
	}
	return nil, ""
}

// ShutdownGuest needs VMware Tools running in the guest, as on ESXi.
func (h *vmHandler) ShutdownGuest(ctx *simulator.Context, req *types.ShutdownGuest) soap.HasFault {
	vm := h.VirtualMachine
	if vm.Runtime.PowerState == types.VirtualMachinePowerStatePoweredOn &&
		vm.Guest.ToolsRunningStatus != string(types.VirtualMachineToolsRunningStatusGuestToolsRunning) {
		return &methods.ShutdownGuestBody{Fault_: simulator.Fault(
			"Cannot complete operation because VMware Tools is not running in this virtual machine.",
			&types.ToolsUnavailable{})}
	}
	return vm.ShutdownGuest(ctx, req)
}

// ---- PCI slots --------------------------------------------------------------

// pciSlot is the n-th (0-based) PCI slot number handed out: the slots ESXi
// uses behind its PCIe root ports, 160, 192, 224, 256, 1184, 1216, ...
func pciSlot(n int) int32 {
	return int32(160 + 32*(n%4) + 1024*(n/4))
}

// needsSlot: controllers and network cards get a PCI slot, disks do not.
func needsSlot(d types.BaseVirtualDevice) bool {
	switch d.(type) {
	case types.BaseVirtualSCSIController, types.BaseVirtualEthernetCard, types.BaseVirtualSATAController, *types.VirtualNVMEController:
		return true
	}
	return false
}

func slotOf(d types.BaseVirtualDevice) int32 {
	if si, ok := d.GetVirtualDevice().SlotInfo.(*types.VirtualDevicePciBusSlotInfo); ok {
		return si.PciSlotNumber
	}
	return 0
}

func usedSlots(devices []types.BaseVirtualDevice) map[int32]bool {
	used := map[int32]bool{}
	for _, d := range devices {
		if s := slotOf(d); s != 0 {
			used[s] = true
		}
	}
	return used
}

func nextSlot(used map[int32]bool) int32 {
	for n := 0; ; n++ {
		if s := pciSlot(n); !used[s] {
			used[s] = true
			return s
		}
	}
}

// assignSlots gives every controller and NIC without a slot the next free
// one, in device key order. Assigned slots never move.
func assignSlots(ctx *simulator.Context, vm *simulator.VirtualMachine) {
	devices := vm.Config.Hardware.Device
	used := usedSlots(devices)
	var todo []types.BaseVirtualDevice
	for _, d := range devices {
		if needsSlot(d) && slotOf(d) == 0 {
			todo = append(todo, d)
		}
	}
	if len(todo) == 0 {
		return
	}
	sort.Slice(todo, func(i, j int) bool { return todo[i].GetVirtualDevice().Key < todo[j].GetVirtualDevice().Key })
	for _, d := range todo {
		d.GetVirtualDevice().SlotInfo = &types.VirtualDevicePciBusSlotInfo{PciSlotNumber: nextSlot(used)}
	}
	ctx.Update(vm, []types.PropertyChange{{Name: "config.hardware.device", Val: devices}})
}

// keepSlots: an edited device keeps its slot when the spec omits it; a device
// hot-added to a running VM gets its slot at once.
func keepSlots(vm *simulator.VirtualMachine, spec *types.VirtualMachineConfigSpec) {
	devices := object.VirtualDeviceList(vm.Config.Hardware.Device)
	used := usedSlots(devices)
	running := vm.Runtime.PowerState == types.VirtualMachinePowerStatePoweredOn
	var adds []types.BaseVirtualDevice
	for _, change := range spec.DeviceChange {
		ds := change.GetVirtualDeviceConfigSpec()
		if ds.Device == nil || !needsSlot(ds.Device) {
			continue
		}
		switch ds.Operation {
		case types.VirtualDeviceConfigSpecOperationEdit:
			if old := devices.FindByKey(ds.Device.GetVirtualDevice().Key); old != nil && slotOf(ds.Device) == 0 && slotOf(old) != 0 {
				ds.Device.GetVirtualDevice().SlotInfo = &types.VirtualDevicePciBusSlotInfo{PciSlotNumber: slotOf(old)}
			}
		case types.VirtualDeviceConfigSpecOperationAdd:
			if s := slotOf(ds.Device); s != 0 {
				used[s] = true
			} else if running {
				adds = append(adds, ds.Device)
			}
		}
	}
	for _, d := range adds {
		d.GetVirtualDevice().SlotInfo = &types.VirtualDevicePciBusSlotInfo{PciSlotNumber: nextSlot(used)}
	}
}

// ---- host advanced options --------------------------------------------------

// hostOptionHandler: ESXi refuses unknown option keys (InvalidName) and
// values its option definition (supportedOption) does not accept
// (InvalidArgument): of another type (an xsd:int for a long option such as
// Disk.UseLunReset) or out of the option's range. Nothing is applied unless
// every change is valid.
type hostOptionHandler struct {
	*simulator.OptionManager
	host *labHost
}

func (o *hostOptionHandler) UpdateOptions(ctx *simulator.Context, req *types.UpdateOptions) soap.HasFault {
	body := new(methods.UpdateOptionsBody)
	for _, change := range req.ChangedValue {
		v := change.GetOptionValue()
		var cur *types.OptionValue
		for _, s := range o.Setting {
			if s.GetOptionValue().Key == v.Key {
				cur = s.GetOptionValue()
			}
		}
		if cur == nil {
			body.Fault_ = simulator.Fault("A specified parameter was not correct: "+v.Key, &types.InvalidName{Name: v.Key})
			return body
		}
		var def types.BaseOptionType
		for _, d := range o.SupportedOption {
			if d.Key == v.Key {
				def = d.OptionType
			}
		}
		why := ""
		if def != nil {
			why = checkOptionValue(def, v.Value)
		} else if reflect.TypeOf(cur.Value) != reflect.TypeOf(v.Value) {
			why = fmt.Sprintf("expected %s, got %s", xsdType(cur.Value), xsdType(v.Value))
		}
		if why != "" {
			body.Fault_ = simulator.Fault(fmt.Sprintf("A specified parameter was not correct: %s (%s)", v.Key, why),
				&types.InvalidArgument{InvalidProperty: v.Key})
			return body
		}
	}
	res := o.OptionManager.UpdateOptions(req)
	ctx.WithLock(o.host.obj, func() {
		ctx.Update(o.host.obj, []types.PropertyChange{{Name: "config.option", Val: o.host.obj.Config.Option}})
	})
	ctx.Update(o.OptionManager, []types.PropertyChange{{Name: "setting", Val: o.Setting}})
	return res
}

func xsdType(v any) string {
	switch v.(type) {
	case int64:
		return "xsd:long"
	case int32:
		return "xsd:int"
	case string:
		return "xsd:string"
	case bool:
		return "xsd:boolean"
	case nil:
		return "nothing"
	}
	return fmt.Sprintf("%T", v)
}

// ---- datastores -------------------------------------------------------------

// datastoreHandler keeps the lab's datastore capacities: the simulator's
// RefreshDatastore would reset them to 1 TB per host.
type datastoreHandler struct {
	*simulator.Datastore
}

func (d *datastoreHandler) RefreshDatastore(ctx *simulator.Context, req *types.RefreshDatastore) soap.HasFault {
	d.Info.GetDatastoreInfo().Timestamp = types.NewTime(time.Now())
	return &methods.RefreshDatastoreBody{Res: new(types.RefreshDatastoreResponse)}
}

// ---- observer ---------------------------------------------------------------

// observer follows object changes: VMware Tools state follows the power state,
// and VMs get the runtime fields vCenter always reports.
type observer struct {
	lab *Lab
}

func (o *observer) Reference() types.ManagedObjectReference {
	return types.ManagedObjectReference{Type: "LabObserver", Value: "lab-observer"}
}

func (o *observer) PutObject(_ *simulator.Context, obj mo.Reference) {
	if vm, ok := obj.(*simulator.VirtualMachine); ok {
		if vm.Runtime.FaultToleranceState == "" {
			vm.Runtime.FaultToleranceState = types.VirtualMachineFaultToleranceStateNotConfigured
		}
		if vm.Summary.Runtime.FaultToleranceState == "" {
			vm.Summary.Runtime.FaultToleranceState = types.VirtualMachineFaultToleranceStateNotConfigured
		}
		if vm.Runtime.RecordReplayState == "" {
			vm.Runtime.RecordReplayState = types.VirtualMachineRecordReplayStateInactive
		}
		if vm.Summary.Runtime.RecordReplayState == "" {
			vm.Summary.Runtime.RecordReplayState = types.VirtualMachineRecordReplayStateInactive
		}
		// ESXi reports the hot-add switches, false unless set
		if c := vm.Config; c != nil {
			for _, b := range []**bool{&c.CpuHotAddEnabled, &c.CpuHotRemoveEnabled, &c.MemoryHotAddEnabled} {
				if *b == nil {
					*b = types.NewBool(false)
				}
			}
		}
	}
}

func (o *observer) UpdateObject(ctx *simulator.Context, obj mo.Reference, changes []types.PropertyChange) {
	vm, ok := obj.(*mo.VirtualMachine)
	if !ok {
		return
	}
	for _, c := range changes {
		if c.Name != "runtime.powerState" {
			continue
		}
		o.lab.mu.Lock()
		tools := o.lab.tools[vm.Self.Value]
		o.lab.mu.Unlock()
		state := fmt.Sprint(c.Val)
		if state == string(types.VirtualMachinePowerStatePoweredOn) && tools {
			ctx.Update(vm, toolsChanges(true))
		} else if state != string(types.VirtualMachinePowerStatePoweredOn) {
			ctx.Update(vm, toolsChanges(false))
		}
	}
}

func (o *observer) RemoveObject(*simulator.Context, types.ManagedObjectReference) {}

func toolsChanges(running bool) []types.PropertyChange {
	if running {
		return []types.PropertyChange{
			{Name: "guest.toolsStatus", Val: types.VirtualMachineToolsStatusToolsOk},
			{Name: "guest.toolsRunningStatus", Val: string(types.VirtualMachineToolsRunningStatusGuestToolsRunning)},
			{Name: "guest.toolsVersionStatus2", Val: string(types.VirtualMachineToolsVersionStatusGuestToolsCurrent)},
			{Name: "guest.toolsVersion", Val: "12352"},
			{Name: "summary.guest.toolsStatus", Val: types.VirtualMachineToolsStatusToolsOk},
			{Name: "summary.guest.toolsRunningStatus", Val: string(types.VirtualMachineToolsRunningStatusGuestToolsRunning)},
		}
	}
	return []types.PropertyChange{
		{Name: "guest.toolsStatus", Val: types.VirtualMachineToolsStatusToolsNotRunning},
		{Name: "guest.toolsRunningStatus", Val: string(types.VirtualMachineToolsRunningStatusGuestToolsNotRunning)},
		{Name: "summary.guest.toolsStatus", Val: types.VirtualMachineToolsStatusToolsNotRunning},
		{Name: "summary.guest.toolsRunningStatus", Val: string(types.VirtualMachineToolsRunningStatusGuestToolsNotRunning)},
	}
}

type addHostRefused struct {
	*simulator.ClusterComputeResource
	version string
}

func (a *addHostRefused) AddHostTask(ctx *simulator.Context, req *types.AddHost_Task) soap.HasFault {
	return &methods.AddHost_TaskBody{Fault_: simulator.Fault(
		fmt.Sprintf("The lab cannot add hosts to a cluster with ESXi %s hosts", a.version), &types.NotSupported{})}
}

// ---- clusters -----------------------------------------------------------------

// clusterHandler serves ReconfigureCluster_Task, the ClusterComputeResource
// method older than ReconfigureComputeResource_Task (missing in the
// simulator): its ClusterConfigSpec (rules, DRS and HA VM overrides, DRS
// and HA configuration) is applied as ReconfigureComputeResource_Task
// applies the same parts of a ClusterConfigSpecEx, changes merged into the
// configuration (the simulator applies specs that way whatever modify says).
type clusterHandler struct {
	*simulator.ClusterComputeResource
}

// ReconfigureComputeResourceTask is the simulator's, plus the HA and DRS
// advanced options (dasConfig.option, drsConfig.option), which the simulator
// drops: vCenter keeps them, and a planner that sets them must read them back.
func (c *clusterHandler) ReconfigureComputeResourceTask(ctx *simulator.Context, req *types.ReconfigureComputeResource_Task) soap.HasFault {
	if spec, ok := req.Spec.(*types.ClusterConfigSpecEx); ok {
		c.applyOptions(spec.DasConfig, spec.DrsConfig, req.Modify)
	}
	return c.ClusterComputeResource.ReconfigureComputeResourceTask(ctx, req)
}

// applyOptions merges the options of a reconfigure into the cluster's HA and
// DRS configuration by key (modify), an option without a value removing its
// key, or replaces them (not modify), as vCenter keeps them.
func (c *clusterHandler) applyOptions(das *types.ClusterDasConfigInfo, drs *types.ClusterDrsConfigInfo, modify bool) {
	cfg, ok := c.ConfigurationEx.(*types.ClusterConfigInfoEx)
	if !ok {
		return
	}
	if das != nil && das.Option != nil {
		cfg.DasConfig.Option = mergeOptions(cfg.DasConfig.Option, das.Option, modify)
	}
	if drs != nil && drs.Option != nil {
		cfg.DrsConfig.Option = mergeOptions(cfg.DrsConfig.Option, drs.Option, modify)
	}
}

func mergeOptions(have, change []types.BaseOptionValue, modify bool) []types.BaseOptionValue {
	var out []types.BaseOptionValue
	if modify {
		out = append(out, have...)
	}
	for _, o := range change {
		ov := o.GetOptionValue()
		kept := out[:0]
		for _, e := range out {
			if e.GetOptionValue().Key != ov.Key {
				kept = append(kept, e)
			}
		}
		out = kept
		if ov.Value != nil && fmt.Sprint(ov.Value) != "" {
			out = append(out, &types.OptionValue{Key: ov.Key, Value: ov.Value})
		}
	}
	return out
}

func (c *clusterHandler) ReconfigureClusterTask(ctx *simulator.Context, req *types.ReconfigureCluster_Task) soap.HasFault {
	c.applyOptions(req.Spec.DasConfig, req.Spec.DrsConfig, req.Modify)
	ex := &types.ClusterConfigSpecEx{
		DasConfig:       req.Spec.DasConfig,
		DasVmConfigSpec: req.Spec.DasVmConfigSpec,
		DrsConfig:       req.Spec.DrsConfig,
		DrsVmConfigSpec: req.Spec.DrsVmConfigSpec,
		RulesSpec:       req.Spec.RulesSpec,
	}
	body := c.ClusterComputeResource.ReconfigureComputeResourceTask(ctx, &types.ReconfigureComputeResource_Task{
		This: req.This, Spec: ex, Modify: req.Modify,
	})
	out := new(methods.ReconfigureCluster_TaskBody)
	if b, ok := body.(*methods.ReconfigureComputeResource_TaskBody); ok {
		out.Fault_ = b.Fault_
		if b.Res != nil {
			out.Res = &types.ReconfigureCluster_TaskResponse{Returnval: b.Res.Returnval}
		}
	}
	return out
}
