package engine

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"github.com/swarmfs/swarmfs/cache"
)

// fakePieceStore records writes; FinishPiece fails with finishErr[piece].
type fakePieceStore struct {
	writes    []string
	writeErr  map[string]error
	finished  []int
	finishErr map[int]error
	// finishErrs, when set, gives the errors of successive FinishPiece
	// calls (then nil).
	finishErrs []error
}

func (s *fakePieceStore) WriteBlock(piece, begin int, data []byte) error {
	k := fmt.Sprintf("%d/%d", piece, begin)
	s.writes = append(s.writes, k)
	return s.writeErr[k]
}

func (s *fakePieceStore) FinishPiece(piece int) error {
	s.finished = append(s.finished, piece)
	if len(s.finishErrs) > 0 {
		err := s.finishErrs[0]
		s.finishErrs = s.finishErrs[1:]
		return err
	}
	return s.finishErr[piece]
}

// syncPipe returns a pipeline whose workers run at once, on the caller's
// goroutine, and whose events are collected for the test to hand back.
func syncPipe(st pieceStore) (*diskPipe, *[]any) {
	var events []any
	d := newDiskPipe(st, diskWorkers{
		goFunc: func(f func()) { f() },
		post:   func(ev any) bool { events = append(events, ev); return true },
	})
	return d, &events
}

// drain hands the collected events to the pipeline and returns the
// outcomes that decided something.
func drain(d *diskPipe, events *[]any) []diskOutcome {
	var out []diskOutcome
	for len(*events) > 0 {
		ev := (*events)[0]
		*events = (*events)[1:]
		var o diskOutcome
		switch ev := ev.(type) {
		case blockWritten:
			o = d.Written(ev)
		case pieceHashed:
			o = d.Hashed(ev)
		}
		if o.kind != outcomeNone {
			out = append(out, o)
		}
	}
	return out
}

var (
	ipA = netip.MustParseAddr("10.0.0.1")
	ipB = netip.MustParseAddr("10.0.0.2")
)

func TestDiskPipeVerified(t *testing.T) {
	st := &fakePieceStore{}
	d, events := syncPipe(st)
	d.Received(3, 0, make([]byte, 10), ipA)
	d.Received(3, 10, make([]byte, 10), ipB)
	if o := d.Ready(3); o.kind != outcomeNone {
		t.Fatalf("decided before the writes were done: %+v", o)
	}
	got := drain(d, events)
	if len(got) != 1 || got[0].kind != outcomeVerified || got[0].piece != 3 {
		t.Fatalf("outcomes %+v, want piece 3 verified", got)
	}
	slices.SortFunc(got[0].from, netip.Addr.Compare)
	if !slices.Equal(got[0].from, []netip.Addr{ipA, ipB}) {
		t.Fatalf("from %v, want both IPs", got[0].from)
	}
	if !slices.Equal(st.writes, []string{"3/0", "3/10"}) || !slices.Equal(st.finished, []int{3}) {
		t.Fatalf("writes %v finished %v", st.writes, st.finished)
	}
	if len(d.writes)+len(d.writers)+len(d.ready)+len(d.hashing)+len(d.origins)+len(d.suspects) != 0 || d.writing != 0 {
		t.Fatalf("state left behind: %+v", d)
	}
}

func TestDiskPipeHashFailed(t *testing.T) {
	st := &fakePieceStore{finishErr: map[int]error{1: cache.ErrHashMismatch}}
	d, events := syncPipe(st)
	d.Received(1, 0, make([]byte, 10), ipA)
	got := drain(d, events) // written before the piece is complete
	if len(got) != 0 {
		t.Fatalf("outcomes %+v before Ready", got)
	}
	d.Ready(1)
	got = drain(d, events)
	if len(got) != 1 || got[0].kind != outcomeHashFailed || !slices.Equal(got[0].from, []netip.Addr{ipA}) {
		t.Fatalf("outcomes %+v, want a hash failure blaming %v", got, ipA)
	}
}

func TestDiskPipeDiskErrors(t *testing.T) {
	errDisk := errors.New("disk on fire")
	st := &fakePieceStore{
		writeErr:  map[string]error{"1/0": errDisk},
		finishErr: map[int]error{2: errDisk},
	}
	d, events := syncPipe(st)
	d.Received(1, 0, make([]byte, 10), ipA)
	d.Ready(1)
	d.Received(2, 0, make([]byte, 10), ipB)
	d.Ready(2)
	got := drain(d, events)
	if len(got) != 2 {
		t.Fatalf("outcomes %+v, want two", got)
	}
	for _, o := range got {
		if o.kind != outcomeLost || len(o.from) != 0 {
			t.Fatalf("outcome %+v: a disk error must lose the piece and blame nobody", o)
		}
	}
	if !slices.Equal(st.finished, []int{2}) {
		t.Fatalf("verified %v: a piece whose write failed must not be", st.finished)
	}
	if got[1].piece != 2 || !errors.Is(got[1].err, errDisk) {
		t.Fatalf("verification error not reported: %+v", got[1])
	}
}

func TestDiskPipeFull(t *testing.T) {
	// Writers that never run: blocks stay in flight.
	var started []func()
	d := newDiskPipe(&fakePieceStore{}, diskWorkers{
		goFunc: func(f func()) { started = append(started, f) },
		post:   func(any) bool { return true },
	})
	for i := 0; i < maxWriting; i++ {
		d.Received(i, 0, make([]byte, 1), ipA)
	}
	if !d.Full() {
		t.Fatalf("%d blocks in flight and not full", d.writing)
	}
	o := d.Written(blockWritten{piece: 0})
	if !o.unblocked || d.Full() {
		t.Fatal("a write below the cap did not unblock requests")
	}
	if o = d.Written(blockWritten{piece: 1}); o.unblocked {
		t.Fatal("unblocked twice")
	}
	if len(started) != maxWriting {
		t.Fatalf("%d writers for %d pieces", len(started), maxWriting)
	}
}

// TestDiskPipeFairBlame: a piece sent by two IPs fails; fetched again it
// verifies, and only the IP whose block differed is named.
func TestDiskPipeFairBlame(t *testing.T) {
	liar := netip.MustParseAddr("10.0.0.66")
	good := func(b int) []byte { return []byte(fmt.Sprintf("block %d", b)) }
	st := &fakePieceStore{finishErrs: []error{cache.ErrHashMismatch}}
	d, events := syncPipe(st)
	d.Received(7, 0, good(0), ipA)
	d.Received(7, 16, []byte("corrupt"), liar)
	d.Received(7, 32, good(2), ipB)
	d.Ready(7)
	got := drain(d, events)
	if len(got) != 1 || got[0].kind != outcomeHashFailed || len(got[0].from) != 3 || len(got[0].liars) != 0 {
		t.Fatalf("first try: %+v", got)
	}
	// The second try comes from A alone and verifies.
	for b := 0; b < 3; b++ {
		d.Received(7, 16*b, good(b), ipA)
	}
	d.Ready(7)
	got = drain(d, events)
	if len(got) != 1 || got[0].kind != outcomeVerified {
		t.Fatalf("second try: %+v", got)
	}
	if !slices.Equal(got[0].liars, []netip.Addr{liar}) || !slices.Equal(got[0].from, []netip.Addr{ipA}) {
		t.Fatalf("liars %v from %v; want %v from %v", got[0].liars, got[0].from, liar, ipA)
	}
	if len(d.suspects)+len(d.origins) != 0 {
		t.Fatal("origins kept after the piece verified")
	}
}

// TestDiskPipeSuspectsBounded: failed tries are kept for at most
// maxSuspectPieces pieces and maxSuspectTries tries each; a failure from
// one IP alone keeps none (it is blamed at once).
func TestDiskPipeSuspectsBounded(t *testing.T) {
	st := &fakePieceStore{finishErr: map[int]error{}}
	for i := 0; i < maxSuspectPieces+10; i++ {
		st.finishErr[i] = cache.ErrHashMismatch
	}
	d, events := syncPipe(st)
	try := func(i int, ips ...netip.Addr) {
		for k, ip := range ips {
			d.Received(i, 16*k, []byte{byte(k)}, ip)
		}
		d.Ready(i)
		drain(d, events)
	}
	for i := 0; i < maxSuspectPieces+10; i++ {
		try(i, ipA, ipB)
	}
	if len(d.suspects) != maxSuspectPieces {
		t.Fatalf("%d suspect pieces, cap %d", len(d.suspects), maxSuspectPieces)
	}
	for k := 0; k < maxSuspectTries+3; k++ {
		try(0, ipA, ipB)
	}
	if n := len(d.suspects[0]); n != maxSuspectTries {
		t.Fatalf("%d tries kept, cap %d", n, maxSuspectTries)
	}
	st.finishErr[maxSuspectPieces+20] = cache.ErrHashMismatch
	try(maxSuspectPieces+20, ipA)
	if _, ok := d.suspects[maxSuspectPieces+20]; ok {
		t.Fatal("a failure from one IP kept as a suspect")
	}
}
