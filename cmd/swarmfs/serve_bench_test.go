package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/swarmfs/swarmfs/cmd/swarmfs/internal/httpserve"
	"github.com/swarmfs/swarmfs/cmd/swarmfs/internal/library"
	"github.com/swarmfs/swarmfs/engine"
	"github.com/swarmfs/swarmfs/engine/enginetest"
	"github.com/swarmfs/swarmfs/fs"
)

// BenchmarkServeStream reads one file from start to end while it
// downloads from three local libtorrent seeders, each round three ways in
// turn: through engine.Reader directly (1 MiB reads), over HTTP from
// `swarmfs serve`'s handler on a loopback socket, and through the FUSE
// mount (page cache auto; left out without /dev/fuse). Each pass uses a
// new client and an empty cache. It reports MB/s and ms/first-byte (from
// opening the request, reader or file to the first bytes read) of each,
// and the ratios http/mount and http/reader (above 1: HTTP is faster). Run
// it with -benchtime Nx for N rounds. SWARMFS_BENCH_SIZE sets the file
// size (default 256MiB).
func BenchmarkServeStream(b *testing.B) {
	enginetest.RequireLibtorrent(b)
	size := int64(256 << 20)
	if s := os.Getenv("SWARMFS_BENCH_SIZE"); s != "" {
		n, err := humanize.ParseBytes(s)
		if err != nil {
			b.Fatal(err)
		}
		size = int64(n)
	}
	c := enginetest.MakeContent(b, "stream.bin", 0, []enginetest.FileSpec{{Size: size}})
	var peers []netip.AddrPort
	for _, ip := range []string{"127.0.9.51", "127.0.9.52", "127.0.9.53"} {
		lt := enginetest.StartSeeder(b, ip, c.Torrent, c.Dir)
		peers = append(peers, netip.MustParseAddrPort(lt.Addr))
	}
	modes := []string{"reader", "http"}
	if _, err := os.Stat("/dev/fuse"); err == nil {
		modes = append(modes, "mount")
	}
	elapsed := map[string]time.Duration{}
	firstByte := map[string]time.Duration{}
	b.ResetTimer()
	for range b.N {
		// One pass of every mode per round: the machine's load changes
		// between rounds, not between the figures compared.
		for _, mode := range modes {
			total, first := streamOnce(b, mode, c, peers, size)
			elapsed[mode] += total
			firstByte[mode] += first
		}
	}
	for _, mode := range modes {
		b.ReportMetric(float64(size)*float64(b.N)/elapsed[mode].Seconds()/1e6, mode+"-MB/s")
		b.ReportMetric(float64(firstByte[mode].Microseconds())/1e3/float64(b.N), mode+"-ms/first-byte")
	}
	if elapsed["mount"] > 0 {
		b.ReportMetric(elapsed["mount"].Seconds()/elapsed["http"].Seconds(), "http/mount")
	}
	b.ReportMetric(elapsed["reader"].Seconds()/elapsed["http"].Seconds(), "http/reader")
}

// streamOnce reads the file once through mode (reader, http or mount) with
// a new client and an empty cache, and returns the time from opening to
// the last byte and to the first.
func streamOnce(b *testing.B, mode string, c *enginetest.Content, peers []netip.AddrPort, size int64) (total, first time.Duration) {
	client, err := engine.New(engine.Config{ListenAddr: "127.0.9.50:0", CacheDir: b.TempDir(), NoDHT: true})
	if err != nil {
		b.Fatal(err)
	}
	defer client.Close()
	lib := newEngineLibrary(client, b.TempDir(), engine.AddOptions{Peers: peers}, nil)
	t, err := lib.Add(context.Background(), library.Source{Meta: c.Meta})
	if err != nil {
		b.Fatal(err)
	}
	tor, _ := client.Torrent(t.InfoHash)
	var open func() (io.Reader, func(), error)
	switch mode {
	case "reader":
		open = func() (io.Reader, func(), error) {
			r, err := tor.NewReader(0)
			if err != nil {
				return nil, nil, err
			}
			return io.NewSectionReader(ctxReaderAt{r}, 0, size), func() { r.Close() }, nil
		}
	case "http":
		srv := httptest.NewServer(httpserve.New(httpserve.Config{Library: lib}))
		defer srv.Close()
		open = func() (io.Reader, func(), error) {
			resp, err := http.Get(srv.URL + "/files/" + t.InfoHash.String() + "/stream.bin")
			if err != nil {
				return nil, nil, err
			}
			return resp.Body, func() { resp.Body.Close() }, nil
		}
	case "mount":
		mp := filepath.Join(b.TempDir(), "mnt")
		if err := os.Mkdir(mp, 0o755); err != nil {
			b.Fatal(err)
		}
		fsrv, err := mountTorrents(mp, []*engine.Torrent{tor}, fs.Options{})
		if err != nil {
			b.Fatal(err)
		}
		defer func() { _ = fsrv.Unmount() }()
		open = func() (io.Reader, func(), error) {
			f, err := os.Open(filepath.Join(mp, "stream.bin"))
			if err != nil {
				return nil, nil, err
			}
			return f, func() { f.Close() }, nil
		}
	}
	start := time.Now()
	src, done, err := open()
	if err != nil {
		b.Fatal(err)
	}
	defer done()
	buf := make([]byte, 1<<20)
	k, err := io.ReadAtLeast(src, buf, 1)
	first = time.Since(start)
	if err != nil {
		b.Fatal(err)
	}
	n, err := readAll(src, 1<<20)
	total = time.Since(start)
	if err != nil || int64(k)+n != size {
		b.Fatalf("%s: read %d of %d bytes: %v", mode, int64(k)+n, size, err)
	}
	return total, first
}
