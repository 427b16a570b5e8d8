package cache

// Write buffers: a store lends at most Config.WriteBuffers of them to the
// pieces whose blocks arrive in order (see WriteBlock). A piece keeps its
// buffer until it is finished or discarded, or until the buffer is
// reclaimed for another piece because the piece stopped receiving blocks.

// reclaimIdle says when a piece is idle enough to lose its write buffer to
// another piece: once the store has received reclaimIdle × WriteBuffers
// blocks in order since the piece's last one. A piece left half-written
// (a reader seeked away) thus loses its buffer soon, while pieces still
// being downloaded, when more are in progress than there are buffers, keep
// theirs instead of passing them round with a write of a block or two at
// each pass, which would cost more writes than no buffering.
const reclaimIdle = 2

// reclaim is a write buffer taken from an idle piece while it still held
// staged bytes of that piece: [off, off+len(data)) of piece. The piece is
// marked flushing until the bytes are written to the data file, which must
// happen before anything else goes into the buffer.
type reclaim struct {
	piece int
	off   int64
	data  []byte
	err   error // the write's error
}

// takeWbufLocked gives piece a write buffer starting at the end of its
// hashed prefix: a free one while fewer than Config.WriteBuffers are lent,
// else the buffer of the idle piece fed least recently (idleWbufLocked),
// else none. When the buffer it takes holds another piece's bytes, it
// returns them; the caller writes them out with writeReclaimed before it
// puts anything in the buffer and then calls reclaimDoneLocked.
func (s *Store) takeWbufLocked(piece int) reclaim {
	st := &s.pieces[piece]
	var rc reclaim
	if len(s.wbufHeld) < s.maxWbufs {
		st.buf.b = wbufPool.Get().(*[]byte)
		s.wbufHeld = append(s.wbufHeld, piece)
	} else {
		i := s.idleWbufLocked()
		if i < 0 {
			return rc
		}
		vp := s.wbufHeld[i]
		v := &s.pieces[vp]
		if v.buf.n > 0 {
			rc = reclaim{piece: vp, off: v.buf.off, data: v.buf.bytes()}
			v.busy.flushing = true
		}
		st.buf.b = v.buf.b
		v.buf = pieceBuf{}
		s.wbufHeld[i] = piece
	}
	st.buf.off, st.buf.n = st.hash.n, 0
	return rc
}

// idleWbufLocked returns the index in s.wbufHeld of the buffer to reclaim:
// that of the piece fed least recently among the idle pieces (see
// reclaimIdle) whose buffer nobody is using (no block being added, no
// flush, no finishing claim). It returns -1 when there is none.
func (s *Store) idleWbufLocked() int {
	best := -1
	var bestAt uint64
	for i, p := range s.wbufHeld {
		v := &s.pieces[p]
		if v.hash.feeding > 0 || !v.busy.idle() ||
			s.feeds-v.hash.fedAt < uint64(reclaimIdle*s.maxWbufs) {
			continue
		}
		if best < 0 || v.hash.fedAt < bestAt {
			best, bestAt = i, v.hash.fedAt
		}
	}
	return best
}

// writeReclaimed writes the bytes of a reclaimed buffer to their place in
// the data file, where they sit as staged bytes like those written there
// directly. It runs without the lock.
func (s *Store) writeReclaimed(rc *reclaim) {
	if s.reclaimHook != nil {
		s.reclaimHook(rc.piece)
	}
	rc.err = s.data.writeAt(rc.data, s.info.PieceOffset(rc.piece)+rc.off)
}

// reclaimDoneLocked ends the flush of a reclaimed buffer. When the write
// failed, the blocks it held are no longer staged (FinishPiece then reports
// ErrIncomplete until they are written again), and the piece's hashed
// prefix, which covered them, is dropped.
func (s *Store) reclaimDoneLocked(rc *reclaim) {
	v := &s.pieces[rc.piece]
	v.busy.flushing = false
	if rc.err != nil {
		v.blocks.unstage(rc.off, rc.off+int64(len(rc.data)))
		v.hash.reset()
	}
}

// dropWbufLocked returns piece's write buffer, if any, and forgets its
// bytes.
func (s *Store) dropWbufLocked(piece int) {
	st := &s.pieces[piece]
	if st.buf.b == nil {
		return
	}
	wbufPool.Put(st.buf.b)
	st.buf = pieceBuf{}
	for i, p := range s.wbufHeld {
		if p == piece {
			last := len(s.wbufHeld) - 1
			s.wbufHeld[i] = s.wbufHeld[last]
			s.wbufHeld = s.wbufHeld[:last]
			break
		}
	}
}

// feed appends data to buf, a piece's write buffer holding the piece's
// bytes from bufOff on, and writes the buffer to the data file (piece at
// offset at, size bytes long) whenever it is full and more of the piece
// follows. It returns the buffer's new contents and offset.
func (s *Store) feed(at, size int64, buf []byte, bufOff int64, data []byte) ([]byte, int64, error) {
	if len(buf)+len(data) > cap(buf) && len(buf) > 0 { // a long block: rare
		if err := s.data.writeAt(buf, at+bufOff); err != nil {
			return buf, bufOff, err
		}
		buf, bufOff = buf[:0], bufOff+int64(len(buf))
	}
	if len(data) > cap(buf) {
		err := s.data.writeAt(data, at+bufOff)
		return buf, bufOff + int64(len(data)), err
	}
	n := len(buf)
	buf = buf[:n+len(data)]
	copy(buf[n:], data)
	if len(buf) == cap(buf) && bufOff+int64(len(buf)) < size {
		if err := s.data.writeAt(buf, at+bufOff); err != nil {
			return buf, bufOff, err
		}
		buf, bufOff = buf[:0], bufOff+int64(len(buf))
	}
	return buf, bufOff, nil
}
