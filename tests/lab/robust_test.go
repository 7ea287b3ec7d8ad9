package main

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// The recovery reaches into the simulator's unexported state: a govmomi
// upgrade that renames it must fail here, not silently in a crash.
func TestSimulatorInternalsAreReachable(t *testing.T) {
	r := simulator.NewRegistry()
	if !unexported(r, "locks").IsValid() {
		t.Error("Registry.locks not found")
	}
	if _, ok := fieldPointer[struct{}](r, "m"); ok {
		t.Error("fieldPointer ignores the field's type")
	}
	ctx := &simulator.Context{Map: r}
	if !unexported(ctx, "req").IsValid() {
		t.Error("Context.req not found")
	}
	if requestOf(ctx) != nil {
		t.Error("requestOf of an in-process context")
	}
	task := simulator.CreateTask(types.ManagedObjectReference{Type: "Folder", Value: "f"}, "x", nil)
	if !unexported(task, "ctx").IsValid() {
		t.Error("Task.ctx not found")
	}
	if taskContext(task) != nil {
		t.Error("taskContext of a task never run")
	}
}

func TestReleaseLocks(t *testing.T) {
	r := simulator.NewRegistry()
	f := &simulator.Folder{Folder: mo.Folder{ManagedEntity: mo.ManagedEntity{ExtensibleManagedObject: mo.ExtensibleManagedObject{
		Self: types.ManagedObjectReference{Type: "Folder", Value: "group-1"}}}}}
	g := &simulator.Folder{Folder: mo.Folder{ManagedEntity: mo.ManagedEntity{ExtensibleManagedObject: mo.ExtensibleManagedObject{
		Self: types.ManagedObjectReference{Type: "Folder", Value: "group-2"}}}}}
	r.Put(f)
	r.Put(g)
	crashed := &simulator.Context{Map: r}
	other := &simulator.Context{Map: r}
	// the crashed call held f twice (e.g. a task's hand-off and its own) and g once
	r.AcquireLock(crashed, f)
	r.AcquireLock(crashed, f)
	r.AcquireLock(crashed, g)
	got := make(chan string, 2)
	try := func(obj mo.Reference, name string) {
		go func() {
			unlock := r.AcquireLock(other, obj)
			unlock()
			got <- name
		}()
	}
	keep := map[types.ManagedObjectReference]int64{f.Self: 1}
	if n := releaseLocks(r, crashed, keep); n != 2 {
		t.Fatalf("released %d locks, want 2", n)
	}
	try(g, "g")
	try(f, "f")
	select {
	case name := <-got:
		if name != "g" {
			t.Fatalf("%s acquired, f is still held once", name)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("g still locked")
	}
	select {
	case <-got:
		t.Fatal("f released although kept")
	case <-time.After(50 * time.Millisecond):
	}
	// the kept hold is released by its owner as usual
	unlockF := r.AcquireLock(crashed, f) // count 2 again
	unlockF()
	if n := releaseLocks(r, crashed, nil); n != 1 {
		t.Fatalf("released %d, want 1", n)
	}
	select {
	case <-got:
	case <-time.After(2 * time.Second):
		t.Fatal("f still locked")
	}
	if n := releaseLocks(r, crashed, nil); n != 0 {
		t.Fatalf("released %d locks of nothing", n)
	}
}

func TestTaskDescriptionID(t *testing.T) {
	for _, c := range []struct{ this, method, want string }{
		{"VirtualMachine", "ReconfigVM_Task", "VirtualMachine.reconfigure"},
		{"VirtualMachine", "PowerOnVM_Task", "VirtualMachine.powerOn"},
		{"VirtualMachine", "PowerOffVM_Task", "VirtualMachine.powerOff"},
		{"VirtualMachine", "Rename_Task", "VirtualMachine.rename"},
		{"VirtualMachine", "CreateSnapshot_Task", "VirtualMachine.createSnapshot"},
		{"Folder", "CreateVM_Task", "Folder.createVm"},
		{"ClusterComputeResource", "ReconfigureComputeResource_Task", "ClusterComputeResource.reconfigureEx"},
		{"ClusterComputeResource", "ReconfigureCluster_Task", "ClusterComputeResource.reconfigure"},
		{"ClusterComputeResource", "AddHost_Task", "ClusterComputeResource.addHost"},
		{"HostStorageSystem", "MarkPerenniallyReservedEx_Task", "host.StorageSystem.markPerenniallyReservedEx"},
		{"HostSystem", "EnterMaintenanceMode_Task", "HostSystem.enterMaintenanceMode"},
	} {
		if got := taskDescriptionID(c.this, c.method); got != c.want {
			t.Errorf("taskDescriptionID(%s, %s) = %s, want %s", c.this, c.method, got, c.want)
		}
	}
}

func TestSimulatorTaskMethod(t *testing.T) {
	for id, want := range map[string]string{
		"Folder.createVm":                           "CreateVM_Task",
		"VirtualMachine.powerOn":                    "PowerOnVM_Task",
		"VirtualMachine.destroy":                    "Destroy_Task",
		"HostSystem.enterMaintenanceMode":           "EnterMaintenanceMode_Task",
		"ClusterComputeResource.reconfigureCluster": "ReconfigureComputeResource_Task",
		"VirtualMachine.shutdownGuest":              "ShutdownGuest",
	} {
		if got := simulatorTaskMethod(id); got != want {
			t.Errorf("simulatorTaskMethod(%s) = %s, want %s", id, got, want)
		}
	}
}

func TestOptionDefinitions(t *testing.T) {
	var settings []types.BaseOptionValue
	for _, o := range defaultHostOptions {
		settings = append(settings, &types.OptionValue{Key: o.key, Value: o.val})
	}
	settings = append(settings,
		&types.OptionValue{Key: "Config.HostAgent.log.level", Value: "info"},
		&types.OptionValue{Key: "Lab.Flag", Value: true},
		&types.OptionValue{Key: "Lab.Count", Value: int64(3)})
	defs := hostOptionDefs(settings)
	if len(defs) != len(settings) {
		t.Fatalf("%d definitions for %d options", len(defs), len(settings))
	}
	byKey := map[string]types.BaseOptionType{}
	for _, d := range defs {
		byKey[d.Key] = d.OptionType
	}
	lun := byKey["Disk.UseLunReset"].(*types.LongOption)
	if lun.Min != 0 || lun.Max != 1 || lun.DefaultValue != 1 {
		t.Errorf("Disk.UseLunReset: %+v", lun)
	}
	if c := byKey["Lab.Count"].(*types.LongOption); c.Min != math.MinInt64 || c.DefaultValue != 3 {
		t.Errorf("Lab.Count: %+v", c)
	}
	for _, c := range []struct {
		key  string
		val  any
		want string // "" accepted, else a part of the reason
	}{
		{"Disk.UseLunReset", int64(0), ""},
		{"Disk.UseLunReset", int64(2), "out of range"},
		{"Disk.UseLunReset", int32(1), "expected xsd:long, got xsd:int"},
		{"Misc.APDTimeout", int64(20), ""},
		{"Misc.APDTimeout", int64(19), "out of range"},
		{"Config.HostAgent.log.level", "verbose", ""},
		{"Config.HostAgent.log.level", int64(1), "expected xsd:string"},
		{"Lab.Flag", false, ""},
		{"Lab.Flag", "false", "expected xsd:boolean"},
	} {
		got := checkOptionValue(byKey[c.key], c.val)
		if c.want == "" && got != "" || c.want != "" && !strings.Contains(got, c.want) {
			t.Errorf("checkOptionValue(%s, %v) = %q, want %q", c.key, c.val, got, c.want)
		}
	}
}

func TestFaultActions(t *testing.T) {
	for _, c := range []struct {
		spec FaultSpec
		err  string
	}{
		{FaultSpec{Method: "ReconfigVM_Task", Action: "drop_after"}, ""},
		{FaultSpec{Method: "ReconfigVM_Task", Action: "panic_task"}, ""},
		{FaultSpec{Method: "CurrentTime", Action: "panic_task"}, "needs a *_Task method"},
		{FaultSpec{Method: "CurrentTime", Action: "panic"}, ""},
		{FaultSpec{Method: "PowerOnVM_Task", DelayMs: 60_000}, ""},
		{FaultSpec{Method: "PowerOnVM_Task", DelayMs: maxDelayMs + 1}, "delay_ms"},
	} {
		s := c.spec
		err := s.validate()
		if c.err == "" && err != nil || c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
			t.Errorf("%+v: %v, want %q", c.spec, err, c.err)
		}
	}
}

func TestControllerDevices(t *testing.T) {
	scsi := &types.VirtualLsiLogicSASController{VirtualSCSIController: types.VirtualSCSIController{
		VirtualController: types.VirtualController{VirtualDevice: types.VirtualDevice{Key: 1000}, Device: []int32{-7}}}}
	ide := &types.VirtualIDEController{VirtualController: types.VirtualController{VirtualDevice: types.VirtualDevice{Key: 200}}}
	disk := func(key int32) *types.VirtualDisk {
		return &types.VirtualDisk{VirtualDevice: types.VirtualDevice{Key: key, ControllerKey: 1000}}
	}
	cdrom := &types.VirtualCdrom{VirtualDevice: types.VirtualDevice{Key: 3000, ControllerKey: 200}}
	devices := []types.BaseVirtualDevice{ide, scsi, disk(2000), cdrom, disk(2001)}
	if !controllerDevices(devices) {
		t.Fatal("nothing changed")
	}
	if !equalKeys(scsi.Device, []int32{2000, 2001}) || !equalKeys(ide.Device, []int32{3000}) {
		t.Errorf("scsi %v, ide %v", scsi.Device, ide.Device)
	}
	if controllerDevices(devices) {
		t.Error("changed again")
	}
}
