package container

import (
	"fmt"
)

// maxChunks caps the chunks an AVI walk visits at the top level and in the
// header list.
const maxChunks = 64

// parseAVI walks the chunks of the first RIFF 'AVI ' list: the hdrl list
// (whose OpenDML super indexes point to index chunks anywhere in the file),
// the movi list (the media data) and idx1 (the legacy index). Start is the
// head up to the first media data plus cfg.Data, idx1 and the OpenDML
// index chunks: a demuxer reads all of them at open.
func parseAVI(s *src, cfg Config) (Result, error) {
	res := Result{Format: AVI}
	h, err := s.read(0, 12)
	if err != nil {
		return res, err
	}
	riffEnd := min(8+int64(le32(h[4:8])), s.size)
	var idx []Range
	data := int64(-1)
	off := int64(12)
	for n := 0; off+8 <= riffEnd; n++ {
		if n == maxChunks {
			err = fmt.Errorf("%w: more than %d chunks in RIFF", ErrMalformed, maxChunks)
			break
		}
		h, err = s.read(off, min(12, riffEnd-off))
		if err != nil {
			if isNeed(err) {
				return res, err
			}
			break
		}
		id, size := string(h[0:4]), int64(le32(h[4:8]))
		end := off + 8 + size + size&1
		if id == "LIST" && len(h) == 12 && string(h[8:12]) == "movi" {
			if data < 0 {
				data = off + 12
			}
			end = min(end, riffEnd) // a movi list cut short still holds data
		}
		if end > riffEnd+1 { // +1: a final pad byte may be missing
			err = fmt.Errorf("%w: %q chunk of %d bytes at %d past the RIFF end %d", ErrMalformed, id, size, off, riffEnd)
			break
		}
		switch {
		case id == "idx1":
			idx = append(idx, Range{off, min(end, riffEnd)})
		case id == "LIST" && len(h) == 12 && string(h[8:12]) == "hdrl":
			var body []byte
			if size < 4 || size-4 > maxRead {
				err = fmt.Errorf("%w: hdrl list of %d bytes", ErrMalformed, size)
				break
			}
			if body, err = s.read(off+12, size-4); err != nil {
				if isNeed(err) {
					return res, err
				}
				break
			}
			idx = append(idx, aviSuperIndexes(body, s.size)...)
		}
		if err != nil {
			break
		}
		off = end
	}
	if data < 0 {
		data = off
		if err == nil {
			err = fmt.Errorf("%w: avi without a movi list", ErrMalformed)
		}
	}
	res.Start = append([]Range{{0, data + min(cfg.Data, s.size)}}, idx...)
	if len(idx) == 0 && err == nil {
		err = fmt.Errorf("%w: avi without idx1 or OpenDML index", ErrNoIndex)
	}
	return res, err
}

// aviSuperIndexes returns the ranges of the index chunks that the OpenDML
// super indexes ('indx' chunks of each stream's strl list) in the hdrl
// list body b point to, inside a file of size bytes.
func aviSuperIndexes(b []byte, size int64) []Range {
	var out []Range
	for _, strl := range riffChunks(b) {
		if strl.id != "LIST" || len(strl.body) < 4 || string(strl.body[:4]) != "strl" {
			continue
		}
		for _, c := range riffChunks(strl.body[4:]) {
			if c.id != "indx" || len(c.body) < 24 {
				continue
			}
			longs, typ, entries := le16(c.body), c.body[3], int(min(le32(c.body[4:8]), maxRanges))
			if typ != 0 || longs != 4 { // AVI_INDEX_OF_INDEXES with 16-byte entries
				continue
			}
			for i := 0; i < entries && 24+16*(i+1) <= len(c.body) && len(out) < maxRanges; i++ {
				e := c.body[24+16*i:]
				off, n := le64(e), uint64(le32(e[8:12]))
				if off == 0 || off >= uint64(size) || n > uint64(size)-off {
					continue
				}
				out = append(out, Range{int64(off), int64(off + n)})
			}
		}
	}
	return out
}

// riffChunk is a chunk of a RIFF list held in memory.
type riffChunk struct {
	id   string
	body []byte
}

// riffChunks splits b into chunks, stopping at the first one that does
// not fit, and at most maxChunks of them.
func riffChunks(b []byte) []riffChunk {
	var out []riffChunk
	for len(b) >= 8 && len(out) < maxChunks {
		n := int64(le32(b[4:8]))
		if n > int64(len(b)-8) {
			break
		}
		out = append(out, riffChunk{string(b[0:4]), b[8 : 8+n]})
		b = b[min(int64(len(b)), 8+n+n&1):]
	}
	return out
}
