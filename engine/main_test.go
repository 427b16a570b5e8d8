package engine

import (
	"bytes"
	"context"
	"crypto/sha1"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/enginetest"
	"github.com/swarmfs/swarmfs/metainfo"
)

// TestMain checks that no goroutine of the engine or the cache outlives the
// tests (every Client was closed and waited for).
func TestMain(m *testing.M) {
	os.Exit(enginetest.RunCheckingLeaks(m, "github.com/swarmfs/swarmfs/"))
}

// testLogger logs to the test at debug level when -v and SWARMFS_DEBUG are set.
func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("SWARMFS_DEBUG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// newTestClient starts a Client on ip (a 127.0.2.x address) with its own
// cache directory, closed at cleanup.
func newTestClient(t testing.TB, ip string, cfg Config) *Client {
	t.Helper()
	if cfg.ListenAddr == "" {
		cfg.ListenAddr = ip + ":0"
	}
	if cfg.CacheDir == "" {
		cfg.CacheDir = t.TempDir()
	}
	cfg.NoDHT = cfg.NoDHT || cfg.DHTBootstrap == nil
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// fixture is generated torrent content on disk with its torrent.
type fixture struct {
	dir     string // save path: content lies at dir/<name>
	name    string
	files   map[string][]byte // path below the torrent's directory -> content
	mi      *metainfo.MetaInfo
	torrent string // .torrent path
}

// makeFixture writes random files (sizes in bytes; one size = single-file
// torrent) and a torrent for them with the given piece length and trackers.
func makeFixture(t testing.TB, name string, pieceLen int64, trackers []string, sizes ...int64) *fixture {
	t.Helper()
	rng := rand.New(rand.NewPCG(uint64(len(name)), uint64(pieceLen)))
	files := make(map[string][]byte, len(sizes))
	for i, n := range sizes {
		data := make([]byte, n)
		for j := 0; j < len(data); j += 8 {
			v := rng.Uint64()
			for k := 0; k < 8 && j+k < len(data); k++ {
				data[j+k] = byte(v >> (8 * k))
			}
		}
		rel := name
		if len(sizes) > 1 {
			rel = fmt.Sprintf("f%02d.bin", i)
		}
		files[rel] = data
	}
	return makeFixtureOf(t, name, pieceLen, trackers, files, len(sizes) > 1)
}

// makeFixtureOf writes the given files (paths with slashes below the
// torrent's directory; for a single-file torrent the one key is name) and
// a torrent for them with the given piece length and trackers.
func makeFixtureOf(t testing.TB, name string, pieceLen int64, trackers []string, files map[string][]byte, multi bool) *fixture {
	t.Helper()
	dir := t.TempDir()
	f := &fixture{dir: dir, name: name, files: files}
	root := filepath.Join(dir, name)
	for rel, data := range files {
		path := root
		if multi {
			path = filepath.Join(root, filepath.FromSlash(rel))
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var tiers [][]string
	for _, tr := range trackers {
		tiers = append(tiers, []string{tr})
	}
	mi, err := metainfo.Create(root, metainfo.CreateOptions{PieceLength: pieceLen, Trackers: tiers, NoDate: true})
	if err != nil {
		t.Fatal(err)
	}
	b, err := mi.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	f.torrent = filepath.Join(t.TempDir(), name+".torrent")
	if err := os.WriteFile(f.torrent, b, 0o644); err != nil {
		t.Fatal(err)
	}
	// Reload from bytes so the test uses what a user's .torrent gives.
	f.mi, err = metainfo.LoadFile(f.torrent)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// fileData returns the content of file i of the fixture's torrent.
func (f *fixture) fileData(i int) []byte {
	info := f.mi.Info
	if info.SingleFile {
		return f.files[f.name]
	}
	return f.files[strings.Join(info.Files[i].Path, "/")]
}

// readFile reads file i of t through a Reader in chunks of chunk bytes.
func readFile(ctx context.Context, t *Torrent, i int, chunk int) ([]byte, error) {
	r, err := t.NewReader(i)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var out bytes.Buffer
	buf := make([]byte, chunk)
	var off int64
	for {
		n, err := r.ReadAt(ctx, buf, off)
		out.Write(buf[:n])
		off += int64(n)
		if err == io.EOF {
			return out.Bytes(), nil
		}
		if err != nil {
			return out.Bytes(), err
		}
	}
}

// checkFiles compares every file of the torrent read through Readers with
// the fixture's content.
func checkFiles(t *testing.T, ctx context.Context, tor *Torrent, f *fixture) {
	t.Helper()
	for i := range f.mi.Info.Files {
		got, err := readFile(ctx, tor, i, 200<<10)
		if err != nil {
			t.Fatalf("read file %d: %v", i, err)
		}
		if want := f.fileData(i); sha1.Sum(got) != sha1.Sum(want) {
			t.Fatalf("file %d: sha1 %x, want %x (len %d, want %d)", i, sha1.Sum(got), sha1.Sum(want), len(got), len(want))
		}
	}
}

// checkDir compares files under dir/<name> with the fixture.
func checkDir(t *testing.T, dir string, f *fixture) {
	t.Helper()
	for rel, want := range f.files {
		path := filepath.Join(dir, f.name)
		if len(f.files) > 1 || rel != f.name {
			path = filepath.Join(dir, f.name, rel)
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if sha1.Sum(got) != sha1.Sum(want) {
			t.Fatalf("%s: content differs from the source", path)
		}
	}
}

// waitClosed waits for ch or fails the test at ctx's end with a status.
func waitClosed(t *testing.T, ctx context.Context, ch <-chan struct{}, what string, tor *Torrent) {
	t.Helper()
	select {
	case <-ch:
	case <-ctx.Done():
		t.Fatalf("%s: %v; stats %+v", what, ctx.Err(), tor.Stats())
	}
}

func addrPort(t testing.TB, s string) netip.AddrPort {
	t.Helper()
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		t.Fatal(err)
	}
	return ap
}

// startSeeder starts a libtorrent seeder on ip for the fixture and waits
// until it seeds. (enginetest.StartSeeder passes a nil peer list, which the
// driver cannot iterate; an empty list works.)
func startSeeder(t testing.TB, ip string, f *fixture) *enginetest.LT {
	t.Helper()
	lt := enginetest.StartLibtorrent(t, enginetest.LTOptions{IP: ip, Torrent: f.torrent, SavePath: f.dir, Peers: []string{}})
	lt.WaitSeeding(t, time.Minute)
	return lt
}

// setTrackers sets the fixture's announce URLs (one tier each) and rewrites
// its .torrent file; the info hash does not change.
func (f *fixture) setTrackers(t testing.TB, urls ...string) {
	t.Helper()
	f.mi.Announce = urls[0]
	f.mi.AnnounceList = nil
	for _, u := range urls {
		f.mi.AnnounceList = append(f.mi.AnnounceList, []string{u})
	}
	b, err := f.mi.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.torrent, b, 0o644); err != nil {
		t.Fatal(err)
	}
	mi, err := metainfo.LoadFile(f.torrent)
	if err != nil {
		t.Fatal(err)
	}
	if mi.InfoHash != f.mi.InfoHash || len(mi.Trackers()) != len(urls) {
		t.Fatalf("rewritten torrent: info hash %s trackers %v", mi.InfoHash, mi.Trackers())
	}
	f.mi = mi
}
