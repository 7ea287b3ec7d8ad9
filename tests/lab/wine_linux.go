package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// wineProcAttr: Wine processes in their own process group, killed if the
// lab dies.
func wineProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// killWineProcesses kills every process whose WINEPREFIX is dir or under it:
// Wine's own services (services.exe, winedevice.exe, explorer.exe ...) run
// in sessions of their own and outlive a wineserver that is killed. They are
// all stopped first, then killed: a Wine process that sees its server go
// starts another one.
func killWineProcesses(dir string) int {
	prefix := []byte("WINEPREFIX=" + filepath.Clean(dir))
	inside := func(kv []byte) bool { // the prefix dir itself, or one under it
		return bytes.HasPrefix(kv, prefix) && (len(kv) == len(prefix) || kv[len(prefix)] == '/')
	}
	stopped := map[int]bool{}
	for pass := 0; pass < 10; pass++ {
		found := 0
		entries, _ := os.ReadDir("/proc")
		for _, e := range entries {
			pid, err := strconv.Atoi(e.Name())
			if err != nil || pid == os.Getpid() || stopped[pid] {
				continue
			}
			env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
			if err != nil {
				continue
			}
			for _, kv := range bytes.Split(env, []byte{0}) {
				if inside(kv) {
					if syscall.Kill(pid, syscall.SIGSTOP) == nil {
						stopped[pid] = true
						found++
					}
					break
				}
			}
		}
		if found == 0 {
			break
		}
	}
	for pid := range stopped {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	return len(stopped)
}
