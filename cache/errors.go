package cache

import (
	"errors"
	"fmt"
)

// ErrNotPresent is returned (wrapped, naming the piece) when a read touches a
// piece that has not been verified or was evicted.
var ErrNotPresent = errors.New("cache: piece not present")

// ErrClosed is returned by every method of a closed Store.
var ErrClosed = errors.New("cache: store closed")

// ErrHashMismatch is wrapped by *HashError when a piece's SHA-1 does not match
// the torrent's piece hash.
var ErrHashMismatch = errors.New("cache: piece hash mismatch")

// ErrIncomplete is returned by FinishPiece when not every block of the piece
// has been written.
var ErrIncomplete = errors.New("cache: piece incomplete")

// ErrRange is returned for a piece index, block offset or block length that
// does not fit the torrent's geometry, and for a block that is not aligned to
// BlockSize (except for the last block of a piece).
var ErrRange = errors.New("cache: piece or block out of range")

// ErrLocked is returned by Open when another Store (in this or another
// process) already has the same torrent open.
var ErrLocked = errors.New("cache: store already open")

// ErrBadState is wrapped by errors about a state file that cannot be trusted
// (bad magic, version, checksum or geometry). Open never returns it: an
// untrusted state only makes Open re-verify the data.
var ErrBadState = errors.New("cache: bad state file")

// HashError reports which piece failed verification. It wraps
// ErrHashMismatch, so errors.Is(err, ErrHashMismatch) holds.
type HashError struct {
	Piece int
}

// Error returns a message naming the piece.
func (e *HashError) Error() string {
	return fmt.Sprintf("cache: piece %d hash mismatch", e.Piece)
}

// Unwrap returns ErrHashMismatch.
func (e *HashError) Unwrap() error { return ErrHashMismatch }

// ErrBadMetadata is wrapped by SaveMetadata and LoadMetadata errors about
// info dictionary bytes that do not match their info hash or are too large.
var ErrBadMetadata = errors.New("cache: bad saved metadata")
