package main

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/swarmfs/swarmfs/engine/enginetest"
)

// BenchmarkSwarm measures swarmfs beside libtorrent on one torrent served by
// three local libtorrent seeders, all in the same run (scripts/bench runs it;
// SWARMFS_BENCH_SIZE sets the torrent size, default 1GiB). Metrics:
//   - lt_MB/s: libtorrent downloading the torrent (the reference);
//   - get_MB/s: `swarmfs get` downloading it; get/lt: their ratio;
//   - mount_ls_ms: from starting `swarmfs mount` to a listing of the mount;
//   - first64k_ms: the first 64 KiB of the file through a cold mount;
//   - rand64k_p50_ms, rand64k_max_ms: 64 KiB reads at 20 random offsets;
//   - seq_MB/s: reading the whole file through a fresh cold mount, and
//     seq/get: that beside swarmfs's own download rate;
//   - get_RSS_MiB, mount_RSS_MiB: peak RSS of the swarmfs processes.
func BenchmarkSwarm(b *testing.B) {
	if _, err := os.Stat("/dev/fuse"); err != nil {
		b.Skip("no /dev/fuse")
	}
	enginetest.RequireLibtorrent(b)
	size := int64(1 << 30)
	if s := os.Getenv("SWARMFS_BENCH_SIZE"); s != "" {
		n, err := humanize.ParseBytes(s)
		if err != nil {
			b.Fatal(err)
		}
		size = int64(n)
	}
	c := enginetest.MakeContent(b, "bench.bin", 0, []enginetest.FileSpec{{Size: size}})
	var peers []string
	for _, ip := range []string{"127.0.7.11", "127.0.7.12", "127.0.7.13"} {
		lt := enginetest.StartSeeder(b, ip, c.Torrent, c.Dir)
		peers = append(peers, lt.Addr)
	}
	b.Setenv("SWARMFS_TEST_MAIN", "1")
	b.ResetTimer()
	for range b.N {
		benchOnce(b, c, size, peers)
	}
}

func benchOnce(b *testing.B, c *enginetest.Content, size int64, peers []string) {
	mb := func(bytes int64, d time.Duration) float64 { return float64(bytes) / d.Seconds() / 1e6 }
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

	// Each phase starts with no dirty page cache: otherwise the kernel's
	// writeback of the previous phases' gigabytes would compete with the
	// later phases (the mounts) for the CPU and disk.
	syscall.Sync()
	// The reference: libtorrent downloading from the same seeders.
	lt := enginetest.StartLibtorrent(b, enginetest.LTOptions{
		IP: "127.0.7.20", Torrent: c.Torrent, SavePath: b.TempDir(), Peers: peers, ExitWhenDone: true,
	})
	ltSecs, _, err := lt.WaitDone(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	lt.Kill()
	ltRate := float64(size) / ltSecs / 1e6

	// swarmfs get: the download rate it reports (its files written in place).
	syscall.Sync()
	get := enginetest.Start(b, os.Args[0], "get", "--no-dht", "--cache-dir", b.TempDir(),
		"--peer", strings.Join(peers, ","), "-o", b.TempDir(), c.Torrent)
	line := get.WaitLine(b, c.Name+": downloaded ", 10*time.Minute)
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

	// A cold mount: listing, first bytes, random reads.
	syscall.Sync()
	mp, p, lsDur := benchMount(b, c, peers)
	file := filepath.Join(mp, c.Name)
	f, err := os.Open(file)
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	start := time.Now()
	if _, err := f.ReadAt(buf, 0); err != nil {
		b.Fatal(err)
	}
	first := time.Since(start)
	rng := rand.New(rand.NewPCG(1, 2))
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
	mountRSS := stopMount(b, p)

	// A fresh cold mount read from start to end.
	syscall.Sync()
	mp, p, _ = benchMount(b, c, peers)
	f, err = os.Open(filepath.Join(mp, c.Name))
	if err != nil {
		b.Fatal(err)
	}
	start = time.Now()
	n, err := readAll(f, 1<<20)
	seq := time.Since(start)
	f.Close()
	if err != nil || n != size {
		b.Fatalf("sequential read: %d bytes, %v", n, err)
	}
	mountRSS = max(mountRSS, stopMount(b, p))
	seqRate := mb(size, seq)

	b.ReportMetric(ltRate, "lt_MB/s")
	b.ReportMetric(getRate, "get_MB/s")
	b.ReportMetric(getRate/ltRate, "get/lt")
	b.ReportMetric(ms(lsDur), "mount_ls_ms")
	b.ReportMetric(ms(first), "first64k_ms")
	b.ReportMetric(ms(lat[len(lat)/2]), "rand64k_p50_ms")
	b.ReportMetric(ms(lat[len(lat)-1]), "rand64k_max_ms")
	b.ReportMetric(seqRate, "seq_MB/s")
	b.ReportMetric(seqRate/getRate, "seq/get")
	b.ReportMetric(float64(get.MaxRSS())/(1<<20), "get_RSS_MiB")
	b.ReportMetric(float64(mountRSS)/(1<<20), "mount_RSS_MiB")
}

// benchMount starts `swarmfs mount` with an empty cache and returns the
// mountpoint, the process and the time from start to a listing.
func benchMount(b *testing.B, c *enginetest.Content, peers []string) (string, *enginetest.Proc, time.Duration) {
	mp := filepath.Join(b.TempDir(), "mnt")
	if err := os.Mkdir(mp, 0o755); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	p := enginetest.Start(b, os.Args[0], "mount", "--no-dht", "--cache-dir", b.TempDir(),
		"--peer", strings.Join(peers, ","), c.Torrent, mp)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if ents, err := os.ReadDir(mp); err == nil && len(ents) == 1 {
			return mp, p, time.Since(start)
		}
		if time.Now().After(deadline) {
			b.Fatalf("mount did not come up:\n%s", p.Output())
		}
		time.Sleep(time.Millisecond)
	}
}

func stopMount(b *testing.B, p *enginetest.Proc) int64 {
	if err := syscall.Kill(p.PID(), syscall.SIGINT); err != nil {
		b.Fatal(err)
	}
	waitBenchExit(b, p)
	return p.MaxRSS()
}

func waitBenchExit(b *testing.B, p *enginetest.Proc) {
	select {
	case <-p.Exited():
	case <-time.After(time.Minute):
		b.Fatalf("%s did not exit:\n%s", p.Name, p.Output())
	}
}
