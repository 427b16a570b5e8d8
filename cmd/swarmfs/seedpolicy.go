package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/swarmfs/swarmfs/engine"
	"github.com/swarmfs/swarmfs/metainfo"
)

// seedPolicy says when to stop seeding a torrent: once its share ratio
// (payload bytes uploaded since it was added, over the bytes of it held in
// the cache) reaches Ratio, or once it has seeded for Time; whichever
// comes first. Zero fields are not limits; the zero policy seeds forever.
type seedPolicy struct {
	Ratio float64
	Time  time.Duration
}

// set reports whether the policy ever stops seeding.
func (p seedPolicy) set() bool { return p.Ratio > 0 || p.Time > 0 }

// String describes the policy for people ("ratio 2 or 1h0m0s").
func (p seedPolicy) String() string {
	switch {
	case p.Ratio > 0 && p.Time > 0:
		return fmt.Sprintf("ratio %g or %v", p.Ratio, p.Time)
	case p.Ratio > 0:
		return fmt.Sprintf("ratio %g", p.Ratio)
	case p.Time > 0:
		return p.Time.String()
	}
	return "forever"
}

// reached reports whether seeding may stop, and why, for a torrent that
// uploaded up bytes, holds have bytes in the cache and has seeded for
// seeded. A torrent with nothing cached has nothing to seed.
func (p seedPolicy) reached(up, have int64, seeded time.Duration) (bool, string) {
	if !p.set() {
		return false, ""
	}
	if have <= 0 {
		return true, "nothing cached to seed"
	}
	if ratio := float64(up) / float64(have); p.Ratio > 0 && ratio >= p.Ratio {
		return true, fmt.Sprintf("ratio %.2f reached (%s uploaded)", ratio, humanize.IBytes(uint64(up)))
	}
	if p.Time > 0 && seeded >= p.Time {
		return true, fmt.Sprintf("seeded for %v (%s uploaded)", p.Time, humanize.IBytes(uint64(up)))
	}
	return false, ""
}

// seedPolicyFlags are --seed-ratio and --seed-time.
type seedPolicyFlags struct{ p seedPolicy }

// register adds the flags; when says which seeding they end.
func (f *seedPolicyFlags) register(fset *flag.FlagSet, when string) {
	fset.Float64Var(&f.p.Ratio, "seed-ratio", 0, "stop seeding "+when+" once `R` times its cached bytes were uploaded (default: no ratio limit)")
	fset.DurationVar(&f.p.Time, "seed-time", 0, "stop seeding "+when+" after `DURATION` (default: no time limit); with --seed-ratio, whichever comes first")
}

func (f *seedPolicyFlags) check() error {
	if f.p.Ratio < 0 {
		return usageError("--seed-ratio must not be negative")
	}
	if f.p.Time < 0 {
		return usageError("--seed-time must not be negative")
	}
	return nil
}

// seedPollEvery is how often a seeding torrent's stats are checked
// against its policy.
const seedPollEvery = time.Second

// waitSeedPolicy waits until t has seeded as p asks, counting the time
// from start, and says why it stopped. It returns early with ctx's error,
// or engine.ErrClosed when the torrent is removed first. t's Stats read a
// snapshot: polling never waits on the torrent's loop.
func waitSeedPolicy(ctx context.Context, t *engine.Torrent, p seedPolicy, start time.Time, every time.Duration) (string, error) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		st := t.Stats()
		if ok, why := p.reached(st.Uploaded, st.BytesHave, time.Since(start)); ok {
			return why, nil
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-t.Done():
			return "", engine.ErrClosed
		case <-tick.C:
		}
	}
}

// removedSeeding keeps torrents removed from a running mount or server in
// the engine, seeding their cached pieces (within the cache cap, like
// every torrent) until the seed policy is reached; then they leave the
// engine. Its methods are safe for concurrent use.
type removedSeeding struct {
	policy seedPolicy
	log    *slog.Logger

	mu      sync.Mutex // guards seeding
	seeding map[metainfo.Hash]*lingering
	wg      sync.WaitGroup
}

// lingering is one removed torrent that is still seeding.
type lingering struct {
	t      *engine.Torrent
	cancel context.CancelFunc
	done   chan struct{} // closed once t is removed from the engine
}

func newRemovedSeeding(p seedPolicy, log *slog.Logger) *removedSeeding {
	return &removedSeeding{policy: p, log: log, seeding: map[metainfo.Hash]*lingering{}}
}

// keep starts seeding the removed torrent t until the policy is reached,
// then removes it from the engine. It reports false (the caller removes t
// now) when the policy is not set. A nil removedSeeding keeps nothing.
func (s *removedSeeding) keep(t *engine.Torrent) bool {
	if s == nil || !s.policy.set() {
		return false
	}
	ctx, cancel := context.WithCancel(context.Background())
	lg := &lingering{t: t, cancel: cancel, done: make(chan struct{})}
	h := t.InfoHash()
	s.mu.Lock()
	s.seeding[h] = lg
	s.mu.Unlock()
	s.log.Info("torrent removed; seeding its cached pieces", "name", t.Name(), "infohash", h.String(), "until", s.policy.String())
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(lg.done)
		why, err := waitSeedPolicy(ctx, t, s.policy, time.Now(), seedPollEvery)
		cancel()
		_ = t.Remove()
		s.mu.Lock()
		if s.seeding[h] == lg {
			delete(s.seeding, h)
		}
		s.mu.Unlock()
		if err == nil {
			s.log.Info("stopped seeding a removed torrent", "name", t.Name(), "infohash", h.String(), "why", why)
		}
	}()
	return true
}

// stop ends the seeding of removed torrent h, if any, and waits until it
// left the engine (so that it can be added again).
func (s *removedSeeding) stop(h metainfo.Hash) {
	if s == nil {
		return
	}
	s.mu.Lock()
	lg := s.seeding[h]
	s.mu.Unlock()
	if lg == nil {
		return
	}
	lg.cancel()
	<-lg.done // t.Remove returns once the torrent's goroutines ended
}

// Close stops every removed torrent's seeding and waits for it.
func (s *removedSeeding) Close() {
	if s == nil {
		return
	}
	s.mu.Lock()
	for _, lg := range s.seeding {
		lg.cancel()
	}
	s.mu.Unlock()
	s.wg.Wait()
}
