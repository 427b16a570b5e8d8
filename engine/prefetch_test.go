package engine

import (
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/internal/picker"
)

// mp4Box returns an MP4 box of type typ and total size n with random
// payload.
func mp4Box(typ string, n int, rng *rand.Rand) []byte {
	b := make([]byte, n)
	for i := 8; i < n; i++ {
		b[i] = byte(rng.Uint32())
	}
	binary.BigEndian.PutUint32(b, uint32(n))
	copy(b[4:], typ)
	return b
}

// sentRanges returns the ranges the reader last pushed.
func sentRanges(r *Reader) []picker.Range {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.sent)
}

// covered reports whether piece i lies in one of rs of class prio.
func covered(rs []picker.Range, i int, prio picker.Priority) bool {
	for _, rg := range rs {
		if rg.Prio == prio && i >= rg.First && i < rg.End {
			return true
		}
	}
	return false
}

// TestReaderProbeFetchesMoov opens an MP4 whose moov box lies near the
// end, spans several pieces and is followed by a large free box: the
// container probe must ask for every moov piece at open, and the pieces
// holding only the free box (where the old guess, the last piece, lies)
// must not be asked for once the probe is done, nor downloaded but for
// the last piece, guessed at open while the head is on its way.
func TestReaderProbeFetchesMoov(t *testing.T) {
	const pieceLen = 64 << 10
	rng := rand.New(rand.NewPCG(17, 1))
	var data []byte
	data = append(data, mp4Box("ftyp", 32, rng)...)
	data = append(data, mp4Box("mdat", 2<<20, rng)...)
	moovOff := int64(len(data))
	data = append(data, mp4Box("moov", 200<<10, rng)...)
	moovEnd := int64(len(data))
	data = append(data, mp4Box("free", 400<<10, rng)...)
	f := makeFixtureOf(t, "movie.mp4", pieceLen, nil, map[string][]byte{"movie.mp4": data}, false)
	seeder := startSeeder(t, "127.0.2.40", f)
	c := newTestClient(t, "127.0.2.1", Config{})
	tor, err := c.AddTorrent(f.mi, AddOptions{Peers: []netip.AddrPort{addrPort(t, seeder.Addr)}})
	if err != nil {
		t.Fatal(err)
	}
	r, err := tor.NewReader(0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	select {
	case <-r.pf.done:
	case <-ctx.Done():
		t.Fatal("container probe did not finish")
	}
	rs := sentRanges(r)
	for i := int(moovOff / pieceLen); i <= int((moovEnd-1)/pieceLen); i++ {
		if !covered(rs, i, picker.HeadTail) {
			t.Errorf("moov piece %d not asked for as HeadTail; ranges %v", i, rs)
		}
	}
	freeFirst := int((moovEnd + pieceLen - 1) / pieceLen)
	last := len(f.mi.Info.Pieces) - 1
	for i := freeFirst; i <= last; i++ {
		for _, rg := range rs {
			if i >= rg.First && i < rg.End {
				t.Errorf("free-box piece %d asked for: %v", i, rg)
			}
		}
	}
	// Every moov piece arrives; the free box's pieces never do, but for
	// the last one, guessed at open while the probe reads the head.
	moovLast := int((moovEnd - 1) / pieceLen)
	if err := r.store.Wait(ctx, moovLast); err != nil {
		t.Fatalf("waiting for the moov's last piece: %v", err)
	}
	have := tor.Bitfield()
	for i := freeFirst; i < last; i++ {
		if have[i] {
			t.Errorf("free-box piece %d downloaded", i)
		}
	}
}

// TestReaderWarmsNextFile reads past 90% of an episode and checks that the
// head of the next episode (natural order, same extension) is then asked
// for at Normal priority, and not before.
func TestReaderWarmsNextFile(t *testing.T) {
	const pieceLen = 64 << 10
	rng := rand.New(rand.NewPCG(17, 2))
	mk := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	f := makeFixtureOf(t, "show", pieceLen, nil, map[string][]byte{
		"ep9.mkv": mk(1 << 20), "ep10.mkv": mk(3 << 20), "ep9.srt": mk(1000), "ep2.mkv": mk(100 << 10),
	}, true)
	c := newTestClient(t, "127.0.2.1", Config{}) // no peers: reads time out
	tor, err := c.AddTorrent(f.mi, AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	info := tor.Info()
	idx := func(name string) int {
		for i, fl := range info.Files {
			if fl.DisplayPath() == name {
				return i
			}
		}
		t.Fatalf("no file %s", name)
		return -1
	}
	cur, next := idx("ep9.mkv"), idx("ep10.mkv")
	r, err := tor.NewReader(cur)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	read := func(off int64) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		if _, err := r.ReadAt(ctx, make([]byte, 4096), off); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("read at %d without peers: %v, want a deadline error", off, err)
		}
	}
	nf := info.Files[next]
	first, end := info.PieceSpan(nf.Offset, warmBytes)
	warm := picker.Range{First: first, End: end, Prio: picker.Normal}
	read(512 << 10)
	if slices.Contains(sentRanges(r), warm) {
		t.Fatal("next file warmed at 50% of the file")
	}
	read(950 << 10)
	if rs := sentRanges(r); !slices.Contains(rs, warm) {
		t.Fatalf("next file's head %v not asked for at 95%%: %v", warm, rs)
	}
	// The warm-up stays until Close, through seeks back.
	read(0)
	if !slices.Contains(sentRanges(r), warm) {
		t.Fatal("warm-up dropped after a seek back")
	}
}

// TestTorrentPrefetch checks that Prefetch validates its range and leaves
// a Normal range for its own owner, keeping at most maxPrefetchRanges.
func TestTorrentPrefetch(t *testing.T) {
	f := makeFixture(t, "pf.bin", 64<<10, nil, 4<<20)
	c := newTestClient(t, "127.0.2.1", Config{})
	tor, err := c.AddTorrent(f.mi, AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][2]int64{{-1, 10}, {10, 10}, {0, 4<<20 + 1}, {5 << 20, 6 << 20}} {
		if err := tor.Prefetch(0, bad[0], bad[1]); !errors.Is(err, ErrBadPrefetch) {
			t.Errorf("Prefetch(%v) = %v, want ErrBadPrefetch", bad, err)
		}
	}
	if err := tor.Prefetch(1, 0, 1); err == nil {
		t.Error("Prefetch of a missing file succeeded")
	}
	if err := tor.Prefetch(0, 1<<20, 1<<20+1); err != nil {
		t.Fatal(err)
	}
	tor.pfMu.Lock()
	got := slices.Clone(tor.pf.ranges)
	tor.pfMu.Unlock()
	if want := []picker.Range{{First: 16, End: 17, Prio: picker.Normal}}; !slices.Equal(got, want) {
		t.Fatalf("prefetch ranges %v, want %v", got, want)
	}
	for i := range 2 * maxPrefetchRanges {
		if err := tor.Prefetch(0, int64(i)<<16, int64(i+1)<<16); err != nil {
			t.Fatal(err)
		}
	}
	tor.pfMu.Lock()
	n, lastR := len(tor.pf.ranges), tor.pf.ranges[len(tor.pf.ranges)-1]
	tor.pfMu.Unlock()
	if n != maxPrefetchRanges || lastR.First != 2*maxPrefetchRanges-1 {
		t.Fatalf("after many prefetches: %d ranges, last %v", n, lastR)
	}
}

// TestProbeSlotsBounded opens more readers than there are probe slots on a
// torrent without peers: the probes wait for the head, holding maxProbes
// slots at most; Close ends every probe and frees its slot.
func TestProbeSlotsBounded(t *testing.T) {
	f := makeFixture(t, "slots", 64<<10, nil, 1<<20, 1<<20, 1<<20, 1<<20, 1<<20, 1<<20)
	c := newTestClient(t, "127.0.2.1", Config{})
	tor, err := c.AddTorrent(f.mi, AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var rs []*Reader
	for i := range maxProbes + 2 {
		r, err := tor.NewReader(i)
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, r)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(tor.probes) < maxProbes {
		if time.Now().After(deadline) {
			t.Fatalf("%d probe slots taken, want %d", len(tor.probes), maxProbes)
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // a probe past its slot would show here
	if n := len(tor.probes); n != maxProbes {
		t.Fatalf("%d probe slots taken, want %d", n, maxProbes)
	}
	for _, r := range rs {
		r.Close()
	}
	if n := len(tor.probes); n != 0 {
		t.Fatalf("%d probe slots still taken after Close", n)
	}
}
