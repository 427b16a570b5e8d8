package cache

import (
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// Layout says where a store keeps the torrent's bytes: DataFile (the
// default, also meant by a nil Layout) or Files.
type Layout interface {
	layout()
}

// DataFile is the layout of a store that keeps the torrent in one sparse
// file of the store's directory, addressed by torrent offset. Its verified
// pieces are charged to Config.Budget and may be evicted.
type DataFile struct{}

// Files is the layout of a store that keeps the torrent in its own files
// under Dir, as other clients lay them out: Dir/<name>/<path...> for a
// multi-file torrent, Dir/<name> for a single-file one. Pad files are never
// created. The user's files are never evicted nor punched: a Files store is
// not charged to Config.Budget (it is ignored), and unverified bytes of
// pieces that failed their hash stay in the files (under pieces that are
// not present) until good ones replace them.
type Files struct {
	// Dir is the data directory. A relative path is made absolute at Open.
	Dir string
	// Content, set instead of Dir, is where the torrent's content itself
	// is, whatever its name: the top directory of a multi-file torrent
	// (its files are Content/<path...>) or the one file of a single-file
	// torrent. It serves `seed PATH` of data whose name differs from the
	// torrent's.
	Content string
}

func (DataFile) layout() {}
func (Files) layout()    {}

// stamp is what a state records of one file of a store's data at a clean
// Close: its size and times, to tell at the next Open whether it was
// changed behind the store's back. missing marks a file that did not exist.
type stamp struct {
	size, mtime, ctime int64
}

func stampOf(st *unix.Stat_t) stamp {
	return stamp{size: st.Size, mtime: st.Mtim.Nano(), ctime: st.Ctim.Nano()}
}

// spanned is where a span's bytes lie: n bytes at off in the open file fd.
// ok is false when they lie in no file (a pad file's bytes). done, when not
// nil, must be called once the descriptor is no longer used.
type spanned struct {
	fd   uintptr
	off  int64
	n    int
	ok   bool
	done func()
}

// errShort is returned by storage reads that end before the bytes asked
// for: a file of the Files layout is shorter than its part of the torrent
// (never written that far, or truncated behind our back).
var errShort = fmt.Errorf("cache: file shorter than the torrent says: %w", io.ErrUnexpectedEOF)

// storage is where a store's bytes live, addressed by torrent offset. Its
// methods are safe for concurrent use; the store keeps writes to a piece
// from overlapping other I/O on that piece.
type storage interface {
	// readAt fills p from torrent offset off. A read that ends early
	// returns errShort (or io.EOF at the end of the data file).
	readAt(p []byte, off int64) (int, error)
	// writeAt writes p at torrent offset off.
	writeAt(p []byte, off int64) error
	// punch returns the space of [off, off+n) to the filesystem, or does
	// nothing when the layout never gives space back.
	punch(off, n int64) error
	// isHole reports whether [off, off+n) is known to hold no data (a
	// hole), so that verifying it needs no read.
	isHole(off, n int64) bool
	// sync makes every write so far durable (fdatasync).
	sync() error
	// stamps reports the size and times of the layout's files, in a
	// fixed order, for a clean state: the data file's now; with the Files
	// layout each file as the store last wrote or verified it.
	stamps() ([]stamp, error)
	// span returns where the bytes at torrent offset off lie in an open
	// file, and how many of the n asked for lie there contiguously
	// (fewer when the range crosses a file boundary).
	span(off int64, n int) (spanned, error)
	// close releases the files and the lock.
	close() error
}

// dataFile is the DataFile layout's storage: one sparse file, locked with
// flock while open.
type dataFile struct {
	f  *os.File
	fd int
}

func (d *dataFile) readAt(p []byte, off int64) (int, error) { return d.f.ReadAt(p, off) }

func (d *dataFile) writeAt(p []byte, off int64) error {
	_, err := d.f.WriteAt(p, off)
	return err
}

func (d *dataFile) punch(off, n int64) error {
	if n <= 0 {
		return nil
	}
	return unix.Fallocate(d.fd, unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, n)
}

func (d *dataFile) isHole(off, n int64) bool {
	data, err := unix.Seek(d.fd, off, unix.SEEK_DATA)
	return errors.Is(err, unix.ENXIO) || (err == nil && data >= off+n)
}

func (d *dataFile) sync() error { return unix.Fdatasync(d.fd) }

func (d *dataFile) stamps() ([]stamp, error) {
	var fst unix.Stat_t
	if err := unix.Fstat(d.fd, &fst); err != nil {
		return nil, err
	}
	return []stamp{stampOf(&fst)}, nil
}

func (d *dataFile) span(off int64, n int) (spanned, error) {
	return spanned{fd: uintptr(d.fd), off: off, n: n, ok: true}, nil
}

func (d *dataFile) close() error {
	unix.Flock(d.fd, unix.LOCK_UN)
	return d.f.Close()
}
