//go:build !linux

package main

import "syscall"

func wineProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// killWineProcesses: only Linux lists processes with their environment;
// elsewhere `wineserver -k` alone ends a prefix's processes.
func killWineProcesses(dir string) int { return 0 }
