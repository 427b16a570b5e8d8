package engine

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/enginetest"
	"github.com/swarmfs/swarmfs/metainfo"
)

// TestDHTMagnetFromLibtorrent finds a libtorrent seeder of a magnet with
// no tracker and no peer address through the DHT: the seeder's DHT node
// and ours bootstrap from each other on loopback.
func TestDHTMagnetFromLibtorrent(t *testing.T) {
	f := makeFixture(t, "dht-found", 16<<10, nil, 300000)
	ourPort := enginetest.FreePort(t, "127.0.2.1")
	ltPort := enginetest.FreePort(t, "127.0.2.80")
	c := newTestClient(t, "127.0.2.1", Config{
		ListenAddr:   fmt.Sprintf("127.0.2.1:%d", ourPort),
		DHTBootstrap: []string{fmt.Sprintf("127.0.2.80:%d", ltPort)},
	})
	seeder := enginetest.StartLibtorrent(t, enginetest.LTOptions{
		IP: "127.0.2.80", Port: ltPort, Torrent: f.torrent, SavePath: f.dir, Peers: []string{},
		DHT: true, DHTBootstrap: fmt.Sprintf("127.0.2.1:%d", ourPort),
	})
	seeder.WaitSeeding(t, time.Minute)
	tor, err := c.AddMagnet(&metainfo.Magnet{InfoHash: f.mi.InfoHash}, AddOptions{Prefetch: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	waitClosed(t, ctx, tor.InfoReady(), "metadata through the DHT", tor)
	waitClosed(t, ctx, tor.Complete(), "download", tor)
	checkFiles(t, ctx, tor, f)
}

// TestDHTLibtorrentFindsUs seeds with swarmfs and lets a libtorrent leecher
// find us through the DHT: a third libtorrent node is the DHT both sides
// bootstrap from, and our announce_peer lands there.
func TestDHTLibtorrentFindsUs(t *testing.T) {
	f := makeFixture(t, "dht-seeded", 16<<10, nil, 300000)
	other := makeFixture(t, "dht-other", 16<<10, nil, 20000)
	nodePort := enginetest.FreePort(t, "127.0.2.81")
	node := enginetest.StartLibtorrent(t, enginetest.LTOptions{
		IP: "127.0.2.81", Port: nodePort, Torrent: other.torrent, SavePath: other.dir, Peers: []string{},
		DHT: true, DHTBootstrap: fmt.Sprintf("127.0.2.82:%d", enginetest.FreePort(t, "127.0.2.82")),
	})
	nodeAddr := fmt.Sprintf("127.0.2.81:%d", nodePort)
	c := newTestClient(t, "127.0.2.1", Config{DHTBootstrap: []string{nodeAddr}})
	tor := seedFixture(t, c, f)
	dst := t.TempDir()
	lt := enginetest.StartLibtorrent(t, enginetest.LTOptions{
		IP: "127.0.2.83", Torrent: f.torrent, SavePath: dst, Peers: []string{},
		DHT: true, DHTBootstrap: nodeAddr, ExitWhenDone: true,
	})
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	if _, _, err := lt.WaitDone(ctx); err != nil {
		t.Fatalf("libtorrent leecher: %v; our stats %+v; node:\n%s", err, tor.Stats(), node.Output())
	}
	checkDir(t, dst, f)
}
