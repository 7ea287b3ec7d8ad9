package main

import (
	"context"
	"sort"
	"sync"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/types"
)

// Lab is the running simulated vCenter with its ESXi-like additions.
type Lab struct {
	file   *LabFile
	runDir string

	model *simulator.Model
	svc   *simulator.Service
	reg   *simulator.Registry
	// client is an in-process vim25 client, used to build the inventory.
	client *vim25.Client

	mu sync.Mutex
	// hosts by HostSystem moref value
	hosts map[string]*labHost
	// storage systems by moref value, mapping back to their host
	storageSystems map[string]*labHost
	// datastore systems by moref value, mapping back to their host
	datastoreSystems map[string]*labHost
	// host advanced option managers by moref value
	hostOptions map[string]*labHost
	// toolsRunning flag per VM moref value
	tools map[string]bool
	// the lab file's VMs by moref value
	vmSpecs map[string]*VMSpec
	// datastore kinds by datastore name ("vmfs", "nfs")
	dsKind map[string]string
	// local directories backing the datastores, by datastore name
	dsDirs map[string]string
	// LUN canonical names used as VMFS extents
	extentLUNs map[string]string

	faults *faultEngine
	// traffic counts the SOAP bytes per method (traffic.go)
	traffic *trafficCounter
	guests  *guestOps
}

// guestLogin is the user name and password the VM's guest accepts.
func (l *Lab) guestLogin(v *VMSpec) (string, string) {
	user, password := l.file.GuestCredentials.Username, l.file.GuestCredentials.Password
	if v.GuestUser != "" {
		user = v.GuestUser
	}
	if v.GuestPassword != "" {
		password = v.GuestPassword
	}
	return user, password
}

// labHost is the lab's view of one ESXi host.
type labHost struct {
	spec    *HostSpec
	cluster string
	ref     types.ManagedObjectReference
	obj     *simulator.HostSystem
	storage *simulator.HostStorageSystem
	// luns by uuid, pointing into storage.StorageDeviceInfo.ScsiLun
	luns map[string]*types.HostScsiDisk
}

// sortedHosts: every host, in moref order.
func (l *Lab) sortedHosts() []*labHost {
	var out []*labHost
	for _, h := range l.hosts {
		out = append(out, h)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ref.Value < out[j].ref.Value })
	return out
}

// labContext returns a fresh simulator context for work done outside a SOAP
// call (control API, fault injection). It carries its own lock identity.
func (l *Lab) labContext() *simulator.Context {
	return &simulator.Context{
		Context: context.Background(),
		Map:     l.reg,
		Session: &simulator.Session{
			UserSession: types.UserSession{Key: "lab-control", UserName: "lab"},
			Registry:    simulator.NewRegistry(),
			Map:         l.reg,
		},
	}
}

// findLUN returns the host's disk matching a device path, canonical name,
// vml name or uuid.
func (h *labHost) findLUN(deviceName, uuid string) *types.HostScsiDisk {
	if uuid != "" {
		if d := h.luns[uuid]; d != nil {
			return d
		}
	}
	if deviceName == "" {
		return nil
	}
	for _, d := range h.luns {
		if deviceName == d.DevicePath || deviceName == d.CanonicalName || deviceName == d.DeviceName {
			return d
		}
		if deviceName == "/vmfs/devices/disks/vml."+d.Uuid || deviceName == "vml."+d.Uuid {
			return d
		}
	}
	return nil
}
