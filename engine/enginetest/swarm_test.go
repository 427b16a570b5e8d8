package enginetest_test

import (
	"context"
	"crypto/sha1"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine"
	"github.com/swarmfs/swarmfs/engine/enginetest"
	"github.com/swarmfs/swarmfs/metainfo"
)

// TestMixedSwarm (issue 4) runs a swarm of independent clients in a network
// namespace: libtorrent, aria2 and transmission seed a 256 MiB torrent, and
// our engine, libtorrent and aria2 download it at the same time, all finding
// each other through opentracker. Every leecher must end with the source's
// bytes.
func TestMixedSwarm(t *testing.T) {
	t.Parallel()
	requireSwarmTools(t, true)
	addrs, inside := enginetest.RunInNetns(t, 6, 170*time.Second)
	if !inside {
		return
	}
	var (
		trackerIP = addrs[0] // opentracker and the transmission seeder
		ltSeedIP  = addrs[1]
		ariaSeed  = addrs[2]
		engineIP  = addrs[3]
		ltLeechIP = addrs[4]
		ariaLeech = addrs[5]
	)
	start := time.Now()
	c, sums := makeContent(t, "mixed", 512<<10, []enginetest.FileSpec{
		{Path: "video/big.bin", Size: 160 << 20},
		{Path: "data/mid.bin", Size: 96<<20 + 12345},
		{Path: "small.txt", Size: 70000},
	})
	if c.Meta.Info.TotalLength < 256<<20 {
		t.Fatalf("content is %d bytes, want at least 256 MiB", c.Meta.Info.TotalLength)
	}
	tr := enginetest.StartOpentracker(t, trackerIP, c.Meta.InfoHash.String())
	announceTo(t, c, tr.HTTP)
	t.Logf("content %d bytes in %d pieces, info hash %s, made in %v", c.Meta.Info.TotalLength, c.Meta.Info.NumPieces(), c.Meta.InfoHash, time.Since(start).Round(time.Millisecond))

	// Seeders: each checks the existing data, then announces as complete.
	trans := enginetest.StartTransmission(t, enginetest.TransmissionOptions{IP: trackerIP, Torrent: c.Torrent, Dir: c.Dir})
	ltSeed := enginetest.StartLibtorrent(t, enginetest.LTOptions{IP: ltSeedIP, Torrent: c.Torrent, SavePath: c.Dir, Peers: []string{}})
	aria := startAria2Seeder(t, ariaSeed, c.Torrent, c.Dir)
	ltSeed.WaitSeeding(t, 60*time.Second)
	if err := trans.WaitSeeding(60 * time.Second); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := waitSeeders(ctx, tr.HTTP, c.Meta.InfoHash, 3); err != nil {
		t.Fatalf("%v\naria2 seeder:\n%s\ntransmission seeder:\n%s", err, aria.Output(), tail(trans.Output(), 30))
	}
	t.Logf("3 seeders announced after %v", time.Since(start).Round(time.Millisecond))

	// Leechers, all at once.
	cl := newClient(t, engineIP)
	tor, err := cl.AddTorrent(c.Meta, engine.AddOptions{Prefetch: true})
	if err != nil {
		t.Fatal(err)
	}
	ltDir, ariaDir := t.TempDir(), t.TempDir()
	ltLeech := enginetest.StartLibtorrent(t, enginetest.LTOptions{IP: ltLeechIP, Torrent: c.Torrent, SavePath: ltDir, Peers: []string{}, ExitWhenDone: true})
	ariaL := enginetest.StartAria2(t, enginetest.Aria2Options{IP: ariaLeech, Torrent: c.Torrent, Dir: ariaDir})
	leechStart := time.Now()

	dctx, dcancel := context.WithTimeout(context.Background(), 100*time.Second)
	defer dcancel()
	stopLog := logStats(t, tor, 5*time.Second)
	type result struct {
		who string
		err error
		at  time.Duration
	}
	results := make(chan result, 3)
	go func() {
		var err error
		select {
		case <-tor.Complete():
		case <-dctx.Done():
			err = fmt.Errorf("not complete: %w; stats %+v", dctx.Err(), tor.Stats())
		}
		results <- result{"swarmfs", err, time.Since(leechStart)}
	}()
	go func() {
		_, _, err := ltLeech.WaitDone(dctx)
		results <- result{"libtorrent", err, time.Since(leechStart)}
	}()
	go func() {
		var err error
		select {
		case <-ariaL.Exited():
		case <-dctx.Done():
			err = fmt.Errorf("aria2c did not finish: %w\n%s", dctx.Err(), ariaL.Output())
		}
		results <- result{"aria2", err, time.Since(leechStart)}
	}()
	failed := false
	for range 3 {
		r := <-results
		if r.err != nil {
			t.Errorf("%s leecher: %v", r.who, r.err)
			failed = true
		} else {
			t.Logf("%s leecher finished after %v", r.who, r.at.Round(time.Millisecond))
		}
	}
	stopLog()
	if failed {
		t.Logf("transmission seeder:\n%s", tail(trans.Output(), 30))
		t.Logf("aria2 seeder:\n%s", tail(aria.Output(), 30))
		t.FailNow()
	}

	st := tor.Stats()
	t.Logf("swarmfs stats: %+v", st)
	if st.PiecesHave != st.PiecesTotal || st.Downloaded < c.Meta.Info.TotalLength {
		t.Errorf("swarmfs stats after completion: %+v", st)
	}
	rctx, rcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer rcancel()
	if err := checkEngine(rctx, tor, sums); err != nil {
		t.Errorf("swarmfs: %v", err)
	}
	if err := checkDir(ltDir, c, sums); err != nil {
		t.Errorf("libtorrent leecher: %v", err)
	}
	if err := checkDir(ariaDir, c, sums); err != nil {
		t.Errorf("aria2 leecher: %v\n%s", err, ariaL.Output())
	}
	// Transmission picks whom to unchoke every 10 s, so in a swarm this
	// fast it often sends nothing; TestDownloadFromTransmission covers it
	// as a source.
	t.Logf("transmission seeder: %s", transmissionPeak(trans.Output()))
	t.Logf("whole swarm test took %v", time.Since(start).Round(time.Millisecond))
}

// TestSeedToTransmission has our engine seed imported data to a
// transmission leecher that finds it through opentracker.
func TestSeedToTransmission(t *testing.T) {
	t.Parallel()
	requireSwarmTools(t, false)
	enginetest.RequireTool(t, "transmission-cli", "transmission-cli")
	addrs, inside := enginetest.RunInNetns(t, 2, 120*time.Second)
	if !inside {
		return
	}
	trackerIP, engineIP := addrs[0], addrs[1]
	c, sums := makeContent(t, "for-transmission", 64<<10, []enginetest.FileSpec{
		{Path: "a.bin", Size: 24<<20 + 777},
		{Path: "sub/b.bin", Size: 8 << 20},
	})
	tr := enginetest.StartOpentracker(t, trackerIP, c.Meta.InfoHash.String())
	announceTo(t, c, tr.HTTP)

	cl := newClient(t, engineIP)
	tor, err := cl.AddTorrent(c.Meta, engine.AddOptions{Import: c.Dir})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-tor.Complete():
	case <-time.After(60 * time.Second):
		t.Fatalf("import did not complete: %+v", tor.Stats())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// The tracker should know our engine before transmission's first
	// announce (transmission announces again every few seconds through its
	// relay, so this only saves time). It may count the engine as a
	// leecher: the engine's "started" goes out while the import runs, and
	// its "completed" waits for the tracker's min interval.
	known := func(complete, incomplete int) bool { return complete+incomplete >= 1 }
	if err := waitScrape(ctx, tr.HTTP, c.Meta.InfoHash, "swarmfs", known); err != nil {
		t.Fatalf("swarmfs did not announce: %v; stats %+v", err, tor.Stats())
	}

	dst := t.TempDir()
	trans := enginetest.StartTransmission(t, enginetest.TransmissionOptions{IP: trackerIP, Torrent: c.Torrent, Dir: dst})
	stopLog := logStats(t, tor, 5*time.Second)
	err = trans.WaitSeeding(75 * time.Second)
	stopLog()
	if err != nil {
		t.Fatalf("transmission did not finish: %v\nswarmfs stats %+v", err, tor.Stats())
	}
	if err := checkDir(dst, c, sums); err != nil {
		t.Fatalf("transmission's data: %v", err)
	}
	if st := tor.Stats(); st.Uploaded < c.Meta.Info.TotalLength {
		t.Fatalf("swarmfs uploaded %d bytes, want at least %d", st.Uploaded, c.Meta.Info.TotalLength)
	}
}

// TestDownloadFromTransmission has transmission seed and our engine
// download through opentracker. Transmission decides whom to unchoke every
// 10 seconds, so in TestMixedSwarm's fast swarm it often sends nothing; this
// test makes it the only source.
func TestDownloadFromTransmission(t *testing.T) {
	t.Parallel()
	requireSwarmTools(t, false)
	enginetest.RequireTool(t, "transmission-cli", "transmission-cli")
	addrs, inside := enginetest.RunInNetns(t, 2, 120*time.Second)
	if !inside {
		return
	}
	trackerIP, engineIP := addrs[0], addrs[1]
	c, sums := makeContent(t, "from-transmission", 32<<10, []enginetest.FileSpec{
		{Path: "x.bin", Size: 12<<20 + 99},
		{Path: "y/z.bin", Size: 1 << 20},
	})
	tr := enginetest.StartOpentracker(t, trackerIP, c.Meta.InfoHash.String())
	announceTo(t, c, tr.HTTP)
	trans := enginetest.StartTransmission(t, enginetest.TransmissionOptions{IP: trackerIP, Torrent: c.Torrent, Dir: c.Dir})
	if err := trans.WaitSeeding(60 * time.Second); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := waitSeeders(ctx, tr.HTTP, c.Meta.InfoHash, 1); err != nil {
		t.Fatalf("%v\ntransmission:\n%s", err, tail(trans.Output(), 30))
	}
	cl := newClient(t, engineIP)
	tor, err := cl.AddTorrent(c.Meta, engine.AddOptions{Prefetch: true})
	if err != nil {
		t.Fatal(err)
	}
	stopLog := logStats(t, tor, 5*time.Second)
	select {
	case <-tor.Complete():
	case <-ctx.Done():
		stopLog()
		t.Fatalf("download from transmission did not complete: %+v\ntransmission:\n%s", tor.Stats(), tail(trans.Output(), 30))
	}
	stopLog()
	if err := checkEngine(ctx, tor, sums); err != nil {
		t.Fatal(err)
	}
	if st := tor.Stats(); st.Downloaded < c.Meta.Info.TotalLength {
		t.Fatalf("downloaded %d bytes, want at least %d", st.Downloaded, c.Meta.Info.TotalLength)
	}
}

// TestDownloadFromAria2 has aria2c seed and our engine download through
// opentracker's UDP announce.
func TestDownloadFromAria2(t *testing.T) {
	t.Parallel()
	requireSwarmTools(t, false)
	const (
		trackerIP = "127.0.8.1"
		ariaIP    = "127.0.8.2"
		engineIP  = "127.0.8.3"
	)
	c, sums := makeContent(t, "from-aria2", 32<<10, []enginetest.FileSpec{
		{Path: "one.bin", Size: 10<<20 + 4321},
		{Path: "two/three.bin", Size: 3 << 20},
		{Path: "empty", Size: 0},
	})
	tr := enginetest.StartOpentracker(t, trackerIP, c.Meta.InfoHash.String())
	// aria2 announces over UDP only with its DHT on, so its .torrent has an
	// HTTP tier after the UDP one; our engine gets the UDP tracker alone.
	announceTo(t, c, tr.UDP, tr.HTTP)
	udpOnly := *c.Meta
	udpOnly.Announce, udpOnly.AnnounceList = tr.UDP, [][]string{{tr.UDP}}
	aria := startAria2Seeder(t, ariaIP, c.Torrent, c.Dir)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := waitSeeders(ctx, tr.HTTP, c.Meta.InfoHash, 1); err != nil {
		t.Fatalf("%v\naria2 seeder:\n%s", err, aria.Output())
	}
	cl := newClient(t, engineIP)
	tor, err := cl.AddTorrent(&udpOnly, engine.AddOptions{Prefetch: true})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-tor.Complete():
	case <-ctx.Done():
		t.Fatalf("download from aria2 did not complete: %+v\naria2 seeder:\n%s", tor.Stats(), tail(aria.Output(), 40))
	}
	if err := checkEngine(ctx, tor, sums); err != nil {
		t.Fatal(err)
	}
	if st := tor.Stats(); st.Downloaded < c.Meta.Info.TotalLength {
		t.Fatalf("downloaded %d bytes, want at least %d", st.Downloaded, c.Meta.Info.TotalLength)
	}
}

// requireSwarmTools skips t when a tool the swarm tests start is missing.
func requireSwarmTools(t *testing.T, all bool) {
	t.Helper()
	enginetest.RequireTool(t, "opentracker", "opentracker")
	enginetest.RequireTool(t, "aria2c", "aria2")
	if all {
		enginetest.RequireLibtorrent(t)
		enginetest.RequireTool(t, "transmission-cli", "transmission-cli")
	}
}

// makeContent generates the files and their torrent and returns the SHA-1
// of each file by its torrent path.
func makeContent(t *testing.T, name string, pieceLen int64, files []enginetest.FileSpec) (*enginetest.Content, map[string][20]byte) {
	t.Helper()
	c := enginetest.MakeContent(t, name, pieceLen, files)
	sums := map[string][20]byte{}
	for _, f := range c.Meta.Info.Files {
		s, err := sha1File(filepath.Join(c.Dir, dataPath(c, f)))
		if err != nil {
			t.Fatal(err)
		}
		sums[f.DisplayPath()] = s
	}
	if len(sums) != len(files) {
		t.Fatalf("torrent lists %d files, want %d", len(sums), len(files))
	}
	return c, sums
}

// dataPath is where file f of c lies below a save directory.
func dataPath(c *enginetest.Content, f metainfo.File) string {
	if c.Meta.Info.SingleFile {
		return c.Meta.Info.Name
	}
	return filepath.Join(append([]string{c.Meta.Info.Name}, f.Path...)...)
}

func sha1File(path string) ([20]byte, error) {
	var s [20]byte
	f, err := os.Open(path)
	if err != nil {
		return s, err
	}
	defer f.Close()
	h := sha1.New()
	if _, err := io.Copy(h, f); err != nil {
		return s, err
	}
	copy(s[:], h.Sum(nil))
	return s, nil
}

// announceTo makes c's torrent announce to the urls (one tier each, in
// order) and rewrites its .torrent; the info hash stays the same.
func announceTo(t *testing.T, c *enginetest.Content, urls ...string) {
	t.Helper()
	c.Meta.Announce = urls[0]
	c.Meta.AnnounceList = nil
	for _, u := range urls {
		c.Meta.AnnounceList = append(c.Meta.AnnounceList, []string{u})
	}
	b, err := c.Meta.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(c.Torrent, b, 0o644); err != nil {
		t.Fatal(err)
	}
	mi, err := metainfo.LoadFile(c.Torrent)
	if err != nil {
		t.Fatal(err)
	}
	if mi.InfoHash != c.Meta.InfoHash {
		t.Fatalf("rewritten torrent has info hash %s, want %s", mi.InfoHash, c.Meta.InfoHash)
	}
	c.Meta = mi
}

// checkDir compares the files a client saved below dir with the source.
func checkDir(dir string, c *enginetest.Content, sums map[string][20]byte) error {
	var errs []error
	for _, f := range c.Meta.Info.Files {
		got, err := sha1File(filepath.Join(dir, dataPath(c, f)))
		if err != nil {
			errs = append(errs, err)
		} else if want := sums[f.DisplayPath()]; got != want {
			errs = append(errs, fmt.Errorf("%s: sha1 %x, want %x", f.DisplayPath(), got, want))
		}
	}
	return errors.Join(errs...)
}

// checkEngine reads every file of tor through a Reader and compares its
// SHA-1 with the source.
func checkEngine(ctx context.Context, tor *engine.Torrent, sums map[string][20]byte) error {
	info := tor.Info()
	if info == nil {
		return errors.New("no metadata")
	}
	buf := make([]byte, 1<<20)
	for i, f := range info.Files {
		r, err := tor.NewReader(i)
		if err != nil {
			return err
		}
		h := sha1.New()
		var off int64
		for {
			n, err := r.ReadAt(ctx, buf, off)
			h.Write(buf[:n])
			off += int64(n)
			if err == io.EOF {
				break
			}
			if err != nil {
				r.Close()
				return fmt.Errorf("read %s at %d: %w", f.DisplayPath(), off, err)
			}
		}
		r.Close()
		var got [20]byte
		copy(got[:], h.Sum(nil))
		if off != f.Length {
			return fmt.Errorf("%s: read %d bytes, want %d", f.DisplayPath(), off, f.Length)
		}
		if want := sums[f.DisplayPath()]; got != want {
			return fmt.Errorf("%s: sha1 %x through the Reader, want %x", f.DisplayPath(), got, want)
		}
	}
	return nil
}

// newClient starts our engine on ip with its own cache, closed at cleanup.
func newClient(t *testing.T, ip string) *engine.Client {
	t.Helper()
	cfg := engine.Config{ListenAddr: ip + ":0", CacheDir: t.TempDir(), NoDHT: true}
	if os.Getenv("SWARMFS_DEBUG") != "" {
		cfg.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	cl, err := engine.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// startAria2Seeder runs aria2c on ip (IPv4) seeding the data in dir after
// checking it, for as long as the test runs.
func startAria2Seeder(t *testing.T, ip, torrent, dir string) *enginetest.Proc {
	t.Helper()
	bin := enginetest.RequireTool(t, "aria2c", "aria2")
	port := enginetest.FreePort(t, ip)
	return enginetest.Start(t, bin,
		"--dir="+dir, "--enable-dht=false", "--enable-dht6=false", "--bt-enable-lpd=false", "--disable-ipv6=true",
		"--enable-peer-exchange=false", "--listen-port="+strconv.Itoa(port), "--interface="+ip,
		"--check-integrity=true", "--seed-ratio=0.0", "--bt-max-peers=0",
		"--summary-interval=0", "--show-console-readout=false", "--enable-color=false",
		"--console-log-level=notice", "--file-allocation=none", "--bt-tracker-interval=2",
		torrent)
}

// waitSeeders polls the tracker's scrape until it counts at least n
// complete peers for ih.
func waitSeeders(ctx context.Context, announce string, ih metainfo.Hash, n int) error {
	return waitScrape(ctx, announce, ih, fmt.Sprintf("%d seeders", n), func(complete, _ int) bool { return complete >= n })
}

// waitScrape polls the tracker's scrape for ih until ok accepts its
// complete and incomplete counts.
func waitScrape(ctx context.Context, announce string, ih metainfo.Hash, what string, ok func(complete, incomplete int) bool) error {
	scrape := strings.Replace(announce, "/announce", "/scrape", 1) + "?info_hash=" + url.QueryEscape(string(ih[:]))
	var last string
	for {
		complete, incomplete, err := scrapeCounts(ctx, scrape, ih)
		if err == nil && ok(complete, incomplete) {
			return nil
		}
		if err != nil {
			last = err.Error()
		} else {
			last = fmt.Sprintf("%d complete, %d incomplete", complete, incomplete)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("tracker never counted %s (last scrape: %s): %w", what, last, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func scrapeCounts(ctx context.Context, u string, ih metainfo.Hash) (complete, incomplete int, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if err != nil {
		return 0, 0, err
	}
	v, err := metainfo.Decode(body)
	if err != nil {
		return 0, 0, fmt.Errorf("scrape answer %q: %w", body, err)
	}
	files, _ := v.(map[string]any)["files"].(map[string]any)
	entry, _ := files[string(ih[:])].(map[string]any)
	c, ok1 := entry["complete"].(int64)
	i, ok2 := entry["incomplete"].(int64)
	if !ok1 || !ok2 {
		return 0, 0, fmt.Errorf("scrape answer %q has no complete and incomplete counts", body)
	}
	return int(c), int(i), nil
}

// logStats logs tor's stats every interval until the returned stop is called.
func logStats(t *testing.T, tor *engine.Torrent, every time.Duration) (stop func()) {
	done := make(chan struct{})
	start := time.Now()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				st := tor.Stats()
				t.Logf("%5.1fs swarmfs: %d/%d pieces, down %d (%.1f MB/s), up %d (%.1f MB/s), peers %d seeds %d, half-open %d known %d, %s",
					time.Since(start).Seconds(), st.PiecesHave, st.PiecesTotal, st.Downloaded, st.DownRate/1e6, st.Uploaded, st.UpRate/1e6,
					st.Peers, st.Seeds, st.HalfOpen, st.Known, st.State)
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(done); wg.Wait() }) }
}

// transmissionPeak summarizes transmission-cli's "Seeding, uploading to X
// of Y peer(s)" lines: the most peers it uploaded to and was connected to.
func transmissionPeak(out string) string {
	maxUp, maxPeers := 0, 0
	for _, line := range strings.Split(out, "\n") {
		var up, peers int
		if _, err := fmt.Sscanf(line, "Seeding, uploading to %d of %d", &up, &peers); err == nil {
			maxUp, maxPeers = max(maxUp, up), max(maxPeers, peers)
		}
	}
	return fmt.Sprintf("uploaded to at most %d of at most %d connected peers", maxUp, maxPeers)
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
