package main

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine"
	"github.com/swarmfs/swarmfs/engine/enginetest"
	"github.com/swarmfs/swarmfs/fs"
)

// TestAdapterPrefetch drives user.swarmfs.prefetch's adapter against a
// libtorrent seeder: a range is fetched without any reader and nothing
// else is, "all" fetches the rest of the file, and a bad value wraps
// fs.ErrBadValue (EINVAL at the mount).
func TestAdapterPrefetch(t *testing.T) {
	c := enginetest.MakeContent(t, "pf", 64<<10, []enginetest.FileSpec{
		{Path: "a.bin", Size: 1 << 20}, {Path: "b.bin", Size: 1 << 20},
	})
	lt := enginetest.StartLibtorrent(t, enginetest.LTOptions{IP: "127.0.9.190", Torrent: c.Torrent, SavePath: c.Dir, Peers: []string{}})
	lt.WaitSeeding(t, time.Minute)
	ec, err := engine.New(engine.Config{ListenAddr: "127.0.9.191:0", CacheDir: t.TempDir(), NoDHT: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ec.Close()
	seed, err := netip.ParseAddrPort(lt.Addr)
	if err != nil {
		t.Fatal(err)
	}
	tor, err := ec.AddTorrent(c.Meta, engine.AddOptions{Peers: []netip.AddrPort{seed}})
	if err != nil {
		t.Fatal(err)
	}
	a := fsTorrent{t: tor}
	info := tor.Info()
	if err := a.Prefetch(0, []byte("2M")); !errors.Is(err, fs.ErrBadValue) {
		t.Errorf("prefetch past the end: %v, want fs.ErrBadValue", err)
	}
	if err := a.Prefetch(0, []byte("x+1")); !errors.Is(err, fs.ErrBadValue) {
		t.Errorf("prefetch of a bad value: %v, want fs.ErrBadValue", err)
	}
	b := info.Files[1]
	if b.DisplayPath() != "b.bin" {
		t.Fatalf("file 1 is %s", b.DisplayPath())
	}
	if err := a.Prefetch(1, []byte("256K+64K")); err != nil {
		t.Fatal(err)
	}
	want := info.PieceAt(b.Offset + 256<<10)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for !tor.Bitfield()[want] {
		select {
		case <-ctx.Done():
			t.Fatalf("piece %d of the prefetched range never arrived", want)
		case <-time.After(20 * time.Millisecond):
		}
	}
	for i, ok := range tor.Bitfield() {
		if ok && i != want {
			t.Errorf("piece %d fetched, only %d was asked for", i, want)
		}
	}
	if err := a.Prefetch(1, []byte("all\n")); err != nil {
		t.Fatal(err)
	}
	for !tor.FileComplete(1) {
		select {
		case <-ctx.Done():
			t.Fatal("prefetch all: b.bin never completed")
		case <-time.After(20 * time.Millisecond):
		}
	}
	if tor.FileComplete(0) {
		t.Error("a.bin completed without being asked for")
	}
}
