package metainfo

import (
	"crypto/sha1"
)

// The info hash is the SHA-1 of the info dictionary's bytes, which the
// loader only knows the end of once it has parsed them. For a large info
// dictionary (a long file list) an infoHasher hashes the bytes already
// parsed on another goroutine while the parse goes on, so that on a
// machine with a spare core the hash costs no time.

const (
	// hashAheadMin is the size of info dictionary from which it is hashed
	// beside the parse.
	hashAheadMin = 512 << 10
	// hashChunk is how many parsed bytes are handed to the hasher at once.
	hashChunk = 256 << 10
)

// infoHasher hashes data[start:end) in chunks on its own goroutine. The
// parse hands it the ends of chunks with feed; finish returns the sum.
// Exactly one of finish and abort must be called, from the goroutine that
// feeds it.
type infoHasher struct {
	sent int       // data up to here was handed over
	ends chan int  // ends of chunks to hash; closed by finish or abort
	sum  chan Hash // the sum, once ends is closed
}

// startHasher starts hashing data from start on a new goroutine.
func startHasher(data []byte, start int) *infoHasher {
	h := &infoHasher{sent: start, ends: make(chan int, 64), sum: make(chan Hash, 1)}
	go func() {
		s := sha1.New()
		from := start
		for end := range h.ends {
			s.Write(data[from:end])
			from = end
		}
		var out Hash
		s.Sum(out[:0])
		h.sum <- out
	}()
	return h
}

// progress tells the hasher that the bytes up to pos are parsed; it hands
// them over once they make a chunk.
func (h *infoHasher) progress(pos int) {
	if pos-h.sent >= hashChunk {
		h.ends <- pos // the hasher drains ends until it is closed
		h.sent = pos
	}
}

// finish hands over the bytes up to end, which ends the info dictionary,
// and returns their hash.
func (h *infoHasher) finish(end int) Hash {
	if end > h.sent {
		h.ends <- end
		h.sent = end
	}
	close(h.ends)
	return <-h.sum // the hasher sends once ends is closed and drained
}

// abort stops the hasher (the parse failed) and waits for it to end.
func (h *infoHasher) abort() {
	close(h.ends)
	<-h.sum
}
