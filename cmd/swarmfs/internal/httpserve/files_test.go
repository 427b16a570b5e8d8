package httpserve

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"sync"
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

// patternReader serves byte i of the file as byte(i*7), recording the
// offsets read; reads at or past block wait for their context.
type patternReader struct {
	mu    sync.Mutex
	offs  []int64
	block int64
}

func (r *patternReader) ReadAt(ctx context.Context, p []byte, off int64) (int, error) {
	r.mu.Lock()
	r.offs = append(r.offs, off)
	r.mu.Unlock()
	if r.block > 0 && off >= r.block {
		<-ctx.Done()
		return 0, ctx.Err()
	}
	for i := range p {
		p[i] = byte((off + int64(i)) * 7)
	}
	return len(p), nil
}

func (r *patternReader) Close() error { return nil }

// TestStreamPipeline reads a file through a pipelined stream: the bytes
// are right, each chunk is read once, and close ends a read ahead that
// waits for data.
func TestStreamPipeline(t *testing.T) {
	size := int64(5<<20 + 333)
	pr := &patternReader{}
	st := &stream{ctx: context.Background(), r: pr, size: size, timeout: time.Minute, bufSize: 1 << 20,
		latency: newHistogram(latencyBuckets), log: slog.New(slog.DiscardHandler), pipeline: true}
	got, err := io.ReadAll(st)
	if err != nil || int64(len(got)) != size {
		t.Fatalf("read %d of %d bytes: %v", len(got), size, err)
	}
	for i, b := range got {
		if b != byte(i*7) {
			t.Fatalf("byte %d is %d, want %d", i, b, byte(i*7))
		}
	}
	st.close()
	seen := map[int64]bool{}
	for _, o := range pr.offs {
		if seen[o] {
			t.Errorf("offset %d read twice (%v)", o, pr.offs)
		}
		seen[o] = true
	}

	// A read ahead blocked on missing data ends with close.
	// Reads of 64+128+256+512 KiB, then 1 MiB chunks: the read ahead
	// after the chunk at 1984 KiB is at 3008 KiB.
	pr = &patternReader{block: 3008 << 10}
	st = &stream{ctx: context.Background(), r: pr, size: size, timeout: time.Minute, bufSize: 1 << 20,
		latency: newHistogram(latencyBuckets), log: slog.New(slog.DiscardHandler), pipeline: true}
	if _, err := io.CopyN(io.Discard, st, 2<<20); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the read ahead to start", func() bool {
		pr.mu.Lock()
		defer pr.mu.Unlock()
		return slices.Contains(pr.offs, 3008<<10)
	})
	done := make(chan struct{})
	go func() { st.close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("close did not end a blocked read ahead")
	}
}
