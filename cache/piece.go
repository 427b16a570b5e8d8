package cache

import "hash"

// pieceState is what a Store knows about one piece, guarded by Store.mu. Its
// parts are the piece's lifecycle (present, eviction, holds), the flags that
// keep whole-piece operations from overlapping, the staged blocks, the hash
// of the blocks received in order, and the write buffer.
type pieceState struct {
	present bool
	life    pieceLife
	busy    pieceBusy
	blocks  blockSet
	hash    pieceHash
	buf     pieceBuf
}

// pieceLife is a piece's eviction and hold state.
type pieceLife struct {
	pendingPunch bool // evicted; hole punched after the next state write
	// claimed: the state on disk, or one being written, may claim the
	// piece. While it is set and the piece is not present, its bytes must
	// not change (retractLocked).
	claimed bool
	// synced: present, and its bytes were in the data file when an
	// fdatasync began, so a state may claim it without another one.
	synced        bool
	listedEvicted bool   // in the list TakeEvicted returns next
	evictGen      uint32 // counts evictions, so a queued punch can tell it is stale
	readers       int32  // reads in flight
	pins          int32
	lastWrite     uint64 // the budget's write clock at the piece's last WriteBlock
}

// pieceBusy serializes the operations on one piece that must not overlap.
// A write waits while finishing, punching or flushing is set; a claim waits
// for those and for writers to reach zero.
type pieceBusy struct {
	finishing bool  // being hashed or written whole; block writes wait
	punching  bool  // hole being punched; writes wait
	flushing  bool  // buffered bytes being written to the file; writes and claims wait
	writers   int32 // WriteBlock calls in flight
}

// idle reports whether no whole-piece operation or flush is in flight.
func (b *pieceBusy) idle() bool { return !b.finishing && !b.punching && !b.flushing }

// blockSet records which blocks of a piece are staged (written, not yet
// verified) and how many WriteBlock calls are in flight per block. The zero
// value is an empty set that has not been sized yet.
type blockSet struct {
	bits     []uint64 // staged blocks; nil when the set was never used
	n        int      // number of bits set
	inflight []uint16 // WriteBlock calls in flight per block
	acct     *stagedAcct
}

// stagedAcct counts the staged blocks of a store and charges them, as
// BlockSize bytes each, to its budget.
type stagedAcct struct {
	blocks int64
	budget *Budget
}

func (a *stagedAcct) change(d int) {
	a.blocks += int64(d)
	if a.budget != nil {
		a.budget.staged.Add(int64(d) * BlockSize)
	}
}

// used reports whether the set has been sized (some block was written since
// the piece was last finished or discarded).
func (bs *blockSet) used() bool { return bs.bits != nil }

// size makes room for nb blocks when the set is unused; staged blocks are
// counted in acct.
func (bs *blockSet) size(nb int, acct *stagedAcct) {
	if bs.bits == nil {
		bs.bits, bs.inflight = make([]uint64, (nb+63)/64), make([]uint16, nb)
		bs.acct = acct
	}
}

// has reports whether block b is staged.
func (bs *blockSet) has(b int) bool { return bs.bits[b/64]&(1<<(b%64)) != 0 }

// add marks block b staged.
func (bs *blockSet) add(b int) {
	if !bs.has(b) {
		bs.bits[b/64] |= 1 << (b % 64)
		bs.n++
		bs.acct.change(1)
	}
}

// anyInflight reports whether a write of a block in [b0, b1) is in flight.
func (bs *blockSet) anyInflight(b0, b1 int) bool {
	for b := b0; b < b1; b++ {
		if bs.inflight[b] > 0 {
			return true
		}
	}
	return false
}

// begin and end count a write of blocks [b0, b1) in flight.
func (bs *blockSet) begin(b0, b1 int) {
	for b := b0; b < b1; b++ {
		bs.inflight[b]++
	}
}

func (bs *blockSet) end(b0, b1 int) {
	for b := b0; b < b1; b++ {
		bs.inflight[b]--
	}
}

// unstage marks the blocks that cover piece bytes [from, to) not staged.
func (bs *blockSet) unstage(from, to int64) {
	if bs.bits == nil {
		return
	}
	for b := int(from / BlockSize); b < int((to+BlockSize-1)/BlockSize); b++ {
		if bs.has(b) {
			bs.bits[b/64] &^= 1 << (b % 64)
			bs.n--
			bs.acct.change(-1)
		}
	}
}

// reset forgets every staged block.
func (bs *blockSet) reset() {
	if bs.n > 0 {
		bs.acct.change(-bs.n)
	}
	*bs = blockSet{}
}

// pieceHash is the SHA-1 of a piece's blocks received in order, so that
// FinishPiece reads back only what was not hashed on arrival.
type pieceHash struct {
	h       hash.Hash // SHA-1 of the piece's first n bytes; nil when none
	n       int64     // bytes hashed
	feeding int64     // length of the block a WriteBlock is adding right now
	fedAt   uint64    // Store.feeds at the piece's last block in order
}

// reset drops the hashed prefix (not feeding or fedAt).
func (ph *pieceHash) reset() { ph.h, ph.n = nil, 0 }

// pieceBuf is a piece's write buffer (nil when none): staged blocks that
// have not reached the data file yet, the piece's bytes [off, off+n), always
// the end of the hashed prefix, so it is empty or nil whenever the hash is
// nil (except while flushing). Outside Store.mu its bytes are used only by
// the WriteBlock feeding the hasher, the one that set flushing, or the
// holder of a finishing claim. A buffer reclaimed from an idle piece
// (wbuf.go) moves to the piece that took it at once, and its old bytes go
// out first, from the new piece's WriteBlock.
type pieceBuf struct {
	b   *[]byte
	off int64
	n   int
}

// bytes returns the buffered bytes.
func (pb *pieceBuf) bytes() []byte { return (*pb.b)[:pb.n] }
