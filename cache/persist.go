package cache

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/swarmfs/swarmfs/metainfo"
)

// The state file records which pieces are verified and on disk:
//
//	magic "SWFSSTAT" | version u32 | flags u32 | info hash [20] |
//	piece count u32 | piece length u64 | data file size u64 |
//	data mtime ns i64 | data ctime ns i64 | bitmap ceil(count/8) |
//	CRC-32C u32 of everything before it
//
// All integers are big-endian; bitmap bit 7 of byte 0 is piece 0. Flag bit 0
// (clean) says the store was closed cleanly and mtime/ctime are the data
// file's at that moment; a clean state whose times no longer match means the
// data file was changed behind our back. Flag bit 1 (files) marks the state
// of a Files layout store; between the bitmap and the CRC it then holds
//
//	dir length u32 | absolute data directory | stamp count u32 |
//	per file: size i64 | mtime ns i64 | ctime ns i64
//
// with one stamp per file of the torrent (size -1: missing) in a clean
// state and none in another (the files change while the store is open).
// Flag bit 2 (verify) says that pieces the bitmap does not claim were
// waiting for background verification when the state was written: the next
// Open verifies every such piece whose bytes may exist instead of taking it
// as absent.
const (
	stateMagic     = "SWFSSTAT"
	stateVersion   = 1
	stateHeaderLen = 8 + 4 + 4 + metainfo.HashSize + 4 + 8 + 8 + 8 + 8
	flagClean      = 1
	flagFiles      = 2
	flagVerify     = 4
	// maxStatePieces bounds the bitmap a state file may declare.
	maxStatePieces = 1 << 26
	// maxStateDir and maxStateFiles bound the Files layout's additions.
	maxStateDir   = 1 << 16
	maxStateFiles = 1 << 22
	stampLen      = 3 * 8
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

type state struct {
	infoHash    metainfo.Hash
	clean       bool
	pieceLength int64
	dataSize    int64
	mtime       int64
	ctime       int64
	present     []bool
	verify      bool    // unclaimed pieces await verification
	files       bool    // a Files layout's state
	dataDir     string  // files: the absolute data directory
	stamps      []stamp // files: one per file in a clean state, else none
}

func (st *state) matches(h metainfo.Hash, info *metainfo.Info) bool {
	return st.infoHash == h && len(st.present) == info.NumPieces() &&
		st.pieceLength == info.PieceLength && st.dataSize == info.TotalLength
}

func encodeState(st *state) []byte {
	n := len(st.present)
	b := make([]byte, 0, stateHeaderLen+(n+7)/8+4)
	b = append(b, stateMagic...)
	b = binary.BigEndian.AppendUint32(b, stateVersion)
	var flags uint32
	if st.clean {
		flags |= flagClean
	}
	if st.files {
		flags |= flagFiles
	}
	if st.verify {
		flags |= flagVerify
	}
	b = binary.BigEndian.AppendUint32(b, flags)
	b = append(b, st.infoHash[:]...)
	b = binary.BigEndian.AppendUint32(b, uint32(n))
	b = binary.BigEndian.AppendUint64(b, uint64(st.pieceLength))
	b = binary.BigEndian.AppendUint64(b, uint64(st.dataSize))
	b = binary.BigEndian.AppendUint64(b, uint64(st.mtime))
	b = binary.BigEndian.AppendUint64(b, uint64(st.ctime))
	bm := make([]byte, (n+7)/8)
	for i, ok := range st.present {
		if ok {
			bm[i/8] |= 0x80 >> (i % 8)
		}
	}
	b = append(b, bm...)
	if st.files {
		b = binary.BigEndian.AppendUint32(b, uint32(len(st.dataDir)))
		b = append(b, st.dataDir...)
		b = binary.BigEndian.AppendUint32(b, uint32(len(st.stamps)))
		for _, sp := range st.stamps {
			b = binary.BigEndian.AppendUint64(b, uint64(sp.size))
			b = binary.BigEndian.AppendUint64(b, uint64(sp.mtime))
			b = binary.BigEndian.AppendUint64(b, uint64(sp.ctime))
		}
	}
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

func decodeState(b []byte) (*state, error) {
	if len(b) < stateHeaderLen+4 {
		return nil, fmt.Errorf("%w: %d bytes is too short", ErrBadState, len(b))
	}
	if !bytes.Equal(b[:8], []byte(stateMagic)) {
		return nil, fmt.Errorf("%w: bad magic", ErrBadState)
	}
	body, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return nil, fmt.Errorf("%w: checksum mismatch", ErrBadState)
	}
	if v := binary.BigEndian.Uint32(b[8:]); v != stateVersion {
		return nil, fmt.Errorf("%w: version %d", ErrBadState, v)
	}
	st := &state{}
	flags := binary.BigEndian.Uint32(b[12:])
	if flags&^(flagClean|flagFiles|flagVerify) != 0 {
		return nil, fmt.Errorf("%w: unknown flags %#x", ErrBadState, flags)
	}
	st.clean = flags&flagClean != 0
	st.files = flags&flagFiles != 0
	st.verify = flags&flagVerify != 0
	copy(st.infoHash[:], b[16:36])
	n := binary.BigEndian.Uint32(b[36:])
	st.pieceLength = int64(binary.BigEndian.Uint64(b[40:]))
	st.dataSize = int64(binary.BigEndian.Uint64(b[48:]))
	st.mtime = int64(binary.BigEndian.Uint64(b[56:]))
	st.ctime = int64(binary.BigEndian.Uint64(b[64:]))
	if n > maxStatePieces {
		return nil, fmt.Errorf("%w: %d pieces", ErrBadState, n)
	}
	bm := body[stateHeaderLen:]
	if st.files {
		if len(bm) < (int(n)+7)/8 {
			return nil, fmt.Errorf("%w: bitmap of %d bytes for %d pieces", ErrBadState, len(bm), n)
		}
		var err error
		if st.dataDir, st.stamps, err = decodeFilesPart(bm[(n+7)/8:]); err != nil {
			return nil, err
		}
		bm = bm[:(n+7)/8]
	}
	if len(bm) != (int(n)+7)/8 {
		return nil, fmt.Errorf("%w: bitmap of %d bytes for %d pieces", ErrBadState, len(bm), n)
	}
	if st.pieceLength <= 0 || st.dataSize < 0 {
		return nil, fmt.Errorf("%w: bad geometry", ErrBadState)
	}
	st.present = make([]bool, n)
	for i := range st.present {
		st.present[i] = bm[i/8]&(0x80>>(i%8)) != 0
	}
	if n%8 != 0 && bm[len(bm)-1]&(0xff>>(n%8)) != 0 {
		return nil, fmt.Errorf("%w: spare bits set", ErrBadState)
	}
	return st, nil
}

// decodeFilesPart decodes a Files layout state's data directory and
// stamps.
func decodeFilesPart(b []byte) (string, []stamp, error) {
	if len(b) < 4 {
		return "", nil, fmt.Errorf("%w: no data directory", ErrBadState)
	}
	dl := binary.BigEndian.Uint32(b)
	b = b[4:]
	if dl > maxStateDir || uint32(len(b)) < dl+4 {
		return "", nil, fmt.Errorf("%w: data directory of %d bytes", ErrBadState, dl)
	}
	dir := string(b[:dl])
	b = b[dl:]
	ns := binary.BigEndian.Uint32(b)
	b = b[4:]
	if ns > maxStateFiles || uint64(len(b)) != uint64(ns)*stampLen {
		return "", nil, fmt.Errorf("%w: %d file stamps in %d bytes", ErrBadState, ns, len(b))
	}
	var stamps []stamp
	for i := range int(ns) {
		r := b[i*stampLen:]
		stamps = append(stamps, stamp{size: int64(binary.BigEndian.Uint64(r)),
			mtime: int64(binary.BigEndian.Uint64(r[8:])), ctime: int64(binary.BigEndian.Uint64(r[16:]))})
	}
	return dir, stamps, nil
}

func readState(path string) (*state, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, stateHeaderLen+maxStatePieces/8+8+maxStateDir+maxStateFiles*stampLen))
	if err != nil {
		return nil, err
	}
	return decodeState(b)
}

// writeState replaces the state file with WriteFileAtomic. When the
// filesystem has no room for the new file, it overwrites the old one in
// place instead (same length: the same torrent), which needs no new blocks,
// so that a full disk cannot stop the persists after which evicted pieces
// give their space back. A crash during that write can leave a state whose
// checksum fails; Open then re-verifies the data instead of trusting it.
func writeState(path string, st *state) error {
	b := encodeState(st)
	err := WriteFileAtomic(path, b, 0o600)
	if err != nil && (errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EDQUOT)) && overwrite(path, b) == nil {
		return nil
	}
	if err != nil {
		return &DiskError{Op: "write state", Dir: filepath.Dir(path), Piece: -1, Err: err}
	}
	return nil
}

// overwrite writes b over the file at path, which must be len(b) bytes
// long, and fsyncs it.
func overwrite(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.Size() != int64(len(b)) {
		return fmt.Errorf("cache: state file is %d bytes, want %d", fi.Size(), len(b))
	}
	if _, err := f.WriteAt(b, 0); err != nil {
		return err
	}
	return f.Sync()
}

// removeTemps removes the temporary files of writes of the state file at
// path that a crash interrupted.
func removeTemps(path string) {
	old, _ := filepath.Glob(filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".*"+tmpSuffix))
	for _, p := range old {
		os.Remove(p)
	}
}

// stateFor builds the state to write: present, whether pieces not in it
// await verification, and for a clean state the stamps of the data (one for
// the data file, one per file for Files).
func (s *Store) stateFor(present []bool, verify, clean bool, stamps []stamp) *state {
	st := &state{infoHash: s.infoHash, clean: clean, pieceLength: s.info.PieceLength,
		dataSize: s.info.TotalLength, present: present, verify: verify}
	if s.files != nil {
		st.files, st.dataDir = true, s.ioDir
		if clean {
			st.stamps = stamps
		}
	} else if len(stamps) == 1 {
		st.mtime, st.ctime = stamps[0].mtime, stamps[0].ctime
	}
	return st
}

// persistLoop writes the state file in the background, at most every
// SyncInterval, earlier once SyncPieces pieces changed.
func (s *Store) persistLoop() {
	defer s.bg.Done()
	var last time.Time
	for {
		select {
		case <-s.dirtyCh:
		case <-s.closeCh:
			return
		}
		if d := s.syncInterval - time.Since(last); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-s.fullCh:
			case <-s.closeCh:
				t.Stop()
				return
			}
			t.Stop()
		}
		if err := s.persist(); err != nil {
			s.log.Warn("cache: persist failed; will retry", "dir", s.dir, "err", err)
			select { // retry at the next interval
			case s.dirtyCh <- struct{}{}:
			default:
			}
		}
		last = time.Now()
	}
}

// persist makes the data file durable, then writes a state claiming the
// pieces that were present before that, then punches the holes of pieces
// evicted before the snapshot (the new state no longer claims them).
func (s *Store) persist() error {
	s.persisting.Lock()
	defer s.persisting.Unlock()
	return s.persistHeld(false)
}

// persistHeld is persist with s.persisting held. Pieces present at the
// snapshot are marked claimed before mu is released, so that none of them,
// evicted meanwhile, is rewritten while the new state may claim it. The
// fdatasync is skipped when every piece it claims is already synced. With
// retract (retractLocked) the state claims only synced pieces, so it never
// waits for an fdatasync; pieces verified since the last persist are left
// to the next regular one.
func (s *Store) persistHeld(retract bool) error {
	type pieceRef struct {
		p   int
		gen uint32
	}
	s.mu.Lock()
	present := make([]bool, len(s.pieces))
	var unsynced []pieceRef
	for i := range s.pieces {
		st := &s.pieces[i]
		if st.present && (!retract || st.life.synced) {
			present[i] = true
			st.life.claimed = true
			if !st.life.synced {
				unsynced = append(unsynced, pieceRef{i, st.life.evictGen})
			}
		}
	}
	verify := s.verifying || len(s.verifyQueue) > 0
	n, count := 0, 0
	if !retract {
		n, count = s.dirtyN, s.nPresent
		s.dirtyN = 0
	}
	var punches []pieceRef
	for _, p := range s.punchQueue {
		if st := &s.pieces[p]; st.life.pendingPunch {
			punches = append(punches, pieceRef{p, st.life.evictGen})
		}
	}
	s.punchQueue = s.punchQueue[:0]
	s.mu.Unlock()

	var err error
	if len(unsynced) > 0 {
		if err = s.data.sync(); err != nil {
			err = s.diskErr("sync data", -1, err)
		}
	}
	synced := err == nil
	if err == nil {
		err = writeState(s.statePath, s.stateFor(present, verify, false, nil))
	}
	s.mu.Lock()
	if synced {
		// Present since the snapshot and not evicted: the bytes the
		// fdatasync covered are still the piece's.
		for _, r := range unsynced {
			if st := &s.pieces[r.p]; st.present && st.life.evictGen == r.gen {
				st.life.synced = true
			}
		}
	}
	if err != nil {
		// The state on disk may be the old one or the new one: both
		// sets of claims stay.
		s.dirtyN += n
		for _, r := range punches {
			s.punchQueue = append(s.punchQueue, r.p)
		}
		s.mu.Unlock()
		return err
	}
	for i := range s.pieces {
		s.pieces[i].life.claimed = present[i]
	}
	if !retract {
		s.persisted = count
	}
	todo := punches[:0]
	for _, r := range punches {
		if st := &s.pieces[r.p]; st.life.pendingPunch && st.life.evictGen == r.gen && !st.present {
			st.life.pendingPunch = false
			st.busy.punching = true
			todo = append(todo, r)
		}
	}
	s.mu.Unlock()
	if len(todo) == 0 {
		return nil
	}
	for _, r := range todo {
		if err := s.punch(r.p); err != nil {
			s.log.Warn("cache: cannot return evicted space", "err", err)
		}
	}
	s.mu.Lock()
	for _, r := range todo {
		s.pieces[r.p].busy.punching = false
	}
	s.wakeBusyLocked()
	s.mu.Unlock()
	return nil
}

// retractLocked is called with mu held before bytes of piece, which is
// not present, may change: when a state on disk may still claim the piece
// (it was evicted since), it writes one that does not, releasing mu
// meanwhile, and returns with mu held. Callers check the piece again
// afterwards. An error (the state cannot be written) means the bytes must
// not change yet.
func (s *Store) retractLocked(piece int) error {
	if err := s.beginLocked(); err != nil {
		return err
	}
	s.mu.Unlock()
	s.persisting.Lock()
	s.mu.Lock()
	st := &s.pieces[piece]
	still := st.life.claimed && !st.present
	s.mu.Unlock()
	var err error
	if still {
		err = s.persistHeld(true)
	}
	s.persisting.Unlock()
	s.ops.Done()
	s.mu.Lock()
	return err
}

// persistClean runs at Close when nothing else uses the store: it persists,
// punches pending holes, and records the data file's times in a clean state.
func (s *Store) persistClean() error {
	s.mu.Lock()
	punches := false
	for _, p := range s.punchQueue {
		punches = punches || s.pieces[p].life.pendingPunch
	}
	s.mu.Unlock()
	if punches { // a state not claiming them must be on disk first
		if err := s.persist(); err != nil {
			return err
		}
	}
	if err := s.data.sync(); err != nil {
		return s.diskErr("sync data", -1, err)
	}
	stamps, err := s.data.stamps()
	if err != nil {
		return s.diskErr("stat data", -1, err)
	}
	s.mu.Lock()
	present := make([]bool, len(s.pieces))
	for i := range s.pieces {
		present[i] = s.pieces[i].present
	}
	verify := len(s.verifyQueue) > 0 // Close ended verification early
	s.mu.Unlock()
	return writeState(s.statePath, s.stateFor(present, verify, true, stamps))
}

// Sync persists the present set now and returns the space of evicted pieces
// to the filesystem, instead of waiting for the background persister.
func (s *Store) Sync() error {
	s.mu.Lock()
	if err := s.beginLocked(); err != nil {
		s.mu.Unlock()
		return err
	}
	s.mu.Unlock()
	defer s.ops.Done()
	return s.persist()
}

// Verifying reports whether background re-verification is still running.
func (s *Store) Verifying() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.verifying
}

// VerifyDone returns a channel closed when background re-verification has
// finished (at once when none was needed, or when the store closes), and
// the state claiming what it verified was written. With the Files layout a
// file changed while the store is open starts another round: VerifyDone
// then returns a new channel, closed when that round ends.
func (s *Store) VerifyDone() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.verifyDone
}
