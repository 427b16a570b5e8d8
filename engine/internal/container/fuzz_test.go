package container

import (
	"testing"
)

// fuzzProbe walks data, followed by extra*4096 zero bytes, and checks the
// walk's bounds: few reads, each inside the file and at most maxRead long,
// and a Result of sorted, disjoint ranges inside the file.
func fuzzProbe(t *testing.T, data []byte, extra uint32) {
	size := int64(len(data)) + int64(extra)*4096
	f := &sparse{size: size}
	f.put(0, data)
	p := New(size, Config{})
	for reads := 0; ; reads++ {
		need, more := p.Next()
		if !more {
			break
		}
		if reads == DefaultMaxSteps {
			t.Fatalf("more than %d reads", DefaultMaxSteps)
		}
		if need.Off < 0 || need.End > size || need.Len() <= 0 || need.Len() > maxRead {
			t.Fatalf("asked for %v in a file of %d", need, size)
		}
		buf := make([]byte, need.Len())
		n, _ := f.ReadAt(buf, need.Off)
		if err := p.Feed(need.Off, buf[:n]); err != nil {
			t.Fatal(err)
		}
	}
	res, err := p.Result()
	if err == nil && res.Format == Unknown {
		t.Fatal("no error and no format")
	}
	for _, rs := range [][]Range{res.Start, res.Seek} {
		if len(rs) > maxRanges {
			t.Fatalf("%d ranges", len(rs))
		}
		for i, r := range rs {
			if r.Off < 0 || r.End > size || r.Len() <= 0 || (i > 0 && r.Off <= rs[i-1].End) {
				t.Fatalf("bad ranges %v in a file of %d", rs, size)
			}
		}
	}
	for _, s := range res.Seek {
		for _, r := range res.Start {
			if s.Off < r.End && r.Off < s.End {
				t.Fatalf("Seek %v overlaps Start %v", res.Seek, res.Start)
			}
		}
	}
}

// FuzzMP4, FuzzMatroska and FuzzAVI run the same checks from seeds of each
// format (real files made by ffmpeg, in testdata/fuzz).
func FuzzMP4(f *testing.F)      { f.Fuzz(fuzzProbe) }
func FuzzMatroska(f *testing.F) { f.Fuzz(fuzzProbe) }
func FuzzAVI(f *testing.F)      { f.Fuzz(fuzzProbe) }
