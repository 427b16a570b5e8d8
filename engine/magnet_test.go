package engine

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/enginetest"
	"github.com/swarmfs/swarmfs/metainfo"
)

// TestMagnetFromLibtorrent fetches the metadata of a magnet from a
// libtorrent seeder (x.pe), downloads the data, then re-adds the magnet in
// a new client on the same cache with no peer at all: the metadata and
// data are there at once.
func TestMagnetFromLibtorrent(t *testing.T) {
	f := makeFixture(t, "magnetic", 16<<10, nil, 600000, 70000)
	seeder := startSeeder(t, "127.0.2.60", f)
	cacheDir := t.TempDir()
	c := newTestClient(t, "127.0.2.1", Config{CacheDir: cacheDir})
	m := &metainfo.Magnet{InfoHash: f.mi.InfoHash, Name: "dn-name", Peers: []string{seeder.Addr}}
	tor, err := c.AddMagnet(m, AddOptions{Prefetch: true})
	if err != nil {
		t.Fatal(err)
	}
	if tor.Info() != nil || tor.Name() != "dn-name" {
		t.Fatalf("before metadata: info %v name %q", tor.Info(), tor.Name())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	waitClosed(t, ctx, tor.InfoReady(), "metadata", tor)
	if tor.Name() != f.name || tor.MetaInfo().InfoHash != f.mi.InfoHash {
		t.Fatalf("after metadata: name %q", tor.Name())
	}
	waitClosed(t, ctx, tor.Complete(), "download", tor)
	checkFiles(t, ctx, tor, f)
	c.Close()

	c2 := newTestClient(t, "127.0.2.1", Config{CacheDir: cacheDir})
	tor2, err := c2.AddMagnet(&metainfo.Magnet{InfoHash: f.mi.InfoHash}, AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-tor2.InfoReady():
	default:
		t.Fatal("re-added magnet has no metadata at once")
	}
	waitClosed(t, ctx, tor2.Complete(), "cached data", tor2)
	checkFiles(t, ctx, tor2, f)
}

// TestMagnetLyingPeer gets wrong metadata from one peer and the right one
// from another: the liar is dropped and the torrent starts.
func TestMagnetLyingPeer(t *testing.T) {
	f := makeFixture(t, "lied-about", 16<<10, nil, 300000)
	lie := append([]byte(nil), f.mi.InfoBytes...)
	lie[len(lie)/2] ^= 0xff
	liar := startFakePeer(t, "127.0.2.61", f, false, 0)
	liar.meta = lie
	c := newTestClient(t, "127.0.2.1", Config{})
	tor, err := c.AddMagnet(&metainfo.Magnet{InfoHash: f.mi.InfoHash}, AddOptions{Peers: []netip.AddrPort{liar.addr}, Prefetch: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		liar.mu.Lock()
		served := liar.metaServed
		liar.mu.Unlock()
		if served >= (len(lie)+16383)/16384 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("liar served %d metadata pieces", served)
		case <-time.After(10 * time.Millisecond):
		}
	}
	honest := startSeeder(t, "127.0.2.62", f)
	tor.AddPeers(addrPort(t, honest.Addr))
	waitClosed(t, ctx, tor.InfoReady(), "metadata", tor)
	waitClosed(t, ctx, tor.Complete(), "download", tor)
	checkFiles(t, ctx, tor, f)
}

// TestServeMetadataToLibtorrent lets a libtorrent leecher that only has
// the magnet fetch the metadata from us (ut_metadata) and then the data.
func TestServeMetadataToLibtorrent(t *testing.T) {
	f := makeFixture(t, "served-meta", 16<<10, nil, 400000, 5000)
	c := newTestClient(t, "127.0.2.1", Config{})
	tor := seedFixture(t, c, f)
	dst := t.TempDir()
	uri := "magnet:?xt=urn:btih:" + f.mi.InfoHash.String()
	lt := enginetest.StartLibtorrent(t, enginetest.LTOptions{IP: "127.0.2.63", Magnet: uri, SavePath: dst, Peers: []string{c.Addr().String()}, ExitWhenDone: true})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, _, err := lt.WaitDone(ctx); err != nil {
		t.Fatalf("libtorrent: %v; our stats %+v", err, tor.Stats())
	}
	checkDir(t, dst, f)
}
