package main

// Control API for the guests (see control.go): what a test reads straight
// from a VM's Wine prefix, not through the vSphere calls.
//
//	GET  /lab/guests/{vm}       {"vm", "moref", "prefix" (null until first used), "temp_files": [...]}
//	POST /lab/guests/{vm}/reg   {"args": ["query", "HKLM\\...", "/v", "TimeOutValue"]}
//	                            -> {"exit_code": N, "output": "..."}: reg.exe in the VM's prefix

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
)

func (l *Lab) registerGuestControl(mux *http.ServeMux) {
	mux.HandleFunc("GET /lab/guests/{vm}", func(w http.ResponseWriter, r *http.Request) {
		vm := l.guestVMNamed(r.PathValue("vm"))
		if vm == nil {
			jsonError(w, http.StatusNotFound, fmt.Errorf("no VM %q in the lab file", r.PathValue("vm")))
			return
		}
		out := map[string]any{"vm": vm.name, "moref": vm.key, "prefix": nil, "temp_files": []string{}}
		if p := l.guests.wine.existing(vm.key); p != nil {
			out["prefix"] = p.dir
			names := []string{}
			entries, _ := os.ReadDir(filepath.Join(p.dir, "drive_c", "windows", "temp"))
			for _, e := range entries {
				names = append(names, e.Name())
			}
			sort.Strings(names)
			out["temp_files"] = names
		}
		writeJSON(w, http.StatusOK, out)
	})
	mux.HandleFunc("POST /lab/guests/{vm}/reg", func(w http.ResponseWriter, r *http.Request) {
		vm := l.guestVMNamed(r.PathValue("vm"))
		if vm == nil {
			jsonError(w, http.StatusNotFound, fmt.Errorf("no VM %q in the lab file", r.PathValue("vm")))
			return
		}
		var req struct {
			Args []string `json:"args"`
		}
		body, err := readBody(r)
		if err == nil {
			err = strictJSON(body, &req)
		}
		if err == nil && len(req.Args) == 0 {
			err = errors.New("args: reg.exe's arguments, e.g. [\"query\", \"HKLM\\\\...\"]")
		}
		if err != nil {
			jsonError(w, http.StatusBadRequest, err)
			return
		}
		g := l.guests
		if !g.wine.available() {
			jsonError(w, http.StatusServiceUnavailable, errors.New(g.wine.missing))
			return
		}
		p, fault := g.prefix(vm)
		if fault != nil {
			jsonError(w, http.StatusServiceUnavailable, errors.New(fault.String))
			return
		}
		code, output, err := g.wine.run(p.dir, wineTimeout, g.wine.wine, append([]string{"reg.exe"}, req.Args...)...)
		if err != nil {
			jsonError(w, http.StatusInternalServerError, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"exit_code": code, "output": string(output)})
	})
}

// guestVMNamed finds a VM of the lab file by name (escaped as vCenter
// returns it, or as typed in the lab file) or moref value. A name other
// datacenters repeat is the first datacenter's VM (the others' by moref).
func (l *Lab) guestVMNamed(name string) *guestVM {
	l.mu.Lock()
	defer l.mu.Unlock()
	var found *guestVM
	for key, spec := range l.vmSpecs {
		if key == name {
			return &guestVM{key: key, name: spec.Name, spec: spec}
		}
		if spec.Name != name && spec.Typed != name {
			continue
		}
		if spec.datacenter == l.file.Datacenter {
			return &guestVM{key: key, name: spec.Name, spec: spec}
		}
		if found == nil || key < found.key {
			found = &guestVM{key: key, name: spec.Name, spec: spec}
		}
	}
	return found
}
