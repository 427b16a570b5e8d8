package metadata

import (
	"crypto/sha1"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/swarmfs/swarmfs/engine/internal/wire"
)

// Errors.
var (
	ErrSize         = errors.New("metadata: bad metadata size")
	ErrPieceSize    = errors.New("metadata: bad piece")
	ErrUnrequested  = errors.New("metadata: piece not requested from this peer")
	ErrHashMismatch = errors.New("metadata: info hash mismatch")
)

// PieceSize is the size of each metadata piece but the last (16 KiB).
const PieceSize = wire.MetadataPieceSize

// DefaultTimeout is how long a request stays outstanding before Next offers
// the piece to another peer.
const DefaultTimeout = 20 * time.Second

// HashMismatchError reports assembled metadata whose SHA-1 is not the info
// hash, with every peer that contributed a piece.
type HashMismatchError[P comparable] struct {
	// Peers are the peers that contributed pieces.
	Peers []P
	// Guilty is true when a single peer sent every piece: it lied and is
	// banned (drop it). With several contributors the liar is unknown; the
	// Assembler then fetches from one peer at a time, so that the next
	// mismatch names the liar alone.
	Guilty bool
}

func (e *HashMismatchError[P]) Error() string {
	if e.Guilty {
		return fmt.Sprintf("metadata: info hash mismatch; every piece came from peer %v", e.Peers[0])
	}
	return fmt.Sprintf("metadata: info hash mismatch; pieces came from %d peers: %v", len(e.Peers), e.Peers)
}

// Unwrap returns ErrHashMismatch.
func (e *HashMismatchError[P]) Unwrap() error { return ErrHashMismatch }

type request[P comparable] struct {
	peer P
	at   time.Time
}

type piece[P comparable] struct {
	data     []byte          // nil until received
	from     P               // who sent data
	requests []request[P]    // outstanding, oldest first
	rejected map[P]time.Time // peers that rejected this piece, and when
}

// Assembler collects the pieces of one info dictionary. The zero value is
// not usable; call New.
type Assembler[P comparable] struct {
	infoHash [20]byte
	size     int
	pieces   []piece[P]
	have     int
	done     []byte
	now      time.Time  // the latest time passed to Next
	banned   map[P]bool // sent a whole dictionary that did not verify

	// After a mismatch with several contributors, one peer at a time (the
	// source) is asked for every piece.
	single    bool
	hasSource bool
	source    P
	sourceAt  time.Time       // the source's latest request
	noSource  map[P]time.Time // rejected a piece while being the source, and when

	// Timeout is how long a request may stay unanswered before its piece
	// is offered to another peer; zero means DefaultTimeout.
	Timeout time.Duration
}

// New returns an assembler for an info dictionary of size bytes whose
// SHA-1 must be infoHash. Sizes of 0 or over wire.MaxMetadataSize give an
// error wrapping ErrSize. Memory grows only as pieces arrive.
func New[P comparable](infoHash [20]byte, size int) (*Assembler[P], error) {
	if size <= 0 || size > wire.MaxMetadataSize {
		return nil, fmt.Errorf("%w: %d bytes, want 1..%d", ErrSize, size, wire.MaxMetadataSize)
	}
	return &Assembler[P]{
		infoHash: infoHash,
		size:     size,
		pieces:   make([]piece[P], NumPieces(size)),
		banned:   map[P]bool{},
		noSource: map[P]time.Time{},
	}, nil
}

// NumPieces returns the number of ut_metadata pieces of a dictionary of
// size bytes.
func NumPieces(size int) int { return (size + PieceSize - 1) / PieceSize }

// pieceLen returns the exact size of piece i.
func (a *Assembler[P]) pieceLen(i int) int {
	return min(PieceSize, a.size-i*PieceSize)
}

// Size returns the info dictionary's size. Peers whose metadata_size
// differs cannot serve it and should not be given to Next.
func (a *Assembler[P]) Size() int { return a.size }

// NumPieces returns the number of pieces.
func (a *Assembler[P]) NumPieces() int { return len(a.pieces) }

// Have returns how many pieces are present.
func (a *Assembler[P]) Have() int { return a.have }

// Done reports whether the dictionary is complete and verified.
func (a *Assembler[P]) Done() bool { return a.done != nil }

// Bytes returns the verified info dictionary, or nil before Done.
func (a *Assembler[P]) Bytes() []byte { return a.done }

// Banned reports whether peer sent a whole dictionary that failed
// verification; Next never picks it again.
func (a *Assembler[P]) Banned(peer P) bool { return a.banned[peer] }

func (a *Assembler[P]) timeout() time.Duration {
	if a.Timeout <= 0 {
		return DefaultTimeout
	}
	return a.Timeout
}

// Next picks a piece to request from peer at time now and records the
// request; ok is false if there is nothing to ask this peer for now. Call
// it again after each answer rather than asking for every piece at once:
// requests older than Timeout count as lost.
//
// It prefers pieces nobody is asked for, then pieces whose latest request
// is older than Timeout (possibly asking the same peer again); it does not
// pick a piece the peer rejected less than Timeout ago and never picks for
// a banned peer. After a mismatch with several contributors only one peer
// at a time gets pieces, until it goes quiet for Timeout, rejects, or
// leaves.
func (a *Assembler[P]) Next(peer P, now time.Time) (pieceIndex int, ok bool) {
	if now.After(a.now) {
		a.now = now
	}
	if a.done != nil || a.banned[peer] {
		return 0, false
	}
	if a.single {
		if a.hasSource && a.source != peer {
			if now.Sub(a.sourceAt) < a.timeout() {
				return 0, false
			}
			a.discard() // the source went quiet: start over with peer
		}
		if !a.hasSource {
			if at, ok := a.noSource[peer]; ok && now.Sub(at) < a.timeout() {
				return 0, false
			}
			a.source, a.hasSource = peer, true
		}
	}
	stale := -1
	for i := range a.pieces {
		p := &a.pieces[i]
		if p.data != nil {
			continue
		}
		if at, ok := p.rejected[peer]; ok && now.Sub(at) < a.timeout() {
			continue
		}
		if len(p.requests) == 0 {
			return a.ask(i, peer, now), true
		}
		if stale < 0 && now.Sub(p.requests[len(p.requests)-1].at) >= a.timeout() {
			stale = i
		}
	}
	if stale >= 0 {
		a.pieces[stale].dropRequest(peer)
		return a.ask(stale, peer, now), true
	}
	return 0, false
}

func (a *Assembler[P]) ask(i int, peer P, now time.Time) int {
	p := &a.pieces[i]
	p.requests = append(p.requests, request[P]{peer, now})
	if a.single {
		a.sourceAt = now
	}
	return i
}

func (p *piece[P]) dropRequest(peer P) bool {
	for i, r := range p.requests {
		if r.peer == peer {
			p.requests = append(p.requests[:i], p.requests[i+1:]...)
			return true
		}
	}
	return false
}

// discard drops every received piece and request (keeping the record of
// rejections) and the current source.
func (a *Assembler[P]) discard() {
	for i := range a.pieces {
		a.pieces[i].data = nil
		a.pieces[i].requests = nil
	}
	a.have = 0
	var zero P
	a.source, a.hasSource = zero, false
}

// Reject records that peer rejected its request for piece i: the piece is
// free for others and not asked of this peer again for Timeout after the
// latest Next call (peers reject when busy, so the refusal is not held
// forever).
func (a *Assembler[P]) Reject(peer P, i int) {
	if a.done != nil || i < 0 || i >= len(a.pieces) {
		return
	}
	now := a.now
	p := &a.pieces[i]
	p.dropRequest(peer)
	if p.rejected == nil {
		p.rejected = map[P]time.Time{}
	}
	p.rejected[peer] = now
	if a.single && a.hasSource && a.source == peer {
		a.noSource[peer] = now
		a.discard()
	}
}

// PeerGone forgets peer's outstanding requests so their pieces go to
// others at once.
func (a *Assembler[P]) PeerGone(peer P) {
	if a.done != nil {
		return
	}
	for i := range a.pieces {
		a.pieces[i].dropRequest(peer)
	}
	if a.single && a.hasSource && a.source == peer {
		a.discard()
	}
}

// Add stores piece i of data received from peer. The piece must be
// outstanding from that peer; otherwise Add returns ErrUnrequested, which
// is also what a late answer gets after its piece was discarded (ignore
// the message; dropping the peer is not required). A piece of the wrong
// size or index gives ErrPieceSize (drop the peer). A piece already present
// is ignored. When the last piece arrives the dictionary is verified: done
// is true on success (see Bytes); on a mismatch Add returns a
// *HashMismatchError and starts over. data is copied.
func (a *Assembler[P]) Add(peer P, i int, data []byte) (done bool, err error) {
	if a.done != nil {
		return true, nil
	}
	if i < 0 || i >= len(a.pieces) {
		return false, fmt.Errorf("%w: piece %d of %d", ErrPieceSize, i, len(a.pieces))
	}
	if want := a.pieceLen(i); len(data) != want {
		return false, fmt.Errorf("%w: piece %d has %d bytes, want %d", ErrPieceSize, i, len(data), want)
	}
	p := &a.pieces[i]
	if !p.dropRequest(peer) {
		return false, fmt.Errorf("%w: piece %d", ErrUnrequested, i)
	}
	if p.data != nil {
		return false, nil
	}
	p.data = append([]byte(nil), data...)
	p.from = peer
	a.have++
	if a.have < len(a.pieces) {
		return false, nil
	}
	return a.verify()
}

func (a *Assembler[P]) verify() (bool, error) {
	buf := make([]byte, 0, a.size)
	for i := range a.pieces {
		buf = append(buf, a.pieces[i].data...)
	}
	if sha1.Sum(buf) == a.infoHash {
		a.done = buf
		a.pieces = nil
		return true, nil
	}
	var peers []P
	for i := range a.pieces {
		if from := a.pieces[i].from; !slices.Contains(peers, from) {
			peers = append(peers, from)
		}
	}
	err := &HashMismatchError[P]{Peers: peers, Guilty: len(peers) == 1}
	if err.Guilty {
		a.banned[peers[0]] = true
	} else {
		a.single = true
	}
	a.discard()
	return false, err
}

// Piece returns piece i of our info dictionary infoBytes, to answer a
// ut_metadata request, or an error wrapping ErrPieceSize if i is out of
// range (answer with a reject). The result aliases infoBytes.
func Piece(infoBytes []byte, i int) ([]byte, error) {
	n := NumPieces(len(infoBytes))
	if i < 0 || i >= n {
		return nil, fmt.Errorf("%w: piece %d of %d", ErrPieceSize, i, n)
	}
	return infoBytes[i*PieceSize : min(len(infoBytes), (i+1)*PieceSize)], nil
}
