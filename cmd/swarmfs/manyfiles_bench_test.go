package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/metainfo"
	"golang.org/x/sys/unix"
)

// manyFilesTorrent writes a .torrent of n files of 4 KiB to path: 100
// files a directory, 10 directories in each top directory
// ("many/d007/s3/f000042.bin"), announcing to tracker. It returns the
// number of top directories.
func manyFilesTorrent(tb testing.TB, path string, n int, tracker string) int {
	tb.Helper()
	type entry struct {
		Length int64    `bencode:"length"`
		Path   []string `bencode:"path"`
	}
	const fileLen, pieceLen = 4 << 10, 4 << 20
	list := make([]entry, n)
	for i := range list {
		list[i] = entry{fileLen, []string{fmt.Sprintf("d%03d", i/1000), fmt.Sprintf("s%d", i/100%10), fmt.Sprintf("f%06d.bin", i)}}
	}
	total := int64(n) * fileLen
	info, err := metainfo.Marshal(map[string]any{"name": "many", "piece length": pieceLen,
		"pieces": string(make([]byte, (total+pieceLen-1)/pieceLen*metainfo.HashSize)), "files": list})
	if err != nil {
		tb.Fatal(err)
	}
	b, err := metainfo.Marshal(map[string]any{"announce": tracker, "info": metainfo.RawMessage(info)})
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		tb.Fatal(err)
	}
	return (n + 999) / 1000
}

// silentPeers opens a TCP listener that accepts and never answers and a UDP
// socket that never replies, on loopback: the torrent's tracker and the
// DHT's bootstrap node, so that a mount which waited for either before
// answering would show it. It returns the tracker URL and the node.
func silentPeers(tb testing.TB) (tracker, node string) {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ln.Close()
		udp.Close()
		<-done
	})
	return "http://" + ln.Addr().String() + "/announce", udp.LocalAddr().String()
}

// swarmfsBinary returns the swarmfs executable the benchmark runs:
// SWARMFS_BENCH_BIN when set (to measure another build the same way),
// else this package built with go build into a temporary directory, else,
// without a go command, this test binary in main mode (whose startup
// includes the test packages).
func swarmfsBinary(b *testing.B) (string, []string) {
	if p := os.Getenv("SWARMFS_BENCH_BIN"); p != "" {
		return p, nil
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		b.Setenv("SWARMFS_TEST_MAIN", "1")
		return os.Args[0], testEngineDefaults
	}
	out := filepath.Join(b.TempDir(), "swarmfs")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if msg, err := exec.CommandContext(ctx, goCmd, "build", "-o", out, ".").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, msg)
	}
	return out, nil
}

// procStatusField returns a field of /proc/PID/status in bytes ("VmHWM").
func procStatusField(pid int, key string) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), key+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// procCPU returns the CPU time all threads of process pid have used, from
// /proc/PID/task/*/schedstat (nanoseconds, unlike the ticks of stat).
func procCPU(pid int) time.Duration {
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	var sum time.Duration
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, t.Name()))
		if err != nil {
			continue
		}
		if f := strings.Fields(string(b)); len(f) > 0 {
			ns, _ := strconv.ParseInt(f[0], 10, 64)
			sum += time.Duration(ns)
		}
	}
	return sum
}

// lsCount runs ls with args and returns how many lines it printed.
func lsCount(b *testing.B, args ...string) int {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ls", args...).Output()
	if err != nil {
		b.Fatalf("ls %v: %v", args, err)
	}
	return strings.Count(string(out), "\n")
}

// BenchmarkMountManyFiles runs `swarmfs mount` of a 200,000-file torrent
// (20,000 with -short) as a user would and times, from outside, the time
// from exec to the end of the first `ls` of the torrent's directory
// (first-ls-ms), to the mount appearing (mount-ms) and to the end of a
// following `ls -R` of one top directory (1,000 files; lsR-ms), with the
// process's CPU time up to the first ls (cpu-ms) and its peak and current
// RSS then (hwm-MiB, rss-MiB). The torrent's tracker and the DHT
// bootstrap node are loopback sockets that never answer, so a mount that
// waited for the network would show it. Beside them, in the same run:
// exec of `swarmfs version` to its exit (ref-exec-ms, the cost of starting
// the program at all) and the same two ls runs over a real directory
// tree of that shape on tmpfs (ref-ls-ms, ref-lsR-ms). SWARMFS_BENCH_BIN
// measures another build (an older one, for before and after).
func BenchmarkMountManyFiles(b *testing.B) {
	if _, err := os.Stat("/dev/fuse"); err != nil {
		b.Skip("no /dev/fuse")
	}
	n := 200_000
	if testing.Short() {
		n = 20_000
	}
	tracker, node := silentPeers(b)
	torrent := filepath.Join(b.TempDir(), "many.torrent")
	top := manyFilesTorrent(b, torrent, n, tracker)
	bin, extra := swarmfsBinary(b)
	ref := refTree(b, top)
	for b.Loop() {
		m := mountOnce(b, bin, extra, torrent, node, top)
		refExec := execTime(b, bin, "version")
		refStart := time.Now()
		lsCount(b, ref)
		refLs := time.Since(refStart)
		lsCount(b, "-R", filepath.Join(ref, "d007"))
		refLsR := time.Since(refStart)

		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1e3 }
		b.ReportMetric(ms(m.firstLs), "first-ls-ms")
		b.ReportMetric(ms(m.mounted), "mount-ms")
		b.ReportMetric(ms(m.lsR-m.firstLs), "lsR-ms")
		b.ReportMetric(ms(m.cpu), "cpu-ms")
		b.ReportMetric(float64(m.hwm)/(1<<20), "hwm-MiB")
		b.ReportMetric(float64(m.rss)/(1<<20), "rss-MiB")
		b.ReportMetric(ms(refExec), "ref-exec-ms")
		b.ReportMetric(ms(refLs), "ref-ls-ms")
		b.ReportMetric(ms(refLsR-refLs), "ref-lsR-ms")
	}
}

// mountRun is what one timed mount measured.
type mountRun struct {
	mounted, firstLs, lsR time.Duration
	cpu                   time.Duration
	hwm, rss              int64
}

// mountOnce starts a mount of torrent, times it to its first ls and to an
// ls -R of one top directory, and stops it.
func mountOnce(b *testing.B, bin string, extra []string, torrent, node string, top int) mountRun {
	b.Helper()
	dir := b.TempDir()
	mp := filepath.Join(dir, "mnt")
	if err := os.Mkdir(mp, 0o755); err != nil {
		b.Fatal(err)
	}
	var st0 unix.Stat_t
	if err := unix.Stat(mp, &st0); err != nil {
		b.Fatal(err)
	}
	args := append([]string{"mount"}, extra...)
	args = append(args, "--cache-dir", filepath.Join(dir, "cache"), "--dht-bootstrap", node,
		"--no-lsd", "--no-port-mapping", torrent, mp)
	cmd := exec.Command(bin, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	b.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		_ = unix.Unmount(mp, unix.MNT_DETACH)
	})
	var r mountRun
	deadline := start.Add(time.Minute)
	for {
		var st unix.Stat_t
		if unix.Stat(mp, &st) == nil && st.Dev != st0.Dev {
			r.mounted = time.Since(start)
			break
		}
		select {
		case <-exited:
			b.Fatalf("swarmfs mount exited before mounting:\n%s", stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			b.Fatalf("not mounted after a minute:\n%s", stderr.String())
		}
		time.Sleep(200 * time.Microsecond)
	}
	if got := lsCount(b, filepath.Join(mp, "many")); got != top {
		b.Fatalf("ls listed %d entries, want %d", got, top)
	}
	r.firstLs = time.Since(start)
	pid := cmd.Process.Pid
	r.cpu, r.hwm, r.rss = procCPU(pid), procStatusField(pid, "VmHWM"), procStatusField(pid, "VmRSS")
	if got := lsCount(b, "-R", filepath.Join(mp, "many", "d007")); got < 1000 {
		b.Fatalf("ls -R of one directory printed %d lines, want more than 1000", got)
	}
	r.lsR = time.Since(start)
	_ = cmd.Process.Signal(os.Interrupt)
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		b.Fatalf("swarmfs mount did not stop on SIGINT:\n%s", stderr.String())
	}
	return r
}

// execTime returns how long bin takes to run with args and exit.
func execTime(b *testing.B, bin string, args ...string) time.Duration {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	if out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput(); err != nil {
		b.Fatalf("%s %v: %v\n%s", bin, args, err, out)
	}
	return time.Since(start)
}

// refTree makes, on tmpfs when it can, a real directory tree with the
// same top directories as the torrent and one of them full
// (d007/s0..s9/100 files each), what the benchmark lists.
func refTree(b *testing.B, top int) string {
	b.Helper()
	root, err := os.MkdirTemp("/dev/shm", "swarmfs-many")
	if err != nil {
		root = b.TempDir()
	} else {
		b.Cleanup(func() { os.RemoveAll(root) })
	}
	for t := range top {
		if err := os.Mkdir(filepath.Join(root, fmt.Sprintf("d%03d", t)), 0o755); err != nil {
			b.Fatal(err)
		}
	}
	for i := 7000; i < 8000; i++ {
		d := filepath.Join(root, "d007", fmt.Sprintf("s%d", i/100%10))
		if i%100 == 0 {
			if err := os.Mkdir(d, 0o755); err != nil {
				b.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(d, fmt.Sprintf("f%06d.bin", i)), nil, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	return root
}
