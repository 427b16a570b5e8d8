package main

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/swarmfs/swarmfs/engine"
	"github.com/swarmfs/swarmfs/engine/enginetest"
	"github.com/swarmfs/swarmfs/fs"
)

// BenchmarkStream reads one file from start to end while it downloads from
// three local libtorrent seeders (no prefetch: only what the reader asks
// for is fetched), several ways in one run: through engine.Reader directly
// (with 1 MiB reads and with 1016 KiB ones, the largest FUSE request), and
// through the FUSE mount with each page cache mode: auto (the default: the
// file is still downloading, so direct_io), always and never. Each pass
// uses an empty cache. SWARMFS_BENCH_SIZE
// sets the file size (default 512MiB); SWARMFS_BENCH_DEBUG=1 logs the
// engine's debug messages to stderr.
func BenchmarkStream(b *testing.B) {
	if _, err := os.Stat("/dev/fuse"); err != nil {
		b.Skip("no /dev/fuse")
	}
	enginetest.RequireLibtorrent(b)
	size := int64(512 << 20)
	if s := os.Getenv("SWARMFS_BENCH_SIZE"); s != "" {
		n, err := humanize.ParseBytes(s)
		if err != nil {
			b.Fatal(err)
		}
		size = int64(n)
	}
	c := enginetest.MakeContent(b, "stream.bin", 0, []enginetest.FileSpec{{Size: size}})
	var peers []netip.AddrPort
	for _, ip := range []string{"127.0.7.51", "127.0.7.52", "127.0.7.53"} {
		lt := enginetest.StartSeeder(b, ip, c.Torrent, c.Dir)
		peers = append(peers, netip.MustParseAddrPort(lt.Addr))
	}
	modes := []struct {
		name  string
		mount bool
		opts  fs.Options
	}{
		{"reader", false, fs.Options{}},
		{"reader1016k", false, fs.Options{}},
		{"auto", true, fs.Options{}},
		{"pagecache", true, fs.Options{PageCache: fs.PageCacheAlways}},
		{"directio", true, fs.Options{PageCache: fs.PageCacheNever}},
	}
	for _, m := range modes {
		b.Run(m.name, func(b *testing.B) {
			b.SetBytes(size)
			for range b.N {
				b.StopTimer()
				var logger *slog.Logger
				if os.Getenv("SWARMFS_BENCH_DEBUG") != "" {
					logger = newLogger(os.Stderr, true)
				}
				client, err := engine.New(engine.Config{ListenAddr: "127.0.7.50:0", CacheDir: b.TempDir(), NoDHT: true, Logger: logger})
				if err != nil {
					b.Fatal(err)
				}
				tor, err := client.AddTorrent(c.Meta, engine.AddOptions{Peers: peers})
				if err != nil {
					b.Fatal(err)
				}
				var src io.Reader
				var done func()
				if m.mount {
					mp := filepath.Join(b.TempDir(), "mnt")
					if err := os.Mkdir(mp, 0o755); err != nil {
						b.Fatal(err)
					}
					srv, err := mountTorrents(mp, []*engine.Torrent{tor}, m.opts)
					if err != nil {
						b.Fatal(err)
					}
					f, err := os.Open(filepath.Join(mp, "stream.bin"))
					if err != nil {
						b.Fatal(err)
					}
					src, done = f, func() { f.Close(); _ = srv.Unmount() }
				} else {
					r, err := tor.NewReader(0)
					if err != nil {
						b.Fatal(err)
					}
					src, done = io.NewSectionReader(ctxReaderAt{r}, 0, size), func() { r.Close() }
				}
				bufSize := 1 << 20
				if m.name == "reader1016k" {
					bufSize = 1016 << 10 // the largest FUSE read request
				}
				b.StartTimer()
				n, err := readAll(src, bufSize)
				b.StopTimer()
				done()
				client.Close()
				if err != nil || n != size {
					b.Fatalf("read %d of %d bytes: %v", n, size, err)
				}
			}
		})
	}
}

// ctxReaderAt adapts an engine reader to io.ReaderAt with a long deadline.
type ctxReaderAt struct{ r *engine.Reader }

func (c ctxReaderAt) ReadAt(p []byte, off int64) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return c.r.ReadAt(ctx, p, off)
}

// readAll reads r to the end with reads of bufSize bytes and returns the
// byte count. (io.Copy to io.Discard would read in 8 KiB chunks through
// io.Discard's ReadFrom, whatever buffer it is given.)
func readAll(r io.Reader, bufSize int) (int64, error) {
	buf := make([]byte, bufSize)
	var n int64
	for {
		k, err := r.Read(buf)
		n += int64(k)
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}
