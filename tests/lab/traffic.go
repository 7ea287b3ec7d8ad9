package main

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"sync"
)

// trafficCounter counts the bytes of the SOAP API, per method: the request
// bodies received and the response bodies sent. What a client reads from
// vCenter is what `sent` counts; GET /lab/traffic shows both.
type trafficCounter struct {
	mu       sync.Mutex
	sent     map[string]int64
	received map[string]int64
}

func newTrafficCounter() *trafficCounter {
	return &trafficCounter{sent: map[string]int64{}, received: map[string]int64{}}
}

func (t *trafficCounter) snapshot() map[string]map[string]int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := map[string]map[string]int64{"sent": {}, "received": {}}
	for k, v := range t.sent {
		out["sent"][k] = v
	}
	for k, v := range t.received {
		out["received"][k] = v
	}
	return out
}

func (t *trafficCounter) reset() {
	t.mu.Lock()
	t.sent, t.received = map[string]int64{}, map[string]int64{}
	t.mu.Unlock()
}

func (t *trafficCounter) add(method string, sent, received int64) {
	t.mu.Lock()
	t.sent[method] += sent
	t.received[method] += received
	t.mu.Unlock()
}

// wrap counts the traffic of every SOAP call (inside guard, which has read
// the call's method and left its body to be read again).
func (t *trafficCounter) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		method := "?"
		if cs := callOfRequest(r); cs != nil && cs.method != "" {
			method = cs.method
		}
		cw := &countingWriter{ResponseWriter: w}
		defer func() { t.add(method, cw.n, max(r.ContentLength, 0)) }()
		next.ServeHTTP(cw, r)
	})
}

// countingWriter counts the body bytes written; a dropped connection still
// goes through (Hijack).
type countingWriter struct {
	http.ResponseWriter
	n int64
}

func (c *countingWriter) Write(b []byte) (int, error) {
	n, err := c.ResponseWriter.Write(b)
	c.n += int64(n)
	return n, err
}

func (c *countingWriter) Flush() {
	if f, ok := c.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (c *countingWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if hj, ok := c.ResponseWriter.(http.Hijacker); ok {
		return hj.Hijack()
	}
	return nil, nil, fmt.Errorf("connection cannot be taken over")
}
