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
// downloads from three local libtorrent seeders, in one run: through
// engine.Reader directly (1 MiB reads), over HTTP from `swarmfs serve`'s
// handler on a loopback socket, and through the FUSE mount (page cache
// auto; skipped without /dev/fuse). Each pass uses an empty cache. Besides
// MB/s it reports ms/first-byte: from opening (the request, the reader,
// the file) to the first bytes read. SWARMFS_BENCH_SIZE sets the file size
// (default 256MiB).
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
	for _, mode := range []string{"reader", "http", "mount"} {
		b.Run(mode, func(b *testing.B) {
			if _, err := os.Stat("/dev/fuse"); mode == "mount" && err != nil {
				b.Skip("no /dev/fuse")
			}
			b.SetBytes(size)
			var firstByte time.Duration
			for range b.N {
				b.StopTimer()
				client, err := engine.New(engine.Config{ListenAddr: "127.0.9.50:0", CacheDir: b.TempDir(), NoDHT: true})
				if err != nil {
					b.Fatal(err)
				}
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
				b.StartTimer()
				start := time.Now()
				src, done, err := open()
				if err != nil {
					b.Fatal(err)
				}
				buf := make([]byte, 1<<20)
				k, err := io.ReadAtLeast(src, buf, 1)
				firstByte += time.Since(start)
				if err != nil {
					b.Fatal(err)
				}
				n, err := readAll(src, 1<<20)
				b.StopTimer()
				done()
				client.Close()
				if err != nil || int64(k)+n != size {
					b.Fatalf("read %d of %d bytes: %v", int64(k)+n, size, err)
				}
			}
			b.ReportMetric(float64(firstByte.Milliseconds())/float64(b.N), "ms/first-byte")
		})
	}
}
