package main

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/enginetest"
	"github.com/swarmfs/swarmfs/metainfo"
)

//go:embed testdata/wan_lt.py
var wanLTScript []byte

// wanSeederRate is each seeder's upload cap in bytes per second.
const wanSeederRate = 3_000_000

// BenchmarkWAN streams a real video (H.264 MP4 with its moov at the end,
// 1 MiB pieces; SWARMFS_WAN_SECONDS sets its length, default 120 s, about
// 105 MB) from four libtorrent seeders capped at 3 MB/s each and reached
// through latency proxies, once per round-trip time (sub-benchmarks
// rtt=20ms, rtt=80ms, rtt=200ms). It measures, through a cold swarmfs mount:
//   - play_s: from starting `swarmfs mount` to ffprobe done and the first
//     3 s decoded (ffmpeg -t 3);
//   - seek_p50_s, seek_max_s: `ffmpeg -ss T -t 1` at 5 positions;
//   - seq_share: reading the whole file on a fresh mount, as a share of the
//     seeders' capacity (4 x 3 MB/s);
//   - conn_prefer_s, conn_off_s: from the engine's start to a finished
//     handshake with all 4 seeders with --encryption prefer and off.
//
// Beside them in the same run: lt_* for a libtorrent client that streams
// with set_piece_deadline (the pieces ffprobe, the 3 s of playing and each
// seek need, from the container walk and the packet positions; its
// network time plus the floor, the same ffprobe and ffmpeg runs on the
// local file: floor_play_s, floor_seek_p50_s), btfs_* for btfs (skipped
// with a message when it is not installed) and the floor itself.
//
// While working on the engine: SWARMFS_WAN_ONLY=swarmfs measures swarmfs
// alone (no libtorrent or btfs rows), and SWARMFS_WAN_LOG=DIR saves each
// mount's -v log there (NN_prefer.log, NN_off.log in mount order: play and
// seeks, whole read, connect; the benchmark's steps marked "bench: ...")
// for the read timeline.
func BenchmarkWAN(b *testing.B) {
	if _, err := os.Stat("/dev/fuse"); err != nil {
		b.Skip("no /dev/fuse")
	}
	enginetest.RequireLibtorrent(b)
	enginetest.RequireTool(b, "ffmpeg", "ffmpeg")
	enginetest.RequireTool(b, "ffprobe", "ffmpeg")
	b.Setenv("SWARMFS_TEST_MAIN", "1")
	w := setupWAN(b)
	for _, rtt := range []time.Duration{20 * time.Millisecond, 80 * time.Millisecond, 200 * time.Millisecond} {
		b.Run("rtt="+rtt.String(), func(b *testing.B) {
			var proxies []string
			for i, seeder := range w.seeders {
				p := enginetest.StartLatencyProxy(b, enginetest.LatencyConfig{
					Listen: fmt.Sprintf("127.0.9.%d:0", i+1), Target: seeder, Delay: rtt / 2,
				})
				proxies = append(proxies, p.Addr())
			}
			w.tracker.setPeers(proxies)
			for range b.N {
				wanOnce(b, w, proxies, rtt)
			}
		})
	}
}

// wanSetup is what every round-trip time shares: the video, its torrent,
// the tracker and the seeders, and the figures measured on the local file.
type wanSetup struct {
	dir, name, file, torrent string
	size                     int64
	pieceLen                 int64
	seeks                    []float64 // seek positions in seconds
	plan                     *enginetest.MediaPlan
	floorPlay                time.Duration
	floorSeeks               []time.Duration
	tracker                  *wanTracker
	seeders                  []string
}

func setupWAN(b *testing.B) *wanSetup {
	secs := 120
	if s := os.Getenv("SWARMFS_WAN_SECONDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 10 {
			b.Fatalf("SWARMFS_WAN_SECONDS=%q: want a number of seconds >= 10", s)
		}
		secs = n
	}
	w := &wanSetup{dir: b.TempDir(), name: "wan.mp4", pieceLen: 1 << 20}
	w.file = filepath.Join(w.dir, w.name)
	d := strconv.Itoa(secs)
	wanTool(b, "ffmpeg", "-v", "error", "-y",
		"-f", "lavfi", "-i", "testsrc=duration="+d+":size=1280x720:rate=25",
		"-f", "lavfi", "-i", "sine=frequency=440:duration="+d,
		"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "50",
		"-b:v", "7M", "-minrate", "7M", "-maxrate", "7M", "-bufsize", "7M", "-x264-params", "nal-hrd=cbr",
		"-c:a", "aac", "-b:a", "128k", "-shortest", w.file)
	st, err := os.Stat(w.file)
	if err != nil {
		b.Fatal(err)
	}
	w.size = st.Size()
	for _, f := range []float64{0.2, 0.35, 0.5, 0.65, 0.8} {
		w.seeks = append(w.seeks, float64(int(f*float64(secs))))
	}
	plan, err := enginetest.PlanMedia(b.Context(), w.file, 3, w.seeks)
	if err != nil {
		b.Fatal(err)
	}
	w.plan = plan

	w.tracker = startWANTracker(b, "127.0.7.60")
	mi, err := metainfo.Create(w.file, metainfo.CreateOptions{PieceLength: w.pieceLen, Trackers: [][]string{{w.tracker.url}}, CreatedBy: "swarmfs bench"})
	if err != nil {
		b.Fatal(err)
	}
	raw, err := mi.Bytes()
	if err != nil {
		b.Fatal(err)
	}
	w.torrent = filepath.Join(b.TempDir(), "wan.torrent")
	if err := os.WriteFile(w.torrent, raw, 0o644); err != nil {
		b.Fatal(err)
	}
	for i := range 4 {
		lt := startWANLT(b, map[string]any{"mode": "seed", "ip": fmt.Sprintf("127.0.8.%d", i+1),
			"torrent": w.torrent, "save_path": w.dir, "upload_rate": wanSeederRate, "timeout": 3600})
		lt.WaitSeeding(b, 5*time.Minute)
		w.seeders = append(w.seeders, lt.Addr)
	}

	// The floor: the same commands on the local file.
	start := time.Now()
	probeAndPlay(b, w.file)
	w.floorPlay = time.Since(start)
	for _, t := range w.seeks {
		w.floorSeeks = append(w.floorSeeks, seekOnce(b, w.file, t))
	}
	return w
}

// wanResult is one client's figures.
type wanResult struct {
	play, seekP50, seekMax time.Duration
	share                  float64
	connPrefer, connOff    time.Duration
}

func wanOnce(b *testing.B, w *wanSetup, proxies []string, rtt time.Duration) {
	capacity := float64(len(w.seeders) * wanSeederRate)
	var sw, lt wanResult

	// swarmfs: a cold mount to a playing video, then seeks on it.
	syscall.Sync()
	start := time.Now()
	mp, p := wanMount(b, w, proxies, "prefer")
	file := filepath.Join(mp, w.name)
	wanMark("play")
	probeAndPlay(b, file)
	sw.play = time.Since(start)
	var seeks []time.Duration
	for _, t := range w.seeks {
		wanMark(fmt.Sprintf("seek to %gs", t))
		seeks = append(seeks, seekOnce(b, file, t))
	}
	sw.seekP50, sw.seekMax = median(seeks), slices.Max(seeks)
	sw.connPrefer = connectTime(b, p, len(proxies))
	wanStop(b, p, mp)
	// A fresh mount read from start to end.
	mp, p = wanMount(b, w, proxies, "prefer")
	sw.share = float64(w.size) / timedRead(b, p, filepath.Join(mp, w.name), w.size).Seconds() / capacity
	wanStop(b, p, mp)
	mp, p = wanMount(b, w, proxies, "off")
	sw.connOff = connectTime(b, p, len(proxies))
	wanStop(b, p, mp)
	if os.Getenv("SWARMFS_WAN_ONLY") == "swarmfs" {
		b.ReportMetric(sw.play.Seconds(), "play_s")
		b.ReportMetric(sw.seekP50.Seconds(), "seek_p50_s")
		b.ReportMetric(sw.seekMax.Seconds(), "seek_max_s")
		b.ReportMetric(sw.share, "seq_share")
		b.Logf("swarmfs alone: play %.2f s, seeks %v, seq %.0f%%, conn %.2f / %.2f s; floor %.2f / %.2f s",
			sw.play.Seconds(), seeks, 100*sw.share, sw.connPrefer.Seconds(), sw.connOff.Seconds(),
			w.floorPlay.Seconds(), median(w.floorSeeks).Seconds())
		return
	}

	// libtorrent streaming with piece deadlines.
	phases := []map[string]any{{"name": "play", "ranges": w.plan.Play}}
	for i, rs := range w.plan.Seeks {
		phases = append(phases, map[string]any{"name": fmt.Sprintf("seek%d", i), "ranges": rs})
	}
	s := startWANLT(b, map[string]any{"mode": "stream", "ip": "127.0.7.61", "torrent": w.torrent,
		"save_path": b.TempDir(), "peers": proxies, "phases": phases})
	lt.play = ltSeconds(b, s, "phase play ") + w.floorPlay
	seeks = seeks[:0]
	for i := range w.plan.Seeks {
		seeks = append(seeks, ltSeconds(b, s, fmt.Sprintf("phase seek%d ", i))+w.floorSeeks[i])
	}
	lt.seekP50, lt.seekMax = median(seeks), slices.Max(seeks)
	s.Kill()
	d := startWANLT(b, map[string]any{"mode": "download", "ip": "127.0.7.62", "torrent": w.torrent,
		"save_path": b.TempDir(), "peers": proxies})
	var secs, rate float64
	if _, err := fmt.Sscanf(d.WaitLine(b, "done ", 10*time.Minute), "%f %f", &secs, &rate); err != nil {
		b.Fatal(err)
	}
	lt.share = rate / capacity
	d.Kill()
	for _, enc := range []string{"prefer", "off"} {
		c := startWANLT(b, map[string]any{"mode": "connect", "ip": "127.0.7.63", "torrent": w.torrent,
			"save_path": b.TempDir(), "peers": proxies, "encryption": enc})
		if enc == "prefer" {
			lt.connPrefer = ltSeconds(b, c, "connected ")
		} else {
			lt.connOff = ltSeconds(b, c, "connected ")
		}
		c.Kill()
	}

	bt, btOK := btfsRun(b, w, rtt)

	sec := func(d time.Duration) float64 { return d.Seconds() }
	b.ReportMetric(sec(sw.play), "play_s")
	b.ReportMetric(sec(sw.seekP50), "seek_p50_s")
	b.ReportMetric(sec(sw.seekMax), "seek_max_s")
	b.ReportMetric(sw.share, "seq_share")
	b.ReportMetric(sec(sw.connPrefer), "conn_prefer_s")
	b.ReportMetric(sec(sw.connOff), "conn_off_s")
	b.ReportMetric(sec(lt.play), "lt_play_s")
	b.ReportMetric(sec(lt.seekP50), "lt_seek_p50_s")
	b.ReportMetric(sec(lt.seekMax), "lt_seek_max_s")
	b.ReportMetric(lt.share, "lt_seq_share")
	b.ReportMetric(sec(lt.connPrefer), "lt_conn_prefer_s")
	b.ReportMetric(sec(lt.connOff), "lt_conn_off_s")
	b.ReportMetric(sec(w.floorPlay), "floor_play_s")
	b.ReportMetric(sec(median(w.floorSeeks)), "floor_seek_p50_s")
	row := func(name string, r wanResult, conn bool) string {
		c := "-"
		if conn {
			c = fmt.Sprintf("%.2f / %.2f", sec(r.connPrefer), sec(r.connOff))
		}
		return fmt.Sprintf("%-10s %8.2f %9.2f %9.2f %8.0f%% %15s", name, sec(r.play), sec(r.seekP50), sec(r.seekMax), 100*r.share, c)
	}
	table := []string{
		fmt.Sprintf("%-10s %8s %9s %9s %9s %15s", "", "play_s", "seek_p50", "seek_max", "seq", "conn pref/off"),
		row("swarmfs", sw, true), row("libtorrent", lt, true),
	}
	if btOK {
		b.ReportMetric(sec(bt.play), "btfs_play_s")
		b.ReportMetric(sec(bt.seekP50), "btfs_seek_p50_s")
		b.ReportMetric(sec(bt.seekMax), "btfs_seek_max_s")
		b.ReportMetric(bt.share, "btfs_seq_share")
		table = append(table, row("btfs", bt, false))
	}
	table = append(table, fmt.Sprintf("%-10s %8.2f %9.2f", "floor", sec(w.floorPlay), sec(median(w.floorSeeks))))
	b.Logf("%d MB video, 4 seeders x %d MB/s:\n%s", w.size/1_000_000, wanSeederRate/1_000_000, strings.Join(table, "\n"))
}

// wanMount starts `swarmfs mount -v` on a cold cache with the proxies as
// peers and waits until the file is listed.
func wanMount(b *testing.B, w *wanSetup, peers []string, encryption string) (string, *enginetest.Proc) {
	mp := filepath.Join(b.TempDir(), "mnt")
	if err := os.Mkdir(mp, 0o755); err != nil {
		b.Fatal(err)
	}
	args := []string{os.Args[0], "mount", "-v", "--no-dht", "--cache-dir", b.TempDir(),
		"--encryption", encryption, "--peer", strings.Join(peers, ","), w.torrent, mp}
	if dir := os.Getenv("SWARMFS_WAN_LOG"); dir != "" {
		// bash execs the mount, whose stderr also goes to the log file
		// (the Proc keeps only the first lines).
		wanLogSeq++
		wanLogFile = filepath.Join(dir, fmt.Sprintf("%02d_%s.log", wanLogSeq, encryption))
		args = append([]string{"/bin/bash", "-c", `exec "$@" 2> >(tee -a "$WANLOG" >&2)`, "bash"}, args...)
		b.Setenv("WANLOG", wanLogFile)
	}
	p := enginetest.Start(b, args[0], args[1:]...)
	waitListed(b, p, filepath.Join(mp, w.name))
	return mp, p
}

// The mount log being written with SWARMFS_WAN_LOG, and how many were.
var (
	wanLogFile string
	wanLogSeq  int
)

// wanMark notes in the current mount log (SWARMFS_WAN_LOG) when the
// benchmark starts a step.
func wanMark(what string) {
	if wanLogFile == "" {
		return
	}
	f, err := os.OpenFile(wanLogFile, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "time=%s level=INFO msg=%q\n", time.Now().Format(slogLayout), "bench: "+what)
}

// wanStop stops a mount with SIGINT, as a user's Ctrl-C, and waits for it
// to exit. Another mount namespace made while the mount was up (an `ip
// netns exec` of a concurrent test, say) holds a copy of it, and then the
// unmount waits for that copy to go: after 20 s the benchmark logs which
// processes hold the mountpoint and the mount's goroutines (SIGQUIT), and
// goes on; the figures are already taken.
func wanStop(b *testing.B, p *enginetest.Proc, mp string) {
	if err := syscall.Kill(p.PID(), syscall.SIGINT); err != nil {
		b.Fatal(err)
	}
	select {
	case <-p.Exited():
		return
	case <-time.After(20 * time.Second):
	}
	holders := mountHolders(mp)
	_ = syscall.Kill(p.PID(), syscall.SIGQUIT)
	select {
	case <-p.Exited():
	case <-time.After(10 * time.Second):
		p.Kill()
	}
	out := strings.Split(p.Output(), "\n")
	b.Logf("swarmfs mount did not exit 20 s after SIGINT; processes whose mount namespace still has %s: %v; its log:\n%s",
		mp, holders, strings.Join(out[:min(len(out), 150)], "\n"))
}

// mountHolders describes the processes whose mount table lists mp: "PID
// (command, mount namespace)".
func mountHolders(mp string) []string {
	var out []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "mountinfo")); err == nil && strings.Contains(string(b), " "+mp+" ") {
			comm, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "comm"))
			ns, _ := os.Readlink(filepath.Join("/proc", e.Name(), "ns", "mnt"))
			out = append(out, fmt.Sprintf("%d (%s, %s)", pid, strings.TrimSpace(string(comm)), ns))
		}
	}
	return out
}

// waitListed waits until path exists (a mount came up).
func waitListed(b *testing.B, p *enginetest.Proc, path string) {
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s did not appear:\n%s", path, p.Output())
		}
		time.Sleep(time.Millisecond)
	}
}

var (
	reLogTime  = regexp.MustCompile(`^time=(\S+) `)
	reLogPeer  = regexp.MustCompile(` peer=(\S+)`)
	slogLayout = "2006-01-02T15:04:05.999999999Z07:00"
)

// connectTime returns the time from the engine's start ("client started")
// to the handshake with the n-th distinct peer ("peer connected") in a
// mount's debug log, waiting up to 30 s for it.
func connectTime(b *testing.B, p *enginetest.Proc, n int) time.Duration {
	deadline := time.Now().Add(30 * time.Second)
	for {
		var start time.Time
		seen := map[string]bool{}
		for _, l := range strings.Split(p.Output(), "\n") {
			m := reLogTime.FindStringSubmatch(l)
			if m == nil {
				continue
			}
			at, err := time.Parse(slogLayout, m[1])
			if err != nil {
				continue
			}
			switch {
			case strings.Contains(l, `msg="client started"`):
				start = at
			case strings.Contains(l, `msg="peer connected"`) && !start.IsZero():
				peer := l
				if m := reLogPeer.FindStringSubmatch(l); m != nil {
					peer = m[1]
				}
				if seen[peer] = true; len(seen) == n {
					return at.Sub(start)
				}
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("no handshake with %d peers in 30 s:\n%s", n, p.Output())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// timedRead reads path from start to end with 1 MiB reads and returns the
// time it took. A read that blocks for 10 minutes kills p, which fails it.
func timedRead(b *testing.B, p *enginetest.Proc, path string, size int64) time.Duration {
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	type result struct {
		n   int64
		err error
	}
	done := make(chan result, 1)
	start := time.Now()
	go func() {
		n, err := readAll(f, 1<<20)
		done <- result{n, err}
	}()
	select {
	case r := <-done:
		if r.err != nil || r.n != size {
			b.Fatalf("read %d of %d bytes: %v", r.n, size, r.err)
		}
		return time.Since(start)
	case <-time.After(10 * time.Minute):
		p.Kill()
		<-done
		b.Fatalf("reading %s took more than 10 minutes", path)
		return 0
	}
}

// probeAndPlay runs ffprobe on path, then decodes its first 3 s.
func probeAndPlay(b *testing.B, path string) {
	wanTool(b, "ffprobe", "-v", "error", "-show_format", "-show_streams", path)
	wanTool(b, "ffmpeg", "-v", "error", "-i", path, "-t", "3", "-f", "null", "-")
}

// seekOnce times `ffmpeg -ss T -i path -t 1`.
func seekOnce(b *testing.B, path string, t float64) time.Duration {
	start := time.Now()
	wanTool(b, "ffmpeg", "-v", "error", "-ss", strconv.FormatFloat(t, 'f', -1, 64), "-i", path, "-t", "1", "-f", "null", "-")
	return time.Since(start)
}

// wanTool runs a command with a 5 minute deadline and returns its stdout.
func wanTool(b *testing.B, name string, args ...string) []byte {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		b.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, stderr.String())
	}
	return out
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// startWANLT starts the libtorrent driver with cfg and waits until it
// listens.
func startWANLT(b *testing.B, cfg map[string]any) *enginetest.LT {
	script := filepath.Join(b.TempDir(), "wan_lt.py")
	if err := os.WriteFile(script, wanLTScript, 0o644); err != nil {
		b.Fatal(err)
	}
	js, err := json.Marshal(cfg)
	if err != nil {
		b.Fatal(err)
	}
	p := enginetest.Start(b, enginetest.Python, script, string(js))
	port := p.WaitLine(b, "listening ", 30*time.Second)
	return &enginetest.LT{Proc: p, Addr: net.JoinHostPort(cfg["ip"].(string), port)}
}

// ltSeconds waits for a line starting with prefix and returns the seconds
// that follow it.
func ltSeconds(b *testing.B, lt *enginetest.LT, prefix string) time.Duration {
	s, err := strconv.ParseFloat(lt.WaitLine(b, prefix, 10*time.Minute), 64)
	if err != nil {
		b.Fatal(err)
	}
	return time.Duration(s * float64(time.Second))
}

// wanTracker is a minimal HTTP tracker that answers every leecher with the
// proxies' addresses (seeders get none): btfs finds peers only through
// trackers, and the seeders' own addresses must not leak past the proxies.
type wanTracker struct {
	url   string
	addr  string     // host:port it listens on
	mu    sync.Mutex // guards peers
	peers []byte     // compact peer list
}

func startWANTracker(b *testing.B, ip string) *wanTracker {
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		b.Fatal(err)
	}
	tr := &wanTracker{url: "http://" + ln.Addr().String() + "/announce", addr: ln.Addr().String()}
	srv := &http.Server{Handler: tr, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	b.Cleanup(func() { srv.Close() })
	return tr
}

func (tr *wanTracker) setPeers(addrs []string) {
	var compact []byte
	for _, a := range addrs {
		ap, err := compact6(a)
		if err != nil {
			continue
		}
		compact = append(compact, ap...)
	}
	tr.mu.Lock()
	tr.peers = compact
	tr.mu.Unlock()
}

func (tr *wanTracker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q, _ := url.ParseQuery(r.URL.RawQuery)
	tr.mu.Lock()
	peers := tr.peers
	tr.mu.Unlock()
	if q.Get("left") == "0" {
		peers = nil
	}
	fmt.Fprintf(w, "d8:intervali60e5:peers%d:%se", len(peers), peers)
}
