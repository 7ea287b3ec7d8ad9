package main

// Tasks as vCenter shows them.
//
// vCenter names a task after the API call that created it: info.name is the
// call's wire method name (ReconfigVM_Task), info.descriptionId the vmodl
// type and method (VirtualMachine.reconfigure), info.entityName the
// entity's name. The simulator names tasks after its own Go functions
// ("ReconfigVm", "CreateVm", "PowerOn" ...), which no client knows: pyVmomi
// reads info.name as an UnknownManagedMethod, and pyVim's WaitForTask then
// fails on a running task (AttributeError: 'UnknownManagedMethod' object has
// no attribute 'info').
//
// Every SOAP call carries a callState (dispatch attaches it to the call's
// simulator.Context). When a task is registered, the lab finds the call that
// created it through the task's context: the first task of a call is the
// call's own and gets its names; any later task of the same call (the
// simulator's inner CreateVm of a VM the lab creates under a stand-in name,
// the tasks a clone runs inside its own ...) is internal and stays out of
// TaskManager.recentTask, the entities' recentTask and the task history.
//
// The same hook guards every task: a Go panic while a task runs ends the
// task in SystemError instead of ending the lab (recover.go), and once a task
// has succeeded the device lists of its VM's controllers are brought up to
// date (controllerDevices).

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// callState is what the lab knows of one SOAP call being served.
type callState struct {
	mu sync.Mutex
	// method is the wire method name, this the object the call is on.
	method string
	this   types.ManagedObjectReference
	// ctx is the simulator's context of the call: the identity its object
	// locks are held under, shared with the tasks it starts.
	ctx *simulator.Context
	// inject: "panic" or "panic_task" when a fault rule asks for a crash.
	inject string
	// tasks counts the tasks the call has started.
	tasks int
	// done is closed once the HTTP request has been answered (nil for the
	// lab's in-process calls).
	done chan struct{}
}

type callKey struct{}

// callOfRequest is the callState the SOAP handler chain put in the request.
func callOfRequest(r *http.Request) *callState {
	if r == nil {
		return nil
	}
	cs, _ := r.Context().Value(callKey{}).(*callState)
	return cs
}

// callOf is the callState of a simulator context, or nil.
func callOf(ctx *simulator.Context) *callState {
	if ctx == nil || ctx.Context == nil {
		return nil
	}
	cs, _ := ctx.Value(callKey{}).(*callState)
	return cs
}

// attachCall ties the call being dispatched to its simulator context: the
// callState of its HTTP request, or a new one for the lab's in-process calls.
func attachCall(ctx *simulator.Context, m *simulator.Method) *callState {
	if cs := callOf(ctx); cs != nil {
		return cs
	}
	cs := callOfRequest(requestOf(ctx))
	if cs == nil {
		cs = &callState{}
	}
	cs.mu.Lock()
	cs.method, cs.this, cs.ctx = m.Name, m.This, ctx
	cs.mu.Unlock()
	if ctx.Context == nil {
		ctx.Context = context.Background()
	}
	ctx.Context = context.WithValue(ctx.Context, callKey{}, cs)
	return cs
}

// ---- names --------------------------------------------------------------------

// vmodlMethods: the vmodl method names of the wire names that do not follow
// the rule "drop _Task, lower the first letter" (CreateSnapshot_Task →
// createSnapshot). vCenter's descriptionId is "<type>.<vmodl method>".
var vmodlMethods = map[string]string{
	"ReconfigVM_Task":                 "reconfigure",
	"PowerOnVM_Task":                  "powerOn",
	"PowerOffVM_Task":                 "powerOff",
	"SuspendVM_Task":                  "suspend",
	"ResetVM_Task":                    "reset",
	"CreateVM_Task":                   "createVm",
	"RegisterVM_Task":                 "registerVm",
	"CloneVM_Task":                    "clone",
	"RelocateVM_Task":                 "relocate",
	"MigrateVM_Task":                  "migrate",
	"UpgradeVM_Task":                  "upgradeVirtualHardware",
	"CustomizeVM_Task":                "customize",
	"ReconfigureComputeResource_Task": "reconfigureEx",
	"ReconfigureCluster_Task":         "reconfigure",
	"PowerOnMultiVM_Task":             "powerOnVm",
	"CreateDVS_Task":                  "createDistributedVirtualSwitch",
	"MoveIntoFolder_Task":             "moveInto",
}

// simulatorTasks: the wire method names of the simulator's task names
// (descriptionId "<type>.<name>") that do not follow "upper the first
// letter, add _Task" (destroy → Destroy_Task). Internal tasks are named by
// them, so that a client waiting on one still reads a method it knows.
var simulatorTasks = map[string]string{
	"createVm":           "CreateVM_Task",
	"reconfigVm":         "ReconfigVM_Task",
	"powerOn":            "PowerOnVM_Task",
	"powerOff":           "PowerOffVM_Task",
	"suspend":            "SuspendVM_Task",
	"reset":              "ResetVM_Task",
	"cloneVm":            "CloneVM_Task",
	"relocateVm":         "RelocateVM_Task",
	"upgradeVm":          "UpgradeVM_Task",
	"customizeVm":        "CustomizeVM_Task",
	"registerVm":         "RegisterVM_Task",
	"reconfigureCluster": "ReconfigureComputeResource_Task",
	"powerOnMultiVM":     "PowerOnMultiVM_Task",
	"createDVS":          "CreateDVS_Task",
	"reconfigureDvs":     "ReconfigureDvs_Task",
	"shutdownGuest":      "ShutdownGuest",
	"standbyGuest":       "StandbyGuest",
}

// simulatorTaskMethod is the wire method name of a task the simulator named.
func simulatorTaskMethod(descriptionID string) string {
	id := descriptionID[strings.LastIndex(descriptionID, ".")+1:]
	if m, ok := simulatorTasks[id]; ok {
		return m
	}
	if id == "" {
		return ""
	}
	return strings.ToUpper(id[:1]) + id[1:] + "_Task"
}

// vmodlType is the vmodl name of a managed object type as descriptionIds
// use it: HostStorageSystem is host.StorageSystem.
func vmodlType(wire string) string {
	if strings.HasPrefix(wire, "Host") && wire != "HostSystem" {
		return "host." + strings.TrimPrefix(wire, "Host")
	}
	return wire
}

// taskDescriptionID is vCenter's info.descriptionId of the task a call
// creates: VirtualMachine.reconfigure for ReconfigVM_Task on a VM.
func taskDescriptionID(thisType, method string) string {
	m, ok := vmodlMethods[method]
	if !ok {
		m = lcFirst(strings.TrimSuffix(method, "_Task"))
	}
	return vmodlType(thisType) + "." + m
}

// nameTask gives a task the names vCenter gives the task of that call.
func nameTask(t *simulator.Task, method string, this types.ManagedObjectReference) {
	t.Info.Name = method
	t.Info.DescriptionId = taskDescriptionID(this.Type, method)
}

// ---- the task manager's view ----------------------------------------------------

// taskManagerFilter stands in for the TaskManager as the registry's handler
// of new objects: it names and guards every task, and passes on to the
// TaskManager (recentTask, history) all but the internal ones.
type taskManagerFilter struct {
	*simulator.TaskManager
	lab *Lab
}

func (l *Lab) installTaskFilter() {
	ref := l.model.ServiceContent.TaskManager
	if ref == nil {
		return
	}
	tm, ok := l.reg.Get(*ref).(*simulator.TaskManager)
	if !ok {
		return
	}
	// same reference: replaces the TaskManager's own registration
	l.reg.AddHandler(&taskManagerFilter{TaskManager: tm, lab: l})
}

func (f *taskManagerFilter) PutObject(ctx *simulator.Context, obj mo.Reference) {
	if t, ok := obj.(*simulator.Task); ok && !f.lab.adoptTask(t) {
		return
	}
	f.TaskManager.PutObject(ctx, obj)
}

// adoptTask names and guards a task being registered. It answers false for
// an internal task, to be kept out of the task lists.
func (l *Lab) adoptTask(t *simulator.Task) bool {
	tctx := taskContext(t)
	cs := callOf(tctx)
	visible := true
	first := false
	if cs != nil {
		cs.mu.Lock()
		first = cs.tasks == 0
		cs.tasks++
		method, this := cs.method, cs.this
		cs.mu.Unlock()
		if first {
			nameTask(t, method, this)
		} else {
			visible = false
		}
		if tctx.Session != nil && tctx.Session.UserName != "" {
			t.Info.Reason = &types.TaskReasonUser{UserName: tctx.Session.UserName}
		}
	}
	if tctx != nil && !first && t.Info.Entity != nil {
		// internal, or started outside any call: named after what it does
		if m := simulatorTaskMethod(t.Info.DescriptionId); m != "" {
			nameTask(t, m, *t.Info.Entity)
		}
	}
	if t.Info.Entity != nil {
		if e, ok := l.reg.Get(*t.Info.Entity).(mo.Entity); ok {
			t.Info.EntityName = e.Entity().Name
		}
	}
	if t.Execute != nil && tctx != nil {
		inject := ""
		if first {
			cs.mu.Lock()
			if cs.inject == "panic_task" {
				inject, cs.inject = cs.inject, ""
			}
			cs.mu.Unlock()
		}
		l.guardTask(t, tctx, cs, inject != "")
	}
	return visible
}

// guardTask wraps a task's work: a panic ends the task in SystemError (and
// releases the object locks the panic left held); a task that succeeded
// brings its VM's controller device lists up to date. With crash, the task
// panics before doing anything (fault rule action panic_task).
func (l *Lab) guardTask(t *simulator.Task, tctx *simulator.Context, cs *callState, crash bool) {
	run := t.Execute
	name := t.Info.Name
	t.Execute = func(task *simulator.Task) (res types.AnyType, fault types.BaseMethodFault) {
		defer func() {
			p := recover()
			if p == nil {
				return
			}
			reason := l.recoverTask(task, tctx, cs, name, p)
			res, fault = nil, &types.SystemError{Reason: reason}
		}()
		if crash {
			injectedPanic(tctx, *task.Info.Entity, name)
		}
		res, fault = run(task)
		if fault == nil {
			l.afterTaskRun(tctx, task, res)
		}
		return res, fault
	}
}

// injectedPanic panics holding the object's lock, as a crash inside a
// simulator method would.
func injectedPanic(ctx *simulator.Context, ref types.ManagedObjectReference, method string) {
	msg := fmt.Sprintf("injected panic in %s (fault rule)", method)
	if obj := ctx.Map.Get(ref); obj != nil {
		ctx.WithLock(obj, func() { panic(msg) })
	}
	panic(msg)
}

// afterTaskRun: the VM a task changed or created gets its controllers'
// device lists recomputed.
func (l *Lab) afterTaskRun(ctx *simulator.Context, t *simulator.Task, res types.AnyType) {
	var refs []types.ManagedObjectReference
	if t.Info.Entity != nil && t.Info.Entity.Type == "VirtualMachine" {
		refs = append(refs, *t.Info.Entity)
	}
	if ref, ok := res.(types.ManagedObjectReference); ok && ref.Type == "VirtualMachine" {
		refs = append(refs, ref)
	}
	for _, ref := range refs {
		vm, ok := ctx.Map.Get(ref).(*simulator.VirtualMachine)
		if !ok {
			continue
		}
		ctx.WithLock(vm, func() {
			if vm.Config != nil && controllerDevices(vm.Config.Hardware.Device) {
				ctx.Update(vm, []types.PropertyChange{{Name: "config.hardware.device", Val: vm.Config.Hardware.Device}})
			}
		})
	}
}

// controllerDevices sets every controller's device list (VirtualController.device)
// to the keys of the devices attached to it, in device order, as vSphere
// reports them. The simulator keeps the keys a client's spec had before it
// renumbered the devices (or none). It answers whether a list changed.
func controllerDevices(devices []types.BaseVirtualDevice) bool {
	attached := map[int32][]int32{}
	for _, d := range devices {
		v := d.GetVirtualDevice()
		if v.ControllerKey != 0 {
			attached[v.ControllerKey] = append(attached[v.ControllerKey], v.Key)
		}
	}
	changed := false
	for _, d := range devices {
		c, ok := d.(types.BaseVirtualController)
		if !ok {
			continue
		}
		vc := c.GetVirtualController()
		want := attached[vc.Key]
		if !equalKeys(vc.Device, want) {
			vc.Device = want
			changed = true
		}
	}
	return changed
}

func equalKeys(a, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
