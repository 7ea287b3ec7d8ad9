package main

import "fmt"

// addFleet appends n generated vSphere clusters to the lab:
//
//	cluster   Fleet-NN
//	hosts     esx-fNN-1.lab.local, esx-fNN-2.lab.local (ESXi 8.0.2, two QLogic HBAs)
//	LUNs      naa.60060160123456780000000000NN0000 (backs SAN-VMFS-NN, 500 GiB)
//	          naa.60060160123456780000000000NN0001, ...0002 (shared, 10 GiB)
//	datastore SAN-VMFS-NN
//	VMs       FNN-NODE1 on host 1, FNN-NODE2 on host 2, powered on
//
// NN is the two-digit, zero-padded cluster number (01..99). The port groups
// Production and Heartbeat are ensured on every host.
func addFleet(lf *LabFile, n int) error {
	if n < 1 || n > 99 {
		return fmt.Errorf("--fleet must be between 1 and 99")
	}
	ensurePG := func(name string) {
		for i, pg := range lf.PortGroups {
			if pg.Name == name {
				// a port group restricted to some clusters is widened to all hosts
				lf.PortGroups[i].Clusters = nil
				return
			}
		}
		lf.PortGroups = append(lf.PortGroups, PortGroupSpec{Name: name})
	}
	ensurePG("Production")
	ensurePG("Heartbeat")

	for i := 1; i <= n; i++ {
		nn := fmt.Sprintf("%02d", i)
		cluster := "Fleet-" + nn
		h1 := fmt.Sprintf("esx-f%s-1.lab.local", nn)
		h2 := fmt.Sprintf("esx-f%s-2.lab.local", nn)
		t := true
		lf.Clusters = append(lf.Clusters, ClusterSpec{
			Name: cluster, DRS: &t, HA: &t,
			Hosts: []HostSpec{{Name: h1, Version: "8.0.2"}, {Name: h2, Version: "8.0.2"}},
		})
		base := "naa.60060160123456780000000000" + nn
		lf.LUNs = append(lf.LUNs,
			LUNSpec{NAA: base + "0000", CapacityGiB: 500, Clusters: []string{cluster}},
			LUNSpec{NAA: base + "0001", CapacityGiB: 10, Clusters: []string{cluster}},
			LUNSpec{NAA: base + "0002", CapacityGiB: 10, Clusters: []string{cluster}},
		)
		ds := "SAN-VMFS-" + nn
		lf.Datastores = append(lf.Datastores, DatastoreSpec{Name: ds, Type: "vmfs", LUN: base + "0000"})
		lf.VMs = append(lf.VMs,
			VMSpec{Name: "F" + nn + "-NODE1", Host: h1, Datastore: ds},
			VMSpec{Name: "F" + nn + "-NODE2", Host: h2, Datastore: ds},
		)
	}
	return nil
}
