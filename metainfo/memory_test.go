package metainfo

import (
	"runtime"
	"testing"
)

// TestLoadMemoryPerFile checks that loading a torrent of many files costs
// a bounded number of allocations in all and a bounded number of bytes per
// file: a torrent may list a million files, and a parser that allocated
// for every file or path component (as decoding the list with Unmarshal
// does) would take several times the memory and time.
func TestLoadMemoryPerFile(t *testing.T) {
	const n = 20_000
	data := manyFilesTorrent(t, n)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	mi, err := parseTorrent(data)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if len(mi.Info.Files) != n {
		t.Fatalf("%d files, want %d", len(mi.Info.Files), n)
	}
	allocs := after.Mallocs - before.Mallocs
	perFile := float64(after.TotalAlloc-before.TotalAlloc) / n
	// What the parsed files need: a File (48 bytes), three string headers
	// (48), the path bytes (about 20) and their bookkeeping (12).
	t.Logf("%d allocations, %.0f bytes per file", allocs, perFile)
	if allocs > 200 {
		t.Errorf("%d allocations to load %d files, want a few dozen whatever the count", allocs, n)
	}
	if perFile > 256 {
		t.Errorf("%.0f bytes allocated per file, want at most 256", perFile)
	}
}
