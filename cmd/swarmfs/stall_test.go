package main

import (
	"errors"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine"
	"github.com/swarmfs/swarmfs/engine/enginetest"
	"github.com/swarmfs/swarmfs/fs"
)

// TestMountSurvivesLosingTheSeeder runs the mount in-process on the real
// engine with one libtorrent seeder, then takes the seeder away: a read of
// missing data fails with EIO after the read timeout, succeeds once a new
// seeder appears, a blocked read interrupted with SIGINT ends at once, and
// unmounting releases a blocked read. Nothing hangs; nothing stays mounted.
func TestMountSurvivesLosingTheSeeder(t *testing.T) {
	requireFUSE(t)
	enginetest.RequireLibtorrent(t)
	const size = 32 << 20
	c := enginetest.MakeContent(t, "stall.bin", 256<<10, []enginetest.FileSpec{{Size: size}})
	src, err := os.ReadFile(c.Files[""])
	if err != nil {
		t.Fatal(err)
	}
	seeder := enginetest.StartSeeder(t, "127.0.7.30", c.Torrent, c.Dir)

	client, err := engine.New(engine.Config{
		ListenAddr: "127.0.7.31:0", CacheDir: t.TempDir(), NoDHT: true, MaxReadahead: 256 << 10,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	tor, err := client.AddTorrent(c.Meta, engine.AddOptions{Peers: []netip.AddrPort{netip.MustParseAddrPort(seeder.Addr)}})
	if err != nil {
		t.Fatal(err)
	}
	mp := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(mp, 0o755); err != nil {
		t.Fatal(err)
	}
	detachOnCleanup(t, mp)
	srv, err := mountTorrents(mp, []*engine.Torrent{tor}, fs.Options{ReadTimeout: 2 * time.Second, ReadAheadKB: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Unmount() })
	file := filepath.Join(mp, "stall.bin")

	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	readAt := func(off int64) error {
		buf := make([]byte, 64<<10)
		n, err := f.ReadAt(buf, off)
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		if string(buf[:n]) != string(src[off:off+int64(n)]) {
			t.Fatalf("wrong bytes at %d", off)
		}
		return nil
	}
	if err := readAt(0); err != nil {
		t.Fatalf("read with a seeder: %v", err)
	}

	// The only seeder goes away: a read of data we lack fails with EIO
	// after the read timeout instead of hanging. The middle of the file:
	// the open asked for the head and tail pieces at once, and on a loaded
	// machine the tail may already have arrived before the kill.
	const missing = size / 2
	seeder.Kill()
	<-seeder.Exited()
	if err := readAt(missing); !errors.Is(err, syscall.EIO) {
		t.Fatalf("read with no seeder: %v, want EIO", err)
	}

	// A new seeder connects to us; the same read now succeeds.
	back := enginetest.StartLibtorrent(t, enginetest.LTOptions{
		IP: "127.0.7.32", Torrent: c.Torrent, SavePath: c.Dir, Peers: []string{client.Addr().String()},
	})
	back.WaitSeeding(t, time.Minute)
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := readAt(missing)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EIO) || time.Now().After(deadline) {
			t.Fatalf("read after the seeder returned: %v", err)
		}
	}
	back.Kill()
	<-back.Exited()

	// Ctrl-C on a read blocked on missing data ends it promptly (long
	// before the read timeout of a second mount).
	srv2mp := filepath.Join(t.TempDir(), "mnt2")
	if err := os.Mkdir(srv2mp, 0o755); err != nil {
		t.Fatal(err)
	}
	detachOnCleanup(t, srv2mp)
	srv2, err := mountTorrents(srv2mp, []*engine.Torrent{tor}, fs.Options{ReadTimeout: time.Minute, ReadAheadKB: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv2.Unmount() })
	blocked := func(off int64) *exec.Cmd {
		// tail -c +N reads from byte N-1 on, like a player seeking there.
		cmd := exec.Command("tail", "-c", "+"+strconv.FormatInt(off+1, 10), filepath.Join(srv2mp, "stall.bin"))
		cmd.Stdout = io.Discard
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill() })
		return cmd
	}
	waitCmd := func(cmd *exec.Cmd, what string) {
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: the blocked reader did not return", what)
		}
	}
	dd := blocked(size / 2)
	time.Sleep(300 * time.Millisecond)
	if err := dd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	waitCmd(dd, "SIGINT")

	// Unmounting releases a blocked read.
	dd = blocked(size/2 + 1<<20)
	time.Sleep(300 * time.Millisecond)
	if err := srv2.Unmount(); err != nil {
		t.Fatalf("unmount with a blocked read: %v", err)
	}
	waitCmd(dd, "unmount")
	if ents, err := os.ReadDir(srv2mp); err != nil || len(ents) != 0 {
		t.Errorf("%s still mounted after Unmount: %v %v", srv2mp, ents, err)
	}
}
