package main

import (
	"fmt"
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
// Each client is measured cold (empty cache and routing table) on a DHT
// built for it alone, outside the timer, so that neither meets the other's
// leftovers. Sub-benchmark dead_nodes=0 has only live nodes; dead_nodes=3
// adds three DHT nodes that joined and then died before the client starts,
// as a real DHT holds many dead nodes. SWARMFS_BENCH_SIZE sets the torrent
// size (default 32MiB, in 16 KiB pieces, so that the metadata spans several
// ut_metadata pieces). With SWARMFS_TEST_DEBUG set, each mount runs with -v
// and its output goes to stderr.
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
	b.Setenv("SWARMFS_TEST_MAIN", "1")
	for _, dead := range []int{0, 3} {
		b.Run(fmt.Sprintf("dead_nodes=%d", dead), func(b *testing.B) {
			var swarmfsTotal, ltTotal, ltInproc time.Duration
			for range b.N {
				b.StopTimer()
				boot, stop := benchDHT(b, c, dead)
				b.StartTimer()
				sd := benchMagnetMount(b, c, boot)
				b.StopTimer()
				stop()
				boot, stop = benchDHT(b, c, dead)
				b.StartTimer()
				d, in := benchLTMagnet(b, c, boot)
				b.StopTimer()
				stop()
				b.Logf("swarmfs ls %v, libtorrent metadata %v (%v in process)", sd, d, in)
				swarmfsTotal += sd
				ltTotal += d
				ltInproc += in
			}
			ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(b.N) }
			b.ReportMetric(ms(swarmfsTotal), "swarmfs_ls_ms")
			b.ReportMetric(ms(ltTotal), "lt_meta_ms")
			b.ReportMetric(ms(ltInproc), "lt_meta_inproc_ms")
			b.ReportMetric(float64(swarmfsTotal)/float64(ltTotal), "swarmfs/lt")
		})
	}
}

// benchDHT builds a fresh DHT on loopback with c's seeder announced on it
// and dead nodes that joined it and died. It returns the address to
// bootstrap from and a function that stops every process it started.
func benchDHT(b *testing.B, c *enginetest.Content, dead int) (string, func()) {
	mesh, seeder := startDHTSeeder(b, c, "127.0.9.32", "127.0.9.30", "127.0.9.31")
	var boot []string
	known := make([]int, len(mesh))
	for i, n := range mesh {
		boot = append(boot, n.Addr)
		known[i] = n.DHTNodes()
	}
	for i := range dead {
		d := enginetest.StartLTNode(b, enginetest.LTNodeOptions{IP: fmt.Sprintf("127.0.9.%d", 34+i), Bootstrap: boot})
		d.WaitDHTNodes(b, len(mesh), 20*time.Second)
		for j, n := range mesh {
			n.WaitDHTNodes(b, known[j]+1, 20*time.Second)
			known[j] = n.DHTNodes()
		}
		d.Stop(b)
	}
	return mesh[0].Addr, func() {
		seeder.Stop(b)
		for _, n := range mesh {
			n.Stop(b)
		}
	}
}

// benchMagnetMount mounts the magnet cold and returns the time from the
// start of the command to a listing of the torrent's directory with files.
func benchMagnetMount(b *testing.B, c *enginetest.Content, boot string) time.Duration {
	mp := filepath.Join(b.TempDir(), "mnt")
	if err := os.Mkdir(mp, 0o755); err != nil {
		b.Fatal(err)
	}
	dir := filepath.Join(mp, c.Name)
	args := []string{"mount", "--cache-dir", b.TempDir(), "--dht-bootstrap", boot, c.Magnet(), mp}
	debug := os.Getenv("SWARMFS_TEST_DEBUG") != ""
	if debug {
		args = append([]string{"mount", "-v"}, args[1:]...)
	}
	start := time.Now()
	p := enginetest.Start(b, os.Args[0], args...)
	if debug {
		// b.Log output of benchmarks is truncated: write it all out.
		defer func() { fmt.Fprintf(os.Stderr, "swarmfs output:\n%s\n", p.Output()) }()
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
	lt.Stop(b)
	return total, time.Duration(secs * float64(time.Second))
}
