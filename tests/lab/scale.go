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
type scaleProfile struct {
	options    int
	clusters   int
	hosts      []int
	luns       int
	ownLuns    int
	datastores int
	vms        int
}

var scaleProfiles = map[string]scaleProfile{
	"small":     {options: 1000, clusters: 4, hosts: []int{8, 2, 3, 4}, luns: 32, ownLuns: 2, datastores: 12, vms: 100},
	"realistic": {options: 1100, clusters: 20, hosts: []int{32, 4, 8, 16, 2, 6}, luns: 256, ownLuns: 4, datastores: 100, vms: 2000},
}

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

// addScale grows lf by the named profile (see scaleProfiles).
func addScale(lf *LabFile, name string) error {
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
	own := make([]string, 0, len(lf.Clusters))
	for i := range lf.Clusters {
		own = append(own, lf.Clusters[i].Name)
		for j := range lf.Clusters[i].Hosts {
			lf.Clusters[i].Hosts[j] = withOptions(lf.Clusters[i].Hosts[j])
		}
	}
	// a few more LUNs the lab file's clusters see, used by nobody
	for i := 0; i < p.ownLuns && len(own) > 0; i++ {
		n := int32(200 + i)
		lf.LUNs = append(lf.LUNs, LUNSpec{
			NAA: fmt.Sprintf("naa.600009700001970ff%04x00000000000", i), CapacityGiB: 50,
			Vendor: "EMC", Model: "SYMMETRIX", LunNumber: &n, Clusters: own,
		})
	}

	var scaleClusters []string
	var scaleHosts []string
	var dsOf = map[string][]string{} // cluster -> its datastores
	for c := 1; c <= p.clusters; c++ {
		cname := fmt.Sprintf("Scale-%02d", c)
		scaleClusters = append(scaleClusters, cname)
		size := p.hosts[(c-1)%len(p.hosts)]
		cs := ClusterSpec{Name: cname}
		for h := 1; h <= size; h++ {
			hn := fmt.Sprintf("esx-s%02d-%02d.lab.local", c, h)
			cs.Hosts = append(cs.Hosts, withOptions(HostSpec{Name: hn, Version: "8.0.2"}))
			scaleHosts = append(scaleHosts, hn)
		}
		lf.Clusters = append(lf.Clusters, cs)
		for l := 0; l < p.luns; l++ {
			n := int32(l + 1)
			lf.LUNs = append(lf.LUNs, LUNSpec{
				NAA: fmt.Sprintf("naa.600009700001970%02x%04x00000000000", c, l), CapacityGiB: 100,
				Vendor: "EMC", Model: "SYMMETRIX", LunNumber: &n, Clusters: []string{cname},
			})
		}
	}
	for d := 0; d < p.datastores && p.clusters > 0; d++ {
		c := d%p.clusters + 1
		l := d / p.clusters
		if l >= p.luns {
			break
		}
		cname := fmt.Sprintf("Scale-%02d", c)
		ds := fmt.Sprintf("Scale-VMFS-%03d", d+1)
		lf.Datastores = append(lf.Datastores, DatastoreSpec{
			Name: ds, Type: "vmfs", LUN: fmt.Sprintf("naa.600009700001970%02x%04x00000000000", c, l),
		})
		dsOf[cname] = append(dsOf[cname], ds)
	}
	if len(scaleHosts) > 0 {
		lf.PortGroups = append(lf.PortGroups, PortGroupSpec{Name: "Scale-VMs", VLAN: 100, Clusters: scaleClusters})
	}
	for v := 0; v < p.vms && len(scaleHosts) > 0; v++ {
		host := scaleHosts[v%len(scaleHosts)]
		var c int
		fmt.Sscanf(host, "esx-s%02d-", &c)
		ds := ""
		if list := dsOf[fmt.Sprintf("Scale-%02d", c)]; len(list) > 0 {
			ds = list[v%len(list)]
		}
		lf.VMs = append(lf.VMs, VMSpec{
			Name: fmt.Sprintf("APP%04d", v+1), Host: host, Datastore: ds, Network: "Scale-VMs",
			PowerState: map[bool]string{true: "poweredOff", false: "poweredOn"}[v%5 == 4],
		})
	}
	return nil
}
