package cache

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"syscall"
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

// ErrNoSpace is matched (errors.Is) by a *DiskError whose cause is a full
// filesystem or quota (ENOSPC, EDQUOT).
var ErrNoSpace = errors.New("cache: no space left on device")

// DiskError is a failed read, write, sync or hole punch of a store's files:
// which operation, in which store directory, on which piece (-1 when it
// concerns none). It wraps the system error, so errors.Is(err,
// syscall.ENOSPC) and errors.Is(err, syscall.EIO) work, and it matches
// ErrNoSpace when the filesystem is full. Pieces already present are never
// affected by one, and the store keeps working: the same operation succeeds
// once the cause is gone (space is freed).
type DiskError struct {
	Op    string // what failed, e.g. "write piece 3 block at 16384"
	Dir   string // the store's directory
	Piece int    // the piece concerned, or -1
	Err   error  // the cause, usually a syscall.Errno
}

// Error returns a message naming the operation, the directory and the cause.
func (e *DiskError) Error() string {
	return fmt.Sprintf("cache: %s in %s: %v", e.Op, e.Dir, e.Err)
}

// Unwrap returns the cause.
func (e *DiskError) Unwrap() error { return e.Err }

// Is reports whether target is ErrNoSpace and the cause is ENOSPC or EDQUOT.
func (e *DiskError) Is(target error) bool {
	return target == ErrNoSpace && (errors.Is(e.Err, syscall.ENOSPC) || errors.Is(e.Err, syscall.EDQUOT))
}

// diskErr wraps the error of a disk operation on the store's data. The path
// of a *fs.PathError directly in the data directory is dropped: the
// DiskError names the directory (a file of the Files layout deeper down
// stays named).
func (s *Store) diskErr(op string, piece int, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) && filepath.Dir(pe.Path) == s.ioDir {
		err = pe.Err
	}
	return &DiskError{Op: op, Dir: s.ioDir, Piece: piece, Err: err}
}
