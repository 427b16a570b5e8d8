package watch

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/cmd/swarmfs/internal/library"
	"github.com/swarmfs/swarmfs/cmd/swarmfs/internal/library/librarytest"
	"github.com/swarmfs/swarmfs/metainfo"
)

// logBuf is a log sink safe for concurrent use.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.b.String(), s)
}

const settle = 300 * time.Millisecond

// startWatch runs a watcher on a new directory with a fast poll.
func startWatch(t *testing.T, lib library.Library, settle time.Duration) (string, *logBuf) {
	t.Helper()
	dir := t.TempDir()
	logs := &logBuf{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{Dir: dir, Library: lib, Interval: 20 * time.Millisecond, Settle: settle,
			Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Error(err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after its context ended")
		}
	})
	return dir, logs
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func has(lib *librarytest.Fake, h metainfo.Hash) bool { _, ok := lib.Torrent(h); return ok }

func sourceOf(t *testing.T, b []byte) library.Source {
	t.Helper()
	src, err := library.ParseSource(b)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func TestAddAndRemove(t *testing.T) {
	lib := librarytest.NewFake()
	dir, _ := startWatch(t, lib, settle)
	tb := librarytest.MakeTorrent(t, "album", map[string]int{"a.flac": 5000})
	h := sourceOf(t, tb).InfoHash()
	path := filepath.Join(dir, "Album.TORRENT")
	if err := os.WriteFile(path, tb, 0o644); err != nil {
		t.Fatal(err)
	}
	// Files that are not sources are ignored.
	for _, n := range []string{"notes.txt", ".hidden.torrent"} {
		if err := os.WriteFile(filepath.Join(dir, n), tb, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the torrent to be added", func() bool { return has(lib, h) })
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the torrent to be removed", func() bool { return !has(lib, h) })
	if n := len(lib.Adds()); n != 1 {
		t.Errorf("%d adds, want 1", n)
	}
}

func TestMagnetFile(t *testing.T) {
	lib := librarytest.NewFake()
	dir, _ := startWatch(t, lib, settle)
	h := metainfo.Hash{0x42}
	link := "magnet:?xt=urn:btih:" + h.String() + "&dn=film\n"
	if err := os.WriteFile(filepath.Join(dir, "film.magnet"), []byte(link), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the magnet to be added", func() bool { return has(lib, h) })
	if got, _ := lib.Torrent(h); got.Name != "film" {
		t.Errorf("name %q", got.Name)
	}
	os.Remove(filepath.Join(dir, "film.magnet"))
	waitFor(t, "the magnet to be removed", func() bool { return !has(lib, h) })
}

func TestHalfWrittenFile(t *testing.T) {
	lib := librarytest.NewFake()
	// A long settle time: a loaded machine may pause between the writes.
	dir, logs := startWatch(t, lib, time.Minute)
	tb := librarytest.MakeTorrent(t, "big", map[string]int{"x": 40000})
	h := sourceOf(t, tb).InfoHash()
	path := filepath.Join(dir, "big.torrent")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(tb[:len(tb)/2]); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // several polls see the half file, stable
	if len(lib.Adds()) != 0 {
		t.Fatal("a half-written torrent reached the library")
	}
	if _, err := f.Write(tb[len(tb)/2:]); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the completed torrent to be added", func() bool { return has(lib, h) })
	if n := logs.count("skipping"); n != 0 {
		t.Errorf("a half-written file was reported bad %d times", n)
	}
}

func TestGarbageFile(t *testing.T) {
	lib := librarytest.NewFake()
	dir, logs := startWatch(t, lib, settle)
	path := filepath.Join(dir, "junk.torrent")
	if err := os.WriteFile(path, []byte("this is not bencode"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the bad file to be reported", func() bool { return logs.count("skipping") == 1 })
	time.Sleep(settle) // many more polls
	if n := logs.count("skipping"); n != 1 {
		t.Errorf("bad file reported %d times, want once", n)
	}
	if len(lib.Adds()) != 0 {
		t.Error("garbage reached the library")
	}
	// Fixing the file adds it.
	tb := librarytest.MakeTorrent(t, "fixed", map[string]int{"y": 10})
	if err := os.WriteFile(path, tb, 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the fixed file to be added", func() bool { return has(lib, sourceOf(t, tb).InfoHash()) })
}

func TestNotOwnedAndReplaced(t *testing.T) {
	lib := librarytest.NewFake()
	tb := librarytest.MakeTorrent(t, "mine", map[string]int{"z": 10})
	src := sourceOf(t, tb)
	if _, err := lib.Add(context.Background(), src); err != nil {
		t.Fatal(err)
	}
	dir, logs := startWatch(t, lib, settle)
	path := filepath.Join(dir, "mine.torrent")
	if err := os.WriteFile(path, tb, 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the add attempt", func() bool { return logs.count("already present") == 1 })
	// The file now holds another torrent: that one is added...
	other := librarytest.MakeTorrent(t, "other", map[string]int{"w": 20})
	if err := os.WriteFile(path+".tmp", other, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
	oh := sourceOf(t, other).InfoHash()
	waitFor(t, "the replacing torrent", func() bool { return has(lib, oh) })
	// ...and removing the file removes only what the watcher added.
	os.Remove(path)
	waitFor(t, "the replacing torrent to go", func() bool { return !has(lib, oh) })
	if !has(lib, src.InfoHash()) {
		t.Error("a torrent the watcher did not add was removed")
	}
}

func TestMissingDir(t *testing.T) {
	err := Run(context.Background(), Config{Dir: filepath.Join(t.TempDir(), "nope"), Library: librarytest.NewFake()})
	if err == nil {
		t.Fatal("Run on a missing directory returned nil")
	}
}
