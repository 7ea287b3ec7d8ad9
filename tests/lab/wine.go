package main

// Wine prefixes that play the VMs' Windows guests.
//
// One template prefix (`wineboot -i`, ~6 s) is built the first time a guest
// is needed, in the cache directory (--wine-cache, shared by every lab that
// names it, keyed by Wine's version) or else in RUNDIR/wine/template. Each VM
// gets its own copy under RUNDIR/wine/ (big files hard-linked, the registry
// files copied) with its own persistent wineserver, a child of the lab that
// dies with it. Stopping the lab ends every wineserver with `wineserver -k`
// (which also ends the Wine processes of that prefix) and removes the copies.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// tmpDir is the TMPDIR the lab was started with: main points TMPDIR at the
// run directory for the simulator, but wineserver keeps its socket under
// TMPDIR and a socket path must stay short (108 bytes).
var tmpDir = os.TempDir()

const (
	templateMarker = ".mscsctl-lab-template"
	// files at least this big are hard-linked from the template: the DLLs
	// and programs Wine never writes; the registry files are always copied.
	linkMinSize = 64 << 10
	wineTimeout = 5 * time.Minute
)

var wineCandidates = []string{"wine64", "wine", "/usr/lib/wine/wine64", "/usr/lib64/wine/wine64"}

// wineHost runs Wine for the lab's guests.
type wineHost struct {
	wine, wineserver string
	// missing says why guests cannot run (no Wine, or --wine off); "" when they can.
	missing string
	version string
	// cacheDir holds templates shared between labs; "" keeps it in workDir.
	cacheDir string
	workDir  string

	mu          sync.Mutex
	template    string
	templateErr error
	building    chan struct{}
	prefixes    map[string]*winePrefix // by VM moref value
	stopped     bool
	// watchdog ends the guests' Wine processes if the lab dies without
	// stopping them (SIGKILL): it waits for its standard input to close.
	watchdog   *exec.Cmd
	watchdogIn io.WriteCloser
}

// winePrefix is one VM's Windows: a prefix and its wineserver.
type winePrefix struct {
	dir    string
	ready  chan struct{}
	err    error
	server *exec.Cmd
	exited chan struct{}
}

// newWineHost resolves the --wine flag: a path, "off", or "" to look on PATH
// and in Debian's and Fedora's library directories.
func newWineHost(flagValue, cacheDir, workDir string) *wineHost {
	w := &wineHost{cacheDir: cacheDir, workDir: workDir, prefixes: map[string]*winePrefix{}}
	switch flagValue {
	case "off":
		w.missing = "Wine is turned off for this lab (--wine off)"
		return w
	case "":
		for _, c := range wineCandidates {
			if p, err := exec.LookPath(c); err == nil {
				w.wine = p
				break
			}
		}
		if w.wine == "" {
			w.missing = "Wine is not installed on the lab's machine (no wine64 or wine on PATH, nor /usr/lib/wine/wine64); install it, e.g. apt-get install --no-install-recommends wine64"
			return w
		}
	default:
		p, err := exec.LookPath(flagValue)
		if err != nil {
			w.missing = fmt.Sprintf("Wine not found at %s (--wine): %v", flagValue, err)
			return w
		}
		w.wine = p
	}
	for _, c := range []string{filepath.Join(filepath.Dir(w.wine), "wineserver"), "wineserver"} {
		if p, err := exec.LookPath(c); err == nil {
			w.wineserver = p
			break
		}
	}
	if w.wineserver == "" {
		w.missing = fmt.Sprintf("wineserver not found beside %s nor on PATH", w.wine)
	}
	return w
}

func (w *wineHost) available() bool { return w.missing == "" }

// env is the environment of every Wine process of a prefix: quiet, no
// display, no offer to install Mono or Gecko.
func (w *wineHost) env(prefix string) []string {
	var env []string
	for _, kv := range os.Environ() {
		switch strings.SplitN(kv, "=", 2)[0] {
		case "WINEPREFIX", "WINEDEBUG", "WINEDLLOVERRIDES", "DISPLAY", "WAYLAND_DISPLAY", "TMPDIR", "WINEARCH":
			continue
		}
		env = append(env, kv)
	}
	return append(env, "WINEPREFIX="+prefix, "WINEDEBUG=-all", "WINEDLLOVERRIDES=mscoree,mshtml=", "TMPDIR="+tmpDir)
}

// command prepares a Wine process of a prefix in its own process group,
// killed if the lab dies.
func (w *wineHost) command(prefix string, name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Env = w.env(prefix)
	cmd.Dir = prefix
	cmd.SysProcAttr = wineProcAttr()
	return cmd
}

// run runs a Wine command to its end; its output (stdout and stderr) goes
// through a file, not a pipe, so that no process it leaves behind can hold
// the lab waiting.
func (w *wineHost) run(prefix string, timeout time.Duration, name string, args ...string) (int, []byte, error) {
	if err := os.MkdirAll(w.workDir, 0o755); err != nil {
		return -1, nil, err
	}
	out, err := os.CreateTemp(w.workDir, "out-*.txt")
	if err != nil {
		return -1, nil, err
	}
	defer func() { _ = out.Close(); _ = os.Remove(out.Name()) }()
	cmd := w.command(prefix, name, args...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return -1, nil, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(timeout):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		return -1, nil, fmt.Errorf("%s %s did not end within %s", filepath.Base(name), strings.Join(args, " "), timeout)
	}
	data, _ := os.ReadFile(out.Name())
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		return -1, data, err
	}
	return cmd.ProcessState.ExitCode(), data, nil
}

// ---- the watchdog -----------------------------------------------------------

const watchdogFlag = "--wine-watchdog"

// startWatchdog starts, before the first Wine process, a copy of the lab
// that kills every Wine process of workDir (and of a template being built,
// see watch) once the lab has gone.
func (w *wineHost) startWatchdog() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.watchdog != nil || w.stopped {
		return
	}
	exe, err := os.Executable()
	if err != nil {
		log.Printf("wine: no watchdog: %v", err)
		return
	}
	cmd := exec.Command(exe, watchdogFlag)
	cmd.Env = append(os.Environ(), "TMPDIR="+tmpDir)      // the lab's TMPDIR, where wineservers keep their sockets
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // not in the lab's group: it must see the lab go
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err == nil {
		err = cmd.Start()
	}
	if err != nil {
		log.Printf("wine: no watchdog: %v", err)
		return
	}
	w.watchdog, w.watchdogIn = cmd, in
	w.watchLocked(w.workDir)
}

// watch hands the watchdog one more directory to clean after the lab.
func (w *wineHost) watch(dir string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.watchLocked(dir)
}

func (w *wineHost) watchLocked(dir string) {
	if w.watchdogIn != nil {
		_, _ = fmt.Fprintln(w.watchdogIn, dir)
	}
}

// runWatchdog is the watchdog process: it reads directories, one a line,
// until the lab goes (its standard input closes), then kills the Wine
// processes left in them and removes them.
func runWatchdog() {
	signal.Ignore(syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	var dirs []string
	lines := bufio.NewScanner(os.Stdin)
	for lines.Scan() {
		if d := strings.TrimSpace(lines.Text()); filepath.IsAbs(d) {
			dirs = append(dirs, d)
		}
	}
	for _, d := range dirs {
		if n := killWineProcesses(d); n > 0 {
			log.Printf("wine watchdog: killed %d Wine processes left in %s", n, d)
		}
		removeServerDir(d)
		subdirs, _ := os.ReadDir(d)
		for _, e := range subdirs {
			removeServerDir(filepath.Join(d, e.Name()))
		}
		_ = os.RemoveAll(d)
	}
}

// ---- the template -----------------------------------------------------------

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// templateDir builds the template prefix once (concurrent callers wait for
// the same build) and returns its directory.
func (w *wineHost) templateDir() (string, error) {
	w.mu.Lock()
	for w.building != nil {
		ch := w.building
		w.mu.Unlock()
		<-ch
		w.mu.Lock()
	}
	if w.template != "" || w.stopped {
		dir, stopped := w.template, w.stopped
		w.mu.Unlock()
		if stopped {
			return "", errors.New("the lab is stopping")
		}
		return dir, nil
	}
	ch := make(chan struct{})
	w.building = ch
	w.mu.Unlock()

	w.startWatchdog()
	dir, err := w.findOrBuildTemplate()

	w.mu.Lock()
	w.building = nil
	if err == nil {
		w.template = dir
	}
	w.templateErr = err
	w.mu.Unlock()
	close(ch)
	return dir, err
}

func (w *wineHost) findOrBuildTemplate() (string, error) {
	if w.version == "" {
		_, out, err := w.run(w.workDir, time.Minute, w.wine, "--version")
		if err != nil {
			return "", fmt.Errorf("%s --version: %w", w.wine, err)
		}
		w.version = strings.TrimSpace(string(out))
	}
	if w.cacheDir == "" {
		dir := filepath.Join(w.workDir, "template")
		return dir, w.buildTemplate(dir)
	}
	if err := os.MkdirAll(w.cacheDir, 0o755); err != nil {
		return "", err
	}
	dir := filepath.Join(w.cacheDir, "template-"+strings.Trim(unsafeChars.ReplaceAllString(w.version, "-"), "-"))
	if fileExists(filepath.Join(dir, templateMarker)) {
		return dir, nil
	}
	// Labs started together share the cache: one builds, the others wait.
	lock, err := os.OpenFile(filepath.Join(w.cacheDir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", err
	}
	defer func() { _ = syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) }()
	if fileExists(filepath.Join(dir, templateMarker)) {
		return dir, nil
	}
	_ = os.RemoveAll(dir)
	tmp, err := os.MkdirTemp(w.cacheDir, "build-")
	if err != nil {
		return "", err
	}
	w.watch(tmp)
	if err := w.buildTemplate(tmp); err != nil {
		_ = os.RemoveAll(tmp)
		return "", err
	}
	if err := os.Rename(tmp, dir); err != nil {
		_ = os.RemoveAll(tmp)
		return "", err
	}
	return dir, nil
}

// buildTemplate makes a fresh Windows in dir with `wineboot -i`. Wine saves
// the registry when its wineserver ends, so the server is ended before the
// template is used.
func (w *wineHost) buildTemplate(dir string) error {
	start := time.Now()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	p := &winePrefix{dir: dir}
	if err := w.startServer(p); err != nil {
		return err
	}
	code, out, err := w.run(dir, wineTimeout, w.wine, "wineboot", "-i")
	w.stopServer(p)
	if err != nil {
		return fmt.Errorf("wineboot -i: %w", err)
	}
	if code != 0 {
		return fmt.Errorf("wineboot -i exited with %d: %s", code, bytes.TrimSpace(out))
	}
	if !fileExists(filepath.Join(dir, "system.reg")) {
		return fmt.Errorf("wineboot -i left no system.reg in %s", dir)
	}
	// Debian's Wine names the server's directory under TMPDIR in this file:
	// each copy gets its own.
	_ = os.Remove(filepath.Join(dir, "wineserver"))
	if err := os.WriteFile(filepath.Join(dir, templateMarker), []byte(w.version+"\n"), 0o644); err != nil {
		return err
	}
	log.Printf("wine: template prefix built in %s (%s)", time.Since(start).Round(time.Millisecond), w.version)
	return nil
}

// ---- per-VM prefixes --------------------------------------------------------

// prefix returns the VM's prefix, creating it on first use: a copy of the
// template with its own wineserver, then `seed` (the lab file's initial
// registry values).
func (w *wineHost) prefix(key, name string, seed func(dir string) error) (*winePrefix, error) {
	if !w.available() {
		return nil, errors.New(w.missing)
	}
	w.mu.Lock()
	if w.stopped {
		w.mu.Unlock()
		return nil, errors.New("the lab is stopping")
	}
	p := w.prefixes[key]
	if p == nil {
		p = &winePrefix{dir: filepath.Join(w.workDir, key+"-"+unsafeChars.ReplaceAllString(name, "_")), ready: make(chan struct{})}
		w.prefixes[key] = p
		w.mu.Unlock()
		p.err = w.makePrefix(p, seed)
		if p.err != nil {
			log.Printf("wine: prefix for %s: %v", name, p.err)
		}
		close(p.ready)
	} else {
		w.mu.Unlock()
		<-p.ready
	}
	return p, p.err
}

// existing returns the VM's prefix if it has been made.
func (w *wineHost) existing(key string) *winePrefix {
	w.mu.Lock()
	p := w.prefixes[key]
	w.mu.Unlock()
	if p == nil {
		return nil
	}
	<-p.ready
	if p.err != nil {
		return nil
	}
	return p
}

func (w *wineHost) makePrefix(p *winePrefix, seed func(dir string) error) error {
	start := time.Now()
	tmpl, err := w.templateDir()
	if err != nil {
		return fmt.Errorf("building the template Wine prefix: %w", err)
	}
	if err := copyPrefix(tmpl, p.dir); err != nil {
		return fmt.Errorf("copying the template Wine prefix: %w", err)
	}
	if err := w.startServer(p); err != nil {
		return err
	}
	if seed != nil {
		if err := seed(p.dir); err != nil {
			return err
		}
	}
	log.Printf("wine: prefix %s ready in %s", filepath.Base(p.dir), time.Since(start).Round(time.Millisecond))
	return nil
}

// copyPrefix copies a prefix: directories and symbolic links as they are,
// big files as hard links (copies across file systems), the rest copied.
func copyPrefix(from, to string) error {
	return filepath.WalkDir(from, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, path)
		if rel == templateMarker || rel == "wineserver" {
			return nil
		}
		dst := filepath.Join(to, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.MkdirAll(dst, info.Mode().Perm())
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(path)
			if err != nil {
				return err
			}
			return os.Symlink(target, dst)
		case !info.Mode().IsRegular():
			return nil
		case info.Size() >= linkMinSize && !strings.HasSuffix(rel, ".reg"):
			if os.Link(path, dst) == nil {
				return nil
			}
		}
		return copyFile(path, dst, info)
	})
}

func copyFile(from, to string, info fs.FileInfo) error {
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, info.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		_ = dst.Close()
		return err
	}
	if err := dst.Close(); err != nil {
		return err
	}
	return os.Chtimes(to, info.ModTime(), info.ModTime())
}

// ---- wineservers ------------------------------------------------------------

// startServer starts the prefix's persistent wineserver in the foreground
// (a child of the lab) and waits until it accepts connections: without it
// every Wine command would start a server of its own and wait for it.
func (w *wineHost) startServer(p *winePrefix) error {
	cmd := w.command(p.dir, w.wineserver, "-f", "-p")
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting wineserver: %w", err)
	}
	p.server = cmd
	p.exited = make(chan struct{})
	go func() { _ = cmd.Wait(); close(p.exited) }()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-p.exited:
			return fmt.Errorf("wineserver for %s exited at start (%s)", p.dir, cmd.ProcessState)
		default:
		}
		for _, s := range serverSockets(p.dir) {
			if c, err := net.Dial("unix", s); err == nil {
				_ = c.Close()
				return nil
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("wineserver for %s did not start listening within 30 s", p.dir)
}

// serverSockets: where the wineserver of a prefix listens. Wine uses
// /tmp/.wine-UID/server-DEV-INODE; Debian's Wine a directory under TMPDIR
// named in the prefix's file "wineserver".
func serverSockets(prefix string) []string {
	st, err := os.Stat(prefix)
	if err != nil {
		return nil
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	server := fmt.Sprintf("server-%x-%x", sys.Dev, sys.Ino)
	out := []string{filepath.Join("/tmp", ".wine-"+strconv.Itoa(os.Getuid()), server, "socket")}
	if name, err := os.ReadFile(filepath.Join(prefix, "wineserver")); err == nil {
		out = append(out, filepath.Join(tmpDir, strings.TrimSpace(string(name)), server, "socket"))
	}
	return out
}

// stopServer ends the prefix's Wine processes and its wineserver (which
// saves the registry), then removes the server's directory under TMPDIR.
func (w *wineHost) stopServer(p *winePrefix) {
	if p.server == nil {
		return
	}
	select {
	case <-p.exited:
	default:
		_, _, _ = w.run(p.dir, 20*time.Second, w.wineserver, "-k")
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-p.server.Process.Pid, syscall.SIGKILL)
			<-p.exited
		}
	}
	removeServerDir(p.dir)
}

// removeServerDir removes the directory Debian's Wine made under TMPDIR for
// the prefix's wineserver (named in the prefix's file "wineserver").
func removeServerDir(prefix string) {
	if name, err := os.ReadFile(filepath.Join(prefix, "wineserver")); err == nil {
		if n := strings.TrimSpace(string(name)); strings.HasPrefix(n, "wine-") && !strings.ContainsAny(n, "/\\") {
			_ = os.RemoveAll(filepath.Join(tmpDir, n))
		}
	}
}

// stop ends every wineserver and removes the VM prefixes (and a template kept
// in the run directory); the cache is kept.
func (w *wineHost) stop() {
	w.mu.Lock()
	w.stopped = true
	building, template := w.building, w.template
	prefixes := make([]*winePrefix, 0, len(w.prefixes))
	for _, p := range w.prefixes {
		prefixes = append(prefixes, p)
	}
	w.mu.Unlock()
	if building != nil {
		// a template build in progress ends with its wineboot (killed at
		// the lab's exit otherwise)
		select {
		case <-building:
		case <-time.After(30 * time.Second):
		}
	}
	var wg sync.WaitGroup
	for _, p := range prefixes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case <-p.ready:
			case <-time.After(30 * time.Second):
			}
			w.stopServer(p)
		}()
	}
	wg.Wait()
	// Wine's services of a prefix whose server did not answer -k
	if n := killWineProcesses(w.workDir); n > 0 {
		log.Printf("wine: killed %d Wine processes left after wineserver -k", n)
	}
	if w.watchdog != nil {
		_ = w.watchdogIn.Close()
		_ = w.watchdog.Wait()
	}
	if len(prefixes) > 0 || template != "" {
		log.Printf("wine: stopped the wineservers of %d prefixes", len(prefixes))
	}
	_ = os.RemoveAll(w.workDir)
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
