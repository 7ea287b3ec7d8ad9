package main

import (
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func labFileOf(t *testing.T, text string) (*LabFile, error) {
	t.Helper()
	lf := new(LabFile)
	dec := yaml.NewDecoder(strings.NewReader(text))
	dec.KnownFields(true)
	if err := dec.Decode(lf); err != nil {
		t.Fatal(err)
	}
	return lf, lf.applyDefaults()
}

const twoDatacenters = `
clusters: [{name: Cluster-A, hosts: [{name: esx-a1.lab.local}]}]
vms: [{name: SQLNODE1, host: esx-a1}]
datacenters:
  - datacenter: DC2
    clusters: [{name: Cluster-A, hosts: [{name: HOST}]}]
    vms: [{name: SQLNODE1, host: VMHOST}]
    datastores: [{name: DATASTORE, type: nfs}]
`

func TestSecondDatacenterRepeatsNamesOfClustersAndVMsOnly(t *testing.T) {
	ok := strings.NewReplacer("VMHOST", "esx-b1", "HOST", "esx-b1.lab.local", "DATASTORE", "NFS-01")
	lf, err := labFileOf(t, ok.Replace(twoDatacenters))
	if err != nil {
		t.Fatal(err)
	}
	if lf.Datacenter != "DC1" || len(lf.Datacenters) != 1 || lf.Datacenters[0].Datacenter != "DC2" {
		t.Fatalf("datacenters %q, %+v", lf.Datacenter, lf.Datacenters)
	}
	if v := lf.Datacenters[0].VMs[0]; v.Host != "esx-b1.lab.local" || v.Datastore != "esx-b1-local" || v.Network != "Production" {
		t.Errorf("DC2's VM not given its datacenter's defaults: %+v", v)
	}
	if ds := lf.Datacenters[0].Datastores[0]; len(ds.Hosts) != 1 || ds.Hosts[0] != "esx-b1.lab.local" {
		t.Errorf("an NFS datastore of DC2 is mounted on DC2's hosts only: %v", ds.Hosts)
	}
	for _, c := range []struct{ host, vmHost, datastore, want string }{
		{"esx-a1.lab.local", "esx-a1", "NFS-01", `host "esx-a1.lab.local" defined twice`},
		{"esx-b1.lab.local", "esx-a1", "NFS-01", `datacenter DC2: vm SQLNODE1: unknown host "esx-a1"`},
		{"esx-b1.lab.local", "esx-b1", "esx-a1-local", ""},
	} {
		r := strings.NewReplacer("VMHOST", c.vmHost, "HOST", c.host, "DATASTORE", c.datastore)
		_, err := labFileOf(t, r.Replace(twoDatacenters))
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%+v: %v", c, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%+v: got %v, want %q", c, err, c.want)
		}
	}
	dup := strings.Replace(ok.Replace(twoDatacenters), "vms: [{name: SQLNODE1, host: esx-a1}]",
		"vms: [{name: SQLNODE1, host: esx-a1}]\ndatastores: [{name: NFS-01, type: nfs}]", 1)
	if _, err := labFileOf(t, dup); err == nil || !strings.Contains(err.Error(), `datastore "NFS-01": another datacenter has a datastore of that name`) {
		t.Errorf("a datastore name in two datacenters: %v", err)
	}
	twice := strings.Replace(ok.Replace(twoDatacenters), "datastores: [{name: NFS-01, type: nfs}]",
		"datastores: [{name: NFS-01, type: nfs}, {name: NFS-01, type: nfs}]", 1)
	if _, err := labFileOf(t, twice); err == nil || !strings.Contains(err.Error(), `datacenter DC2: datastore "NFS-01" defined twice`) {
		t.Errorf("a datastore name twice in one datacenter (the simulator would crash): %v", err)
	}
}

func TestScaleAddsASecondDatacenterUnlessTurnedOff(t *testing.T) {
	for _, off := range []bool{false, true} {
		lf, err := labFileOf(t, "clusters: [{name: Cluster-A, hosts: [{name: esx-a1.lab.local}]}]\nvms: [{name: SQLNODE1, host: esx-a1}]\n")
		if err != nil {
			t.Fatal(err)
		}
		if off {
			lf.ScaleSecondDatacenter = new(bool)
		}
		if err := addScale(lf, "small", len(lf.Clusters)); err != nil {
			t.Fatal(err)
		}
		if err := lf.applyDefaults(); err != nil {
			t.Fatal(err)
		}
		if off {
			if len(lf.Datacenters) != 0 {
				t.Errorf("scaleSecondDatacenter: false, yet %d more datacenters", len(lf.Datacenters))
			}
			continue
		}
		dc2 := lf.Datacenters[0]
		if dc2.Clusters[0].Name != "Cluster-A" || dc2.Clusters[0].Hosts[0].Name != "dc2-esx-a1.lab.local" {
			t.Errorf("DC2's first cluster: %+v", dc2.Clusters[0])
		}
		if len(dc2.Clusters[0].Hosts[0].Options) < 1000 {
			t.Errorf("DC2's hosts lack the profile's options")
		}
		if dc2.VMs[0].Name != "SQLNODE1" || dc2.VMs[0].Host != "dc2-esx-a1.lab.local" {
			t.Errorf("DC2's first VM: %+v", dc2.VMs[0])
		}
		if got := len(dc2.VMs); got != 1+scaleProfiles["small"].dc2.vms {
			t.Errorf("DC2 holds %d VMs", got)
		}
	}
}
