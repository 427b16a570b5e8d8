package main

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/swarmfs/swarmfs/engine/enginetest"
	"github.com/swarmfs/swarmfs/metainfo"
)

// BenchmarkWebSeed measures swarmfs with a web seed as its only source:
// nginx on loopback serves a generated torrent (SWARMFS_BENCH_SIZE, default
// 1GiB, 1 MiB pieces) whose url-list names it, and there are no peers.
// Metrics:
//   - aria2_MB/s: aria2c downloading the torrent from the same server (the
//     reference; start to exit, with --max-connection-per-server=2 as
//     swarmfs's two connections per web seed);
//   - get_MB/s: `swarmfs get` (the rate it reports, before writing files
//     out); get/aria2: their ratio;
//   - ttfb_ms: the first 64 KiB of the file through a cold mount, once it
//     lists;
//   - rand64k_p50_ms, rand64k_max_ms: 64 KiB reads at 20 random offsets
//     of that mount.
func BenchmarkWebSeed(b *testing.B) {
	if _, err := os.Stat("/dev/fuse"); err != nil {
		b.Skip("no /dev/fuse")
	}
	aria2 := enginetest.RequireTool(b, "aria2c", "aria2")
	size := int64(1 << 30)
	if s := os.Getenv("SWARMFS_BENCH_SIZE"); s != "" {
		n, err := humanize.ParseBytes(s)
		if err != nil {
			b.Fatal(err)
		}
		size = int64(n)
	}
	c := enginetest.MakeContent(b, "wsbench.bin", 1<<20, []enginetest.FileSpec{{Size: size}})
	base := enginetest.StartNginx(b, c.Dir)
	mi := *c.Meta
	mi.WebSeeds = []string{base}
	raw, err := mi.Bytes()
	if err != nil {
		b.Fatal(err)
	}
	torrent := filepath.Join(b.TempDir(), "webseed.torrent")
	if err := os.WriteFile(torrent, raw, 0o644); err != nil {
		b.Fatal(err)
	}
	if m, err := metainfo.LoadFile(torrent); err != nil || len(m.WebSeeds) != 1 || m.InfoHash != c.Meta.InfoHash {
		b.Fatalf("torrent with a url-list: %v", err)
	}
	b.Setenv("SWARMFS_TEST_MAIN", "1")
	b.ResetTimer()
	for range b.N {
		benchWebSeedOnce(b, aria2, torrent, c.Name, size)
	}
}

func benchWebSeedOnce(b *testing.B, aria2, torrent, name string, size int64) {
	mb := func(bytes int64, d time.Duration) float64 { return float64(bytes) / d.Seconds() / 1e6 }
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

	// The reference: aria2c from the web seed alone.
	syscall.Sync()
	start := time.Now()
	ar := enginetest.Start(b, aria2, "--dir="+b.TempDir(), "--enable-dht=false", "--enable-dht6=false",
		"--bt-enable-lpd=false", "--enable-peer-exchange=false", "--seed-time=0", "--file-allocation=none",
		"--max-connection-per-server=2", "--summary-interval=0", "--console-log-level=warn",
		"--listen-port="+strconv.Itoa(enginetest.FreePort(b, "127.0.0.1")), torrent)
	select {
	case <-ar.Exited():
	case <-time.After(10 * time.Minute):
		b.Fatalf("aria2c did not finish:\n%s", ar.Output())
	}
	ariaRate := mb(size, time.Since(start))

	// swarmfs get: the download rate it reports.
	syscall.Sync()
	get := enginetest.Start(b, os.Args[0], "get", "--no-dht", "--cache-dir", b.TempDir(), "-o", b.TempDir(), torrent)
	line := get.WaitLine(b, name+": downloaded ", 10*time.Minute)
	m := regexp.MustCompile(` in ([0-9.]+[a-zµ]+) `).FindStringSubmatch(line)
	if m == nil {
		b.Fatalf("cannot parse %q", line)
	}
	getDur, err := time.ParseDuration(m[1])
	if err != nil {
		b.Fatal(err)
	}
	waitBenchExit(b, get)
	getRate := mb(size, getDur)

	// A cold mount with only the web seed: first bytes, random reads.
	syscall.Sync()
	mp := filepath.Join(b.TempDir(), "mnt")
	if err := os.Mkdir(mp, 0o755); err != nil {
		b.Fatal(err)
	}
	p := enginetest.Start(b, os.Args[0], "mount", "--no-dht", "--cache-dir", b.TempDir(), torrent, mp)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(time.Millisecond) {
		if ents, err := os.ReadDir(mp); err == nil && len(ents) == 1 {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("mount did not come up:\n%s", p.Output())
		}
	}
	f, err := os.Open(filepath.Join(mp, name))
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	start = time.Now()
	if _, err := f.ReadAt(buf, 0); err != nil {
		b.Fatal(err)
	}
	ttfb := time.Since(start)
	rng := rand.New(rand.NewPCG(3, 4))
	var lat []time.Duration
	for range 20 {
		off := rng.Int64N(size - int64(len(buf)))
		start := time.Now()
		if _, err := f.ReadAt(buf, off); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	f.Close()
	slices.Sort(lat)
	stopMount(b, p)

	b.ReportMetric(ariaRate, "aria2_MB/s")
	b.ReportMetric(getRate, "get_MB/s")
	b.ReportMetric(getRate/ariaRate, "get/aria2")
	b.ReportMetric(ms(ttfb), "ttfb_ms")
	b.ReportMetric(ms(lat[len(lat)/2]), "rand64k_p50_ms")
	b.ReportMetric(ms(lat[len(lat)-1]), "rand64k_max_ms")
}
