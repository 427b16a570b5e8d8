package container

import (
	"cmp"
	"fmt"
	"slices"
)

// Matroska element IDs (with their length marker bits, as written).
const (
	idEBML         = 0x1A45DFA3
	idDocType      = 0x4282
	idSegment      = 0x18538067
	idSeekHead     = 0x114D9B74
	idSeek         = 0x4DBB
	idSeekID       = 0x53AB
	idSeekPosition = 0x53AC
	idInfo         = 0x1549A966
	idTracks       = 0x1654AE6B
	idCues         = 0x1C53BB6B
	idCluster      = 0x1F43B675
	idVoid         = 0xEC
	idCRC32        = 0xBF
)

const (
	// maxElements caps the top-level elements a walk visits before the
	// first Cluster.
	maxElements = 64
	// maxSeeks caps the SeekHead entries and the SeekHeads followed.
	maxSeeks  = 64
	maxHeads  = 4
	maxHeader = 4 << 10 // the largest EBML header accepted
)

// parseMatroska reads the EBML header, finds the Segment and walks its
// top-level elements up to the first Cluster, reading every SeekHead on
// the way (and those they point to). Start is the head up to the first
// Cluster plus cfg.Data and the top-level elements that the SeekHeads
// place elsewhere (a demuxer reads them at open), except Cues, which are
// Seek: demuxers read them at the first seek.
func parseMatroska(s *src, cfg Config) (Result, error) {
	res := Result{Format: Matroska}
	id, size, hl, err := ebmlAt(s, 0)
	if err != nil {
		return res, err
	}
	if id != idEBML || size < 0 || size > maxHeader {
		return res, fmt.Errorf("%w: EBML header of %d bytes", ErrMalformed, size)
	}
	body, err := s.read(hl, size)
	if err != nil {
		return res, err
	}
	for _, e := range ebmlChildren(body) {
		if e.id == idDocType && string(e.body) == "webm" {
			res.Format = WebM
		}
	}
	off := hl + size
	for n := 0; ; n++ { // the Segment, maybe after Void elements
		if id, size, hl, err = ebmlAt(s, off); err != nil {
			return res, err
		}
		if id == idSegment {
			break
		}
		if (id != idVoid && id != idCRC32) || size < 0 || n == maxElements {
			return res, fmt.Errorf("%w: element %#x at %d where a Segment should be", ErrMalformed, id, off)
		}
		off += hl + size
	}
	seg := off + hl
	segEnd := s.size
	if size >= 0 {
		segEnd = min(seg+size, s.size)
	}
	w := mkvWalk{s: s, seg: seg, segEnd: segEnd, heads: map[int64]bool{}}
	cluster, err := w.level1()
	if isNeed(err) {
		return res, err
	}
	res.Start = []Range{{0, cluster + min(cfg.Data, s.size)}}
	if err == nil {
		err = w.follow()
		if isNeed(err) {
			return res, err
		}
	}
	res.Start = append(res.Start, w.start...)
	res.Seek = w.seek
	return res, err
}

// mkvWalk is the state of a walk over a Segment.
type mkvWalk struct {
	s            *src
	seg, segEnd  int64          // the Segment's payload
	pos          []seekEntry    // from the SeekHeads, in the order read
	heads        map[int64]bool // SeekHeads read, by offset
	start, seek  []Range
	walkedBefore int64 // the walk from seg covered [seg, walkedBefore)
}

// seekEntry is a SeekHead entry: an element ID and its offset in the file.
type seekEntry struct {
	id  uint32
	pos int64
}

// level1 walks the Segment's top-level elements from its start to the
// first Cluster (or the end) and returns where the media data starts.
func (w *mkvWalk) level1() (int64, error) {
	off := w.seg
	for n := 0; off < w.segEnd; n++ {
		if n == maxElements {
			return off, fmt.Errorf("%w: more than %d elements before the first Cluster", ErrMalformed, maxElements)
		}
		id, size, hl, err := ebmlAt(w.s, off)
		if err != nil {
			return off, err
		}
		if id == idCluster {
			w.walkedBefore = off
			return off, nil
		}
		if size < 0 || size > w.segEnd-off-hl {
			return off, fmt.Errorf("%w: element %#x of %d bytes at %d", ErrMalformed, id, size, off)
		}
		switch id {
		case idSeekHead:
			if err := w.readSeekHead(off, hl, size); err != nil {
				return off, err
			}
		case idCues:
			w.seek = append(w.seek, Range{off, off + hl + size})
		}
		off += hl + size
	}
	w.walkedBefore = off
	return off, nil
}

// readSeekHead records the positions listed by the SeekHead at off.
func (w *mkvWalk) readSeekHead(off, hl, size int64) error {
	if w.heads[off] {
		return nil
	}
	if size > maxRead {
		return fmt.Errorf("%w: SeekHead of %d bytes", ErrMalformed, size)
	}
	body, err := w.s.read(off+hl, size)
	if err != nil {
		return err
	}
	w.heads[off] = true
	for _, e := range ebmlChildren(body) {
		if e.id != idSeek {
			continue
		}
		if len(w.pos) == maxSeeks {
			return fmt.Errorf("%w: more than %d SeekHead entries", ErrMalformed, maxSeeks)
		}
		var id uint32
		var pos int64 = -1
		for _, f := range ebmlChildren(e.body) {
			switch {
			case f.id == idSeekID && len(f.body) >= 1 && len(f.body) <= 4:
				id = uint32(beUint(f.body))
			case f.id == idSeekPosition && len(f.body) >= 1 && len(f.body) <= 8:
				if u := beUint(f.body); u < uint64(w.segEnd-w.seg) {
					pos = w.seg + int64(u)
				}
			}
		}
		if id != 0 && pos >= 0 {
			w.pos = append(w.pos, seekEntry{id, pos})
		}
	}
	return nil
}

// follow reads the headers of the elements the SeekHeads place after the
// walked part: Cues become Seek ranges, further SeekHeads are read (up to
// maxHeads in all), other elements (Tags, Chapters, Attachments, Tracks or
// Info at the end) become Start ranges.
func (w *mkvWalk) follow() error {
	done := map[int64]bool{}
	for round := 0; round < maxHeads; round++ {
		more := false
		// In file order, so that one read covers neighbours.
		entries := slices.SortedFunc(slices.Values(w.pos), func(a, b seekEntry) int { return cmp.Compare(a.pos, b.pos) })
		for _, e := range entries {
			id, p := e.id, e.pos
			if p < w.walkedBefore || done[p] || id == idCluster {
				continue
			}
			eid, size, hl, err := ebmlAt(w.s, p)
			if err != nil {
				return err
			}
			if eid != id || size < 0 || size > w.segEnd-p-hl {
				return fmt.Errorf("%w: SeekHead points to %#x at %d, found %#x", ErrMalformed, id, p, eid)
			}
			done[p] = true
			r := Range{p, p + hl + size}
			switch id {
			case idCues:
				w.seek = append(w.seek, r)
			case idSeekHead:
				if len(w.heads) < maxHeads && !w.heads[p] {
					if err := w.readSeekHead(p, hl, size); err != nil {
						return err
					}
					more = true
				}
			default:
				w.start = append(w.start, r)
			}
		}
		if !more {
			return nil
		}
	}
	return nil
}

// ebmlAt reads the header of the element at off: its ID, its payload size
// (-1 when unknown) and the header's length.
func ebmlAt(s *src, off int64) (id uint32, size, hl int64, err error) {
	rest := s.size - off
	if rest < 2 {
		return 0, 0, 0, fmt.Errorf("%w: no element header at %d", ErrMalformed, off)
	}
	h, err := s.read(off, min(12, rest))
	if err != nil {
		return 0, 0, 0, err
	}
	id, size, n, ok := ebmlHeader(h)
	if !ok {
		return 0, 0, 0, fmt.Errorf("%w: bad element header at %d", ErrMalformed, off)
	}
	return id, size, int64(n), nil
}

// ebmlHeader decodes an element header at the start of b: the ID (1 to 4
// bytes, marker kept), the size (1 to 8 bytes, -1 for unknown) and the
// header's length.
func ebmlHeader(b []byte) (id uint32, size int64, n int, ok bool) {
	il := vintLen(b)
	if il == 0 || il > 4 || len(b) < il {
		return 0, 0, 0, false
	}
	id = uint32(beUint(b[:il]))
	sl := vintLen(b[il:])
	if sl == 0 || len(b) < il+sl {
		return 0, 0, 0, false
	}
	v := beUint(b[il:il+sl]) &^ (1 << (7 * sl)) // drop the marker bit
	if v == 1<<(7*sl)-1 {
		return id, -1, il + sl, true // all ones: unknown size
	}
	if v > 1<<56 {
		return 0, 0, 0, false
	}
	return id, int64(v), il + sl, true
}

// vintLen returns the length of the EBML variable-size integer starting
// b, from its first byte's leading zeros, or 0 if there is none.
func vintLen(b []byte) int {
	if len(b) == 0 || b[0] == 0 {
		return 0
	}
	n := 1
	for m := byte(0x80); b[0]&m == 0; m >>= 1 {
		n++
	}
	return n
}

// beUint decodes up to 8 big-endian bytes.
func beUint(b []byte) uint64 {
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v
}

// ebmlElement is an element held in memory.
type ebmlElement struct {
	id   uint32
	body []byte
}

// ebmlChildren splits b into elements, stopping at the first that does not
// fit or has an unknown size, and at most maxSeeks+maxElements of them.
func ebmlChildren(b []byte) []ebmlElement {
	var out []ebmlElement
	for len(b) > 0 && len(out) < maxSeeks+maxElements {
		id, size, n, ok := ebmlHeader(b)
		if !ok || size < 0 || size > int64(len(b)-n) {
			break
		}
		out = append(out, ebmlElement{id, b[n : n+int(size)]})
		b = b[n+int(size):]
	}
	return out
}
