package readahead

import "time"

// Defaults for the zero Config fields.
const (
	DefaultMin     = 1 << 20
	DefaultMax     = 64 << 20
	DefaultMaxTime = 10 * time.Second
	DefaultSustain = 1 << 20
)

// Config bounds a Policy's windows. The zero value is valid.
type Config struct {
	// Min is the window of a new stream (after a seek) and the smallest
	// window ever returned, in bytes. Zero means DefaultMin (1 MiB).
	Min int64
	// Max is the largest window in bytes. Zero means DefaultMax (64 MiB).
	Max int64
	// MaxTime caps the window at this much data at the measured reading
	// rate (never below Min). Zero means DefaultMaxTime (10 s); a negative
	// value disables the time cap.
	MaxTime time.Duration
	// Sustain is how many bytes a stream must have read sequentially
	// before its window grows past Min. Until then the reader is taken
	// for a probe (ffprobe, a thumbnailer, a media-library scanner reading
	// a few small ranges) and gets no deep window; a player reading on
	// passes it soon and gets the full window. Zero means DefaultSustain
	// (1 MiB); a negative value lets windows grow from a stream's second
	// read.
	Sustain int64
}

// Window is a byte range [Start, End) to prioritize.
type Window struct {
	Start, End int64
}

const (
	// maxStreams is how many streams a Policy remembers.
	maxStreams = 4
	// minAhead and minBehind are the smallest distances ahead of and
	// behind a stream's furthest point at which a read still continues the
	// stream. The kernel issues a readahead window (read_ahead_kb, up to a
	// few MiB) as several concurrent requests that arrive in any order, so
	// a request may land a whole window behind the furthest one seen.
	minAhead  = 4 << 20
	minBehind = 8 << 20
	// rateSample is the interval over which reading rate is sampled.
	rateSample = time.Second
	// idleSample is the sample length past which a sample is discarded
	// as idle time (a paused player) rather than folded into the rate.
	idleSample = 5 * time.Second
)

// stream is one run of sequential reads.
type stream struct {
	first    int64  // lowest offset read in the stream
	last     int64  // offset of the stream's latest read
	frontier int64  // furthest end of any read in the stream
	size     int64  // window size before the time cap
	maxReq   int64  // largest request seen in the stream
	hit      uint64 // read sequence number of the latest hit, for LRU
	epoch    uint64 // seek epoch of the latest hit; live if current
}

// Policy is the readahead state of one open reader. Create it with New.
type Policy struct {
	cfg     Config
	streams []stream
	seq     uint64 // reads so far
	epoch   uint64 // incremented at every seek (new stream)

	rate        float64 // smoothed reading rate in bytes/s; 0 = unknown
	sampleStart time.Time
	sampleBytes int64
}

// New returns a Policy with the zero fields of cfg set to their defaults.
func New(cfg Config) *Policy {
	if cfg.Min <= 0 {
		cfg.Min = DefaultMin
	}
	if cfg.Max <= 0 {
		cfg.Max = DefaultMax
	}
	if cfg.Max < cfg.Min {
		cfg.Max = cfg.Min
	}
	if cfg.MaxTime == 0 {
		cfg.MaxTime = DefaultMaxTime
	}
	if cfg.Sustain == 0 {
		cfg.Sustain = DefaultSustain
	}
	return &Policy{cfg: cfg}
}

// Config returns the configuration with defaults filled in.
func (p *Policy) Config() Config { return p.cfg }

// Rate returns the smoothed reading rate in bytes per second, 0 while
// unknown.
func (p *Policy) Rate() float64 { return p.rate }

// Read records a read of n bytes at offset off at time now and returns the
// window [start, end) to prioritize: start is off and end - start is the
// window size of the read's stream. A read that does not continue a recent
// stream is a seek and gets a window of Min bytes.
func (p *Policy) Read(now time.Time, off, n int64) (start, end int64) {
	if n < 0 {
		n = 0
	}
	p.seq++
	s := p.match(off)
	var consumed int64
	if s == nil {
		s = p.newStream()
		s.first, s.last, s.frontier, s.size, s.maxReq = off, off, off+n, p.cfg.Min, n
		consumed = n
	} else {
		s.first = min(s.first, off)
		if e := off + n; e > s.frontier {
			consumed = e - s.frontier
			s.frontier = e
			if s.frontier-s.first >= p.cfg.Sustain {
				s.size = min(2*s.size, p.cfg.Max)
			}
		}
		s.last = off
		s.maxReq = max(s.maxReq, n)
	}
	s.hit, s.epoch = p.seq, p.epoch
	p.account(now, consumed)
	return off, off + p.effective(s.size)
}

// Windows appends to dst the windows of the live streams: the one of the
// latest read and those continued since the latest seek. After a seek only
// the new stream is live, so abandoned windows stop being prioritized at
// once; an interleaved stream becomes live again at its next read.
func (p *Policy) Windows(dst []Window) []Window {
	for i := range p.streams {
		s := &p.streams[i]
		if s.epoch == p.epoch {
			dst = append(dst, Window{s.start(), s.last + p.effective(s.size)})
		}
	}
	return dst
}

// start is where the stream's window begins: at its latest read, or
// earlier, as far back as a read still continues the stream (but not before
// the stream's first read). Requests of the kernel's readahead arrive out of
// order, so the bytes just behind the furthest read are about to be asked
// for: they stay wanted instead of being cancelled and requested again.
func (s *stream) start() int64 {
	return max(s.first, min(s.last, s.frontier-max(4*s.maxReq, minBehind)))
}

// match returns the stream that a read at off continues, or nil. Among
// several, the one whose furthest point is closest wins.
func (p *Policy) match(off int64) *stream {
	var best *stream
	var bestDist int64
	for i := range p.streams {
		s := &p.streams[i]
		tol := max(2*s.maxReq, minAhead)
		d := off - s.frontier
		if d < 0 {
			d, tol = -d, max(4*s.maxReq, minBehind)
		}
		if d > tol {
			continue
		}
		if best == nil || d < bestDist {
			best, bestDist = s, d
		}
	}
	return best
}

// newStream starts a stream, replacing the least recently used one when
// maxStreams are remembered, and makes it the only live one.
func (p *Policy) newStream() *stream {
	p.epoch++
	if len(p.streams) < maxStreams {
		p.streams = append(p.streams, stream{})
		return &p.streams[len(p.streams)-1]
	}
	lru := &p.streams[0]
	for i := range p.streams {
		if p.streams[i].hit < lru.hit {
			lru = &p.streams[i]
		}
	}
	*lru = stream{}
	return lru
}

// account adds consumed bytes to the rate sample and folds a finished
// sample into the smoothed rate.
func (p *Policy) account(now time.Time, consumed int64) {
	// A read's bytes count in the sample that it closes or continues, not
	// in one it opens: they were consumed before the sample's start.
	if p.sampleStart.IsZero() {
		p.sampleStart = now
		return
	}
	el := now.Sub(p.sampleStart)
	if el > idleSample {
		// Idle: the reader paused. Start a fresh sample at this read.
		p.sampleStart, p.sampleBytes = now, 0
		return
	}
	p.sampleBytes += consumed
	if el < rateSample {
		return
	}
	inst := float64(p.sampleBytes) / el.Seconds()
	if p.rate == 0 {
		p.rate = inst
	} else {
		p.rate = 0.5*p.rate + 0.5*inst
	}
	p.sampleStart, p.sampleBytes = now, 0
}

// effective returns a window size after the caps: at most Max, at most
// MaxTime of data at the measured rate, and at least Min.
func (p *Policy) effective(size int64) int64 {
	size = min(size, p.cfg.Max)
	if p.cfg.MaxTime > 0 && p.rate > 0 {
		if c := int64(p.rate * p.cfg.MaxTime.Seconds()); c < size {
			size = c
		}
	}
	return max(size, p.cfg.Min)
}
