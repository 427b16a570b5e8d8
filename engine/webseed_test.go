package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/enginetest"
)

// checkPadded reads every file of tor through Readers and compares it
// with the content the torrent was made from.
func checkPadded(t *testing.T, ctx context.Context, tor *Torrent, pc *enginetest.PaddedContent) {
	t.Helper()
	files := tor.Info().Files
	if len(files) != len(pc.Files) {
		t.Fatalf("%d files listed, %d written", len(files), len(pc.Files))
	}
	for i, f := range files {
		got, err := readFile(ctx, tor, i, 100<<10)
		if err != nil {
			t.Fatalf("read %s: %v (stats %+v)", f.DisplayPath(), err, tor.Stats())
		}
		want, ok := pc.Files[f.DisplayPath()]
		if !ok {
			t.Fatalf("%s: not a file written", f.DisplayPath())
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%s: %d bytes differ from the %d written", f.DisplayPath(), len(got), len(want))
		}
	}
}

// TestWebSeedOnlyReads reads a multi-file torrent with pad files and names
// that need percent-encoding from nginx alone, with no peers at all, and
// without prefetch: the reads alone make the web seed fetch.
func TestWebSeedOnlyReads(t *testing.T) {
	const pl = 32 << 10
	pc := enginetest.MakePaddedContent(t, "Web #1 100% ü", pl, enginetest.AwkwardFiles(pl), 1)
	base := enginetest.StartNginx(t, pc.Dir)
	c := newTestClient(t, "127.0.2.1", Config{})
	tor, err := c.AddTorrent(pc.Meta, AddOptions{WebSeeds: []string{base}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	checkPadded(t, ctx, tor, pc)
	st := waitStats(t, ctx, tor, func(st Stats) bool { return st.WebSeedBytes > 0 })
	if st.Downloaded != 0 || st.WebSeeds != 1 {
		t.Fatalf("stats after reading from a web seed only: %+v", st)
	}
}

// TestWebSeedURLListDownload downloads the whole torrent (prefetch, as
// get does) from the web seed in its url-list; with NoWebSeeds the same
// torrent gets nothing.
func TestWebSeedURLListDownload(t *testing.T) {
	const pl = 16 << 10
	dir := t.TempDir()
	base := enginetest.StartNginx(t, dir)
	pc := enginetest.MakePaddedContent(t, "list", pl, enginetest.AwkwardFiles(pl), 2, base)
	if err := os.Rename(filepath.Join(pc.Dir, pc.Name), filepath.Join(dir, pc.Name)); err != nil {
		t.Fatal(err)
	}

	off := newTestClient(t, "127.0.2.2", Config{})
	toff, err := off.AddTorrent(pc.Meta, AddOptions{Prefetch: true, NoWebSeeds: true})
	if err != nil {
		t.Fatal(err)
	}

	c := newTestClient(t, "127.0.2.1", Config{})
	tor, err := c.AddTorrent(pc.Meta, AddOptions{Prefetch: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	waitClosed(t, ctx, tor.Complete(), "download from the url-list", tor)
	checkPadded(t, ctx, tor, pc)
	if st := tor.Stats(); st.WebSeedBytes < int64(len(pc.Data))/2 || st.State != StateSeeding {
		t.Fatalf("stats after a web seed download: %+v", st)
	}
	if st := toff.Stats(); st.WebSeedBytes != 0 || st.PiecesHave != 0 || st.WebSeeds != 0 {
		t.Fatalf("with NoWebSeeds: %+v", st)
	}
}

// TestWebSeedIdleFetchesNothing adds a torrent with a web seed but no
// reader and no prefetch: nothing is fetched.
func TestWebSeedIdleFetchesNothing(t *testing.T) {
	var requests atomic.Int64
	f := makeFixture(t, "idle.bin", 16<<10, nil, 200000)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		http.ServeFile(w, r, filepath.Join(f.dir, f.name))
	}))
	defer srv.Close()
	c := newTestClient(t, "127.0.2.1", Config{})
	tor, err := c.AddTorrent(f.mi, AddOptions{WebSeeds: []string{srv.URL + "/"}})
	if err != nil {
		t.Fatal(err)
	}
	// Three ticks of the loop, each of which would fill the seed.
	time.Sleep(3500 * time.Millisecond)
	if n, st := requests.Load(), tor.Stats(); n != 0 || st.WebSeedBytes != 0 || st.PiecesHave != 0 {
		t.Fatalf("idle torrent: %d requests, stats %+v", n, st)
	}
	// A read makes it fetch.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got, err := readFile(ctx, tor, 0, 64<<10)
	if err != nil || !bytes.Equal(got, f.fileData(0)) {
		t.Fatalf("read through the web seed: %d bytes, %v", len(got), err)
	}
}

// TestWebSeedAndLibtorrent downloads from a libtorrent seeder and nginx
// together. nginx lacks one file (the seed skips it), so the peer's part
// is not left to chance; both sources deliver bytes.
func TestWebSeedAndLibtorrent(t *testing.T) {
	f := makeFixture(t, "both", 32<<10, nil, 2<<20, 3<<20, 2<<20)
	seeder := startSeeder(t, "127.0.2.20", f)
	web := t.TempDir()
	if err := os.CopyFS(filepath.Join(web, f.name), os.DirFS(filepath.Join(f.dir, f.name))); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(web, f.name, "f01.bin")); err != nil {
		t.Fatal(err)
	}
	base := enginetest.StartNginx(t, web)
	c := newTestClient(t, "127.0.2.1", Config{})
	tor, err := c.AddTorrent(f.mi, AddOptions{Peers: []netip.AddrPort{addrPort(t, seeder.Addr)}, Prefetch: true, WebSeeds: []string{base}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	waitClosed(t, ctx, tor.Complete(), "download", tor)
	checkFiles(t, ctx, tor, f)
	st := tor.Stats()
	if st.Downloaded == 0 || st.WebSeedBytes == 0 {
		t.Fatalf("both sources should deliver: %+v", st)
	}
	t.Logf("peers %d bytes, web seed %d bytes", st.Downloaded, st.WebSeedBytes)
}

// TestWebSeedWrongBytes serves corrupt bytes from a web seed beside an
// honest libtorrent seeder: the seed's pieces fail the hash check, the
// seed is charged and dropped, the peer is not banned, and the data is
// right.
func TestWebSeedWrongBytes(t *testing.T) {
	f := makeFixture(t, "liar", 16<<10, nil, 1<<20, 500000)
	seeder := startSeeder(t, "127.0.2.21", f)
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		data, err := os.ReadFile(filepath.Join(f.dir, filepath.FromSlash(strings.TrimPrefix(r.URL.Path, "/"))))
		if err != nil {
			http.NotFound(w, r)
			return
		}
		for i := range data {
			data[i] ^= 0x5a
		}
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
	}))
	defer srv.Close()
	c := newTestClient(t, "127.0.2.1", Config{})
	tor, err := c.AddTorrent(f.mi, AddOptions{Peers: []netip.AddrPort{addrPort(t, seeder.Addr)}, Prefetch: true, WebSeeds: []string{srv.URL + "/"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	waitClosed(t, ctx, tor.Complete(), "download", tor)
	checkFiles(t, ctx, tor, f)
	st := waitStats(t, ctx, tor, func(st Stats) bool { return st.WebSeeds == 0 })
	var failed int
	_ = tor.do(func() { failed = tor.ls.ws.failed })
	if requests.Load() == 0 || failed == 0 {
		t.Fatalf("the web seed was not used: %d requests, %d failed pieces", requests.Load(), failed)
	}
	if b := tor.Banned(); len(b) > 0 {
		t.Fatalf("peers banned for a web seed's bytes: %v", b)
	}
	if len(tor.Peers()) != 1 {
		t.Fatalf("the seeder was dropped: peers %v; stats %+v", tor.Peers(), st)
	}
}

// TestWebSeedStallNoHang reads from a torrent whose only source is a web
// seed that sends headers and then nothing: the read ends with its
// context, and removing the torrent does not wait for the server.
func TestWebSeedStallNoHang(t *testing.T) {
	f := makeFixture(t, "stall.bin", 16<<10, nil, 300000)
	var requests atomic.Int64
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.Header().Set("Content-Type", "application/octet-stream")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	c := newTestClient(t, "127.0.2.1", Config{MaxReadahead: 512 << 10})
	tor, err := c.AddTorrent(f.mi, AddOptions{WebSeeds: []string{srv.URL + "/"}})
	if err != nil {
		t.Fatal(err)
	}
	r, err := tor.NewReader(0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err = r.ReadAt(ctx, make([]byte, 100), 150000)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "web seed "+srv.URL) {
		t.Fatalf("read from a stalled web seed: %v, want the deadline naming the web seed", err)
	}
	if requests.Load() == 0 {
		t.Fatal("the web seed was never asked")
	}
	done := make(chan error, 1)
	go func() { done <- tor.Remove() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("removing a torrent with a stalled web seed fetch hangs")
	}
}

// waitStats polls tor's Stats until ok holds or ctx ends.
func waitStats(t *testing.T, ctx context.Context, tor *Torrent, ok func(Stats) bool) Stats {
	t.Helper()
	for {
		st := tor.Stats()
		if ok(st) {
			return st
		}
		select {
		case <-ctx.Done():
			t.Fatalf("stats never came: %+v", st)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestNowWait checks the wait before a web seed shares a piece a reader
// waits on with peers.
func TestNowWait(t *testing.T) {
	for _, tc := range []struct {
		pl   int64
		rate float64
		want time.Duration
	}{
		{1 << 20, 0, wsMinNowWait},
		{1 << 20, 1 << 30, wsMinNowWait},
		{1 << 20, 1 << 20, 2 * time.Second},
		{1 << 20, 1000, wsMaxNowWait},
	} {
		if got := nowWait(tc.pl, tc.rate); got != tc.want {
			t.Errorf("nowWait(%d, %v) = %v, want %v", tc.pl, tc.rate, got, tc.want)
		}
	}
}

// TestWebSeedHelpsSlowPeer reads a file that a libtorrent seeder has, but
// behind a proxy capped at 100 KB/s: pieces the read waits on longer than
// the peers' rate allows come from the web seed too, and without prefetch
// the web seed fetches only around what is read.
func TestWebSeedHelpsSlowPeer(t *testing.T) {
	f := makeFixture(t, "slowpeer.bin", 32<<10, nil, 8<<20)
	seeder := startSeeder(t, "127.0.2.22", f)
	proxy := enginetest.StartLatencyProxy(t, enginetest.LatencyConfig{Target: seeder.Addr, DownRate: 100_000, UpRate: 100_000})
	base := enginetest.StartNginx(t, f.dir)
	c := newTestClient(t, "127.0.2.1", Config{MaxReadahead: 256 << 10})
	tor, err := c.AddTorrent(f.mi, AddOptions{Peers: []netip.AddrPort{addrPort(t, proxy.Addr())}, WebSeeds: []string{base}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// Wait for the peer, so that its pieces are not peerless.
	waitStats(t, ctx, tor, func(st Stats) bool { return st.Seeds == 1 })
	r, err := tor.NewReader(0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	want := f.fileData(0)
	buf := make([]byte, 1<<20)
	n, err := r.ReadAt(ctx, buf, 2<<20)
	if err != nil || !bytes.Equal(buf[:n], want[2<<20:2<<20+n]) {
		t.Fatalf("read: %d bytes, %v", n, err)
	}
	st := tor.Stats()
	if st.WebSeedBytes == 0 {
		t.Fatalf("the web seed did not help a slow peer: %+v", st)
	}
	if st.Peers != 1 || len(tor.Banned()) > 0 {
		t.Fatalf("the peer should stay: %+v, banned %v", st, tor.Banned())
	}
	if st.BytesHave > 6<<20 {
		t.Fatalf("%d bytes fetched for a 1 MiB read without prefetch", st.BytesHave)
	}
}

// TestWebSeedRunStopsWhenUnwanted reads from a slow web seed that never
// sends the first window past its first piece, and then seeks far away:
// the run for the first window is cancelled (nobody wants
// its next piece, or it gives way to the piece the read waits on; its request
// ends before its body) instead of holding the seed's slots, and the read
// after the seek gets its data.
func TestWebSeedRunStopsWhenUnwanted(t *testing.T) {
	f := makeFixture(t, "seek.bin", 64<<10, nil, 8<<20)
	data := f.fileData(0)
	var cut, held atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var first, last int64
		if _, err := fmt.Sscanf(r.Header.Get("Range"), "bytes=%d-%d", &first, &last); err != nil {
			http.Error(w, "want a Range", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", first, last, len(data)))
		w.Header().Set("Content-Length", strconv.FormatInt(last-first+1, 10))
		w.WriteHeader(http.StatusPartialContent)
		// 8 KiB every 20 ms: about 400 KB/s. Past the first piece, the
		// first window's bytes never come: however loaded the machine,
		// its run is still in flight at the seek and must be cut.
		for off := first; off <= last; off += 8 << 10 {
			if off >= 64<<10 && off < 1<<20 {
				held.Add(1)
				<-r.Context().Done()
				cut.Add(1)
				return
			}
			if _, err := w.Write(data[off:min(off+8<<10, last+1)]); err != nil {
				cut.Add(1)
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				cut.Add(1)
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}))
	defer srv.Close()
	c := newTestClient(t, "127.0.2.1", Config{MaxReadahead: 512 << 10})
	tor, err := c.AddTorrent(f.mi, AddOptions{WebSeeds: []string{srv.URL + "/"}})
	if err != nil {
		t.Fatal(err)
	}
	r, err := tor.NewReader(0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	buf := make([]byte, 64<<10)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := r.ReadAt(ctx, buf, 0); err != nil {
		t.Fatal(err)
	}
	// Seek only once a run for the first window's readahead is held by
	// the server: on a loaded machine the first read can finish before
	// that run starts, and then there is nothing to cut.
	for held.Load() == 0 {
		select {
		case <-ctx.Done():
			t.Fatalf("no web seed run for the readahead window started; stats %+v", tor.Stats())
		case <-time.After(10 * time.Millisecond):
		}
	}
	// Far away: the first window is not wanted any more.
	off := int64(5 << 20)
	if _, err := r.ReadAt(ctx, buf, off); err != nil || !bytes.Equal(buf, data[off:off+int64(len(buf))]) {
		t.Fatalf("read after the seek: %v", err)
	}
	for cut.Load() == 0 {
		select {
		case <-ctx.Done():
			t.Fatalf("no web seed run was cut short after the seek; stats %+v", tor.Stats())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestWebSeedIntoDataDir downloads from a web seed into the torrent's own
// files (AddOptions.DataDir): pieces from web seeds take the same store
// path whatever the layout.
func TestWebSeedIntoDataDir(t *testing.T) {
	f := makeFixture(t, "datadir", 32<<10, nil, 1<<20, 300000)
	base := enginetest.StartNginx(t, f.dir)
	c := newTestClient(t, "127.0.2.1", Config{})
	out := t.TempDir()
	tor, err := c.AddTorrent(f.mi, AddOptions{Prefetch: true, WebSeeds: []string{base}, DataDir: out})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	waitClosed(t, ctx, tor.Complete(), "download into a data directory", tor)
	checkDir(t, out, f)
}
