package httpserve

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/cmd/swarmfs/internal/library"
	"github.com/swarmfs/swarmfs/cmd/swarmfs/internal/library/librarytest"
	"github.com/swarmfs/swarmfs/engine/enginetest"
	"github.com/swarmfs/swarmfs/metainfo"
)

const token = "s3cret"

var (
	hashA = metainfo.Hash{0xaa, 1}
	hashB = metainfo.Hash{0xbb, 2}
)

// fixture serves a fake library with two torrents: A (a video, a text file
// and a nested file with spaces) and B, whose reads block until gate closes.
func fixture(t *testing.T) (*librarytest.Fake, *httptest.Server, []byte, chan struct{}) {
	t.Helper()
	video := make([]byte, 100000)
	for i := range video {
		video[i] = byte(i * 31)
	}
	lib := librarytest.NewFake()
	lib.Put(hashA, `Movie <script>alert(1)</script> & "co"`, []string{"movie.mkv", "notes.txt", "sub dir/ep 1.mp4"},
		[][]byte{video, []byte("hello"), []byte("episode")}, nil)
	gate := make(chan struct{})
	lib.Put(hashB, "blocked", []string{"big.bin"}, [][]byte{make([]byte, 1<<20)}, gate)
	srv := httptest.NewServer(New(Config{Library: lib, Token: token, BufferSize: 4096}))
	t.Cleanup(srv.Close)
	return lib, srv, video, gate
}

func get(t *testing.T, url string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	return do(t, http.MethodGet, url, nil, hdr...)
}

func do(t *testing.T, method, url string, body []byte, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
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
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func TestIndex(t *testing.T) {
	_, srv, _, _ := fixture(t)
	resp, body := get(t, srv.URL+"/")
	page := string(body)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("status %d, type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if strings.Contains(page, "<script>") || !strings.Contains(page, "Movie &lt;script&gt;") {
		t.Errorf("torrent name not escaped:\n%s", page)
	}
	for _, want := range []string{
		`href="/files/` + hashA.String() + `/movie.mkv"`,
		`href="/files/` + hashA.String() + `/sub%20dir/ep%201.mp4"`,
		`href="/playlist/` + hashA.String() + `.m3u"`,
		"98 KiB", "25.0%", "blocked",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("index lacks %q:\n%s", want, page)
		}
	}
	if resp, _ := do(t, http.MethodPost, srv.URL+"/", nil); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /: %d", resp.StatusCode)
	}
}

func TestFileRanges(t *testing.T) {
	_, srv, video, _ := fixture(t)
	u := srv.URL + "/files/" + hashA.String() + "/movie.mkv"
	size := len(video)
	tests := []struct {
		rng        string
		code       int
		start, end int // expected body video[start:end]
	}{
		{"", 200, 0, size},
		{"bytes=0-0", 206, 0, 1},
		{"bytes=10-19", 206, 10, 20},
		{"bytes=99000-", 206, 99000, size},            // open range
		{"bytes=-100", 206, size - 100, size},         // suffix range
		{"bytes=-200000", 206, 0, size},               // suffix longer than the file
		{"bytes=99990-200000", 206, 99990, size},      // end past the end: clipped
		{fmt.Sprintf("bytes=%d-", size), 416, 0, 0},   // starts at the end
		{fmt.Sprintf("bytes=%d-", size+5), 416, 0, 0}, // past the end
	}
	for _, tc := range tests {
		var hdr []string
		if tc.rng != "" {
			hdr = []string{"Range", tc.rng}
		}
		resp, body := get(t, u, hdr...)
		if resp.StatusCode != tc.code {
			t.Errorf("%q: status %d, want %d", tc.rng, resp.StatusCode, tc.code)
			continue
		}
		if tc.code == 416 {
			if cr := resp.Header.Get("Content-Range"); cr != fmt.Sprintf("bytes */%d", size) {
				t.Errorf("%q: Content-Range %q", tc.rng, cr)
			}
			continue
		}
		if !bytes.Equal(body, video[tc.start:tc.end]) {
			t.Errorf("%q: body of %d bytes differs from [%d,%d)", tc.rng, len(body), tc.start, tc.end)
		}
		if tc.code == 206 {
			want := fmt.Sprintf("bytes %d-%d/%d", tc.start, tc.end-1, size)
			if cr := resp.Header.Get("Content-Range"); cr != want {
				t.Errorf("%q: Content-Range %q, want %q", tc.rng, cr, want)
			}
		}
		if ct := resp.Header.Get("Content-Type"); ct != "video/x-matroska" {
			t.Errorf("Content-Type %q", ct)
		}
	}

	// Multi-range: multipart/byteranges with both parts.
	resp, body := get(t, u, "Range", "bytes=0-9,500-509")
	mt, params, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if resp.StatusCode != 206 || mt != "multipart/byteranges" {
		t.Fatalf("multi-range: %d %q", resp.StatusCode, mt)
	}
	mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	for _, want := range [][]byte{video[0:10], video[500:510]} {
		p, err := mr.NextPart()
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(p)
		if !bytes.Equal(got, want) {
			t.Errorf("multi-range part %q, want %q", got, want)
		}
	}

	// HEAD, validators and conditional requests.
	resp, body = do(t, http.MethodHead, u, nil)
	etag := resp.Header.Get("ETag")
	if resp.StatusCode != 200 || len(body) != 0 || resp.ContentLength != int64(size) ||
		etag != `"`+hashA.String()+`-0"` || resp.Header.Get("Last-Modified") != "Wed, 01 May 2024 12:00:00 GMT" ||
		resp.Header.Get("Accept-Ranges") != "bytes" {
		t.Errorf("HEAD: %d, %d bytes, headers %v", resp.StatusCode, len(body), resp.Header)
	}
	if resp, _ := get(t, u, "If-None-Match", etag); resp.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match: %d", resp.StatusCode)
	}
	if resp, body := get(t, u, "Range", "bytes=0-9", "If-Range", `"other"`); resp.StatusCode != 200 || len(body) != size {
		t.Errorf("If-Range with a stale ETag: %d, %d bytes", resp.StatusCode, len(body))
	}
	if resp, body := get(t, srv.URL+"/files/"+hashA.String()+"/sub%20dir/ep%201.mp4"); resp.StatusCode != 200 ||
		string(body) != "episode" || resp.Header.Get("Content-Type") != "video/mp4" {
		t.Errorf("nested file: %d %q %q", resp.StatusCode, body, resp.Header.Get("Content-Type"))
	}
}

func TestPathsOutsideTorrents(t *testing.T) {
	_, srv, _, _ := fixture(t)
	h := hashA.String()
	tests := []struct {
		path string
		code int
	}{
		{"/files/" + h + "/../" + h + "/movie.mkv", 400},
		{"/files/" + h + "/%2e%2e/%2e%2e/etc/passwd", 400},
		{"/files/" + h + "/sub%20dir%2fep%201.mp4", 400}, // an encoded slash
		{"/files/" + h + "/./movie.mkv", 400},
		{"/files/" + h + "//movie.mkv", 400},
		{"/files/" + h + "/movie.mkv%00", 400},
		{"/files/" + h + "/", 400},
		{"/files/" + h, 400},
		{"/files/xyz/movie.mkv", 400},
		{"/files/" + strings.ToUpper(h)[:39] + "/movie.mkv", 400},
		{"/files/" + metainfo.Hash{9}.String() + "/movie.mkv", 404},
		{"/files/" + h + "/nope.mkv", 404},
		{"/files/" + h + "/sub%20dir", 404},
		{"/playlist/" + metainfo.Hash{9}.String() + ".m3u", 404},
		{"/playlist/" + h, 400},
		{"/elsewhere", 404},
	}
	for _, tc := range tests {
		// Send the path as written: the client must not clean it.
		req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
		req.URL.Opaque = tc.path
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.code {
			t.Errorf("%s: %d, want %d", tc.path, resp.StatusCode, tc.code)
		}
	}
}

func TestDisconnectReleasesReader(t *testing.T) {
	lib, srv, _, gate := fixture(t)
	defer close(gate)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/files/"+hashB.String()+"/big.bin", nil)
	errc := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	waitFor(t, "the reader to open", func() bool { o, _ := lib.Readers(); return o == 1 })
	cancel() // the client goes away while the read waits for data
	if err := <-errc; err == nil {
		t.Error("request succeeded though its reads never got data")
	}
	waitFor(t, "the reader to close", func() bool { _, c := lib.Readers(); return c == 1 })
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestPlaylist(t *testing.T) {
	_, srv, _, _ := fixture(t)
	resp, body := get(t, srv.URL+"/playlist/"+hashA.String()+".m3u")
	want := "#EXTM3U\n#EXTINF:-1,movie.mkv\n" + srv.URL + "/files/" + hashA.String() + "/movie.mkv\n" +
		"#EXTINF:-1,sub dir/ep 1.mp4\n" + srv.URL + "/files/" + hashA.String() + "/sub%20dir/ep%201.mp4\n"
	if resp.StatusCode != 200 || string(body) != want || !strings.HasPrefix(resp.Header.Get("Content-Type"), "audio/x-mpegurl") {
		t.Errorf("playlist %d %q:\n%s\nwant\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), body, want)
	}
}

func TestMetrics(t *testing.T) {
	_, srv, _, _ := fixture(t)
	get(t, srv.URL+"/files/"+hashA.String()+"/notes.txt") // one read for the histogram
	resp, body := get(t, srv.URL+"/metrics")
	text := string(body)
	for _, want := range []string{
		"swarmfs_torrents 2\n",
		`swarmfs_torrent_downloaded_bytes_total{infohash="` + hashA.String() + `",name="Movie <script>alert(1)</script> & \"co\""} 1000`,
		`swarmfs_torrent_pieces{infohash="` + hashB.String() + `",name="blocked"} 4`,
		`swarmfs_torrent_web_seed_bytes_total{infohash="` + hashA.String() + `",name="Movie <script>alert(1)</script> & \"co\""} 500`,
		`swarmfs_torrent_hash_failures_total{infohash="` + hashA.String() + `",name="Movie <script>alert(1)</script> & \"co\""} 3`,
		`swarmfs_torrent_banned_peers{infohash="` + hashA.String() + `",name="Movie <script>alert(1)</script> & \"co\""} 1`,
		`swarmfs_torrent_cache_evicted_bytes_total{infohash="` + hashA.String() + `",name="Movie <script>alert(1)</script> & \"co\""} 4096`,
		"swarmfs_http_read_duration_seconds_count 1\n",
		`swarmfs_http_read_duration_seconds_bucket{le="+Inf"} 1`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %q:\n%s", want, text)
		}
	}
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain; version=0.0.4") {
		t.Errorf("status %d, type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed (Debian package prometheus)")
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

func TestAPI(t *testing.T) {
	lib, srv, _, _ := fixture(t)
	api := srv.URL + "/api/torrents"
	tb := librarytest.MakeTorrent(t, "album", map[string]int{"a.flac": 100})
	src, err := library.ParseSource(tb)
	if err != nil {
		t.Fatal(err)
	}
	jsonBody, _ := json.Marshal(addRequest{Torrent: base64.StdEncoding.EncodeToString(tb)})
	auth := []string{"Authorization", "Bearer " + token, "Content-Type", "application/json"}

	// Refused: no token, a wrong one, cross-site requests even with the token.
	refused := []struct {
		name string
		hdr  []string
		code int
	}{
		{"no token", []string{"Content-Type", "application/json"}, 401},
		{"wrong token", []string{"X-Swarmfs-Token", "nope", "Content-Type", "application/json"}, 401},
		{"wrong origin", append([]string{"Origin", "http://evil.example"}, auth...), 403},
		{"cross-site fetch", append([]string{"Sec-Fetch-Site", "cross-site"}, auth...), 403},
	}
	for _, tc := range refused {
		if resp, _ := do(t, http.MethodPost, api, jsonBody, tc.hdr...); resp.StatusCode != tc.code {
			t.Errorf("POST with %s: %d, want %d", tc.name, resp.StatusCode, tc.code)
		}
		if resp, _ := do(t, http.MethodDelete, api+"/"+hashA.String(), nil, tc.hdr...); resp.StatusCode != tc.code {
			t.Errorf("DELETE with %s: %d, want %d", tc.name, resp.StatusCode, tc.code)
		}
	}
	if len(lib.Adds()) != 0 || len(lib.Removed()) != 0 {
		t.Fatalf("refused requests reached the library: %d adds, %d removes", len(lib.Adds()), len(lib.Removed()))
	}

	// Accepted: same origin with the token, as JSON and as a raw magnet.
	resp, body := do(t, http.MethodPost, api, jsonBody, append([]string{"Origin", srv.URL, "Sec-Fetch-Site", "same-origin"}, auth...)...)
	var got library.Torrent
	if resp.StatusCode != 201 || json.Unmarshal(body, &got) != nil || got.InfoHash != src.InfoHash() || got.Name != "album" {
		t.Fatalf("add: %d %s", resp.StatusCode, body)
	}
	if resp, _ := do(t, http.MethodPost, api, jsonBody, auth...); resp.StatusCode != 409 {
		t.Errorf("second add: %d, want 409", resp.StatusCode)
	}
	magnet := "magnet:?xt=urn:btih:" + metainfo.Hash{7}.String() + "&dn=mag"
	if resp, body := do(t, http.MethodPost, api, []byte(magnet), "X-Swarmfs-Token", token); resp.StatusCode != 201 {
		t.Errorf("raw magnet add: %d %s", resp.StatusCode, body)
	}
	if resp, _ := do(t, http.MethodPost, api, []byte("garbage"), "X-Swarmfs-Token", token); resp.StatusCode != 400 {
		t.Errorf("garbage add: %d, want 400", resp.StatusCode)
	}

	// Status: the list and one torrent.
	resp, body = get(t, api)
	var list []library.Torrent
	if resp.StatusCode != 200 || json.Unmarshal(body, &list) != nil || len(list) != 4 {
		t.Fatalf("list: %d %s", resp.StatusCode, body)
	}
	if resp, _ := get(t, api+"/"+hashA.String()); resp.StatusCode != 200 {
		t.Errorf("get one: %d", resp.StatusCode)
	}
	if resp, _ := get(t, api+"/"+metainfo.Hash{3}.String()); resp.StatusCode != 404 {
		t.Errorf("get unknown: %d", resp.StatusCode)
	}

	// Remove.
	if resp, _ := do(t, http.MethodDelete, api+"/"+hashA.String()+"?purge=1", nil, "X-Swarmfs-Token", token); resp.StatusCode != 204 {
		t.Errorf("delete: %d", resp.StatusCode)
	}
	if resp, _ := do(t, http.MethodDelete, api+"/"+hashA.String(), nil, "X-Swarmfs-Token", token); resp.StatusCode != 404 {
		t.Errorf("second delete: %d", resp.StatusCode)
	}
	if rm := lib.Removed(); len(rm) != 1 || rm[0] != hashA {
		t.Errorf("removed %v", rm)
	}

	// With no token configured, mutations are always refused.
	open := httptest.NewServer(New(Config{Library: lib}))
	defer open.Close()
	if resp, _ := do(t, http.MethodPost, open.URL+"/api/torrents", []byte(magnet), "X-Swarmfs-Token", ""); resp.StatusCode != 401 {
		t.Errorf("no token configured: %d", resp.StatusCode)
	}
}

func TestLoopbackOnly(t *testing.T) {
	lib := librarytest.NewFake()
	srv := httptest.NewServer(New(Config{Library: lib, LoopbackOnly: true}))
	defer srv.Close()
	for host, code := range map[string]int{
		"":                    200, // the test server's own 127.0.0.1:port
		"localhost:8080":      200,
		"[::1]:8080":          200,
		"127.0.0.5":           200,
		"evil.example:8080":   403,
		"192.168.1.10:8080":   403,
		"localhost.evil.test": 403,
	} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/torrents", nil)
		if host != "" {
			req.Host = host
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != code {
			t.Errorf("Host %q: %d, want %d", host, resp.StatusCode, code)
		}
	}
}

func FuzzSplitFilePath(f *testing.F) {
	for _, s := range []string{"aa/b", hashA.String() + "/a/b%20c", hashA.String() + "/%2e%2e/x", hashA.String() + "/a%2fb", "x/../y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_, p, err := splitFilePath(s)
		if err != nil {
			return
		}
		for _, c := range strings.Split(p, "/") {
			if c == "" || c == "." || c == ".." || strings.ContainsRune(c, 0) {
				t.Fatalf("splitFilePath(%q) gave component %q", s, c)
			}
		}
		if filepath.IsAbs(p) {
			t.Fatalf("absolute path %q", p)
		}
	})
}

func TestMain(m *testing.M) {
	os.Exit(enginetest.RunCheckingLeaks(m, "internal/httpserve."))
}
