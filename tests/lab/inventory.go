package main

// Inventory: datacenter, clusters, hosts, networks, datastores and VMs built
// from the lab file, through the simulator's own API where it has one, and
// by shaping the simulator's objects where ESXi reports more than it does.

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/units"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// defaultHostOptions are the advanced options of an ESXi host before any
// clustering change, with ESXi's value types (long) and the ranges and
// defaults the host's OptionManager.supportedOption describes them with.
var defaultHostOptions = []struct {
	key      string
	val      int64
	min, max int64
	label    string
}{
	{"Disk.ResetOnFailure", 0, 0, 1, "Issue a bus reset when a SCSI command fails"},
	{"Disk.UseLunReset", 1, 0, 1, "Use LUN reset (instead of device/bus reset) to reset an RDM"},
	{"Disk.UseDeviceReset", 1, 0, 1, "Use device reset (instead of bus reset) to reset a SCSI device"},
	{"Disk.MaxLUN", 1024, 1, 16384, "Maximum LUN id that is scanned on a target"},
	{"Disk.QFullSampleSize", 0, 0, 64, "Number of QFULL/BUSY conditions seen before I/O is throttled (0: off)"},
	{"Disk.QFullThreshold", 8, 1, 16, "Number of good completions before the queue depth is raised again"},
	{"Misc.APDHandlingEnable", 1, 0, 1, "Handle all paths down (APD) conditions"},
	{"Misc.APDTimeout", 140, 20, 99999, "Seconds a device may be in all paths down (APD) before it is declared unreachable"},
	{"Scsi.CRTimeoutDuringBoot", 10000, 0, 60000, "Milliseconds to wait for SCSI reservation conflicts to clear while booting"},
	{"UserVars.SuppressShellWarning", 0, 0, 1, "Do not warn that the ESXi shell or SSH is enabled"},
}

// simulatorOptionDefs describe the advanced options the simulator seeds on
// every host itself.
var simulatorOptionDefs = map[string]types.OptionDef{
	"Config.HostAgent.log.level": {
		ElementDescription: types.ElementDescription{Description: types.Description{Label: "hostd log level", Summary: "Logging level of the host agent"}, Key: "Config.HostAgent.log.level"},
		OptionType:         &types.StringOption{DefaultValue: "info"},
	},
}

// optionDef describes an advanced option the lab knows nothing more of by
// its value: LongOption over the whole range, StringOption, BoolOption.
func optionDef(key string, v any) (types.OptionDef, bool) {
	def := types.OptionDef{ElementDescription: types.ElementDescription{Description: types.Description{Label: key, Summary: key}, Key: key}}
	switch x := v.(type) {
	case int64:
		def.OptionType = &types.LongOption{Min: math.MinInt64, Max: math.MaxInt64, DefaultValue: x}
	case int32:
		def.OptionType = &types.IntOption{Min: math.MinInt32, Max: math.MaxInt32, DefaultValue: x}
	case string:
		def.OptionType = &types.StringOption{DefaultValue: x}
	case bool:
		def.OptionType = &types.BoolOption{Supported: true, DefaultValue: x}
	default:
		return def, false
	}
	return def, true
}

// optionDefs: the definitions optionDef made, one per option and value,
// shared by every host that holds the option with that value (a lab of
// realistic size holds a thousand options on each of hundreds of hosts).
var optionDefs = struct {
	sync.Mutex
	m map[optionValue]types.OptionDef
}{m: map[optionValue]types.OptionDef{}}

type optionValue struct {
	key string
	val any // comparable: int64, int32, string, bool
}

func sharedOptionDef(key string, v any) (types.OptionDef, bool) {
	switch v.(type) {
	case int64, int32, string, bool:
	default:
		return optionDef(key, v)
	}
	k := optionValue{key, v}
	optionDefs.Lock()
	defer optionDefs.Unlock()
	if d, ok := optionDefs.m[k]; ok {
		return d, true
	}
	d, ok := optionDef(key, v)
	if ok {
		optionDefs.m[k] = d
	}
	return d, ok
}

// hostOptionDefs is a host's OptionManager.supportedOption: a definition for
// every option it holds, in the order of its settings.
func hostOptionDefs(settings []types.BaseOptionValue) []types.OptionDef {
	known := map[string]types.OptionDef{}
	for _, o := range defaultHostOptions {
		known[o.key] = types.OptionDef{
			ElementDescription: types.ElementDescription{Description: types.Description{Label: o.label, Summary: o.label}, Key: o.key},
			OptionType:         &types.LongOption{Min: o.min, Max: o.max, DefaultValue: o.val},
		}
	}
	for k, d := range simulatorOptionDefs {
		known[k] = d
	}
	var defs []types.OptionDef
	for _, s := range settings {
		v := s.GetOptionValue()
		if d, ok := known[v.Key]; ok {
			defs = append(defs, d)
		} else if d, ok := sharedOptionDef(v.Key, v.Value); ok {
			defs = append(defs, d)
		}
	}
	return defs
}

// inRange: v is a T between lo and hi.
func inRange[T int32 | int64](v any, lo, hi T, xsd string) string {
	x, ok := v.(T)
	switch {
	case !ok:
		return fmt.Sprintf("expected %s, got %s", xsd, xsdType(v))
	case x < lo || x > hi:
		return fmt.Sprintf("%d is out of range [%d, %d]", x, lo, hi)
	}
	return ""
}

// checkOptionValue: a value an option's definition accepts ("" when it
// does), by type (xsd:long for LongOption ...) and range.
func checkOptionValue(def types.BaseOptionType, v any) string {
	want := ""
	switch d := def.(type) {
	case *types.LongOption:
		return inRange(v, d.Min, d.Max, "xsd:long")
	case *types.IntOption:
		return inRange(v, d.Min, d.Max, "xsd:int")
	case *types.StringOption:
		x, ok := v.(string)
		if !ok {
			want = "xsd:string"
			break
		}
		if d.ValidCharacters != "" {
			for _, r := range x {
				if !strings.ContainsRune(d.ValidCharacters, r) {
					return fmt.Sprintf("%q holds %q, not one of %q", x, r, d.ValidCharacters)
				}
			}
		}
	case *types.BoolOption:
		if _, ok := v.(bool); !ok {
			want = "xsd:boolean"
		}
	case *types.ChoiceOption:
		x, ok := v.(string)
		if !ok {
			want = "xsd:string"
			break
		}
		for _, c := range d.ChoiceInfo {
			if c.GetElementDescription().Key == x {
				return ""
			}
		}
		return fmt.Sprintf("%q is not one of the option's choices", x)
	}
	if want != "" {
		return fmt.Sprintf("expected %s, got %s", want, xsdType(v))
	}
	return ""
}

// build creates the lab file's datacenters, the first one first.
func (l *Lab) build(ctx context.Context) error {
	hostIndex := 0 // over the whole lab: each host's adapters have WWPNs of their own
	for _, inv := range l.file.inventories() {
		if err := l.buildDatacenter(ctx, inv, &hostIndex); err != nil {
			if inv != &l.file.Inventory {
				return fmt.Errorf("datacenter %s: %w", inv.Datacenter, err)
			}
			return err
		}
	}
	return nil
}

// buildDatacenter creates one datacenter and its inventory.
func (l *Lab) buildDatacenter(ctx context.Context, lf *Inventory, hostIndex *int) error {
	c := l.client

	root := object.NewRootFolder(c)
	dc, err := root.CreateDatacenter(ctx, lf.Datacenter)
	if err != nil {
		return err
	}
	folders, err := dc.Folders(ctx)
	if err != nil {
		return err
	}
	dcObj := l.reg.Get(dc.Reference()).(*simulator.Datacenter)

	// clusters and hosts
	byName := map[string]*labHost{}
	var order []*labHost
	for ci := range lf.Clusters {
		cs := &lf.Clusters[ci]
		cl, err := folders.HostFolder.CreateCluster(ctx, cs.Name, types.ClusterConfigSpecEx{})
		if err != nil {
			return err
		}
		spec := &types.ClusterConfigSpecEx{
			DrsConfig: &types.ClusterDrsConfigInfo{
				Enabled:           types.NewBool(boolOr(cs.DRS, true)),
				DefaultVmBehavior: types.DrsBehaviorFullyAutomated,
			},
			DasConfig: &types.ClusterDasConfigInfo{
				Enabled:                 types.NewBool(boolOr(cs.HA, true)),
				AdmissionControlEnabled: types.NewBool(boolOr(cs.HA, true)),
			},
		}
		task, err := cl.Reconfigure(ctx, spec, true)
		if err != nil {
			return err
		}
		if _, err := l.waitTask(task.Reference()); err != nil {
			return err
		}
		for hi := range cs.Hosts {
			hs := &cs.Hosts[hi]
			task, err := cl.AddHost(ctx, types.HostConnectSpec{HostName: hs.Name, Force: true}, true, nil, nil)
			if err != nil {
				return err
			}
			result, err := l.waitTask(task.Reference())
			if err != nil {
				return fmt.Errorf("add host %s: %w", hs.Name, err)
			}
			ref := result.(types.ManagedObjectReference)
			hobj := l.reg.Get(ref).(*simulator.HostSystem)
			h := &labHost{spec: hs, cluster: cs.Name, ref: ref, obj: hobj, luns: map[string]*types.HostScsiDisk{}}
			h.storage = l.reg.Get(*hobj.ConfigManager.StorageSystem).(*simulator.HostStorageSystem)
			if err := l.configureHost(h); err != nil {
				return err
			}
			byName[hs.Name] = h
			order = append(order, h)
			l.hosts[ref.Value] = h
			l.storageSystems[h.storage.Self.Value] = h
			l.datastoreSystems[hobj.ConfigManager.DatastoreSystem.Value] = h
		}
	}

	for _, h := range order {
		setProduct(h)
	}

	// SAN LUNs per host
	views := map[string][]lunView{}
	for i := range lf.LUNs {
		ls := &lf.LUNs[i]
		number := int32(i + 1)
		if ls.LunNumber != nil {
			number = *ls.LunNumber
		}
		for _, hn := range ls.Hosts {
			views[hn] = append(views[hn], lunView{spec: ls, number: number, reserved: perenniallyReserved(ls, hn)})
		}
	}
	for _, h := range order {
		*hostIndex++
		l.buildHostStorage(h, *hostIndex, views[h.spec.Name])
	}

	// port groups
	for _, pg := range lf.PortGroups {
		var hosts []*labHost
		for _, h := range order {
			if len(pg.Clusters) == 0 || contains(pg.Clusters, h.cluster) {
				hosts = append(hosts, h)
			}
		}
		if err := l.addPortGroup(ctx, dcObj, pg, hosts); err != nil {
			return err
		}
	}

	// datastores
	dsRoot := filepath.Join(l.runDir, "datastores")
	if err := os.MkdirAll(dsRoot, 0o700); err != nil {
		return err
	}
	volumes := map[string]*dsVolume{}
	if *lf.LocalDatastores {
		for _, h := range order {
			name := shortName(h.spec.Name) + "-local"
			vol, err := l.createVMFS(ctx, name, filepath.Join(dsRoot, name), localDiskNAA(h.spec.Name), 300*gib-2*gib, true, []*labHost{h})
			if err != nil {
				return err
			}
			volumes[name] = vol
		}
	}
	for _, d := range lf.Datastores {
		var hosts []*labHost
		for _, hn := range d.Hosts {
			hosts = append(hosts, byName[hn])
		}
		dir := filepath.Join(dsRoot, d.Name)
		var vol *dsVolume
		var err error
		switch d.Type {
		case "vmfs":
			var lun *LUNSpec
			for i := range lf.LUNs {
				if lf.LUNs[i].NAA == d.LUN {
					lun = &lf.LUNs[i]
				}
			}
			for _, h := range hosts {
				if !contains(lun.Hosts, h.spec.Name) {
					return fmt.Errorf("datastore %s: host %s does not see LUN %s", d.Name, h.spec.Name, lun.NAA)
				}
			}
			vol, err = l.createVMFS(ctx, d.Name, dir, lun.NAA, int64(lun.CapacityGiB*float64(gib))-gib, false, hosts)
			if err == nil {
				l.shapeVMFS(vol, lun, d.VMFSVersion)
			}
		case "nfs":
			vol, err = l.createNFS(ctx, d, dir, hosts)
		}
		if err != nil {
			return err
		}
		volumes[d.Name] = vol
	}
	l.mountVolumes(order, volumes)

	// virtual machines
	for i := range lf.VMs {
		lf.VMs[i].datacenter = lf.Datacenter
		if err := l.createVM(ctx, folders, &lf.VMs[i], byName[lf.VMs[i].Host]); err != nil {
			return fmt.Errorf("vm %s: %w", lf.VMs[i].Name, err)
		}
	}
	return nil
}

// waitTask waits for a simulator task of the build, polling its state
// closely (a property collector round trip per task makes large fleets slow).
func (l *Lab) waitTask(ref types.ManagedObjectReference) (types.AnyType, error) {
	t, ok := l.reg.Get(ref).(*simulator.Task)
	if !ok {
		return nil, fmt.Errorf("task %s not found", ref.Value)
	}
	ctx := l.labContext()
	for {
		var info types.TaskInfo
		ctx.WithLock(t, func() { info = t.Info })
		switch info.State {
		case types.TaskInfoStateSuccess:
			return info.Result, nil
		case types.TaskInfoStateError:
			msg := info.Error.LocalizedMessage
			if f, ok := info.Error.Fault.(types.BaseMethodFault); ok {
				msg = fmt.Sprintf("%s %T", msg, f)
			}
			return nil, fmt.Errorf("%s: %s", info.Name, msg)
		}
		time.Sleep(200 * time.Microsecond)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func perenniallyReserved(ls *LUNSpec, host string) bool {
	switch v := ls.PerenniallyReserved.(type) {
	case bool:
		return v
	case []any:
		for _, x := range v {
			if s, _ := x.(string); s == host || s == shortName(host) {
				return true
			}
		}
	}
	return false
}

func majorMinor(v string) string {
	parts := strings.SplitN(v, ".", 3)
	if len(parts) >= 2 {
		return parts[0] + "." + parts[1]
	}
	return v
}

// configureHost sets the ESXi version and advanced options of a host.
func (l *Lab) configureHost(h *labHost) error {
	hobj := h.obj
	om := l.reg.Get(*hobj.ConfigManager.AdvancedOption).(*simulator.OptionManager)
	values := map[string]any{}
	var keys []string
	ranges := map[string][2]int64{}
	for _, o := range defaultHostOptions {
		values[o.key] = o.val
		keys = append(keys, o.key)
		ranges[o.key] = [2]int64{o.min, o.max}
	}
	var extra []string
	for k, v := range h.spec.Options {
		if _, ok := values[k]; !ok {
			extra = append(extra, k)
		}
		switch x := v.(type) {
		case int:
			values[k] = int64(x)
		case int64, string, bool:
			values[k] = x
		default:
			return fmt.Errorf("host %s: option %s: unsupported value %v", h.spec.Name, k, v)
		}
		if r, ok := ranges[k]; ok {
			x, isLong := values[k].(int64)
			if !isLong || x < r[0] || x > r[1] {
				return fmt.Errorf("host %s: option %s: %v is not an integer in [%d, %d]", h.spec.Name, k, v, r[0], r[1])
			}
		}
	}
	sort.Strings(extra)
	keys = append(keys, extra...)
	var changes []types.BaseOptionValue
	for _, k := range keys {
		changes = append(changes, &types.OptionValue{Key: k, Value: values[k]})
	}
	if f := om.UpdateOptions(&types.UpdateOptions{ChangedValue: changes}).Fault(); f != nil {
		return fmt.Errorf("host %s: options: %s", h.spec.Name, f.String)
	}
	// what a client validates UpdateOptions against, as ESXi describes its options
	om.SupportedOption = hostOptionDefs(om.Setting)
	defs := append([]types.OptionDef(nil), om.SupportedOption...)
	ours := map[string]bool{}
	for _, d := range defs {
		ours[d.Key] = true
	}
	for _, d := range hobj.Config.OptionDef {
		if !ours[d.Key] {
			defs = append(defs, d)
		}
	}
	hobj.Config.OptionDef = defs
	l.hostOptions[om.Self.Value] = h
	return nil
}

// setProduct sets the ESXi version a host reports. It runs once every host
// is added: the simulator's EnvironmentBrowser re-reads the versions of a
// cluster's hosts on AddHost and only parses the versions it knows (not 7.0.3).
func setProduct(h *labHost) {
	hobj := h.obj
	p := &hobj.Config.Product
	p.Version = h.spec.Version
	p.Build = h.spec.Build
	p.FullName = fmt.Sprintf("VMware ESXi %s build-%s", h.spec.Version, h.spec.Build)
	p.ApiVersion = apiVersionFor(h.spec.Version)
	p.LicenseProductVersion = majorMinor(h.spec.Version)
	p.PatchLevel = h.spec.PatchLevel
	hobj.Summary.Config.Product = p
}

// addPortGroup creates a standard port group on vSwitch0 of every given host,
// all backed by one datacenter Network, as vCenter shows same-named
// standard port groups. The hosts name the port group as typed (pg.Typed),
// the Network has that name escaped (pg.Name).
func (l *Lab) addPortGroup(ctx context.Context, dcObj *simulator.Datacenter, pg PortGroupSpec, hosts []*labHost) error {
	if len(hosts) == 0 {
		return nil
	}
	hostName := pg.Typed
	if hostName == "" {
		hostName = pg.Name
	}
	pgSpec := types.HostPortGroupSpec{Name: hostName, VlanId: pg.VLAN, VswitchName: pg.VSwitch, Policy: types.HostNetworkPolicy{}}
	var netRef types.ManagedObjectReference
	for i, h := range hosts {
		nsRef := *h.obj.ConfigManager.NetworkSystem
		ns := l.reg.Get(nsRef).(*simulator.HostNetworkSystem)
		// one HostNetworkInfo per host, shared by the host config and its network system
		ns.NetworkInfo = h.obj.Config.Network
		if i == 0 {
			if e := l.reg.FindByName(pg.Name, dcObj.Network); e == nil {
				if err := object.NewHostNetworkSystem(l.client, nsRef).AddPortGroup(ctx, pgSpec); err != nil {
					return fmt.Errorf("portgroup %s: %w", pg.Name, err)
				}
			}
			e := l.reg.FindByName(pg.Name, dcObj.Network)
			if e == nil {
				return fmt.Errorf("portgroup %s: network not created", pg.Name)
			}
			netRef = e.Reference()
		}
		netw := h.obj.Config.Network
		key := "key-vim.host.PortGroup-" + hostName
		var vsw *types.HostVirtualSwitch
		for j := range netw.Vswitch {
			if netw.Vswitch[j].Name == pg.VSwitch {
				vsw = &netw.Vswitch[j]
			}
		}
		if vsw == nil {
			return fmt.Errorf("portgroup %s: host %s has no %s", pg.Name, h.spec.Name, pg.VSwitch)
		}
		var pgs []string
		for _, x := range vsw.Portgroup {
			if x != hostName && x != key {
				pgs = append(pgs, x)
			}
		}
		vsw.Portgroup = append(pgs, key)
		var groups []types.HostPortGroup
		for _, x := range netw.Portgroup {
			if x.Key != key {
				groups = append(groups, x)
			}
		}
		netw.Portgroup = append(groups, types.HostPortGroup{
			Key:     key,
			Vswitch: vsw.Key,
			Spec:    pgSpec,
			ComputedPolicy: types.HostNetworkPolicy{
				Security:   &types.HostNetworkSecurityPolicy{AllowPromiscuous: types.NewBool(false), MacChanges: types.NewBool(false), ForgedTransmits: types.NewBool(false)},
				NicTeaming: &types.HostNicTeamingPolicy{Policy: "loadbalance_srcid", NotifySwitches: types.NewBool(true), RollingOrder: types.NewBool(false)},
			},
		})

		if !containsRef(h.obj.Network, netRef) {
			h.obj.Network = append(h.obj.Network, netRef)
		}
		if cr := l.reg.Get(*h.obj.Parent); cr != nil {
			if cl, ok := cr.(*simulator.ClusterComputeResource); ok && !containsRef(cl.Network, netRef) {
				cl.Network = append(cl.Network, netRef)
			}
		}
		if n, ok := l.reg.Get(netRef).(*mo.Network); ok {
			if !containsRef(n.Host, h.ref) {
				n.Host = append(n.Host, h.ref)
			}
			n.Summary = &types.NetworkSummary{Network: &netRef, Name: pg.Name, Accessible: true}
		}
	}
	return nil
}

func containsRef(list []types.ManagedObjectReference, r types.ManagedObjectReference) bool {
	for _, x := range list {
		if x == r {
			return true
		}
	}
	return false
}

// dsVolume is a datastore's file system as hosts mount it.
type dsVolume struct {
	ref   types.ManagedObjectReference
	path  string // /vmfs/volumes/<uuid>
	vol   types.BaseHostFileSystemVolume
	hosts []*labHost
}

func volumeUUID(name string) string {
	h := hexHash(name, 28)
	return fmt.Sprintf("%s-%s-%s-%s", h[0:8], h[8:16], h[16:20], h[20:28])
}

func (l *Lab) createVMFS(ctx context.Context, name, dir, naa string, capacity int64, local bool, hosts []*labHost) (*dsVolume, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	var ref types.ManagedObjectReference
	for _, h := range hosts {
		dss := object.NewHostDatastoreSystem(l.client, *h.obj.ConfigManager.DatastoreSystem)
		ds, err := dss.CreateLocalDatastore(ctx, name, dir)
		if err != nil {
			return nil, fmt.Errorf("datastore %s on %s: %w", name, h.spec.Name, err)
		}
		// the simulator answers an empty reference when it mounts an existing datastore
		if ref.Value == "" {
			ref = ds.Reference()
		}
	}
	uuid := volumeUUID(name)
	vmfs := &types.HostVmfsVolume{
		HostFileSystemVolume: types.HostFileSystemVolume{Type: "VMFS", Name: name, Capacity: capacity},
		BlockSizeMb:          1,
		BlockSize:            1024,
		UnmapGranularity:     1024,
		UnmapPriority:        "low",
		MaxBlocks:            64 * 1024 * 1024,
		MajorVersion:         6,
		Version:              "6.82",
		Uuid:                 uuid,
		Extent:               []types.HostScsiDiskPartition{{DiskName: naa, Partition: 1}},
		VmfsUpgradable:       false,
		Ssd:                  types.NewBool(false),
		Local:                types.NewBool(local),
		ScsiDiskType:         "native512",
	}
	ds := l.reg.Get(ref).(*simulator.Datastore)
	now := time.Now()
	free := capacity - capacity/20
	ds.Info = &types.VmfsDatastoreInfo{
		DatastoreInfo: types.DatastoreInfo{
			Name: name, Url: dir, FreeSpace: free,
			MaxFileSize: 62 * int64(units.TB), MaxVirtualDiskCapacity: 62 * int64(units.TB),
			MaxMemoryFileSize: 62 * int64(units.TB), Timestamp: &now, ContainerId: uuid,
		},
		MaxPhysicalRDMFileSize: 64 * int64(units.TB),
		MaxVirtualRDMFileSize:  62 * int64(units.TB),
		Vmfs:                   vmfs,
	}
	ds.Summary.Type = "VMFS"
	ds.Summary.Capacity = capacity
	ds.Summary.FreeSpace = free
	ds.Summary.MultipleHostAccess = types.NewBool(!local)
	ds.Capability.RawDiskMappingsSupported = true
	ds.Capability.PerFileThinProvisioningSupported = true
	// vSphere 7.0+: off until HostDatastoreSystem.EnableClusteredVmdkSupport
	ds.Capability.ClusteredVmdkSupported = types.NewBool(false)
	vol := &dsVolume{ref: ref, path: "/vmfs/volumes/" + uuid, vol: vmfs, hosts: hosts}
	for i := range ds.Host {
		ds.Host[i].MountInfo.Path = vol.path
	}
	l.mu.Lock()
	l.dsKind[name] = "vmfs"
	l.dsDirs[name] = dir
	l.extentLUNs[naa] = name
	l.mu.Unlock()
	return vol, nil
}

func (l *Lab) createNFS(ctx context.Context, d DatastoreSpec, dir string, hosts []*labHost) (*dsVolume, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	var ref types.ManagedObjectReference
	for _, h := range hosts {
		dss := object.NewHostDatastoreSystem(l.client, *h.obj.ConfigManager.DatastoreSystem)
		ds, err := dss.CreateNasDatastore(ctx, types.HostNasVolumeSpec{
			RemoteHost: d.RemoteHost, RemotePath: d.RemotePath, LocalPath: dir,
			AccessMode: string(types.HostMountModeReadWrite), Type: string(types.HostFileSystemVolumeFileSystemTypeNFS),
		})
		if err != nil {
			return nil, fmt.Errorf("datastore %s on %s: %w", d.Name, h.spec.Name, err)
		}
		if ref.Value == "" {
			ref = ds.Reference()
		}
	}
	ds := l.reg.Get(ref).(*simulator.Datastore)
	capacity := 2 * int64(units.TB)
	free := capacity * 3 / 4
	info := ds.Info.(*types.NasDatastoreInfo)
	info.Name = d.Name
	info.FreeSpace = free
	info.MaxFileSize = 62 * int64(units.TB)
	info.MaxVirtualDiskCapacity = 62 * int64(units.TB)
	info.Nas.Name = d.Name
	info.Nas.Capacity = capacity
	ds.Summary.Capacity = capacity
	ds.Summary.FreeSpace = free
	ds.Summary.MultipleHostAccess = types.NewBool(true)
	ds.Capability.RawDiskMappingsSupported = false
	ds.Capability.ClusteredVmdkSupported = types.NewBool(false)
	id := hexHash(d.Name, 16)
	vol := &dsVolume{ref: ref, path: "/vmfs/volumes/" + id[:8] + "-" + id[8:16], vol: info.Nas, hosts: hosts}
	for i := range ds.Host {
		ds.Host[i].MountInfo.Path = vol.path
	}
	l.mu.Lock()
	l.dsKind[d.Name] = "nfs"
	l.dsDirs[d.Name] = dir
	l.mu.Unlock()
	return vol, nil
}

// mountVolumes fills each host's config.fileSystemVolume.
func (l *Lab) mountVolumes(hosts []*labHost, volumes map[string]*dsVolume) {
	var names []string
	for n := range volumes {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, h := range hosts {
		info := &types.HostFileSystemVolumeInfo{VolumeTypeList: []string{"VMFS", "NFS", "NFS41", "vsan", "VVOL", "VFFS", "OTHER", "PMEM"}}
		for _, n := range names {
			v := volumes[n]
			for _, vh := range v.hosts {
				if vh == h {
					info.MountInfo = append(info.MountInfo, types.HostFileSystemMountInfo{
						MountInfo: types.HostMountInfo{
							Path: v.path, AccessMode: string(types.HostMountModeReadWrite),
							Mounted: types.NewBool(true), Accessible: types.NewBool(true),
						},
						Volume:          v.vol,
						VStorageSupport: "vStorageUnsupported",
					})
				}
			}
		}
		h.obj.Config.FileSystemVolume = info
		h.storage.FileSystemVolumeInfo = *info
	}
}

// createVM builds a freshly installed Windows VM: LSI Logic SAS controller
// (bus 0, no sharing), a thin boot disk on SCSI 0:0, one NIC.
func (l *Lab) createVM(ctx context.Context, folders *object.DatacenterFolders, v *VMSpec, h *labHost) error {
	cl, ok := l.reg.Get(*h.obj.Parent).(*simulator.ClusterComputeResource)
	if !ok {
		return fmt.Errorf("host %s is not in a cluster", h.spec.Name)
	}
	var dsRef, netRef *types.ManagedObjectReference
	for i, r := range h.obj.Datastore {
		if ds, ok := l.reg.Get(r).(*simulator.Datastore); ok && ds.Name == v.Datastore {
			dsRef = &h.obj.Datastore[i]
		}
	}
	if dsRef == nil {
		return fmt.Errorf("datastore %s is not mounted on %s", v.Datastore, h.spec.Name)
	}
	for i, r := range h.obj.Network {
		if n, ok := l.reg.Get(r).(*mo.Network); ok && n.Name == v.Network {
			netRef = &h.obj.Network[i]
		}
	}
	if netRef == nil {
		return fmt.Errorf("network %s is not on %s", v.Network, h.spec.Name)
	}

	var devices object.VirtualDeviceList
	scsi, err := devices.CreateSCSIController(v.SCSIController)
	if err != nil {
		return err
	}
	sc := scsi.(types.BaseVirtualSCSIController).GetVirtualSCSIController()
	sc.SharedBus = types.VirtualSCSISharingNoSharing
	sc.HotAddRemove = types.NewBool(true)
	devices = append(devices, scsi)

	disk := devices.CreateDisk(scsi.(types.BaseVirtualController), *dsRef, fmt.Sprintf("[%s] %s/%s.vmdk", v.Datastore, v.Name, v.Name))
	disk.CapacityInKB = int64(v.DiskGiB*float64(gib)) / 1024
	if b, ok := disk.Backing.(*types.VirtualDiskFlatVer2BackingInfo); ok {
		b.ThinProvisioned = types.NewBool(true)
		b.EagerlyScrub = types.NewBool(false)
		b.DiskMode = string(types.VirtualDiskModePersistent)
	}
	devices = append(devices, disk)

	nic, err := devices.CreateEthernetCard(v.NIC, &types.VirtualEthernetCardNetworkBackingInfo{
		VirtualDeviceDeviceBackingInfo: types.VirtualDeviceDeviceBackingInfo{DeviceName: v.Network},
		Network:                        netRef,
	})
	if err != nil {
		return err
	}
	card := nic.(types.BaseVirtualEthernetCard).GetVirtualEthernetCard()
	card.AddressType = string(types.VirtualEthernetCardMacTypeGenerated)
	card.Connectable = &types.VirtualDeviceConnectInfo{StartConnected: true, AllowGuestControl: true, Connected: true}
	devices = append(devices, nic)

	changes, err := devices.ConfigSpec(types.VirtualDeviceConfigSpecOperationAdd)
	if err != nil {
		return err
	}
	spec := types.VirtualMachineConfigSpec{
		Name:              v.Name,
		GuestId:           v.GuestID,
		Version:           v.Version,
		NumCPUs:           v.CPUs,
		NumCoresPerSocket: types.NewInt32(1),
		MemoryMB:          v.MemoryMB,
		Files:             &types.VirtualMachineFileInfo{VmPathName: fmt.Sprintf("[%s]", v.Datastore)},
		DeviceChange:      changes,
	}
	pool := object.NewResourcePool(l.client, *cl.ResourcePool)
	host := object.NewHostSystem(l.client, h.ref)
	task, err := folders.VmFolder.CreateVM(ctx, spec, pool, host)
	if err != nil {
		return err
	}
	result, err := l.waitTask(task.Reference())
	if err != nil {
		return err
	}
	ref := result.(types.ManagedObjectReference)
	tools := boolOr(v.ToolsRunning, true)
	l.mu.Lock()
	l.tools[ref.Value] = tools
	l.vmSpecs[ref.Value] = v
	l.mu.Unlock()

	vmObj := l.reg.Get(ref).(*simulator.VirtualMachine)
	lctx := l.labContext()
	lctx.WithLock(vmObj, func() {
		vmObj.Guest.GuestId = v.GuestID
		vmObj.Guest.GuestFullName = guestFullName(v.GuestID)
		vmObj.Guest.GuestFamily = string(types.VirtualMachineGuestOsFamilyWindowsGuest)
		vmObj.Guest.HostName = guestHostName(v.Typed)
		vmObj.Guest.GuestState = "notRunning"
		lctx.Update(vmObj, toolsChanges(false))
	})

	if v.PowerState == "poweredOn" {
		t, err := object.NewVirtualMachine(l.client, ref).PowerOn(ctx)
		if err != nil {
			return err
		}
		if _, err := l.waitTask(t.Reference()); err != nil {
			return err
		}
		lctx.WithLock(vmObj, func() {
			vmObj.Guest.GuestState = "running"
		})
	}
	return nil
}

func guestFullName(id string) string {
	switch id {
	case "windows8Server64Guest":
		return "Microsoft Windows Server 2012 (64-bit)"
	case "windows9Server64Guest":
		return "Microsoft Windows Server 2016 or later (64-bit)"
	case "windows2019srv_64Guest":
		return "Microsoft Windows Server 2019 (64-bit)"
	case "windows2019srvNext_64Guest":
		return "Microsoft Windows Server 2022 (64-bit)"
	}
	return id
}
