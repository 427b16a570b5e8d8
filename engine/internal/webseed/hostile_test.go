package webseed

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

const hostilePL = 16 << 10

// hostileFixture has pieces that span two files (no padding).
func hostileFixture(t *testing.T) *fixture {
	return makeFixture(t, "hostile", hostilePL, []fspec{
		{path: "a.bin", length: 5*hostilePL + 100},
		{path: "b c.bin", length: 3*hostilePL - 50},
		{path: "d/e#.bin", length: 2*hostilePL + 7},
		{path: "z/empty", length: 0}, // never requested
	}, 3)
}

// testCtx bounds a test's fetches: a fetch hanging past it fails the test
// with a context error rather than hanging the run.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// fetchErr fetches piece i and returns the error.
func fetchErr(ctx context.Context, s *Seed, fx *fixture, i int) error {
	return s.Fetch(ctx, i, make([]byte, fx.info.PieceSize(i)))
}

func TestRangeIgnored(t *testing.T) {
	fx := hostileFixture(t)
	ctx := testCtx(t)
	ts := newTestServer(t, fx, func(w http.ResponseWriter, r *http.Request, _ int64) bool {
		r.Header.Del("Range")
		return false
	})
	// Within MaxDiscard, the whole file is read up to the part wanted.
	s := newSeed(t, ts.URL(), fx, Config{MaxDiscard: 1 << 30})
	if i, err := fetchAll(ctx, fx, s); err != nil {
		t.Fatalf("piece %d: %v", i, err)
	}
	if st := s.Status(); st.Wasted == 0 || st.State != StateOK {
		t.Fatalf("status %+v: want bytes wasted and state ok", st)
	}

	// Beyond it: ErrRangeIgnored, charged as a fault; a healthy seed
	// gives every piece.
	s = newSeed(t, ts.URL(), fx, Config{MaxDiscard: 2 * hostilePL})
	healthy := newSeed(t, newTestServer(t, fx, nil).URL(), fx, Config{})
	if err := fetchErr(ctx, s, fx, 0); err != nil {
		t.Fatalf("piece 0 within MaxDiscard: %v", err)
	}
	if err := fetchErr(ctx, s, fx, 4); !errors.Is(err, ErrRangeIgnored) {
		t.Fatalf("piece 4: %v, want ErrRangeIgnored", err)
	}
	if i, err := fetchAll(ctx, fx, s, healthy); err != nil {
		t.Fatalf("piece %d: %v", i, err)
	}
	if st := s.Status(); st.State != StateDropped || !errors.Is(st.Cause, ErrRangeIgnored) {
		t.Fatalf("status %v, want dropped for ignoring Range", st)
	}
}

func TestShortBody(t *testing.T) {
	fx := hostileFixture(t)
	ctx := testCtx(t)
	// Every other response stops after 100 bytes and closes.
	ts := newTestServer(t, fx, nil)
	ts.setHook(func(w http.ResponseWriter, r *http.Request, n int64) bool {
		if n%2 == 1 {
			ts.serveFile(&cutWriter{ResponseWriter: w, left: 100}, r)
			return true
		}
		return false
	})
	s := newSeed(t, ts.URL(), fx, Config{})
	if i, err := fetchAll(ctx, fx, s); err != nil {
		t.Fatalf("piece %d: %v", i, err)
	}
	plain := newSeed(t, newTestServer(t, fx, nil).URL(), fx, Config{})
	if i, err := fetchAll(ctx, fx, plain); err != nil {
		t.Fatalf("piece %d: %v", i, err)
	}
	if got, base := s.Status().Requests, plain.Status().Requests; got < base+base/3 {
		t.Fatalf("%d requests, %d from a plain server: short bodies were not retried", got, base)
	}

	// Always short: a clean error once the retries are spent, and backoff.
	ts.setHook(func(w http.ResponseWriter, r *http.Request, n int64) bool {
		ts.serveFile(&cutWriter{ResponseWriter: w, left: 100}, r)
		return true
	})
	s = newSeed(t, ts.URL(), fx, Config{Retries: 2, MinBackoff: time.Hour})
	err := fetchErr(ctx, s, fx, 1)
	var re *Error
	if !errors.Is(err, ErrShortBody) || !errors.As(err, &re) || re.Status != http.StatusPartialContent {
		t.Fatalf("always short: %v, want *Error with ErrShortBody and 206", err)
	}
	if st := s.Status(); st.State != StateBackoff || s.Free() != 0 {
		t.Fatalf("after spent retries: %v, free %d; want backoff", st, s.Free())
	}
	if err := fetchErr(ctx, s, fx, 1); !errors.Is(err, ErrBackoff) {
		t.Fatalf("fetch while backing off: %v, want ErrBackoff", err)
	}
}

func TestStall(t *testing.T) {
	fx := hostileFixture(t)
	ctx := testCtx(t)
	ts := newTestServer(t, fx, nil)
	ts.setHook(func(w http.ResponseWriter, r *http.Request, n int64) bool {
		if n == 1 {
			ts.stall(w, r)
			return true
		}
		return false
	})
	// A stall mid-body ends at IdleTimeout and the retry succeeds.
	s := newSeed(t, ts.URL(), fx, Config{IdleTimeout: 100 * time.Millisecond})
	if i, err := fetchAll(ctx, fx, s); err != nil {
		t.Fatalf("piece %d: %v", i, err)
	}

	// Always stalling: ErrStalled once the retries are spent.
	ts.setHook(func(w http.ResponseWriter, r *http.Request, n int64) bool { ts.stall(w, r); return true })
	s = newSeed(t, ts.URL(), fx, Config{IdleTimeout: 50 * time.Millisecond, Retries: 1})
	if err := fetchErr(ctx, s, fx, 2); !errors.Is(err, ErrStalled) {
		t.Fatalf("always stalling: %v, want ErrStalled", err)
	}

	// A server that never answers at all: ErrStalled too.
	ts.setHook(func(w http.ResponseWriter, r *http.Request, n int64) bool {
		select {
		case <-r.Context().Done():
		case <-ts.quit:
		}
		return true
	})
	s = newSeed(t, ts.URL(), fx, Config{IdleTimeout: 50 * time.Millisecond, Retries: -1})
	if err := fetchErr(ctx, s, fx, 2); !errors.Is(err, ErrStalled) {
		t.Fatalf("no answer: %v, want ErrStalled", err)
	}

	// The caller's deadline ends a stalled fetch, whatever IdleTimeout
	// says, and is not charged to the seed.
	s = newSeed(t, ts.URL(), fx, Config{IdleTimeout: time.Hour})
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if err := fetchErr(short, s, fx, 3); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("stalled past the deadline: %v, want context.DeadlineExceeded", err)
	}
	if ctx.Err() != nil {
		t.Fatal("the fetch returned only at the test's own deadline")
	}
	if st := s.Status(); st.State != StateOK || st.Faults != 0 {
		t.Fatalf("status after the caller's deadline: %+v; want ok, no faults", st)
	}
}

func TestMissingFile(t *testing.T) {
	fx := hostileFixture(t)
	ctx := testCtx(t)
	ts := newTestServer(t, fx, func(w http.ResponseWriter, r *http.Request, _ int64) bool {
		if strings.HasSuffix(r.URL.Path, "/b c.bin") {
			http.NotFound(w, r)
			return true
		}
		return false
	})
	s := newSeed(t, ts.URL(), fx, Config{})
	healthy := newSeed(t, newTestServer(t, fx, nil).URL(), fx, Config{})
	// b c.bin holds torrent bytes [5*PL+100, 8*PL+50): pieces 5..8.
	err := fetchErr(ctx, s, fx, 6)
	var re *Error
	if !errors.Is(err, ErrFileMissing) || !errors.As(err, &re) || re.Status != http.StatusNotFound || re.File != 1 {
		t.Fatalf("piece of the missing file: %v, want *Error 404 for file 1", err)
	}
	for i := range fx.info.NumPieces() {
		if want := i < 5 || i > 8; s.Usable(i) != want {
			t.Errorf("Usable(%d) = %v, want %v", i, s.Usable(i), want)
		}
	}
	if err := fetchErr(ctx, s, fx, 5); !errors.Is(err, ErrFileMissing) {
		t.Fatalf("piece 5 after the 404: %v, want ErrFileMissing without a request", err)
	}
	if i, err := fetchAll(ctx, fx, s, healthy); err != nil {
		t.Fatalf("piece %d: %v", i, err)
	}
	st := s.Status()
	if st.State != StateOK || st.MissingFiles != 1 || st.Downloaded == 0 {
		t.Fatalf("status %+v: want ok, one missing file, bytes from the others", st)
	}

	// Every file missing: the seed is dropped.
	ts.setHook(func(w http.ResponseWriter, r *http.Request, _ int64) bool { http.NotFound(w, r); return true })
	s = newSeed(t, ts.URL(), fx, Config{})
	for _, p := range []int{0, 6, 9} {
		if err := fetchErr(ctx, s, fx, p); !errors.Is(err, ErrFileMissing) {
			t.Fatalf("piece %d: %v, want ErrFileMissing", p, err)
		}
	}
	if st := s.Status(); st.State != StateDropped || !errors.Is(st.Cause, ErrNoFiles) {
		t.Fatalf("all files missing: %v, want dropped with ErrNoFiles", st)
	}
	if err := fetchErr(ctx, s, fx, 0); !errors.Is(err, ErrDropped) {
		t.Fatalf("fetch from a dropped seed: %v", err)
	}
}

func TestBadContentRange(t *testing.T) {
	fx := hostileFixture(t)
	ctx := testCtx(t)
	cases := []struct {
		name   string
		header func(w http.ResponseWriter)
		want   error
	}{
		{"shifted", func(w http.ResponseWriter) { w.Header().Set("Content-Range", "bytes 1-16384/82020") }, ErrBadContentRange},
		{"garbage", func(w http.ResponseWriter) { w.Header().Set("Content-Range", "bytes=0-x") }, ErrBadContentRange},
		{"missing", func(w http.ResponseWriter) {}, ErrBadContentRange},
		{"length disagrees", func(w http.ResponseWriter) {
			w.Header().Set("Content-Range", "bytes 0-16383/82020")
			w.Header().Set("Content-Length", "100")
		}, ErrBadContentRange},
		{"other file size", func(w http.ResponseWriter) { w.Header().Set("Content-Range", "bytes 0-16383/99999") }, ErrFileMissing},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ts := newTestServer(t, fx, func(w http.ResponseWriter, r *http.Request, _ int64) bool {
				c.header(w)
				w.WriteHeader(http.StatusPartialContent)
				_, _ = w.Write(make([]byte, 100))
				return true
			})
			s := newSeed(t, ts.URL(), fx, Config{MaxFaults: 2})
			if err := fetchErr(ctx, s, fx, 0); !errors.Is(err, c.want) {
				t.Fatalf("%v, want %v", err, c.want)
			}
			if c.want == ErrBadContentRange {
				if err := fetchErr(ctx, s, fx, 1); !errors.Is(err, c.want) {
					t.Fatalf("second fetch: %v", err)
				}
				if st := s.Status(); st.State != StateDropped {
					t.Fatalf("after MaxFaults bad responses: %v, want dropped", st)
				}
			}
		})
	}
}

func TestWrongBytes(t *testing.T) {
	fx := hostileFixture(t)
	ctx := testCtx(t)
	bad := newTestServer(t, fx, nil)
	bad.setCorrupt()
	s := newSeed(t, bad.URL(), fx, Config{})
	healthy := newSeed(t, newTestServer(t, fx, nil).URL(), fx, Config{})
	if i, err := fetchAll(ctx, fx, s, healthy); err != nil {
		t.Fatalf("piece %d: %v", i, err)
	}
	st := s.Status()
	if st.State != StateDropped || !errors.Is(st.Cause, ErrBadData) || st.Faults != DefaultMaxFaults {
		t.Fatalf("corrupting seed: %v (%d faults), want dropped after %d", st, st.Faults, DefaultMaxFaults)
	}
	for i := range fx.info.NumPieces() {
		if s.Usable(i) {
			t.Fatalf("a dropped seed is Usable for piece %d", i)
		}
	}
	if healthy.Status().Faults != 0 {
		t.Fatal("the healthy seed was charged")
	}
}

func TestRangeSizes(t *testing.T) {
	fx := hostileFixture(t)
	ctx := testCtx(t)
	cases := []struct {
		name string
		rng  func(first, last, size int64) (int64, int64) // the range sent
	}{
		// At most 1000 bytes per response: the rest is asked at once.
		{"partial", func(first, last, _ int64) (int64, int64) { return first, min(last, first+999) }},
		// To the end of the file, whatever was asked: the rest is drained
		// (kept for keep-alive) or the connection closed.
		{"overlong", func(first, _, size int64) (int64, int64) { return first, size - 1 }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ts := newTestServer(t, fx, nil)
			ts.setHook(func(w http.ResponseWriter, r *http.Request, _ int64) bool {
				data, err := os.ReadFile(filepath.Join(fx.dir, filepath.FromSlash(r.URL.Path)))
				if err != nil {
					http.NotFound(w, r)
					return true
				}
				var first, last int64
				if _, err := fmt.Sscanf(r.Header.Get("Range"), "bytes=%d-%d", &first, &last); err != nil {
					t.Errorf("Range %q: %v", r.Header.Get("Range"), err)
					return false
				}
				first, last = c.rng(first, last, int64(len(data)))
				w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", first, last, len(data)))
				w.Header().Set("Content-Length", strconv.FormatInt(last-first+1, 10))
				w.WriteHeader(http.StatusPartialContent)
				_, _ = w.Write(data[first : last+1])
				return true
			})
			s := newSeed(t, ts.URL(), fx, Config{Retries: -1})
			if i, err := fetchAll(ctx, fx, s); err != nil {
				t.Fatalf("piece %d: %v", i, err)
			}
			checkRun(t, ctx, s, fx)
			if st := s.Status(); st.State != StateOK || st.Faults != 0 {
				t.Fatalf("status %+v", st)
			}
		})
	}
}
