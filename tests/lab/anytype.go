package main

import (
	"reflect"

	"github.com/vmware/govmomi/vim25/types"
)

// pyVmomi writes a managed object held in an xsd:anyType field (the removeKey of a DRS or
// HA override's remove spec) as xsi:type="ManagedObject", which vCenter reads as a
// ManagedObjectReference; the simulator knows no such type and decodes nil, then panics.
func init() {
	types.Add("ManagedObject", reflect.TypeOf((*types.ManagedObjectReference)(nil)).Elem())
}
