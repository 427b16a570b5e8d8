package engine

import (
	"bufio"
	"context"
	"crypto/sha1"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/enginetest"
	"github.com/swarmfs/swarmfs/metainfo"
)

// BenchmarkSwarmDownload downloads a torrent (SWARMFS_BENCH_MB, default
// 256 MiB) from three local libtorrent seeders with swarmfs and, in the same
// run, with a libtorrent downloader, and reports both rates, their ratio and
// the peak RSS of this process; then it streams the file through a Reader
// (1 MiB reads, no prefetch) and reports that rate too. Run it with
// -benchtime=1x.
func BenchmarkSwarmDownload(b *testing.B) {
	enginetest.RequireLibtorrent(b)
	size := int64(256) << 20
	if s := os.Getenv("SWARMFS_BENCH_MB"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			b.Fatal(err)
		}
		size = int64(n) << 20
	}
	dir := b.TempDir()
	name := "bench.bin"
	sum := writeRandomFile(b, filepath.Join(dir, name), size)
	mi, err := metainfo.Create(filepath.Join(dir, name), metainfo.CreateOptions{NoDate: true})
	if err != nil {
		b.Fatal(err)
	}
	raw, err := mi.Bytes()
	if err != nil {
		b.Fatal(err)
	}
	torrent := filepath.Join(b.TempDir(), "bench.torrent")
	if err := os.WriteFile(torrent, raw, 0o644); err != nil {
		b.Fatal(err)
	}
	var seeders []netip.AddrPort
	var seederAddrs []string
	for i := range 3 {
		lt := enginetest.StartLibtorrent(b, enginetest.LTOptions{IP: fmt.Sprintf("127.0.2.%d", 90+i), Torrent: torrent, SavePath: dir, Peers: []string{}})
		lt.WaitSeeding(b, 2*time.Minute)
		seeders = append(seeders, addrPort(b, lt.Addr))
		seederAddrs = append(seederAddrs, lt.Addr)
	}
	b.SetBytes(size)
	b.ResetTimer()
	var ours, theirs, stream float64
	for i := 0; i < b.N; i++ {
		b.StartTimer()
		c, err := New(Config{ListenAddr: "127.0.2.1:0", CacheDir: b.TempDir(), NoDHT: true})
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		tor, err := c.AddTorrent(mi, AddOptions{Peers: seeders, Prefetch: true})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		select {
		case <-tor.Complete():
		case <-ctx.Done():
			b.Fatalf("download: %v; %+v", ctx.Err(), tor.Stats())
		}
		el := time.Since(start).Seconds()
		ours = float64(size) / el
		b.StopTimer()
		if i == 0 {
			r, err := tor.NewReader(0)
			if err != nil {
				b.Fatal(err)
			}
			h := sha1.New()
			if _, err := io.Copy(h, io.NewSectionReader(readerAt{ctx, r}, 0, size)); err != nil {
				b.Fatal(err)
			}
			r.Close()
			if got := fmt.Sprintf("%x", h.Sum(nil)); got != sum {
				b.Fatalf("sha1 %s, want %s", got, sum)
			}
		}
		cancel()
		c.Close()

		// Streaming: no prefetch, a Reader reading 1 MiB at a time from
		// the start, as the mount would.
		c, err = New(Config{ListenAddr: "127.0.2.1:0", CacheDir: b.TempDir(), NoDHT: true})
		if err != nil {
			b.Fatal(err)
		}
		tor, err = c.AddTorrent(mi, AddOptions{Peers: seeders})
		if err != nil {
			b.Fatal(err)
		}
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Minute)
		r, err := tor.NewReader(0)
		if err != nil {
			b.Fatal(err)
		}
		start = time.Now()
		buf := make([]byte, 1<<20)
		for off := int64(0); off < size; off += int64(len(buf)) {
			if _, err := r.ReadAt(sctx, buf, off); err != nil && err != io.EOF {
				b.Fatalf("stream at %d: %v", off, err)
			}
		}
		stream = float64(size) / time.Since(start).Seconds()
		r.Close()
		scancel()
		c.Close()

		lt := enginetest.StartLibtorrent(b, enginetest.LTOptions{IP: "127.0.2.99", Torrent: torrent, SavePath: b.TempDir(), Peers: seederAddrs, ExitWhenDone: true})
		lctx, lcancel := context.WithTimeout(context.Background(), 5*time.Minute)
		_, rate, err := lt.WaitDone(lctx)
		lcancel()
		if err != nil {
			b.Fatal(err)
		}
		theirs = rate
	}
	b.ReportMetric(ours/1e6, "swarmfs-MB/s")
	b.ReportMetric(theirs/1e6, "libtorrent-MB/s")
	b.ReportMetric(ours/theirs, "ratio")
	b.ReportMetric(stream/1e6, "stream-MB/s")
	b.ReportMetric(float64(peakRSS())/(1<<20), "peakRSS-MiB")
}

// readerAt adapts a Reader to io.ReaderAt with a fixed context.
type readerAt struct {
	ctx context.Context
	r   *Reader
}

func (a readerAt) ReadAt(p []byte, off int64) (int, error) { return a.r.ReadAt(a.ctx, p, off) }

// writeRandomFile streams size pseudo-random bytes to path and returns
// their sha1 in hex.
func writeRandomFile(b *testing.B, path string, size int64) string {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	h := sha1.New()
	rng := rand.New(rand.NewPCG(7, 8))
	buf := make([]byte, 1<<20)
	for left := size; left > 0; left -= int64(len(buf)) {
		for i := 0; i < len(buf); i += 8 {
			v := rng.Uint64()
			for k := range 8 {
				buf[i+k] = byte(v >> (8 * k))
			}
		}
		chunk := buf[:min(int64(len(buf)), left)]
		w.Write(chunk)
		h.Write(chunk)
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

// peakRSS returns this process's peak resident set size in bytes (VmHWM).
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			f := strings.Fields(line)
			if len(f) >= 2 {
				n, _ := strconv.ParseInt(f[1], 10, 64)
				return n << 10
			}
		}
	}
	return 0
}
