package main

// Events.
//
// vCenter's QueryEvents answers up to 1000 matching events when the filter
// sets no maxCount; the simulator answers its collector page size, 10: the
// lab asks for 1000.
//
// Event and task history collectors.
//
// vCenter's RewindCollector moves the scrollable view before the oldest item,
// so that ReadNextEvents returns the oldest first. The simulator positions
// the view on the oldest item and its next read starts after it, losing one
// event: the lab clears the position instead.

import (
	"reflect"
	"unsafe"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

func init() {
	f := func(l *Lab, ctx *simulator.Context, m *simulator.Method) mo.Reference {
		obj := ctx.Session.Get(m.This)
		if obj == nil {
			return nil
		}
		v := reflect.ValueOf(obj)
		if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
			return nil
		}
		hc, ok := v.Elem().FieldByName("HistoryCollector").Interface().(*simulator.HistoryCollector)
		if !ok || hc == nil {
			return nil
		}
		return &collectorHandler{obj: obj, hc: hc}
	}
	intercept("EventManager", "QueryEvents", func(l *Lab, ctx *simulator.Context, m *simulator.Method) mo.Reference {
		if em, ok := ctx.Map.Get(m.This).(*simulator.EventManager); ok {
			return &eventManagerHandler{EventManager: em}
		}
		return nil
	})
	intercept("EventHistoryCollector", "RewindCollector", f)
	intercept("TaskHistoryCollector", "RewindCollector", f)
}

type collectorHandler struct {
	obj mo.Reference
	hc  *simulator.HistoryCollector
}

func (c *collectorHandler) Reference() types.ManagedObjectReference {
	return c.obj.Reference()
}

func (c *collectorHandler) RewindCollector(ctx *simulator.Context, req *types.RewindCollector) soap.HasFault {
	res := c.hc.RewindCollector(ctx, req)
	pos := reflect.ValueOf(c.hc).Elem().FieldByName("pos")
	if pos.IsValid() {
		reflect.NewAt(pos.Type(), unsafe.Pointer(pos.UnsafeAddr())).Elem().Set(reflect.Zero(pos.Type()))
	}
	return res
}

type eventManagerHandler struct {
	*simulator.EventManager
}

func (e *eventManagerHandler) QueryEvents(ctx *simulator.Context, req *types.QueryEvents) soap.HasFault {
	if req.Filter.MaxCount == 0 {
		req.Filter.MaxCount = 1000
	}
	return e.EventManager.QueryEvents(ctx, req)
}
