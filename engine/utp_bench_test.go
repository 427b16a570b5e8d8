package engine

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/enginetest"
	"github.com/swarmfs/swarmfs/metainfo"
)

// BenchmarkTransportLoopback downloads a torrent (SWARMFS_BENCH_MB,
// default 256 MiB) on loopback from one swarmfs seeder in this process to
// a swarmfs downloader restricted to uTP and to one restricted to TCP,
// three times each, alternating,
// and, in the same run, from a uTP-only libtorrent seeder to a uTP-only
// libtorrent downloader: the whole path (wire, MSE off, hashing, cache)
// over each transport, and a swarmfs downloader restricted to uTP fed by
// the libtorrent seeder. It reports the rates, uTP's share of our TCP
// rate and the CPU time per GB of our two downloads. Run it with
// -benchtime=1x. SWARMFS_BENCH_ONLY=utp (or tcp) runs only that
// transport's downloads, for a CPU profile of one transport.
func BenchmarkTransportLoopback(b *testing.B) {
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
	writeRandomFile(b, filepath.Join(dir, "tr.bin"), size)
	mi, err := metainfo.Create(filepath.Join(dir, "tr.bin"), metainfo.CreateOptions{NoDate: true})
	if err != nil {
		b.Fatal(err)
	}
	seed, err := New(Config{ListenAddr: "127.0.2.140:0", CacheDir: b.TempDir(), NoDHT: true})
	if err != nil {
		b.Fatal(err)
	}
	defer seed.Close()
	tor, err := seed.AddTorrent(mi, AddOptions{Import: dir})
	if err != nil {
		b.Fatal(err)
	}
	select {
	case <-tor.Complete():
	case <-time.After(5 * time.Minute):
		b.Fatal("import too slow")
	}
	// cpu is this process's CPU time (both ends of a swarmfs-to-swarmfs
	// download run in it): on a loaded machine, where the rates vary,
	// CPU per byte compares the transports' costs.
	cpu := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			b.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	var cpuPerGB float64
	download := func(tr Transport, from netip.AddrPort) float64 {
		c, err := New(Config{ListenAddr: "127.0.2.141:0", CacheDir: b.TempDir(), NoDHT: true, Transports: []Transport{tr}})
		if err != nil {
			b.Fatal(err)
		}
		defer func() {
			c.Close()
			os.RemoveAll(c.cfg.CacheDir)
		}()
		start, cpu0 := time.Now(), cpu()
		t, err := c.AddTorrent(mi, AddOptions{Peers: []netip.AddrPort{from}, Prefetch: true})
		if err != nil {
			b.Fatal(err)
		}
		select {
		case <-t.Complete():
		case <-time.After(5 * time.Minute):
			b.Fatalf("download over %v: %+v", tr, t.Stats())
		}
		el := time.Since(start).Seconds()
		cpuPerGB = (cpu() - cpu0).Seconds() / (float64(size) / 1e9)
		return float64(size) / el
	}
	// Rounds alternate which transport goes first, and the rates are
	// totals over them, so that a burst of load from elsewhere on the
	// machine weighs on both.
	only := os.Getenv("SWARMFS_BENCH_ONLY")
	if only != "" && only != "utp" && only != "tcp" {
		b.Fatalf("SWARMFS_BENCH_ONLY=%q: want utp or tcp", only)
	}
	var utpTime, tcpTime, utpCPU, tcpCPU float64
	rounds := 3
	b.SetBytes(size * int64(2*rounds))
	b.ResetTimer()
	for range b.N {
		for i := range rounds {
			for k := range 2 {
				switch {
				case (i+k)%2 == 0 && only != "tcp":
					utpTime += float64(size) / download(TransportUTP, seed.Addr())
					utpCPU += cpuPerGB / float64(rounds)
				case (i+k)%2 == 1 && only != "utp":
					tcpTime += float64(size) / download(TransportTCP, seed.Addr())
					tcpCPU += cpuPerGB / float64(rounds)
				}
			}
		}
	}
	utp := float64(int64(b.N*rounds)*size) / utpTime
	tcp := float64(int64(b.N*rounds)*size) / tcpTime
	utpCPU /= float64(b.N)
	tcpCPU /= float64(b.N)
	b.StopTimer()
	if only != "" {
		b.ReportMetric(min(utp, tcp)/1e6, only+"-MB/s")
		b.ReportMetric(utpCPU+tcpCPU, only+"-cpu-s/GB")
		return
	}
	seeder, torrent := startLTUTPSeeder(b, mi, dir)
	fromLT := download(TransportUTP, addrPort(b, seeder.Addr))
	lt := libtorrentUTPRate(b, seeder, torrent)
	b.ReportMetric(utp/1e6, "utp-MB/s")
	b.ReportMetric(tcp/1e6, "tcp-MB/s")
	b.ReportMetric(utp/tcp, "utp/tcp")
	b.ReportMetric(utpCPU, "utp-cpu-s/GB")
	b.ReportMetric(tcpCPU, "tcp-cpu-s/GB")
	b.ReportMetric(lt/1e6, "libtorrent-utp-MB/s")
	b.ReportMetric(fromLT/1e6, "utp-from-libtorrent-MB/s")
}

// startLTUTPSeeder starts a uTP-only libtorrent seeder of the data in
// dir and waits until it seeds.
func startLTUTPSeeder(b *testing.B, mi *metainfo.MetaInfo, dir string) (seeder *enginetest.LT, torrent string) {
	raw, err := mi.Bytes()
	if err != nil {
		b.Fatal(err)
	}
	torrent = filepath.Join(b.TempDir(), "tr.torrent")
	if err := os.WriteFile(torrent, raw, 0o644); err != nil {
		b.Fatal(err)
	}
	seeder = enginetest.StartLibtorrent(b, enginetest.LTOptions{IP: "127.0.2.142", Torrent: torrent, SavePath: dir, Settings: enginetest.LTUTPOnly})
	seeder.WaitSeeding(b, 5*time.Minute)
	return seeder, torrent
}

// libtorrentUTPRate is the rate of a uTP-only libtorrent downloader fed
// by seeder of torrent.
func libtorrentUTPRate(b *testing.B, seeder *enginetest.LT, torrent string) float64 {
	leech := enginetest.StartLibtorrent(b, enginetest.LTOptions{IP: "127.0.2.143", Torrent: torrent, SavePath: b.TempDir(),
		Peers: []string{seeder.Addr}, ExitWhenDone: true, Settings: enginetest.LTUTPOnly})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	_, rate, err := leech.WaitDone(ctx)
	if err != nil {
		b.Fatal(fmt.Errorf("libtorrent over uTP: %w", err))
	}
	return rate
}
