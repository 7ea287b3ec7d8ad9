package main

// Host storage as ESXi reports it: host bus adapters, SCSI LUNs, SCSI
// topology and multipathing; HostStorageSystem.MarkPerenniallyReserved*;
// disk files (VMDK descriptors, RDM mapping files) created the way ESXi does.

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
	"github.com/vmware/govmomi/vmdk"
)

const (
	gib         = int64(1) << 30
	blockSize   = 512
	diskDevPath = "/vmfs/devices/disks/"
)

// lunUUID builds an ESXi-style ScsiLun uuid: 02 00 <lun> 0000 <naa id> <model[:6] in hex>.
func lunUUID(naa string, lun int32, model string) string {
	m := []byte(fmt.Sprintf("%-6s", model))[:6]
	return fmt.Sprintf("0200%02x0000%s%s", lun&0xff, strings.TrimPrefix(naa, "naa."), hex.EncodeToString(m))
}

func hash64(s string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(s))
	return h.Sum64()
}

func hexHash(s string, n int) string {
	sum := sha1.Sum([]byte(s))
	return hex.EncodeToString(sum[:])[:n]
}

// localDiskNAA is the canonical name of a host's local boot/datastore disk.
func localDiskNAA(host string) string {
	return "naa.6d094660" + hexHash(host, 24)
}

type hbaInfo struct {
	base  types.BaseHostHostBusAdapter
	spec  HBASpec
	key   string
	dev   string
	wwpn  int64
	wwnn  int64
	iqn   string
	pci   string
	index int
}

type lunView struct {
	spec     *LUNSpec
	number   int32
	reserved bool
}

// newScsiDisk builds a HostScsiDisk the way ESXi reports a SAN or local disk.
func newScsiDisk(naa string, number int32, capacity int64, vendor, model string, local, reserved bool, transport string) *types.HostScsiDisk {
	uuid := lunUUID(naa, number, model)
	kind := "Fibre Channel"
	switch transport {
	case "iscsi":
		kind = "iSCSI"
	case "local":
		kind = "Local"
	}
	return &types.HostScsiDisk{
		ScsiLun: types.ScsiLun{
			HostDevice: types.HostDevice{DeviceName: diskDevPath + naa, DeviceType: "disk"},
			Key:        "key-vim.host.ScsiDisk-" + uuid,
			Uuid:       uuid,
			Descriptor: []types.ScsiLunDescriptor{
				{Quality: "highQuality", Id: naa},
				{Quality: "mediumQuality", Id: "vml." + uuid},
				{Quality: "mediumQuality", Id: uuid},
			},
			CanonicalName:    naa,
			DisplayName:      fmt.Sprintf("%s %s Disk (%s)", vendor, kind, naa),
			LunType:          "disk",
			Vendor:           vendor,
			Model:            model,
			Revision:         "0533",
			ScsiLevel:        6,
			SerialNumber:     "unavailable",
			DurableName:      &types.ScsiLunDurableName{Namespace: "NAA", NamespaceId: 3, Data: naaBytes(naa)},
			QueueDepth:       64,
			OperationalState: []string{"ok"},
			Capabilities:     &types.ScsiLunCapabilities{UpdateDisplayNameSupported: true},
			VStorageSupport:  "vStorageSupported",
			ProtocolEndpoint: types.NewBool(false),
			// ESXi reports perenniallyReserved on every disk
			PerenniallyReserved:    types.NewBool(reserved),
			ClusteredVmdkSupported: types.NewBool(false),
		},
		Capacity:     types.HostDiskDimensionsLba{BlockSize: blockSize, Block: capacity / blockSize},
		DevicePath:   diskDevPath + naa,
		Ssd:          types.NewBool(false),
		LocalDisk:    types.NewBool(local),
		ScsiDiskType: "native512",
	}
}

func naaBytes(naa string) []byte {
	b, _ := hex.DecodeString(strings.TrimPrefix(naa, "naa."))
	return b
}

// buildHostStorage replaces the simulator's shared template storage with
// this host's adapters, LUNs, topology and paths.
func (l *Lab) buildHostStorage(h *labHost, hostIndex int, views []lunView) {
	info := &types.HostStorageDeviceInfo{}

	// Local RAID controller and its disk (backs "<short>-local").
	localHBA := &types.HostSerialAttachedHba{
		HostHostBusAdapter: types.HostHostBusAdapter{
			Key: "key-vim.host.SerialAttachedHba-vmhba0", Device: "vmhba0", Bus: 24,
			Status: "unknown", Model: "PERC H730 Mini", Driver: "lsi_mr3", Pci: "0000:18:00.0",
			StorageProtocol: "scsi",
		},
		NodeWorldWideName: fmt.Sprintf("5d09466%09x", hash64(h.spec.Name)&0xfffffffff),
	}
	hbas := []hbaInfo{{base: localHBA, spec: HBASpec{Kind: "sas", Vendor: "Broadcom / LSI", Model: localHBA.Model, Driver: "lsi_mr3"},
		key: localHBA.Key, dev: "vmhba0", pci: localHBA.Pci}}

	next := 1
	for i, spec := range h.spec.HBAs {
		hi := hbaInfo{spec: spec, index: i}
		switch spec.Kind {
		case "iscsi":
			hi.dev = fmt.Sprintf("vmhba%d", 64+countKind(hbas, "iscsi"))
		default:
			hi.dev = fmt.Sprintf("vmhba%d", next)
			next++
			hi.pci = fmt.Sprintf("0000:%02x:00.%d", 0x3b+i, 0)
		}
		base := types.HostHostBusAdapter{
			Device: hi.dev, Bus: int32(0x3b + i), Status: "online",
			Model: spec.Model, Driver: spec.Driver, Pci: hi.pci,
		}
		switch spec.Kind {
		case "fc":
			prefix := int64(0x21000024ff000000)
			if spec.Driver == "lpfc" {
				prefix = int64(0x10000090fa000000)
			}
			hi.wwpn = prefix | int64((hostIndex&0xff)<<8|i)
			hi.wwnn = hi.wwpn | (1 << 57)
			base.Key = "key-vim.host.FibreChannelHba-" + hi.dev
			base.StorageProtocol = "scsi"
			hi.base = &types.HostFibreChannelHba{HostHostBusAdapter: base,
				PortWorldWideName: hi.wwpn, NodeWorldWideName: hi.wwnn, PortType: "fabric", Speed: 8}
		case "iscsi":
			hi.iqn = fmt.Sprintf("iqn.1998-01.com.vmware:%s-%08x", shortName(h.spec.Name), uint32(hash64(h.spec.Name)))
			base.Key = "key-vim.host.InternetScsiHba-" + hi.dev
			base.Bus = 0
			base.StorageProtocol = "scsi"
			hi.base = &types.HostInternetScsiHba{
				HostHostBusAdapter:    base,
				IsSoftwareBased:       true,
				CanBeDisabled:         types.NewBool(true),
				NetworkBindingSupport: types.HostInternetScsiHbaNetworkBindingSupportTypeOptional,
				DiscoveryCapabilities: types.HostInternetScsiHbaDiscoveryCapabilities{
					SendTargetsDiscoverySettable: true, StaticTargetDiscoverySettable: true,
				},
				DiscoveryProperties: types.HostInternetScsiHbaDiscoveryProperties{
					SendTargetsDiscoveryEnabled: true, StaticTargetDiscoveryEnabled: true,
				},
				AuthenticationCapabilities: types.HostInternetScsiHbaAuthenticationCapabilities{
					ChapAuthSettable: true, MutualChapSettable: types.NewBool(true), TargetChapSettable: types.NewBool(true), TargetMutualChapSettable: types.NewBool(true),
				},
				AuthenticationProperties: types.HostInternetScsiHbaAuthenticationProperties{
					ChapAuthEnabled:              false,
					ChapAuthenticationType:       string(types.HostInternetScsiHbaChapAuthenticationTypeChapProhibited),
					MutualChapAuthenticationType: string(types.HostInternetScsiHbaChapAuthenticationTypeChapProhibited),
				},
				IpCapabilities: types.HostInternetScsiHbaIPCapabilities{},
				IpProperties:   types.HostInternetScsiHbaIPProperties{DhcpConfigurationEnabled: false},
				IScsiName:      hi.iqn,
				ConfiguredSendTarget: []types.HostInternetScsiHbaSendTarget{
					{Address: "192.0.2.50", Port: 3260},
				},
				MaxSpeedMb: 10000, CurrentSpeedMb: 10000,
			}
		case "block":
			base.Key = "key-vim.host.BlockHba-" + hi.dev
			hi.base = &types.HostBlockHba{HostHostBusAdapter: base}
		case "sas":
			base.Key = "key-vim.host.SerialAttachedHba-" + hi.dev
			hi.base = &types.HostSerialAttachedHba{HostHostBusAdapter: base, NodeWorldWideName: fmt.Sprintf("5%015x", hash64(h.spec.Name+hi.dev)&0xfffffffffffffff)}
		}
		hi.key = hi.base.GetHostHostBusAdapter().Key
		hbas = append(hbas, hi)
	}

	for _, hi := range hbas {
		info.HostBusAdapter = append(info.HostBusAdapter, hi.base)
	}

	topo := map[string]*types.HostScsiTopologyInterface{}
	var topoOrder []string
	addTopo := func(hi hbaInfo, target int32, transport types.BaseHostTargetTransport, number int32, lunKey string) {
		t := topo[hi.dev]
		if t == nil {
			t = &types.HostScsiTopologyInterface{Key: "key-vim.host.ScsiTopology.Interface-" + hi.dev, Adapter: hi.key}
			topo[hi.dev] = t
			topoOrder = append(topoOrder, hi.dev)
		}
		var tg *types.HostScsiTopologyTarget
		for i := range t.Target {
			if t.Target[i].Target == target {
				tg = &t.Target[i]
			}
		}
		if tg == nil {
			t.Target = append(t.Target, types.HostScsiTopologyTarget{
				Key:       fmt.Sprintf("key-vim.host.ScsiTopology.Target-%s:0:%d", hi.dev, target),
				Target:    target,
				Transport: transport,
			})
			tg = &t.Target[len(t.Target)-1]
		}
		tg.Lun = append(tg.Lun, types.HostScsiTopologyLun{
			Key:     "key-vim.host.ScsiTopology.Lun-" + strings.TrimPrefix(lunKey, "key-vim.host.ScsiDisk-"),
			Lun:     number,
			ScsiLun: lunKey,
		})
	}
	mp := &types.HostMultipathInfo{}
	addLun := func(disk *types.HostScsiDisk, number int32, via []hbaInfo, transport string) {
		info.ScsiLun = append(info.ScsiLun, disk)
		h.luns[disk.Uuid] = disk
		lu := types.HostMultipathInfoLogicalUnit{
			Key:    "key-vim.host.MultipathInfo.LogicalUnit-" + disk.Uuid,
			Id:     disk.Uuid,
			Lun:    disk.Key,
			Policy: &types.HostMultipathInfoLogicalUnitPolicy{Policy: "VMW_PSP_RR"},
			StorageArrayTypePolicy: &types.HostMultipathInfoLogicalUnitStorageArrayTypePolicy{
				Policy: "VMW_SATP_ALUA_CX"},
		}
		if transport == "local" {
			lu.Policy = &types.HostMultipathInfoLogicalUnitPolicy{Policy: "VMW_PSP_FIXED"}
			lu.StorageArrayTypePolicy.Policy = "VMW_SATP_LOCAL"
		}
		for _, hi := range via {
			var tt types.BaseHostTargetTransport
			switch transport {
			case "fc":
				// two array ports, one per fabric
				port := int64(0x5006016000000000) | int64(hi.index&0xf)<<40 | int64(hash64(disk.CanonicalName)&0xffff)
				tt = &types.HostFibreChannelTargetTransport{PortWorldWideName: port, NodeWorldWideName: port | 1<<56}
			case "iscsi":
				tt = &types.HostInternetScsiTargetTransport{IScsiName: "iqn.2003-01.org.linux-iscsi.san01:lab", IScsiAlias: "san01", Address: []string{"192.0.2.50:3260"}}
			default:
				tt = &types.HostBlockAdapterTargetTransport{}
			}
			name := fmt.Sprintf("%s:C0:T0:L%d", hi.dev, number)
			lu.Path = append(lu.Path, types.HostMultipathInfoPath{
				Key:           "key-vim.host.MultipathInfo.Path-" + name,
				Name:          name,
				PathState:     "active",
				State:         "active",
				IsWorkingPath: types.NewBool(true),
				Adapter:       hi.key,
				Lun:           lu.Key,
				Transport:     tt,
			})
			addTopo(hi, 0, tt, number, disk.Key)
		}
		mp.Lun = append(mp.Lun, lu)
	}

	local := newScsiDisk(localDiskNAA(h.spec.Name), 0, 300*gib, "DELL", "PERC H730 Mini", true, false, "local")
	addLun(local, 0, hbas[:1], "local")

	for _, v := range views {
		disk := newScsiDisk(v.spec.NAA, v.number, int64(v.spec.CapacityGiB*float64(gib)), v.spec.Vendor, v.spec.Model, false, v.reserved, v.spec.Transport)
		if v.spec.UUID != "" {
			disk.Uuid = v.spec.UUID
			disk.Key = "key-vim.host.ScsiDisk-" + disk.Uuid
		}
		if v.spec.DisplayName != "" {
			disk.DisplayName = v.spec.DisplayName
		}
		shapeSectors(disk, v.spec)
		var via []hbaInfo
		for _, hi := range hbas[1:] {
			if hi.spec.Kind == v.spec.Transport {
				via = append(via, hi)
			}
		}
		addLun(disk, v.number, via, v.spec.Transport)
	}

	info.ScsiTopology = &types.HostScsiTopology{}
	for _, dev := range topoOrder {
		info.ScsiTopology.Adapter = append(info.ScsiTopology.Adapter, *topo[dev])
	}
	info.MultipathInfo = mp
	info.SoftwareInternetScsiEnabled = h.spec.hasTransport("iscsi")

	h.storage.StorageDeviceInfo = info
	// RescanAllHba swaps StorageDeviceInfo.HostBusAdapter with HBA: keep both equal.
	h.storage.HBA = info.HostBusAdapter
	h.obj.Config.StorageDevice = info

	// PCI devices, so that the adapters' vendors are visible in hardware.pciDevice
	var pci []types.HostPciDevice
	for _, hi := range hbas {
		if hi.pci == "" {
			continue
		}
		var bus uint8
		_, _ = fmt.Sscanf(hi.pci, "0000:%02x:", &bus)
		pci = append(pci, types.HostPciDevice{
			Id: hi.pci, ClassId: 0x0c04, Bus: bus, Slot: 0, Function: 0,
			VendorId: vendorID(hi.spec.Vendor), SubVendorId: vendorID(hi.spec.Vendor),
			VendorName: hi.spec.Vendor, DeviceId: 0x2532, SubDeviceId: 0x015c, DeviceName: hi.spec.Model,
		})
	}
	hw := *h.obj.Hardware
	hw.PciDevice = pci
	h.obj.Hardware = &hw
}

// shapeSectors gives a SAN disk its LUN's sector format, and says whether
// it has what clustered VMDK needs once formatted VMFS
// (ScsiLun.clusteredVmdkSupported): reached over Fibre Channel, 512-byte
// sectors (512n or 512e).
func shapeSectors(disk *types.HostScsiDisk, spec *LUNSpec) {
	format := spec.SectorFormat
	if format == "" {
		format = "512n"
	}
	disk.ScsiDiskType = sectorDiskType[format]
	if format == "4kn" {
		bytes := disk.Capacity.Block * int64(disk.Capacity.BlockSize)
		disk.Capacity = types.HostDiskDimensionsLba{BlockSize: 4096, Block: bytes / 4096}
	}
	disk.ClusteredVmdkSupported = types.NewBool(spec.Transport == "fc" && format != "4kn")
}

func countKind(hbas []hbaInfo, kind string) int {
	n := 0
	for _, h := range hbas {
		if h.spec.Kind == kind {
			n++
		}
	}
	return n
}

func vendorID(vendor string) int16 {
	switch {
	case strings.HasPrefix(vendor, "QLogic"):
		return 0x1077
	case strings.HasPrefix(vendor, "Emulex"):
		return 0x10df
	case strings.HasPrefix(vendor, "Broadcom"):
		return 0x1000
	}
	return 0x15ad
}

// storageSystemHandler adds the ESXi methods the simulator lacks to a host's
// HostStorageSystem.
type storageSystemHandler struct {
	*simulator.HostStorageSystem
	lab  *Lab
	host *labHost
}

func notFound(msg string) (*types.NotFound, string) {
	return &types.NotFound{}, msg
}

// markPR sets perenniallyReserved on the host's LUNs. It returns, per uuid,
// the ScsiLun key (or the uuid when unknown) and a fault for unknown uuids.
func (l *Lab) markPR(ctx *simulator.Context, h *labHost, uuids []string, state bool) ([]types.HostStorageSystemScsiLunResult, int) {
	var res []types.HostStorageSystemScsiLunResult
	failed := 0
	ctx.WithLock(h.obj, func() {
		for _, id := range uuids {
			d := h.luns[id]
			if d == nil {
				fault, msg := notFound(fmt.Sprintf("The object or item referred to could not be found: ScsiLun %q on host %s", id, h.spec.Name))
				res = append(res, types.HostStorageSystemScsiLunResult{Key: id, Fault: &types.LocalizedMethodFault{Fault: fault, LocalizedMessage: msg}})
				failed++
				continue
			}
			d.PerenniallyReserved = types.NewBool(state)
			res = append(res, types.HostStorageSystemScsiLunResult{Key: d.Key})
		}
		luns := h.storage.StorageDeviceInfo.ScsiLun
		ctx.Update(h.obj, []types.PropertyChange{{Name: "config.storageDevice.scsiLun", Val: luns}})
	})
	ctx.Update(h.storage, []types.PropertyChange{{Name: "storageDeviceInfo.scsiLun", Val: h.storage.StorageDeviceInfo.ScsiLun}})
	return res, failed
}

// MarkPerenniallyReserved implements HostStorageSystem.MarkPerenniallyReserved:
// unknown uuid → NotFound, as ESXi answers.
func (s *storageSystemHandler) MarkPerenniallyReserved(ctx *simulator.Context, req *types.MarkPerenniallyReserved) soap.HasFault {
	body := new(methods.MarkPerenniallyReservedBody)
	if req.LunUuid == "" {
		body.Fault_ = simulator.Fault("A specified parameter was not correct: lunUuid", &types.InvalidArgument{InvalidProperty: "lunUuid"})
		return body
	}
	res, failed := s.lab.markPR(ctx, s.host, []string{req.LunUuid}, req.State)
	if failed > 0 {
		body.Fault_ = simulator.Fault(res[0].Fault.LocalizedMessage, res[0].Fault.Fault)
		return body
	}
	body.Res = new(types.MarkPerenniallyReservedResponse)
	return body
}

// MarkPerenniallyReservedExTask implements HostStorageSystem.MarkPerenniallyReservedEx_Task:
// the task result lists one HostStorageSystemScsiLunResult per uuid, with a
// NotFound fault for unknown ones.
func (s *storageSystemHandler) MarkPerenniallyReservedExTask(ctx *simulator.Context, req *types.MarkPerenniallyReservedEx_Task) soap.HasFault {
	// vCenter files host storage tasks under the host
	task := simulator.CreateTask(s.host.ref, "markPerenniallyReservedExTask", func(*simulator.Task) (types.AnyType, types.BaseMethodFault) {
		res, _ := s.lab.markPR(ctx, s.host, req.LunUuid, req.State)
		return types.ArrayOfHostStorageSystemScsiLunResult{HostStorageSystemScsiLunResult: res}, nil
	})
	return &methods.MarkPerenniallyReservedEx_TaskBody{
		Res: &types.MarkPerenniallyReservedEx_TaskResponse{Returnval: task.Run(ctx)},
	}
}

// ---- disk files ---------------------------------------------------------

// dsFile maps a datastore path "[ds] dir/file.vmdk" to a local file, for the
// datastores the lab built. Entity names in paths are escaped (no "/" or
// "\" of their own); a path that leaves the datastore ("..") maps to nothing.
func (l *Lab) dsFile(p *object.DatastorePath) (string, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	dir, ok := l.dsDirs[p.Datastore]
	if !ok {
		return "", false
	}
	rel := filepath.FromSlash(p.Path)
	if rel != "" && !filepath.IsLocal(rel) {
		return "", false
	}
	return filepath.Join(dir, rel), true
}

// newDiskPath names a new disk "[ds] VM/VM_N.vmdk" like ESXi does: in the
// VM's folder, after its .vmx file (on another datastore: in a folder named
// after the VM). Names are escaped ("SQL%2fNODE 1"), so they hold no "/".
func (l *Lab) newDiskPath(vm *simulator.VirtualMachine, p object.DatastorePath) (object.DatastorePath, bool) {
	var vmx object.DatastorePath
	vmx.FromString(vm.Config.Files.VmPathName)
	if p.Datastore == "" {
		p.Datastore = vmx.Datastore
	}
	dir, name := vm.Config.Name, vm.Config.Name
	if path.Ext(vmx.Path) == ".vmx" {
		name = strings.TrimSuffix(path.Base(vmx.Path), ".vmx")
		if p.Datastore == vmx.Datastore && path.Dir(vmx.Path) != "." {
			dir = path.Dir(vmx.Path)
		}
	}
	for i := 1; i < 10000; i++ {
		cand := object.DatastorePath{Datastore: p.Datastore, Path: fmt.Sprintf("%s/%s_%d.vmdk", dir, name, i)}
		f, ok := l.dsFile(&cand)
		if !ok {
			return cand, false
		}
		if _, err := os.Stat(f); os.IsNotExist(err) {
			return cand, true
		}
	}
	return p, false
}

func invalidBacking(index int, msg string) (types.BaseMethodFault, string) {
	return &types.InvalidDeviceBacking{InvalidDeviceSpec: types.InvalidDeviceSpec{
		InvalidVmConfig: types.InvalidVmConfig{Property: "virtualDeviceSpec.device.backing"},
		DeviceIndex:     int32(index),
	}}, fmt.Sprintf("Invalid configuration for device '%d'. %s", index, msg)
}

// prepareDisks runs before the simulator applies a ReconfigVM_Task spec. For
// each disk added with fileOperation=create it validates the backing like
// ESXi, writes the descriptor itself (an RDM mapping file for RDMs, recording
// the provisioning of VMDKs) and hands the disk to the simulator as an
// existing file. For a disk attached from an existing file, it fills the
// backing from the file, as ESXi reads it from the descriptor.
func (l *Lab) prepareDisksTracked(vm *simulator.VirtualMachine, spec *types.VirtualMachineConfigSpec) ([]string, types.BaseMethodFault, string) {
	var created []string
	fault, msg := l.prepareDisks(vm, spec, &created)
	return created, fault, msg
}

func (l *Lab) prepareDisks(vm *simulator.VirtualMachine, spec *types.VirtualMachineConfigSpec, created *[]string) (types.BaseMethodFault, string) {
	var host *labHost
	if vm.Runtime.Host != nil {
		host = l.hosts[vm.Runtime.Host.Value]
	}
	for i, change := range spec.DeviceChange {
		dspec := change.GetVirtualDeviceConfigSpec()
		if dspec.Operation != types.VirtualDeviceConfigSpecOperationAdd {
			continue
		}
		disk, ok := dspec.Device.(*types.VirtualDisk)
		if !ok {
			continue
		}
		var p object.DatastorePath
		switch b := disk.Backing.(type) {
		case *types.VirtualDiskRawDiskMappingVer1BackingInfo:
			p.FromString(b.FileName)
			if dspec.FileOperation == types.VirtualDeviceConfigSpecFileOperationCreate {
				if host == nil {
					continue
				}
				lun := host.findLUN(b.DeviceName, b.LunUuid)
				if lun == nil {
					name := b.DeviceName
					if name == "" {
						name = b.LunUuid
					}
					return invalidBacking(i, fmt.Sprintf("The LUN %s is not visible to host %s.", name, host.spec.Name))
				}
				if b.LunUuid != "" && b.LunUuid != lun.Uuid {
					return invalidBacking(i, fmt.Sprintf("lunUuid %s does not match device %s.", b.LunUuid, b.DeviceName))
				}
				l.mu.Lock()
				ds := l.extentLUNs[lun.CanonicalName]
				l.mu.Unlock()
				if ds != "" {
					return invalidBacking(i, fmt.Sprintf("The LUN %s is in use as an extent of datastore %s.", lun.CanonicalName, ds))
				}
				switch b.CompatibilityMode {
				case string(types.VirtualDiskCompatibilityModePhysicalMode), string(types.VirtualDiskCompatibilityModeVirtualMode):
				default:
					return invalidBacking(i, fmt.Sprintf("compatibilityMode %q is not valid.", b.CompatibilityMode))
				}
				if b.DeviceName == "" {
					b.DeviceName = lun.DevicePath
				}
				b.LunUuid = lun.Uuid
				capacity := lun.Capacity.Block * int64(lun.Capacity.BlockSize)
				disk.CapacityInBytes = capacity
				disk.CapacityInKB = capacity / 1024
				if disk.UnitNumber == nil {
					continue // the simulator refuses it as ESXi does
				}
				if p.Path == "" || path.Ext(p.Path) != ".vmdk" {
					np, ok := l.newDiskPath(vm, p)
					if !ok {
						continue
					}
					p = np
					b.FileName = p.String()
				}
				l.mu.Lock()
				kind := l.dsKind[p.Datastore]
				l.mu.Unlock()
				if kind != "" && kind != "vmfs" {
					return invalidBacking(i, fmt.Sprintf("Raw device mapping files must be on a VMFS datastore, not %s.", p.Datastore))
				}
				file, ok := l.dsFile(&p)
				if !ok {
					continue
				}
				if _, err := os.Stat(file); err == nil {
					return &types.FileAlreadyExists{FileFault: types.FileFault{File: b.FileName}}, fmt.Sprintf("Cannot complete the operation because the file or folder %s already exists", b.FileName)
				}
				if err := writeRDM(file, b, capacity, created); err != nil {
					return &types.CannotCreateFile{FileFault: types.FileFault{File: b.FileName}}, err.Error()
				}
				dspec.FileOperation = ""
				continue
			}
			if dspec.FileOperation != "" {
				continue
			}
			file, ok := l.dsFile(&p)
			if !ok {
				continue
			}
			desc, err := readDescriptor(file)
			if err != nil || desc.DDB["lab.lunUuid"] == "" {
				continue // FileNotFound is the simulator's answer
			}
			b.DeviceName = desc.DDB["lab.deviceName"]
			b.LunUuid = desc.DDB["lab.lunUuid"]
			b.CompatibilityMode = desc.DDB["lab.compatibilityMode"]
			if b.DiskMode == "" {
				b.DiskMode = desc.DDB["lab.diskMode"]
			}
			disk.CapacityInBytes = desc.Capacity()
			disk.CapacityInKB = disk.CapacityInBytes / 1024
			if host != nil && host.findLUN("", b.LunUuid) == nil {
				return invalidBacking(i, fmt.Sprintf("The LUN %s of %s is not visible to host %s.", b.DeviceName, b.FileName, host.spec.Name))
			}
		case *types.VirtualDiskFlatVer2BackingInfo:
			p.FromString(b.FileName)
			if dspec.FileOperation == types.VirtualDeviceConfigSpecFileOperationCreate {
				if disk.UnitNumber == nil || b.Parent != nil {
					continue
				}
				if p.Path == "" || path.Ext(p.Path) != ".vmdk" {
					np, ok := l.newDiskPath(vm, p)
					if !ok {
						continue
					}
					p = np
					b.FileName = p.String()
				}
				file, ok := l.dsFile(&p)
				if !ok {
					continue
				}
				if _, err := os.Stat(file); err == nil {
					return &types.FileAlreadyExists{FileFault: types.FileFault{File: b.FileName}}, fmt.Sprintf("Cannot complete the operation because the file or folder %s already exists", b.FileName)
				}
				capacity := disk.CapacityInBytes
				if capacity == 0 {
					capacity = disk.CapacityInKB * 1024
				}
				if err := writeVMDK(file, b, capacity, created); err != nil {
					return &types.CannotCreateFile{FileFault: types.FileFault{File: b.FileName}}, err.Error()
				}
				dspec.FileOperation = ""
				continue
			}
			if dspec.FileOperation != "" {
				continue
			}
			file, ok := l.dsFile(&p)
			if !ok {
				continue
			}
			desc, err := readDescriptor(file)
			if err != nil {
				continue
			}
			if b.ThinProvisioned == nil {
				b.ThinProvisioned = types.NewBool(desc.DDB["thinProvisioned"] == "1")
			}
			if b.EagerlyScrub == nil {
				b.EagerlyScrub = types.NewBool(desc.DDB["lab.eagerlyScrub"] == "true")
			}
			if disk.CapacityInBytes == 0 && disk.CapacityInKB == 0 {
				disk.CapacityInBytes = desc.Capacity()
				disk.CapacityInKB = disk.CapacityInBytes / 1024
			}
		}
	}
	return nil, ""
}

func readDescriptor(file string) (*vmdk.Descriptor, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return vmdk.ParseDescriptor(f)
}

func writeDescriptor(file string, d *vmdk.Descriptor) error {
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(file, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if err := d.Write(f); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// writeVMDK writes a VMFS flat disk descriptor and an empty extent file.
func writeVMDK(file string, b *types.VirtualDiskFlatVer2BackingInfo, capacity int64, created *[]string) error {
	extent := strings.TrimSuffix(filepath.Base(file), ".vmdk") + "-flat.vmdk"
	d := vmdk.NewDescriptor(vmdk.Extent{Type: "VMFS", Permission: "RW", Size: capacity / blockSize, Info: extent})
	d.Type = "vmfs"
	d.CID = vmdk.DiskContentID(hash64(file))
	d.ParentCID = 0xffffffff
	d.DDB["adapterType"] = "lsilogic"
	d.DDB["virtualHWVersion"] = "13"
	if b.ThinProvisioned != nil && *b.ThinProvisioned {
		d.DDB["thinProvisioned"] = "1"
	}
	eager := b.EagerlyScrub != nil && *b.EagerlyScrub
	d.DDB["lab.eagerlyScrub"] = fmt.Sprint(eager)
	if err := writeDescriptor(file, d); err != nil {
		return err
	}
	*created = append(*created, file, filepath.Join(filepath.Dir(file), extent))
	return os.WriteFile(filepath.Join(filepath.Dir(file), extent), nil, 0o600)
}

// writeRDM writes a raw device mapping descriptor and its mapping file
// (NAME-rdmp.vmdk for physical compatibility, NAME-rdm.vmdk for virtual).
func writeRDM(file string, b *types.VirtualDiskRawDiskMappingVer1BackingInfo, capacity int64, created *[]string) error {
	suffix, kind := "-rdm.vmdk", "vmfsRawDeviceMap"
	if b.CompatibilityMode == string(types.VirtualDiskCompatibilityModePhysicalMode) {
		suffix, kind = "-rdmp.vmdk", "vmfsPassthroughRawDeviceMap"
	}
	mapping := strings.TrimSuffix(filepath.Base(file), ".vmdk") + suffix
	d := vmdk.NewDescriptor(vmdk.Extent{Type: "VMFSRDM", Permission: "RW", Size: capacity / blockSize, Info: mapping})
	d.Type = kind
	d.CID = vmdk.DiskContentID(hash64(file))
	d.ParentCID = 0xffffffff
	d.DDB["adapterType"] = "lsilogic"
	d.DDB["lab.deviceName"] = b.DeviceName
	d.DDB["lab.lunUuid"] = b.LunUuid
	d.DDB["lab.compatibilityMode"] = b.CompatibilityMode
	d.DDB["lab.diskMode"] = b.DiskMode
	if err := writeDescriptor(file, d); err != nil {
		return err
	}
	*created = append(*created, file, filepath.Join(filepath.Dir(file), mapping))
	return os.WriteFile(filepath.Join(filepath.Dir(file), mapping), nil, 0o600)
}

// ---- config target ---------------------------------------------------------

func init() {
	intercept("EnvironmentBrowser", "QueryConfigTarget", func(l *Lab, ctx *simulator.Context, m *simulator.Method) mo.Reference {
		if eb, ok := ctx.Map.Get(m.This).(*simulator.EnvironmentBrowser); ok {
			return &envBrowserHandler{EnvironmentBrowser: eb, lab: l}
		}
		return nil
	})
}

// envBrowserHandler adds to QueryConfigTarget(host) the SAN disks that host
// can map as RDMs (ConfigTarget.scsiDisk): every LUN it sees, less local
// disks and VMFS extents, as vCenter lists them.
type envBrowserHandler struct {
	*simulator.EnvironmentBrowser
	lab *Lab
}

func (e *envBrowserHandler) QueryConfigTarget(ctx *simulator.Context, req *types.QueryConfigTarget) soap.HasFault {
	res := e.EnvironmentBrowser.QueryConfigTarget(ctx, req)
	body, ok := res.(*methods.QueryConfigTargetBody)
	if !ok || body.Res == nil || body.Res.Returnval == nil || req.Host == nil {
		return res
	}
	h := e.lab.hosts[req.Host.Value]
	if h == nil {
		return res
	}
	target := *body.Res.Returnval
	target.ScsiDisk = nil
	e.lab.mu.Lock()
	defer e.lab.mu.Unlock()
	for _, l := range h.storage.StorageDeviceInfo.ScsiLun {
		d, ok := l.(*types.HostScsiDisk)
		if !ok || (d.LocalDisk != nil && *d.LocalDisk) || e.lab.extentLUNs[d.CanonicalName] != "" {
			continue
		}
		hint, number := "fibreChannel", int32(0)
		for _, lu := range h.storage.StorageDeviceInfo.MultipathInfo.Lun {
			if lu.Lun == d.Key && len(lu.Path) > 0 {
				if _, ok := lu.Path[0].Transport.(*types.HostInternetScsiTargetTransport); ok {
					hint = "internetScsi"
				}
				_, _ = fmt.Sscanf(lu.Path[0].Name[strings.LastIndex(lu.Path[0].Name, ":L")+2:], "%d", &number)
			}
		}
		target.ScsiDisk = append(target.ScsiDisk, types.VirtualMachineScsiDiskDeviceInfo{
			VirtualMachineDiskDeviceInfo: types.VirtualMachineDiskDeviceInfo{
				VirtualMachineTargetInfo: types.VirtualMachineTargetInfo{Name: d.DevicePath},
				Capacity:                 d.Capacity.Block * int64(d.Capacity.BlockSize) / 1024,
			},
			Disk:          d,
			TransportHint: hint,
			LunNumber:     number,
		})
	}
	body.Res.Returnval = &target
	return body
}
