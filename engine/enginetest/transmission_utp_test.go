package enginetest_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine"
	"github.com/swarmfs/swarmfs/engine/enginetest"
)

// utpRound is one run of a uTP interop test with transmission: its MSE
// setting, ours, and the encryption our peer list must show.
type utpRound struct {
	name  string
	trEnc int                     // transmission's "encryption"
	ours  engine.EncryptionPolicy // our Config.Encryption
	plain bool                    // the connection must be plaintext ("none")
}

// utpRounds: without MSE (transmission prefers plaintext, we never
// encrypt) and with it (both require it).
var utpRounds = []utpRound{
	{name: "plain", trEnc: 0, ours: engine.EncryptionOff, plain: true},
	{name: "mse", trEnc: 2, ours: engine.EncryptionRequire},
}

// newUTPClient starts an engine client on ip that speaks uTP only: it has
// no TCP listener and dials no TCP, so every connection with transmission
// is uTP, both ways.
func newUTPClient(t *testing.T, ip string, enc engine.EncryptionPolicy) *engine.Client {
	t.Helper()
	cfg := engine.Config{ListenAddr: ip + ":0", CacheDir: t.TempDir(), NoDHT: true, NoLSD: true, NoPortMapping: true,
		Transports: []engine.Transport{engine.TransportUTP}, Encryption: enc}
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

// peerWatch records, every 100 ms until stopped, our connections to the
// peer at ip that moved payload, so that a test can check them after the
// transfer (when the peers may have disconnected already).
type peerWatch struct {
	mu   sync.Mutex // guards seen
	seen []engine.PeerInfo
	stop func()
}

func watchPeer(tor *engine.Torrent, ip netip.Addr) *peerWatch {
	w := &peerWatch{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			for _, p := range tor.Peers() {
				if p.Addr.Addr().Unmap() == ip && p.Downloaded+p.Uploaded > 0 {
					w.mu.Lock()
					w.seen = append(w.seen, p)
					w.mu.Unlock()
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	w.stop = func() { cancel(); <-done }
	return w
}

// check stops the watch and returns an error unless payload moved with
// the peer, every such connection over uTP, encrypted as r asks.
func (w *peerWatch) check(r utpRound) error {
	w.stop()
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.seen) == 0 {
		return fmt.Errorf("no connection with transmission moved payload")
	}
	for _, p := range w.seen {
		if p.Transport != engine.TransportUTP || (p.Encryption == "none") != r.plain {
			return fmt.Errorf("connection %+v: want uTP, plaintext %v", p, r.plain)
		}
	}
	return nil
}

// TestSeedToTransmissionUTP has our engine, speaking uTP only, seed to a
// transmission leecher (uTP on, its default) that finds it through
// opentracker: without MSE and with MSE required on both sides.
func TestSeedToTransmissionUTP(t *testing.T) {
	t.Parallel()
	requireSwarmTools(t, false)
	enginetest.RequireTool(t, "transmission-cli", "transmission-cli")
	addrs, inside := enginetest.RunInNetns(t, 2, 240*time.Second)
	if !inside {
		return
	}
	trackerIP, engineIP := addrs[0], addrs[1]
	for _, r := range utpRounds {
		t.Run(r.name, func(t *testing.T) {
			c, sums := makeContent(t, "utp-to-transmission-"+r.name, 32<<10, []enginetest.FileSpec{{Path: "a.bin", Size: 6<<20 + 333}})
			tr := enginetest.StartOpentracker(t, trackerIP, c.Meta.InfoHash.String())
			announceTo(t, c, tr.HTTP)
			tor, err := newUTPClient(t, engineIP, r.ours).AddTorrent(c.Meta, engine.AddOptions{Import: c.Dir})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			select {
			case <-tor.Complete():
			case <-ctx.Done():
				t.Fatalf("import did not complete: %+v", tor.Stats())
			}
			known := func(complete, incomplete int) bool { return complete+incomplete >= 1 }
			if err := waitScrape(ctx, tr.HTTP, c.Meta.InfoHash, "swarmfs", known); err != nil {
				t.Fatalf("swarmfs did not announce: %v", err)
			}
			w := watchPeer(tor, netip.MustParseAddr(trackerIP))
			dst := t.TempDir()
			enc := r.trEnc
			trans := enginetest.StartTransmission(t, enginetest.TransmissionOptions{IP: trackerIP, Torrent: c.Torrent, Dir: dst, UTP: true, Encryption: &enc})
			if err := trans.WaitSeeding(75 * time.Second); err != nil {
				w.stop()
				t.Fatalf("transmission did not finish over uTP: %v\nswarmfs stats %+v", err, tor.Stats())
			}
			if err := checkDir(dst, c, sums); err != nil {
				t.Fatalf("transmission's data: %v", err)
			}
			// The counters of Peers lag a little behind the transfer.
			for tor.Stats().Uploaded < c.Meta.Info.TotalLength && ctx.Err() == nil {
				time.Sleep(100 * time.Millisecond)
			}
			time.Sleep(300 * time.Millisecond)
			if err := w.check(r); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestDownloadFromTransmissionUTP has transmission (uTP on) seed and our
// engine, speaking uTP only, download through opentracker: without MSE
// and with MSE required on both sides.
func TestDownloadFromTransmissionUTP(t *testing.T) {
	t.Parallel()
	requireSwarmTools(t, false)
	enginetest.RequireTool(t, "transmission-cli", "transmission-cli")
	addrs, inside := enginetest.RunInNetns(t, 2, 240*time.Second)
	if !inside {
		return
	}
	trackerIP, engineIP := addrs[0], addrs[1]
	for _, r := range utpRounds {
		t.Run(r.name, func(t *testing.T) {
			c, sums := makeContent(t, "utp-from-transmission-"+r.name, 32<<10, []enginetest.FileSpec{{Path: "b.bin", Size: 6<<20 + 777}})
			tr := enginetest.StartOpentracker(t, trackerIP, c.Meta.InfoHash.String())
			announceTo(t, c, tr.HTTP)
			enc := r.trEnc
			trans := enginetest.StartTransmission(t, enginetest.TransmissionOptions{IP: trackerIP, Torrent: c.Torrent, Dir: c.Dir, UTP: true, Encryption: &enc})
			if err := trans.WaitSeeding(60 * time.Second); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			if err := waitSeeders(ctx, tr.HTTP, c.Meta.InfoHash, 1); err != nil {
				t.Fatalf("%v\ntransmission:\n%s", err, tail(trans.Output(), 30))
			}
			tor, err := newUTPClient(t, engineIP, r.ours).AddTorrent(c.Meta, engine.AddOptions{Prefetch: true})
			if err != nil {
				t.Fatal(err)
			}
			w := watchPeer(tor, netip.MustParseAddr(trackerIP))
			select {
			case <-tor.Complete():
			case <-ctx.Done():
				w.stop()
				t.Fatalf("download from transmission over uTP did not complete: %+v\ntransmission:\n%s", tor.Stats(), tail(trans.Output(), 30))
			}
			if err := checkEngine(ctx, tor, sums); err != nil {
				t.Fatal(err)
			}
			time.Sleep(300 * time.Millisecond) // the counters of Peers lag a little
			if err := w.check(r); err != nil {
				t.Fatal(err)
			}
		})
	}
}
