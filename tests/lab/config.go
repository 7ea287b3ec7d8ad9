package main

// Lab file format (YAML). See README.md for the full description.

import (
	"fmt"
	"os"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"
)

const (
	defaultUser     = "administrator@vsphere.local"
	defaultPassword = "Lab-Passw0rd!"
	// the guest login of every VM unless the lab file says otherwise
	defaultGuestUser     = "Administrator"
	defaultGuestPassword = "Guest-Passw0rd!"
)

// LabFile is the root of a lab description: one vCenter, its first
// datacenter (the inline Inventory) and any further ones (Datacenters).
type LabFile struct {
	VCenter     VCenterSpec     `yaml:"vcenter"`
	Credentials CredentialsSpec `yaml:"credentials"`
	// GuestCredentials: the guest login (VMware Tools guest operations) of every VM.
	GuestCredentials CredentialsSpec `yaml:"guestCredentials"`
	Inventory        `yaml:",inline"`
	// Datacenters: more datacenters of the same vCenter, each with an
	// inventory of its own. Their vSphere clusters, port groups and VMs may
	// have the names of another datacenter's (vCenter allows it); hosts,
	// LUNs and datastores are named once in the whole lab.
	Datacenters []Inventory `yaml:"datacenters"`
	// ScaleSecondDatacenter false: --scale adds no second datacenter (scale.go); default true.
	ScaleSecondDatacenter *bool `yaml:"scaleSecondDatacenter"`
	// DiskLocks: a VMDK open in a powered-on VM is locked as ESXi locks it
	// (vsphere8.go): default false.
	DiskLocks bool        `yaml:"diskLocks"`
	Faults    []FaultSpec `yaml:"faults"`
}

// Inventory is what one datacenter holds.
type Inventory struct {
	Datacenter string `yaml:"datacenter"`
	// LocalDatastores gives every host a local VMFS datastore "<shortname>-local" (default true).
	LocalDatastores *bool           `yaml:"localDatastores"`
	PortGroups      []PortGroupSpec `yaml:"portgroups"`
	Clusters        []ClusterSpec   `yaml:"clusters"`
	LUNs            []LUNSpec       `yaml:"luns"`
	Datastores      []DatastoreSpec `yaml:"datastores"`
	VMs             []VMSpec        `yaml:"vms"`
}

// inventories: the lab's datacenters, the first one first.
func (lf *LabFile) inventories() []*Inventory {
	out := []*Inventory{&lf.Inventory}
	for i := range lf.Datacenters {
		out = append(out, &lf.Datacenters[i])
	}
	return out
}

type VCenterSpec struct {
	Version    string `yaml:"version"`
	Build      string `yaml:"build"`
	APIVersion string `yaml:"apiVersion"`
}

type CredentialsSpec struct {
	Username string `yaml:"username"`
	Password string `yaml:"password"`
}

// PortGroupSpec is a standard vSwitch port group created on every host (or on
// the hosts of the listed clusters).
type PortGroupSpec struct {
	// Name is the port group's name on the hosts, as typed; once loaded, the
	// escaped name of the datacenter Network (Typed keeps the typed one).
	Name     string   `yaml:"name"`
	Typed    string   `yaml:"-"`
	VLAN     int32    `yaml:"vlan"`
	VSwitch  string   `yaml:"vswitch"`
	Clusters []string `yaml:"clusters"`
}

type ClusterSpec struct {
	Name  string     `yaml:"name"`
	DRS   *bool      `yaml:"drs"`
	HA    *bool      `yaml:"ha"`
	Hosts []HostSpec `yaml:"hosts"`
}

type HostSpec struct {
	Name    string `yaml:"name"`
	Version string `yaml:"version"`
	Build   string `yaml:"build"`
	// PatchLevel: config.product.patchLevel (API 7.0.2); default empty.
	PatchLevel string `yaml:"patchLevel"`
	// HBAs: presets "qlogic", "emulex", "iscsi" (software iSCSI), or full objects.
	HBAs []HBASpec `yaml:"hbas"`
	// Options overrides/extends the host advanced options (Disk.ResetOnFailure ...).
	Options map[string]any `yaml:"options"`
}

// HBASpec accepts either a preset name (scalar) or a mapping.
type HBASpec struct {
	Preset string `yaml:"preset"`
	Kind   string `yaml:"kind"` // fc | iscsi | block | sas
	Vendor string `yaml:"vendor"`
	Model  string `yaml:"model"`
	Driver string `yaml:"driver"`
}

func (h *HBASpec) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		h.Preset = n.Value
		return nil
	}
	type plain HBASpec
	return n.Decode((*plain)(h))
}

// LUNSpec is a SAN LUN presented by the array to a set of hosts.
type LUNSpec struct {
	NAA         string  `yaml:"naa"`
	UUID        string  `yaml:"uuid"`
	CapacityGiB float64 `yaml:"capacityGiB"`
	Vendor      string  `yaml:"vendor"`
	Model       string  `yaml:"model"`
	// Transport: fc (default) or iscsi: the adapters through which hosts see the LUN.
	Transport string `yaml:"transport"`
	// SectorFormat: 512n (default), 512e or 4kn: the LUN's scsiDiskType
	// (native512, emulated512, native4k) and its VMFS extent's.
	SectorFormat string   `yaml:"sectorFormat"`
	LunNumber    *int32   `yaml:"lunNumber"`
	Hosts        []string `yaml:"hosts"`
	Clusters     []string `yaml:"clusters"`
	// PerenniallyReserved: true/false for every host that sees the LUN, or a list of host names.
	PerenniallyReserved any    `yaml:"perenniallyReserved"`
	DisplayName         string `yaml:"displayName"`
}

type DatastoreSpec struct {
	Name string `yaml:"name"`
	// Type: vmfs (on LUN) or nfs.
	Type string `yaml:"type"`
	LUN  string `yaml:"lun"`
	// VMFSVersion: 6 (default) or 5, info.vmfs.majorVersion.
	VMFSVersion int      `yaml:"vmfsVersion"`
	RemoteHost  string   `yaml:"remoteHost"`
	RemotePath  string   `yaml:"remotePath"`
	Hosts       []string `yaml:"hosts"`
	Clusters    []string `yaml:"clusters"`
}

type VMSpec struct {
	// Name as typed; once loaded, escaped as vCenter returns it (Typed keeps the typed one).
	Name         string  `yaml:"name"`
	Typed        string  `yaml:"-"`
	Host         string  `yaml:"host"`
	Datastore    string  `yaml:"datastore"`
	PowerState   string  `yaml:"powerState"`
	GuestID      string  `yaml:"guestId"`
	Version      string  `yaml:"version"`
	CPUs         int32   `yaml:"cpus"`
	MemoryMB     int64   `yaml:"memoryMB"`
	DiskGiB      float64 `yaml:"diskGiB"`
	NIC          string  `yaml:"nic"`
	Network      string  `yaml:"network"`
	ToolsRunning *bool   `yaml:"toolsRunning"`
	// SCSIController: lsilogic-sas (default), pvscsi, lsilogic.
	SCSIController string `yaml:"scsiController"`
	// GuestUser/GuestPassword override guestCredentials for this VM.
	GuestUser     string `yaml:"guestUser"`
	GuestPassword string `yaml:"guestPassword"`
	// GuestOperations false: the guest refuses guest operations (OperationDisabledByGuest).
	GuestOperations *bool `yaml:"guestOperations"`
	// DiskTimeout seeds HKLM\System\CurrentControlSet\Services\Disk\TimeOutValue
	// in the guest: a number as REG_DWORD, a string as REG_SZ; absent by default.
	DiskTimeout any `yaml:"diskTimeout"`
	// datacenter: the (escaped) name of the VM's datacenter, once built
	datacenter string
}

var naaRE = regexp.MustCompile(`^naa\.[0-9a-f]{32}$`)

func loadLabFile(path string) (*LabFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	lf := new(LabFile)
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(lf); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return lf, nil
}

func boolOr(b *bool, def bool) bool {
	if b == nil {
		return def
	}
	return *b
}

// shortName returns the first label of a host name.
func shortName(host string) string {
	if i := strings.IndexByte(host, '.'); i > 0 {
		return host[:i]
	}
	return host
}

// applyDefaults fills unset fields and validates cross references.
func (lf *LabFile) applyDefaults() error {
	if lf.Credentials.Username == "" {
		lf.Credentials.Username = defaultUser
	}
	if lf.Credentials.Password == "" {
		lf.Credentials.Password = defaultPassword
	}
	if lf.GuestCredentials.Username == "" {
		lf.GuestCredentials.Username = defaultGuestUser
	}
	if lf.GuestCredentials.Password == "" {
		lf.GuestCredentials.Password = defaultGuestPassword
	}
	if lf.VCenter.Version == "" {
		lf.VCenter.Version = "8.0.2"
	}
	if lf.VCenter.Build == "" {
		lf.VCenter.Build = "22617221"
	}
	if lf.VCenter.APIVersion == "" {
		lf.VCenter.APIVersion = apiVersionFor(lf.VCenter.Version)
	}
	names := labNames{hosts: map[string]bool{}, luns: map[string]bool{}, datastores: map[string]bool{}}
	datacenters := map[string]bool{}
	for i, inv := range lf.inventories() {
		if inv.Datacenter == "" && i == 0 {
			inv.Datacenter = "DC1"
		}
		if inv.Datacenter == "" {
			return fmt.Errorf("datacenters[%d]: datacenter (its name) missing", i-1)
		}
		if datacenters[inv.Datacenter] {
			return fmt.Errorf("datacenter %q defined twice", inv.Datacenter)
		}
		datacenters[inv.Datacenter] = true
		if err := inv.applyDefaults(names); err != nil {
			if i > 0 {
				return fmt.Errorf("datacenter %s: %w", inv.Datacenter, err)
			}
			return err
		}
	}
	for i := range lf.Faults {
		if err := lf.Faults[i].validate(); err != nil {
			return fmt.Errorf("faults[%d]: %w", i, err)
		}
	}
	return nil
}

// labNames: the names the lab holds once, whatever the datacenter.
type labNames struct {
	hosts      map[string]bool
	luns       map[string]bool
	datastores map[string]bool
}

// applyDefaults fills unset fields of one datacenter's inventory and
// validates its cross references (within the datacenter).
func (lf *Inventory) applyDefaults(names labNames) error {
	if lf.LocalDatastores == nil {
		lf.LocalDatastores = new(bool)
		*lf.LocalDatastores = true
	}

	hosts := map[string]*HostSpec{}
	clusters := map[string]*ClusterSpec{}
	for i := range lf.Clusters {
		c := &lf.Clusters[i]
		if c.Name == "" {
			return fmt.Errorf("cluster %d: name missing", i)
		}
		if clusters[c.Name] != nil {
			return fmt.Errorf("cluster %q defined twice", c.Name)
		}
		clusters[c.Name] = c
		for j := range c.Hosts {
			h := &c.Hosts[j]
			if h.Name == "" {
				return fmt.Errorf("cluster %s: host %d: name missing", c.Name, j)
			}
			if names.hosts[h.Name] {
				return fmt.Errorf("host %q defined twice", h.Name)
			}
			hosts[h.Name] = h
			names.hosts[h.Name] = true
			if h.Version == "" {
				h.Version = "8.0.2"
			}
			if h.Build == "" {
				h.Build = esxiBuildFor(h.Version)
			}
			if len(h.HBAs) == 0 {
				h.HBAs = []HBASpec{{Preset: "qlogic"}, {Preset: "qlogic"}}
			}
			for k := range h.HBAs {
				if err := h.HBAs[k].resolve(); err != nil {
					return fmt.Errorf("host %s: %w", h.Name, err)
				}
			}
		}
	}

	resolveHosts := func(what string, names, cls []string) ([]string, error) {
		var out []string
		seen := map[string]bool{}
		add := func(n string) {
			if !seen[n] {
				seen[n] = true
				out = append(out, n)
			}
		}
		for _, n := range names {
			if hosts[n] == nil {
				// accept a short name
				found := ""
				for full := range hosts {
					if shortName(full) == n {
						found = full
					}
				}
				if found == "" {
					return nil, fmt.Errorf("%s: unknown host %q", what, n)
				}
				n = found
			}
			add(n)
		}
		for _, cn := range cls {
			c := clusters[cn]
			if c == nil {
				return nil, fmt.Errorf("%s: unknown cluster %q", what, cn)
			}
			for _, h := range c.Hosts {
				add(h.Name)
			}
		}
		return out, nil
	}

	for i := range lf.PortGroups {
		pg := &lf.PortGroups[i]
		if pg.VSwitch == "" {
			pg.VSwitch = "vSwitch0"
		}
		for _, cn := range pg.Clusters {
			if clusters[cn] == nil {
				return fmt.Errorf("portgroup %s: unknown cluster %q", pg.Name, cn)
			}
		}
	}

	luns := map[string]*LUNSpec{}
	for i := range lf.LUNs {
		l := &lf.LUNs[i]
		l.NAA = strings.ToLower(l.NAA)
		if !naaRE.MatchString(l.NAA) {
			return fmt.Errorf("lun %q: canonical name must be naa. followed by 32 hex digits", l.NAA)
		}
		if names.luns[l.NAA] {
			return fmt.Errorf("lun %q defined twice", l.NAA)
		}
		luns[l.NAA] = l
		names.luns[l.NAA] = true
		if l.CapacityGiB == 0 {
			l.CapacityGiB = 10
		}
		if l.Vendor == "" {
			l.Vendor = "DGC"
		}
		if l.Model == "" {
			l.Model = "VRAID"
		}
		if l.Transport == "" {
			l.Transport = "fc"
		}
		if l.Transport != "fc" && l.Transport != "iscsi" {
			return fmt.Errorf("lun %s: transport must be fc or iscsi", l.NAA)
		}
		if l.SectorFormat == "" {
			l.SectorFormat = "512n"
		}
		if sectorDiskType[l.SectorFormat] == "" {
			return fmt.Errorf("lun %s: sectorFormat must be 512n, 512e or 4kn", l.NAA)
		}
		hs, err := resolveHosts("lun "+l.NAA, l.Hosts, l.Clusters)
		if err != nil {
			return err
		}
		l.Hosts, l.Clusters = hs, nil
		for _, hn := range hs {
			if !hosts[hn].hasTransport(l.Transport) {
				return fmt.Errorf("lun %s: host %s has no %s adapter", l.NAA, hn, l.Transport)
			}
		}
		switch v := l.PerenniallyReserved.(type) {
		case nil, bool:
		case []any:
			for _, x := range v {
				s, ok := x.(string)
				if !ok {
					return fmt.Errorf("lun %s: perenniallyReserved: expected host names", l.NAA)
				}
				if _, err := resolveHosts("lun "+l.NAA, []string{s}, nil); err != nil {
					return err
				}
			}
		default:
			return fmt.Errorf("lun %s: perenniallyReserved must be a bool or a list of hosts", l.NAA)
		}
	}

	var datastores []string // the lab keeps a datastore's files and kind by name
	defer func() {
		for _, n := range datastores {
			names.datastores[n] = true
		}
	}()
	for i := range lf.Datastores {
		d := &lf.Datastores[i]
		if d.Name == "" {
			return fmt.Errorf("datastore %d: name missing", i)
		}
		if contains(datastores, d.Name) {
			return fmt.Errorf("datastore %q defined twice", d.Name)
		}
		if names.datastores[d.Name] {
			return fmt.Errorf("datastore %q: another datacenter has a datastore of that name", d.Name)
		}
		datastores = append(datastores, d.Name)
		if d.Type == "" {
			d.Type = "vmfs"
		}
		switch d.Type {
		case "vmfs":
			l := luns[strings.ToLower(d.LUN)]
			if l == nil {
				return fmt.Errorf("datastore %s: unknown lun %q", d.Name, d.LUN)
			}
			d.LUN = l.NAA
			if d.VMFSVersion == 0 {
				d.VMFSVersion = 6
			}
			if d.VMFSVersion != 5 && d.VMFSVersion != 6 {
				return fmt.Errorf("datastore %s: vmfsVersion must be 5 or 6", d.Name)
			}
			if len(d.Hosts) == 0 && len(d.Clusters) == 0 {
				d.Hosts = l.Hosts
			}
		case "nfs":
			if d.RemoteHost == "" {
				d.RemoteHost = "nas01.lab.local"
			}
			if d.RemotePath == "" {
				d.RemotePath = "/export/" + strings.ToLower(d.Name)
			}
			if len(d.Hosts) == 0 && len(d.Clusters) == 0 {
				for n := range hosts {
					d.Hosts = append(d.Hosts, n)
				}
			}
		default:
			return fmt.Errorf("datastore %s: type must be vmfs or nfs", d.Name)
		}
		hs, err := resolveHosts("datastore "+d.Name, d.Hosts, d.Clusters)
		if err != nil {
			return err
		}
		d.Hosts, d.Clusters = hs, nil
	}

	for i := range lf.VMs {
		v := &lf.VMs[i]
		if v.Name == "" {
			return fmt.Errorf("vm %d: name missing", i)
		}
		hs, err := resolveHosts("vm "+v.Name, []string{v.Host}, nil)
		if err != nil {
			return err
		}
		v.Host = hs[0]
		if v.Datastore == "" {
			v.Datastore = shortName(v.Host) + "-local"
		}
		if v.PowerState == "" {
			v.PowerState = "poweredOn"
		}
		if v.PowerState != "poweredOn" && v.PowerState != "poweredOff" {
			return fmt.Errorf("vm %s: powerState must be poweredOn or poweredOff", v.Name)
		}
		if v.GuestID == "" {
			v.GuestID = "windows8Server64Guest"
		}
		if v.Version == "" {
			v.Version = "vmx-13"
		}
		if v.CPUs == 0 {
			v.CPUs = 2
		}
		if v.MemoryMB == 0 {
			v.MemoryMB = 4096
		}
		if v.DiskGiB == 0 {
			v.DiskGiB = 40
		}
		if v.NIC == "" {
			v.NIC = "vmxnet3"
		}
		if v.Network == "" {
			v.Network = "Production"
		}
		if v.SCSIController == "" {
			v.SCSIController = "lsilogic-sas"
		}
		switch t := v.DiskTimeout.(type) {
		case nil:
		case int:
			if t < 0 || t > 0xffffffff {
				return fmt.Errorf("vm %s: diskTimeout %d is not a REG_DWORD", v.Name, t)
			}
		case string:
			if t == "" {
				return fmt.Errorf("vm %s: diskTimeout: an empty string seeds nothing; leave it out", v.Name)
			}
		default:
			return fmt.Errorf("vm %s: diskTimeout must be a number (REG_DWORD) or a string (REG_SZ)", v.Name)
		}
	}
	lf.escapeNames()
	return nil
}

// escapeNames stores every entity name of the lab file, and every reference
// to one (a VM's host, datastore and network, a LUN's hosts ...), escaped as
// vCenter returns it (names.go): a lab file holds names as a user types
// them. The port groups' names on the hosts and the VMs' typed names stay in
// Typed.
func (lf *Inventory) escapeNames() {
	all := func(names []string) {
		for i := range names {
			names[i] = escapeName(names[i])
		}
	}
	lf.Datacenter = escapeName(lf.Datacenter)
	for i := range lf.PortGroups {
		pg := &lf.PortGroups[i]
		if pg.Typed == "" {
			pg.Typed = pg.Name
		}
		pg.Name = escapeName(pg.Typed)
		all(pg.Clusters)
	}
	for i := range lf.Clusters {
		c := &lf.Clusters[i]
		c.Name = escapeName(c.Name)
		for j := range c.Hosts {
			c.Hosts[j].Name = escapeName(c.Hosts[j].Name)
		}
	}
	for i := range lf.LUNs {
		l := &lf.LUNs[i]
		all(l.Hosts)
		all(l.Clusters)
		if list, ok := l.PerenniallyReserved.([]any); ok {
			for k, x := range list {
				if s, ok := x.(string); ok {
					list[k] = escapeName(s)
				}
			}
		}
	}
	for i := range lf.Datastores {
		d := &lf.Datastores[i]
		d.Name = escapeName(d.Name)
		all(d.Hosts)
		all(d.Clusters)
	}
	for i := range lf.VMs {
		v := &lf.VMs[i]
		if v.Typed == "" {
			v.Typed = v.Name
		}
		v.Name = escapeName(v.Typed)
		v.Host = escapeName(v.Host)
		v.Datastore = escapeName(v.Datastore)
		v.Network = escapeName(v.Network)
	}
}

func (h *HostSpec) hasTransport(t string) bool {
	for _, a := range h.HBAs {
		if a.Kind == t {
			return true
		}
	}
	return false
}

// HBA presets, as ESXi reports them.
var hbaPresets = map[string]HBASpec{
	"qlogic": {Kind: "fc", Vendor: "QLogic Corp", Model: "ISP2532-based 8Gb Fibre Channel to PCI Express HBA", Driver: "qlnativefc"},
	"emulex": {Kind: "fc", Vendor: "Emulex Corporation", Model: "LPe12000 8Gb Fibre Channel Host Adapter", Driver: "lpfc"},
	"iscsi":  {Kind: "iscsi", Vendor: "VMware", Model: "iSCSI Software Adapter", Driver: "iscsi_vmk"},
}

func (h *HBASpec) resolve() error {
	if h.Preset != "" {
		p, ok := hbaPresets[strings.ToLower(h.Preset)]
		if !ok {
			return fmt.Errorf("unknown HBA preset %q (qlogic, emulex, iscsi)", h.Preset)
		}
		preset := h.Preset
		*h = p
		h.Preset = preset
		return nil
	}
	switch h.Kind {
	case "fc", "iscsi", "block", "sas":
	default:
		return fmt.Errorf("HBA kind must be fc, iscsi, block or sas, got %q", h.Kind)
	}
	if h.Model == "" || h.Driver == "" {
		return fmt.Errorf("HBA %s: model and driver required", h.Kind)
	}
	return nil
}

func apiVersionFor(version string) string {
	switch {
	case strings.HasPrefix(version, "8.0.2"):
		return "8.0.2.0"
	case strings.HasPrefix(version, "8.0.3"):
		return "8.0.3.0"
	case strings.HasPrefix(version, "8.0.1"):
		return "8.0.1.0"
	case strings.HasPrefix(version, "8.0"):
		return "8.0.0.1"
	case strings.HasPrefix(version, "7.0.3"):
		return "7.0.3.0"
	case strings.HasPrefix(version, "7.0"):
		return "7.0.0.0"
	case strings.HasPrefix(version, "6.7"):
		return "6.7.3"
	}
	return version
}

// sectorDiskType: a LUN's sector format as ESXi's scsiDiskType.
var sectorDiskType = map[string]string{"512n": "native512", "512e": "emulated512", "4kn": "native4k"}

// esxiBuildFor: the GA build of each ESXi release (8.0.2 is 8.0 Update 2,
// 8.0.3 8.0 Update 3, 7.0.3 7.0 Update 3).
func esxiBuildFor(version string) string {
	switch version {
	case "8.0.3":
		return "24022510"
	case "8.0.2":
		return "22380479"
	case "8.0.1":
		return "21495797"
	case "8.0.0":
		return "20513097"
	case "7.0.3":
		return "21930508"
	case "7.0.2":
		return "17630552"
	case "6.7.0":
		return "17700523"
	}
	return "10000000"
}
