package main

// Control API, served on the same TLS port as the SDK, under /lab/:
//
//	GET    /lab/              lab info (url, credentials, counts)
//	GET    /lab/calls         SOAP calls received, per method: {"Login": 1, ...}
//	DELETE /lab/calls         reset the call counts (and the traffic)
//	GET    /lab/traffic       SOAP bytes per method: {"sent": {"RetrievePropertiesEx": N, ...}, "received": {...}}
//	GET    /lab/faults        installed fault rules with their seen/hits counters
//	POST   /lab/faults        install rules: one JSON object or a list -> {"ids": [...]}
//	DELETE /lab/faults        remove every rule
//	DELETE /lab/faults/{id}   remove one rule
//	POST   /lab/sessions/end  end every session -> {"ended": N}
//	GET    /lab/guests/{vm}   a guest's Wine prefix and temp files (guestcontrol.go)
//	POST   /lab/guests/{vm}/reg  run reg.exe in a guest's Wine prefix
//	POST   /lab/vms/{vm}/snapshots  plant a snapshot the API would refuse (vsphere8.go)

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
)

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func jsonError(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, map[string]string{"error": err.Error()})
}

func (l *Lab) registerControl(mux *http.ServeMux, info func() map[string]any) {
	e := l.faults
	mux.HandleFunc("GET /lab/{$}", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, info())
	})
	mux.HandleFunc("GET /lab/calls", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, e.callCounts())
	})
	mux.HandleFunc("DELETE /lab/calls", func(w http.ResponseWriter, r *http.Request) {
		e.resetCalls()
		l.traffic.reset()
		writeJSON(w, http.StatusOK, map[string]any{})
	})
	mux.HandleFunc("GET /lab/traffic", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, l.traffic.snapshot())
	})
	mux.HandleFunc("GET /lab/faults", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, e.list())
	})
	mux.HandleFunc("POST /lab/faults", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			jsonError(w, http.StatusBadRequest, err)
			return
		}
		var specs []FaultSpec
		trimmed := bytes.TrimSpace(body)
		if len(trimmed) > 0 && trimmed[0] == '[' {
			err = strictJSON(trimmed, &specs)
		} else {
			var one FaultSpec
			err = strictJSON(trimmed, &one)
			specs = []FaultSpec{one}
		}
		if err != nil {
			jsonError(w, http.StatusBadRequest, err)
			return
		}
		ids, err := e.add(specs...)
		if err != nil {
			jsonError(w, http.StatusBadRequest, err)
			return
		}
		writeJSON(w, http.StatusCreated, map[string]any{"ids": ids})
	})
	mux.HandleFunc("DELETE /lab/faults", func(w http.ResponseWriter, r *http.Request) {
		e.clear()
		writeJSON(w, http.StatusOK, map[string]any{})
	})
	mux.HandleFunc("DELETE /lab/faults/{id}", func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.Atoi(r.PathValue("id"))
		if err != nil {
			jsonError(w, http.StatusBadRequest, err)
			return
		}
		if !e.remove(id) {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such rule"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{})
	})
	mux.HandleFunc("POST /lab/sessions/end", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"ended": e.endSessions()})
	})
	l.registerGuestControl(mux)
	l.registerVMControl(mux)
}

func readBody(r *http.Request) ([]byte, error) {
	return io.ReadAll(r.Body)
}

func strictJSON(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}
