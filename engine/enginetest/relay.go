package enginetest

import (
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/metainfo"
)

// relayInterval is the announce interval an announce relay puts into the
// tracker's answers.
const relayInterval = 2 * time.Second

// maxTrackerAnswer caps what a relay reads of one tracker answer.
const maxTrackerAnswer = 1 << 20

// announceRelay forwards a client's HTTP tracker requests (announce and
// scrape) to one tracker, from a fixed source address, and shortens the
// announce interval in the answers to relayInterval.
//
// It exists for clients whose announce interval cannot be configured and
// whose early announce can be wrong: transmission-cli 3.00 announces
// "started" while it still verifies existing data (with "left" counting
// what it has not verified yet) and, since it downloads nothing, sends no
// "completed" afterwards; opentracker's interval is half an hour, so the
// tracker would count a complete seeder as a leecher for the whole test.
// With the relay the client announces again every relayInterval with its
// real "left".
type announceRelay struct {
	target *url.URL // the tracker's announce URL
	client *http.Client
}

// startAnnounceRelay starts a relay on ip for the tracker announce URL
// target (http only), leaving from ip so the tracker sees that address,
// and stops it in t.Cleanup. It returns the URL to announce to instead.
func startAnnounceRelay(t testing.TB, ip, target string) string {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		t.Fatalf("announce relay: want an http tracker URL, got %q (%v)", target, err)
	}
	dialer := &net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	tr := &http.Transport{DialContext: dialer.DialContext, DisableKeepAlives: true}
	rl := &announceRelay{target: u, client: &http.Client{Transport: tr, Timeout: 20 * time.Second}}
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatalf("announce relay: %v", err)
	}
	srv := &http.Server{Handler: rl, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln) // returns http.ErrServerClosed after Close
	}()
	t.Cleanup(func() {
		srv.Close()
		tr.CloseIdleConnections()
		<-done
	})
	return "http://" + ln.Addr().String() + u.Path
}

// ServeHTTP forwards one request to the tracker's host with the client's
// path (announce, or the scrape URL clients derive from it) and raw query,
// which holds binary info hashes that must pass unchanged.
func (rl *announceRelay) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	fwd := *rl.target
	fwd.Path = r.URL.Path
	fwd.RawPath = ""
	fwd.RawQuery = r.URL.RawQuery
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, fwd.String(), nil)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	resp, err := rl.client.Do(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTrackerAnswer))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	if resp.StatusCode == http.StatusOK && strings.HasSuffix(r.URL.Path, "/announce") {
		body = shortenInterval(body, relayInterval)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		w.Header().Set("Content-Type", ct)
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(body)
}

// shortenInterval returns a tracker's announce answer with its "interval"
// and "min interval" set to at most every; failures and answers that are
// not a bencoded dictionary pass unchanged.
func shortenInterval(body []byte, every time.Duration) []byte {
	v, err := metainfo.Decode(body)
	if err != nil {
		return body
	}
	d, ok := v.(map[string]any)
	if !ok {
		return body
	}
	if _, failed := d["failure reason"]; failed {
		return body
	}
	secs := int64(every / time.Second)
	for _, k := range []string{"interval", "min interval"} {
		if cur, ok := d[k].(int64); !ok || cur > secs {
			d[k] = secs
		}
	}
	out, err := metainfo.Marshal(d)
	if err != nil {
		return body
	}
	return out
}

// relayTorrent writes a copy of the .torrent at path whose HTTP trackers
// are replaced by relays on ip (see announceRelay) and returns the copy's
// path. The info dictionary, and so the info hash, stay the same. A
// torrent without HTTP trackers is returned as it is.
func relayTorrent(t testing.TB, ip, path string) string {
	t.Helper()
	mi, err := metainfo.LoadFile(path)
	if err != nil {
		t.Fatalf("announce relay: %v", err)
	}
	relays := map[string]string{}
	relayed := func(u string) string {
		if !strings.HasPrefix(u, "http://") {
			return u
		}
		if r, ok := relays[u]; ok {
			return r
		}
		relays[u] = startAnnounceRelay(t, ip, u)
		return relays[u]
	}
	mi.Announce = relayed(mi.Announce)
	for _, tier := range mi.AnnounceList {
		for i, u := range tier {
			tier[i] = relayed(u)
		}
	}
	if len(relays) == 0 {
		return path
	}
	b, err := mi.Bytes()
	if err != nil {
		t.Fatalf("announce relay: %v", err)
	}
	out := filepath.Join(t.TempDir(), filepath.Base(path))
	if err := os.WriteFile(out, b, 0o644); err != nil {
		t.Fatal(err)
	}
	check, err := metainfo.LoadFile(out)
	if err != nil {
		t.Fatalf("announce relay: rewritten torrent: %v", err)
	}
	if check.InfoHash != mi.InfoHash {
		t.Fatalf("announce relay: rewritten torrent has info hash %s, want %s", check.InfoHash, mi.InfoHash)
	}
	return out
}
