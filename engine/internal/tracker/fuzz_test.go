package tracker

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/metainfo"
)

// checkParsed asserts the invariants of any parsed answer.
func checkParsed(t *testing.T, r *AnnounceResponse, err error, maxPeers int) {
	t.Helper()
	if err != nil {
		var fe *FailureError
		if !errors.Is(err, ErrBadResponse) && !errors.As(err, &fe) {
			t.Fatalf("error %v wraps neither ErrBadResponse nor FailureError", err)
		}
		if r != nil {
			t.Fatal("response and error together")
		}
		return
	}
	if len(r.Peers) > maxPeers {
		t.Fatalf("%d peers over the cap %d", len(r.Peers), maxPeers)
	}
	seen := map[netip.AddrPort]bool{}
	for _, p := range r.Peers {
		if seen[p] || p.Port() == 0 || !p.Addr().IsValid() || p.Addr().IsUnspecified() || p.Addr().Is4In6() || p.Addr().Zone() != "" {
			t.Fatalf("bad or duplicate peer %v in %v", p, r.Peers)
		}
		seen[p] = true
	}
	for _, d := range []time.Duration{r.Interval, r.MinInterval} {
		if d < 0 || d > MaxInterval {
			t.Fatalf("interval %v out of range", d)
		}
	}
	if r.Seeders < -1 || r.Leechers < -1 {
		t.Fatalf("counts %d %d", r.Seeders, r.Leechers)
	}
}

func FuzzParseHTTPResponse(f *testing.F) {
	f.Add([]byte("d8:intervali1800e5:peers6:\x7f\x00\x04\x02\x1a\xe1e"))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := parseHTTPResponse(body, 20)
		checkParsed(t, r, err, 20)
		// valueLen, the allocation-free skipper, agrees with the decoder.
		if _, n, err := metainfo.DecodePrefix(body); err == nil {
			if got := valueLen(body, 0); got != n {
				t.Fatalf("valueLen = %d, decoder used %d bytes", got, n)
			}
		}
	})
}

func FuzzParseUDPResponse(f *testing.F) {
	f.Add([]byte("\x00\x00\x00\x01\x00\x00\x00\x07\x00\x00\x03\x84\x00\x00\x00\x01\x00\x00\x00\x02\x7f\x00\x04\x02\x1a\xe1"), false)
	f.Fuzz(func(t *testing.T, p []byte, ipv6 bool) {
		var txid uint32
		if len(p) >= 8 {
			txid = binary.BigEndian.Uint32(p[4:])
		}
		r, err := parseUDPAnnounce(p, txid, ipv6, 20)
		checkParsed(t, r, err, 20)
		if _, err := parseUDPConnect(p, txid); err != nil {
			var fe *FailureError
			if !errors.Is(err, ErrBadResponse) && !errors.As(err, &fe) {
				t.Fatalf("connect: %v", err)
			}
		} else if len(p) < udpConnectLen {
			t.Fatalf("connect response of %d bytes accepted", len(p))
		}
		if err == nil && len(p) < udpAnnounceMin {
			t.Fatalf("announce response of %d bytes accepted", len(p))
		}
		if fe := (*FailureError)(nil); errors.As(err, &fe) && len(fe.Reason) > udpMaxErrorText {
			t.Fatalf("error text of %d bytes", len(fe.Reason))
		}
	})
}
