package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/enginetest"
)

// btfsRun measures btfs for BenchmarkWAN: a cold mount to a playing video,
// the seeks, and a whole-file read on a fresh mount. btfs's libtorrent
// enables DHT, local peer discovery and UPnP, so btfs runs in a network
// namespace of its own (only lo up), where it reaches the seeders through
// latency proxies that accept inside the namespace and a tracker that
// listens there on the torrent's announce address. It reports false, with
// a message, when btfs is not installed.
func btfsRun(b *testing.B, w *wanSetup, rtt time.Duration) (wanResult, bool) {
	bin, err := exec.LookPath("btfs")
	if err != nil {
		b.Log("btfs column skipped: btfs not installed (apt-get install btfs)")
		return wanResult{}, false
	}
	fusermount := enginetest.RequireTool(b, "fusermount3", "fuse3")
	ns := enginetest.NewNetns(b, 1)
	var proxies []string
	for i, seeder := range w.seeders {
		ln, err := enginetest.ListenInNetns(ns.Name, fmt.Sprintf("127.0.9.%d:0", i+1))
		if err != nil {
			b.Fatal(err)
		}
		p := enginetest.StartLatencyProxy(b, enginetest.LatencyConfig{Listener: ln, Target: seeder, Delay: rtt / 2})
		proxies = append(proxies, p.Addr())
	}
	tr := &wanTracker{url: w.tracker.url}
	tr.setPeers(proxies)
	ln, err := enginetest.ListenInNetns(ns.Name, w.tracker.addr)
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: tr, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	mount := func() (string, *enginetest.Proc) {
		mp := filepath.Join(b.TempDir(), "btfs")
		if err := os.Mkdir(mp, 0o755); err != nil {
			b.Fatal(err)
		}
		p := enginetest.Start(b, "nsenter", "--net=/run/netns/"+ns.Name, bin, "-f", "--data-directory="+b.TempDir(), w.torrent, mp)
		// Registered after Start's cleanup, so it runs first: unmount,
		// then kill.
		b.Cleanup(func() { _ = exec.Command(fusermount, "-u", "-z", mp).Run() })
		waitListed(b, p, filepath.Join(mp, w.name))
		return mp, p
	}
	unmount := func(mp string, p *enginetest.Proc) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if out, err := exec.CommandContext(ctx, fusermount, "-u", mp).CombinedOutput(); err != nil {
			b.Logf("fusermount3 -u %s: %v: %s", mp, err, out)
		}
		p.Kill()
		waitBenchExit(b, p)
	}

	var r wanResult
	syscall.Sync()
	start := time.Now()
	mp, p := mount()
	file := filepath.Join(mp, w.name)
	probeAndPlay(b, file)
	r.play = time.Since(start)
	var seeks []time.Duration
	for _, t := range w.seeks {
		seeks = append(seeks, seekOnce(b, file, t))
	}
	r.seekP50, r.seekMax = median(seeks), maxDuration(seeks)
	unmount(mp, p)
	mp, p = mount()
	r.share = float64(w.size) / timedRead(b, p, filepath.Join(mp, w.name), w.size).Seconds() / float64(len(w.seeders)*wanSeederRate)
	unmount(mp, p)
	return r, true
}

func maxDuration(ds []time.Duration) time.Duration {
	var m time.Duration
	for _, d := range ds {
		m = max(m, d)
	}
	return m
}

// compact6 encodes an IPv4 "ip:port" in the compact 6-byte peer form.
func compact6(a string) ([]byte, error) {
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return nil, err
	}
	ip := net.ParseIP(host).To4()
	var n int
	if _, err := fmt.Sscanf(port, "%d", &n); ip == nil || err != nil || n <= 0 || n > 65535 {
		return nil, fmt.Errorf("bad IPv4 address %q", a)
	}
	return append(ip, byte(n>>8), byte(n)), nil
}
