package holepunch

import (
	"net/netip"
	"time"
)

// window counts events in a sliding window of one minute: at most max
// times are kept, oldest first.
type window struct {
	at []time.Time
}

// allow reports whether one more event at now keeps the count within max
// per minute, and records it if so.
func (w *window) allow(now time.Time, max int) bool {
	if !w.room(now, max) {
		return false
	}
	w.at = append(w.at, now)
	return true
}

// room reports whether one more event at now keeps the count within max
// per minute, recording nothing.
func (w *window) room(now time.Time, max int) bool {
	for len(w.at) > 0 && now.Sub(w.at[0]) >= time.Minute {
		w.at = w.at[1:]
	}
	return len(w.at) < max
}

// allowAll records one event at now in each window if every one of them
// has room (max[i] for ws[i]), and reports whether it did.
func allowAll(now time.Time, ws []*window, max []int) bool {
	for i, w := range ws {
		if !w.room(now, max[i]) {
			return false
		}
	}
	for _, w := range ws {
		w.at = append(w.at, now)
	}
	return true
}

// idle reports whether the window holds no event of the last minute.
func (w *window) idle(now time.Time) bool {
	return len(w.at) == 0 || now.Sub(w.at[len(w.at)-1]) >= time.Minute
}

// windows is a bounded map of per-address windows: when full, idle
// entries are dropped, and if none is idle the address shares the
// overflow window.
type windows struct {
	max      int
	m        map[netip.Addr]*window
	overflow window
}

func (ws *windows) get(a netip.Addr, now time.Time) *window {
	if w := ws.m[a]; w != nil {
		return w
	}
	if ws.m == nil {
		ws.m = map[netip.Addr]*window{}
	}
	if len(ws.m) >= ws.max {
		for k, w := range ws.m {
			if w.idle(now) {
				delete(ws.m, k)
			}
		}
	}
	if len(ws.m) >= ws.max {
		return &ws.overflow
	}
	w := &window{}
	ws.m[a] = w
	return w
}
