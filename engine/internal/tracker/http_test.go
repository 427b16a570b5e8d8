package tracker

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// binaryHash has bytes that need escaping: NUL, '%', '&', '=', '+', ' ',
// high bytes, and some unreserved ones that must stay as they are.
var binaryHash = [20]byte{0, '%', '&', '=', '+', ' ', 0xff, 0x80, 'a', 'Z', '9', '-', '.', '_', '~', '/', '?', '#', 1, 0x7f}

func testRequest() AnnounceRequest {
	var pid [20]byte
	copy(pid[:], "-SF0001-\x00\x01\x02\xfe\xff&=%+ xy")
	return AnnounceRequest{
		InfoHash: binaryHash, PeerID: pid, Port: 6881,
		Uploaded: 10, Downloaded: 20, Left: 30,
		Event: EventStarted, NumWant: 55, Key: 0xdeadbeef, TrackerID: "tid &=x",
	}
}

// serveBody returns a server answering every announce with body and
// recording the raw queries it saw.
func serveBody(t *testing.T, status int, body string) (*httptest.Server, chan string) {
	t.Helper()
	queries := make(chan string, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case queries <- r.URL.RawQuery:
		default:
		}
		w.WriteHeader(status)
		fmt.Fprint(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv, queries
}

func announceOnce(t *testing.T, c *Client, u string) (*AnnounceResponse, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	return c.Announce(ctx, u, testRequest())
}

func TestHTTPAnnounceQuery(t *testing.T) {
	srv, queries := serveBody(t, 200, "d8:intervali60e5:peers0:e")
	c := NewClient(Config{})
	defer c.Close()
	if _, err := announceOnce(t, c, srv.URL+"/announce?passkey=a%2Fb&x=1"); err != nil {
		t.Fatal(err)
	}
	raw := <-queries
	q, err := url.ParseQuery(raw)
	if err != nil {
		t.Fatalf("query %q: %v", raw, err)
	}
	req := testRequest()
	want := map[string]string{
		"passkey": "a/b", "x": "1",
		"info_hash": string(req.InfoHash[:]), "peer_id": string(req.PeerID[:]),
		"port": "6881", "uploaded": "10", "downloaded": "20", "left": "30",
		"compact": "1", "event": "started", "numwant": "55", "key": "deadbeef",
		"trackerid": "tid &=x",
	}
	for k, v := range want {
		if got := q.Get(k); got != v {
			t.Errorf("%s = %q, want %q (query %q)", k, got, v, raw)
		}
	}
	if !strings.HasPrefix(raw, "passkey=a%2Fb&x=1&") {
		t.Errorf("existing query not kept verbatim in front: %q", raw)
	}
	// Unreserved bytes stay literal, everything else is %XX.
	if !strings.Contains(raw, "info_hash=%00%25%26%3D%2B%20%FF%80aZ9-._~%2F%3F%23%01%7F&") {
		t.Errorf("info_hash not escaped as expected: %q", raw)
	}
}

func TestHTTPAnnounceNoEventNoTrackerID(t *testing.T) {
	srv, queries := serveBody(t, 200, "d8:intervali60e5:peers0:e")
	c := NewClient(Config{})
	defer c.Close()
	req := testRequest()
	req.Event, req.TrackerID, req.NumWant = EventNone, "", 0
	if _, err := c.Announce(t.Context(), srv.URL+"/a", req); err != nil {
		t.Fatal(err)
	}
	q, _ := url.ParseQuery(<-queries)
	for _, k := range []string{"event", "trackerid", "numwant"} {
		if q.Has(k) {
			t.Errorf("query has %s=%q", k, q.Get(k))
		}
	}
}

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func TestHTTPAnnounceResponses(t *testing.T) {
	v6 := "\x20\x01\x0d\xb8" + strings.Repeat("\x00", 11) + "\x01" + "\x1a\xe1"
	tests := []struct {
		name    string
		status  int
		body    string
		want    *AnnounceResponse
		wantErr error
		reason  string
	}{{
		name: "compact v4 and v6 with all fields",
		body: "d8:completei7e10:incompletei3e8:intervali1800e12:min intervali900e" +
			"5:peers12:\x7f\x00\x04\x02\x1a\xe1\x0a\x00\x00\x01\x00\x50" +
			"6:peers6" + fmt.Sprint(len(v6)) + ":" + v6 +
			"10:tracker id3:abc15:warning message4:slowe",
		want: &AnnounceResponse{Interval: 1800 * time.Second, MinInterval: 900 * time.Second,
			Peers:   []netip.AddrPort{ap("127.0.4.2:6881"), ap("10.0.0.1:80"), ap("[2001:db8::1]:6881")},
			Seeders: 7, Leechers: 3, TrackerID: "abc", Warning: "slow"},
	}, {
		name: "dictionary peers v4 and v6, junk entries skipped",
		body: "d8:intervali60e5:peersl" +
			"d2:ip9:127.0.4.37:peer id20:aaaaaaaaaaaaaaaaaaaa4:porti7000ee" +
			"d2:ip11:2001:db8::24:porti7001ee" +
			"d2:ip13:[2001:db8::3]4:porti7002ee" +
			"d2:ip11:example.com4:porti7003ee" + // host names are not resolved
			"d2:ip9:127.0.4.44:porti0ee" + // port 0
			"d2:ip9:127.0.4.54:porti70000ee" + // port out of range
			"d2:ip7:0.0.0.04:porti7004ee" + // unspecified
			"d4:porti7005ee" + // no ip
			"i5e" + // not a dict
			"d2:ip9:127.0.4.37:peer id20:bbbbbbbbbbbbbbbbbbbb4:porti7000ee" + // duplicate
			"ee",
		want: &AnnounceResponse{Interval: 60 * time.Second, Seeders: -1, Leechers: -1,
			Peers: []netip.AddrPort{ap("127.0.4.3:7000"), ap("[2001:db8::2]:7001"), ap("[2001:db8::3]:7002")}},
	}, {
		name: "intervals clamped, negative counts unknown, wrong types ignored",
		body: "d8:completei-1e10:incomplete1:x8:intervali99999999999e12:min intervali-5e5:peers8:\x01\x02\x03\x04\x00\x01\x09\x09e",
		want: &AnnounceResponse{Interval: MaxInterval, Seeders: -1, Leechers: -1,
			Peers: []netip.AddrPort{ap("1.2.3.4:1")}},
	}, {
		name: "trailing bytes after the dictionary are ignored",
		body: "d8:intervali60e5:peers0:e\r\n",
		want: &AnnounceResponse{Interval: time.Minute, Seeders: -1, Leechers: -1},
	}, {
		name:    "failure reason",
		body:    "d14:failure reason24:torrent not on whitelist8:intervali5ee",
		wantErr: ErrFailure, reason: "torrent not on whitelist",
	}, {
		name:    "failure reason with an HTTP error status",
		status:  403,
		body:    "d14:failure reason6:bannede",
		wantErr: ErrFailure, reason: "banned",
	}, {
		name: "HTTP error status without failure reason", status: 500,
		body: "internal error", wantErr: ErrHTTPStatus,
	}, {
		name: "not bencode", body: "<html>hi</html>", wantErr: ErrBadResponse,
	}, {
		name: "empty body", body: "", wantErr: ErrBadResponse,
	}, {
		name: "truncated", body: "d8:intervali60e5:peers12:\x7f", wantErr: ErrBadResponse,
	}, {
		name: "a list, not a dictionary", body: "le", wantErr: ErrBadResponse,
	}, {
		name: "no peers and no interval", body: "d3:fooi1ee", wantErr: ErrBadResponse,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status := tt.status
			if status == 0 {
				status = 200
			}
			srv, _ := serveBody(t, status, tt.body)
			c := NewClient(Config{})
			defer c.Close()
			u := srv.URL + "/announce"
			got, err := announceOnce(t, c, u)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				if tt.reason != "" {
					var fe *FailureError
					if !errors.As(err, &fe) || fe.Reason != tt.reason || fe.URL != u {
						t.Fatalf("err = %#v, want reason %q from %s", err, tt.reason, u)
					}
					if !strings.Contains(err.Error(), tt.reason) {
						t.Errorf("message %q lacks the tracker's text", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			checkResponse(t, got, tt.want)
		})
	}
}

func checkResponse(t *testing.T, got, want *AnnounceResponse) {
	t.Helper()
	if got.Interval != want.Interval || got.MinInterval != want.MinInterval ||
		got.Seeders != want.Seeders || got.Leechers != want.Leechers ||
		got.TrackerID != want.TrackerID || got.Warning != want.Warning ||
		!slices.Equal(got.Peers, want.Peers) {
		t.Errorf("got  %+v\nwant %+v", *got, *want)
	}
}

func TestHTTPBodyCap(t *testing.T) {
	big := "d8:intervali60e5:peers" + fmt.Sprint(6*1000) + ":" + strings.Repeat("\x7f\x00\x04\x01\x1a\xe1", 1000) + "e"
	srv, _ := serveBody(t, 200, big)
	c := NewClient(Config{MaxResponseBytes: 1024})
	defer c.Close()
	if _, err := announceOnce(t, c, srv.URL); !errors.Is(err, ErrBadResponse) {
		t.Fatalf("err = %v, want ErrBadResponse for a body over the cap", err)
	}
	// The default cap (2 MiB) takes it.
	c2 := NewClient(Config{})
	defer c2.Close()
	if _, err := announceOnce(t, c2, srv.URL); err != nil {
		t.Fatal(err)
	}
	// A body far over the default cap is refused without reading it all.
	huge, _ := serveBody(t, 200, "d5:peers"+fmt.Sprint(3<<20)+":"+strings.Repeat("x", 3<<20)+"e")
	if _, err := announceOnce(t, c2, huge.URL); !errors.Is(err, ErrBadResponse) {
		t.Fatalf("err = %v, want ErrBadResponse for 3 MiB", err)
	}
}

func TestHTTPPeerCap(t *testing.T) {
	var b strings.Builder
	for i := range 500 {
		b.Write([]byte{10, 0, byte(i >> 8), byte(i), 0x1a, 0xe1})
	}
	srv, _ := serveBody(t, 200, "d8:intervali60e5:peers3000:"+b.String()+"e")
	c := NewClient(Config{MaxPeers: 37})
	defer c.Close()
	r, err := announceOnce(t, c, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Peers) != 37 || r.Peers[36] != ap("10.0.0.36:6881") {
		t.Fatalf("got %d peers (last %v), want the first 37", len(r.Peers), r.Peers[len(r.Peers)-1])
	}
}

func TestHTTPRedirect(t *testing.T) {
	final, queries := serveBody(t, 200, "d8:intervali60e5:peers6:\x7f\x00\x04\x09\x00\x01e")
	redir := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, final.URL+"/announce?"+r.URL.RawQuery, http.StatusFound)
	}))
	defer redir.Close()
	c := NewClient(Config{})
	defer c.Close()
	r, err := announceOnce(t, c, redir.URL+"/announce")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.Peers, []netip.AddrPort{ap("127.0.4.9:1")}) {
		t.Fatalf("peers %v", r.Peers)
	}
	q, _ := url.ParseQuery(<-queries)
	if q.Get("info_hash") != string(binaryHash[:]) {
		t.Fatalf("info_hash lost in redirect: %q", q.Get("info_hash"))
	}
}

func TestHTTPTimeoutAndInjectedClient(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	var used bool
	hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		used = true
		return http.DefaultTransport.RoundTrip(r)
	})}
	c := NewClient(Config{HTTPClient: hc, Timeout: 200 * time.Millisecond})
	defer c.Close()
	_, err := c.Announce(t.Context(), srv.URL, testRequest())
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}
	if !used {
		t.Fatal("the injected HTTP client was not used")
	}
	// The caller's context is honoured as well.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	c2 := NewClient(Config{})
	defer c2.Close()
	if _, err := c2.Announce(ctx, srv.URL, testRequest()); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want canceled", err)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestAnnounceBadURLs(t *testing.T) {
	c := NewClient(Config{})
	for _, u := range []string{"wss://tracker/announce", "ftp://x", "no-scheme"} {
		if _, err := c.Announce(t.Context(), u, testRequest()); !errors.Is(err, ErrUnsupportedScheme) {
			t.Errorf("%s: err = %v, want ErrUnsupportedScheme", u, err)
		}
	}
	if _, err := c.Announce(t.Context(), "http://[::1", testRequest()); err == nil {
		t.Error("unparsable URL accepted")
	}
	if _, err := c.Announce(t.Context(), "udp://127.0.4.1/announce", testRequest()); err == nil || errors.Is(err, ErrNoResponse) {
		t.Errorf("UDP URL without port: err = %v", err)
	}
	c.Close()
	if _, err := c.Announce(t.Context(), "http://127.0.4.1:1/", testRequest()); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: err = %v, want ErrClosed", err)
	}
}

func TestHTTPCloseReleasesAnnounce(t *testing.T) {
	arrived := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-r.Context().Done()
	}))
	defer srv.Close()
	c := NewClient(Config{})
	errc := make(chan error, 1)
	go func() {
		_, err := c.Announce(context.Background(), srv.URL, testRequest())
		errc <- err
	}()
	select {
	case <-arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("request never arrived")
	}
	c.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("err = %v, want ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not release a blocked HTTP announce")
	}
}

// TestHTTPParseMemoryBounded checks that hostile 2 MiB answers (a million
// tiny list entries, a huge skipped value) cost about their own size in
// memory, not tens of times more.
func TestHTTPParseMemoryBounded(t *testing.T) {
	n := (2<<20 - 100) / 2
	bodies := map[string][]byte{
		"empty dict peers": []byte("d8:intervali60e5:peersl" + strings.Repeat("de", n) + "ee"),
		"nested lists":     []byte("d8:intervali60e5:peersl" + strings.Repeat("l", 60) + strings.Repeat("le", n-100) + strings.Repeat("e", 60) + "ee"),
		"unknown key":      []byte("d1:xl" + strings.Repeat("le", n) + "e8:intervali60e5:peers0:e"),
	}
	for name, body := range bodies {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := parseHTTPResponse(body, 50)
		runtime.ReadMemStats(&after)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if n := after.TotalAlloc - before.TotalAlloc; n > uint64(len(body)) {
			t.Errorf("%s: %d bytes allocated for a body of %d", name, n, len(body))
		}
	}
}

func TestHTTPSAnnounce(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("info_hash") != string(binaryHash[:]) {
			http.Error(w, "bad hash", 400)
			return
		}
		fmt.Fprint(w, "d8:intervali60e5:peers6:\x7f\x00\x04\x0a\x1a\xe1e")
	}))
	defer srv.Close()
	c := NewClient(Config{HTTPClient: srv.Client()}) // trusts the test certificate
	defer c.Close()
	r, err := announceOnce(t, c, srv.URL+"/announce")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.Peers, []netip.AddrPort{ap("127.0.4.10:6881")}) {
		t.Fatalf("peers %v", r.Peers)
	}
	// Without the injected client the test certificate is refused.
	c2 := NewClient(Config{})
	defer c2.Close()
	if _, err := announceOnce(t, c2, srv.URL+"/announce"); err == nil {
		t.Fatal("untrusted certificate accepted")
	}
}
