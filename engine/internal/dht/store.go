package dht

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"math"
	"net/netip"
	"time"

	"github.com/swarmfs/swarmfs/metainfo"
)

// peerStore keeps the peers announced to us, bounded by a cap on info hashes
// and on peers per hash; entries expire after ttl. Loop goroutine only.
type peerStore struct {
	maxHashes, maxPeers int
	ttl                 time.Duration
	swarms              map[metainfo.Hash]*swarm
	peers               int
}

type swarm struct {
	peers map[netip.AddrPort]time.Time // peer -> announced at
	last  time.Time
}

func newPeerStore(maxHashes, maxPeers int, ttl time.Duration) *peerStore {
	return &peerStore{maxHashes: maxHashes, maxPeers: maxPeers, ttl: ttl, swarms: map[metainfo.Hash]*swarm{}}
}

// add records peer p for ih, evicting the least recently announced info hash
// or the oldest peer of ih when a cap is reached.
func (s *peerStore) add(ih metainfo.Hash, p netip.AddrPort, now time.Time) {
	sw := s.swarms[ih]
	if sw == nil {
		if len(s.swarms) >= s.maxHashes {
			s.expire(now)
		}
		if len(s.swarms) >= s.maxHashes {
			var oldest metainfo.Hash
			var oldestAt time.Time
			first := true
			for h, o := range s.swarms {
				if first || o.last.Before(oldestAt) {
					oldest, oldestAt, first = h, o.last, false
				}
			}
			s.peers -= len(s.swarms[oldest].peers)
			delete(s.swarms, oldest)
		}
		sw = &swarm{peers: map[netip.AddrPort]time.Time{}}
		s.swarms[ih] = sw
	}
	sw.last = now
	if _, ok := sw.peers[p]; !ok && len(sw.peers) >= s.maxPeers {
		var oldest netip.AddrPort
		var oldestAt time.Time
		first := true
		for q, at := range sw.peers {
			if first || at.Before(oldestAt) {
				oldest, oldestAt, first = q, at, false
			}
		}
		delete(sw.peers, oldest)
		s.peers--
	}
	if _, ok := sw.peers[p]; !ok {
		s.peers++
	}
	sw.peers[p] = now
}

// get returns up to n unexpired peers of ih whose family is in fam, in
// random (map) order.
func (s *peerStore) get(ih metainfo.Hash, n int, now time.Time, fam family) []netip.AddrPort {
	sw := s.swarms[ih]
	if sw == nil {
		return nil
	}
	var out []netip.AddrPort
	for p, at := range sw.peers {
		if now.Sub(at) >= s.ttl || !fam.has(familyOf(p.Addr())) {
			continue
		}
		out = append(out, p)
		if len(out) == n {
			break
		}
	}
	return out
}

// expire drops expired peers and empty info hashes.
func (s *peerStore) expire(now time.Time) {
	for h, sw := range s.swarms {
		for p, at := range sw.peers {
			if now.Sub(at) >= s.ttl {
				delete(sw.peers, p)
				s.peers--
			}
		}
		if len(sw.peers) == 0 {
			delete(s.swarms, h)
		}
	}
}

// tokens makes and checks announce tokens: an HMAC of the requester's IP
// under a secret that rotates; the previous secret stays valid. Loop only.
type tokens struct {
	cur, prev [16]byte
}

const tokenLen = 8

func newTokens() *tokens {
	t := &tokens{}
	rand.Read(t.cur[:])
	rand.Read(t.prev[:])
	return t
}

func (t *tokens) rotate() {
	t.prev = t.cur
	rand.Read(t.cur[:])
}

func tokenFor(secret [16]byte, ip netip.Addr) string {
	m := hmac.New(sha256.New, secret[:])
	b := ip.Unmap().As16()
	m.Write(b[:])
	return string(m.Sum(nil)[:tokenLen])
}

func (t *tokens) make(ip netip.Addr) string { return tokenFor(t.cur, ip) }

func (t *tokens) valid(tok string, ip netip.Addr) bool {
	return hmac.Equal([]byte(tok), []byte(tokenFor(t.cur, ip))) ||
		hmac.Equal([]byte(tok), []byte(tokenFor(t.prev, ip)))
}

// bucketRate is a token bucket.
type bucketRate struct {
	tokens float64
	at     time.Time
}

func (b *bucketRate) take(rate, burst float64, now time.Time) bool {
	if b.at.IsZero() {
		b.tokens = burst
	} else {
		b.tokens = math.Min(burst, b.tokens+rate*now.Sub(b.at).Seconds())
	}
	b.at = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// maxLimited bounds the source addresses the limiter tracks.
const maxLimited = 8192

// limiter is a per-source-IP token bucket plus a global one. Reader
// goroutine only.
type limiter struct {
	rate, globalRate float64
	global           bucketRate
	perIP            map[netip.Addr]*bucketRate
	overflow         bucketRate // shared by sources beyond maxLimited
	lastPurge        time.Time
}

func newLimiter(rate, globalRate float64) *limiter {
	return &limiter{rate: rate, globalRate: globalRate, perIP: map[netip.Addr]*bucketRate{}}
}

// allow reports whether a packet from ip may be processed now.
func (l *limiter) allow(ip netip.Addr, now time.Time) bool {
	b := l.perIP[ip]
	if b == nil {
		if len(l.perIP) >= maxLimited && now.Sub(l.lastPurge) >= time.Second {
			// Forget sources whose buckets have refilled (2 s at the
			// rate): they are idle. At most once a second, so a flood of
			// new sources cannot make every packet scan the map.
			l.lastPurge = now
			for a, o := range l.perIP {
				if now.Sub(o.at) >= 2*time.Second {
					delete(l.perIP, a)
				}
			}
		}
		if len(l.perIP) >= maxLimited {
			b = &l.overflow
		} else {
			b = &bucketRate{}
			l.perIP[ip] = b
		}
	}
	if !b.take(l.rate, 2*l.rate, now) {
		return false
	}
	return l.global.take(l.globalRate, 2*l.globalRate, now)
}
