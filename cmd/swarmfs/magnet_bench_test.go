package main

import (
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/swarmfs/swarmfs/engine/enginetest"
)

// BenchmarkMagnetToLs measures, in one run, how long a magnet with neither
// tracker nor peer address takes to become useful when its only seeder (a
// libtorrent session) is reachable only through the DHT (two more
// libtorrent DHT nodes; both clients bootstrap from the first):
//   - swarmfs_ls_ms: from starting `swarmfs mount MAGNET` to a listing of
//     the torrent's directory that shows its files;
//   - lt_meta_ms: from starting a libtorrent client on the same magnet (its
//     bootstrap node given as a DHT router, as swarmfs's --dht-bootstrap) to
//     its report that it has the metadata; lt_meta_inproc_ms is the same
//     measured inside libtorrent from add_torrent (no process start);
//   - swarmfs/lt: swarmfs_ls_ms over lt_meta_ms.
//
// Each iteration starts both clients cold (empty cache, empty routing
// table). SWARMFS_BENCH_SIZE sets the torrent size (default 32MiB, in 16 KiB
// pieces, so that the metadata spans several ut_metadata pieces).
func BenchmarkMagnetToLs(b *testing.B) {
	if _, err := os.Stat("/dev/fuse"); err != nil {
		b.Skip("no /dev/fuse (apt-get install fuse3 and load the fuse module)")
	}
	enginetest.RequireLibtorrent(b)
	size := int64(32 << 20)
	if s := os.Getenv("SWARMFS_BENCH_SIZE"); s != "" {
		n, err := humanize.ParseBytes(s)
		if err != nil {
			b.Fatal(err)
		}
		size = int64(n)
	}
	c := enginetest.MakeContent(b, "magnet-bench", 16<<10, []enginetest.FileSpec{
		{Path: "a.bin", Size: size / 2},
		{Path: "b/c.bin", Size: size - size/2},
	})
	mesh, _ := startDHTSeeder(b, c, "127.0.9.32", "127.0.9.30", "127.0.9.31")
	boot := mesh[0].Addr
	b.Setenv("SWARMFS_TEST_MAIN", "1")
	var swarmfsTotal, ltTotal, ltInproc time.Duration
	b.ResetTimer()
	for range b.N {
		sd := benchMagnetMount(b, c, boot)
		swarmfsTotal += sd
		d, in := benchLTMagnet(b, c, boot)
		b.Logf("swarmfs ls %v, libtorrent metadata %v (%v in process)", sd, d, in)
		ltTotal += d
		ltInproc += in
	}
	b.StopTimer()
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(b.N) }
	b.ReportMetric(ms(swarmfsTotal), "swarmfs_ls_ms")
	b.ReportMetric(ms(ltTotal), "lt_meta_ms")
	b.ReportMetric(ms(ltInproc), "lt_meta_inproc_ms")
	b.ReportMetric(float64(swarmfsTotal)/float64(ltTotal), "swarmfs/lt")
}

// benchMagnetMount mounts the magnet cold and returns the time from the
// start of the command to a listing of the torrent's directory with files.
func benchMagnetMount(b *testing.B, c *enginetest.Content, boot string) time.Duration {
	mp := filepath.Join(b.TempDir(), "mnt")
	if err := os.Mkdir(mp, 0o755); err != nil {
		b.Fatal(err)
	}
	dir := filepath.Join(mp, c.Name)
	start := time.Now()
	args := []string{"mount", "--cache-dir", b.TempDir(), "--dht-bootstrap", boot, c.Magnet(), mp}
	if os.Getenv("SWARMFS_TEST_DEBUG") != "" {
		args = append([]string{"mount", "-v"}, args[1:]...)
	}
	p := enginetest.Start(b, os.Args[0], args...)
	if os.Getenv("SWARMFS_TEST_DEBUG") != "" {
		defer func() { b.Logf("swarmfs output:\n%s", p.Output()) }()
	}
	deadline := start.Add(45 * time.Second)
	var took time.Duration
	for {
		if ents, err := os.ReadDir(dir); err == nil && len(ents) > 0 {
			took = time.Since(start)
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("no files in %s after 45 s:\n%s", dir, p.Output())
		}
		time.Sleep(time.Millisecond)
	}
	if err := syscall.Kill(p.PID(), syscall.SIGINT); err != nil {
		b.Fatal(err)
	}
	waitBenchExit(b, p)
	return took
}

// benchLTMagnet runs a cold libtorrent client on the magnet and returns the
// time from its start to its metadata, seen from here and from inside.
func benchLTMagnet(b *testing.B, c *enginetest.Content, boot string) (total, inproc time.Duration) {
	start := time.Now()
	lt := enginetest.StartLTNode(b, enginetest.LTNodeOptions{
		IP: "127.0.9.33", Magnet: c.Magnet(), SavePath: b.TempDir(), Routers: []string{boot},
	})
	s, err := lt.AwaitLine("metadata ", 45*time.Second)
	if err != nil {
		b.Fatalf("libtorrent: %v\n%s", err, lt.Output())
	}
	total = time.Since(start)
	secs, err := strconv.ParseFloat(s, 64)
	if err != nil {
		b.Fatalf("libtorrent printed %q", s)
	}
	lt.Kill()
	waitBenchExit(b, lt.Proc)
	return total, time.Duration(secs * float64(time.Second))
}
