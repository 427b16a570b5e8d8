package lsd

import (
	"testing"
	"time"
)

func TestSchedule(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	s := newSchedule(5*time.Minute, 10*time.Second)
	if _, ok := s.next(); ok {
		t.Fatal("next with no torrents")
	}
	a, b, c := hash(1), hash(2), hash(3)
	s.set([][20]byte{a, b})
	if at, ok := s.next(); !ok || !at.IsZero() {
		t.Fatalf("new torrents are due at once, next = %v %v", at, ok)
	}
	due := s.due(t0, 24)
	if len(due) != 2 {
		t.Fatalf("due %v", due)
	}
	s.sent(t0, due)
	// Nothing again before the interval; a new torrent waits for the gap.
	s.set([][20]byte{a, b, c})
	if d := s.due(t0.Add(5*time.Second), 24); d != nil {
		t.Fatalf("within the gap: %v", d)
	}
	if at, _ := s.next(); !at.Equal(t0.Add(10 * time.Second)) {
		t.Fatalf("next = %v, want the end of the gap", at)
	}
	if d := s.due(t0.Add(10*time.Second), 24); len(d) != 1 || d[0] != c {
		t.Fatalf("after the gap: %v, want only the new torrent", d)
	}
	s.sent(t0.Add(10*time.Second), [][20]byte{c})
	if at, _ := s.next(); !at.Equal(t0.Add(5 * time.Minute)) {
		t.Fatalf("next = %v, want a's and b's interval", at)
	}
	if d := s.due(t0.Add(4*time.Minute), 24); d != nil {
		t.Fatalf("before the interval: %v", d)
	}
	// At most max per message, oldest first.
	d := s.due(t0.Add(6*time.Minute), 1)
	if len(d) != 1 || (d[0] != a && d[0] != b) {
		t.Fatalf("max 1: %v", d)
	}
	// Dropping a torrent forgets it.
	s.set([][20]byte{c})
	if s.has(a) || !s.has(c) {
		t.Fatal("set did not replace")
	}
}
