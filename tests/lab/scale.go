package main

import (
	"fmt"
	"sort"
	"strings"
)

// A scale profile grows the lab towards the size of a real vCenter, around
// whatever the lab file (and --fleet) already hold:
//
//	options   every host gets `options` advanced options under ESXi's
//	          prefixes (Disk., Net., Mem., Misc., VMFS3., Scsi., NFS., Power.,
//	          UserVars. ...), longs, strings and booleans, each described in
//	          supportedOption like the seeded ones
//	clusters  Scale-NN, of the sizes in `hosts` (cycled), ESXi 8.0.2
//	LUNs      `luns` per Scale cluster, seen by its hosts only, so not by the
//	          clusters in play; the lab file's clusters get `ownLuns` more
//	datastores `datastores` in all, VMFS on the Scale clusters' first LUNs
//	VMs       `vms` in all, spread over the Scale hosts, each with its
//	          boot disk and one NIC on port group "Scale-VMs"
//	DC2       a second datacenter (unless the lab file says
//	          scaleSecondDatacenter: false): a namesake of each of the lab
//	          file's vSphere clusters with the same VMs, and Scale-NN
//	          clusters again (sizes `dc2.hosts`), `dc2.datastores` and
//	          `dc2.vms` VMs APPNNNN: names DC1 has too
type scaleProfile struct {
	options    int
	clusters   int
	hosts      []int
	luns       int
	ownLuns    int
	datastores int
	vms        int
	dc2        scaleDC
}

// scaleDC: the generated clusters, datastores and VMs of one datacenter.
type scaleDC struct {
	hosts      []int // one cluster per entry, of that many hosts
	datastores int
	vms        int
}

var scaleProfiles = map[string]scaleProfile{
	"small": {options: 1000, clusters: 4, hosts: []int{8, 2, 3, 4}, luns: 32, ownLuns: 2, datastores: 12, vms: 100,
		dc2: scaleDC{hosts: []int{4, 2}, datastores: 4, vms: 30}},
	"realistic": {options: 1100, clusters: 20, hosts: []int{32, 4, 8, 16, 2, 6}, luns: 256, ownLuns: 4, datastores: 100, vms: 2000,
		dc2: scaleDC{hosts: []int{8, 4, 4, 2}, datastores: 16, vms: 200}},
}

// secondDatacenter is the name of the datacenter a scale profile adds.
const secondDatacenter = "DC2"

// optionFamilies: the prefixes of ESXi's advanced options and the kind of
// value each family mostly holds.
var optionFamilies = []struct {
	prefix string
	names  []string
}{
	{"Disk.", []string{"MaxLUNQueue", "SchedNumReqOutstanding", "PathEvalTime", "DelayOnBusReset", "MaxResetLatency", "SectorMaxDiff", "DumpMaxRetries", "AutoremoveOnPDL", "SupportSparseLUN", "ApdTokenRetry"}},
	{"Net.", []string{"TcpipHeapSize", "TcpipHeapMax", "MaxNetifTxQueueLen", "NetPktSlabFreePercentThreshold", "TeamPolicyUpDelay", "ReversePathFwdCheck", "BlockGuestBPDU", "FollowHardwareMac", "GuestIPHack", "UseHwTSO"}},
	{"Mem.", []string{"ShareScanTime", "ShareScanGHz", "IdleTax", "SamplePeriod", "BalancePeriod", "AllocGuestLargePage", "MemZipEnable", "MemZipMaxPct", "HostLocalSwapDirEnabled", "MinFreePct"}},
	{"Misc.", []string{"HeartbeatTimeout", "BlueScreenTimeout", "LogToFile", "LogToSerial", "DebugLogToSerial", "HostName", "MCEMonitorInterval", "ConsolePort", "LogPort", "ShaperStatsEnabled"}},
	{"VMFS3.", []string{"HardwareAcceleratedLocking", "MaxHeapSizeMB", "UseATSForHBOnVMFS5", "EnableBlockDelete", "OpenWithoutJournal", "FailVolumeOpenIfAPD", "LFBCSlabSizeMaxMB", "SFBCSlabSizeMaxMB", "MaxAddressableSpaceTB", "MinAddressableSpaceTB"}},
	{"Scsi.", []string{"LogMultiPath", "PassthroughLocking", "ScanOnDriverLoad", "SCSITimeout_ScanTime", "SCSITimeout_ReabortTime", "TimeoutTMThreadLatency", "TimeoutTMThreadRetry", "LogCmdErrors", "ExtendAPDCondition", "MaxReserveTime"}},
	{"NFS.", []string{"MaxVolumes", "HeartbeatFrequency", "HeartbeatTimeout", "HeartbeatMaxFailures", "SendBufferSize", "ReceiveBufferSize", "MaxQueueDepth", "DiskFileLockUpdateFreq", "LockRenewMaxFailureNumber", "ApdStartCount"}},
	{"Power.", []string{"CpuPolicy", "UseCStates", "UsePStates", "MaxCpuLoad", "TimerHz", "ChargeMemoryPct", "PerfBias", "PerfBiasEnable", "MinFreqPct", "UseStallCtr"}},
	{"UserVars.", []string{"HostClientCEIPOptIn", "ESXiShellTimeOut", "ESXiShellInteractiveTimeOut", "DcuiTimeOut", "SuppressHyperthreadWarning", "SuppressCoredumpWarning", "HostClientSessionTimeout", "ProductLockerLocation", "ActiveDirectoryVerifyCAMCertificate", "SuppressSanityWarning"}},
	{"Cpu.", []string{"HTWholeCoreThreshold", "CoschedCostartThreshold", "MoveCurrentRunnerPctThreshold", "PcpuMigrateIdlePcpus", "Quantum", "UseMwait", "CreditAgePeriod", "BoundLagQuanta", "VMAdmitCheckPerVcpuMin", "AllowWideVsmp"}},
	{"Numa.", []string{"RebalanceEnable", "RebalancePeriod", "MigImbalanceThreshold", "PageMigEnable", "LTermFairnessInterval", "SwapLoadEnable", "SwapInterval", "LocalityWeightMem", "CoreCapRatioPct", "FollowCoresPerSocket"}},
	{"Migrate.", []string{"Enabled", "PreCopySwitchoverTimeGoal", "NetTimeout", "BindToVmknic", "VMotionStreamHelpers", "TSMaster", "PageInTimeoutResetOnProgress", "MonActionWaitSec", "SdpsEnabled", "DetailedStats"}},
	{"SunRPC.", []string{"MaxConnPerIP", "SetNoDelayedAck", "WorldAffinity"}},
	{"Syslog.global.", []string{"logHost", "logDir", "defaultRotate", "defaultSize", "logDirUnique"}},
	{"Config.HostAgent.", []string{"log.level", "plugins.solo.enableMob", "vmacore.soap.sessionTimeout"}},
}

// scaleOptions: n advanced options (keys not among the seeded ones), with
// values of the type such an option has: longs mostly, some strings and
// booleans. The same on every host.
func scaleOptions(n int) map[string]any {
	out := make(map[string]any, n)
	seeded := map[string]bool{}
	for _, o := range defaultHostOptions {
		seeded[o.key] = true
	}
	for i := 0; len(out) < n; i++ {
		fam := optionFamilies[i%len(optionFamilies)]
		round := i / len(optionFamilies)
		name := fam.names[round%len(fam.names)]
		if r := round / len(fam.names); r > 0 {
			name = fmt.Sprintf("%s%d", name, r)
		}
		key := fam.prefix + name
		if seeded[key] {
			continue
		}
		switch {
		case fam.prefix == "Syslog.global." || fam.prefix == "Config.HostAgent." || i%17 == 3 ||
			strings.Contains(name, "Name") || strings.Contains(name, "Location"):
			out[key] = fmt.Sprintf("value-%d", i%23)
		case i%11 == 5:
			out[key] = i%2 == 0
		default:
			out[key] = int64((i * 37) % 4096)
		}
	}
	return out
}

// addScale grows lf by the named profile (see scaleProfiles). fileClusters:
// how many of lf's clusters come from the lab file (the others from --fleet).
func addScale(lf *LabFile, name string, fileClusters int) error {
	p, ok := scaleProfiles[name]
	if !ok {
		var names []string
		for k := range scaleProfiles {
			names = append(names, k)
		}
		sort.Strings(names)
		return fmt.Errorf("--scale %q: not a profile (%v)", name, names)
	}
	options := scaleOptions(p.options)
	withOptions := func(h HostSpec) HostSpec {
		if len(h.Options) == 0 { // one map for every such host: it is only read
			h.Options = options
			return h
		}
		merged := make(map[string]any, len(options)+len(h.Options))
		for k, v := range options {
			merged[k] = v
		}
		for k, v := range h.Options { // the lab file's own values win
			merged[k] = v
		}
		h.Options = merged
		return h
	}
	var dc2 *Inventory
	if boolOr(lf.ScaleSecondDatacenter, true) {
		if lf.Datacenter == secondDatacenter || escapeName(lf.Datacenter) == secondDatacenter {
			return fmt.Errorf("--scale: the lab file's datacenter is %s, the name of the one the profile adds (scaleSecondDatacenter: false)", secondDatacenter)
		}
		// before lf grows: the namesakes are of the lab file's own clusters and VMs
		dc2 = &Inventory{Datacenter: secondDatacenter}
		namesakes(dc2, lf, fileClusters)
	}
	growClusters(&lf.Inventory, "ff", p.ownLuns, withOptions)
	var sizes []int
	for c := 0; c < p.clusters; c++ {
		sizes = append(sizes, p.hosts[c%len(p.hosts)])
	}
	scaleClusters(&lf.Inventory, scaleNames{host: "esx-s", lun: 0, datastore: "Scale-VMFS-"},
		scaleDC{hosts: sizes, datastores: p.datastores, vms: p.vms}, p.luns, withOptions)
	if dc2 == nil {
		return nil
	}
	growClusters(dc2, "fe", p.ownLuns, withOptions)
	scaleClusters(dc2, scaleNames{host: "esx-dc2-s", lun: 0x80, datastore: "DC2-VMFS-"}, p.dc2, p.luns, withOptions)
	lf.Datacenters = append(lf.Datacenters, *dc2)
	return nil
}

// growClusters gives the clusters inv holds so far (the lab file's and the
// fleet's, or their namesakes) the profile's options on every host and n
// more LUNs they all see, used by nobody: naa.600009700001970<tag>…, LUN
// numbers from 200.
func growClusters(inv *Inventory, tag string, n int, withOptions func(HostSpec) HostSpec) {
	own := make([]string, 0, len(inv.Clusters))
	for i := range inv.Clusters {
		own = append(own, inv.Clusters[i].Name)
		for j := range inv.Clusters[i].Hosts {
			inv.Clusters[i].Hosts[j] = withOptions(inv.Clusters[i].Hosts[j])
		}
	}
	for i := 0; i < n && len(own) > 0; i++ {
		number := int32(200 + i)
		inv.LUNs = append(inv.LUNs, LUNSpec{
			NAA: fmt.Sprintf("naa.600009700001970%s%04x00000000000", tag, i), CapacityGiB: 50,
			Vendor: "EMC", Model: "SYMMETRIX", LunNumber: &number, Clusters: own,
		})
	}
}

// scaleNames: how one datacenter's generated entities are named where names
// must differ from another datacenter's (hosts, LUNs, datastores); the
// vSphere clusters (Scale-NN), port group (Scale-VMs) and VMs (APPNNNN) have
// the same names in every datacenter.
type scaleNames struct {
	host      string // esx-<host>NN-HH.lab.local
	lun       int    // added to the cluster number in the LUNs' names
	datastore string // <datastore>NNN
}

// scaleClusters adds the generated Scale-NN clusters, their LUNs,
// datastores, port group and VMs to inv.
func scaleClusters(inv *Inventory, names scaleNames, g scaleDC, luns int, withOptions func(HostSpec) HostSpec) {
	naa := func(c, l int) string {
		return fmt.Sprintf("naa.600009700001970%02x%04x00000000000", c+names.lun, l)
	}
	var clusters, hosts []string
	hostCluster := map[string]int{}
	dsOf := map[int][]string{} // cluster number -> its datastores
	for c := 1; c <= len(g.hosts); c++ {
		cname := fmt.Sprintf("Scale-%02d", c)
		clusters = append(clusters, cname)
		cs := ClusterSpec{Name: cname}
		for h := 1; h <= g.hosts[c-1]; h++ {
			hn := fmt.Sprintf("%s%02d-%02d.lab.local", names.host, c, h)
			cs.Hosts = append(cs.Hosts, withOptions(HostSpec{Name: hn, Version: "8.0.2"}))
			hosts = append(hosts, hn)
			hostCluster[hn] = c
		}
		inv.Clusters = append(inv.Clusters, cs)
		for l := 0; l < luns; l++ {
			n := int32(l + 1)
			inv.LUNs = append(inv.LUNs, LUNSpec{
				NAA: naa(c, l), CapacityGiB: 100,
				Vendor: "EMC", Model: "SYMMETRIX", LunNumber: &n, Clusters: []string{cname},
			})
		}
	}
	for d := 0; d < g.datastores && len(clusters) > 0; d++ {
		c := d%len(clusters) + 1
		l := d / len(clusters)
		if l >= luns {
			break
		}
		ds := fmt.Sprintf("%s%03d", names.datastore, d+1)
		inv.Datastores = append(inv.Datastores, DatastoreSpec{Name: ds, Type: "vmfs", LUN: naa(c, l)})
		dsOf[c] = append(dsOf[c], ds)
	}
	if len(hosts) == 0 {
		return
	}
	inv.PortGroups = append(inv.PortGroups, PortGroupSpec{Name: "Scale-VMs", VLAN: 100, Clusters: clusters})
	for v := 0; v < g.vms; v++ {
		host := hosts[v%len(hosts)]
		ds := ""
		if list := dsOf[hostCluster[host]]; len(list) > 0 {
			ds = list[v%len(list)]
		}
		inv.VMs = append(inv.VMs, VMSpec{
			Name: fmt.Sprintf("APP%04d", v+1), Host: host, Datastore: ds, Network: "Scale-VMs",
			PowerState: map[bool]string{true: "poweredOff", false: "poweredOn"}[v%5 == 4],
		})
	}
}

// namesakes fills dc with a vSphere cluster of the same name for each of
// lf's first n clusters (its hosts "dc2-<host>", with the same ESXi version,
// adapters and options), the lab file's port groups on them, and a VM of the
// same name (and hardware) for each of those clusters' VMs, on the local
// datastore of its host's namesake.
func namesakes(dc *Inventory, lf *LabFile, n int) {
	dc.LocalDatastores = new(bool)
	*dc.LocalDatastores = true
	rename := func(host string) string { return "dc2-" + host }
	names := map[string]bool{}
	hosts := map[string]bool{} // the clusters' hosts, full and short names
	for _, c := range lf.Clusters[:n] {
		names[c.Name] = true
		cs := c
		cs.Hosts = nil
		for _, h := range c.Hosts {
			hosts[h.Name], hosts[shortName(h.Name)] = true, true
			h.Name = rename(h.Name)
			h.HBAs = append([]HBASpec(nil), h.HBAs...)
			cs.Hosts = append(cs.Hosts, h)
		}
		dc.Clusters = append(dc.Clusters, cs)
	}
	for _, pg := range lf.PortGroups {
		var on []string
		for _, c := range pg.Clusters {
			if names[c] {
				on = append(on, c)
			}
		}
		if len(pg.Clusters) > 0 && len(on) == 0 {
			continue
		}
		pg.Clusters = on
		dc.PortGroups = append(dc.PortGroups, pg)
	}
	for _, v := range lf.VMs {
		if !hosts[v.Host] {
			continue
		}
		v.Host = rename(v.Host)
		v.Datastore = ""
		dc.VMs = append(dc.VMs, v)
	}
}
