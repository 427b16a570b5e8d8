package readahead

import (
	"slices"
	"testing"
	"time"
)

const (
	kib = int64(1024)
	mib = 1024 * kib
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// read is one call to Read and the window size expected back.
type read struct {
	at   time.Duration
	off  int64
	n    int64
	size int64 // expected end - start
}

func TestRead(t *testing.T) {
	// Sustain -1: these cases test the doubling itself with small reads,
	// from a stream's second read (TestProbeGetsNoDeepWindow tests the
	// default, which waits for 1 MiB of sequential reading).
	noTime := Config{Min: 1 * mib, Max: 16 * mib, MaxTime: -1, Sustain: -1}
	tests := []struct {
		name  string
		cfg   Config
		reads []read
	}{
		{
			name: "sequential doubles up to max",
			cfg:  noTime,
			reads: []read{
				{0, 0, 128 * kib, 1 * mib},
				{0, 128 * kib, 128 * kib, 2 * mib},
				{0, 256 * kib, 128 * kib, 4 * mib},
				{0, 384 * kib, 128 * kib, 8 * mib},
				{0, 512 * kib, 128 * kib, 16 * mib},
				{0, 640 * kib, 128 * kib, 16 * mib},
			},
		},
		{
			name: "kernel out of order readahead is not a seek",
			cfg:  noTime,
			reads: []read{
				{0, 128 * kib, 128 * kib, 1 * mib},
				{0, 0, 128 * kib, 1 * mib}, // behind: keeps
				{0, 256 * kib, 128 * kib, 2 * mib},
				{0, 512 * kib, 128 * kib, 4 * mib}, // 384K still pending
				{0, 384 * kib, 128 * kib, 4 * mib},
				{0, 640 * kib, 128 * kib, 8 * mib},
			},
		},
		{
			// Seen through a page-cache FUSE mount with read_ahead_kb 2048:
			// one async readahead window of 1016 KiB requests arrived tail
			// first, leaving a request 3 MiB behind the furthest one.
			name: "kernel readahead window arriving tail first is not a seek",
			cfg:  noTime,
			reads: []read{
				{0, 98304 * kib, 1016 * kib, 1 * mib},
				{0, 99320 * kib, 1016 * kib, 2 * mib},
				{0, 100336 * kib, 16 * kib, 4 * mib},
				{0, 102384 * kib, 16 * kib, 8 * mib},
				{0, 102400 * kib, 1016 * kib, 16 * mib},
				{0, 100352 * kib, 1016 * kib, 16 * mib},
				{0, 101368 * kib, 1016 * kib, 16 * mib},
				{0, 103416 * kib, 1016 * kib, 16 * mib},
			},
		},
		{
			name: "seek resets to min",
			cfg:  noTime,
			reads: []read{
				{0, 0, 1 * mib, 1 * mib},
				{0, 1 * mib, 1 * mib, 2 * mib},
				{0, 2 * mib, 1 * mib, 4 * mib},
				{0, 3 * mib, 1 * mib, 8 * mib},
				{0, 900 * mib, 128 * kib, 1 * mib},
				{0, 900*mib + 128*kib, 128 * kib, 2 * mib},
			},
		},
		{
			name: "backward seek beyond tolerance",
			cfg:  noTime,
			reads: []read{
				{0, 100 * mib, 128 * kib, 1 * mib},
				{0, 100*mib + 128*kib, 128 * kib, 2 * mib},
				{0, 90 * mib, 128 * kib, 1 * mib},
			},
		},
		{
			name: "large requests widen the tolerance",
			cfg:  noTime,
			reads: []read{
				{0, 0, 4 * mib, 1 * mib},
				{0, 10 * mib, 4 * mib, 2 * mib}, // 6 MiB gap < 2 x 4 MiB
				{0, 30 * mib, 4 * mib, 1 * mib}, // 16 MiB gap: seek
			},
		},
		{
			name: "two interleaved streams keep their windows",
			cfg:  noTime,
			reads: []read{
				{0, 0, 128 * kib, 1 * mib},
				{0, 500 * mib, 128 * kib, 1 * mib},
				{0, 128 * kib, 128 * kib, 2 * mib},
				{0, 500*mib + 128*kib, 128 * kib, 2 * mib},
				{0, 256 * kib, 128 * kib, 4 * mib},
				{0, 500*mib + 256*kib, 128 * kib, 4 * mib},
			},
		},
		{
			name: "time cap at the measured rate",
			// 1 MiB every 100 ms = 10 MiB/s; MaxTime 1 s caps at ~10 MiB.
			cfg: Config{Min: 1 * mib, Max: 64 * mib, MaxTime: time.Second},
			reads: []read{
				{0, 0, 1 * mib, 1 * mib},
				{100 * time.Millisecond, 1 * mib, 1 * mib, 2 * mib},
				{200 * time.Millisecond, 2 * mib, 1 * mib, 4 * mib},
				{300 * time.Millisecond, 3 * mib, 1 * mib, 8 * mib},
				{400 * time.Millisecond, 4 * mib, 1 * mib, 16 * mib},
				{500 * time.Millisecond, 5 * mib, 1 * mib, 32 * mib},
				{600 * time.Millisecond, 6 * mib, 1 * mib, 64 * mib},
				{700 * time.Millisecond, 7 * mib, 1 * mib, 64 * mib},
				{800 * time.Millisecond, 8 * mib, 1 * mib, 64 * mib},
				{900 * time.Millisecond, 9 * mib, 1 * mib, 64 * mib},
				// One second of samples: 10 MiB/s measured.
				{1000 * time.Millisecond, 10 * mib, 1 * mib, 10 * mib},
				{1100 * time.Millisecond, 11 * mib, 1 * mib, 10 * mib},
			},
		},
		{
			name: "time cap never below min",
			// 64 KiB per second: 10 s is 640 KiB, below Min.
			cfg: Config{Min: 1 * mib, Max: 64 * mib},
			reads: []read{
				{0, 0, 64 * kib, 1 * mib},
				{1 * time.Second, 64 * kib, 64 * kib, 1 * mib},
				{2 * time.Second, 128 * kib, 64 * kib, 1 * mib},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := New(tc.cfg)
			for k, r := range tc.reads {
				start, end := p.Read(t0.Add(r.at), r.off, r.n)
				if start != r.off || end-start != r.size {
					t.Fatalf("read %d at %d: window [%d, %d) size %d, want size %d (rate %.0f)",
						k, r.off, start, end, end-start, r.size, p.Rate())
				}
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	cfg := New(Config{}).Config()
	if cfg.Min != DefaultMin || cfg.Max != DefaultMax || cfg.MaxTime != DefaultMaxTime || cfg.Sustain != DefaultSustain {
		t.Fatalf("defaults %+v", cfg)
	}
	if cfg := New(Config{Min: 8 * mib, Max: 1 * mib}).Config(); cfg.Max != 8*mib {
		t.Fatalf("Max below Min not raised: %+v", cfg)
	}
}

func TestWindowsAfterSeekAndInterleave(t *testing.T) {
	p := New(Config{Min: 1 * mib, Max: 16 * mib, MaxTime: -1, Sustain: -1})
	p.Read(t0, 0, 128*kib)
	p.Read(t0, 128*kib, 128*kib) // stream A, 2 MiB
	// Windows start where the stream started while that is within 8 MiB
	// behind its furthest read (out-of-order kernel reads land there).
	if got := p.Windows(nil); !slices.Equal(got, []Window{{0, 128*kib + 2*mib}}) {
		t.Fatalf("windows %v", got)
	}
	// Seek: only the new stream is live.
	p.Read(t0, 700*mib, 128*kib)
	if got := p.Windows(nil); !slices.Equal(got, []Window{{700 * mib, 701 * mib}}) {
		t.Fatalf("after seek windows %v", got)
	}
	// Continuing A makes both live (interleaved streams).
	p.Read(t0, 256*kib, 128*kib)
	got := p.Windows(nil)
	slices.SortFunc(got, func(a, b Window) int { return int(a.Start - b.Start) })
	want := []Window{{0, 256*kib + 4*mib}, {700 * mib, 701 * mib}}
	if !slices.Equal(got, want) {
		t.Fatalf("interleaved windows %v, want %v", got, want)
	}
}

// TestWindowStartTrailsFrontier checks that a long stream's window begins
// 8 MiB behind its furthest read, not at its first read or its latest
// (possibly out-of-order) read.
func TestWindowStartTrailsFrontier(t *testing.T) {
	p := New(Config{Min: 1 * mib, Max: 64 * mib, MaxTime: -1})
	for off := int64(0); off < 40*mib; off += 1 * mib {
		p.Read(t0, off, 1*mib)
	}
	p.Read(t0, 38*mib, 1*mib) // a late kernel request, behind the frontier
	got := p.Windows(nil)
	if len(got) != 1 || got[0].Start != 40*mib-8*mib || got[0].End != 38*mib+64*mib {
		t.Fatalf("windows %v, want [32 MiB, 102 MiB)", got)
	}
}

func TestManyStreamsForgetOldest(t *testing.T) {
	p := New(Config{Min: 1 * mib, Max: 16 * mib, MaxTime: -1, Sustain: -1})
	for s := range int64(maxStreams + 1) {
		p.Read(t0, s*100*mib, 128*kib)
		p.Read(t0, s*100*mib+128*kib, 128*kib)
	}
	// Stream 0 was evicted: reading on from it is a seek.
	if _, end := p.Read(t0, 256*kib, 128*kib); end-256*kib != 1*mib {
		t.Fatalf("evicted stream continued with size %d", end-256*kib)
	}
	// Stream 4 is remembered.
	if s, e := p.Read(t0, 400*mib+256*kib, 128*kib); e-s != 4*mib {
		t.Fatalf("recent stream size %d", e-s)
	}
}

func TestIdlePauseDoesNotCollapseRate(t *testing.T) {
	p := New(Config{Min: 1 * mib, Max: 256 * mib, MaxTime: time.Second})
	off := int64(0)
	now := t0
	for range 30 { // 10 MiB/s for 3 s
		p.Read(now, off, 1*mib)
		off += 1 * mib
		now = now.Add(100 * time.Millisecond)
	}
	r := p.Rate()
	if r < 9*float64(mib) || r > 11*float64(mib) {
		t.Fatalf("rate %.0f, want about 10 MiB/s", r)
	}
	now = now.Add(time.Minute) // paused
	p.Read(now, off, 1*mib)
	if p.Rate() != r {
		t.Fatalf("rate after a pause %.0f, was %.0f", p.Rate(), r)
	}
}
