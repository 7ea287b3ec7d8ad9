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

// killWineProcesses kills every process whose WINEPREFIX is under dir:
// Wine's own services (services.exe, winedevice.exe, explorer.exe ...) run
// in sessions of their own and outlive a wineserver that is killed.
func killWineProcesses(dir string) int {
	want := []byte("WINEPREFIX=" + filepath.Clean(dir) + "/")
	killed := 0
	for pass := 0; pass < 3; pass++ {
		entries, _ := os.ReadDir("/proc")
		n := 0
		for _, e := range entries {
			pid, err := strconv.Atoi(e.Name())
			if err != nil || pid == os.Getpid() {
				continue
			}
			env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
			if err != nil {
				continue
			}
			for _, kv := range bytes.Split(env, []byte{0}) {
				if bytes.HasPrefix(kv, want) {
					if syscall.Kill(pid, syscall.SIGKILL) == nil {
						n++
					}
					break
				}
			}
		}
		killed += n
		if n == 0 {
			break
		}
	}
	return killed
}
