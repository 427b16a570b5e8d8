package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine"
	"github.com/swarmfs/swarmfs/engine/enginetest"
	"github.com/swarmfs/swarmfs/metainfo"
	"golang.org/x/sys/unix"
)

// The magnet tests use loopback addresses in 127.0.9.0/24.

// magnetFiles is the multi-file content of the magnet tests: a magnet's
// directory is then the same before and after its metadata arrives.
var magnetFiles = []enginetest.FileSpec{
	{Path: "big.bin", Size: 3<<20 + 4321},
	{Path: "sub/notes.txt", Size: 5000},
	{Path: "sub/mid.bin", Size: 700000},
}

var (
	seedingRe  = regexp.MustCompile(`(?m)^state seeding$`)
	fetchingRe = regexp.MustCompile(`^fetching metadata \(\d+ peers\)$`)
)

// startDHTSeeder starts plain libtorrent DHT nodes on meshIPs and a
// libtorrent seeder of c on seederIP that bootstraps from them, announces c
// on the DHT every second, and waits until every mesh node stored that
// announce. It returns the mesh nodes and the seeder.
func startDHTSeeder(t testing.TB, c *enginetest.Content, seederIP string, meshIPs ...string) ([]*enginetest.LT, *enginetest.LT) {
	t.Helper()
	mesh := enginetest.StartDHTMesh(t, 30*time.Second, meshIPs...)
	return mesh, startSeederOn(t, c, seederIP, mesh)
}

// startSeederOn starts a libtorrent seeder of c on ip that joins the DHT
// of mesh, announces c every second, and waits until every mesh node
// stored that announce.
func startSeederOn(t testing.TB, c *enginetest.Content, ip string, mesh []*enginetest.LT) *enginetest.LT {
	t.Helper()
	var boot []string
	for _, n := range mesh {
		boot = append(boot, n.Addr)
	}
	seeder := enginetest.StartLTNode(t, enginetest.LTNodeOptions{
		IP: ip, Torrent: c.Torrent, SavePath: c.Dir, Bootstrap: boot, AnnounceEvery: time.Second,
	})
	seeder.WaitOutput(t, seedingRe, time.Minute)
	announced := regexp.MustCompile(`(?m)^dht_announce ` + c.Meta.InfoHash.String() + ` `)
	deadline := time.Now().Add(30 * time.Second)
	for _, n := range mesh {
		n.WaitOutput(t, announced, time.Until(deadline))
	}
	return seeder
}

// TestMagnetMountViaDHT mounts a magnet with neither tracker nor peer
// address: the libtorrent seeder is found only through the DHT (libtorrent
// nodes bootstrapped from each other, swarmfs bootstrapped from one). The
// directory named from dn is there at once and lists without blocking, the
// status xattr says it is fetching metadata, then the files appear and read
// back equal to the source. A remount of the same magnet on the same cache,
// with the DHT off and no peer at all, shows the files at once and serves
// them from the cache.
func TestMagnetMountViaDHT(t *testing.T) {
	requireFUSE(t)
	enginetest.RequireLibtorrent(t)
	c := enginetest.MakeContent(t, "dht-magnet", 32<<10, magnetFiles)
	mesh, seeder := startDHTSeeder(t, c, "127.0.9.4", "127.0.9.2", "127.0.9.3")

	mp := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(mp, 0o755); err != nil {
		t.Fatal(err)
	}
	detachOnCleanup(t, mp)
	cacheDir := t.TempDir()
	p := startSwarmfs(t, "mount", "--cache-dir", cacheDir, "--dht-bootstrap", mesh[0].Addr,
		"--read-timeout", "30s", c.Magnet(), mp)
	p.WaitLine(t, "mounted ", 30*time.Second)

	// The directory is named from dn and lists at once, before metadata.
	root := filepath.Join(mp, c.Name)
	names, err := readDirWithin(mp, 10*time.Second)
	if err != nil || !slices.Equal(names, []string{c.Name}) {
		t.Fatalf("mount root lists %q, %v; want [%s]", names, err, c.Name)
	}
	status := xattr(t, root, "user.swarmfs.status")
	inside, err := readDirWithin(root, 10*time.Second)
	if err != nil {
		t.Fatalf("listing %s: %v", root, err)
	}
	t.Logf("first look at %s: user.swarmfs.status %q, then listing %q", c.Name, status, inside)
	if strings.HasPrefix(status, "fetching metadata") {
		if !fetchingRe.MatchString(status) {
			t.Errorf("user.swarmfs.status before metadata = %q, want \"fetching metadata (N peers)\"", status)
		}
	} else {
		// Loopback is fast: the metadata may be here before we look.
		t.Logf("metadata arrived before the first look (status %q)", status)
	}

	// The files appear once the metadata came through the DHT-found peer.
	waitFiles(t, p, root, c, 45*time.Second)
	if s := xattr(t, root, "user.swarmfs.status"); fetchingRe.MatchString(s) {
		t.Errorf("status still %q after the files appeared", s)
	}
	checkSources(t, root, c, "through the mount")
	if err := syscall.Kill(p.PID(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	waitExit(t, p, 20*time.Second)

	// Offline remount: no DHT, no peers, the seeder gone.
	seeder.Kill()
	p = startSwarmfs(t, "mount", "--cache-dir", cacheDir, "--no-dht", "--read-timeout", "5s", c.Magnet(), mp)
	p.WaitLine(t, "mounted ", 30*time.Second)
	for rel, src := range c.Files {
		want, err := os.Stat(src)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.Stat(filepath.Join(root, rel))
		if err != nil || got.Size() != want.Size() {
			t.Fatalf("offline remount: %s not there at once: %v (output:\n%s)", rel, err, p.Output())
		}
	}
	checkSources(t, root, c, "from the cache after an offline remount")
	if err := syscall.Kill(p.PID(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	waitExit(t, p, 20*time.Second)
}

// TestGetMagnetViaDHT downloads a magnet with `swarmfs get`, its only
// seeder found through the DHT, and checks the files written out.
func TestGetMagnetViaDHT(t *testing.T) {
	enginetest.RequireLibtorrent(t)
	c := enginetest.MakeContent(t, "dht-get", 32<<10, magnetFiles)
	mesh, _ := startDHTSeeder(t, c, "127.0.9.62", "127.0.9.60", "127.0.9.61")
	out := t.TempDir()
	p := startSwarmfs(t, "get", "--cache-dir", t.TempDir(), "--dht-bootstrap", mesh[1].Addr, "-o", out, c.Magnet())
	select {
	case <-p.Exited():
	case <-time.After(45 * time.Second):
		t.Fatalf("swarmfs get did not finish within 45 s:\n%s", p.Output())
	}
	checkSources(t, filepath.Join(out, c.Name), c, "in swarmfs get's output:\n"+p.Output())
}

// TestDHTStateReloaded downloads one magnet through the DHT with `swarmfs
// get`, which saves its routing table in the cache directory; a second run
// on the same cache, whose only bootstrap address is dead, finds the seeder
// of another magnet through the saved nodes alone.
func TestDHTStateReloaded(t *testing.T) {
	enginetest.RequireLibtorrent(t)
	ca := enginetest.MakeContent(t, "state-a", 32<<10, magnetFiles[1:])
	cb := enginetest.MakeContent(t, "state-b", 16<<10, magnetFiles[1:])
	mesh, _ := startDHTSeeder(t, ca, "127.0.9.72", "127.0.9.70", "127.0.9.71")
	startSeederOn(t, cb, "127.0.9.73", mesh)
	cacheDir := t.TempDir()
	get := func(c *enginetest.Content, boot string) {
		t.Helper()
		out := t.TempDir()
		p := startSwarmfs(t, "get", "--cache-dir", cacheDir, "--dht-bootstrap", boot, "-o", out, c.Magnet())
		select {
		case <-p.Exited():
		case <-time.After(45 * time.Second):
			t.Fatalf("swarmfs get %s did not finish within 45 s:\n%s", c.Name, p.Output())
		}
		checkSources(t, filepath.Join(out, c.Name), c, "in swarmfs get's output:\n"+p.Output())
	}
	get(ca, mesh[0].Addr)
	if fi, err := os.Stat(filepath.Join(cacheDir, "dht.state")); err != nil || fi.Size() == 0 {
		t.Fatalf("no saved routing table after the first run: %v", err)
	}
	// Nothing listens there: a loopback bootstrap address only keeps
	// loopback nodes acceptable to the engine.
	dead := fmt.Sprintf("127.0.9.79:%d", enginetest.FreePort(t, "127.0.9.79"))
	get(cb, dead)
}

// TestMagnetMountTrackerAndPeer mounts two magnets at once with the DHT
// off: one names its libtorrent seeder with x.pe, the other an opentracker
// with tr (its libtorrent seeder announces there). Both directories are
// there at once and fill with the right files.
func TestMagnetMountTrackerAndPeer(t *testing.T) {
	requireFUSE(t)
	enginetest.RequireLibtorrent(t)
	c1 := enginetest.MakeContent(t, "by-peer", 32<<10, magnetFiles)
	c2 := enginetest.MakeContent(t, "by-tracker", 16<<10, magnetFiles[1:])
	tr := enginetest.StartOpentracker(t, "127.0.9.50", c2.Meta.InfoHash.String())
	tracked := *c2.Meta
	tracked.Announce, tracked.AnnounceList = tr.HTTP, nil
	raw, err := tracked.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	trackedPath := filepath.Join(t.TempDir(), "tracked.torrent")
	if err := os.WriteFile(trackedPath, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	s1 := enginetest.StartSeeder(t, "127.0.9.51", c1.Torrent, c1.Dir)
	enginetest.StartSeeder(t, "127.0.9.52", trackedPath, c2.Dir)
	waitTrackerSeeds(t, tr.HTTP, c2.Meta.InfoHash, 20*time.Second)

	mp := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(mp, 0o755); err != nil {
		t.Fatal(err)
	}
	detachOnCleanup(t, mp)
	p := startSwarmfs(t, "mount", "--no-dht", "--cache-dir", t.TempDir(), "--read-timeout", "30s",
		c1.Magnet()+"&x.pe="+s1.Addr, c2.Magnet()+"&tr="+url.QueryEscape(tr.HTTP), mp)
	p.WaitLine(t, "mounted ", 30*time.Second)
	names, err := readDirWithin(mp, 10*time.Second)
	if err != nil || !slices.Equal(names, []string{c1.Name, c2.Name}) {
		t.Fatalf("mount root lists %q, %v; want [%s %s]", names, err, c1.Name, c2.Name)
	}
	for _, c := range []*enginetest.Content{c1, c2} {
		root := filepath.Join(mp, c.Name)
		waitFiles(t, p, root, c, 30*time.Second)
		checkSources(t, root, c, "through the mount")
	}
	if err := syscall.Kill(p.PID(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	waitExit(t, p, 20*time.Second)
}

// waitTrackerSeeds waits until the tracker's scrape counts a seeder of ih.
func waitTrackerSeeds(t *testing.T, announce string, ih metainfo.Hash, timeout time.Duration) {
	t.Helper()
	scrape := strings.Replace(announce, "/announce", "/scrape", 1) + "?info_hash=" + url.QueryEscape(string(ih[:]))
	client := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		var resp struct {
			Files map[string]struct {
				Complete int64 `bencode:"complete"`
			} `bencode:"files"`
		}
		r, err := client.Get(scrape)
		if err == nil {
			body, rerr := io.ReadAll(io.LimitReader(r.Body, 1<<16))
			r.Body.Close()
			last = string(body)
			if rerr == nil && metainfo.Unmarshal(body, &resp) == nil && resp.Files[string(ih[:])].Complete > 0 {
				return
			}
		} else {
			last = err.Error()
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("the tracker counts no seeder of %s after %v: %q", ih, timeout, last)
}

// readDirWithin lists dir in a goroutine and gives up after d, so that a
// listing that blocks fails the test instead of hanging it.
func readDirWithin(dir string, d time.Duration) ([]string, error) {
	type result struct {
		names []string
		err   error
	}
	ch := make(chan result, 1)
	go func() {
		ents, err := os.ReadDir(dir)
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		ch <- result{names, err}
	}()
	select {
	case r := <-ch:
		return r.names, r.err
	case <-time.After(d):
		return nil, fmt.Errorf("listing %s blocked for %v", dir, d)
	}
}

// xattr reads an extended attribute ("" when missing).
func xattr(t *testing.T, path, name string) string {
	t.Helper()
	buf := make([]byte, 4096)
	n, err := unix.Getxattr(path, name, buf)
	if err != nil {
		t.Errorf("getxattr %s %s: %v", path, name, err)
		return ""
	}
	return string(buf[:n])
}

// waitFiles waits until every file of c is listed under root with its size.
func waitFiles(t *testing.T, p *enginetest.Proc, root string, c *enginetest.Content, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		missing := ""
		for rel, src := range c.Files {
			want, err := os.Stat(src)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := os.Stat(filepath.Join(root, rel)); err != nil || got.Size() != want.Size() {
				missing = rel
				break
			}
		}
		if missing == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not appear under %s within %v; status %q; swarmfs output:\n%s",
				missing, root, timeout, xattr(t, root, "user.swarmfs.status"), p.Output())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// checkSources compares the SHA-1 of every file of c under root with the
// source.
func checkSources(t *testing.T, root string, c *enginetest.Content, how string) {
	t.Helper()
	for rel, src := range c.Files {
		if fileSHA1(t, filepath.Join(root, rel)) != fileSHA1(t, src) {
			t.Errorf("%s differs %s", rel, how)
		}
	}
}

// newEngine starts an in-process engine client for a test and closes it in
// t.Cleanup. It logs to the test at info level, or at debug level when
// SWARMFS_TEST_DEBUG is set.
func newEngine(t *testing.T, cfg engine.Config) *engine.Client {
	t.Helper()
	if cfg.CacheDir == "" {
		cfg.CacheDir = t.TempDir()
	}
	if cfg.Logger == nil {
		level := slog.LevelInfo
		if os.Getenv("SWARMFS_TEST_DEBUG") != "" {
			level = slog.LevelDebug
		}
		cfg.Logger = slog.New(slog.NewTextHandler(testLogWriter{t}, &slog.HandlerOptions{Level: level}))
	}
	c, err := engine.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// testLogWriter sends engine logs to t.Log.
type testLogWriter struct{ t *testing.T }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// waitChan waits for ch to close, failing with the torrent's stats at the
// deadline.
func waitChan(t *testing.T, ctx context.Context, ch <-chan struct{}, what string, tor *engine.Torrent) {
	t.Helper()
	select {
	case <-ch:
	case <-ctx.Done():
		t.Fatalf("%s: not done before the deadline; stats %+v", what, tor.Stats())
	}
}

// TestLibtorrentFindsUsViaDHT seeds a public torrent from our engine, whose
// DHT node bootstraps from a libtorrent DHT node: a libtorrent leecher that
// has only the magnet (bootstrapped from that node too) finds us through
// the DHT and downloads every file correctly.
func TestLibtorrentFindsUsViaDHT(t *testing.T) {
	enginetest.RequireLibtorrent(t)
	c := enginetest.MakeContent(t, "found-via-dht", 32<<10, magnetFiles)
	if c.Meta.Info.Private {
		t.Fatal("test torrent is private")
	}
	const ourIP = "127.0.9.11"
	port := enginetest.FreePort(t, ourIP)
	ourAddr := fmt.Sprintf("%s:%d", ourIP, port)
	nodeAddr := fmt.Sprintf("127.0.9.10:%d", enginetest.FreePort(t, "127.0.9.10"))
	cl := newEngine(t, engine.Config{ListenAddr: ourAddr, DHTBootstrap: []string{nodeAddr}})
	node := enginetest.StartLTNode(t, enginetest.LTNodeOptions{IP: "127.0.9.10", Port: port0(nodeAddr), Bootstrap: []string{ourAddr}})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	// Our node and the libtorrent node know each other.
	node.WaitDHTNodes(t, 1, 20*time.Second)
	tor, err := cl.AddTorrent(c.Meta, engine.AddOptions{Import: c.Dir})
	if err != nil {
		t.Fatal(err)
	}
	waitChan(t, ctx, tor.Complete(), "import", tor)

	save := t.TempDir()
	leecher := enginetest.StartLTNode(t, enginetest.LTNodeOptions{
		IP: "127.0.9.12", Magnet: c.Magnet(), SavePath: save, Bootstrap: []string{node.Addr}, AnnounceEvery: 2 * time.Second,
	})
	dl, err := leecher.AwaitLine("done ", time.Until(deadlineOf(ctx)))
	if err != nil {
		t.Fatalf("libtorrent leecher: %v; our stats %+v\nleecher output:\n%s", err, tor.Stats(), leecher.Output())
	}
	t.Logf("libtorrent found us through the DHT and downloaded (seconds, B/s): %s", dl)
	if st := tor.Stats(); st.Uploaded < c.Meta.Info.TotalLength {
		t.Errorf("we uploaded %d bytes, want at least %d", st.Uploaded, c.Meta.Info.TotalLength)
	}
	checkSources(t, filepath.Join(save, c.Name), c, "in libtorrent's download")
}

// TestPrivateTorrentNotOnDHT adds the same data as a private torrent
// (BEP 27) and as a public one to our engine, whose DHT node knows a
// libtorrent DHT node: the public torrent is looked up and announced there,
// the private one never is.
func TestPrivateTorrentNotOnDHT(t *testing.T) {
	enginetest.RequireLibtorrent(t)
	c := enginetest.MakeContent(t, "private", 32<<10, magnetFiles[:1])
	priv, err := metainfo.Create(filepath.Join(c.Dir, c.Name), metainfo.CreateOptions{PieceLength: 32 << 10, Private: true})
	if err != nil {
		t.Fatal(err)
	}
	if !priv.Info.Private || priv.InfoHash == c.Meta.InfoHash {
		t.Fatalf("private torrent: private %v, info hash %s", priv.Info.Private, priv.InfoHash)
	}
	const ourIP = "127.0.9.41"
	ourAddr := fmt.Sprintf("%s:%d", ourIP, enginetest.FreePort(t, ourIP))
	nodeAddr := fmt.Sprintf("127.0.9.40:%d", enginetest.FreePort(t, "127.0.9.40"))
	cl := newEngine(t, engine.Config{ListenAddr: ourAddr, DHTBootstrap: []string{nodeAddr}})
	node := enginetest.StartLTNode(t, enginetest.LTNodeOptions{IP: "127.0.9.40", Port: port0(nodeAddr), Bootstrap: []string{ourAddr}})
	node.WaitDHTNodes(t, 1, 20*time.Second)
	// The private torrent starts first: had it used the DHT, its queries
	// would reach the node no later than the public one's.
	if _, err := cl.AddTorrent(priv, engine.AddOptions{Import: c.Dir}); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.AddTorrent(c.Meta, engine.AddOptions{Import: c.Dir}); err != nil {
		t.Fatal(err)
	}
	node.WaitOutput(t, regexp.MustCompile(`(?m)^dht_announce `+c.Meta.InfoHash.String()+` `), 20*time.Second)
	time.Sleep(time.Second) // let anything still in flight arrive
	out := node.Output()
	if strings.Contains(out, priv.InfoHash.String()) {
		t.Errorf("the private torrent's info hash reached the DHT:\n%s", out)
	}
	if !strings.Contains(out, "dht_get_peers "+c.Meta.InfoHash.String()) {
		t.Errorf("the node saw no get_peers for the public torrent, so it would not see the private one's:\n%s", out)
	}
}

// port0 returns the port of a "host:port" address.
func port0(addr string) int { return int(netip.MustParseAddrPort(addr).Port()) }

func deadlineOf(ctx context.Context) time.Time {
	d, ok := ctx.Deadline()
	if !ok {
		return time.Now().Add(time.Minute)
	}
	return d
}

// TestPEX gives our engine only the address of libtorrent seeder A; A is
// connected to libtorrent seeder B, which has no ut_pex and no DHT and so
// can never learn our address. We learn B's address from A through ut_pex;
// then A is killed and the whole torrent still downloads, from B.
func TestPEX(t *testing.T) {
	enginetest.RequireLibtorrent(t)
	c := enginetest.MakeContent(t, "pex", 32<<10, magnetFiles)
	b := enginetest.StartLTNode(t, enginetest.LTNodeOptions{
		IP: "127.0.9.21", Torrent: c.Torrent, SavePath: c.Dir, NoDHT: true, NoPEX: true, KeepSeedConnections: true,
	})
	b.WaitOutput(t, seedingRe, time.Minute)
	a := enginetest.StartLTNode(t, enginetest.LTNodeOptions{
		IP: "127.0.9.20", Torrent: c.Torrent, SavePath: c.Dir, NoDHT: true, KeepSeedConnections: true, Peers: []string{b.Addr},
	})
	a.WaitOutput(t, seedingRe, time.Minute)
	a.WaitOutput(t, regexp.MustCompile(`(?m)^peers 1$`), 20*time.Second)

	cl := newEngine(t, engine.Config{ListenAddr: "127.0.9.22:0", NoDHT: true})
	aAddr, bAddr := netip.MustParseAddrPort(a.Addr), netip.MustParseAddrPort(b.Addr)
	tor, err := cl.AddTorrent(c.Meta, engine.AddOptions{Peers: []netip.AddrPort{aAddr}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	// Without prefetch nothing downloads: we only talk. Wait until we know
	// of a second peer, which can only be B, learned from A.
	for {
		st := tor.Stats()
		if st.Peers+st.Known >= 2 {
			t.Logf("learned a second peer: %+v", st)
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("never learned %s from %s through PEX; stats %+v", bAddr, aAddr, st)
		case <-time.After(50 * time.Millisecond):
		}
	}
	a.Kill()
	select {
	case <-a.Exited():
	case <-ctx.Done():
		t.Fatal("libtorrent A did not exit after SIGKILL")
	}
	tor.SetPrefetch(true)
	waitChan(t, ctx, tor.Complete(), "download from the PEX-learned peer", tor)
	for i, f := range c.Meta.Info.Files {
		got := readAllEngine(t, ctx, tor, i)
		want, err := os.ReadFile(c.Files[f.DisplayPath()])
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("file %d (%v) differs after the download from B", i, f.Path)
		}
	}
}

// readAllEngine reads file i of tor through an engine reader.
func readAllEngine(t *testing.T, ctx context.Context, tor *engine.Torrent, i int) []byte {
	t.Helper()
	r, err := tor.NewReader(i)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []byte
	buf := make([]byte, 256<<10)
	for {
		n, err := r.ReadAt(ctx, buf, int64(len(out)))
		out = append(out, buf[:n]...)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("read file %d at %d: %v", i, len(out), err)
		}
	}
}
