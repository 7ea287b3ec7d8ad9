package main

// Entity names as vCenter returns them.
//
// vCenter escapes three characters in every ManagedEntity.name: "%" as %25,
// "/" as %2f and "\" as %5c (lowercase hex). A name given through the API
// keeps a "%" that starts an escape sequence (%xx, two hex digits); any
// other "%" is escaped. A lab file holds names as a user types them: every
// "%" in it is a percent sign, so all three characters are escaped
// (escapeName); the names the API receives are escaped by vcName.
//
// The simulator escapes only CreateVM_Task and CreateFolder names, every "%"
// included (%2f given by a client becomes %252f), and escaping a VM's name
// it duplicates the spec's device changes (it copies the spec into itself),
// so a VM named "a/b" with a disk fails with InvalidDeviceSpec. The lab
// therefore creates such VMs and folders under a plain stand-in name and
// gives them their escaped name before the client sees the result; other
// calls that name an entity get the escaped name in their request.
//
// The same file also turns away the requests on which the simulator would
// crash the whole lab: a NIC on a network that does not exist, a datastore
// path on a datastore that does not exist, a device change without a device.

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync/atomic"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// escapeName escapes a name as a user types it (lab files, host port group
// names): every "%", "/" and "\".
func escapeName(s string) string { return escape(s, false) }

// vcName is a name received through the API as vCenter stores and returns
// it: "/" and "\" escaped, a "%" escaped unless it starts an escape sequence.
// vcName(vcName(s)) == vcName(s), and vcName(escapeName(s)) == escapeName(s).
func vcName(s string) string { return escape(s, true) }

// escape writes "%", "/" and "\" as %25, %2f and %5c; with keepEscapes a "%"
// that already starts a %xx sequence stays as it is.
func escape(s string, keepEscapes bool) string {
	if !strings.ContainsAny(s, `%/\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '%':
			if keepEscapes && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
				b.WriteByte(c)
			} else {
				b.WriteString("%25")
			}
		case '/':
			b.WriteString("%2f")
		case '\\':
			b.WriteString("%5c")
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// unescapeName turns %25, %2f and %5c (either case) back into "%", "/" and
// "\"; any other %xx stays as it is.
func unescapeName(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			switch strings.ToLower(s[i+1 : i+3]) {
			case "25":
				b.WriteByte('%')
				i += 2
				continue
			case "2f":
				b.WriteByte('/')
				i += 2
				continue
			case "5c":
				b.WriteByte('\\')
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// nameMatches: an entity's (escaped) name is the one asked for, given
// escaped or as a user types it.
func nameMatches(entity, asked string) bool {
	return entity == asked || entity == escapeName(asked) || entity == vcName(asked)
}

// guestHostName is the DNS name a VM's guest reports, from the name as typed:
// lower case, each run of characters other than a-z, 0-9 and "-" as one "-"
// ("SQL/NODE 1" is sql-node-1.lab.local).
func guestHostName(typed string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(typed) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' {
			b.WriteRune(r)
			dash = false
		} else if !dash {
			b.WriteByte('-')
			dash = true
		}
	}
	host := strings.Trim(b.String(), "-")
	if host == "" {
		host = "vm"
	}
	return host + ".lab.local"
}

// escapeRequestNames escapes the entity names in the requests that name an
// entity, before the simulator sees them. CreateVM_Task, CreateFolder and
// AddPortGroup are served by handlers below.
func escapeRequestNames(body any) {
	switch r := body.(type) {
	case *types.Rename_Task:
		r.NewName = vcName(r.NewName)
	case *types.ReconfigVM_Task:
		r.Spec.Name = vcName(r.Spec.Name)
	case *types.CreateDatacenter:
		r.Name = vcName(r.Name)
	case *types.CreateClusterEx:
		r.Name = vcName(r.Name)
	case *types.CreateCluster:
		r.Name = vcName(r.Name)
	case *types.CreateStoragePod:
		r.Name = vcName(r.Name)
	case *types.CreateResourcePool:
		r.Name = vcName(r.Name)
	case *types.CreateLocalDatastore:
		r.Name = vcName(r.Name)
	case *types.AddHost_Task:
		r.Spec.HostName = vcName(r.Spec.HostName)
	case *types.AddStandaloneHost_Task:
		r.Spec.HostName = vcName(r.Spec.HostName)
	case *types.CreateDVS_Task:
		if r.Spec.ConfigSpec != nil {
			c := r.Spec.ConfigSpec.GetDVSConfigSpec()
			c.Name = vcName(c.Name)
		}
	case *types.AddDVPortgroup_Task:
		for i := range r.Spec {
			r.Spec[i].Name = vcName(r.Spec[i].Name)
		}
	case *types.CreateDVPortgroup_Task:
		r.Spec.Name = vcName(r.Spec.Name)
	case *types.ReconfigureDVPortgroup_Task:
		r.Spec.Name = vcName(r.Spec.Name)
	}
}

func init() {
	folder := func(l *Lab, ctx *simulator.Context, m *simulator.Method) mo.Reference {
		if f, ok := ctx.Map.Get(m.This).(*simulator.Folder); ok {
			return &folderHandler{Folder: f, lab: l}
		}
		return nil
	}
	intercept("Folder", "CreateVM_Task", folder)
	intercept("Folder", "CreateFolder", folder)
	intercept("VirtualMachine", "Rename_Task", func(l *Lab, ctx *simulator.Context, m *simulator.Method) mo.Reference {
		if vm, ok := ctx.Map.Get(m.This).(*simulator.VirtualMachine); ok {
			return &vmRenameHandler{VirtualMachine: vm}
		}
		return nil
	})
	intercept("HostNetworkSystem", "AddPortGroup", func(l *Lab, ctx *simulator.Context, m *simulator.Method) mo.Reference {
		if ns, ok := ctx.Map.Get(m.This).(*simulator.HostNetworkSystem); ok && ns.Host != nil {
			return &networkSystemHandler{HostNetworkSystem: ns}
		}
		return nil
	})
}

// standIns numbers the plain names entities are created under.
var standIns atomic.Int64

func standInName() string {
	return fmt.Sprintf("lab-naming-%d", standIns.Add(1))
}

// datacenterOf is the datacenter an entity is in, or nil.
func datacenterOf(ctx *simulator.Context, e mo.Entity) *simulator.Datacenter {
	for e != nil {
		if dc, ok := e.(*simulator.Datacenter); ok {
			return dc
		}
		p := e.Entity().Parent
		if p == nil {
			return nil
		}
		next, ok := ctx.Map.Get(*p).(mo.Entity)
		if !ok {
			return nil
		}
		e = next
	}
	return nil
}

// findNamed finds the entity of refs with that name, given escaped or as typed.
func findNamed(ctx *simulator.Context, name string, refs []types.ManagedObjectReference) mo.Entity {
	for _, n := range []string{name, escapeName(name), vcName(name)} {
		if e := ctx.Map.FindByName(n, refs); e != nil {
			return e
		}
	}
	return nil
}

func invalidPath(p string) (types.BaseMethodFault, string) {
	return &types.InvalidDatastorePath{DatastorePath: p}, fmt.Sprintf("Invalid datastore path '%s'.", p)
}

// datastorePath checks a "[ds] path": a datastore of the datacenter (named
// escaped or as typed; the path then names it escaped), a path that stays
// on it.
func datastorePath(ctx *simulator.Context, dc *simulator.Datacenter, p string) (string, types.BaseMethodFault, string) {
	var dp object.DatastorePath
	if !dp.FromString(p) {
		f, msg := invalidPath(p)
		return p, f, msg
	}
	ds := findNamed(ctx, dp.Datastore, dc.Datastore)
	if ds == nil || dp.Path != "" && !filepath.IsLocal(filepath.FromSlash(dp.Path)) {
		f, msg := invalidPath(p)
		return p, f, msg
	}
	dp.Datastore = ds.Entity().Name
	return dp.String(), nil, ""
}

// checkDevices refuses the device changes the simulator would crash on and
// names networks and datastores in backings as the inventory names them: a
// NIC's deviceName is its network's name (found by deviceName, given escaped
// or as typed, else by the network reference), a file backing's datastore is
// one of the datacenter's.
func checkDevices(ctx *simulator.Context, dc *simulator.Datacenter, changes []types.BaseVirtualDeviceConfigSpec) (types.BaseMethodFault, string) {
	for i, change := range changes {
		ds := change.GetVirtualDeviceConfigSpec()
		if ds.Device == nil {
			return invalidDevice(i, "The device is missing.")
		}
		if ds.Operation == types.VirtualDeviceConfigSpecOperationRemove {
			continue
		}
		if b, ok := ds.Device.GetVirtualDevice().Backing.(*types.VirtualEthernetCardNetworkBackingInfo); ok {
			name := b.DeviceName
			if name == "" && b.Network != nil {
				if n, ok := ctx.Map.Get(*b.Network).(mo.Entity); ok {
					name = n.Entity().Name
				}
			}
			n := findNamed(ctx, name, dc.Network)
			if n == nil {
				return invalidBacking(i, fmt.Sprintf("The network '%s' is not found.", name))
			}
			b.DeviceName = n.Entity().Name
			ref := n.Reference()
			b.Network = &ref
		}
		if b, ok := ds.Device.GetVirtualDevice().Backing.(types.BaseVirtualDeviceFileBackingInfo); ok {
			info := b.GetVirtualDeviceFileBackingInfo()
			if info.FileName == "" {
				continue
			}
			p, fault, msg := datastorePath(ctx, dc, info.FileName)
			if fault != nil {
				return fault, msg
			}
			info.FileName = p
		}
	}
	return nil, ""
}

// ---- folders ----------------------------------------------------------------

type folderHandler struct {
	*simulator.Folder
	lab *Lab
}

// CreateVMTask creates a VM with its name escaped as vCenter does. Its files
// go in a folder named by the escaped name ("[ds] a%2fb/a%2fb.vmx"), its new
// disks "[ds] a%2fb/a%2fb.vmdk", "…_1.vmdk" …
func (h *folderHandler) CreateVMTask(ctx *simulator.Context, req *types.CreateVM_Task) soap.HasFault {
	l := h.lab
	reply := func(ref types.ManagedObjectReference) soap.HasFault {
		return &methods.CreateVM_TaskBody{Res: &types.CreateVM_TaskResponse{Returnval: ref}}
	}
	fail := func(fault types.BaseMethodFault, msg string) soap.HasFault {
		return reply(l.failedTask(ctx, h.Self, "CreateVM_Task", fault, msg, false))
	}
	spec := &req.Config
	dc := datacenterOf(ctx, h.Folder)
	if dc == nil || spec.Files == nil || spec.Files.VmPathName == "" || spec.Name == "" {
		return h.Folder.CreateVMTask(ctx, req) // the simulator's InvalidVmConfig
	}
	if fault := l.checkPlacement(ctx, req); fault != nil {
		return &methods.CreateVM_TaskBody{Fault_: fault}
	}
	vmx, fault, msg := datastorePath(ctx, dc, spec.Files.VmPathName)
	if fault != nil {
		return fail(fault, msg)
	}
	spec.Files.VmPathName = vmx
	if fault, msg := l.checkHosts(ctx, req); fault != nil {
		return fail(fault, msg)
	}
	if fault, msg := checkDevices(ctx, dc, spec.DeviceChange); fault != nil {
		return fail(fault, msg)
	}
	var target *labHost
	if req.Host != nil {
		target = l.hosts[req.Host.Value]
	}
	if fault, msg := l.checkNVMe(nil, target, spec); fault != nil {
		return fail(fault, msg)
	}
	if fault, msg := checkDiskSharing(spec); fault != nil {
		return fail(fault, msg)
	}
	if req.Host != nil {
		if host, ok := ctx.Map.Get(*req.Host).(*simulator.HostSystem); ok {
			if fault, msg := checkHostDatastores(ctx, dc, host, spec.Files.VmPathName, spec.DeviceChange); fault != nil {
				return fail(fault, msg)
			}
		}
	} else if fault, msg := l.placeOnHost(ctx, dc, req); fault != nil {
		return fail(fault, msg)
	}
	name := vcName(spec.Name)
	// a VM name is once per folder (the simulator does not check): the
	// same name in another folder or datacenter is allowed
	if obj := ctx.Map.FindByName(name, h.Folder.ChildEntity); obj != nil {
		return fail(&types.DuplicateName{Name: name, Object: obj.Reference()}, fmt.Sprintf("The name '%s' already exists.", name))
	}
	if !strings.Contains(name, "%") {
		spec.Name = name
		return h.Folder.CreateVMTask(ctx, req)
	}

	var p object.DatastorePath
	p.FromString(spec.Files.VmPathName)
	if path.Ext(p.Path) != ".vmx" {
		dir := p.Path
		if dir == "" {
			dir = name
		}
		p.Path = l.freeDir(p.Datastore, dir) + "/" + name + ".vmx"
		spec.Files.VmPathName = p.String()
	}
	l.nameNewDisks(p, name, spec.DeviceChange)
	standIn := standInName()
	spec.Name = standIn

	task := simulator.CreateTask(h.Folder, "createVm", func(*simulator.Task) (types.AnyType, types.BaseMethodFault) {
		body := h.Folder.CreateVMTask(ctx, req)
		if f := body.Fault(); f != nil {
			if mf, ok := f.VimFault().(types.BaseMethodFault); ok {
				return nil, mf
			}
			return nil, &types.SystemError{Reason: f.String}
		}
		inner, ok := ctx.Map.Get(body.(*methods.CreateVM_TaskBody).Res.Returnval).(*simulator.Task)
		if !ok {
			return nil, &types.SystemError{Reason: "the VM's creation task is gone"}
		}
		inner.Wait()
		if inner.Info.State != types.TaskInfoStateSuccess {
			if inner.Info.Error != nil {
				return nil, inner.Info.Error.Fault
			}
			return nil, &types.SystemError{Reason: "the VM was not created"}
		}
		ref, ok := inner.Info.Result.(types.ManagedObjectReference)
		if !ok {
			return nil, &types.SystemError{Reason: "the VM was not created"}
		}
		spec.Name = name // VmBeingCreatedEvent's configSpec
		l.giveName(ctx, ref, standIn, name, p)
		return ref, nil
	})
	return reply(task.Run(ctx))
}

// checkPlacement answers ManagedObjectNotFound for a resource pool or host
// that does not exist, as vCenter does (the simulator would crash).
func (l *Lab) checkPlacement(ctx *simulator.Context, req *types.CreateVM_Task) *soap.Fault {
	refs := []types.ManagedObjectReference{req.Pool}
	if req.Host != nil {
		refs = append(refs, *req.Host)
	}
	for _, r := range refs {
		if _, ok := ctx.Map.Get(r).(mo.Entity); !ok {
			return simulator.Fault(fmt.Sprintf("The object '%s' has already been deleted or has not been completely created", r.Value),
				&types.ManagedObjectNotFound{Obj: r})
		}
	}
	return nil
}

// checkHosts: with no host given, one of the pool's hosts must mount the
// VM's datastore (the simulator would crash picking one).
func (l *Lab) checkHosts(ctx *simulator.Context, req *types.CreateVM_Task) (types.BaseMethodFault, string) {
	if req.Host != nil {
		return nil, ""
	}
	var p object.DatastorePath
	p.FromString(req.Config.Files.VmPathName)
	hosts, ok := poolHosts(ctx, req.Pool)
	if !ok {
		return nil, ""
	}
	for _, hr := range hosts {
		if h, ok := ctx.Map.Get(hr).(*simulator.HostSystem); ok && ctx.Map.FindByName(p.Datastore, h.Datastore) != nil {
			return nil, ""
		}
	}
	return &types.InvalidDatastore{Name: p.Datastore}, fmt.Sprintf("The datastore '%s' is not accessible from the hosts of the resource pool.", p.Datastore)
}

// poolHosts are the hosts of the compute resource a resource pool belongs to.
func poolHosts(ctx *simulator.Context, pool types.ManagedObjectReference) ([]types.ManagedObjectReference, bool) {
	e, _ := ctx.Map.Get(pool).(mo.Entity)
	for e != nil {
		switch cr := e.(type) {
		case *simulator.ClusterComputeResource:
			return cr.Host, true
		case *mo.ComputeResource:
			return cr.Host, true
		}
		parent := e.Entity().Parent
		if parent == nil {
			return nil, false
		}
		e, _ = ctx.Map.Get(*parent).(mo.Entity)
	}
	return nil, false
}

// placeOnHost: with no host given and devices on datastores other than the
// vmx's, the VM goes to the first host of the pool that mounts them all, as
// vCenter places a VM on a compatible host (the simulator picks any host
// with the vmx's datastore and crashes on a disk its host does not see).
// No such host: InvalidDatastore.
func (l *Lab) placeOnHost(ctx *simulator.Context, dc *simulator.Datacenter, req *types.CreateVM_Task) (types.BaseMethodFault, string) {
	if req.Host != nil {
		return nil, ""
	}
	hosts, ok := poolHosts(ctx, req.Pool)
	if !ok || len(hosts) == 0 {
		return nil, ""
	}
	var fault types.BaseMethodFault
	var msg string
	var fits []types.ManagedObjectReference
	misfits := 0
	for _, hr := range hosts {
		h, ok := ctx.Map.Get(hr).(*simulator.HostSystem)
		if !ok {
			continue
		}
		f, m := checkHostDatastores(ctx, dc, h, req.Config.Files.VmPathName, req.Config.DeviceChange)
		if f == nil {
			fits = append(fits, h.Self)
			continue
		}
		misfits++
		if fault == nil {
			fault, msg = f, m
		}
	}
	switch {
	case len(fits) == 0 && fault != nil:
		return fault, strings.Replace(msg, "from host", "from any host of the resource pool, e.g.", 1)
	case len(fits) > 0 && misfits > 0:
		// the simulator could pick a misfit
		req.Host = &fits[0]
	}
	return nil, ""
}

// freeDir is dir, or "dir (N)" when a folder of that name is already on the
// datastore, as the simulator names VM folders.
func (l *Lab) freeDir(datastore, dir string) string {
	cand := dir
	for i := 0; i < 1024; i++ {
		f, ok := l.dsFile(&object.DatastorePath{Datastore: datastore, Path: cand})
		if !ok {
			return dir
		}
		if _, err := os.Stat(f); os.IsNotExist(err) {
			return cand
		}
		cand = fmt.Sprintf("%s (%d)", dir, i)
	}
	return dir
}

// nameNewDisks names the disks a CreateVM_Task creates without a file name
// ("" or "[ds]") after the VM, in the VM's folder: NAME.vmdk, NAME_1.vmdk …
func (l *Lab) nameNewDisks(vmx object.DatastorePath, name string, changes []types.BaseVirtualDeviceConfigSpec) {
	used := map[string]bool{}
	n := 0
	for _, change := range changes {
		ds := change.GetVirtualDeviceConfigSpec()
		disk, ok := ds.Device.(*types.VirtualDisk)
		if !ok || ds.Operation != types.VirtualDeviceConfigSpecOperationAdd || ds.FileOperation != types.VirtualDeviceConfigSpecFileOperationCreate {
			continue
		}
		b, ok := disk.Backing.(types.BaseVirtualDeviceFileBackingInfo)
		if !ok {
			continue
		}
		info := b.GetVirtualDeviceFileBackingInfo()
		var p object.DatastorePath
		p.FromString(info.FileName)
		if p.Path != "" {
			continue
		}
		dir := path.Dir(vmx.Path)
		if p.Datastore == "" {
			p.Datastore = vmx.Datastore
		} else if p.Datastore != vmx.Datastore {
			dir = name
			if d, ok := l.dsFile(&object.DatastorePath{Datastore: p.Datastore, Path: dir}); ok {
				_ = os.MkdirAll(d, 0o700)
			}
		}
		for ; ; n++ {
			file := name + ".vmdk"
			if n > 0 {
				file = fmt.Sprintf("%s_%d.vmdk", name, n)
			}
			cand := object.DatastorePath{Datastore: p.Datastore, Path: dir + "/" + file}
			if used[cand.String()] {
				continue
			}
			if f, ok := l.dsFile(&cand); ok {
				if _, err := os.Stat(f); err == nil {
					continue
				}
			}
			used[cand.String()] = true
			info.FileName = cand.String()
			break
		}
	}
}

// giveName gives a VM created under a stand-in name its own: name,
// config.name, summary.config.name, its NVRAM file and its creation events.
func (l *Lab) giveName(ctx *simulator.Context, ref types.ManagedObjectReference, standIn, name string, vmx object.DatastorePath) {
	vm, ok := ctx.Map.Get(ref).(*simulator.VirtualMachine)
	if !ok {
		return
	}
	dir := path.Dir(vmx.Path)
	oldNvram, newNvram := path.Join(dir, standIn+".nvram"), path.Join(dir, name+".nvram")
	if from, ok := l.dsFile(&object.DatastorePath{Datastore: vmx.Datastore, Path: oldNvram}); ok {
		to := filepath.Join(filepath.Dir(from), name+".nvram")
		if _, err := os.Stat(to); os.IsNotExist(err) {
			_ = os.Rename(from, to)
		}
	}
	ctx.WithLock(vm, func() {
		for i, f := range vm.Layout.ConfigFile {
			if f == oldNvram {
				vm.Layout.ConfigFile[i] = newNvram
			}
		}
		vm.RefreshStorageInfo(ctx, &types.RefreshStorageInfo{This: vm.Self})
		ctx.Update(vm, []types.PropertyChange{
			{Name: "name", Val: name},
			{Name: "config.name", Val: name},
			{Name: "summary.config.name", Val: name},
			{Name: "layout", Val: vm.Layout},
			{Name: "layoutEx", Val: vm.LayoutEx},
		})
	})
	em := ctx.Map.EventManager()
	ctx.WithLock(em, func() {
		body := em.QueryEvents(ctx, &types.QueryEvents{This: em.Self, Filter: types.EventFilterSpec{
			Entity:   &types.EventFilterSpecByEntity{Entity: ref, Recursion: types.EventFilterSpecRecursionOptionSelf},
			MaxCount: 1000,
		}})
		res, ok := body.(*methods.QueryEventsBody)
		if !ok || res.Res == nil {
			return
		}
		for _, ev := range res.Res.Returnval {
			e := ev.GetEvent()
			if e.Vm != nil && e.Vm.Vm == ref && e.Vm.Name == standIn {
				e.Vm.Name = name
			}
			e.FullFormattedMessage = strings.ReplaceAll(e.FullFormattedMessage, standIn, name)
		}
	})
}

// CreateFolder creates a folder with its name escaped as vCenter does.
func (h *folderHandler) CreateFolder(ctx *simulator.Context, req *types.CreateFolder) soap.HasFault {
	name := vcName(req.Name)
	if !strings.Contains(name, "%") {
		req.Name = name
		return h.Folder.CreateFolder(ctx, req)
	}
	if obj := ctx.Map.FindByName(name, h.ChildEntity); obj != nil {
		return &methods.CreateFolderBody{Fault_: simulator.Fault("", &types.DuplicateName{Name: name, Object: obj.Reference()})}
	}
	req.Name = standInName()
	body := h.Folder.CreateFolder(ctx, req)
	if b, ok := body.(*methods.CreateFolderBody); ok && b.Res != nil {
		if f, ok := ctx.Map.Get(b.Res.Returnval).(*simulator.Folder); ok {
			ctx.WithLock(f, func() {
				ctx.Update(f, []types.PropertyChange{{Name: "name", Val: name}})
			})
		}
	}
	return body
}

// ---- standard port groups ---------------------------------------------------

// networkSystemHandler: a host's port group keeps its name as given; the
// datacenter Network vCenter shows for it has that name escaped.
type networkSystemHandler struct {
	*simulator.HostNetworkSystem
}

func (h *networkSystemHandler) AddPortGroup(ctx *simulator.Context, req *types.AddPortGroup) soap.HasFault {
	typed := req.Portgrp.Name
	name := escapeName(typed)
	dc := datacenterOf(ctx, h.Host)
	if name == typed || dc == nil {
		return h.HostNetworkSystem.AddPortGroup(ctx, req)
	}
	folder, ok := ctx.Map.Get(dc.NetworkFolder).(*simulator.Folder)
	if !ok {
		return h.HostNetworkSystem.AddPortGroup(ctx, req)
	}
	if obj := ctx.Map.FindByName(name, folder.ChildEntity); obj != nil {
		return &methods.AddPortGroupBody{Fault_: simulator.Fault("", &types.DuplicateName{Name: name, Object: obj.Reference()})}
	}
	body := h.HostNetworkSystem.AddPortGroup(ctx, req)
	if body.Fault() != nil {
		return body
	}
	if n, ok := ctx.Map.FindByName(typed, folder.ChildEntity).(*mo.Network); ok {
		ctx.WithLock(n, func() {
			// mo.Network has a name of its own besides ManagedEntity's: both
			n.ManagedEntity.Name = name
			summary := &types.NetworkSummary{Network: &n.Self, Name: name, Accessible: true}
			ctx.Update(n, []types.PropertyChange{{Name: "name", Val: name}, {Name: "summary", Val: summary}})
		})
	}
	return body
}

// ---- renaming VMs -------------------------------------------------------------

// vmRenameHandler: renaming a VM renames its config.name and
// summary.config.name too, as on vCenter (the simulator changes only name).
// The new name is escaped by escapeRequestNames.
type vmRenameHandler struct {
	*simulator.VirtualMachine
}

func (h *vmRenameHandler) RenameTask(ctx *simulator.Context, req *types.Rename_Task) soap.HasFault {
	vm := h.VirtualMachine
	task := simulator.CreateTask(vm, "rename", func(*simulator.Task) (types.AnyType, types.BaseMethodFault) {
		if vm.Parent != nil {
			if parent, ok := ctx.Map.Get(*vm.Parent).(*simulator.Folder); ok {
				if obj := ctx.Map.FindByName(req.NewName, parent.ChildEntity); obj != nil && obj.Reference() != vm.Self {
					return nil, &types.InvalidArgument{InvalidProperty: "name"}
				}
			}
		}
		ctx.Update(vm, []types.PropertyChange{
			{Name: "name", Val: req.NewName},
			{Name: "config.name", Val: req.NewName},
			{Name: "summary.config.name", Val: req.NewName},
		})
		return nil, nil
	})
	return &methods.Rename_TaskBody{Res: &types.Rename_TaskResponse{Returnval: task.Run(ctx)}}
}
