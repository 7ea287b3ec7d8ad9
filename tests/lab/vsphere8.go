package main

// What ESXi/vCenter 7.0 and 8.0 add for failover clusters, where the
// simulator has nothing or lets everything through:
//
//   - clustered VMDK: Datastore.capability.clusteredVmdkSupported and
//     HostDatastoreSystem.EnableClusteredVmdkSupport / DisableClusteredVmdkSupport
//     (API 7.0), refused where the datastore does not qualify;
//   - NVMe controllers: bus numbers, namespaces (unit numbers), the
//     hardware version they need, sharedBus (API 8.0.2) and what needs 8.0 U2;
//   - snapshots refused on a VM with a bus-sharing controller;
//   - CPU and memory hot-add switches only changed while powered off;
//   - disk sharing (sharingNone / sharingMultiWriter) checked and kept.

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

func init() {
	dss := func(l *Lab, ctx *simulator.Context, m *simulator.Method) mo.Reference {
		h := l.datastoreSystems[m.This.Value]
		if h == nil {
			return nil
		}
		if obj, ok := ctx.Map.Get(m.This).(*simulator.HostDatastoreSystem); ok {
			return &datastoreSystemHandler{HostDatastoreSystem: obj, lab: l, host: h}
		}
		return nil
	}
	intercept("HostDatastoreSystem", "EnableClusteredVmdkSupport", dss)
	intercept("HostDatastoreSystem", "DisableClusteredVmdkSupport", dss)
	snap := func(l *Lab, ctx *simulator.Context, m *simulator.Method) mo.Reference {
		if v, ok := ctx.Map.Get(m.This).(*simulator.VirtualMachine); ok {
			return &snapshotHandler{VirtualMachine: v, lab: l}
		}
		return nil
	}
	intercept("VirtualMachine", "CreateSnapshot_Task", snap)
	intercept("VirtualMachine", "CreateSnapshotEx_Task", snap)
}

// ---- datastores -------------------------------------------------------------

// shapeVMFS gives a SAN datastore its LUN's sector format and its VMFS
// version (6 unless the lab file says 5).
func (l *Lab) shapeVMFS(vol *dsVolume, lun *LUNSpec, major int) {
	vmfs, ok := vol.vol.(*types.HostVmfsVolume)
	if !ok {
		return
	}
	format := lun.SectorFormat
	if format == "" {
		format = "512n"
	}
	vmfs.ScsiDiskType = sectorDiskType[format]
	if major == 5 {
		vmfs.MajorVersion = 5
		vmfs.Version = "5.81"
		vmfs.UnmapPriority = ""
		vmfs.UnmapGranularity = 0
	}
}

// hostVersionAtLeast: the host's ESXi version is major.minor.update or later.
func hostVersionAtLeast(h *labHost, want ...int) bool {
	parts := strings.Split(h.spec.Version, ".")
	for i, w := range want {
		n := 0
		if i < len(parts) {
			n, _ = strconv.Atoi(parts[i])
		}
		if n != w {
			return n > w
		}
	}
	return true
}

// datastoreSystemHandler serves a host's HostDatastoreSystem methods of API
// 7.0 the simulator lacks. Both are declared with the faults NotFound (the
// datastore is not one of this host's) and HostConfigFault (the host cannot
// do it: here, the reason the datastore does not qualify).
type datastoreSystemHandler struct {
	*simulator.HostDatastoreSystem
	lab  *Lab
	host *labHost
}

// hostDatastore: the VMFS datastore ref mounted on h, or a fault.
func (l *Lab) hostDatastore(ctx *simulator.Context, h *labHost, ref types.ManagedObjectReference) (*simulator.Datastore, *soap.Fault) {
	ds, ok := ctx.Map.Get(ref).(*simulator.Datastore)
	if !ok || !containsRef(h.obj.Datastore, ref) {
		return nil, simulator.Fault(fmt.Sprintf("The object or item referred to could not be found: datastore %s on host %s", ref.Value, h.spec.Name),
			&types.NotFound{})
	}
	return ds, nil
}

// clusteredVmdkRefusal says why a datastore cannot have clustered VMDK
// support ("" when it can), as the Setup for Windows Server Failover
// Clustering guides for 7.0 and 8.0 list the requirements: a VMFS6
// datastore, on a Fibre Channel LUN with 512-byte sectors, the only
// datastore on that LUN, the LUN presented only to ESXi 7.0 or later hosts.
func (l *Lab) clusteredVmdkRefusal(ctx *simulator.Context, h *labHost, ds *simulator.Datastore) string {
	info, ok := ds.Info.(*types.VmfsDatastoreInfo)
	if !ok || info.Vmfs == nil {
		return fmt.Sprintf("Datastore '%s' is not a VMFS datastore: clustered VMDK needs VMFS 6.", ds.Name)
	}
	if info.Vmfs.MajorVersion < 6 {
		return fmt.Sprintf("Datastore '%s' is VMFS %d: clustered VMDK needs VMFS 6.", ds.Name, info.Vmfs.MajorVersion)
	}
	if info.Vmfs.Local != nil && *info.Vmfs.Local {
		return fmt.Sprintf("Datastore '%s' is on a local disk: clustered VMDK needs a Fibre Channel LUN.", ds.Name)
	}
	if len(info.Vmfs.Extent) != 1 {
		return fmt.Sprintf("Datastore '%s' spans %d extents: clustered VMDK needs a datastore on one LUN.", ds.Name, len(info.Vmfs.Extent))
	}
	naa := info.Vmfs.Extent[0].DiskName
	l.mu.Lock()
	owner := l.extentLUNs[naa]
	l.mu.Unlock()
	if owner != ds.Name {
		return fmt.Sprintf("LUN %s also holds datastore '%s': clustered VMDK needs the datastore alone on its LUN.", naa, owner)
	}
	disk := h.findLUN(naa, "")
	if disk == nil {
		return fmt.Sprintf("LUN %s of datastore '%s' is not visible to host %s.", naa, ds.Name, h.spec.Name)
	}
	if t := lunTransport(h, disk); t != "fc" {
		return fmt.Sprintf("LUN %s of datastore '%s' is reached over %s: clustered VMDK needs Fibre Channel.", naa, ds.Name, t)
	}
	if disk.Capacity.BlockSize != 512 {
		return fmt.Sprintf("LUN %s of datastore '%s' has %d-byte sectors (%s): clustered VMDK needs 512-byte sectors.", naa, ds.Name, disk.Capacity.BlockSize, disk.ScsiDiskType)
	}
	for _, other := range l.sortedHosts() {
		if other.findLUN(naa, "") != nil && !hostVersionAtLeast(other, 7, 0) {
			return fmt.Sprintf("LUN %s of datastore '%s' is presented to host %s (ESXi %s): clustered VMDK needs every host that sees the LUN on ESXi 7.0 or later.", naa, ds.Name, other.spec.Name, other.spec.Version)
		}
	}
	return ""
}

// lunTransport: "fc", "iscsi" or "local", by the target transport of the
// LUN's paths in the host's multipath info.
func lunTransport(h *labHost, disk *types.HostScsiDisk) string {
	mp := h.storage.StorageDeviceInfo.MultipathInfo
	if mp == nil {
		return "local"
	}
	for _, lu := range mp.Lun {
		if lu.Lun != disk.Key || len(lu.Path) == 0 {
			continue
		}
		switch lu.Path[0].Transport.(type) {
		case *types.HostFibreChannelTargetTransport:
			return "fc"
		case *types.HostInternetScsiTargetTransport:
			return "iscsi"
		}
	}
	return "local"
}

func (l *Lab) setClusteredVmdk(ctx *simulator.Context, ds *simulator.Datastore, on bool) {
	ctx.WithLock(ds, func() {
		ds.Capability.ClusteredVmdkSupported = types.NewBool(on)
		ctx.Update(ds, []types.PropertyChange{{Name: "capability", Val: ds.Capability}})
	})
}

func (d *datastoreSystemHandler) EnableClusteredVmdkSupport(ctx *simulator.Context, req *types.EnableClusteredVmdkSupport) soap.HasFault {
	body := new(methods.EnableClusteredVmdkSupportBody)
	ds, fault := d.lab.hostDatastore(ctx, d.host, req.Datastore)
	if fault != nil {
		body.Fault_ = fault
		return body
	}
	if why := d.lab.clusteredVmdkRefusal(ctx, d.host, ds); why != "" {
		body.Fault_ = simulator.Fault("Cannot enable clustered VMDK support. "+why, &types.HostConfigFault{})
		return body
	}
	d.lab.setClusteredVmdk(ctx, ds, true)
	body.Res = new(types.EnableClusteredVmdkSupportResponse)
	return body
}

// DisableClusteredVmdkSupport: refused while a powered-on VM has a disk of
// the datastore on a controller with bus sharing.
func (d *datastoreSystemHandler) DisableClusteredVmdkSupport(ctx *simulator.Context, req *types.DisableClusteredVmdkSupport) soap.HasFault {
	body := new(methods.DisableClusteredVmdkSupportBody)
	ds, fault := d.lab.hostDatastore(ctx, d.host, req.Datastore)
	if fault != nil {
		body.Fault_ = fault
		return body
	}
	if _, ok := ds.Info.(*types.VmfsDatastoreInfo); !ok {
		body.Fault_ = simulator.Fault(fmt.Sprintf("Cannot disable clustered VMDK support. Datastore '%s' is not a VMFS datastore.", ds.Name), &types.HostConfigFault{})
		return body
	}
	// every VM: Datastore.vm lists those whose files are there, not their disks
	for _, obj := range d.lab.reg.All("VirtualMachine") {
		vm, ok := obj.(*simulator.VirtualMachine)
		if !ok || vm.Runtime.PowerState != types.VirtualMachinePowerStatePoweredOn {
			continue
		}
		if sharedDiskOn(vm, ds.Name) {
			body.Fault_ = simulator.Fault(fmt.Sprintf("Cannot disable clustered VMDK support. The powered-on virtual machine '%s' uses a clustered disk of datastore '%s'.", vm.Name, ds.Name),
				&types.HostConfigFault{})
			return body
		}
	}
	d.lab.setClusteredVmdk(ctx, ds, false)
	body.Res = new(types.DisableClusteredVmdkSupportResponse)
	return body
}

// sharedDiskOn: the VM has a VMDK of the datastore on a bus-sharing controller.
func sharedDiskOn(vm *simulator.VirtualMachine, datastore string) bool {
	devices := object.VirtualDeviceList(vm.Config.Hardware.Device)
	for _, d := range devices {
		disk, ok := d.(*types.VirtualDisk)
		if !ok {
			continue
		}
		b, ok := disk.Backing.(*types.VirtualDiskFlatVer2BackingInfo)
		if !ok {
			continue
		}
		var p object.DatastorePath
		if p.FromString(b.FileName) && p.Datastore == datastore && controllerShared(devices.FindByKey(disk.ControllerKey)) {
			return true
		}
	}
	return false
}

// ---- controllers --------------------------------------------------------------

// controllerShared: a SCSI controller with bus sharing, or an NVMe
// controller with sharedBus physicalSharing.
func controllerShared(d types.BaseVirtualDevice) bool {
	switch c := d.(type) {
	case types.BaseVirtualSCSIController:
		return sharing(c) != types.VirtualSCSISharingNoSharing
	case *types.VirtualNVMEController:
		return c.SharedBus == string(types.VirtualNVMEControllerSharingPhysicalSharing)
	}
	return false
}

// hwVersion: the number of a VM's "vmx-NN" hardware version.
func hwVersion(v string) int {
	n, _ := strconv.Atoi(strings.TrimPrefix(v, "vmx-"))
	return n
}

const (
	// NVMe controllers need hardware version 13 (ESXi 6.5); 21 (ESXi 8.0 U2)
	// takes 64 namespaces a controller and sharedBus (physicalSharing for
	// WSFC on clustered VMDK).
	nvmeMinHW       = 13
	nvmeSharedMinHW = 21
)

// newestHardware: the hardware version a VM created without one gets, the
// newest its host runs (vmx-21 from ESXi 8.0 U2, vmx-20 on 8.0, vmx-19 from
// 7.0 U2, vmx-17 on 7.0, vmx-15 on 6.7 U2 ...).
func newestHardware(h *labHost) string {
	switch {
	case h == nil || hostVersionAtLeast(h, 8, 0, 2):
		return "vmx-21"
	case hostVersionAtLeast(h, 8, 0):
		return "vmx-20"
	case hostVersionAtLeast(h, 7, 0, 2):
		return "vmx-19"
	case hostVersionAtLeast(h, 7, 0):
		return "vmx-17"
	}
	return "vmx-15"
}

func nvmeUnits(hw int) int32 {
	if hw >= nvmeSharedMinHW {
		return 64
	}
	return 15
}

func unsupportedForVersion(index int, label string, current string, expected int) (types.BaseMethodFault, string) {
	return &types.DeviceUnsupportedForVmVersion{
			InvalidDeviceSpec: types.InvalidDeviceSpec{
				InvalidVmConfig: types.InvalidVmConfig{Property: "virtualDeviceSpec.device"},
				DeviceIndex:     int32(index),
			},
			CurrentVersion:  current,
			ExpectedVersion: fmt.Sprintf("vmx-%d", expected),
		}, fmt.Sprintf("Invalid configuration for device '%d'. %s is not supported by virtual machine version %s (needs %d or later).",
			index, label, current, expected)
}

// checkNVMe refuses, in a ReconfigVM_Task (or a CreateVM_Task: vm nil,
// the version the spec's, host where the VM goes), the NVMe controllers and
// disks ESXi refuses: a controller on a VM below hardware version 13, on a
// bus number outside 0-3 or already used by another NVMe controller, a
// sharedBus other than noSharing/physicalSharing, physicalSharing below
// hardware version 21 or on a host before ESXi 8.0 U2, bus sharing added or
// changed on a running VM, and a disk on a namespace (unit number) the
// controller does not have.
func (l *Lab) checkNVMe(vm *simulator.VirtualMachine, host *labHost, spec *types.VirtualMachineConfigSpec) (types.BaseMethodFault, string) {
	var devices object.VirtualDeviceList
	version := spec.Version
	state := types.VirtualMachinePowerStatePoweredOff
	if vm != nil {
		devices = vm.Config.Hardware.Device
		if version == "" {
			version = vm.Config.Version
		}
		state = vm.Runtime.PowerState
		if vm.Runtime.Host != nil {
			host = l.hosts[vm.Runtime.Host.Value]
		}
	}
	if version == "" {
		version = newestHardware(host)
	}
	hw := hwVersion(version)
	removed := map[int32]bool{}
	for _, change := range spec.DeviceChange {
		ds := change.GetVirtualDeviceConfigSpec()
		if ds.Device != nil && ds.Operation == types.VirtualDeviceConfigSpecOperationRemove {
			removed[ds.Device.GetVirtualDevice().Key] = true
		}
	}
	buses := map[int32]bool{}
	nvme := map[int32]bool{}
	for _, d := range devices {
		if c, ok := d.(*types.VirtualNVMEController); ok && !removed[c.Key] {
			buses[c.BusNumber] = true
			nvme[c.Key] = true
		}
	}
	running := state != types.VirtualMachinePowerStatePoweredOff
	for i, change := range spec.DeviceChange {
		ds := change.GetVirtualDeviceConfigSpec()
		c, ok := ds.Device.(*types.VirtualNVMEController)
		if !ok || ds.Operation == types.VirtualDeviceConfigSpecOperationRemove {
			continue
		}
		label := "NVMe controller"
		if hw < nvmeMinHW {
			return unsupportedForVersion(i, label, version, nvmeMinHW)
		}
		switch c.SharedBus {
		case "", string(types.VirtualNVMEControllerSharingNoSharing):
		case string(types.VirtualNVMEControllerSharingPhysicalSharing):
			if hw < nvmeSharedMinHW {
				return unsupportedForVersion(i, "An NVMe controller with bus sharing", version, nvmeSharedMinHW)
			}
			if host != nil && !hostVersionAtLeast(host, 8, 0, 2) {
				return &types.NotSupported{}, fmt.Sprintf("Invalid configuration for device '%d'. NVMe bus sharing is not supported on host %s (ESXi %s): it needs ESXi 8.0 Update 2 or later.", i, host.spec.Name, host.spec.Version)
			}
		default:
			return invalidDevice(i, fmt.Sprintf("sharedBus %q is not valid for an NVMe controller (noSharing, physicalSharing).", c.SharedBus))
		}
		switch ds.Operation {
		case types.VirtualDeviceConfigSpecOperationAdd:
			if c.BusNumber < 0 || c.BusNumber > 3 {
				return invalidDevice(i, fmt.Sprintf("NVMe bus number %d is out of range (0-3).", c.BusNumber))
			}
			if buses[c.BusNumber] {
				return invalidDevice(i, fmt.Sprintf("NVMe bus number %d is already in use.", c.BusNumber))
			}
			buses[c.BusNumber] = true
			nvme[c.Key] = true
			if running && controllerShared(c) {
				return &types.InvalidPowerState{RequestedState: types.VirtualMachinePowerStatePoweredOff, ExistingState: state}, poweredOnMsg
			}
		case types.VirtualDeviceConfigSpecOperationEdit:
			old, ok := devices.FindByKey(c.Key).(*types.VirtualNVMEController)
			if ok && running && controllerShared(old) != controllerShared(c) {
				return &types.InvalidPowerState{RequestedState: types.VirtualMachinePowerStatePoweredOff, ExistingState: state}, poweredOnMsg
			}
		}
	}
	max := nvmeUnits(hw)
	for i, change := range spec.DeviceChange {
		ds := change.GetVirtualDeviceConfigSpec()
		disk, ok := ds.Device.(*types.VirtualDisk)
		if !ok || ds.Operation == types.VirtualDeviceConfigSpecOperationRemove || !nvme[disk.ControllerKey] || disk.UnitNumber == nil {
			continue
		}
		if u := *disk.UnitNumber; u < 0 || u >= max {
			return invalidDevice(i, fmt.Sprintf("NVMe unit number %d is not available (0-%d at virtual machine version %s).", u, max-1, version))
		}
	}
	return nil, ""
}

// checkDiskSharing: a disk's backing.sharing is sharingNone or
// sharingMultiWriter (VirtualDiskSharing); anything else is refused.
func checkDiskSharing(spec *types.VirtualMachineConfigSpec) (types.BaseMethodFault, string) {
	for i, change := range spec.DeviceChange {
		ds := change.GetVirtualDeviceConfigSpec()
		disk, ok := ds.Device.(*types.VirtualDisk)
		if !ok || ds.Operation == types.VirtualDeviceConfigSpecOperationRemove {
			continue
		}
		var s string
		switch b := disk.Backing.(type) {
		case *types.VirtualDiskFlatVer2BackingInfo:
			s = b.Sharing
		case *types.VirtualDiskRawDiskMappingVer1BackingInfo:
			s = b.Sharing
		default:
			continue
		}
		switch s {
		case "", string(types.VirtualDiskSharingSharingNone), string(types.VirtualDiskSharingSharingMultiWriter):
		default:
			return invalidBacking(i, fmt.Sprintf("sharing %q is not valid (sharingNone, sharingMultiWriter).", s))
		}
	}
	return nil, ""
}

// checkHotAddFlags: ESXi changes config.cpuHotAddEnabled,
// cpuHotRemoveEnabled and memoryHotAddEnabled only on a powered-off VM.
func checkHotAddFlags(vm *simulator.VirtualMachine, spec *types.VirtualMachineConfigSpec) (types.BaseMethodFault, string) {
	if vm.Runtime.PowerState == types.VirtualMachinePowerStatePoweredOff {
		return nil, ""
	}
	changed := func(want *bool, have *bool) bool {
		if want == nil {
			return false
		}
		cur := have != nil && *have
		return *want != cur
	}
	if changed(spec.CpuHotAddEnabled, vm.Config.CpuHotAddEnabled) ||
		changed(spec.CpuHotRemoveEnabled, vm.Config.CpuHotRemoveEnabled) ||
		changed(spec.MemoryHotAddEnabled, vm.Config.MemoryHotAddEnabled) {
		msg := poweredOnMsg
		if vm.Runtime.PowerState == types.VirtualMachinePowerStateSuspended {
			msg = strings.Replace(msg, "Powered on", "Suspended", 1)
		}
		return &types.InvalidPowerState{RequestedState: types.VirtualMachinePowerStatePoweredOff, ExistingState: vm.Runtime.PowerState}, msg
	}
	return nil, ""
}

// ---- snapshots ------------------------------------------------------------------

// snapshotHandler: ESXi takes no snapshot of a VM with a controller engaged
// in bus sharing (SCSI bus sharing, NVMe physicalSharing): the task ends in
// SnapshotIncompatibleDeviceInVm, its fault SharedBusControllerNotSupported
// naming the controller. Other VMs are snapshotted by the simulator.
type snapshotHandler struct {
	*simulator.VirtualMachine
	lab *Lab
}

// controllerLabel: a controller's label as ESXi gives it ("SCSI controller
// 1", "NVME controller 0": the bus number; the simulator labels devices
// after their Go names, "lsilogic-sas-205").
func controllerLabel(d types.BaseVirtualDevice) string {
	switch c := d.(type) {
	case types.BaseVirtualSCSIController:
		return fmt.Sprintf("SCSI controller %d", c.GetVirtualSCSIController().BusNumber)
	case *types.VirtualNVMEController:
		return fmt.Sprintf("NVME controller %d", c.BusNumber)
	}
	return object.VirtualDeviceList{d}.Name(d)
}

func (s *snapshotHandler) refusal() (types.BaseMethodFault, string) {
	for _, d := range s.Config.Hardware.Device {
		if !controllerShared(d) {
			continue
		}
		label := controllerLabel(d)
		inner := &types.SharedBusControllerNotSupported{DeviceNotSupported: types.DeviceNotSupported{Device: label}}
		kind := "a SCSI controller"
		if _, ok := d.(*types.VirtualNVMEController); ok {
			kind = "an NVMe controller"
		}
		msg := fmt.Sprintf("Virtual machine is configured to use a device that prevents the snapshot operation: Device '%s' is %s engaged in bus-sharing.", label, kind)
		return &types.SnapshotIncompatibleDeviceInVm{Fault: types.LocalizedMethodFault{Fault: inner, LocalizedMessage: msg}}, msg
	}
	return nil, ""
}

func (s *snapshotHandler) CreateSnapshotTask(ctx *simulator.Context, req *types.CreateSnapshot_Task) soap.HasFault {
	if fault, msg := s.refusal(); fault != nil {
		return &methods.CreateSnapshot_TaskBody{Res: &types.CreateSnapshot_TaskResponse{
			Returnval: s.lab.failedTask(ctx, s.Self, "CreateSnapshot_Task", fault, msg, false),
		}}
	}
	return s.VirtualMachine.CreateSnapshotTask(ctx, req)
}

func (s *snapshotHandler) CreateSnapshotExTask(ctx *simulator.Context, req *types.CreateSnapshotEx_Task) soap.HasFault {
	if fault, msg := s.refusal(); fault != nil {
		return &methods.CreateSnapshotEx_TaskBody{Res: &types.CreateSnapshotEx_TaskResponse{
			Returnval: s.lab.failedTask(ctx, s.Self, "CreateSnapshotEx_Task", fault, msg, false),
		}}
	}
	return s.VirtualMachine.CreateSnapshotExTask(ctx, req)
}

// ---- control: snapshots planted by hand -------------------------------------------

// registerVMControl serves
//
//	POST /lab/vms/{vm}/snapshots  {"name": "...", "description": "...", "memory": false}
//	                              -> 201 {"vm", "moref", "snapshot", "name"}
//
// a snapshot taken as if the VM had none of the devices ESXi refuses to
// snapshot: what a user left on a node before it got its shared controller,
// planted on a node that already has one. Through the API (CreateSnapshot_Task)
// such a VM is refused.
func (l *Lab) registerVMControl(mux *http.ServeMux) {
	mux.HandleFunc("POST /lab/vms/{vm}/snapshots", func(w http.ResponseWriter, r *http.Request) {
		vm := l.vmNamed(r.PathValue("vm"))
		if vm == nil {
			jsonError(w, http.StatusNotFound, fmt.Errorf("no VM %q in the lab", r.PathValue("vm")))
			return
		}
		var req struct {
			Name        string `json:"name"`
			Description string `json:"description"`
			Memory      bool   `json:"memory"`
		}
		body, err := readBody(r)
		if err == nil && len(bytes.TrimSpace(body)) > 0 {
			err = strictJSON(body, &req)
		}
		if err == nil && req.Name == "" {
			err = errors.New("name: the snapshot's name")
		}
		if err != nil {
			jsonError(w, http.StatusBadRequest, err)
			return
		}
		ctx := l.labContext()
		var res soap.HasFault
		ctx.WithLock(vm, func() {
			res = vm.CreateSnapshotExTask(ctx, &types.CreateSnapshotEx_Task{This: vm.Self, Name: req.Name, Description: req.Description, Memory: req.Memory})
		})
		b, ok := res.(*methods.CreateSnapshotEx_TaskBody)
		if !ok || b.Res == nil {
			jsonError(w, http.StatusInternalServerError, fmt.Errorf("snapshot of %s not started", vm.Name))
			return
		}
		result, err := l.waitTask(b.Res.Returnval)
		if err != nil {
			jsonError(w, http.StatusInternalServerError, err)
			return
		}
		snap, _ := result.(types.ManagedObjectReference)
		writeJSON(w, http.StatusCreated, map[string]any{"vm": vm.Name, "moref": vm.Self.Value, "snapshot": snap.Value, "name": req.Name})
	})
}

// vmNamed: the VM of that name (escaped or as typed) or moref. A name other
// datacenters repeat is the first datacenter's VM (the others' by moref).
func (l *Lab) vmNamed(name string) *simulator.VirtualMachine {
	escaped := escapeName(name)
	ctx := l.labContext()
	var found *simulator.VirtualMachine
	for _, obj := range l.reg.All("VirtualMachine") {
		vm, ok := obj.(*simulator.VirtualMachine)
		switch {
		case !ok:
		case vm.Self.Value == name:
			return vm
		case vm.Name == name || vm.Name == escaped:
			if dc := datacenterOf(ctx, vm); dc != nil && dc.Name == l.file.Datacenter {
				return vm
			}
			if found == nil || vm.Self.Value < found.Self.Value {
				found = vm
			}
		}
	}
	return found
}

// ---- disk locks -------------------------------------------------------------------

// vmdkUse is how a VM opens one of its VMDKs.
type vmdkUse struct {
	file    string
	sharing string // the controller's: noSharing, virtualSharing, physicalSharing
	multi   bool   // backing.sharing sharingMultiWriter
}

func vmdkUses(vm *simulator.VirtualMachine) []vmdkUse {
	devices := object.VirtualDeviceList(vm.Config.Hardware.Device)
	var out []vmdkUse
	for _, d := range devices {
		disk, ok := d.(*types.VirtualDisk)
		if !ok {
			continue
		}
		b, ok := disk.Backing.(*types.VirtualDiskFlatVer2BackingInfo)
		if !ok || b.FileName == "" {
			continue
		}
		u := vmdkUse{file: b.FileName, sharing: string(types.VirtualSCSISharingNoSharing), multi: b.Sharing == string(types.VirtualDiskSharingSharingMultiWriter)}
		switch c := devices.FindByKey(disk.ControllerKey).(type) {
		case types.BaseVirtualSCSIController:
			u.sharing = string(sharing(c))
		case *types.VirtualNVMEController:
			if controllerShared(c) {
				u.sharing = string(types.VirtualSCSISharingPhysicalSharing)
			}
		}
		out = append(out, u)
	}
	return out
}

// checkDiskLocks (lab files with diskLocks: true): ESXi opens a VMDK for one
// VM at a time unless the VMs share it the way it allows: both on a
// controller with bus sharing (virtualSharing: on the same host only;
// physicalSharing: on the same host, or across hosts when the datastore has
// clustered VMDK support enabled), or both with multi-writer sharing. A VM
// whose disk another powered-on VM holds otherwise does not power on.
func (l *Lab) checkDiskLocks(ctx *simulator.Context, vm *simulator.VirtualMachine) (types.BaseMethodFault, string) {
	mine := vmdkUses(vm)
	if len(mine) == 0 {
		return nil, ""
	}
	for _, obj := range l.reg.All("VirtualMachine") {
		other, ok := obj.(*simulator.VirtualMachine)
		if !ok || other.Self == vm.Self || other.Runtime.PowerState != types.VirtualMachinePowerStatePoweredOn {
			continue
		}
		theirs := map[string]vmdkUse{}
		for _, u := range vmdkUses(other) {
			theirs[u.file] = u
		}
		sameHost := other.Runtime.Host != nil && vm.Runtime.Host != nil && *other.Runtime.Host == *vm.Runtime.Host
		for _, u := range mine {
			t, ok := theirs[u.file]
			if !ok || (u.multi && t.multi) {
				continue
			}
			shared := u.sharing != string(types.VirtualSCSISharingNoSharing) && t.sharing != string(types.VirtualSCSISharingNoSharing)
			if shared && sameHost {
				continue
			}
			why := "it is open in virtual machine '" + other.Name + "'"
			if shared && u.sharing == string(types.VirtualSCSISharingPhysicalSharing) && t.sharing == u.sharing {
				var p object.DatastorePath
				p.FromString(u.file)
				if l.clusteredVmdkEnabled(ctx, vm, p.Datastore) {
					continue
				}
				why = fmt.Sprintf("it is open in virtual machine '%s' on another host and datastore '%s' has no clustered VMDK support", other.Name, p.Datastore)
			}
			msg := fmt.Sprintf("Cannot open the disk '%s' or one of the snapshot disks it depends on: failed to lock the file (%s).", u.file, why)
			return &types.GenericVmConfigFault{Reason: msg}, msg
		}
	}
	return nil, ""
}

// clusteredVmdkEnabled: the VM's host mounts the datastore and its
// capability.clusteredVmdkSupported is set.
func (l *Lab) clusteredVmdkEnabled(ctx *simulator.Context, vm *simulator.VirtualMachine, name string) bool {
	if vm.Runtime.Host == nil {
		return false
	}
	host, ok := ctx.Map.Get(*vm.Runtime.Host).(*simulator.HostSystem)
	if !ok {
		return false
	}
	ds, ok := ctx.Map.FindByName(name, host.Datastore).(*simulator.Datastore)
	if !ok {
		return false
	}
	on := false
	ctx.WithLock(ds, func() {
		on = ds.Capability.ClusteredVmdkSupported != nil && *ds.Capability.ClusteredVmdkSupported
	})
	return on
}
