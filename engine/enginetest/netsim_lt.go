package enginetest

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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
		"dht_bootstrap": o.DHTBootstrap, "seed_mode": o.SeedMode, "upload_mode": o.UploadMode, "no_pex": o.NoPEX,
		"progress": o.Progress, "exit_when_done": o.ExitWhenDone,
		"timeout": o.Timeout.Seconds(), "settings": o.Settings,
		"peer_log": o.PeerLog, "cap_local_peers": o.CapLocalPeers,
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

// StartOpentracker starts opentracker (as the package-level
// StartOpentracker does) inside the host's namespace on port 6969 of its
// IPv4 address, serving infoHashes, and waits until it accepts announces.
// Its URLs are known before it starts: TrackerURL.
func (h *NetHost) StartOpentracker(t testing.TB, infoHashes ...string) *Tracker {
	t.Helper()
	bin := RequireTool(t, "opentracker", "opentracker")
	dir := t.TempDir() // opentracker chroots here and drops to nobody
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	wl := filepath.Join(dir, "wl.txt")
	if err := os.WriteFile(wl, []byte(strings.Join(infoHashes, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(wl, 0o644); err != nil {
		t.Fatal(err)
	}
	ip := h.Addr().String()
	p := h.Start(t, bin, "-i", ip, "-p", "6969", "-P", "6969", "-d", dir, "-w", "/wl.txt")
	tr := &Tracker{Proc: p, HTTP: h.TrackerURL(), UDP: "udp://" + ip + ":6969"}
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DialContext: h.DialContext, DisableKeepAlives: true}}
	q := url.Values{"peer_id": {"-SF0000-whitelistprb"}, "port": {"1"}, "left": {"0"}}
	get := func(ih string) (string, error) {
		raw, err := hex.DecodeString(ih)
		if err != nil || len(raw) != 20 {
			return "", fmt.Errorf("bad info hash %q", ih)
		}
		q.Set("info_hash", string(raw))
		resp, err := client.Get(tr.HTTP + "?" + q.Encode())
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return string(body), err
	}
	deadline := time.Now().Add(15 * time.Second)
	for _, ih := range infoHashes[:min(len(infoHashes), 1)] {
		for {
			// opentracker loads its whitelist after it starts listening.
			if body, err := get(ih); err == nil && !strings.Contains(body, "failure reason") {
				q.Set("event", "stopped") // the probe leaves again
				if _, err := get(ih); err != nil {
					t.Fatalf("removing the whitelist probe: %v", err)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("opentracker on %s never accepted %s:\n%s", h.Name(), ih, p.Output())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return tr
}

// TrackerURL is the HTTP announce URL of StartOpentracker on h.
func (h *NetHost) TrackerURL() string { return "http://" + h.Addr().String() + ":6969/announce" }
