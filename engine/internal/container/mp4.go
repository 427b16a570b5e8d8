package container

import (
	"fmt"
	"math"
)

// mp4FirstBox lists the box types an MP4/MOV file may start with.
var mp4FirstBox = map[string]bool{
	"ftyp": true, "moov": true, "mdat": true, "wide": true, "free": true, "skip": true,
	"pnot": true, "pdin": true, "styp": true, "uuid": true, "sidx": true,
}

// maxBoxes caps the top-level boxes an MP4 walk visits.
const maxBoxes = 64

// parseMP4 walks the top-level boxes from the start of the file until it
// has seen both the moov box and the first media data (mdat's payload or
// a movie fragment), so a moov at the end costs one read at the end.
// Start is the head up to the first media data plus cfg.Data, and moov.
func parseMP4(s *src, cfg Config) (Result, error) {
	res := Result{Format: MP4}
	var moov Range
	data := int64(-1) // offset of the first media data
	off := int64(0)
	var err error
	for n := 0; off < s.size; n++ {
		if n == maxBoxes {
			err = fmt.Errorf("%w: more than %d top-level boxes", ErrMalformed, maxBoxes)
			break
		}
		var typ string
		var size, hl int64
		typ, size, hl, err = mp4Box(s, off)
		if err != nil {
			if isNeed(err) {
				return res, err
			}
			break
		}
		end := off + size
		switch typ {
		case "moov":
			moov = Range{off, end}
		case "mdat":
			if data < 0 {
				data = off + hl
			}
		case "moof":
			if data < 0 {
				data = off
			}
		}
		if moov.End > 0 && data >= 0 {
			break
		}
		off = end
	}
	if data < 0 {
		data = off
	}
	res.Start = []Range{{0, data + min(cfg.Data, s.size)}}
	if moov.End > 0 {
		res.Start = append(res.Start, moov)
	} else if err == nil {
		err = fmt.Errorf("%w: mp4 without a moov box", ErrNoIndex)
	}
	return res, err
}

// mp4Box reads the header of the box at off and returns its type, its
// whole size (header included) and its header's length.
func mp4Box(s *src, off int64) (typ string, size, hl int64, err error) {
	rest := s.size - off
	if rest < 8 {
		return "", 0, 0, fmt.Errorf("%w: %d stray bytes at %d", ErrMalformed, rest, off)
	}
	h, err := s.read(off, min(16, rest))
	if err != nil {
		return "", 0, 0, err
	}
	for _, c := range h[4:8] {
		if c < 0x20 || c > 0x7e {
			return "", 0, 0, fmt.Errorf("%w: box type %q at %d", ErrMalformed, h[4:8], off)
		}
	}
	typ, size, hl = string(h[4:8]), int64(be32(h)), 8
	switch size {
	case 0: // to the end of the file
		size = rest
	case 1: // 64-bit size after the type
		if len(h) < 16 {
			return "", 0, 0, fmt.Errorf("%w: truncated 64-bit box size at %d", ErrMalformed, off)
		}
		u := be64(h[8:])
		if u > math.MaxInt64 {
			return "", 0, 0, fmt.Errorf("%w: box size %d at %d", ErrMalformed, u, off)
		}
		size, hl = int64(u), 16
	}
	if size < hl || size > rest {
		return "", 0, 0, fmt.Errorf("%w: %s box of %d bytes at %d in a file of %d", ErrMalformed, typ, size, off, s.size)
	}
	return typ, size, hl, nil
}
