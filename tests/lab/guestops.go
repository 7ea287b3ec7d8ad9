package main

// VMware Tools guest operations, played by Wine.
//
// StartProgramInGuest runs the requested Windows program under Wine in the
// VM's own prefix (see wine.go), its arguments split on single spaces, so
// cmd.exe and reg.exe are real and the registry really changes.
// ListProcessesInGuest, TerminateProcessInGuest, InitiateFileTransferFromGuest
// (the bytes are served on /guestFile of the lab's own HTTPS server) and
// DeleteFileInGuest complete what a client needs to run a command and read
// its output. Every call first checks, in vCenter's order: the VM is powered
// on (InvalidPowerState), VMware Tools runs (GuestOperationsUnavailable), the
// guest login is the VM's (InvalidGuestLogin), guest operations are enabled
// in the guest (OperationDisabledByGuest); then that the lab has Wine
// (GuestOperationsUnavailable saying so). The simulator's own guest
// operations need Docker.

import (
	"crypto/subtle"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

const (
	diskKey = `HKLM\System\CurrentControlSet\Services\Disk`
	// ended processes stay listed this long, as with VMware Tools
	keepEnded = 5 * time.Minute
	// a file-transfer URL is good for one GET within this time
	transferTTL = 10 * time.Minute
)

// guestOps holds the guests' processes and pending file transfers.
type guestOps struct {
	lab  *Lab
	wine *wineHost

	mu        sync.Mutex
	nextPid   int64
	procs     map[string]map[int64]*guestProcess // by VM moref value, then pid
	nextID    int
	transfers map[string]*fileTransfer // by id
}

type guestProcess struct {
	info       types.GuestProcessInfo
	pgid       int
	terminated bool
	done       chan struct{}
}

type fileTransfer struct {
	token   string
	path    string
	expires time.Time
}

// guestVM is what a guest call needs to know of its VM.
type guestVM struct {
	key  string // moref value
	name string
	spec *VMSpec
}

func newGuestOps(l *Lab, w *wineHost) *guestOps {
	return &guestOps{
		lab:       l,
		wine:      w,
		nextPid:   4100,
		procs:     map[string]map[int64]*guestProcess{},
		transfers: map[string]*fileTransfer{},
	}
}

func init() {
	processes := func(l *Lab, ctx *simulator.Context, m *simulator.Method) mo.Reference {
		if pm, ok := ctx.Map.Get(m.This).(*simulator.GuestProcessManager); ok {
			return &guestProcessHandler{GuestProcessManager: pm, g: l.guests}
		}
		return nil
	}
	for _, name := range []string{"StartProgramInGuest", "ListProcessesInGuest", "TerminateProcessInGuest"} {
		intercept("GuestProcessManager", name, processes)
	}
	files := func(l *Lab, ctx *simulator.Context, m *simulator.Method) mo.Reference {
		if fm, ok := ctx.Map.Get(m.This).(*simulator.GuestFileManager); ok {
			return &guestFileHandler{GuestFileManager: fm, g: l.guests}
		}
		return nil
	}
	for _, name := range []string{"InitiateFileTransferFromGuest", "DeleteFileInGuest"} {
		intercept("GuestFileManager", name, files)
	}
}

// ---- checks -----------------------------------------------------------------

func guestFault(msg string, f types.BaseMethodFault) *soap.Fault { return simulator.Fault(msg, f) }

// check answers the fault vCenter gives for this VM and login, or nil.
func (g *guestOps) check(ctx *simulator.Context, ref types.ManagedObjectReference, auth types.BaseGuestAuthentication) (*guestVM, *soap.Fault) {
	vm, ok := ctx.Map.Get(ref).(*simulator.VirtualMachine)
	if !ok {
		return nil, guestFault(fmt.Sprintf("The object '%s' has already been deleted or has not been completely created", ref.Value),
			&types.ManagedObjectNotFound{Obj: ref})
	}
	var power types.VirtualMachinePowerState
	var tools, name string
	ctx.WithLock(vm, func() {
		power, tools, name = vm.Runtime.PowerState, vm.Guest.ToolsRunningStatus, vm.Name
	})
	g.lab.mu.Lock()
	spec := g.lab.vmSpecs[ref.Value]
	g.lab.mu.Unlock()
	if spec == nil {
		spec = &VMSpec{Name: name}
	}
	if power != types.VirtualMachinePowerStatePoweredOn {
		state := map[types.VirtualMachinePowerState]string{
			types.VirtualMachinePowerStatePoweredOff: "Powered off",
			types.VirtualMachinePowerStateSuspended:  "Suspended",
		}[power]
		return nil, guestFault(fmt.Sprintf("The attempted operation cannot be performed in the current state (%s).", state),
			&types.InvalidPowerState{RequestedState: types.VirtualMachinePowerStatePoweredOn, ExistingState: power})
	}
	if tools != string(types.VirtualMachineToolsRunningStatusGuestToolsRunning) {
		return nil, guestFault("The guest operations agent could not be contacted.", &types.GuestOperationsUnavailable{})
	}
	creds, ok := auth.(*types.NamePasswordAuthentication)
	user, password := g.lab.guestLogin(spec)
	if !ok || !strings.EqualFold(creds.Username, user) ||
		subtle.ConstantTimeCompare([]byte(creds.Password), []byte(password)) != 1 {
		return nil, guestFault("Failed to authenticate with the guest operating system using the supplied credentials.",
			&types.InvalidGuestLogin{})
	}
	if !boolOr(spec.GuestOperations, true) {
		return nil, guestFault("Guest operations are disabled in the guest operating system.", &types.OperationDisabledByGuest{})
	}
	if !g.wine.available() {
		return nil, guestFault("The lab cannot run programs in guests: "+g.wine.missing+".", &types.GuestOperationsUnavailable{})
	}
	return &guestVM{key: ref.Value, name: name, spec: spec}, nil
}

// prefix is the VM's Wine prefix, made (and seeded) on first use.
func (g *guestOps) prefix(vm *guestVM) (*winePrefix, *soap.Fault) {
	p, err := g.wine.prefix(vm.key, vm.name, func(dir string) error { return g.seed(vm, dir) })
	if err != nil {
		return nil, guestFault("The lab could not prepare the guest's Wine prefix: "+err.Error(), &types.GuestOperationsUnavailable{})
	}
	return p, nil
}

// seed writes the lab file's initial registry values in a new prefix.
func (g *guestOps) seed(vm *guestVM, dir string) error {
	var kind, data string
	switch v := vm.spec.DiskTimeout.(type) {
	case nil:
		return nil
	case int:
		kind, data = "REG_DWORD", strconv.Itoa(v)
	case string:
		kind, data = "REG_SZ", v
	default:
		return fmt.Errorf("diskTimeout %v", v)
	}
	code, out, err := g.wine.run(dir, wineTimeout, g.wine.wine, "reg.exe", "add", diskKey, "/v", "TimeOutValue", "/t", kind, "/d", data, "/f")
	if err == nil && code != 0 {
		err = fmt.Errorf("exit %d: %s", code, strings.TrimSpace(string(out)))
	}
	if err != nil {
		return fmt.Errorf("seeding TimeOutValue=%s %s: %w", kind, data, err)
	}
	return nil
}

// ---- processes ---------------------------------------------------------------

// guestProcessHandler serves the process calls. It opts out of the
// simulator's per-object lock: a guest's program may take seconds to start
// (its prefix is made on first use) and other guests must not wait.
type guestProcessHandler struct {
	*simulator.GuestProcessManager
	g *guestOps
}

func (h *guestProcessHandler) Lock()   {}
func (h *guestProcessHandler) Unlock() {}

func (h *guestProcessHandler) StartProgramInGuest(ctx *simulator.Context, req *types.StartProgramInGuest) soap.HasFault {
	body := new(methods.StartProgramInGuestBody)
	vm, fault := h.g.check(ctx, req.Vm, req.Auth)
	if fault != nil {
		body.Fault_ = fault
		return body
	}
	if req.Spec == nil || req.Spec.GetGuestProgramSpec().ProgramPath == "" {
		body.Fault_ = guestFault("A specified parameter was not correct: spec.programPath", &types.InvalidArgument{InvalidProperty: "spec.programPath"})
		return body
	}
	spec := req.Spec.GetGuestProgramSpec()
	p, fault := h.g.prefix(vm)
	if fault != nil {
		body.Fault_ = fault
		return body
	}
	if program, ok := hostPath(p.dir, spec.ProgramPath); !ok || isDir(program) {
		body.Fault_ = fileNotFound(spec.ProgramPath)
		return body
	}
	dir := filepath.Join(p.dir, "drive_c", "windows", "system32")
	if spec.WorkingDirectory != "" {
		d, ok := hostPath(p.dir, spec.WorkingDirectory)
		if !ok || !isDir(d) {
			body.Fault_ = fileNotFound(spec.WorkingDirectory)
			return body
		}
		dir = d
	}
	// The arguments are words separated by single spaces: Wine rebuilds
	// the Windows command line from them.
	args := []string{spec.ProgramPath}
	for _, a := range strings.Split(spec.Arguments, " ") {
		if a != "" {
			args = append(args, a)
		}
	}
	cmd := h.g.wine.command(p.dir, h.g.wine.wine, args...)
	cmd.Dir = dir
	cmd.Env = append(cmd.Env, spec.EnvVariables...)
	if err := cmd.Start(); err != nil {
		body.Fault_ = guestFault("The lab could not start Wine: "+err.Error(), &types.GuestOperationsUnavailable{})
		return body
	}
	name := spec.ProgramPath[strings.LastIndexAny(spec.ProgramPath, `\/`)+1:]
	user := req.Auth.(*types.NamePasswordAuthentication).Username
	proc := &guestProcess{pgid: cmd.Process.Pid, done: make(chan struct{})}
	proc.info = types.GuestProcessInfo{
		Name:      name,
		Owner:     user,
		CmdLine:   strings.TrimSpace(`"` + spec.ProgramPath + `" ` + spec.Arguments),
		StartTime: time.Now(),
	}
	g := h.g
	g.mu.Lock()
	g.nextPid += 4
	proc.info.Pid = g.nextPid
	if g.procs[vm.key] == nil {
		g.procs[vm.key] = map[int64]*guestProcess{}
	}
	g.procs[vm.key][proc.info.Pid] = proc
	g.mu.Unlock()
	go func() {
		_ = cmd.Wait()
		code := int32(cmd.ProcessState.ExitCode())
		g.mu.Lock()
		if code < 0 || proc.terminated {
			code = 1
		}
		end := time.Now()
		proc.info.EndTime, proc.info.ExitCode = &end, code
		g.mu.Unlock()
		close(proc.done)
	}()
	body.Res = &types.StartProgramInGuestResponse{Returnval: proc.info.Pid}
	return body
}

// listProcessesBody answers ListProcessesInGuest with an exit code of 0
// present: the generated types.GuestProcessInfo drops it (omitempty), and a
// client then reads an ended process with no exit code.
type listProcessesBody struct {
	Res    *listProcessesResponse `xml:"ListProcessesInGuestResponse,omitempty"`
	Fault_ *soap.Fault            `xml:"http://schemas.xmlsoap.org/soap/envelope/ Fault,omitempty"`
}

func (b *listProcessesBody) Fault() *soap.Fault { return b.Fault_ }

type listProcessesResponse struct {
	Returnval []guestProcessInfo `xml:"returnval,omitempty"`
}

type guestProcessInfo struct {
	Name      string     `xml:"name"`
	Pid       int64      `xml:"pid"`
	Owner     string     `xml:"owner"`
	CmdLine   string     `xml:"cmdLine"`
	StartTime time.Time  `xml:"startTime"`
	EndTime   *time.Time `xml:"endTime,omitempty"`
	ExitCode  *int32     `xml:"exitCode,omitempty"`
}

func (h *guestProcessHandler) ListProcessesInGuest(ctx *simulator.Context, req *types.ListProcessesInGuest) soap.HasFault {
	body := new(listProcessesBody)
	vm, fault := h.g.check(ctx, req.Vm, req.Auth)
	if fault != nil {
		body.Fault_ = fault
		return body
	}
	g := h.g
	g.mu.Lock()
	defer g.mu.Unlock()
	procs := g.procs[vm.key]
	for pid, p := range procs {
		if p.info.EndTime != nil && time.Since(*p.info.EndTime) > keepEnded {
			delete(procs, pid)
		}
	}
	var pids []int64
	if len(req.Pids) > 0 {
		pids = req.Pids
	} else {
		for pid := range procs {
			pids = append(pids, pid)
		}
		sort.Slice(pids, func(i, j int) bool { return pids[i] < pids[j] })
	}
	body.Res = &listProcessesResponse{}
	for _, pid := range pids {
		p := procs[pid]
		if p == nil {
			continue
		}
		info := guestProcessInfo{
			Name: p.info.Name, Pid: p.info.Pid, Owner: p.info.Owner, CmdLine: p.info.CmdLine,
			StartTime: p.info.StartTime, EndTime: p.info.EndTime,
		}
		if p.info.EndTime != nil {
			code := p.info.ExitCode
			info.ExitCode = &code
		}
		body.Res.Returnval = append(body.Res.Returnval, info)
	}
	return body
}

func (h *guestProcessHandler) TerminateProcessInGuest(ctx *simulator.Context, req *types.TerminateProcessInGuest) soap.HasFault {
	body := new(methods.TerminateProcessInGuestBody)
	vm, fault := h.g.check(ctx, req.Vm, req.Auth)
	if fault != nil {
		body.Fault_ = fault
		return body
	}
	g := h.g
	g.mu.Lock()
	p := g.procs[vm.key][req.Pid]
	running := p != nil && p.info.EndTime == nil
	if running {
		p.terminated = true
	}
	g.mu.Unlock()
	if p == nil {
		body.Fault_ = guestFault(fmt.Sprintf("The specified process %d was not found in the guest.", req.Pid), &types.GuestProcessNotFound{Pid: req.Pid})
		return body
	}
	if running {
		_ = syscall.Kill(-p.pgid, syscall.SIGKILL)
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
		}
	}
	body.Res = new(types.TerminateProcessInGuestResponse)
	return body
}

// stop ends the running guest programs (before their wineservers go).
func (g *guestOps) stop() {
	g.mu.Lock()
	var running []*guestProcess
	for _, procs := range g.procs {
		for _, p := range procs {
			if p.info.EndTime == nil {
				p.terminated = true
				running = append(running, p)
			}
		}
	}
	g.mu.Unlock()
	for _, p := range running {
		_ = syscall.Kill(-p.pgid, syscall.SIGKILL)
	}
	g.wine.stop()
}

func isDir(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.IsDir()
}
