package readahead

import (
	"testing"
	"time"
)

// TestProbeGetsNoDeepWindow replays what ffprobe reads from a 2 GiB MP4
// with its moov at the end (32 KiB buffers: the head, the moov at the end,
// the first frames; as measured with strace) and a thumbnailer's few reads
// after a seek: no window may grow past Min. Without Sustain the
// consecutive 32 KiB reads would double the window at each read.
func TestProbeGetsNoDeepWindow(t *testing.T) {
	const size = 2 << 30
	p := New(Config{})
	reads := [][2]int64{
		{0, 32 * kib}, {32 * kib, 32 * kib}, {64 * kib, 32 * kib},
		{size - 3*mib, 32 * kib}, {size - 3*mib + 32*kib, 32 * kib}, {size - 3*mib + 64*kib, 32 * kib},
		{48, 32 * kib}, {48 + 32*kib, 32 * kib}, {48 + 64*kib, 32 * kib},
		// A thumbnailer: a seek to 10%, a few frames.
		{size / 10, 64 * kib}, {size/10 + 64*kib, 64 * kib}, {size/10 + 128*kib, 64 * kib}, {size/10 + 192*kib, 64 * kib},
	}
	for i, r := range reads {
		start, end := p.Read(t0.Add(time.Duration(i)*10*time.Millisecond), r[0], r[1])
		if end-start > DefaultMin {
			t.Fatalf("read %d at %d: window of %d bytes, want at most %d", i, r[0], end-start, DefaultMin)
		}
	}
	for _, w := range p.Windows(nil) {
		if w.End-w.Start > DefaultMin+DefaultMin/2 {
			t.Fatalf("window %v deeper than a probe should get", w)
		}
	}
}

// TestPlayerGetsFullWindow reads on from the start in 64 KiB reads, as a
// player does: past Sustain the window doubles up to Max.
func TestPlayerGetsFullWindow(t *testing.T) {
	p := New(Config{Max: 16 * mib, MaxTime: -1})
	var size int64
	for off := int64(0); off < 2*mib; off += 64 * kib {
		s, e := p.Read(t0, off, 64*kib)
		size = e - s
		if off+64*kib < DefaultSustain && size != DefaultMin {
			t.Fatalf("at %d (before Sustain): window %d, want Min", off, size)
		}
	}
	if size != 16*mib {
		t.Fatalf("after 2 MiB of sequential reads: window %d, want Max", size)
	}
}
