package cache

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Changes behind the store's back while it is open (Files layout). Each
// file has a slot that knows the file as the store last wrote or verified
// it: its stamp (size, mtime, ctime) and identity (device and inode), taken
// at Open from its path and again right after each of the store's own
// writes into it. Reads compare the open file with the slot right after
// reading (fstat: a change made before or during the read shows), and the
// path at most once a second per file (a file replaced by rename: the open
// descriptor still reads the old one, whose verified bytes did not
// change). Writes compare before writing, so that the stamp taken after
// their own write never absorbs someone else's change. A mismatch is
// handled once (beginChange .. endChange): the store drops the file's
// pieces, the slot takes the file's new stamp (and a replaced file's old
// descriptor is retired), and the dropped pieces are re-verified from the
// file as it now is.

// pathCheckEvery is how often a file's path is stat'ed to see a file
// replaced by rename.
const pathCheckEvery = time.Second

// fileID says which file a path names.
type fileID struct{ dev, ino uint64 }

// fileSlot is what the store knows of one file of the Files layout.
type fileSlot struct {
	// mu: writers hold it across their check, write and new stamp;
	// checks hold it for reading; a change is recorded under it.
	mu       sync.RWMutex
	known    stamp         // mu: the file as last written or verified (size -1: missing)
	id       fileID        // mu: which file that is (zero when missing)
	handling chan struct{} // mu: not nil while a change is handled; closed at its end
	gen      atomic.Uint64 // changes found so far
	pathAt   atomic.Int64  // unix ns of the last stat of the path
}

// statPath returns the stamp and identity of the file at path; a missing
// file has size -1 and a zero identity.
func statPath(path string) (stamp, fileID, error) {
	var st unix.Stat_t
	err := unix.Stat(path, &st)
	switch {
	case errors.Is(err, unix.ENOENT):
		return stamp{size: -1}, fileID{}, nil
	case err != nil:
		return stamp{}, fileID{}, &fs.PathError{Op: "stat", Path: path, Err: err}
	}
	return stampOf(&st), fileID{uint64(st.Dev), st.Ino}, nil
}

// create creates file i (and its directories) and records it as known,
// under the slot's lock so that no check sees the new file before. A file
// someone else made meanwhile is opened instead, not taken as the store's.
func (fl *fileStore) create(i int, perm os.FileMode) (f *os.File, created bool, err error) {
	path := fl.paths[i]
	if err := os.MkdirAll(filepath.Dir(path), 0o777); err != nil {
		return nil, false, err
	}
	sl := &fl.slots[i]
	sl.mu.Lock()
	defer sl.mu.Unlock()
	f, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, perm)
	if errors.Is(err, os.ErrExist) {
		f, err = os.OpenFile(path, os.O_RDWR, 0)
		return f, false, err
	}
	if err != nil {
		return nil, false, err
	}
	var st unix.Stat_t
	if unix.Fstat(int(f.Fd()), &st) == nil && sl.known.size < 0 {
		sl.known, sl.id = stampOf(&st), fileID{uint64(st.Dev), st.Ino}
	}
	return f, true, nil
}

// sameness is what comparing an open file with its slot found.
type sameness int

const (
	same    sameness = iota
	changed          // the file changed behind the store's back
	stale            // the handle was retired: its change was handled
)

// compareLocked compares file i, open as h (nil: it cannot be opened,
// being missing), with its slot, whose mu the caller holds.
func (fl *fileStore) compareLocked(i int, h *handle) sameness {
	sl := &fl.slots[i]
	if h == nil {
		if sl.known.size < 0 {
			return same
		}
		return changed
	}
	if h.retired.Load() {
		return stale
	}
	var st unix.Stat_t
	if unix.Fstat(int(h.f.Fd()), &st) != nil {
		return same // the I/O itself reports its errors
	}
	if (fileID{uint64(st.Dev), st.Ino}) != sl.id || stampOf(&st) != sl.known {
		return changed
	}
	now := time.Now().UnixNano()
	last := sl.pathAt.Load()
	if now-last < int64(pathCheckEvery) || !sl.pathAt.CompareAndSwap(last, now) {
		return same
	}
	_, id, err := statPath(fl.paths[i])
	if err != nil || id == sl.id {
		return same
	}
	return changed // replaced or removed
}

// check compares file i, open as h (nil: missing), with its slot after a
// read, and has a change handled before it returns.
func (fl *fileStore) check(i int, h *handle) {
	sl := &fl.slots[i]
	sl.mu.RLock()
	g := sl.gen.Load()
	r := fl.compareLocked(i, h)
	sl.mu.RUnlock()
	if r == changed {
		fl.change(i, g)
	}
}

// change has the change of file i found at generation g handled, unless
// it was already, and returns once it was.
func (fl *fileStore) change(i int, g uint64) {
	sl := &fl.slots[i]
	sl.mu.Lock()
	if ch := sl.handling; ch != nil {
		sl.mu.Unlock()
		<-ch // the handler takes no lock its callers hold
		return
	}
	if sl.gen.Load() != g { // handled since it was found
		sl.mu.Unlock()
		return
	}
	sl.gen.Add(1)
	sl.handling = make(chan struct{})
	sl.mu.Unlock()
	if fl.onChange != nil {
		fl.onChange(i)
	} else {
		fl.endChange(i)
	}
}

// endChange ends the handling of a change of file i: the slot takes the
// file at its path as it is now, and a handle to another file (the old
// one of a file replaced by rename) is retired. The caller has dropped the
// file's pieces first.
func (fl *fileStore) endChange(i int) {
	sl := &fl.slots[i]
	sl.mu.Lock()
	defer sl.mu.Unlock()
	sp, id, err := statPath(fl.paths[i])
	if err != nil {
		sp, id = stamp{size: -2}, fileID{} // unknown: compares unequal to anything
	}
	fl.fileMu.Lock()
	h := fl.open[i]
	fl.fileMu.Unlock()
	if h != nil {
		var st unix.Stat_t
		if unix.Fstat(int(h.f.Fd()), &st) != nil || (fileID{uint64(st.Dev), st.Ino}) != id {
			fl.retire(i)
		}
	}
	sl.known, sl.id = sp, id
	sl.pathAt.Store(time.Now().UnixNano())
	close(sl.handling)
	sl.handling = nil
}

// writeStamped writes p at offset off of file i, which it opens (creating
// it) as needed. It first has a change made behind the store's back
// handled, so that the stamp it takes after its own write absorbs none
// (after two changes in a row it writes anyway).
func (fl *fileStore) writeStamped(i int, p []byte, off int64) error {
	sl := &fl.slots[i]
	for try := 0; ; try++ {
		h, err := fl.acquire(i, true)
		if err != nil {
			return err
		}
		sl.mu.Lock()
		g := sl.gen.Load()
		if r := fl.compareLocked(i, h); r == same || (r == changed && try >= 2) {
			_, err := h.f.WriteAt(p, off)
			var st unix.Stat_t
			if unix.Fstat(int(h.f.Fd()), &st) == nil {
				sl.known, sl.id = stampOf(&st), fileID{uint64(st.Dev), st.Ino}
			}
			sl.mu.Unlock()
			fl.release(h)
			return err
		} else if r == changed {
			sl.mu.Unlock()
			fl.release(h)
			fl.change(i, g)
			continue
		}
		sl.mu.Unlock() // stale: open the path again
		fl.release(h)
	}
}

// stamps returns every file's stamp as the store last wrote or verified
// it, for a clean state: a file changed behind its back since keeps its
// old stamp, so that the next Open re-verifies it.
func (fl *fileStore) stamps() ([]stamp, error) {
	out := make([]stamp, len(fl.slots))
	for i := range fl.slots {
		sl := &fl.slots[i]
		sl.mu.RLock()
		out[i] = sl.known
		sl.mu.RUnlock()
	}
	return out, nil
}

// gens returns the sum of the change counts of the files that hold the
// torrent bytes [off, off+n): it differs after any of them changed.
func (fl *fileStore) gens(off, n int64) uint64 {
	var g uint64
	for _, pt := range fl.info.FileParts(off, n) {
		g += fl.slots[pt.File].gen.Load()
	}
	return g
}
