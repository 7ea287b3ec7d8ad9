package main

// The guests' wineservers: started per prefix, ended with the lab, and the
// watchdog that cleans up after a lab that was killed outright.

import (
	"bufio"
	"fmt"
	"log"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

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
	// a service still starting when -k came does not end with its server
	if n := killWineProcesses(p.dir); n > 0 {
		log.Printf("wine: killed %d Wine processes of %s left after wineserver -k", n, filepath.Base(p.dir))
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
