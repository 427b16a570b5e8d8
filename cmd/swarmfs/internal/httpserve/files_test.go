package httpserve

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"
)

// recordingReader records the sizes of its reads.
type recordingReader struct{ sizes []int }

func (r *recordingReader) ReadAt(_ context.Context, p []byte, off int64) (int, error) {
	r.sizes = append(r.sizes, len(p))
	return len(p), nil
}

func (r *recordingReader) Close() error { return nil }

// TestStreamReadSizes checks that a small range costs a small read and a
// long stream grows to large ones, starting small again after a seek.
func TestStreamReadSizes(t *testing.T) {
	rr := &recordingReader{}
	st := &stream{ctx: context.Background(), r: rr, size: 10 << 20, timeout: time.Second, bufSize: 1 << 20,
		latency: newHistogram(latencyBuckets), log: slog.New(slog.DiscardHandler)}
	if _, err := io.CopyN(io.Discard, st, 3<<20); err != nil {
		t.Fatal(err)
	}
	want := []int{64 << 10, 128 << 10, 256 << 10, 512 << 10, 1 << 20, 1 << 20, 1 << 20}
	if !slices.Equal(rr.sizes, want) {
		t.Fatalf("read sizes %v, want %v", rr.sizes, want)
	}
	rr.sizes = nil
	if _, err := st.Seek(9<<20, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(io.Discard, st, 100); err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, st); err != nil {
		t.Fatal(err)
	}
	// After the seek: 64 KiB, then the rest of the file in growing reads.
	if !slices.Equal(rr.sizes, []int{64 << 10, 128 << 10, 256 << 10, 512 << 10, 64 << 10}) {
		t.Fatalf("read sizes after a seek %v", rr.sizes)
	}
}
