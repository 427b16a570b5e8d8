package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/swarmfs/swarmfs/engine/enginetest"
)

// Soak shape: soakFiles files, soakReaders concurrent readers through the
// mount, soakLeechers libtorrent leechers fed by the mount, a sample every
// soakSample.
const (
	soakFiles    = 200
	soakReaders  = 50
	soakLeechers = 4
	soakSample   = 10 * time.Second
	soakWarmup   = time.Minute
)

// BenchmarkSoak runs a `swarmfs mount` under a steady mixed load for
// SWARMFS_SOAK_DURATION (default 10m) and shows whether its memory and
// threads stay flat (scripts/bench runs it; issue 11). A torrent of 200
// files (SWARMFS_SOAK_SIZE in all, default 1GiB) is served by two
// libtorrent seeders; the mount's cache is capped at a quarter of the
// torrent so that eviction runs all along; 50 readers read random ranges of
// random files through the mount and compare every byte with the source;
// four libtorrent leechers that know only the mount download from it (one
// that finishes is replaced by a fresh one). Every 10 s it prints the mount
// process's RSS, threads and open descriptors (/proc), the bytes read and
// the bytes uploaded (from the mount's /metrics). Metrics: RSS and threads
// averaged over the first and the last third of the samples after the
// first minute (the cache fills in it), the read and
// upload rates, wrong bytes (must be 0) and failed reads.
func BenchmarkSoak(b *testing.B) {
	if _, err := os.Stat("/dev/fuse"); err != nil {
		b.Skip("no /dev/fuse")
	}
	enginetest.RequireLibtorrent(b)
	size := int64(1 << 30)
	if s := os.Getenv("SWARMFS_SOAK_SIZE"); s != "" {
		n, err := humanize.ParseBytes(s)
		if err != nil {
			b.Fatal(err)
		}
		size = int64(n)
	}
	dur := 10 * time.Minute
	if s := os.Getenv("SWARMFS_SOAK_DURATION"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			b.Fatal(err)
		}
		dur = d
	}
	specs := make([]enginetest.FileSpec, soakFiles)
	for i := range specs {
		specs[i] = enginetest.FileSpec{Path: fmt.Sprintf("d%02d/f%03d.bin", i%20, i), Size: size / soakFiles}
	}
	c := enginetest.MakeContent(b, "soak", 0, specs)
	var peers []string
	for _, ip := range []string{"127.0.7.61", "127.0.7.62"} {
		// The driver's default lifetime (10 minutes) would end the seeders
		// before the soak does.
		lt := enginetest.StartLibtorrent(b, enginetest.LTOptions{IP: ip, Torrent: c.Torrent, SavePath: c.Dir,
			Timeout: time.Duration(b.N)*dur + 10*time.Minute})
		lt.WaitSeeding(b, 2*time.Minute)
		peers = append(peers, lt.Addr)
	}
	b.Setenv("SWARMFS_TEST_MAIN", "1")
	b.ResetTimer()
	for range b.N {
		soakOnce(b, c, specs, size, dur, peers)
	}
}

// soakSampleRow is one sample of the mount process.
type soakSampleRow struct {
	at               time.Duration
	rss              int64
	threads, fds     int
	read, uploaded   int64
	wrong, readFails int64
}

func soakOnce(b *testing.B, c *enginetest.Content, specs []enginetest.FileSpec, size int64, dur time.Duration, peers []string) {
	mp := filepath.Join(b.TempDir(), "mnt")
	if err := os.Mkdir(mp, 0o755); err != nil {
		b.Fatal(err)
	}
	port := enginetest.FreePort(b, "127.0.0.1")
	httpAddr := fmt.Sprintf("127.0.0.1:%d", enginetest.FreePort(b, "127.0.0.1"))
	p := enginetest.Start(b, os.Args[0], "mount", "--no-dht", "--cache-dir", b.TempDir(),
		"--cache-size", strconv.FormatInt(size/4, 10), "--port", strconv.Itoa(port),
		"--http", httpAddr, "--peer", strings.Join(peers, ","), c.Torrent, mp)
	root := filepath.Join(mp, c.Name)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if ents, err := os.ReadDir(root); err == nil && len(ents) > 0 {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("mount did not come up:\n%s", p.Output())
		}
		time.Sleep(10 * time.Millisecond)
	}

	ctx, cancel := context.WithTimeout(b.Context(), dur)
	defer cancel()
	var read, wrong, fails atomic.Int64
	var wg sync.WaitGroup
	for i := range soakReaders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			soakRead(ctx, rand.New(rand.NewPCG(uint64(i), 11)), c, specs, root, &read, &wrong, &fails)
		}()
	}

	leechDir := b.TempDir()
	leecher := func(slot, n int) *enginetest.LT {
		dir := filepath.Join(leechDir, strconv.Itoa(n))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		return enginetest.StartLibtorrent(b, enginetest.LTOptions{
			IP: fmt.Sprintf("127.0.7.%d", 70+slot), Torrent: c.Torrent, SavePath: dir,
			Peers: []string{fmt.Sprintf("127.0.0.1:%d", port)}, ExitWhenDone: true, Timeout: dur + time.Minute,
		})
	}
	leechers := make([]*enginetest.LT, soakLeechers)
	leecherNum := make([]int, soakLeechers) // each slot's leecher's directory number
	started := 0
	for i := range leechers {
		leechers[i], leecherNum[i] = leecher(i, started), started
		started++
	}

	start := time.Now()
	var rows []soakSampleRow
	tick := time.NewTicker(soakSample)
	defer tick.Stop()
	fmt.Printf("%8s %9s %7s %5s %11s %11s %6s %6s\n", "t", "RSS", "threads", "fds", "read", "uploaded", "wrong", "fails")
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-tick.C:
		case <-p.Exited():
			b.Fatalf("the mount exited during the soak:\n%s", p.Output())
		}
		r := soakSampleRow{at: time.Since(start).Round(time.Second), read: read.Load(), wrong: wrong.Load(), readFails: fails.Load()}
		var err error
		if r.rss, r.threads, err = procStatus(p.PID()); err != nil {
			b.Fatal(err)
		}
		if ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", p.PID())); err == nil {
			r.fds = len(ents)
		}
		if r.uploaded, err = metricSum(httpAddr, "swarmfs_torrent_uploaded_bytes_total"); err != nil {
			b.Fatal(err)
		}
		rows = append(rows, r)
		fmt.Printf("%8v %9s %7d %5d %11s %11s %6d %6d\n", r.at, humanize.IBytes(uint64(r.rss)), r.threads, r.fds,
			humanize.IBytes(uint64(r.read)), humanize.IBytes(uint64(r.uploaded)), r.wrong, r.readFails)
		// A leecher that finished (or gave up) is replaced by a fresh one
		// with an empty directory, so that the mount keeps uploading.
		for i, lt := range leechers {
			select {
			case <-lt.Exited():
				if err := os.RemoveAll(filepath.Join(leechDir, strconv.Itoa(leecherNum[i]))); err != nil {
					b.Fatal(err)
				}
				if !done {
					leechers[i], leecherNum[i] = leecher(i, started), started
					started++
				}
			default:
			}
		}
	}
	wg.Wait()
	elapsed := time.Since(start)
	rss := stopMount(b, p)

	// The cache fills during the first minute; the verdict compares the
	// thirds of what follows (of every sample in a shorter run).
	steady := rows
	for i, r := range rows {
		if r.at > soakWarmup && len(rows)-i >= 3 {
			steady = rows[i:]
			break
		}
	}
	third := max(len(steady)/3, 1)
	avg := func(rs []soakSampleRow, f func(soakSampleRow) float64) float64 {
		var s float64
		for _, r := range rs {
			s += f(r)
		}
		return s / float64(len(rs))
	}
	mib := func(r soakSampleRow) float64 { return float64(r.rss) / (1 << 20) }
	thr := func(r soakSampleRow) float64 { return float64(r.threads) }
	first, last := steady[:third], steady[len(steady)-third:]
	last0 := rows[len(rows)-1]
	fmt.Printf("verdict: RSS %.1f -> %.1f MiB (first vs last third of the samples from %v on, %+.1f%%), threads %.1f -> %.1f, peak RSS %.1f MiB; "+
		"%d leechers started; %d wrong bytes, %d failed reads\n",
		avg(first, mib), avg(last, mib), steady[0].at, 100*(avg(last, mib)/avg(first, mib)-1), avg(first, thr), avg(last, thr),
		float64(rss)/(1<<20), started, last0.wrong, last0.readFails)
	b.ReportMetric(avg(first, mib), "rss_first_MiB")
	b.ReportMetric(avg(last, mib), "rss_last_MiB")
	b.ReportMetric(avg(first, thr), "threads_first")
	b.ReportMetric(avg(last, thr), "threads_last")
	b.ReportMetric(float64(rss)/(1<<20), "peak_RSS_MiB")
	b.ReportMetric(float64(read.Load())/elapsed.Seconds()/1e6, "read_MB/s")
	b.ReportMetric(float64(last0.uploaded)/elapsed.Seconds()/1e6, "up_MB/s")
	b.ReportMetric(float64(wrong.Load()), "wrong_bytes")
	b.ReportMetric(float64(fails.Load()), "failed_reads")
	if wrong.Load() != 0 {
		b.Errorf("%d wrong bytes read through the mount", wrong.Load())
	}
}

// soakRead reads random ranges (4 KiB to 256 KiB) of random files through
// the mount until ctx ends, comparing each with the source file.
func soakRead(ctx context.Context, rng *rand.Rand, c *enginetest.Content, specs []enginetest.FileSpec, root string, read, wrong, fails *atomic.Int64) {
	got := make([]byte, 256<<10)
	want := make([]byte, 256<<10)
	for ctx.Err() == nil {
		spec := specs[rng.IntN(len(specs))]
		n := min(int64(4<<10+rng.IntN(252<<10)), spec.Size)
		off := rng.Int64N(spec.Size - n + 1)
		k, err := readRange(filepath.Join(root, filepath.FromSlash(spec.Path)), got[:n], off)
		if err != nil {
			if fails.Add(1) <= 3 {
				fmt.Printf("read failed: %v\n", err)
			}
			continue
		}
		if _, err := readRange(c.Files[spec.Path], want[:k], off); err != nil {
			fails.Add(1)
			continue
		}
		read.Add(int64(k))
		for i := range k {
			if got[i] != want[i] {
				wrong.Add(1)
			}
		}
	}
}

// readRange opens path, reads len(buf) bytes at off and closes it.
func readRange(path string, buf []byte, off int64) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	n, err := f.ReadAt(buf, off)
	if err == io.EOF && n == len(buf) {
		err = nil
	}
	return n, err
}

// procStatus returns a process's resident set size in bytes and its
// thread count from /proc/PID/status.
func procStatus(pid int) (rss int64, threads int, err error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "VmRSS:":
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				return 0, 0, fmt.Errorf("VmRSS %q: %w", f[1], err)
			}
			rss = kb << 10
		case "Threads:":
			if threads, err = strconv.Atoi(f[1]); err != nil {
				return 0, 0, fmt.Errorf("threads %q: %w", f[1], err)
			}
		}
	}
	return rss, threads, nil
}

// metricSum fetches http://addr/metrics and sums the samples of name.
func metricSum(addr, name string) (int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+" ") && !strings.HasPrefix(line, name+"{") {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			return 0, fmt.Errorf("metrics: %q: %w", line, err)
		}
		sum += v
	}
	return int64(sum), sc.Err()
}
