package engine

import (
	"context"
	"net/netip"
	"testing"
	"time"
)

// TestPeersAndStatsWithoutTheLoop downloads from another of our clients,
// then blocks the torrent's goroutine and checks that Stats, Peers and
// Banned still answer (they read the published snapshot) and describe the
// seeder, and that what the mount's handlers call (issue 12, row 5:
// getxattr, open, read, release) does not wait on the loop either.
func TestPeersAndStatsWithoutTheLoop(t *testing.T) {
	f := makeFixture(t, "snap", 16<<10, nil, 1<<20)
	seed := newTestClient(t, "127.0.12.2", Config{})
	seedFixture(t, seed, f)
	leech := newTestClient(t, "127.0.12.3", Config{})
	tor, err := leech.AddTorrent(f.mi, AddOptions{Peers: []netip.AddrPort{seed.Addr()}, Prefetch: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	waitClosed(t, ctx, tor.Complete(), "download", tor)

	// Hold the loop until the test ends.
	release := make(chan struct{})
	held := make(chan struct{})
	go func() { _ = tor.do(func() { close(held); <-release }) }()
	defer close(release)
	select {
	case <-held:
	case <-ctx.Done():
		t.Fatal("the loop did not run the command")
	}
	answered := make(chan struct{})
	var (
		st      Stats
		peers   []PeerInfo
		banned  []netip.Addr
		readErr error
	)
	go func() {
		defer close(answered)
		st, peers, banned = tor.Stats(), tor.Peers(), tor.Banned()
		// What the mount's handlers call (cmd/swarmfs/adapter.go):
		// lookups, getxattr, open, read of cached data, release. Many
		// readers, so that a bounded queue to the loop would fill.
		_, _, _, _ = tor.Name(), tor.Info(), tor.MetaInfo(), tor.Bitfield()
		tor.FileComplete(0)
		buf := make([]byte, 4096)
		for i := 0; i < 200 && readErr == nil; i++ {
			var r *Reader
			if r, readErr = tor.NewReader(0); readErr != nil {
				break
			}
			_, readErr = r.ReadAt(ctx, buf, int64(i)*4096)
			r.Close()
		}
	}()
	select {
	case <-answered:
	case <-ctx.Done():
		t.Fatal("Stats, Peers, open, read or close waited on the blocked torrent loop")
	}
	if readErr != nil {
		t.Fatalf("reading cached data while the loop is blocked: %v", readErr)
	}
	if st.State != StateSeeding || st.PiecesHave != f.mi.Info.NumPieces() || st.Downloaded < f.mi.Info.TotalLength {
		t.Fatalf("stats %+v", st)
	}
	if len(banned) != 0 {
		t.Fatalf("banned %v", banned)
	}
	if len(peers) != 1 {
		t.Fatalf("peers %+v, want the seeder", peers)
	}
	p := peers[0]
	if p.Addr != seed.Addr() || p.Client != clientVersion || p.Source != SourceOptions || !p.Outgoing ||
		p.Transport != TransportUTP || !p.Seed || p.Pieces != f.mi.Info.NumPieces() || p.Downloaded < f.mi.Info.TotalLength {
		t.Fatalf("seeder described as %+v", p)
	}
	// Both sides use MSE by default and select plaintext (see
	// EncryptionPrefer).
	if p.Encryption != "mse plaintext" {
		t.Fatalf("encryption %q", p.Encryption)
	}
}
