package main

// Guest files: paths on C: inside a VM's Wine prefix, and the file calls
// (InitiateFileTransferFromGuest with its one-time HTTPS download,
// DeleteFileInGuest).

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"log"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// hostPath maps a Windows path on C: to the file in the prefix, matching
// each component without regard to case as Windows does. exists is false
// when the file is not there (path is then where it would be).
func hostPath(prefix, winPath string) (path string, exists bool) {
	p := strings.ReplaceAll(winPath, "/", `\`)
	if len(p) < 3 || !strings.EqualFold(p[:3], `c:\`) {
		return "", false
	}
	path = filepath.Join(prefix, "drive_c")
	parts := strings.Split(p[3:], `\`)
	for i, part := range parts {
		if part == "" {
			continue
		}
		if part == "." || part == ".." {
			return "", false
		}
		next := filepath.Join(path, part)
		if _, err := os.Lstat(next); err != nil {
			entries, _ := os.ReadDir(path)
			found := false
			for _, e := range entries {
				if strings.EqualFold(e.Name(), part) {
					next, found = filepath.Join(path, e.Name()), true
					break
				}
			}
			if !found {
				return filepath.Join(append([]string{path}, parts[i:]...)...), false
			}
		}
		path = next
	}
	return path, true
}

// ---- files ------------------------------------------------------------------

// guestFileHandler serves the file calls (no per-object lock, as above).
type guestFileHandler struct {
	*simulator.GuestFileManager
	g *guestOps
}

func (h *guestFileHandler) Lock()   {}
func (h *guestFileHandler) Unlock() {}

// file resolves a guest file path for a file call: the fault when it is
// not there or not a file.
func (g *guestOps) file(vm *guestVM, winPath string) (string, *soap.Fault) {
	p, fault := g.prefix(vm)
	if fault != nil {
		return "", fault
	}
	path, ok := hostPath(p.dir, winPath)
	if !ok {
		return "", fileNotFound(winPath)
	}
	if isDir(path) {
		return "", guestFault(fmt.Sprintf("%s is not a file", winPath), &types.NotAFile{FileFault: types.FileFault{File: winPath}})
	}
	return path, nil
}

func fileNotFound(winPath string) *soap.Fault {
	return guestFault(fmt.Sprintf("File %s was not found", winPath), &types.FileNotFound{FileFault: types.FileFault{File: winPath}})
}

func (h *guestFileHandler) InitiateFileTransferFromGuest(ctx *simulator.Context, req *types.InitiateFileTransferFromGuest) soap.HasFault {
	body := new(methods.InitiateFileTransferFromGuestBody)
	vm, fault := h.g.check(ctx, req.Vm, req.Auth)
	var path string
	if fault == nil {
		path, fault = h.g.file(vm, req.GuestFilePath)
	}
	var info os.FileInfo
	if fault == nil {
		var err error
		if info, err = os.Stat(path); err != nil {
			fault = fileNotFound(req.GuestFilePath)
		}
	}
	if fault != nil {
		body.Fault_ = fault
		return body
	}
	mtime := info.ModTime()
	body.Res = &types.InitiateFileTransferFromGuestResponse{Returnval: types.FileTransferInformation{
		Attributes: &types.GuestWindowsFileAttributes{GuestFileAttributes: types.GuestFileAttributes{ModificationTime: &mtime}},
		Size:       info.Size(),
		Url:        h.g.addTransfer(path),
	}}
	return body
}

func (h *guestFileHandler) DeleteFileInGuest(ctx *simulator.Context, req *types.DeleteFileInGuest) soap.HasFault {
	body := new(methods.DeleteFileInGuestBody)
	vm, fault := h.g.check(ctx, req.Vm, req.Auth)
	var path string
	if fault == nil {
		path, fault = h.g.file(vm, req.FilePath)
	}
	if fault == nil && os.Remove(path) != nil {
		fault = fileNotFound(req.FilePath)
	}
	if fault != nil {
		body.Fault_ = fault
		return body
	}
	body.Res = new(types.DeleteFileInGuestResponse)
	return body
}

// addTransfer registers a one-time download and returns its URL in
// vCenter's form: the host "*" means the server the client talks to.
func (g *guestOps) addTransfer(path string) string {
	token := make([]byte, 16)
	_, _ = rand.Read(token)
	g.mu.Lock()
	defer g.mu.Unlock()
	for id, t := range g.transfers {
		if time.Now().After(t.expires) {
			delete(g.transfers, id)
		}
	}
	g.nextID++
	id := strconv.Itoa(g.nextID)
	g.transfers[id] = &fileTransfer{token: hex.EncodeToString(token), path: path, expires: time.Now().Add(transferTTL)}
	return (&url.URL{
		Scheme:   "https",
		Host:     "*",
		Path:     "/guestFile",
		RawQuery: url.Values{"id": {id}, "token": {g.transfers[id].token}}.Encode(),
	}).String()
}

// serveFile answers GET /guestFile?id=N&token=T with the file's bytes, once.
func (g *guestOps) serveFile(w http.ResponseWriter, r *http.Request) {
	id, token := r.URL.Query().Get("id"), r.URL.Query().Get("token")
	g.mu.Lock()
	t := g.transfers[id]
	ok := t != nil && subtle.ConstantTimeCompare([]byte(token), []byte(t.token)) == 1 && time.Now().Before(t.expires)
	if ok {
		delete(g.transfers, id)
	}
	g.mu.Unlock()
	if !ok {
		http.Error(w, "no such file transfer", http.StatusNotFound)
		return
	}
	data, err := os.ReadFile(t.path)
	if err != nil {
		log.Printf("guest file transfer %s: %v", id, err)
		http.Error(w, "the file is gone", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	_, _ = w.Write(data)
}
