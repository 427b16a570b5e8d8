package engine

import (
	"bytes"
	"context"
	"net/netip"
	"testing"
	"time"
)

// TestDownloadFromLibtorrent downloads a multi-file torrent from a
// libtorrent seeder given as a direct peer address.
func TestDownloadFromLibtorrent(t *testing.T) {
	f := makeFixture(t, "multi", 32<<10, nil, 3<<20, 1234567, 0, 50000)
	seeder := startSeeder(t, "127.0.2.10", f)
	c := newTestClient(t, "127.0.2.1", Config{})
	tor, err := c.AddTorrent(f.mi, AddOptions{Peers: []netip.AddrPort{addrPort(t, seeder.Addr)}, Prefetch: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	waitClosed(t, ctx, tor.Complete(), "download", tor)
	checkFiles(t, ctx, tor, f)
	st := tor.Stats()
	if st.PiecesHave != st.PiecesTotal || st.Downloaded < f.mi.Info.TotalLength {
		t.Fatalf("stats after completion: %+v", st)
	}
}

// TestReaderStreamsWithSeek streams a file from a libtorrent seeder without
// prefetch: the reads alone drive the download, including after a seek to
// the middle.
func TestReaderStreamsWithSeek(t *testing.T) {
	f := makeFixture(t, "stream.bin", 64<<10, nil, 8<<20)
	seeder := startSeeder(t, "127.0.2.11", f)
	c := newTestClient(t, "127.0.2.1", Config{MaxReadahead: 1 << 20})
	tor, err := c.AddTorrent(f.mi, AddOptions{Peers: []netip.AddrPort{addrPort(t, seeder.Addr)}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := tor.NewReader(0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	want := f.fileData(0)
	buf := make([]byte, 128<<10)
	read := func(off int64) {
		t.Helper()
		n, err := r.ReadAt(ctx, buf, off)
		if err != nil {
			t.Fatalf("read at %d: %v", off, err)
		}
		if !bytes.Equal(buf[:n], want[off:off+int64(n)]) {
			t.Fatalf("read at %d: wrong bytes", off)
		}
	}
	for off := int64(0); off < 1<<20; off += int64(len(buf)) {
		read(off)
	}
	mid := int64(len(want) / 2)
	for off := mid; off < mid+1<<20; off += int64(len(buf)) {
		read(off)
	}
	// Unaligned read across a piece boundary near the end, short at EOF.
	end := int64(len(want)) - 1000
	n, err := r.ReadAt(ctx, buf, end)
	if n != 1000 || err == nil {
		t.Fatalf("read at end: n=%d err=%v, want 1000 and io.EOF", n, err)
	}
	if !bytes.Equal(buf[:n], want[end:]) {
		t.Fatal("read at end: wrong bytes")
	}
	// Without prefetch, pieces far from the reads were never fetched.
	have := tor.Bitfield()
	got := 0
	for _, h := range have {
		if h {
			got++
		}
	}
	if got == len(have) {
		t.Fatalf("every piece was fetched although only parts were read")
	}
}

// TestStreamThroughSmallCache streams a file four times the size of the
// cache cap: evicted pieces are forgotten and never served, and the reader
// still gets every byte right.
func TestStreamThroughSmallCache(t *testing.T) {
	f := makeFixture(t, "big.bin", 64<<10, nil, 4<<20)
	seeder := startSeeder(t, "127.0.2.12", f)
	c := newTestClient(t, "127.0.2.1", Config{CacheSize: 1 << 20, MaxReadahead: 256 << 10})
	tor, err := c.AddTorrent(f.mi, AddOptions{Peers: []netip.AddrPort{addrPort(t, seeder.Addr)}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got, err := readFile(ctx, tor, 0, 64<<10)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, f.fileData(0)) {
		t.Fatal("streamed content differs")
	}
	st := tor.Stats()
	if st.BytesHave > 1<<20+f.mi.Info.PieceLength {
		t.Fatalf("cache holds %d bytes over a cap of 1 MiB", st.BytesHave)
	}
	if st.EvictedBytes == 0 {
		t.Errorf("stats count %d evicted bytes streaming %d through a 1 MiB cache", st.EvictedBytes, f.mi.Info.TotalLength)
	}
	// The engine's view (picker) agrees with the cache after evictions.
	var mismatch []int
	_ = tor.do(func() {
		tor.ls.onEvicted() // take evictions not yet signalled to the loop
		for i, h := range tor.ls.store().Bitfield() {
			// A piece the cache verified whose outcome the loop has not
			// taken yet is present but not yet had: legitimate.
			if h && tor.ls.disk.hashing[i] {
				continue
			}
			if tor.ls.pk.Have(i) != h {
				mismatch = append(mismatch, i)
			}
		}
	})
	if len(mismatch) > 0 {
		t.Fatalf("picker and cache disagree on pieces %v", mismatch)
	}
}
