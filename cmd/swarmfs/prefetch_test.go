package main

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine"
	"github.com/swarmfs/swarmfs/engine/enginetest"
	"github.com/swarmfs/swarmfs/fs"
	"golang.org/x/sys/unix"
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

// TestMountSetfattrPrefetch is the user's view of user.swarmfs.prefetch:
// `swarmfs mount` of a torrent a libtorrent seeder serves, then
// `setfattr -n user.swarmfs.prefetch -v 0+1048576` on a file nobody reads.
// The first MiB's pieces of that file arrive (user.swarmfs.pieces) and no
// other piece of the torrent does. Before the mount stopped being "ro" in
// the kernel, setfattr failed with "Read-only file system". The mount
// still refuses changes: a write gives EROFS.
func TestMountSetfattrPrefetch(t *testing.T) {
	requireFUSE(t)
	enginetest.RequireLibtorrent(t)
	setfattr := enginetest.RequireTool(t, "setfattr", "attr")
	const piece = 64 << 10
	c := enginetest.MakeContent(t, "pf", piece, []enginetest.FileSpec{
		{Path: "a.bin", Size: 1 << 20}, {Path: "b.bin", Size: 3<<20 + 1000},
	})
	lt := enginetest.StartLibtorrent(t, enginetest.LTOptions{IP: "127.0.9.196", Torrent: c.Torrent, SavePath: c.Dir, Peers: []string{}})
	lt.WaitSeeding(t, time.Minute)
	mp := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(mp, 0o755); err != nil {
		t.Fatal(err)
	}
	detachOnCleanup(t, mp)
	p := startSwarmfs(t, "mount", "--cache-dir", t.TempDir(), "--no-dht",
		"--read-timeout", "30s", "--peer", lt.Addr, c.Torrent, mp)
	p.WaitLine(t, "mounted ", 30*time.Second)
	file := filepath.Join(mp, "pf", "b.bin")
	pieces := func(path string) string {
		var buf [4096]byte
		n, err := unix.Getxattr(path, fs.XattrPieces, buf[:])
		if err != nil {
			t.Fatalf("getxattr %s: %v", fs.XattrPieces, err)
		}
		return string(buf[:n])
	}
	if got := pieces(file); strings.Contains(got, "#") {
		t.Fatalf("pieces of b.bin before the prefetch: %s", got)
	}

	runTool(t, 10*time.Second, setfattr, "-n", fs.XattrPrefetch, "-v", "0+1048576", file)

	// b.bin starts at 1 MiB, on a piece boundary: its first 16 pieces.
	want := strings.Repeat("#", 16) + strings.Repeat(".", (3<<20+1000+piece-1)/piece-16)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for pieces(file) != want {
		select {
		case <-ctx.Done():
			t.Fatalf("pieces of b.bin %s, want %s", pieces(file), want)
		case <-time.After(20 * time.Millisecond):
		}
	}
	all := pieces(filepath.Join(mp, "pf"))
	if wantAll := strings.Repeat(".", 16) + want; all != wantAll {
		t.Errorf("pieces of the torrent %s, want %s (only the range)", all, wantAll)
	}

	ctx2, cancel2 := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel2()
	out, err := exec.CommandContext(ctx2, "sh", "-c", "echo x >> \"$1\"", "sh", file).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "Read-only file system") {
		t.Errorf("appending to a file of the mount: %v, %q; want Read-only file system", err, out)
	}
	if code, _, errOut := runCmd(t, "unmount", mp); code != 0 {
		t.Fatalf("swarmfs unmount: exit %d: %s", code, errOut)
	}
	waitExit(t, p, 20*time.Second)
}
