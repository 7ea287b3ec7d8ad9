package main

// Wine prefixes that play the VMs' Windows guests.
//
// One template prefix (`wineboot -i`, 6-18 s) is built the first time a
// guest is needed, in the cache directory (--wine-cache, shared by every lab
// that names it, keyed by Wine's version) or else in RUNDIR/wine/template.
// Each VM gets its own copy under RUNDIR/wine/ (big files hard-linked, the
// registry files copied) with its own persistent wineserver (wineserver.go).

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
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

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
