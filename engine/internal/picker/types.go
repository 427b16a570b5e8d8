package picker

import (
	"fmt"
	"time"
)

// DefaultBlockSize is the block size used when New is given zero: 16 KiB,
// the request size every BitTorrent client accepts.
const DefaultBlockSize = 16 * 1024

// MaxDuplicates is the number of peers a block may be outstanding at during
// endgame.
const MaxDuplicates = 3

// NowDuplicateAfter is how long a block of a Now piece must have been
// outstanding before endgame duplicates it while only readers' windows are
// wanted (see the package documentation), at a peer whose own time was not
// set with SetDuplicateAfter: a block that comes in its time would only
// arrive twice.
const NowDuplicateAfter = 500 * time.Millisecond

// randomFirst is the number of pieces we must have before Normal and
// HeadTail pieces are picked rarest first rather than at random.
const randomFirst = 4

// PeerID identifies a peer connection. The caller assigns it and must not
// reuse an ID before calling PeerGone for it.
type PeerID int

// Priority is the download priority of a piece. Higher values are fetched
// first.
type Priority int8

// Priority classes, lowest to highest.
const (
	// None means the piece is not wanted: it is never requested.
	None Priority = iota
	// Normal is background downloading (prefetch), rarest first.
	Normal
	// HeadTail is for pieces players read early (file heads and tails),
	// rarest first.
	HeadTail
	// Readahead is a reader's window ahead of its position, in order.
	Readahead
	// Now is the piece a reader is blocked on, in order.
	Now
)

// numPrio is the number of priority classes.
const numPrio = int(Now) + 1

// String returns the lower-case name of the priority.
func (p Priority) String() string {
	switch p {
	case None:
		return "none"
	case Normal:
		return "normal"
	case HeadTail:
		return "headtail"
	case Readahead:
		return "readahead"
	case Now:
		return "now"
	}
	return fmt.Sprintf("priority(%d)", int(p))
}

// Range gives the pieces First <= i < End the priority Prio.
type Range struct {
	First, End int
	Prio       Priority
}

// Request is one block: Length bytes at offset Begin of piece Piece. It maps
// one to one to a BitTorrent request, cancel, reject or piece message.
type Request struct {
	Piece, Begin, Length int
}

// PeerRequest is a request outstanding at a given peer.
type PeerRequest struct {
	Peer PeerID
	Request
}

// Receipt is the outcome of Received.
type Receipt struct {
	// Expected reports that the block was outstanding at this peer. A block
	// that arrives after a Cancel, Choked or TimedOut is not expected.
	Expected bool
	// New reports that we lacked the block: the engine should store it
	// (cache WriteBlock). When false the block is a duplicate, belongs to a
	// piece we already have or awaits verification, or the request does not
	// match the block geometry; the data should be dropped.
	New bool
	// PieceReady reports that this block completed its piece: every block
	// is now received and the engine should verify the piece, then call
	// PieceComplete or PieceFailed.
	PieceReady bool
	// Cancels lists other peers' outstanding requests for the same block
	// (endgame duplicates); the engine should send them Cancel. The picker
	// has already forgotten them.
	Cancels []PeerRequest
}
