package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/swarmfs/swarmfs/cmd/swarmfs/internal/library"
	"github.com/swarmfs/swarmfs/cmd/swarmfs/internal/library/librarytest"
	"github.com/swarmfs/swarmfs/engine"
)

// TestEngineLibraryRemoveWaitsForReaders removes a torrent while an HTTP
// style reader and a mount style reader are open: it leaves the listing at
// once, stays in the engine until both are closed, and --purge then
// deletes its cache.
func TestEngineLibraryRemoveWaitsForReaders(t *testing.T) {
	cacheDir := t.TempDir()
	c, err := engine.New(engine.Config{ListenAddr: "127.0.9.60:0", CacheDir: cacheDir, NoDHT: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	lib := newEngineLibrary(c, cacheDir, engine.AddOptions{}, nil)
	src, err := library.ParseSource(librarytest.MakeTorrent(t, "t", map[string]int{"a": 100, "b": 200}))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tor, err := lib.Add(ctx, src)
	if err != nil || !tor.Ready || tor.Files.Len() != 2 {
		t.Fatalf("add: %+v, %v", tor, err)
	}
	h := tor.InfoHash
	httpReader, err := lib.Open(ctx, h, 0)
	if err != nil {
		t.Fatal(err)
	}
	ft, ok := lib.fsTorrent(h)
	if !ok {
		t.Fatal("no fs view of the torrent")
	}
	fsReader, err := ft.OpenFile(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := lib.Torrent(h); got.Stats.OpenReaders != 2 {
		t.Errorf("%d open readers, want 2", got.Stats.OpenReaders)
	}

	if err := lib.Remove(ctx, h, true); err != nil {
		t.Fatal(err)
	}
	if _, ok := lib.Torrent(h); ok || len(lib.Torrents()) != 0 {
		t.Error("a removed torrent is still listed")
	}
	if _, err := lib.Open(ctx, h, 0); !errors.Is(err, library.ErrNotFound) {
		t.Errorf("open after remove: %v", err)
	}
	if _, err := lib.Add(ctx, src); !errors.Is(err, library.ErrExists) {
		t.Errorf("re-add while readers are open: %v", err)
	}
	if err := lib.Remove(ctx, h, false); !errors.Is(err, library.ErrNotFound) {
		t.Errorf("second remove: %v", err)
	}
	httpReader.Close()
	httpReader.Close() // twice: counted once
	if _, ok := c.Torrent(h); !ok {
		t.Fatal("the engine dropped the torrent while the mount still reads it")
	}
	fsReader.Close()
	if _, ok := c.Torrent(h); ok {
		t.Fatal("the engine kept the torrent after its last reader closed")
	}
	if _, err := os.Stat(filepath.Join(cacheDir, h.String())); !os.IsNotExist(err) {
		t.Errorf("purge left the cache store: %v", err)
	}
	if _, err := lib.Add(ctx, src); err != nil {
		t.Errorf("re-add after the remove: %v", err)
	}
}
