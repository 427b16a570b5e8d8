package engine

import (
	"context"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/enginetest"
)

// BenchmarkWebSeedReader reads a 256 MiB torrent (1 MiB pieces) whose only
// source is nginx on loopback through engine.Reader, with no FUSE in the
// way. Metrics: ttfb_ms (the first 64 KiB of a fresh torrent),
// rand64k_p50_ms and rand64k_max_ms (64 KiB at 20 random offsets), and
// seq_MB/s (a whole sequential read of another fresh torrent) beside
// file_MB/s, the same file read from the page cache that nginx serves
// from.
func BenchmarkWebSeedReader(b *testing.B) {
	const size = 256 << 20
	c := enginetest.MakeContent(b, "wsreader.bin", 1<<20, []enginetest.FileSpec{{Size: size}})
	base := enginetest.StartNginx(b, c.Dir)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	open := func() (*Torrent, *Reader) {
		cl := newTestClient(b, "127.0.2.1", Config{})
		tor, err := cl.AddTorrent(c.Meta, AddOptions{WebSeeds: []string{base}})
		if err != nil {
			b.Fatal(err)
		}
		r, err := tor.NewReader(0)
		if err != nil {
			b.Fatal(err)
		}
		return tor, r
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	buf := make([]byte, 64<<10)
	b.ResetTimer()
	for range b.N {
		_, r := open()
		start := time.Now()
		if _, err := r.ReadAt(ctx, buf, 0); err != nil {
			b.Fatal(err)
		}
		ttfb := time.Since(start)
		rng := rand.New(rand.NewPCG(5, 6))
		var lat []time.Duration
		for range 20 {
			off := rng.Int64N(size - int64(len(buf)))
			start := time.Now()
			if _, err := r.ReadAt(ctx, buf, off); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(start))
		}
		r.Close()
		slices.Sort(lat)

		_, r = open()
		big := make([]byte, 1<<20)
		start = time.Now()
		var off int64
		for {
			n, err := r.ReadAt(ctx, big, off)
			off += int64(n)
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
		}
		seq := time.Since(start)
		r.Close()

		f, err := os.Open(filepath.Join(c.Dir, c.Name))
		if err != nil {
			b.Fatal(err)
		}
		start = time.Now()
		if _, err := io.CopyBuffer(io.Discard, f, big); err != nil {
			b.Fatal(err)
		}
		file := time.Since(start)
		f.Close()

		b.ReportMetric(ms(ttfb), "ttfb_ms")
		b.ReportMetric(ms(lat[len(lat)/2]), "rand64k_p50_ms")
		b.ReportMetric(ms(lat[len(lat)-1]), "rand64k_max_ms")
		b.ReportMetric(float64(off)/seq.Seconds()/1e6, "seq_MB/s")
		b.ReportMetric(float64(size)/file.Seconds()/1e6, "file_MB/s")
	}
}
