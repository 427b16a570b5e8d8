package library_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"

	"github.com/swarmfs/swarmfs/cmd/swarmfs/internal/library"
	"github.com/swarmfs/swarmfs/cmd/swarmfs/internal/library/librarytest"
)

// TestInfoFiles checks that a list read from an info gives the same files,
// indexes and JSON as the same list built in full.
func TestInfoFiles(t *testing.T) {
	src, err := library.ParseSource(librarytest.MakeTorrent(t, "album", map[string]int{"a.flac": 100, "b/c.txt": 5, "b/cd": 7, "bc": 1}))
	if err != nil {
		t.Fatal(err)
	}
	info := src.Meta.Info
	lazy := library.InfoFiles(info)
	var list []library.File
	for _, f := range info.Files {
		list = append(list, library.File{Path: f.DisplayPath(), Size: f.Length, Offset: f.Offset})
	}
	full := library.FileList(list)
	if lazy.Len() != 4 || full.Len() != 4 {
		t.Fatalf("Len = %d, %d, want 4", lazy.Len(), full.Len())
	}
	for i, f := range lazy.All() {
		if f != list[i] || full.At(i) != f {
			t.Errorf("file %d = %+v, want %+v", i, f, list[i])
		}
	}
	for _, p := range []string{"a.flac", "b/c.txt", "b/cd", "bc", "b", "b/c", "b/", "/bc", "b//cd", "a.flac/", "", "album"} {
		if got, want := lazy.Index(p), full.Index(p); got != want {
			t.Errorf("Index(%q) = %d, want %d", p, got, want)
		}
	}
	a, err := json.Marshal(lazy)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(full)
	if string(a) != string(b) {
		t.Errorf("JSON %s, want %s", a, b)
	}
	var back library.Files
	if err := json.Unmarshal(a, &back); err != nil || !reflect.DeepEqual(back, full) {
		t.Errorf("JSON round trip: %+v, %v", back, err)
	}
	if b, _ := json.Marshal(library.Files{}); string(b) != "[]" {
		t.Errorf("no files: JSON %s, want []", b)
	}
}

// TestInfoFilesCostNothing checks that a snapshot's file list of a torrent
// of many files is made, counted and searched without an allocation per
// file: front ends take snapshots of every torrent every second.
func TestInfoFilesCostNothing(t *testing.T) {
	files := map[string]int{}
	for i := range 2000 {
		files[fmt.Sprintf("d%02d/f%04d.bin", i%20, i)] = 10
	}
	src, err := library.ParseSource(librarytest.MakeTorrent(t, "many", files))
	if err != nil {
		t.Fatal(err)
	}
	info := src.Meta.Info
	last := info.Files[len(info.Files)-1].DisplayPath()
	allocs := testing.AllocsPerRun(10, func() {
		fs := library.InfoFiles(info)
		if fs.Len() != 2000 || fs.Index(last) != 1999 {
			t.Fatal("wrong list")
		}
	})
	if allocs > 1 {
		t.Errorf("%.0f allocations to snapshot and search 2000 files, want none per file", allocs)
	}
}
