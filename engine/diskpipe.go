package engine

import (
	"errors"
	"hash/maphash"
	"net/netip"
	"slices"
	"sync"

	"github.com/swarmfs/swarmfs/cache"
)

// Events posted by the disk workers.
type (
	blockWritten struct {
		piece, begin int
		sum          uint64 // blockSum of the block's bytes
		err          error
	}
	pieceHashed struct {
		piece int
		err   error
	}
)

// pieceStore is the part of the cache store the disk pipeline uses.
type pieceStore interface {
	WriteBlock(piece, begin int, data []byte) error
	FinishPiece(piece int) error
}

// diskWorkers runs the pipeline's goroutines: go starts one, post delivers
// its result to the loop (false when the torrent is closing).
type diskWorkers struct {
	goFunc func(func())
	post   func(ev any) bool
}

// diskPipe carries received blocks to the cache and verifies complete
// pieces: blocks in flight, a writer per piece, pieces ready to hash and
// being hashed, pieces with a failed write, and who sent each block of a
// piece with a checksum of its bytes (its origin). The loop feeds it
// (Received, Ready) and hands it the workers' events (Written, Hashed); it
// answers with a diskOutcome the loop applies. Used from the loop
// goroutine only; the disk I/O runs in workers.
//
// Fair blame: when a piece whose blocks came from several IPs fails its
// hash check, the origins of its blocks are kept (as a suspect). When the
// piece later verifies, each kept block whose checksum differs from the
// verified block's names its sender as a liar; nobody else is charged.
type diskPipe struct {
	st pieceStore
	w  diskWorkers

	writes map[int]int // piece -> block writes in flight
	// writers holds the goroutine writing each piece's blocks, in arrival
	// order, so the cache can hash them as they come.
	writers map[int]*pieceWriter
	writing int          // block writes in flight in all
	ready   map[int]bool // pieces with every block received, awaiting writes
	hashing map[int]bool // pieces being verified
	failed  map[int]bool // pieces with a failed block write
	// origins holds, per piece being received, who sent the block at
	// each offset and its checksum (once written).
	origins map[int]map[int]blockOrigin
	// suspects holds the origins of the failed tries of pieces that
	// several IPs sent, until the piece verifies (bounded).
	suspects map[int][]map[int]blockOrigin
}

// blockOrigin is who sent a block and a checksum of its bytes.
type blockOrigin struct {
	ip  netip.Addr
	sum uint64
}

// Bounds on the origins kept for fair blame: the pieces with failed
// tries, and the tries kept per piece.
const (
	maxSuspectPieces = 64
	maxSuspectTries  = 4
)

// blockSeed keys blockSum: a peer cannot craft a corrupt block with the
// checksum of the good one without knowing it.
var blockSeed = maphash.MakeSeed()

// blockSum is the checksum of a block kept for fair blame.
func blockSum(b []byte) uint64 { return maphash.Bytes(blockSeed, b) }

func newDiskPipe(st pieceStore, w diskWorkers) *diskPipe {
	return &diskPipe{
		st:       st,
		w:        w,
		writes:   make(map[int]int),
		writers:  make(map[int]*pieceWriter),
		ready:    make(map[int]bool),
		hashing:  make(map[int]bool),
		failed:   make(map[int]bool),
		origins:  make(map[int]map[int]blockOrigin),
		suspects: make(map[int][]map[int]blockOrigin),
	}
}

// maxWriting bounds the received blocks waiting for the disk (16 MiB):
// beyond it no new request is sent, so a slow disk slows the download
// instead of filling memory.
const maxWriting = 1024

// Full reports whether the blocks in flight reached maxWriting.
func (d *diskPipe) Full() bool { return d.writing >= maxWriting }

// outcomeKind is what became of a piece in the pipeline.
type outcomeKind uint8

const (
	outcomeNone       outcomeKind = iota // nothing decided yet
	outcomeVerified                      // the piece passed the hash check
	outcomeHashFailed                    // the piece failed the hash check: blame
	outcomeLost                          // a disk error: fetch again, no blame
)

// diskOutcome is what the loop must do after a pipeline step.
type diskOutcome struct {
	kind  outcomeKind
	piece int
	// from are the IPs that sent the piece's blocks (verified or failed).
	from []netip.Addr
	// liars are the IPs that sent blocks of failed tries of a piece that
	// now verified, which differ from the verified blocks.
	liars []netip.Addr
	// err is the error of verification (outcomeLost); a failed write
	// is reported by the loop when its event arrives.
	err error
	// unblocked is set when blocks in flight fell below maxWriting again:
	// requests held back may go out.
	unblocked bool
}

// Received queues a new block of piece from ip for its piece's writer.
// The pipeline owns data from here (it returns it to the pool).
func (d *diskPipe) Received(piece, begin int, data []byte, from netip.Addr) {
	o := d.origins[piece]
	if o == nil {
		o = make(map[int]blockOrigin)
		d.origins[piece] = o
	}
	o[begin] = blockOrigin{ip: from}
	d.writes[piece]++
	d.writing++
	d.writeBlock(piece, begin, data)
}

// Ready records that every block of piece was received and verifies it
// once its writes are done.
func (d *diskPipe) Ready(piece int) diskOutcome {
	d.ready[piece] = true
	return d.maybeHash(piece)
}

// Written takes a writer's report of one block written (or not: the
// piece is then lost once all its blocks are in).
func (d *diskPipe) Written(ev blockWritten) diskOutcome {
	unblocked := d.writing == maxWriting
	d.writing--
	d.writes[ev.piece]--
	if d.writes[ev.piece] <= 0 {
		delete(d.writes, ev.piece)
		delete(d.writers, ev.piece) // its goroutine is done with it
	}
	if ev.err != nil {
		d.failed[ev.piece] = true
	} else if bo, ok := d.origins[ev.piece][ev.begin]; ok {
		bo.sum = ev.sum
		d.origins[ev.piece][ev.begin] = bo
	}
	o := d.maybeHash(ev.piece)
	o.unblocked = unblocked
	return o
}

// maybeHash starts verifying a piece once all its blocks are written.
func (d *diskPipe) maybeHash(piece int) diskOutcome {
	if !d.ready[piece] || d.writes[piece] > 0 || d.hashing[piece] {
		return diskOutcome{}
	}
	delete(d.ready, piece)
	if d.failed[piece] {
		delete(d.failed, piece)
		delete(d.origins, piece)
		return diskOutcome{kind: outcomeLost, piece: piece} // the disk failed, not the peers
	}
	d.hashing[piece] = true
	st, w := d.st, d.w
	w.goFunc(func() {
		err := st.FinishPiece(piece)
		w.post(pieceHashed{piece: piece, err: err})
	})
	return diskOutcome{}
}

// Hashed takes a verifier's result.
func (d *diskPipe) Hashed(ev pieceHashed) diskOutcome {
	i := ev.piece
	delete(d.hashing, i)
	o := diskOutcome{piece: i}
	switch {
	case ev.err == nil:
		o.kind = outcomeVerified
	case errors.Is(ev.err, cache.ErrHashMismatch):
		o.kind = outcomeHashFailed
	default:
		o.kind, o.err = outcomeLost, ev.err // not the peers' fault
	}
	origins := d.origins[i]
	delete(d.origins, i)
	if o.kind == outcomeLost {
		return o
	}
	seen := make(map[netip.Addr]bool, 1)
	for _, bo := range origins {
		if !seen[bo.ip] {
			seen[bo.ip] = true
			o.from = append(o.from, bo.ip)
		}
	}
	switch o.kind {
	case outcomeVerified:
		o.liars = d.convict(i, origins)
	case outcomeHashFailed:
		tries, known := d.suspects[i]
		if len(o.from) > 1 && len(tries) < maxSuspectTries && (known || len(d.suspects) < maxSuspectPieces) {
			d.suspects[i] = append(tries, origins)
		}
	}
	return o
}

// convict compares the failed tries of piece i with its verified blocks
// and returns the IPs whose blocks differed, each once.
func (d *diskPipe) convict(i int, good map[int]blockOrigin) []netip.Addr {
	var liars []netip.Addr
	for _, try := range d.suspects[i] {
		for begin, bo := range try {
			if g, ok := good[begin]; ok && g.sum != bo.sum && !slices.Contains(liars, bo.ip) {
				liars = append(liars, bo.ip)
			}
		}
	}
	delete(d.suspects, i)
	return liars
}

// pieceWriter writes the received blocks of one piece to the cache one at
// a time, in the order they arrived. Blocks of a piece mostly arrive in
// order, and the cache hashes in-order blocks as they are written, while
// they are in the CPU cache; written concurrently they would race, break
// that order, and make FinishPiece read the piece back from disk.
type pieceWriter struct {
	mu      sync.Mutex
	queue   []queuedBlock
	running bool
}

type queuedBlock struct {
	begin int
	data  []byte
}

// writeBlock queues a block for its piece's writer goroutine, starting one
// when none runs. Each written block posts blockWritten.
func (d *diskPipe) writeBlock(piece, begin int, data []byte) {
	pw := d.writers[piece]
	if pw == nil {
		pw = &pieceWriter{}
		d.writers[piece] = pw
	}
	pw.mu.Lock()
	pw.queue = append(pw.queue, queuedBlock{begin, data})
	start := !pw.running
	pw.running = true
	pw.mu.Unlock()
	if !start {
		return
	}
	st, w := d.st, d.w
	w.goFunc(func() {
		for {
			pw.mu.Lock()
			b := pw.queue[0]
			pw.queue[0] = queuedBlock{}
			pw.queue = pw.queue[1:]
			pw.mu.Unlock()
			sum := blockSum(b.data)
			err := st.WriteBlock(piece, b.begin, b.data)
			putBlock(b.data) // the cache has copied it
			pw.mu.Lock()
			more := len(pw.queue) > 0
			pw.running = more
			pw.mu.Unlock()
			if !w.post(blockWritten{piece: piece, begin: b.begin, sum: sum, err: err}) || !more {
				return
			}
		}
	})
}
