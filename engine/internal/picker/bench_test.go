package picker

import (
	"math/rand/v2"
	"syscall"
	"testing"
	"time"
)

const (
	benchPieces = 100_000
	benchPeers  = 50
)

// benchPicker returns a picker for 100k pieces of 256 KiB, everything
// wanted, 4 pieces present, and 50 peers: 5 seeds and 45 with random
// bitfields of random density.
func benchPicker() *Picker {
	const plen = 256 * kib
	p := New(benchPieces, plen, benchPieces*plen, 0)
	p.SetDefault(Normal)
	rng := rand.New(rand.NewPCG(1, 2))
	bf := make([]bool, benchPieces)
	for id := range PeerID(benchPeers) {
		if id%10 == 0 {
			p.PeerHaveAll(id)
			continue
		}
		d := rng.Float64()
		for i := range bf {
			bf[i] = rng.Float64() < d
		}
		p.PeerBitfield(id, bf)
	}
	for i := range 4 {
		p.SetHave(i, true)
	}
	return p
}

// naivePick is the reference: a full scan of every piece for the rarest
// one the peer has, per piece picked.
func naivePick(p *Picker, peer PeerID, max int) []Request {
	ps := p.peers[peer]
	var out []Request
	for len(out) < max {
		best, bestAvail := -1, int32(1<<30)
		for i := range p.numPieces {
			if p.wantedP(i) && p.free(i) > 0 && (ps.seed || hasBit(ps.has, i)) && p.avail[i] < bestAvail {
				best, bestAvail = i, p.avail[i]
			}
		}
		if best < 0 {
			break
		}
		out = p.take(ps, best, out, max)
	}
	return out
}

// benchDownload runs the download loop: pick 8 blocks for the next peer and
// receive them, completing pieces as they fill.
func benchDownload(b *testing.B, pick func(*Picker, PeerID, int) []Request) {
	p := benchPicker()
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	defer func() {
		// CPU time is steadier than wall time on a shared machine. It
		// includes rebuilds after Done, which are rare at these b.N.
		b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
	}()
	for n := 0; n < b.N; n++ {
		peer := PeerID(n % benchPeers)
		reqs := pick(p, peer, 8)
		for _, r := range reqs {
			if p.Received(peer, r).PieceReady {
				p.PieceComplete(r.Piece)
			}
		}
		if p.Done() {
			b.StopTimer()
			p = benchPicker()
			b.StartTimer()
		}
	}
}

// BenchmarkPick measures one Pick of 8 blocks plus their Received calls on
// 100k pieces and 50 peers, beside a naive full-scan picker in the same run.
func BenchmarkPick(b *testing.B) {
	b.Run("picker", func(b *testing.B) {
		benchDownload(b, (*Picker).Pick)
	})
	b.Run("naive-scan", func(b *testing.B) {
		benchDownload(b, naivePick)
	})
}

// BenchmarkPickStreaming measures Pick while a reader's window moves one
// piece per operation, with the rest of the torrent at Normal.
func BenchmarkPickStreaming(b *testing.B) {
	p := benchPicker()
	b.ReportAllocs()
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		pos := 4 + n%(benchPieces-300)
		p.SetRanges(1, []Range{{pos, pos + 1, Now}, {pos + 1, pos + 256, Readahead}})
		peer := PeerID(n % benchPeers)
		for _, r := range p.Pick(peer, 8) {
			p.Rejected(peer, r)
		}
		p.CancelUnwanted()
	}
}

// BenchmarkPeerHave measures availability updates.
func BenchmarkPeerHave(b *testing.B) {
	p := benchPicker()
	p.PeerHaveNone(1000)
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		i := n % benchPieces
		if i == 0 && n > 0 {
			b.StopTimer()
			p.PeerGone(1000)
			p.PeerHaveNone(1000)
			b.StartTimer()
		}
		p.PeerHave(1000, i)
	}
}

// cpuTime returns the CPU time used by the process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
