package webseed

import (
	"bytes"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testServer serves a fixture's files over HTTP from memory, honouring
// Range, unless its hook takes over. It counts requests, connections and
// the most requests in flight at once.
type testServer struct {
	*httptest.Server
	fx *fixture
	mu sync.Mutex // guards hook and corrupt
	// hook, when set, sees each request first (n counts from 1) and
	// returns true when it answered.
	hook hookFunc
	// corrupt flips a byte in the middle of every body served normally.
	corrupt bool

	requests, conns     atomic.Int64
	inFlight, maxAtOnce atomic.Int64
	quit                chan struct{} // closed at cleanup: stalled handlers return
}

type hookFunc func(w http.ResponseWriter, r *http.Request, n int64) bool

func newTestServer(t testing.TB, fx *fixture, hook hookFunc) *testServer {
	t.Helper()
	ts := &testServer{fx: fx, hook: hook, quit: make(chan struct{})}
	ts.Server = httptest.NewUnstartedServer(http.HandlerFunc(ts.serve))
	ts.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			ts.conns.Add(1)
		}
	}
	ts.Start()
	t.Cleanup(ts.Close)
	t.Cleanup(func() { close(ts.quit) }) // runs first: unblock stalls
	return ts
}

// setHook replaces the hook.
func (ts *testServer) setHook(h hookFunc) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.hook = h
}

// setCorrupt makes normal answers carry a wrong byte.
func (ts *testServer) setCorrupt() {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.corrupt = true
}

// URL returns the base URL with a final "/".
func (ts *testServer) URL() string { return ts.Server.URL + "/" }

func (ts *testServer) serve(w http.ResponseWriter, r *http.Request) {
	n := ts.requests.Add(1)
	cur := ts.inFlight.Add(1)
	defer ts.inFlight.Add(-1)
	for {
		m := ts.maxAtOnce.Load()
		if cur <= m || ts.maxAtOnce.CompareAndSwap(m, cur) {
			break
		}
	}
	ts.mu.Lock()
	hook := ts.hook
	ts.mu.Unlock()
	if hook != nil && hook(w, r, n) {
		return
	}
	ts.serveFile(w, r)
}

// serveFile answers like a plain file server.
func (ts *testServer) serveFile(w http.ResponseWriter, r *http.Request) {
	data, err := os.ReadFile(filepath.Join(ts.fx.dir, filepath.FromSlash(r.URL.Path)))
	if err != nil {
		http.NotFound(w, r)
		return
	}
	ts.mu.Lock()
	corrupt := ts.corrupt
	ts.mu.Unlock()
	if corrupt && len(data) > 0 {
		data = bytes.Clone(data)
		data[len(data)/2] ^= 0xff
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
}

// stall sends the response head and part of the body, then sends nothing
// until the client goes away or the test ends.
func (ts *testServer) stall(w http.ResponseWriter, r *http.Request) {
	ts.serveFile(&cutWriter{ResponseWriter: w, left: 100, stall: func() {
		select {
		case <-r.Context().Done():
		case <-ts.quit:
		}
	}}, r)
}

// cutWriter passes on the first left body bytes, then stalls (when stall
// is set) and fails every write, which makes the server close the
// connection before the promised Content-Length.
type cutWriter struct {
	http.ResponseWriter
	left  int
	stall func()
	once  sync.Once
}

var errCut = errors.New("cut")

func (c *cutWriter) Write(p []byte) (int, error) {
	if len(p) <= c.left {
		c.left -= len(p)
		return c.ResponseWriter.Write(p)
	}
	n, _ := c.ResponseWriter.Write(p[:c.left])
	c.left = 0
	if f, ok := c.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
	if c.stall != nil {
		c.once.Do(c.stall)
	}
	return n, errCut
}

// reset closes the connection without an answer.
func reset(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err == nil {
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // RST, not FIN
		}
		conn.Close()
	}
}
