package lsd

import (
	"bytes"
	"slices"
	"time"
)

// schedule decides which torrents an announce carries and when the next
// one may go out: each torrent at most once per interval, and messages at
// least gap apart. It is a plain value owned by one goroutine; the time is
// passed in.
type schedule struct {
	interval time.Duration
	gap      time.Duration
	last     map[[20]byte]time.Time // torrent: when last announced (zero: never)
	lastSend time.Time              // when the last message went out
}

func newSchedule(interval, gap time.Duration) *schedule {
	return &schedule{interval: interval, gap: gap, last: map[[20]byte]time.Time{}}
}

// set replaces the set of torrents, keeping the announce times of those
// that stay.
func (s *schedule) set(hashes [][20]byte) {
	next := make(map[[20]byte]time.Time, len(hashes))
	for _, h := range hashes {
		next[h] = s.last[h]
	}
	s.last = next
}

// has reports whether h is in the set.
func (s *schedule) has(h [20]byte) bool {
	_, ok := s.last[h]
	return ok
}

// due returns up to max torrents to announce at now, those announced
// longest ago first (ties by hash, for determinism), or nil when none is
// due or the last message went out less than gap ago.
func (s *schedule) due(now time.Time, max int) [][20]byte {
	if !s.lastSend.IsZero() && now.Sub(s.lastSend) < s.gap {
		return nil
	}
	var out [][20]byte
	for h, t := range s.last {
		if t.IsZero() || now.Sub(t) >= s.interval {
			out = append(out, h)
		}
	}
	slices.SortFunc(out, func(a, b [20]byte) int {
		if c := s.last[a].Compare(s.last[b]); c != 0 {
			return c
		}
		return bytes.Compare(a[:], b[:])
	})
	if len(out) > max {
		out = out[:max]
	}
	return out
}

// sent records that hashes were announced at now.
func (s *schedule) sent(now time.Time, hashes [][20]byte) {
	s.lastSend = now
	for _, h := range hashes {
		if _, ok := s.last[h]; ok {
			s.last[h] = now
		}
	}
}

// next returns when something may next be due: the earliest of the
// torrents' next announce times, but not before the gap after the last
// message. ok is false when the set is empty.
func (s *schedule) next() (at time.Time, ok bool) {
	for _, t := range s.last {
		d := t.Add(s.interval)
		if t.IsZero() {
			d = time.Time{}
		}
		if !ok || d.Before(at) {
			at, ok = d, true
		}
	}
	if ok && !s.lastSend.IsZero() && at.Before(s.lastSend.Add(s.gap)) {
		at = s.lastSend.Add(s.gap)
	}
	return at, ok
}
