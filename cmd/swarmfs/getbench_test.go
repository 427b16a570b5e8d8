package main

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/swarmfs/swarmfs/engine/enginetest"
)

// BenchmarkGetInPlace measures `swarmfs get -o DIR` beside aria2c and a
// libtorrent client in the same run, each downloading one torrent
// (SWARMFS_BENCH_SIZE, default 1GiB) from three local libtorrent seeders
// (found through a local opentracker, as aria2 needs one). For each client
// (get, aria2, lt) it reports the rate end to end (start to exit, or to
// libtorrent's "done"), in MB/s; the bytes the process wrote to disk
// (write_bytes of /proc/PID/io, read by a shell that waited for it) as a
// multiple of the torrent (_written_x); and for get the disk space that
// -o DIR and the cache directory use as a multiple of it (get_space_x).
func BenchmarkGetInPlace(b *testing.B) {
	enginetest.RequireLibtorrent(b)
	enginetest.RequireTool(b, "aria2c", "aria2")
	size := int64(1 << 30)
	if s := os.Getenv("SWARMFS_BENCH_SIZE"); s != "" {
		n, err := humanize.ParseBytes(s)
		if err != nil {
			b.Fatal(err)
		}
		size = int64(n)
	}
	c := enginetest.MakeContent(b, "inplace.bin", 0, []enginetest.FileSpec{{Size: size}})
	tr := enginetest.StartOpentracker(b, "127.0.7.30", c.Meta.InfoHash.String())
	setAnnounce(b, c, tr.HTTP)
	var peers []string
	for _, ip := range []string{"127.0.7.31", "127.0.7.32", "127.0.7.33"} {
		lt := enginetest.StartLibtorrent(b, enginetest.LTOptions{IP: ip, Torrent: c.Torrent, SavePath: c.Dir, Peers: []string{}})
		lt.WaitSeeding(b, 5*time.Minute)
		peers = append(peers, lt.Addr)
	}
	b.Setenv("SWARMFS_TEST_MAIN", "1")
	b.ResetTimer()
	for range b.N {
		getInPlaceOnce(b, c, size, peers)
	}
}

// setAnnounce rewrites c's torrent to announce to url (the info hash
// stays).
func setAnnounce(t testing.TB, c *enginetest.Content, url string) {
	t.Helper()
	c.Meta.Announce = url
	c.Meta.AnnounceList = nil
	raw, err := c.Meta.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(c.Torrent, raw, 0o644); err != nil {
		t.Fatal(err)
	}
}

func getInPlaceOnce(b *testing.B, c *enginetest.Content, size int64, peers []string) {
	mb := func(d time.Duration) float64 { return float64(size) / d.Seconds() / 1e6 }
	x := func(n int64) float64 { return float64(n) / float64(size) }

	// swarmfs get, run by a shell that prints its write_bytes once reaped.
	syscall.Sync()
	out, cacheDir := b.TempDir(), b.TempDir()
	start := time.Now()
	get := startWithIO(b, os.Args[0], "get", "--no-dht", "--cache-dir", cacheDir,
		"--peer", strings.Join(peers, ","), "-o", out, c.Torrent)
	getWritten := waitIO(b, get)
	getRate := mb(time.Since(start))
	space := diskUsed(out) + diskUsed(cacheDir)
	if err := os.RemoveAll(out); err != nil {
		b.Fatal(err)
	}

	// aria2c, from the same seeders through the tracker.
	syscall.Sync()
	ariaDir := b.TempDir()
	start = time.Now()
	aria := startWithIO(b, "aria2c", "--dir="+ariaDir, "--enable-dht=false", "--enable-dht6=false",
		"--bt-enable-lpd=false", "--enable-peer-exchange=false", "--seed-time=0", "--file-allocation=none",
		"--summary-interval=0", "--console-log-level=warn", "--interface=127.0.7.34", "--disable-ipv6=true",
		"--listen-port="+strconv.Itoa(enginetest.FreePort(b, "127.0.7.34")), c.Torrent)
	ariaWritten := waitIO(b, aria)
	ariaRate := mb(time.Since(start))
	if err := os.RemoveAll(ariaDir); err != nil {
		b.Fatal(err)
	}

	// libtorrent: its written bytes are read while it still runs, a moment
	// after it finished (its disk threads flush on completion).
	syscall.Sync()
	ltDir := b.TempDir()
	start = time.Now()
	lt := enginetest.StartLibtorrent(b, enginetest.LTOptions{IP: "127.0.7.35", Torrent: c.Torrent, SavePath: ltDir, Peers: peers})
	if _, _, err := lt.WaitDone(b.Context()); err != nil {
		b.Fatal(err)
	}
	ltRate := mb(time.Since(start))
	time.Sleep(2 * time.Second)
	ltWritten := procWriteBytes(b, lt.PID())
	lt.Kill()

	b.ReportMetric(getRate, "get_MB/s")
	b.ReportMetric(ariaRate, "aria2_MB/s")
	b.ReportMetric(ltRate, "lt_MB/s")
	b.ReportMetric(x(getWritten), "get_written_x")
	b.ReportMetric(x(ariaWritten), "aria2_written_x")
	b.ReportMetric(x(ltWritten), "lt_written_x")
	b.ReportMetric(x(space), "get_space_x")
}

// startWithIO runs name with args under a shell that, once the command
// exited and was reaped, prints the shell's write_bytes (which then include
// the command's) and exits with the command's status.
func startWithIO(b *testing.B, name string, args ...string) *enginetest.Proc {
	script := `"$@"; rc=$?; grep '^write_bytes' /proc/$$/io; exit $rc`
	return enginetest.Start(b, "/bin/sh", append([]string{"-c", script, "sh", name}, args...)...)
}

var writeBytesRE = regexp.MustCompile(`write_bytes: (\d+)`)

// waitIO waits for a startWithIO process and returns the bytes it wrote.
func waitIO(b *testing.B, p *enginetest.Proc) int64 {
	select {
	case <-p.Exited():
	case <-time.After(30 * time.Minute):
		b.Fatalf("%s did not finish:\n%s", p.Name, p.Output())
	}
	if p.ExitCode() != 0 {
		b.Fatalf("%s exited %d:\n%s", p.Name, p.ExitCode(), p.Output())
	}
	m := writeBytesRE.FindStringSubmatch(p.Output())
	if m == nil {
		b.Fatalf("no write_bytes from %s:\n%s", p.Name, p.Output())
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	return n
}

// procWriteBytes reads write_bytes of a running process.
func procWriteBytes(b *testing.B, pid int) int64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		b.Fatal(err)
	}
	m := writeBytesRE.FindSubmatch(raw)
	if m == nil {
		b.Fatalf("no write_bytes in /proc/%d/io", pid)
	}
	n, _ := strconv.ParseInt(string(m[1]), 10, 64)
	return n
}
