// Command lab serves a simulated vCenter (govmomi's simulator, shaped to
// behave like vCenter and ESXi where it matters to mscsctl) on 127.0.0.1
// over TLS.
//
//	lab --lab labs/default.yaml --dir RUNDIR [--fleet N] [--scale NAME] [--fault SPEC ...]
//	    [--wine PATH|off] [--wine-cache DIR]
//
// Once serving it prints one JSON line on stdout:
//
//	{"url": "https://127.0.0.1:PORT/sdk", "host": "127.0.0.1", "port": PORT,
//	 "ca_file": "RUNDIR/ca.pem", "pid": PID, "username": "...", "password": "..."}
//
// and runs until SIGTERM or SIGINT (or, with --watch-stdin, until its
// standard input closes).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25"
)

type faultFlags []string

func (f *faultFlags) String() string     { return strings.Join(*f, " ") }
func (f *faultFlags) Set(v string) error { *f = append(*f, v); return nil }

func main() {
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)
	log.SetPrefix("lab: ")
	if len(os.Args) == 2 && os.Args[1] == watchdogFlag {
		runWatchdog()
		return
	}
	if err := run(); err != nil {
		log.Print(err)
		os.Exit(1)
	}
}

func run() error {
	var (
		labPath    = flag.String("lab", "", "lab file (YAML)")
		dir        = flag.String("dir", "", "run directory: certificate, datastores (required)")
		fleet      = flag.Int("fleet", 0, "add N generated clusters Fleet-01..Fleet-NN")
		scale      = flag.String("scale", "", "grow the lab to a profile's size: small | realistic (see scale.go)")
		listen     = flag.String("listen", "127.0.0.1:0", "address to listen on")
		watchStdin = flag.Bool("watch-stdin", false, "exit when standard input closes")
		wine       = flag.String("wine", os.Getenv("MSCSCTL_LAB_WINE"), "Wine's wine64 for guest operations: a path, or off (default: $MSCSCTL_LAB_WINE, else found on PATH)")
		wineCache  = flag.String("wine-cache", os.Getenv("MSCSCTL_LAB_WINE_CACHE"), "directory keeping the template Wine prefix for later labs (default: $MSCSCTL_LAB_WINE_CACHE, else none)")
		faultSpecs faultFlags
	)
	flag.Var(&faultSpecs, "fault", "fault rule, e.g. '{method: ReconfigVM_Task, call: 2, fault: TaskInProgress}' (repeatable)")
	flag.Parse()
	if *dir == "" {
		return fmt.Errorf("--dir is required")
	}
	start := time.Now()

	lf := &LabFile{}
	if *labPath != "" {
		var err error
		if lf, err = loadLabFile(*labPath); err != nil {
			return err
		}
	}
	fileClusters := len(lf.Clusters)
	if *fleet > 0 {
		if err := addFleet(lf, *fleet); err != nil {
			return err
		}
	}
	if *scale != "" {
		if err := addScale(lf, *scale, fileClusters); err != nil {
			return err
		}
	}
	if err := lf.applyDefaults(); err != nil {
		return err
	}
	for _, s := range faultSpecs {
		f, err := parseFaultFlag(s)
		if err != nil {
			return err
		}
		lf.Faults = append(lf.Faults, f)
	}

	runDir, err := filepath.Abs(*dir)
	if err != nil {
		return err
	}
	// a fresh lab per run: datastores and scratch space of a previous run go
	for _, d := range []string{"datastores", "tmp", "wine"} {
		if err := os.RemoveAll(filepath.Join(runDir, d)); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Join(runDir, "tmp"), 0o700); err != nil {
		return err
	}
	// the simulator keeps its own scratch directory under TMPDIR
	_ = os.Setenv("TMPDIR", filepath.Join(runDir, "tmp"))

	model := simulator.VPX()
	model.Datacenter, model.Portgroup, model.Host, model.Cluster = 0, 0, 0, 0
	model.ClusterHost, model.Datastore, model.Machine, model.Autostart = 0, 0, 0, false
	about := &model.ServiceContent.About
	about.Version = lf.VCenter.Version
	about.Build = lf.VCenter.Build
	about.ApiVersion = lf.VCenter.APIVersion
	about.FullName = fmt.Sprintf("VMware vCenter Server %s build-%s", lf.VCenter.Version, lf.VCenter.Build)
	about.LicenseProductVersion = majorMinor(lf.VCenter.Version)
	if err := model.Create(); err != nil {
		return err
	}
	defer model.Remove()

	l := &Lab{
		file:             lf,
		runDir:           runDir,
		model:            model,
		svc:              model.Service,
		reg:              model.Map(),
		hosts:            map[string]*labHost{},
		storageSystems:   map[string]*labHost{},
		datastoreSystems: map[string]*labHost{},
		hostOptions:      map[string]*labHost{},
		tools:            map[string]bool{},
		vmSpecs:          map[string]*VMSpec{},
		dsKind:           map[string]string{},
		dsDirs:           map[string]string{},
		extentLUNs:       map[string]string{},
	}
	l.faults = newFaultEngine(l)
	l.traffic = newTrafficCounter()
	cache := *wineCache
	if cache != "" {
		if cache, err = filepath.Abs(cache); err != nil {
			return err
		}
	}
	l.guests = newGuestOps(l, newWineHost(*wine, cache, filepath.Join(runDir, "wine")))
	// runs after the server has closed: no Wine process outlives the lab
	defer l.guests.stop()
	l.reg.AddHandler(&observer{lab: l})
	l.installTaskFilter()
	l.reg.Handler = l.dispatch

	ctx := context.Background()
	if l.client, err = vim25.NewClient(ctx, model.Service); err != nil {
		return err
	}
	if err := l.build(ctx); err != nil {
		return err
	}
	if _, err := l.faults.add(lf.Faults...); err != nil {
		return err
	}
	// calls made while building do not count
	l.faults.resetCalls()

	caFile := filepath.Join(runDir, "ca.pem")
	tlsConfig, err := newTLSConfig(caFile)
	if err != nil {
		return err
	}
	svc := model.Service
	svc.TLS = tlsConfig
	svc.Listen = &url.URL{Host: *listen, User: url.UserPassword(lf.Credentials.Username, lf.Credentials.Password)}
	svc.ServeMux = http.NewServeMux()
	// guard: a panic while serving a call answers SystemError (recover.go)
	// traffic: bytes in and out per method, GET /lab/traffic (traffic.go)
	sdk := l.guard(l.traffic.wrap(l.faults.wrap(http.HandlerFunc(svc.ServeSDK))))
	// more specific than the simulator's own "/sdk" patterns
	svc.ServeMux.Handle("POST /sdk", sdk)
	svc.ServeMux.Handle("POST /sdk/vimService", sdk)
	// vCenter's form of a guest file-transfer URL; the simulator's own
	// "/guestFile/" handler needs Docker
	svc.ServeMux.HandleFunc("GET /guestFile", l.guests.serveFile)

	var info map[string]any
	l.registerControl(svc.ServeMux, func() map[string]any { return info })

	srv := svc.NewServer()
	defer func() {
		// Close waits for outstanding requests (long polls included): bound it
		done := make(chan struct{})
		go func() { srv.Close(); close(done) }()
		select {
		case <-done:
		case <-time.After(2 * time.Second):
		}
	}()

	addr := srv.Listener.Addr().(*net.TCPAddr)
	host := addr.IP.String()
	info = map[string]any{
		"url":      fmt.Sprintf("https://%s/sdk", net.JoinHostPort(host, strconv.Itoa(addr.Port))),
		"host":     host,
		"port":     addr.Port,
		"ca_file":  caFile,
		"pid":      os.Getpid(),
		"username": lf.Credentials.Username,
		"password": lf.Credentials.Password,
		"control":  fmt.Sprintf("https://%s/lab/", net.JoinHostPort(host, strconv.Itoa(addr.Port))),
		"about":    about.FullName,
		"hosts":    len(l.hosts),
		"vms":      len(l.vmSpecs),
		"start_ms": time.Since(start).Milliseconds(),
		"wine":     l.guests.wine.wine,
	}
	if !l.guests.wine.available() {
		info["wine"] = nil
		info["wine_missing"] = l.guests.wine.missing
	}
	line, err := json.Marshal(info)
	if err != nil {
		return err
	}
	if _, err := os.Stdout.Write(append(line, '\n')); err != nil {
		return err
	}
	log.Printf("serving %s (%d hosts, %d VMs) in %s", info["url"], len(l.hosts), len(l.vmSpecs), time.Since(start).Round(time.Millisecond))

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	stdinClosed := make(chan struct{})
	if *watchStdin {
		go func() {
			_, _ = io.Copy(io.Discard, os.Stdin)
			close(stdinClosed)
		}()
	}
	select {
	case s := <-sig:
		log.Printf("%s: stopping", s)
	case <-stdinClosed:
		log.Printf("standard input closed: stopping")
	}
	return nil
}
