package picker

import (
	"math/bits"
	"math/rand/v2"
	"slices"
	"time"
)

// Picker tracks the block-level download state of one torrent and chooses
// requests. See the package documentation for the rules it follows. The zero
// value is not usable; call New.
type Picker struct {
	rng *rand.Rand

	numPieces int
	pieceLen  int   // length of every piece but the last
	lastLen   int   // length of the last piece
	blockSize int   // bytes per block
	bpp       int   // blocks in a full piece
	totalLen  int64 // torrent length

	have      []bool
	haveCount int
	prio      []Priority
	avail     []int32 // peers with the piece, seeds not counted
	seeds     int     // peers with every piece

	peers map[PeerID]*peerState
	plist []*peerState // peers that are not seeds, for per-piece updates

	def     Priority
	owners  map[int][]Range
	spent   []bool     // pieces only Readahead and Now ranges want (SetSpent); nil when none
	tmpPrio []Priority // scratch for priority sweeps

	// Rarest-first index of the missing Normal and HeadTail pieces.
	cls [numPrio]class
	pos []int32 // index of a piece inside its bucket, -1 if in none

	// Streaming order of the Now and Readahead pieces.
	stream      []int
	streamDirty bool
	stamp       []uint32
	stampGen    uint32

	dl     []*download // per piece; nil when no block was touched
	active []int       // pieces with a non-nil dl

	wanted     int // wanted pieces (priority > None) we lack
	freeWanted int // unrequested missing blocks of wanted available pieces

	pendingCancel []PeerRequest // requests for pieces we now have

	now int64 // the caller's clock (SetClock), in nanoseconds

	shares bool // SetShare gave some peer a weight: near pieces are split too
}

// peerState is what we know of one peer.
type peerState struct {
	id     PeerID
	seed   bool
	has    []uint64 // bitset of pieces; nil for a seed
	count  int      // pieces in has
	wanted int      // wanted pieces we lack that the peer has (not seeds)
	reqs   map[int]struct{}
	lidx   int  // index in plist, -1 for seeds
	parole bool // only whole pieces of its own (SetParole)
	// dupAfter is how long a block may be outstanding at this peer before
	// a Now piece's block is duplicated elsewhere (SetDuplicateAfter);
	// zero means NowDuplicateAfter.
	dupAfter int64
	// perReq is how long the peer takes to send one block at its rate
	// (SetQueueTime): a block requested behind k others is due k perReq
	// later than one at the head of its queue.
	perReq int64
	// share is the peer's weight when Now pieces are split (SetShare).
	share float64
}

// download is the block state of a piece being downloaded.
type download struct {
	blocks []block
	nfree  int    // blocks neither received nor requested
	nrecv  int    // blocks received
	aidx   int    // index in Picker.active
	owner  PeerID // the peer that requested a block of it last
	// alone is set while the piece is left to its owner alone: a peer on
	// parole started it, and no other peer may take its blocks.
	alone bool
}

// block is one block of a piece being downloaded.
type block struct {
	reqs  []PeerID // peers the block is outstanding at
	at    int64    // clock of its latest request (SetClock)
	ahead int32    // requests outstanding before it at the peer of its latest request
	recv  bool     // delivered (not yet verified)
	from  PeerID   // who delivered it, when recv
}

// New returns a Picker for a torrent of numPieces pieces of pieceLength
// bytes (the last piece holds the rest of totalLength) cut into blocks of
// blockSize bytes (0 means DefaultBlockSize; the last block of a piece may
// be shorter). We have no piece, every piece has priority None and the
// random source is seeded with a fixed value (see Seed). New panics if the
// geometry is inconsistent; metainfo validates it before.
func New(numPieces int, pieceLength, totalLength int64, blockSize int) *Picker {
	if blockSize <= 0 {
		blockSize = DefaultBlockSize
	}
	if numPieces < 0 || pieceLength <= 0 || totalLength < 0 ||
		int64(numPieces) != (totalLength+pieceLength-1)/pieceLength {
		panic("picker: inconsistent torrent geometry")
	}
	p := &Picker{
		rng:       rand.New(rand.NewPCG(0x5eed, 0x9e3779b97f4a7c15)),
		numPieces: numPieces,
		pieceLen:  int(pieceLength),
		blockSize: blockSize,
		bpp:       int((pieceLength + int64(blockSize) - 1) / int64(blockSize)),
		totalLen:  totalLength,
		have:      make([]bool, numPieces),
		prio:      make([]Priority, numPieces),
		avail:     make([]int32, numPieces),
		peers:     make(map[PeerID]*peerState),
		owners:    make(map[int][]Range),
		pos:       make([]int32, numPieces),
		dl:        make([]*download, numPieces),
	}
	if numPieces > 0 {
		p.lastLen = int(totalLength - int64(numPieces-1)*pieceLength)
	}
	for i := range p.pos {
		p.pos[i] = -1
	}
	return p
}

// Seed reseeds the random source used for tie-breaks and first pieces, for
// reproducible tests.
func (p *Picker) Seed(seed uint64) {
	p.rng = rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
}

// NumPieces returns the number of pieces of the torrent.
func (p *Picker) NumPieces() int { return p.numPieces }

// PieceSize returns the length in bytes of piece i, 0 if out of range.
func (p *Picker) PieceSize(i int) int {
	switch {
	case i < 0 || i >= p.numPieces:
		return 0
	case i == p.numPieces-1:
		return p.lastLen
	}
	return p.pieceLen
}

// numBlocks returns the number of blocks of piece i.
func (p *Picker) numBlocks(i int) int {
	return (p.PieceSize(i) + p.blockSize - 1) / p.blockSize
}

// blockLen returns the length of block b of piece i.
func (p *Picker) blockLen(i, b int) int {
	return min(p.blockSize, p.PieceSize(i)-b*p.blockSize)
}

// request returns the Request for block b of piece i.
func (p *Picker) request(i, b int) Request {
	return Request{Piece: i, Begin: b * p.blockSize, Length: p.blockLen(i, b)}
}

// blockOf maps a request to its piece and block, checking the geometry.
func (p *Picker) blockOf(r Request) (i, b int, ok bool) {
	if r.Piece < 0 || r.Piece >= p.numPieces || r.Begin < 0 || r.Begin%p.blockSize != 0 {
		return 0, 0, false
	}
	b = r.Begin / p.blockSize
	if b >= p.numBlocks(r.Piece) || r.Length != p.blockLen(r.Piece, b) {
		return 0, 0, false
	}
	return r.Piece, b, true
}

// blockID returns the torrent-wide index of block b of piece i.
func (p *Picker) blockID(i, b int) int { return i*p.bpp + b }

// wantedP reports whether piece i is wanted and missing.
func (p *Picker) wantedP(i int) bool { return p.prio[i] > None && !p.have[i] }

// counted reports whether the free blocks of piece i count toward
// freeWanted: wanted, missing and available from some peer.
func (p *Picker) counted(i int) bool {
	return p.wantedP(i) && (p.avail[i] > 0 || p.seeds > 0)
}

// free returns the unrequested missing blocks of piece i.
func (p *Picker) free(i int) int {
	if p.have[i] {
		return 0
	}
	if d := p.dl[i]; d != nil {
		return d.nfree
	}
	return p.numBlocks(i)
}

// adjustFree changes the free block count of a downloading piece.
func (p *Picker) adjustFree(i, delta int) {
	p.dl[i].nfree += delta
	if p.counted(i) {
		p.freeWanted += delta
	}
}

// detach removes piece i from every derived sum and index before its
// priority, our have flag or its availability changes; attach adds it back
// after. interest also updates the per-peer wanted counts, which only
// priority and have changes affect.
func (p *Picker) detach(i int, interest bool) {
	p.unindex(i)
	if p.counted(i) {
		p.freeWanted -= p.free(i)
	}
	if interest && p.wantedP(i) {
		p.wanted--
		p.peersWanted(i, -1)
	}
}

// attach is the counterpart of detach.
func (p *Picker) attach(i int, interest bool) {
	p.index(i)
	if p.counted(i) {
		p.freeWanted += p.free(i)
	}
	if interest && p.wantedP(i) {
		p.wanted++
		p.peersWanted(i, +1)
	}
}

// peersWanted adds d to the wanted count of every non-seed peer with piece i.
func (p *Picker) peersWanted(i, d int) {
	w, m := i>>6, uint64(1)<<(i&63)
	for _, ps := range p.plist {
		if ps.has[w]&m != 0 {
			ps.wanted += d
		}
	}
}

// recountFree recomputes freeWanted, after the number of seeds went from or
// to zero (which changes which pieces are available).
func (p *Picker) recountFree() {
	p.freeWanted = 0
	for i := range p.numPieces {
		if p.counted(i) {
			p.freeWanted += p.free(i)
		}
	}
}

// startDownload returns the block state of piece i, creating it.
func (p *Picker) startDownload(i int) *download {
	if d := p.dl[i]; d != nil {
		return d
	}
	n := p.numBlocks(i)
	d := &download{blocks: make([]block, n), nfree: n, aidx: len(p.active)}
	p.dl[i] = d
	p.active = append(p.active, i)
	return d
}

// dropDownload forgets the block state of piece i. Requests still
// outstanding for it move to pendingCancel.
func (p *Picker) dropDownload(i int) {
	d := p.dl[i]
	if d == nil {
		return
	}
	for b := range d.blocks {
		for _, q := range d.blocks[b].reqs {
			if ps := p.peers[q]; ps != nil {
				delete(ps.reqs, p.blockID(i, b))
			}
			p.pendingCancel = append(p.pendingCancel, PeerRequest{q, p.request(i, b)})
		}
	}
	last := p.active[len(p.active)-1]
	p.active[d.aidx] = last
	p.dl[last].aidx = d.aidx
	p.active = p.active[:len(p.active)-1]
	p.dl[i] = nil
}

// SetHave records that we have piece i (true: verified and stored) or lost it
// (false: evicted, so it may be fetched again). Out of range indices are
// ignored. Requests still outstanding for a piece we now have are reported
// by CancelUnwanted.
func (p *Picker) SetHave(i int, have bool) {
	if i < 0 || i >= p.numPieces || p.have[i] == have {
		return
	}
	p.detach(i, true)
	p.have[i] = have
	if have {
		p.haveCount++
		p.dropDownload(i)
	} else {
		p.haveCount--
	}
	p.attach(i, true)
}

// Have reports whether we have piece i.
func (p *Picker) Have(i int) bool { return i >= 0 && i < p.numPieces && p.have[i] }

// HaveCount returns the number of pieces we have.
func (p *Picker) HaveCount() int { return p.haveCount }

// Missing returns the number of wanted pieces (priority above None) that we
// do not have.
func (p *Picker) Missing() int { return p.wanted }

// Done reports whether every wanted piece is here (Missing() == 0).
func (p *Picker) Done() bool { return p.wanted == 0 }

// SetClock tells the picker the time, for the requests made after it. The
// picker never reads the clock itself; without SetClock every request is
// made at time zero.
func (p *Picker) SetClock(now time.Time) { p.now = now.UnixNano() }

// Endgame reports whether every missing block of every wanted piece that
// some peer has is requested, so Pick may duplicate requests.
func (p *Picker) Endgame() bool { return p.freeWanted == 0 && p.wanted > 0 }

// Interesting reports whether peer has a piece we lack whose priority is
// above None.
func (p *Picker) Interesting(peer PeerID) bool {
	ps := p.peers[peer]
	if ps == nil {
		return false
	}
	if ps.seed {
		return p.wanted > 0
	}
	return ps.wanted > 0
}

// Outstanding returns the number of requests outstanding at peer.
func (p *Picker) Outstanding(peer PeerID) int {
	if ps := p.peers[peer]; ps != nil {
		return len(ps.reqs)
	}
	return 0
}

// Requests returns the requests outstanding at peer, in piece and offset
// order.
func (p *Picker) Requests(peer PeerID) []Request {
	ps := p.peers[peer]
	if ps == nil {
		return nil
	}
	return p.requestsOf(ps)
}

// requestsOf lists a peer's outstanding requests in block order.
func (p *Picker) requestsOf(ps *peerState) []Request {
	ids := make([]int, 0, len(ps.reqs))
	for id := range ps.reqs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	out := make([]Request, len(ids))
	for k, id := range ids {
		out[k] = p.request(id/p.bpp, id%p.bpp)
	}
	return out
}

// hasBit reports whether bit i is set.
func hasBit(set []uint64, i int) bool { return set[i>>6]&(1<<(i&63)) != 0 }

// popcount counts the set bits.
func popcount(set []uint64) int {
	n := 0
	for _, w := range set {
		n += bits.OnesCount64(w)
	}
	return n
}
