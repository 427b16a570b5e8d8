package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/cmd/swarmfs/internal/library"
	"github.com/swarmfs/swarmfs/cmd/swarmfs/internal/library/librarytest"
	"github.com/swarmfs/swarmfs/engine/enginetest"
)

// syncBuf is an output buffer safe for concurrent use.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// served is a `swarmfs serve` running in this process.
type served struct {
	url, token string
	out, errs  *syncBuf
}

var servingRE = regexp.MustCompile(`serving \d+ torrent\(s\) at (http://\S+)/ .*API token in (\S+);`)

// startServe runs `swarmfs serve ARGS --http 127.0.0.1:0` in-process with
// its own XDG_RUNTIME_DIR, waits until it serves, and stops it at cleanup.
func startServe(t *testing.T, args ...string) *served {
	t.Helper()
	t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
	ctx, cancel := context.WithCancel(context.Background())
	s := &served{out: &syncBuf{}, errs: &syncBuf{}}
	done := make(chan int, 1)
	args = append([]string{"serve", "--http", "127.0.0.1:0"}, args...)
	go func() { done <- run(ctx, &env{stdout: s.out, stderr: s.errs}, args) }()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("serve exit %d: %s", code, s.errs)
			}
		case <-time.After(30 * time.Second):
			t.Error("serve did not stop within 30 s of its context ending")
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		if m := servingRE.FindStringSubmatch(s.out.String()); m != nil {
			s.url = m[1]
			fi, err := os.Stat(m[2])
			if err != nil || fi.Mode().Perm() != 0o600 {
				t.Fatalf("token file %s: %v, %v", m[2], fi, err)
			}
			b, _ := os.ReadFile(m[2])
			s.token = strings.TrimSpace(string(b))
			return s
		}
		select {
		case code := <-done:
			done <- code
			t.Fatalf("serve exited with %d: %s%s", code, s.out, s.errs)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not start: %s%s", s.out, s.errs)
		}
	}
}

// request sends one request with a deadline and returns status and body.
func request(t *testing.T, method, url string, body []byte, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, url, err)
	}
	return resp, b
}

// TestServeStreamsFromLibtorrent runs `swarmfs serve` on a torrent that
// only a libtorrent seeder has, and checks over real HTTP: Range edge
// cases against the source bytes, 100 concurrent range requests, a client
// that disconnects mid-body, ffprobe and a seeking ffmpeg on the URL,
// promtool on /metrics, the index's links, refused requests, and a remove
// while a response is still streaming.
func TestServeStreamsFromLibtorrent(t *testing.T) {
	enginetest.RequireLibtorrent(t)
	ffprobe := enginetest.RequireTool(t, "ffprobe", "ffmpeg")
	ffmpeg := enginetest.RequireTool(t, "ffmpeg", "ffmpeg")
	promtool := enginetest.RequireTool(t, "promtool", "prometheus")
	c := enginetest.MakeContent(t, "media", 64<<10, []enginetest.FileSpec{
		{Path: "video.mp4", VideoSeconds: 10},
		{Path: "data/blob.bin", Size: 20<<20 + 12345}, // more than socket buffers hold
		{Path: "odd <&> name.txt", Size: 1000},
	})
	seeder := enginetest.StartSeeder(t, "127.0.9.2", c.Torrent, c.Dir)
	s := startServe(t, "--cache-dir", t.TempDir(), "--no-dht", "--peer", seeder.Addr, c.Torrent)
	h := c.Meta.InfoHash.String()
	blob, err := os.ReadFile(c.Files["data/blob.bin"])
	if err != nil {
		t.Fatal(err)
	}
	size := len(blob)
	blobURL := s.url + "/files/" + h + "/data/blob.bin"

	t.Run("ranges", func(t *testing.T) {
		tests := []struct {
			rng        string
			code       int
			start, end int
		}{
			{"", 200, 0, size},
			{"bytes=0-0", 206, 0, 1},
			{"bytes=1000-1999", 206, 1000, 2000},
			{fmt.Sprintf("bytes=%d-", size-70000), 206, size - 70000, size},
			{"bytes=-777", 206, size - 777, size},
			{fmt.Sprintf("bytes=%d-%d", size-10, size+100), 206, size - 10, size},
			{fmt.Sprintf("bytes=%d-", size), 416, 0, 0},
			{fmt.Sprintf("bytes=%d-%d", size+10, size+20), 416, 0, 0},
		}
		for _, tc := range tests {
			var hdr []string
			if tc.rng != "" {
				hdr = []string{"Range", tc.rng}
			}
			resp, body := request(t, http.MethodGet, blobURL, nil, hdr...)
			if resp.StatusCode != tc.code {
				t.Errorf("%q: %d, want %d", tc.rng, resp.StatusCode, tc.code)
				continue
			}
			if tc.code != 416 && !bytes.Equal(body, blob[tc.start:tc.end]) {
				t.Errorf("%q: %d bytes differ from the source [%d,%d)", tc.rng, len(body), tc.start, tc.end)
			}
		}
		resp, body := request(t, http.MethodHead, blobURL, nil)
		if resp.StatusCode != 200 || resp.ContentLength != int64(size) || len(body) != 0 || resp.Header.Get("ETag") == "" {
			t.Errorf("HEAD: %d, length %d, %v", resp.StatusCode, resp.ContentLength, resp.Header)
		}
	})

	t.Run("concurrent", func(t *testing.T) {
		rng := rand.New(rand.NewPCG(1, 2))
		var wg sync.WaitGroup
		errs := make(chan error, 100)
		for range 100 {
			off := rng.IntN(size)
			n := 1 + rng.IntN(min(256<<10, size-off))
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
				defer cancel()
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, blobURL, nil)
				req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", off, off+n-1))
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					errs <- err
					return
				}
				defer resp.Body.Close()
				b, err := io.ReadAll(resp.Body)
				if err != nil || resp.StatusCode != 206 || !bytes.Equal(b, blob[off:off+n]) {
					errs <- fmt.Errorf("range %d+%d: %d, %d bytes, %v", off, n, resp.StatusCode, len(b), err)
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})

	t.Run("disconnect", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, blobURL, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(resp.Body, make([]byte, 64<<10)); err != nil {
			t.Fatal(err)
		}
		if readers(t, s, h) != 1 {
			t.Error("the streaming response holds no reader")
		}
		resp.Body.Close() // hang up mid-body
		waitUntil(t, "the reader to be released", func() bool { return readers(t, s, h) == 0 })
	})

	t.Run("ffmpeg", func(t *testing.T) {
		u := s.url + "/files/" + h + "/video.mp4"
		out := runTool(t, 2*time.Minute, ffprobe, "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", u)
		if !strings.HasPrefix(strings.TrimSpace(out), "10.") {
			t.Errorf("ffprobe duration %q, want about 10 s", out)
		}
		runTool(t, 2*time.Minute, ffmpeg, "-v", "error", "-ss", "7", "-i", u, "-frames:v", "5", "-f", "null", "-")
	})

	t.Run("metrics", func(t *testing.T) {
		resp, body := request(t, http.MethodGet, s.url+"/metrics", nil)
		if resp.StatusCode != 200 || !bytes.Contains(body, []byte(`swarmfs_torrent_pieces_have{infohash="`+h+`"`)) ||
			!bytes.Contains(body, []byte("swarmfs_http_read_duration_seconds_count")) {
			t.Fatalf("metrics %d:\n%s", resp.StatusCode, body)
		}
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = bytes.NewReader(body)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool check metrics: %v\n%s", err, out)
		}
	})

	t.Run("index", func(t *testing.T) {
		_, page := request(t, http.MethodGet, s.url+"/", nil)
		links := regexp.MustCompile(`href="(/files/[^"]+)"`).FindAllStringSubmatch(string(page), -1)
		if len(links) != 3 || !bytes.Contains(page, []byte("odd &lt;&amp;&gt; name.txt")) {
			t.Fatalf("index has %d file links:\n%s", len(links), page)
		}
		for _, l := range links {
			href := strings.ReplaceAll(l[1], "&amp;", "&")
			resp, body := request(t, http.MethodGet, s.url+href, nil)
			var match bool
			for _, src := range c.Files {
				if want, _ := os.ReadFile(src); bytes.Equal(want, body) {
					match = true
				}
			}
			if resp.StatusCode != 200 || !match {
				t.Errorf("link %s: %d, %d bytes matching no file", href, resp.StatusCode, len(body))
			}
		}
	})

	t.Run("chromium", func(t *testing.T) {
		chromium := enginetest.RequireTool(t, "chromium", "chromium")
		profile := t.TempDir()
		dump := func(u string) string {
			return runTool(t, 2*time.Minute, chromium, "--headless", "--no-sandbox", "--disable-gpu",
				"--user-data-dir="+profile, "--dump-dom", u)
		}
		dom := dump(s.url + "/")
		links := regexp.MustCompile(`href="(/files/[^"]+)"`).FindAllStringSubmatch(dom, -1)
		if len(links) != 3 || !strings.Contains(dom, "odd &lt;&amp;&gt; name.txt") {
			t.Fatalf("the browser's index has %d file links:\n%s", len(links), dom)
		}
		// Follow the links a browser shows (the .bin one it would download;
		// the "index" subtest fetched every link already).
		for _, l := range links {
			href := strings.ReplaceAll(l[1], "&amp;", "&")
			if strings.HasSuffix(href, ".bin") {
				continue
			}
			page := dump(s.url + href)
			switch {
			case strings.HasSuffix(href, ".mp4") && !strings.Contains(page, "<video"):
				t.Errorf("%s: the browser shows no video:\n%s", href, page)
			case strings.HasSuffix(href, ".txt") && !strings.Contains(page, "<pre"):
				t.Errorf("%s: the browser shows no text:\n%.300s", href, page)
			}
		}
	})

	t.Run("refused", func(t *testing.T) {
		magnet := []byte("magnet:?xt=urn:btih:" + strings.Repeat("ab", 20))
		cases := []struct {
			method, path string
			hdr          []string
			code         int
		}{
			{"POST", "/api/torrents", nil, 401},
			{"POST", "/api/torrents", []string{"X-Swarmfs-Token", "wrong"}, 401},
			{"POST", "/api/torrents", []string{"X-Swarmfs-Token", s.token, "Origin", "http://evil.example"}, 403},
			{"DELETE", "/api/torrents/" + h, []string{"Authorization", "Bearer " + s.token, "Sec-Fetch-Site", "cross-site"}, 403},
			{"DELETE", "/api/torrents/" + h, nil, 401},
			{"GET", "/files/" + h + "/%2e%2e/%2e%2e/etc/passwd", nil, 400},
			{"GET", "/files/" + h + "/data%2fblob.bin", nil, 400},
			{"GET", "/files/" + h + "/data/../video.mp4", nil, 400},
			{"GET", "/files/" + strings.Repeat("0", 40) + "/video.mp4", nil, 404},
			{"GET", "/files/" + h + "/nothere", nil, 404},
		}
		for _, tc := range cases {
			req, _ := http.NewRequest(tc.method, s.url, bytes.NewReader(magnet))
			req.URL.Opaque = tc.path
			for i := 0; i+1 < len(tc.hdr); i += 2 {
				req.Header.Set(tc.hdr[i], tc.hdr[i+1])
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.code {
				t.Errorf("%s %s %v: %d, want %d", tc.method, tc.path, tc.hdr, resp.StatusCode, tc.code)
			}
		}
		if _, body := request(t, http.MethodGet, s.url+"/api/torrents", nil); bytes.Count(body, []byte(`"infohash"`)) != 1 {
			t.Errorf("a refused request changed the library: %s", body)
		}
	})

	t.Run("remove while streaming", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, blobURL, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		head := make([]byte, 1000)
		if _, err := io.ReadFull(resp.Body, head); err != nil {
			t.Fatal(err)
		}
		if readers(t, s, h) != 1 {
			t.Fatal("the streaming response holds no reader")
		}
		auth := []string{"X-Swarmfs-Token", s.token}
		if resp, body := request(t, http.MethodDelete, s.url+"/api/torrents/"+h, nil, auth...); resp.StatusCode != 204 {
			t.Fatalf("delete: %d %s", resp.StatusCode, body)
		}
		if _, body := request(t, http.MethodGet, s.url+"/api/torrents", nil); string(bytes.TrimSpace(body)) != "[]" {
			t.Errorf("removed torrent still listed: %s", body)
		}
		torrentBytes, err := os.ReadFile(c.Torrent)
		if err != nil {
			t.Fatal(err)
		}
		ct := []string{"Content-Type", "application/x-bittorrent"}
		if resp, _ := request(t, http.MethodPost, s.url+"/api/torrents", torrentBytes, append(auth, ct...)...); resp.StatusCode != 409 {
			t.Errorf("re-add while a file is open: %d, want 409", resp.StatusCode)
		}
		rest, err := io.ReadAll(resp.Body)
		if err != nil || !bytes.Equal(append(head, rest...), blob) {
			t.Fatalf("the open stream did not finish intact: %d bytes, %v", len(head)+len(rest), err)
		}
		resp.Body.Close()
		waitUntil(t, "the torrent to go and be added again", func() bool {
			resp, _ := request(t, http.MethodPost, s.url+"/api/torrents", torrentBytes, append(auth, ct...)...)
			return resp.StatusCode == 201
		})
	})
}

// readers returns the open readers of torrent h, from the JSON API.
func readers(t *testing.T, s *served, h string) int {
	t.Helper()
	resp, body := request(t, http.MethodGet, s.url+"/api/torrents/"+h, nil)
	var tor library.Torrent
	if resp.StatusCode != 200 || json.Unmarshal(body, &tor) != nil {
		t.Fatalf("status of %s: %d %s", h, resp.StatusCode, body)
	}
	return tor.Stats.OpenReaders
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestServeLoopbackDefault(t *testing.T) {
	for in, want := range map[string]string{
		":8080": "127.0.0.1:8080", "0.0.0.0:80": "0.0.0.0:80", "[::1]:9": "[::1]:9", "example.org:1": "example.org:1",
	} {
		if got, err := loopbackDefault(in); err != nil || got != want {
			t.Errorf("loopbackDefault(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if code, _, errOut := runCmd(t, "serve", "--http", "8080"); code != 2 || !strings.Contains(errOut, "want host:port") {
		t.Errorf("serve --http 8080: exit %d: %s", code, errOut)
	}
}

// TestServeWatchAndControl runs `swarmfs serve --watch DIR` with no
// source, and drives it through the watch directory and the add, remove
// and status commands over its control socket.
func TestServeWatchAndControl(t *testing.T) {
	dir, cacheDir := t.TempDir(), t.TempDir()
	s := startServe(t, "--cache-dir", cacheDir, "--no-dht", "--watch", dir)
	status := func() []library.Torrent {
		code, out, errOut := runCmd(t, "status", "--json", s.url)
		var ts []library.Torrent
		if code != 0 || json.Unmarshal([]byte(out), &ts) != nil {
			t.Fatalf("status --json: exit %d: %s%s", code, out, errOut)
		}
		return ts
	}
	if ts := status(); len(ts) != 0 {
		t.Fatalf("fresh server lists %d torrents", len(ts))
	}

	// A torrent file dropped in the watch directory appears.
	tb := librarytest.MakeTorrent(t, "watched", map[string]int{"w.bin": 70000})
	wpath := filepath.Join(dir, "watched.torrent")
	if err := os.WriteFile(wpath, tb, 0o644); err != nil {
		t.Fatal(err)
	}
	var watchedHash string
	waitUntil(t, "the watched torrent", func() bool {
		ts := status()
		if len(ts) == 1 && ts[0].Name == "watched" {
			watchedHash = ts[0].InfoHash.String()
			return true
		}
		return false
	})

	// add: a torrent file and a magnet.
	other := filepath.Join(t.TempDir(), "other.torrent")
	if err := os.WriteFile(other, librarytest.MakeTorrent(t, "other", map[string]int{"o.bin": 10}), 0o644); err != nil {
		t.Fatal(err)
	}
	magnet := "magnet:?xt=urn:btih:" + strings.Repeat("cd", 20) + "&dn=mag"
	code, out, errOut := runCmd(t, "add", s.url, other, magnet)
	if code != 0 || !strings.Contains(out, "added other (") || !strings.Contains(out, "added mag (") || !strings.Contains(out, s.url+"/#t-") {
		t.Fatalf("add: exit %d: %s%s", code, out, errOut)
	}
	if code, _, errOut := runCmd(t, "add", s.url, other); code != 1 || !strings.Contains(errOut, "already added") {
		t.Errorf("second add: exit %d: %s", code, errOut)
	}
	code, out, _ = runCmd(t, "status", s.url)
	if code != 0 || strings.Count(out, "\n") != 3 || !strings.Contains(out, "other: ") || !strings.Contains(out, "mag: fetching metadata") {
		t.Errorf("status: exit %d:\n%s", code, out)
	}

	// remove: by name and by info hash; --purge deletes the cache.
	var otherHash string
	for _, tor := range status() {
		if tor.Name == "other" {
			otherHash = tor.InfoHash.String()
		}
	}
	if _, err := os.Stat(filepath.Join(cacheDir, otherHash)); err != nil {
		t.Fatalf("no cache store for other: %v", err)
	}
	if code, out, errOut := runCmd(t, "remove", "--purge", s.url, "other"); code != 0 || !strings.HasPrefix(out, "removed other") {
		t.Errorf("remove by name: exit %d: %s%s", code, out, errOut)
	}
	if _, err := os.Stat(filepath.Join(cacheDir, otherHash)); !os.IsNotExist(err) {
		t.Errorf("--purge left the cache store: %v", err)
	}
	if code, out, errOut := runCmd(t, "remove", s.url, strings.Repeat("CD", 20)); code != 0 || !strings.HasPrefix(out, "removed mag") {
		t.Errorf("remove by hash: exit %d: %s%s", code, out, errOut)
	}
	if code, _, errOut := runCmd(t, "remove", s.url, "other"); code != 1 || !strings.Contains(errOut, "no such torrent") {
		t.Errorf("remove twice: exit %d: %s", code, errOut)
	}

	// Deleting the watched file removes its torrent, keeping its cache.
	if err := os.Remove(wpath); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the watched torrent to go", func() bool { return len(status()) == 0 })
	if _, err := os.Stat(filepath.Join(cacheDir, watchedHash)); err != nil {
		t.Errorf("removing a watched file dropped its cache: %v", err)
	}

	// add: a directory of a .torrent and a .magnet file.
	srcDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(srcDir, "x.torrent"), librarytest.MakeTorrent(t, "x", map[string]int{"x": 5}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(srcDir, "y.magnet"), []byte(magnet+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runCmd(t, "add", s.url, srcDir); code != 0 || strings.Count(out, "added ") != 2 {
		t.Errorf("add a directory: exit %d: %s%s", code, out, errOut)
	}

	if code, _, errOut := runCmd(t, "status", filepath.Join(t.TempDir(), "nomount")); code != 1 || !strings.Contains(errOut, "not a running swarmfs mount") {
		t.Errorf("status of no mount: exit %d: %s", code, errOut)
	}
}
