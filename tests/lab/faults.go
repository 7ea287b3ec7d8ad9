package main

// Fault injection on the SOAP endpoint. Rules come from the lab file
// (faults:), from --fault flags and from the control API (POST /lab/faults).
//
// A rule names a SOAP method (wire name, e.g. ReconfigVM_Task, or "*") and
// the call that triggers it: the Nth call of that method (counting from 1)
// since the rule was installed, optionally only calls on one object.
//
//	{method: ReconfigVM_Task, call: 2, fault: TaskInProgress}
//	{method: ReconfigVM_Task, call: 1, action: task, fault: GenericVmConfigFault, message: "disk locked"}
//	{method: ReconfigVM_Task, fault: task, message: "disk locked"}    # same, shorthand
//	{method: PowerOffVM_Task, object: SQLNODE2, action: delay, delay_ms: 800}
//	{method: RetrievePropertiesEx, call: 3, action: drop}
//	{method: ReconfigVM_Task, action: drop_after}    # runs, then the answer is lost
//	{method: PowerOnVM_Task, action: delay, delay_ms: 60000}
//	{method: ReconfigVM_Task, action: panic_task}    # crash tests of the lab itself
//	{method: PowerOnVM_Task, action: end_sessions}
//	{method: CreateSnapshot_Task, call: 1, times: 0, fault: InvalidPowerState}   # every call

import (
	"bufio"
	"bytes"
	"encoding/xml"
	"fmt"
	"html"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
	vimxml "github.com/vmware/govmomi/vim25/xml"
)

// FaultSpec is one fault injection rule.
type FaultSpec struct {
	// Method is the SOAP method wire name, or "*" for every method.
	Method string `yaml:"method" json:"method"`
	// Call is the first matching call (1-based) that triggers the rule. Default 1.
	Call int `yaml:"call" json:"call"`
	// Times is how many consecutive matching calls trigger it. Default 1; 0 = every call from Call on.
	Times *int `yaml:"times" json:"times,omitempty"`
	// Object restricts the rule to calls on one managed object: its name (escaped
	// as vCenter returns it, or as typed) or moref value.
	Object string `yaml:"object" json:"object,omitempty"`
	// Action: fault (the call answers a SOAP fault), task (the call returns a
	// Task that ends in error), delay, drop (the TCP connection is closed
	// without an answer), drop_after (the call runs, then the connection is
	// closed without its answer), end_sessions (every session ends, then the
	// call runs), panic / panic_task (the lab panics serving the call / in
	// the task the call starts: tests of the lab's own recovery).
	Action string `yaml:"action" json:"action"`
	// Fault is the vim fault type name (TaskInProgress, InvalidPowerState,
	// NotAuthenticated, GenericVmConfigFault, ...). "task" is shorthand for action task.
	Fault string `yaml:"fault" json:"fault,omitempty"`
	// TaskFault is the fault of the failed task when Fault is "task" (default GenericVmConfigFault).
	TaskFault string `yaml:"task_fault" json:"task_fault,omitempty"`
	Message   string `yaml:"message" json:"message,omitempty"`
	// DelayMs delays the call (action delay), or the fault/drop/task answer;
	// at most maxDelayMs.
	DelayMs int `yaml:"delay_ms" json:"delay_ms,omitempty"`
}

var faultActions = []string{"fault", "task", "delay", "drop", "drop_after", "end_sessions", "panic", "panic_task"}

// maxDelayMs bounds delay_ms: 10 minutes. The server has no read or write
// timeout of its own, so a call can be held that long (clients may give up
// earlier: pyVmomi waits without a timeout unless given one).
const maxDelayMs = 600_000

func (f *FaultSpec) validate() error {
	if f.Method == "" {
		return fmt.Errorf("method missing")
	}
	if f.Call == 0 {
		f.Call = 1
	}
	if f.Call < 0 {
		return fmt.Errorf("call must be >= 1")
	}
	if f.Times == nil {
		one := 1
		f.Times = &one
	}
	if *f.Times < 0 {
		return fmt.Errorf("times must be >= 0")
	}
	if f.Fault == "task" {
		f.Action = "task"
		f.Fault = f.TaskFault
	}
	if f.Action == "" {
		switch {
		case f.Fault != "":
			f.Action = "fault"
		case f.DelayMs > 0:
			f.Action = "delay"
		default:
			return fmt.Errorf("action missing (one of %s)", strings.Join(faultActions, ", "))
		}
	}
	if !contains(faultActions, f.Action) {
		return fmt.Errorf("action %q is not one of %s", f.Action, strings.Join(faultActions, ", "))
	}
	if f.DelayMs < 0 || f.DelayMs > maxDelayMs {
		return fmt.Errorf("delay_ms must be between 0 and %d", maxDelayMs)
	}
	switch f.Action {
	case "task":
		if f.Fault == "" {
			f.Fault = "GenericVmConfigFault"
		}
		if f.Method != "*" && !strings.HasSuffix(f.Method, "_Task") {
			return fmt.Errorf("action task needs a *_Task method, not %s", f.Method)
		}
	case "panic_task":
		if f.Method != "*" && !strings.HasSuffix(f.Method, "_Task") {
			return fmt.Errorf("action panic_task needs a *_Task method, not %s", f.Method)
		}
	case "fault":
		if f.Fault == "" {
			return fmt.Errorf("fault type missing")
		}
	case "delay":
		if f.DelayMs <= 0 {
			return fmt.Errorf("delay_ms missing")
		}
	}
	if f.Fault != "" {
		if _, err := newFault(f.Fault); err != nil {
			return err
		}
	}
	return nil
}

// parseFaultFlag reads a --fault value: a YAML/JSON flow mapping
// ("{method: ReconfigVM_Task, call: 2, fault: TaskInProgress}") or
// comma-separated key=value pairs ("method=ReconfigVM_Task,call=2,fault=TaskInProgress").
func parseFaultFlag(s string) (FaultSpec, error) {
	var f FaultSpec
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "{") {
		dec := yaml.NewDecoder(strings.NewReader(s))
		dec.KnownFields(true)
		if err := dec.Decode(&f); err != nil {
			return f, fmt.Errorf("--fault %q: %w", s, err)
		}
	} else {
		raw := map[string]any{}
		for _, kv := range strings.Split(s, ",") {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				return f, fmt.Errorf("--fault %q: expected key=value", s)
			}
			k, v = strings.TrimSpace(k), strings.TrimSpace(v)
			if n, err := strconv.Atoi(v); err == nil {
				raw[k] = n
			} else {
				raw[k] = v
			}
		}
		data, err := yaml.Marshal(raw)
		if err != nil {
			return f, err
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(&f); err != nil {
			return f, fmt.Errorf("--fault %q: %w", s, err)
		}
	}
	return f, f.validate()
}

type faultRule struct {
	ID int `json:"id"`
	FaultSpec
	// Seen counts the calls matching method and object since the rule was installed.
	Seen int `json:"seen"`
	// Hits counts the calls the rule acted on.
	Hits int `json:"hits"`
}

type faultEngine struct {
	lab *Lab

	mu       sync.Mutex
	rules    []*faultRule
	nextID   int
	calls    map[string]int
	sessions map[string]bool
}

func newFaultEngine(l *Lab) *faultEngine {
	return &faultEngine{lab: l, calls: map[string]int{}, sessions: map[string]bool{}, nextID: 1}
}

func (e *faultEngine) add(specs ...FaultSpec) ([]int, error) {
	for i := range specs {
		if err := specs[i].validate(); err != nil {
			return nil, err
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	var ids []int
	for _, s := range specs {
		r := &faultRule{ID: e.nextID, FaultSpec: s}
		e.nextID++
		e.rules = append(e.rules, r)
		ids = append(ids, r.ID)
	}
	return ids, nil
}

func (e *faultEngine) list() []faultRule {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := []faultRule{}
	for _, r := range e.rules {
		out = append(out, *r)
	}
	return out
}

func (e *faultEngine) remove(id int) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i, r := range e.rules {
		if r.ID == id {
			e.rules = append(e.rules[:i], e.rules[i+1:]...)
			return true
		}
	}
	return false
}

func (e *faultEngine) clear() {
	e.mu.Lock()
	e.rules = nil
	e.mu.Unlock()
}

func (e *faultEngine) callCounts() map[string]int {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make(map[string]int, len(e.calls))
	for k, v := range e.calls {
		out[k] = v
	}
	return out
}

func (e *faultEngine) resetCalls() {
	e.mu.Lock()
	e.calls = map[string]int{}
	e.mu.Unlock()
}

func (e *faultEngine) objectMatches(rule string, this types.ManagedObjectReference) bool {
	if rule == "" || rule == this.Value {
		return true
	}
	if obj, ok := e.lab.reg.Get(this).(mo.Entity); ok {
		// the rule names the object escaped or as typed
		return nameMatches(obj.Entity().Name, rule)
	}
	return false
}

// record counts a call and returns the rule that acts on it, if any.
func (e *faultEngine) record(method string, this types.ManagedObjectReference) *faultRule {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.calls[method]++
	var hit *faultRule
	for _, r := range e.rules {
		if r.Method != "*" && r.Method != method {
			continue
		}
		if !e.objectMatches(r.Object, this) {
			continue
		}
		r.Seen++
		if hit != nil || r.Seen < r.Call {
			continue
		}
		if *r.Times != 0 && r.Seen >= r.Call+*r.Times {
			continue
		}
		r.Hits++
		c := *r
		hit = &c
	}
	return hit
}

// endSessions ends every session opened on the server: the next call of
// each client answers NotAuthenticated until it logs in again.
func (e *faultEngine) endSessions() int {
	e.mu.Lock()
	keys := make([]string, 0, len(e.sessions))
	for k := range e.sessions {
		keys = append(keys, k)
	}
	e.sessions = map[string]bool{}
	e.mu.Unlock()

	ctx := e.lab.labContext()
	sm := e.lab.reg.SessionManager()
	n := 0
	for _, k := range keys {
		if sm.TerminateSession(ctx, &types.TerminateSession{SessionId: []string{k}}).Fault() == nil {
			n++
		}
	}
	return n
}

// sessionWatcher records the session cookies the server hands out.
type sessionWatcher struct {
	http.ResponseWriter
	e    *faultEngine
	done bool
}

func (w *sessionWatcher) watch() {
	if w.done {
		return
	}
	w.done = true
	for _, c := range (&http.Response{Header: w.Header()}).Cookies() {
		if c.Name == soap.SessionCookieName && c.Value != "" {
			w.e.mu.Lock()
			w.e.sessions[c.Value] = true
			w.e.mu.Unlock()
		}
	}
}

func (w *sessionWatcher) WriteHeader(code int) {
	w.watch()
	w.ResponseWriter.WriteHeader(code)
}

func (w *sessionWatcher) Write(b []byte) (int, error) {
	w.watch()
	return w.ResponseWriter.Write(b)
}

// parseCall finds the method name and _this of a SOAP request. For guest
// operations (_this a GuestProcessManager, GuestFileManager ...) the object
// is the VM the call is about: its vm argument.
func parseCall(body []byte) (string, types.ManagedObjectReference) {
	var this types.ManagedObjectReference
	dec := xml.NewDecoder(bytes.NewReader(body))
	inBody := false
	method := ""
	for {
		tok, err := dec.Token()
		if err != nil {
			return method, this
		}
		se, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		switch {
		case !inBody:
			inBody = se.Name.Local == "Body"
		case method == "":
			method = se.Name.Local
		case se.Name.Local == "_this" && this.Value == "":
			for _, a := range se.Attr {
				if a.Name.Local == "type" {
					this.Type = a.Value
				}
			}
			var v string
			_ = dec.DecodeElement(&v, &se)
			this.Value = strings.TrimSpace(v)
			if !strings.HasPrefix(this.Type, "Guest") {
				return method, this
			}
		default:
			if se.Name.Local == "vm" && this.Value != "" {
				var v string
				_ = dec.DecodeElement(&v, &se)
				return method, types.ManagedObjectReference{Type: "VirtualMachine", Value: strings.TrimSpace(v)}
			}
			return method, this
		}
	}
}

// wrap installs fault injection and call counting in front of the SOAP handler.
func (e *faultEngine) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := bufferBody(w, r)
		if !ok {
			return
		}
		method, this := parseCall(body)
		if method != "" {
			if rule := e.record(method, this); rule != nil {
				if rule.DelayMs > 0 {
					time.Sleep(time.Duration(rule.DelayMs) * time.Millisecond)
				}
				switch rule.Action {
				case "drop":
					dropConnection(w)
					return
				case "drop_after":
					// the call runs for real; its answer goes nowhere
					sink := &discardResponse{header: http.Header{}}
					next.ServeHTTP(&sessionWatcher{ResponseWriter: sink, e: e}, r)
					dropConnection(w)
					return
				case "panic", "panic_task":
					if cs := callOfRequest(r); cs != nil {
						cs.mu.Lock()
						cs.inject = rule.Action
						cs.mu.Unlock()
					}
				case "end_sessions":
					e.endSessions()
				case "fault":
					f := e.lab.makeFault(rule.Fault, this, rule.Message)
					writeSOAPFault(w, f, faultMessage(f, rule.Message))
					return
				case "task":
					f := e.lab.makeFault(rule.Fault, this, rule.Message)
					ref := e.lab.failedTask(e.lab.labContext(), this, method, f, faultMessage(f, rule.Message), true)
					writeTaskResponse(w, method, ref)
					return
				}
			}
		}
		next.ServeHTTP(&sessionWatcher{ResponseWriter: w, e: e}, r)
	})
}

// dropConnection closes the client's TCP connection without an answer.
func dropConnection(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

// discardResponse takes an answer nobody will read.
type discardResponse struct {
	header http.Header
}

func (d *discardResponse) Header() http.Header         { return d.header }
func (d *discardResponse) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardResponse) WriteHeader(int)             {}

func newFault(name string) (types.BaseMethodFault, error) {
	typ, ok := types.TypeFunc()(name)
	if !ok {
		return nil, fmt.Errorf("unknown fault type %q", name)
	}
	f, ok := reflect.New(typ).Interface().(types.BaseMethodFault)
	if !ok {
		return nil, fmt.Errorf("%q is not a fault type", name)
	}
	return f, nil
}

var defaultFaultMessages = map[string]string{
	"TaskInProgress":       "The operation is not allowed in the current state.",
	"InvalidPowerState":    "The attempted operation cannot be performed in the current state (%s).",
	"NotAuthenticated":     "The session is not authenticated.",
	"GenericVmConfigFault": "Reconfiguration failed.",
}

func faultMessage(f types.BaseMethodFault, msg string) string {
	if msg != "" {
		return msg
	}
	name := reflect.TypeOf(f).Elem().Name()
	m, ok := defaultFaultMessages[name]
	if !ok {
		return "Injected fault: " + name
	}
	if ps, ok := f.(*types.InvalidPowerState); ok {
		state := map[types.VirtualMachinePowerState]string{
			types.VirtualMachinePowerStatePoweredOn:  "Powered on",
			types.VirtualMachinePowerStatePoweredOff: "Powered off",
			types.VirtualMachinePowerStateSuspended:  "Suspended",
		}[ps.ExistingState]
		return fmt.Sprintf(m, state)
	}
	return m
}

// makeFault builds the fault of a rule, filled the way vCenter fills it.
func (l *Lab) makeFault(name string, this types.ManagedObjectReference, msg string) types.BaseMethodFault {
	f, err := newFault(name)
	if err != nil {
		f = &types.SystemError{Reason: err.Error()}
	}
	switch x := f.(type) {
	case *types.TaskInProgress:
		x.Task = l.busyTask(this)
	case *types.InvalidPowerState:
		x.ExistingState = types.VirtualMachinePowerStatePoweredOn
		x.RequestedState = types.VirtualMachinePowerStatePoweredOff
		if vm, ok := l.reg.Get(this).(*simulator.VirtualMachine); ok {
			ctx := l.labContext()
			ctx.WithLock(vm, func() { x.ExistingState = vm.Runtime.PowerState })
			if x.ExistingState == types.VirtualMachinePowerStatePoweredOff {
				x.RequestedState = types.VirtualMachinePowerStatePoweredOn
			}
		}
	case *types.NotAuthenticated:
		obj := this
		x.Object = &obj
		x.PrivilegeId = "System.View"
	case *types.GenericVmConfigFault:
		x.Reason = msg
	case *types.SystemError:
		if x.Reason == "" {
			x.Reason = msg
		}
	}
	if msg != "" {
		f.GetMethodFault().FaultMessage = []types.LocalizableMessage{{Key: "com.vmware.lab.injected", Message: msg}}
	}
	return f
}

// busyTask registers a running task on the object that completes shortly:
// the "other operation" a TaskInProgress fault refers to.
func (l *Lab) busyTask(this types.ManagedObjectReference) types.ManagedObjectReference {
	ctx := l.labContext()
	entity := l.taskEntity(this)
	t := simulator.CreateTask(entity, "reconfigVm", nil)
	nameTask(t, "ReconfigVM_Task", types.ManagedObjectReference{Type: "VirtualMachine"})
	if e, ok := l.reg.Get(entity).(mo.Entity); ok {
		t.Info.EntityName = e.Entity().Name
	}
	now := time.Now()
	t.Info.State = types.TaskInfoStateRunning
	t.Info.StartTime = &now
	t.Info.Reason = &types.TaskReasonUser{UserName: "lab"}
	put := func() {
		ref := ctx.Map.Put(t).Reference()
		t.Info.Key = ref.Value
		t.Info.Task = ref
	}
	if obj := l.reg.Get(this); obj != nil {
		ctx.WithLock(obj, put)
	} else {
		put()
	}
	go func() {
		time.Sleep(500 * time.Millisecond)
		c := l.labContext()
		done := time.Now()
		c.WithLock(t, func() {
			c.Update(t, []types.PropertyChange{
				{Name: "info.state", Val: types.TaskInfoStateSuccess},
				{Name: "info.completeTime", Val: done},
			})
		})
	}()
	return t.Self
}

const soapEnvOpen = `<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
	`<soapenv:Envelope xmlns:soapenc="http://schemas.xmlsoap.org/soap/encoding/" xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>`
const soapEnvClose = `</soapenv:Body></soapenv:Envelope>`

func writeTaskResponse(w http.ResponseWriter, method string, task types.ManagedObjectReference) {
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, `%s<%sResponse xmlns="urn:vim25"><returnval type="Task">%s</returnval></%sResponse>%s`,
		soapEnvOpen, method, html.EscapeString(task.Value), method, soapEnvClose)
}

// faultDetail marshals a fault as <KindFault xmlns="urn:vim25" xsi:type="Kind">.
type faultDetail struct {
	fault types.BaseMethodFault
}

func (d faultDetail) MarshalXML(e *vimxml.Encoder, start vimxml.StartElement) error {
	kind := reflect.TypeOf(d.fault).Elem().Name()
	start.Name.Local = kind + "Fault"
	start.Attr = append(start.Attr,
		vimxml.Attr{Name: vimxml.Name{Local: "xmlns"}, Value: "urn:vim25"},
		vimxml.Attr{Name: vimxml.Name{Local: "xsi:type"}, Value: kind})
	return e.EncodeElement(d.fault, start)
}

func writeSOAPFault(w http.ResponseWriter, f types.BaseMethodFault, msg string) {
	var buf bytes.Buffer
	bw := bufio.NewWriter(&buf)
	fmt.Fprintf(bw, `%s<soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>%s</faultstring><detail>`,
		soapEnvOpen, html.EscapeString(msg))
	_ = bw.Flush()
	enc := vimxml.NewEncoder(&buf)
	if err := enc.Encode(faultDetail{f}); err != nil {
		buf.WriteString("<!-- " + html.EscapeString(err.Error()) + " -->")
	}
	_ = enc.Flush()
	buf.WriteString(`</detail></soapenv:Fault>` + soapEnvClose)
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(http.StatusInternalServerError)
	_, _ = w.Write(buf.Bytes())
}
