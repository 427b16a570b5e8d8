package cache

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/swarmfs/swarmfs/metainfo"
)

// openFiles opens a Files layout store: its state and lock files live in
// the store's directory, named after the data directory's (or content's)
// absolute path, so that one torrent may have stores in several places.
func (s *Store) openFiles(l Files) error {
	where, what := l.Dir, "dir"
	if l.Content != "" {
		where, what = l.Content, "content"
	}
	if (l.Dir == "") == (l.Content == "") {
		return errors.New("cache: Files layout needs either Dir or Content")
	}
	abs, err := filepath.Abs(where)
	if err != nil {
		return fmt.Errorf("cache: data directory: %w", err)
	}
	base := abs // holds what the store creates
	if l.Content != "" && s.info.SingleFile {
		base = filepath.Dir(abs)
	}
	if err := os.MkdirAll(base, 0o777); err != nil {
		return fmt.Errorf("cache: data directory: %w", err)
	}
	key := filesKey(what + "\x00" + abs)
	s.ioDir = abs
	if l.Content != "" {
		s.layout = Files{Content: abs}
	} else {
		s.layout = Files{Dir: abs}
	}
	s.statePath = filepath.Join(s.dir, key+".state")
	lock, err := lockFile(filepath.Join(s.dir, key+".lock"), os.O_RDWR|os.O_CREATE, abs)
	if err != nil {
		return err
	}
	var paths []string
	if l.Content != "" {
		paths = filePaths("", abs, s.info)
	} else {
		paths = filePaths(abs, "", s.info)
	}
	fl := newFileStore(base, paths, s.info, lock)
	fl.onChange = s.fileChanged
	s.data, s.files = fl, fl
	removeTemps(s.statePath)
	if err := s.loadFiles(fl); err != nil {
		fl.close()
		return err
	}
	return nil
}

// loadFiles decides which pieces of the files to trust. With a state that
// matches the torrent and the directory, it trusts the pieces the state
// claims except those of files changed behind the store's back: a missing
// file's pieces are absent; a file whose size or times differ from a clean
// state's stamps has all its pieces re-verified in the background, one
// shorter than the pieces claimed in it need (any state) its claimed
// pieces. A state with the verify flag (a verification was cut short) also
// has every piece it does not claim in the files that exist verified.
// Without such a state every piece of the files that exist is re-verified.
func (s *Store) loadFiles(fl *fileStore) error {
	info := s.info
	cur, err := fl.current()
	if err != nil {
		return fmt.Errorf("cache: data directory: %w", err)
	}
	st, stErr := readState(s.statePath)
	reason := ""
	switch {
	case stErr != nil:
		reason = stErr.Error()
	case !st.files || !st.matches(s.infoHash, info):
		reason = "state does not match the torrent"
	case st.dataDir != s.ioDir:
		reason = "state is of another data directory"
	}
	trusted := make([]bool, len(s.pieces))
	var verify []int
	if reason == "" {
		copy(trusted, st.present)
		suspect := make([]bool, len(s.pieces))
		gone := make([]bool, len(s.pieces))
		// Stamps exist only in a clean state: after a crash only the
		// sizes can tell.
		stamped := st.clean && len(st.stamps) == len(info.Files)
		for i, f := range info.Files {
			if f.Length == 0 {
				continue
			}
			first, end := info.FileSpan(f)
			c := cur[i]
			if c.size < 0 { // missing: its pieces are gone
				for p := first; p < end; p++ {
					gone[p] = true
				}
				continue
			}
			switch {
			case stamped && c != st.stamps[i]:
				// Changed behind our back: any piece of it may now
				// verify, or no longer.
				for p := first; p < end; p++ {
					suspect[p] = true
				}
			case c.size < claimedEnd(info, f, st.present):
				for p := first; p < end; p++ {
					suspect[p] = suspect[p] || trusted[p]
				}
			}
		}
		if st.verify { // a verification was cut short: finish it
			for p, ok := range inFiles(info, cur) {
				suspect[p] = suspect[p] || (ok && !st.present[p])
			}
		}
		for p := range trusted {
			switch {
			case gone[p]:
				trusted[p] = false
			case suspect[p]:
				trusted[p] = false
				verify = append(verify, p)
			}
		}
		if len(verify) > 0 {
			s.log.Info("cache: re-verifying pieces of files changed since the last run, or not verified yet",
				"dir", s.ioDir, "pieces", len(verify))
		}
	} else {
		for p, ok := range inFiles(info, cur) {
			if ok {
				verify = append(verify, p)
			}
		}
		if len(verify) > 0 {
			s.log.Info("cache: verifying the data directory", "dir", s.ioDir, "reason", reason, "pieces", len(verify))
		}
	}
	for p, ok := range trusted {
		if ok {
			s.markPresentLocked(p)
			s.pieces[p].life.claimed = true
			s.pieces[p].life.synced = true
		}
	}
	s.dirtyN = 0
	select {
	case <-s.dirtyCh:
	default:
	}
	select {
	case <-s.fullCh:
	default:
	}
	s.persisted = s.nPresent
	// The new state claims only what is trusted (not the pieces about
	// to be re-verified, so that a crash cannot bring their claims back)
	// and is not clean: from now on the files may change.
	if err := writeState(s.statePath, s.stateFor(trusted, len(verify) > 0, false, nil)); err != nil {
		return err
	}
	if err := fl.createEmpty(); err != nil {
		return s.diskErr("create empty files", -1, err)
	}
	if len(verify) == 0 {
		close(s.verifyDone)
		return nil
	}
	s.startVerify(verify)
	return nil
}

// inFiles returns which pieces touch a file that exists and is not empty
// (cur: the files' stamps, size -1 when missing): those whose bytes may be
// on disk.
func inFiles(info *metainfo.Info, cur []stamp) []bool {
	seen := make([]bool, info.NumPieces())
	for i, f := range info.Files {
		if f.Length == 0 || cur[i].size <= 0 {
			continue
		}
		first, end := info.FileSpan(f)
		for p := first; p < end; p++ {
			seen[p] = true
		}
	}
	return seen
}

// claimedEnd returns how long file f must be to hold its part of the
// pieces that present claims.
func claimedEnd(info *metainfo.Info, f metainfo.File, present []bool) int64 {
	first, end := info.FileSpan(f)
	for p := end - 1; p >= first; p-- {
		if present[p] {
			return min(info.PieceOffset(p)+info.PieceSize(p), f.Offset+f.Length) - f.Offset
		}
	}
	return 0
}

// fileChanged handles file i, found changed behind the store's back while
// it is open (files_stamp.go): its present pieces are dropped like evicted
// ones (reported through Evictions and TakeEvicted, no longer served nor
// claimed by the next persist), the file's slot takes its new stamp, and
// after Store.settle every piece of the file is re-verified from the file
// as it then is (those that match become present; a new VerifyDone channel
// says when). A change found while the file is still being changed starts
// another such round, so that the last one reads the file as it was left.
func (s *Store) fileChanged(i int) {
	f := s.info.Files[i]
	first, end := s.info.FileSpan(f)
	var all []int
	dropped := 0
	s.mu.Lock()
	for p := first; p < end; p++ {
		if s.pieces[p].present {
			s.unpresentLocked(p)
			dropped++
		}
		all = append(all, p)
	}
	s.mu.Unlock()
	if dropped > 0 {
		// The state on disk may still claim the dropped pieces, whose
		// bytes changed: replace it now, not at the next persist, so
		// that a crash cannot bring the claims back (retractLocked).
		s.persisting.Lock()
		if err := s.persistHeld(true); err != nil {
			s.log.Warn("cache: cannot write a state without the pieces of a changed file", "dir", s.dir, "err", err)
		}
		s.persisting.Unlock()
	}
	s.files.endChange(i)
	s.log.Warn("cache: a file changed behind the store's back; re-verifying its pieces",
		"file", s.files.paths[i], "dropped", dropped)
	s.mu.Lock()
	if !s.closed {
		// A write's mtime is set before its bytes are copied: give a
		// write in progress time to end before reading the file.
		s.verifyAt = time.Now().Add(s.settle)
		s.startVerify(all) // pieces being written are left to their writer
	}
	s.mu.Unlock()
}
