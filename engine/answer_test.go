package engine

import (
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/internal/picker"
)

// TestAnswersMatchSendsInOrder covers the race that made us drop good
// libtorrent peers: we request a block, cancel it (the window moved), and
// request it again; the peer answers the cancelled send with a BEP 6
// reject, then sends the block. Neither answer is a protocol violation, and
// the reject must not count against the live request.
func TestAnswersMatchSendsInOrder(t *testing.T) {
	r := picker.Request{Piece: 7, Begin: 16384, Length: 16384}
	other := picker.Request{Piece: 8, Begin: 0, Length: 16384}
	now := time.Now()
	tests := []struct {
		name    string
		sends   func(p *peer)
		answers []picker.Request
		want    []string // "stale", "live" or "none" per answer
	}{
		{"plain request", func(p *peer) { p.reqSent[r] = now },
			[]picker.Request{r, r}, []string{"live", "none"}},
		{"cancelled then requested again", func(p *peer) {
			p.reqSent[r] = now
			delete(p.reqSent, r)
			p.supersede(r, now)
			p.reqSent[r] = now
		}, []picker.Request{r, r, r}, []string{"stale", "live", "none"}},
		{"timed out and sent twice more", func(p *peer) {
			p.supersede(r, now)
			p.supersede(r, now)
			p.reqSent[r] = now
		}, []picker.Request{r, r, r, r}, []string{"stale", "stale", "live", "none"}},
		{"unrequested block", func(p *peer) { p.reqSent[r] = now },
			[]picker.Request{other}, []string{"none"}},
	}
	for _, tt := range tests {
		p := &peer{reqSent: map[picker.Request]time.Time{}, stale: map[picker.Request]staleSend{}}
		tt.sends(p)
		for i, a := range tt.answers {
			ok, live := p.answered(a)
			got := "none"
			if ok && live {
				got = "live"
			} else if ok {
				got = "stale"
			}
			if got != tt.want[i] {
				t.Errorf("%s: answer %d matched %s, want %s", tt.name, i, got, tt.want[i])
			}
		}
	}
}
