package main

// No client request ends the lab.
//
// A Go panic in a task's work (the simulator runs tasks on goroutines of
// their own) ends the whole process, with every session and every test's
// inventory; one while serving a SOAP call drops the client's connection
// (net/http recovers handler panics) and leaves the objects it locked
// locked, so that every later call on them hangs. The lab recovers both:
//
//   - guard wraps the simulator's SOAP handler: a panic while serving a call
//     answers a SOAP fault SystemError whose reason names the method and
//     the object ("The lab failed serving ReconfigVM_Task on vm-52: …");
//   - guardTask (tasks.go) wraps every task's work, which the simulator runs
//     on a goroutine of its own: a panic there ends the task in SystemError.
//
// Both log the panic with its stack on stderr. The simulator takes object
// locks without defer, so a panic leaves the locks its call held: the lab
// releases those held under the call's context (the lock identity the
// simulator uses), once the call's own tasks and request are over, keeping
// the lock each still-running task of that call hands back when it ends.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"reflect"
	"runtime/debug"
	"sync"
	"time"
	"unsafe"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

// recoverWait bounds how long a recovery waits for the other work of the
// same call (its request, its other tasks) before releasing locks.
const recoverWait = 5 * time.Second

// unexported is a settable view of an unexported field of the struct p
// points to; invalid when the field does not exist.
func unexported(p any, name string) reflect.Value {
	v := reflect.ValueOf(p)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return reflect.Value{}
	}
	f := v.Elem().FieldByName(name)
	if !f.IsValid() {
		return f
	}
	return reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem()
}

// unexportedValue reads an unexported pointer or interface field.
func unexportedValue[T any](p any, name string) T {
	var zero T
	v := unexported(p, name)
	if !v.IsValid() || v.IsNil() {
		return zero
	}
	x, _ := v.Interface().(T)
	return x
}

// requestOf is the HTTP request of a simulator context (nil for in-process calls).
func requestOf(ctx *simulator.Context) *http.Request {
	return unexportedValue[*http.Request](ctx, "req")
}

// taskContext is the context a task was started with (nil for tasks
// registered without Task.Run).
func taskContext(t *simulator.Task) *simulator.Context {
	return unexportedValue[*simulator.Context](t, "ctx")
}

// ---- the SOAP handler -----------------------------------------------------------

// labResponse notes whether an answer has been started.
type labResponse struct {
	http.ResponseWriter
	wrote bool
}

func (w *labResponse) WriteHeader(code int) {
	w.wrote = true
	w.ResponseWriter.WriteHeader(code)
}

func (w *labResponse) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

func (w *labResponse) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	w.wrote = true
	hj, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, http.ErrNotSupported
	}
	return hj.Hijack()
}

// bufferBody reads a request's body and leaves it to be read again;
// a body that cannot be read answers 400.
func bufferBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, err := io.ReadAll(r.Body)
	_ = r.Body.Close()
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return nil, false
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	return body, true
}

func contextWithCall(r *http.Request, cs *callState) context.Context {
	return context.WithValue(r.Context(), callKey{}, cs)
}

// guard is the outermost SOAP handler: it gives the request its callState
// and turns a panic while serving it into a SystemError fault.
func (l *Lab) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := bufferBody(w, r)
		if !ok {
			return
		}
		cs := &callState{done: make(chan struct{})}
		cs.method, cs.this = parseCall(body)
		r = r.WithContext(contextWithCall(r, cs))
		lw := &labResponse{ResponseWriter: w}
		defer close(cs.done)
		defer func() {
			p := recover()
			switch p {
			case nil:
				return
			case http.ErrAbortHandler: // a dropped connection (fault rules)
				panic(p)
			}
			reason := l.recoverCall(cs, p)
			if lw.wrote {
				// too late for a fault: end the connection
				panic(http.ErrAbortHandler)
			}
			writeSOAPFault(lw, &types.SystemError{Reason: reason}, "A general system error occurred: "+reason)
		}()
		next.ServeHTTP(lw, r)
	})
}

// recoverCall logs a panic of a SOAP call and releases the locks it left.
func (l *Lab) recoverCall(cs *callState, p any) string {
	cs.mu.Lock()
	method, this, ctx := cs.method, cs.this, cs.ctx
	cs.mu.Unlock()
	if method == "" {
		method = "the request"
	}
	reason := fmt.Sprintf("The lab failed serving %s", method)
	if this.Value != "" {
		reason += " on " + this.Value
	}
	reason += fmt.Sprintf(": %v", p)
	log.Printf("panic: %s\n%s", reason, debug.Stack())
	if ctx != nil {
		l.releaseAfterPanic(ctx, nil, nil)
	}
	return reason
}

// recoverTask logs a panic of a task's work and releases the locks it left.
func (l *Lab) recoverTask(t *simulator.Task, ctx *simulator.Context, cs *callState, method string, p any) string {
	reason := fmt.Sprintf("The lab failed running the task of %s", method)
	if t.Info.Entity != nil {
		reason += " on " + t.Info.Entity.Value
	}
	reason += fmt.Sprintf(": %v", p)
	log.Printf("panic: %s\n%s", reason, debug.Stack())
	var done chan struct{}
	if cs != nil {
		done = cs.done
	}
	l.releaseAfterPanic(ctx, done, t)
	return reason
}

// releaseAfterPanic releases the object locks held under ctx once the rest
// of the call's work is over: its HTTP request (done, when a task panicked)
// and its other tasks. Each task of the call still running keeps the lock of
// its entity (self, the panicking task, keeps it too: the simulator releases
// it when the task's work returns). When the request is still being served
// nothing is released: never more than the panic left.
func (l *Lab) releaseAfterPanic(ctx *simulator.Context, done chan struct{}, self *simulator.Task) {
	deadline := time.Now().Add(recoverWait)
	if done != nil {
		select {
		case <-done:
		case <-time.After(recoverWait):
			log.Printf("panic: the call's request is still being served: its locks stay")
			return
		}
	}
	var running []*simulator.Task
	for {
		running = running[:0]
		for _, obj := range l.reg.AllReference("Task") {
			t, ok := obj.(*simulator.Task)
			if !ok || t == self || taskContext(t) != ctx {
				continue
			}
			if s := t.Info.State; s != types.TaskInfoStateSuccess && s != types.TaskInfoStateError {
				running = append(running, t)
			}
		}
		if len(running) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	keep := map[types.ManagedObjectReference]int64{}
	if self != nil && self.Info.Entity != nil {
		keep[*self.Info.Entity]++
	}
	for _, t := range running {
		if t.Info.Entity != nil {
			keep[*t.Info.Entity]++
		}
	}
	if n := releaseLocks(l.reg, ctx, keep); n > 0 {
		log.Printf("panic: released %d object lock(s) the call left held", n)
	}
}

// releaseLocks lowers the hold count of every object lock held under
// holder to keep[object] (0: unlocked). It answers how many locks it
// released or lowered. The registry's locks are the simulator's own
// (Registry.locks, internal.ObjectLock), reached by reflection.
func releaseLocks(reg *simulator.Registry, holder *simulator.Context, keep map[types.ManagedObjectReference]int64) int {
	locks := unexported(reg, "locks")
	regMu, ok := fieldPointer[sync.Mutex](reg, "m")
	if !locks.IsValid() || !ok {
		log.Printf("panic: the simulator's registry has no locks to release (govmomi changed?)")
		return 0
	}
	type entry struct {
		ref  types.ManagedObjectReference
		lock reflect.Value
	}
	var held []entry
	regMu.Lock()
	it := locks.MapRange()
	for it.Next() {
		ref, _ := it.Key().Interface().(types.ManagedObjectReference)
		held = append(held, entry{ref, it.Value()})
	}
	regMu.Unlock()

	n := 0
	for _, e := range held {
		if e.lock.IsNil() {
			continue
		}
		p := e.lock.Interface()
		state, ok1 := fieldPointer[sync.Mutex](p, "stateLock")
		count, ok2 := fieldPointer[int64](p, "count")
		heldBy := unexported(p, "heldBy")
		inner := unexported(p, "lock")
		if !ok1 || !ok2 || !heldBy.IsValid() || !inner.IsValid() {
			return n
		}
		state.Lock()
		if !heldBy.IsNil() && heldBy.Interface() == any(holder) && *count > keep[e.ref] {
			*count = keep[e.ref]
			if *count <= 0 {
				*count = 0
				heldBy.Set(reflect.Zero(heldBy.Type()))
				if m, ok := inner.Interface().(sync.Locker); ok {
					m.Unlock()
				}
			}
			n++
		}
		state.Unlock()
	}
	return n
}

// fieldPointer points to an unexported field of type T of the struct p points to.
func fieldPointer[T any](p any, name string) (*T, bool) {
	v := reflect.ValueOf(p)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return nil, false
	}
	f := v.Elem().FieldByName(name)
	if !f.IsValid() || f.Type() != reflect.TypeOf((*T)(nil)).Elem() {
		return nil, false
	}
	return (*T)(unsafe.Pointer(f.UnsafeAddr())), true
}
