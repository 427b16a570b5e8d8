package webseed

import (
	"compress/gzip"
	"context"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"
)

func TestRetryAfter(t *testing.T) {
	fx := hostileFixture(t)
	ctx := testCtx(t)
	ts := newTestServer(t, fx, nil)
	// The first request gets 503 with a short Retry-After: the fetch waits
	// that long, then succeeds.
	ts.setHook(func(w http.ResponseWriter, r *http.Request, n int64) bool {
		if n == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
			return true
		}
		return false
	})
	s := newSeed(t, ts.URL(), fx, Config{})
	start := time.Now()
	if err := fetchErr(ctx, s, fx, 0); err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited < time.Second {
		t.Fatalf("retried after %v, before the 1 s Retry-After", waited)
	}

	// Retry-After outlasts the backoff after spent retries.
	ts.setHook(func(w http.ResponseWriter, r *http.Request, n int64) bool {
		w.Header().Set("Retry-After", "3")
		w.WriteHeader(http.StatusBadGateway)
		return true
	})
	s = newSeed(t, ts.URL(), fx, Config{Retries: -1, MinBackoff: time.Millisecond})
	before := time.Now()
	if err := fetchErr(ctx, s, fx, 0); !errors.Is(err, ErrServer) {
		t.Fatalf("502: %v, want ErrServer", err)
	}
	if st := s.Status(); st.State != StateBackoff || st.Until.Before(before.Add(3*time.Second)) {
		t.Fatalf("502 with Retry-After 3: %v, want backoff for 3 s", st)
	}

	// A long Retry-After, in seconds or as an HTTP-date, fails the fetch
	// at once and backs the seed off until then, capped.
	for _, ra := range []string{"7200", time.Now().Add(2 * time.Hour).UTC().Format(http.TimeFormat)} {
		ts.setHook(func(w http.ResponseWriter, r *http.Request, n int64) bool {
			w.Header().Set("Retry-After", ra)
			w.WriteHeader(http.StatusTooManyRequests)
			return true
		})
		s := newSeed(t, ts.URL(), fx, Config{MaxRetryAfter: 10 * time.Minute})
		before := time.Now()
		err := fetchErr(ctx, s, fx, 0)
		var re *Error
		if !errors.Is(err, ErrServer) || !errors.As(err, &re) || re.RetryAfter != 10*time.Minute {
			t.Fatalf("Retry-After %q: %v, want ErrServer with RetryAfter capped at 10 min", ra, err)
		}
		st := s.Status()
		if st.State != StateBackoff || st.Until.Before(before.Add(9*time.Minute)) || st.Until.After(time.Now().Add(10*time.Minute)) {
			t.Fatalf("Retry-After %q: %v, want backoff for 10 min", ra, st)
		}
	}
}

func TestServerErrorsAndResets(t *testing.T) {
	fx := hostileFixture(t)
	ctx := testCtx(t)
	ts := newTestServer(t, fx, nil)
	// Two of every three requests fail: a 500, then a reset.
	ts.setHook(func(w http.ResponseWriter, r *http.Request, n int64) bool {
		switch n % 3 {
		case 1:
			w.WriteHeader(http.StatusInternalServerError)
			return true
		case 2:
			reset(w)
			return true
		}
		return false
	})
	s := newSeed(t, ts.URL(), fx, Config{})
	if i, err := fetchAll(ctx, fx, s); err != nil {
		t.Fatalf("piece %d: %v", i, err)
	}
	if st := s.Status(); st.State != StateOK {
		t.Fatalf("status %v after recovered errors", st)
	}

	// Always reset: ErrConn, then backoff that ends on its own.
	ts.setHook(func(w http.ResponseWriter, r *http.Request, n int64) bool { reset(w); return true })
	s = newSeed(t, ts.URL(), fx, Config{Retries: 1, MinBackoff: 50 * time.Millisecond})
	if err := fetchErr(ctx, s, fx, 0); !errors.Is(err, ErrConn) {
		t.Fatalf("always reset: %v, want ErrConn", err)
	}
	if st := s.Status(); st.State != StateBackoff {
		t.Fatalf("status %v, want backoff", st)
	}
	for s.Free() == 0 {
		select {
		case <-ctx.Done():
			t.Fatal("backoff never ended")
		case <-time.After(10 * time.Millisecond):
		}
	}
	if st := s.Status(); st.State != StateOK || st.Cause != nil {
		t.Fatalf("after the backoff: %v", st)
	}
}

func TestRedirects(t *testing.T) {
	fx := hostileFixture(t)
	ctx := testCtx(t)
	origin := newTestServer(t, fx, nil)
	ts := newTestServer(t, fx, nil)
	// /hop/N/path redirects to /hop/N-1/path, and /hop/0/path to the origin.
	ts.setHook(func(w http.ResponseWriter, r *http.Request, _ int64) bool {
		n, rest, ok := parseHop(r.URL.EscapedPath())
		if !ok {
			http.NotFound(w, r)
			return true
		}
		target := origin.Server.URL + rest
		if n > 0 {
			target = ts.Server.URL + "/hop/" + strconv.Itoa(n-1) + rest
		}
		http.Redirect(w, r, target, http.StatusFound)
		return true
	})
	s := newSeed(t, ts.URL()+"hop/3/", fx, Config{})
	if i, err := fetchAll(ctx, fx, s); err != nil {
		t.Fatalf("3 redirects: piece %d: %v", i, err)
	}
	s = newSeed(t, ts.URL()+"hop/3/", fx, Config{MaxRedirects: 2})
	if err := fetchErr(ctx, s, fx, 0); !errors.Is(err, ErrRedirect) {
		t.Fatalf("4 redirects with MaxRedirects 2: %v, want ErrRedirect", err)
	}
	ftp := newTestServer(t, fx, func(w http.ResponseWriter, r *http.Request, _ int64) bool {
		http.Redirect(w, r, "ftp://127.0.0.1/x", http.StatusMovedPermanently)
		return true
	})
	s = newSeed(t, ftp.URL(), fx, Config{})
	if err := fetchErr(ctx, s, fx, 0); !errors.Is(err, ErrRedirect) {
		t.Fatalf("redirect to ftp: %v, want ErrRedirect", err)
	}
}

func TestConnectionLimitAndReuse(t *testing.T) {
	fx := hostileFixture(t)
	ctx := testCtx(t)
	ts := newTestServer(t, fx, func(w http.ResponseWriter, r *http.Request, _ int64) bool {
		time.Sleep(2 * time.Millisecond) // let fetches overlap
		return false
	})
	s := newSeed(t, ts.URL(), fx, Config{MaxConns: 2})
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for round := range 4 {
		for i := range fx.info.NumPieces() {
			wg.Add(1)
			go func() {
				defer wg.Done()
				buf := make([]byte, fx.info.PieceSize(i))
				err := s.Fetch(ctx, i, buf)
				if err == nil && !fx.verify(i, buf) {
					t.Errorf("round %d piece %d: hash mismatch", round, i)
				}
				if err != nil {
					errs <- err
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if m := ts.maxAtOnce.Load(); m > 2 {
		t.Fatalf("%d requests at once with MaxConns 2", m)
	}
	if c, r := ts.conns.Load(), ts.requests.Load(); c > 2 {
		t.Fatalf("%d connections for %d requests: keep-alive not reused or limit broken", c, r)
	}
}

func TestContentEncoding(t *testing.T) {
	fx := hostileFixture(t)
	ctx := testCtx(t)
	ts := newTestServer(t, fx, func(w http.ResponseWriter, r *http.Request, _ int64) bool {
		w.Header().Set("Content-Encoding", "gzip")
		w.WriteHeader(http.StatusOK)
		zw := gzip.NewWriter(w)
		_, _ = zw.Write(make([]byte, 1000))
		_ = zw.Close()
		return true
	})
	s := newSeed(t, ts.URL(), fx, Config{})
	if err := fetchErr(ctx, s, fx, 0); !errors.Is(err, ErrBadResponse) {
		t.Fatalf("gzip body: %v, want ErrBadResponse", err)
	}
}

func TestDeliverErrorAndArguments(t *testing.T) {
	fx := hostileFixture(t)
	ctx := testCtx(t)
	s := newSeed(t, newTestServer(t, fx, nil).URL(), fx, Config{})
	stop := errors.New("enough")
	got := 0
	err := s.FetchRun(ctx, 0, fx.info.NumPieces(), make([]byte, hostilePL), func(p int, data []byte) error {
		if !fx.verify(p, data) {
			t.Errorf("piece %d: hash mismatch", p)
		}
		if got++; got == 3 {
			return stop
		}
		return nil
	})
	if err != stop || got != 3 {
		t.Fatalf("deliver's error: FetchRun returned %v after %d pieces, want it unchanged after 3", err, got)
	}
	if st := s.Status(); st.State != StateOK || st.Faults != 0 {
		t.Fatalf("status %+v: the caller's error was charged", st)
	}
	for _, c := range []struct {
		first, end, buf int
	}{{-1, 1, hostilePL}, {0, fx.info.NumPieces() + 1, hostilePL}, {2, 2, hostilePL}, {0, 2, hostilePL - 1}} {
		if err := s.FetchRun(ctx, c.first, c.end, make([]byte, c.buf), nil); !errors.Is(err, ErrBadRange) {
			t.Errorf("FetchRun(%d, %d, %d bytes): %v, want ErrBadRange", c.first, c.end, c.buf, err)
		}
	}
	// A cancelled context ends a fetch waiting for a slot.
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := fetchErr(cancelled, s, fx, 0); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
	s.Close()
	if err := fetchErr(ctx, s, fx, 0); !errors.Is(err, ErrDropped) || !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v, want ErrDropped and ErrClosed", err)
	}
}

// TestDeadlines checks that no fetch outlives its context, whatever the
// server does, with timeouts and retry waits far longer than the deadline.
func TestDeadlines(t *testing.T) {
	fx := hostileFixture(t)
	ctx := testCtx(t)
	var ts *testServer
	wait := func(r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-ts.quit:
		}
	}
	cases := []struct {
		name string
		hook hookFunc
	}{
		{"no answer", func(w http.ResponseWriter, r *http.Request, _ int64) bool { wait(r); return true }},
		{"stall mid-body", func(w http.ResponseWriter, r *http.Request, _ int64) bool { ts.stall(w, r); return true }},
		{"dribble", func(w http.ResponseWriter, r *http.Request, _ int64) bool {
			w.Header().Set("Content-Range", "bytes 0-16383/82020")
			w.Header().Set("Content-Length", "16384")
			w.WriteHeader(http.StatusPartialContent)
			for range 16384 {
				if _, err := w.Write([]byte{0}); err != nil {
					return true
				}
				_ = http.NewResponseController(w).Flush()
				select {
				case <-r.Context().Done():
					return true
				case <-ts.quit:
					return true
				case <-time.After(20 * time.Millisecond):
				}
			}
			return true
		}},
		{"retry-after", func(w http.ResponseWriter, r *http.Request, _ int64) bool {
			w.Header().Set("Retry-After", "4")
			w.WriteHeader(http.StatusServiceUnavailable)
			return true
		}},
	}
	ts = newTestServer(t, fx, nil)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ts.setHook(c.hook)
			s := newSeed(t, ts.URL(), fx, Config{IdleTimeout: time.Hour, MaxRetryWait: time.Hour, RetryDelay: time.Hour, MaxConns: 1})
			short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
			defer cancel()
			done := make(chan error, 2)
			for range 2 { // the second waits for the only slot
				go func() { done <- fetchErr(short, s, fx, 0) }()
			}
			for range 2 {
				select {
				case err := <-done:
					if !errors.Is(err, context.DeadlineExceeded) {
						t.Fatalf("%v, want context.DeadlineExceeded", err)
					}
				case <-ctx.Done():
					t.Fatal("a fetch hung past its deadline")
				}
			}
			if st := s.Status(); st.State != StateOK || st.Faults != 0 {
				t.Fatalf("the caller's deadline was charged: %v", st)
			}
		})
	}
}
