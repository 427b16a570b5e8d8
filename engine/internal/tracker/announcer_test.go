package tracker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// fakeTrackers answers HTTP announces in memory, so announcer tests run in
// a synctest bubble with a fake clock. Each host has its own answer.
type fakeTrackers struct {
	mu      sync.Mutex
	reqs    []fakeReq
	answers map[string]func(q url.Values) (int, string) // by host
	block   map[string]bool                             // hosts that never answer
}

type fakeReq struct {
	at   time.Time
	host string
	q    url.Values
}

func newFakeTrackers() *fakeTrackers {
	return &fakeTrackers{answers: map[string]func(url.Values) (int, string){}, block: map[string]bool{}}
}

func (f *fakeTrackers) RoundTrip(r *http.Request) (*http.Response, error) {
	f.mu.Lock()
	f.reqs = append(f.reqs, fakeReq{time.Now(), r.URL.Host, r.URL.Query()})
	answer, block := f.answers[r.URL.Host], f.block[r.URL.Host]
	f.mu.Unlock()
	if block {
		<-r.Context().Done()
		return nil, r.Context().Err()
	}
	if answer == nil {
		return nil, errors.New("connection refused")
	}
	status, body := answer(r.URL.Query())
	return &http.Response{StatusCode: status, Status: fmt.Sprint(status), Body: io.NopCloser(strings.NewReader(body)),
		Header: http.Header{}, Request: r}, nil
}

func (f *fakeTrackers) set(host string, answer func(url.Values) (int, string)) {
	f.mu.Lock()
	f.answers[host] = answer
	f.mu.Unlock()
}

func (f *fakeTrackers) requests() []fakeReq {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.reqs)
}

// events lists "host:event" for each request, "none" for no event.
func (f *fakeTrackers) events() []string {
	var out []string
	for _, r := range f.requests() {
		ev := r.q.Get("event")
		if ev == "" {
			ev = "none"
		}
		out = append(out, r.host+":"+ev)
	}
	return out
}

// okAnswer answers with the given intervals (seconds) and one compact peer
// whose last address byte counts the answers.
func okAnswer(interval, minInterval int, extra string) func(url.Values) (int, string) {
	var n byte
	return func(url.Values) (int, string) {
		n++
		peer := string([]byte{127, 0, 4, n, 0x1a, 0xe1})
		return 200, fmt.Sprintf("d8:intervali%de12:min intervali%de5:peers6:%s%se", interval, minInterval, peer, extra)
	}
}

// startAnnouncer runs an Announcer in the bubble and returns a stop
// function that cancels it and waits for Run to return.
func startAnnouncer(t *testing.T, f *fakeTrackers, tiers [][]string, cfg AnnouncerConfig) (*Announcer, func()) {
	c := NewClient(Config{HTTPClient: &http.Client{Transport: f}})
	var up, down, left int64 = 1, 2, 3
	a := NewAnnouncer(c, tiers, cfg, func() (int64, int64, int64) { return up, down, left })
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	synctest.Wait()
	return a, func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		c.Close()
	}
}

func TestAnnouncerSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeTrackers()
		f.set("t1", okAnswer(1800, 60, "10:tracker id2:T115:warning message4:warn"))
		t0 := time.Now()
		a, stop := startAnnouncer(t, f, [][]string{{"http://t1/announce"}}, AnnouncerConfig{Port: 7000, NumWant: 12})
		if got := f.events(); !slices.Equal(got, []string{"t1:started"}) {
			t.Fatalf("events %v, want started first", got)
		}
		q := f.requests()[0].q
		if q.Get("uploaded") != "1" || q.Get("downloaded") != "2" || q.Get("left") != "3" ||
			q.Get("port") != "7000" || q.Get("numwant") != "12" || q.Has("trackerid") {
			t.Fatalf("first query %v", q)
		}
		st := a.Status()
		if st.URL != "http://t1/announce" || st.Warning != "warn" || st.Announces != 1 || st.LastError != nil ||
			!st.NextAnnounce.Equal(t0.Add(1800*time.Second)) || st.Peers != 1 {
			t.Fatalf("status %+v", st)
		}
		time.Sleep(1799 * time.Second)
		synctest.Wait()
		if n := len(f.requests()); n != 1 {
			t.Fatalf("%d requests before the interval", n)
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		reqs := f.requests()
		if got := f.events(); !slices.Equal(got, []string{"t1:started", "t1:none"}) {
			t.Fatalf("events %v", got)
		}
		if reqs[1].at.Sub(t0) != 1800*time.Second || reqs[1].q.Get("trackerid") != "T1" {
			t.Fatalf("re-announce at %v with query %v", reqs[1].at.Sub(t0), reqs[1].q)
		}
		stop()
		if got := f.events(); !slices.Equal(got, []string{"t1:started", "t1:none", "t1:stopped"}) {
			t.Fatalf("events after stop %v", got)
		}
		if !a.Status().NextAnnounce.IsZero() {
			t.Fatal("NextAnnounce set after Run returned")
		}
	})
}

func TestAnnouncerNeedPeersRateLimited(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeTrackers()
		f.set("t1", okAnswer(1800, 60, ""))
		t0 := time.Now()
		a, stop := startAnnouncer(t, f, [][]string{{"http://t1/a"}}, AnnouncerConfig{MinInterval: 30 * time.Second})
		defer stop()
		<-a.Peers()
		time.Sleep(10 * time.Second)
		for range 5 {
			a.NeedPeers()
		}
		synctest.Wait()
		time.Sleep(49 * time.Second) // t0+59s: the tracker's min interval (60 s) is not over
		synctest.Wait()
		if n := len(f.requests()); n != 1 {
			t.Fatalf("%d requests within the min interval", n)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		reqs := f.requests()
		if len(reqs) != 2 || reqs[1].at.Sub(t0) != 60*time.Second {
			t.Fatalf("requests %d, last at %v; want the early announce at 60 s", len(reqs), reqs[len(reqs)-1].at.Sub(t0))
		}
		select {
		case p := <-a.Peers():
			if !slices.Equal(p, []netip.AddrPort{ap("127.0.4.2:6881")}) {
				t.Fatalf("peers %v", p)
			}
		default:
			t.Fatal("no peers delivered after NeedPeers")
		}
		// Much later, NeedPeers announces at once.
		time.Sleep(10 * time.Minute)
		a.NeedPeers()
		synctest.Wait()
		if reqs := f.requests(); len(reqs) != 3 || reqs[2].at.Sub(t0) != 660*time.Second {
			t.Fatalf("NeedPeers after the min interval did not announce at once: %d requests", len(reqs))
		}
	})
}

func TestAnnouncerCompletedOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeTrackers()
		f.set("t1", okAnswer(100, 0, ""))
		a, stop := startAnnouncer(t, f, [][]string{{"http://t1/a"}}, AnnouncerConfig{MinInterval: 30 * time.Second})
		time.Sleep(40 * time.Second)
		a.Completed()
		a.Completed()
		synctest.Wait()
		time.Sleep(150 * time.Second) // one regular announce at 140 s
		a.Completed()
		synctest.Wait()
		stop()
		want := []string{"t1:started", "t1:completed", "t1:none", "t1:stopped"}
		if got := f.events(); !slices.Equal(got, want) {
			t.Fatalf("events %v, want %v", got, want)
		}
		if at := f.requests()[1].at.Sub(f.requests()[0].at); at != 40*time.Second {
			t.Fatalf("completed sent after %v, want at once (40 s)", at)
		}
	})
}

func TestAnnouncerCompleteFromTheStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeTrackers()
		f.set("t1", okAnswer(100, 0, ""))
		c := NewClient(Config{HTTPClient: &http.Client{Transport: f}})
		defer c.Close()
		a := NewAnnouncer(c, [][]string{{"http://t1/a"}}, AnnouncerConfig{}, func() (int64, int64, int64) { return 5, 0, 0 })
		a.Completed() // a seed: complete before Run
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- a.Run(ctx) }()
		time.Sleep(150 * time.Second)
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		want := []string{"t1:started", "t1:none", "t1:stopped"}
		if got := f.events(); !slices.Equal(got, want) {
			t.Fatalf("events %v, want %v", got, want)
		}
		if q := f.requests()[0].q; q.Get("left") != "0" || q.Get("uploaded") != "5" {
			t.Fatalf("started query %v", q)
		}
	})
}

func TestAnnouncerPeersMergedForSlowReader(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeTrackers()
		f.set("t1", okAnswer(60, 0, ""))
		a, stop := startAnnouncer(t, f, [][]string{{"http://t1/a"}}, AnnouncerConfig{MinInterval: time.Second, MaxPendingPeers: 3})
		defer stop()
		time.Sleep(5*time.Minute + time.Second) // five more announces, nobody reading
		synctest.Wait()
		if n := len(f.requests()); n != 6 {
			t.Fatalf("%d requests; a slow reader blocked the announcer?", n)
		}
		got := <-a.Peers()
		want := []netip.AddrPort{ap("127.0.4.6:6881"), ap("127.0.4.5:6881"), ap("127.0.4.4:6881")}
		if !slices.Equal(got, want) {
			t.Fatalf("pending peers %v, want the newest three %v", got, want)
		}
		select {
		case p := <-a.Peers():
			t.Fatalf("second batch %v pending", p)
		default:
		}
	})
}

func TestAnnouncerTierFailover(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeTrackers()
		f.set("bad", func(url.Values) (int, string) { return 200, "d14:failure reason4:nopee" })
		f.set("good", okAnswer(600, 0, ""))
		a, stop := startAnnouncer(t, f, [][]string{{"http://bad/a"}, {"http://good/a"}}, AnnouncerConfig{})
		if got := f.events(); !slices.Equal(got, []string{"bad:started", "good:started"}) {
			t.Fatalf("events %v", got)
		}
		st := a.Status()
		if st.URL != "http://good/a" || st.LastError != nil || st.Failures != 1 {
			t.Fatalf("status %+v", st)
		}
		// The bad tracker comes back: the next round asks it first and it
		// gets "started", as it never accepted one.
		f.set("bad", okAnswer(600, 0, ""))
		time.Sleep(601 * time.Second)
		synctest.Wait()
		stop()
		got := f.events()
		want := []string{"bad:started", "good:started", "bad:started", "bad:stopped", "good:stopped"}
		slices.Sort(got[3:])
		if !slices.Equal(got, want) {
			t.Fatalf("events %v, want %v", got, want)
		}
	})
}

func TestAnnouncerRetryBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeTrackers()
		f.set("t1", func(url.Values) (int, string) { return 503, "busy" })
		t0 := time.Now()
		a, stop := startAnnouncer(t, f, [][]string{{"http://t1/a"}}, AnnouncerConfig{
			RetryInterval: time.Minute, DefaultInterval: 5 * time.Minute})
		time.Sleep(20 * time.Minute)
		synctest.Wait()
		if err := a.LastError(); !errors.Is(err, ErrHTTPStatus) {
			t.Fatalf("LastError %v", err)
		}
		var offsets []time.Duration
		for _, r := range f.requests() {
			offsets = append(offsets, r.at.Sub(t0))
		}
		m := time.Minute
		want := []time.Duration{0, 1 * m, 3 * m, 7 * m, 12 * m, 17 * m}
		if !slices.Equal(offsets, want) {
			t.Fatalf("attempts at %v, want %v (doubling up to DefaultInterval)", offsets, want)
		}
		stop()
		// Nothing was started, so nothing is stopped.
		if n := len(f.requests()); n != len(want) {
			t.Fatalf("stopped sent to a tracker that never accepted started")
		}
	})
}

func TestAnnouncerStopTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeTrackers()
		f.set("t1", okAnswer(600, 0, ""))
		_, stop := startAnnouncer(t, f, [][]string{{"http://t1/a"}}, AnnouncerConfig{StopTimeout: 3 * time.Second})
		f.mu.Lock()
		f.block["t1"] = true
		f.mu.Unlock()
		t0 := time.Now()
		stop()
		if d := time.Since(t0); d != 3*time.Second {
			t.Fatalf("Run returned after %v, want the 3 s stop timeout", d)
		}
	})
}

func TestAnnouncerCancelDuringAnnounce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeTrackers()
		f.block["t1"] = true
		a, stop := startAnnouncer(t, f, [][]string{{"http://t1/a"}}, AnnouncerConfig{})
		if err := a.Run(t.Context()); err == nil {
			t.Fatal("a second concurrent Run was allowed")
		}
		t0 := time.Now()
		stop() // the blocked started announce is abandoned, nothing to stop
		if d := time.Since(t0); d != 0 {
			t.Fatalf("stop took %v", d)
		}
		if a.LastError() != nil {
			t.Fatalf("cancellation recorded as a tracker error: %v", a.LastError())
		}
	})
}

func TestAnnouncerNoTrackers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeTrackers()
		a, stop := startAnnouncer(t, f, nil, AnnouncerConfig{})
		a.NeedPeers()
		time.Sleep(time.Hour)
		synctest.Wait()
		stop()
		if len(f.requests()) != 0 {
			t.Fatal("requests without trackers")
		}
	})
}
