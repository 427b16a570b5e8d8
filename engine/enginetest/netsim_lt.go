package enginetest

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// StartLibtorrent starts a libtorrent session (as the package-level
// StartLibtorrent does) inside the host's namespace and waits until it
// listens. An empty o.IP means the host's address.
func (h *NetHost) StartLibtorrent(t testing.TB, o LTOptions) *LT {
	t.Helper()
	RequireLibtorrent(t)
	if o.IP == "" {
		o.IP = h.Addr().String()
	}
	script := filepath.Join(t.TempDir(), "lt.py")
	if err := os.WriteFile(script, ltScript, 0o644); err != nil {
		t.Fatal(err)
	}
	if o.Timeout == 0 {
		o.Timeout = 10 * time.Minute
	}
	js, err := json.Marshal(map[string]any{
		"ip": o.IP, "port": o.Port, "torrent": o.Torrent, "magnet": o.Magnet,
		"save_path": o.SavePath, "peers": o.Peers, "dht": o.DHT,
		"dht_bootstrap": o.DHTBootstrap, "seed_mode": o.SeedMode,
		"progress": o.Progress, "exit_when_done": o.ExitWhenDone,
		"timeout": o.Timeout.Seconds(),
	})
	if err != nil {
		t.Fatal(err)
	}
	p := h.Start(t, Python, script, string(js))
	port := p.WaitLine(t, "listening ", 30*time.Second)
	if _, err := strconv.Atoi(port); err != nil {
		t.Fatalf("libtorrent printed a bad port %q", port)
	}
	return &LT{Proc: p, Addr: net.JoinHostPort(o.IP, port)}
}
