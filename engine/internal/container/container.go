package container

import (
	"errors"
	"fmt"
	"io"
	"slices"
)

// Format is a container format.
type Format uint8

// The formats a Probe recognizes.
const (
	Unknown Format = iota
	MP4            // ISO base media file format: MP4, MOV, M4V, 3GP
	Matroska
	WebM // Matroska with the webm DocType
	AVI
)

// String returns the format's common name.
func (f Format) String() string {
	switch f {
	case MP4:
		return "mp4"
	case Matroska:
		return "matroska"
	case WebM:
		return "webm"
	case AVI:
		return "avi"
	}
	return "unknown"
}

// Range is the byte range [Off, End) of a file.
type Range struct {
	Off, End int64
}

// Len returns the range's length in bytes.
func (r Range) Len() int64 { return r.End - r.Off }

// Defaults for the zero Config fields, and the caps every walk obeys.
const (
	// DefaultData is how many bytes of media data after the headers a
	// demuxer is expected to read at open (ffprobe reads one 32 KiB
	// buffer; a player starting to decode reads on).
	DefaultData = 256 << 10
	// DefaultMaxSteps is how many reads a walk may ask for.
	DefaultMaxSteps = 16
	// stepRead is the least a step asks for: a header read at a new place
	// asks for this much so that the headers after it come along.
	stepRead = 64 << 10
	// maxRead is the most one read asks for (a SeekHead's or hdrl's body):
	// larger structures are treated as malformed.
	maxRead = 256 << 10
	// maxRanges caps the ranges of a Result (AVI can list one index chunk
	// per stream and segment).
	maxRanges = 256
)

// Config tunes a Probe. The zero value is valid.
type Config struct {
	// Data is how many bytes of media data, from the first frame on, the
	// Result's Start includes. Zero means DefaultData.
	Data int64
	// MaxSteps caps the reads a walk asks for, the first one included.
	// Zero means DefaultMaxSteps.
	MaxSteps int
}

// Result is what a walk found.
type Result struct {
	Format Format
	// Start are the ranges a demuxer reads to open the file and start
	// playing: the headers, an index kept with them or read at open (MP4
	// moov, AVI idx1 and OpenDML indexes) and the first Config.Data bytes
	// of media data. Sorted, disjoint, not adjacent.
	Start []Range
	// Seek are the ranges a demuxer reads at its first seek and that are
	// not in Start (Matroska Cues). Sorted, disjoint, not adjacent.
	Seek []Range
}

// Errors of a walk; Result wraps them with details.
var (
	ErrUnknown      = errors.New("container: unknown format")
	ErrMalformed    = errors.New("container: malformed structure")
	ErrNoIndex      = errors.New("container: no index")
	ErrTooManySteps = errors.New("container: too many steps")
	ErrShortFeed    = errors.New("container: fed bytes do not cover the range asked for")
	errNotDone      = errors.New("container: walk not finished")
)

// Probe walks one file's container structure a read at a time. Create it
// with New.
type Probe struct {
	size   int64
	cfg    Config
	chunks []chunk // bytes fed so far, each the range that was asked for
	need   Range   // the range to read next, while !done
	done   bool
	res    Result
	err    error
}

// chunk is fed bytes at an offset.
type chunk struct {
	off int64
	b   []byte
}

// New starts a walk over a file of size bytes.
func New(size int64, cfg Config) *Probe {
	if cfg.Data <= 0 {
		cfg.Data = DefaultData
	}
	if cfg.MaxSteps <= 0 {
		cfg.MaxSteps = DefaultMaxSteps
	}
	p := &Probe{size: size, cfg: cfg}
	p.run()
	return p
}

// Next returns the range of the file to read and Feed next, and true; or
// false when the walk is over and Result holds the answer.
func (p *Probe) Next() (Range, bool) {
	return p.need, !p.done
}

// Feed hands over b, the file's bytes at off, which must cover the range
// Next returned (more is fine; fewer only where the file ends). The probe
// keeps a copy of only the range it asked for.
func (p *Probe) Feed(off int64, b []byte) error {
	if p.done {
		return nil
	}
	end := off + int64(len(b))
	if off > p.need.Off || end < p.need.End {
		return fmt.Errorf("%w: got [%d, %d), need [%d, %d)", ErrShortFeed, off, end, p.need.Off, p.need.End)
	}
	keep := b[p.need.Off-off : p.need.End-off]
	p.chunks = append(p.chunks, chunk{p.need.Off, append([]byte(nil), keep...)})
	p.run()
	return nil
}

// Result returns the ranges found and, when the walk stopped early, why.
// Before the walk is over it returns an empty Result and errNotDone.
func (p *Probe) Result() (Result, error) {
	if !p.done {
		return Result{}, errNotDone
	}
	return p.res, p.err
}

// run replays the walk over the bytes fed so far: it either finishes or
// stops at the first read that no fed chunk covers, which becomes need.
func (p *Probe) run() {
	s := &src{size: p.size, chunks: p.chunks}
	res, err := parse(s, p.cfg)
	var ne *needError
	if errors.As(err, &ne) {
		if len(p.chunks) >= p.cfg.MaxSteps {
			p.finish(res, fmt.Errorf("%w: %d reads", ErrTooManySteps, len(p.chunks)))
			return
		}
		p.need = ne.r
		return
	}
	p.finish(res, err)
}

func (p *Probe) finish(res Result, err error) {
	res.Start = normalize(res.Start, p.size)
	res.Seek = subtract(normalize(res.Seek, p.size), res.Start)
	p.res, p.err, p.done, p.need, p.chunks = res, err, true, Range{}, nil
}

// Walk runs a Probe over r, a file of size bytes, and returns its Result.
// An error reading r is returned as it is.
func Walk(r io.ReaderAt, size int64, cfg Config) (Result, error) {
	p := New(size, cfg)
	for {
		need, more := p.Next()
		if !more {
			return p.Result()
		}
		buf := make([]byte, need.Len())
		n, err := r.ReadAt(buf, need.Off)
		if n < len(buf) && err != nil && err != io.EOF {
			return Result{}, err
		}
		if err := p.Feed(need.Off, buf[:n]); err != nil {
			return Result{}, err
		}
	}
}

// parse sniffs the format and runs its parser.
func parse(s *src, cfg Config) (Result, error) {
	if s.size < 12 {
		return Result{}, fmt.Errorf("%w: %d bytes", ErrUnknown, s.size)
	}
	head, err := s.read(0, 12)
	if err != nil {
		return Result{}, err
	}
	switch {
	case be32(head) == idEBML:
		return parseMatroska(s, cfg)
	case string(head[0:4]) == "RIFF" && string(head[8:12]) == "AVI ":
		return parseAVI(s, cfg)
	case mp4FirstBox[string(head[4:8])]:
		return parseMP4(s, cfg)
	}
	return Result{}, ErrUnknown
}

// needError says that a parser needs bytes nobody fed yet.
type needError struct{ r Range }

func (e *needError) Error() string {
	return fmt.Sprintf("container: need bytes [%d, %d)", e.r.Off, e.r.End)
}

// isNeed reports whether err is a *needError.
func isNeed(err error) bool {
	_, ok := err.(*needError)
	return ok
}

// src serves a parser's reads from the fed chunks.
type src struct {
	size   int64
	chunks []chunk
}

// read returns the n bytes at off, or a *needError when no fed chunk holds
// them, or ErrMalformed when they lie outside the file or n is over maxRead.
func (s *src) read(off, n int64) ([]byte, error) {
	if off < 0 || n < 0 || n > maxRead || off > s.size || n > s.size-off {
		return nil, fmt.Errorf("%w: read of %d bytes at %d in a file of %d", ErrMalformed, n, off, s.size)
	}
	for _, c := range s.chunks {
		if off >= c.off && off+n <= c.off+int64(len(c.b)) {
			return c.b[off-c.off : off-c.off+n], nil
		}
	}
	return nil, &needError{Range{off, min(s.size, off+max(n, stepRead))}}
}

// normalize sorts rs, clips them to [0, size), drops empty ones, merges
// overlapping and adjacent ones and keeps at most maxRanges.
func normalize(rs []Range, size int64) []Range {
	var out []Range
	for _, r := range rs {
		r.Off, r.End = max(r.Off, 0), min(r.End, size)
		if r.End > r.Off {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b Range) int {
		switch {
		case a.Off < b.Off:
			return -1
		case a.Off > b.Off:
			return 1
		}
		return 0
	})
	var merged []Range
	for _, r := range out {
		if k := len(merged) - 1; k >= 0 && r.Off <= merged[k].End {
			merged[k].End = max(merged[k].End, r.End)
			continue
		}
		merged = append(merged, r)
	}
	if len(merged) > maxRanges {
		merged = merged[:maxRanges]
	}
	return merged
}

// subtract returns the parts of the normalized ranges rs outside the
// normalized ranges cut.
func subtract(rs, cut []Range) []Range {
	var out []Range
	for _, r := range rs {
		for _, c := range cut {
			if c.End <= r.Off || c.Off >= r.End {
				continue
			}
			if c.Off > r.Off {
				out = append(out, Range{r.Off, c.Off})
			}
			r.Off = max(r.Off, c.End)
			if r.Off >= r.End {
				break
			}
		}
		if r.End > r.Off {
			out = append(out, r)
		}
	}
	return out
}

func le16(b []byte) uint16 { return uint16(b[1])<<8 | uint16(b[0]) }

func be32(b []byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func be64(b []byte) uint64 { return uint64(be32(b))<<32 | uint64(be32(b[4:])) }

func le32(b []byte) uint32 {
	return uint32(b[3])<<24 | uint32(b[2])<<16 | uint32(b[1])<<8 | uint32(b[0])
}

func le64(b []byte) uint64 { return uint64(le32(b[4:]))<<32 | uint64(le32(b)) }
