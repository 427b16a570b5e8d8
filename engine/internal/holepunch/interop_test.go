package holepunch

import (
	"bufio"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/enginetest"
	"github.com/swarmfs/swarmfs/engine/internal/wire"
)

// ourHolepunchID is the extended message id our fake peers receive
// ut_holepunch messages on.
const ourHolepunchID = 4

// ltPeer is a bare BitTorrent connection to libtorrent that speaks
// ut_holepunch, with a reader goroutine handing over holepunch messages.
type ltPeer struct {
	conn  net.Conn
	local netip.AddrPort // our end, as libtorrent sees it
	ltID  uint8          // libtorrent's id for ut_holepunch
	msgs  chan []byte
}

func dialLT(t *testing.T, from, to string, infoHash [20]byte) *ltPeer {
	t.Helper()
	d := net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	conn, err := d.Dial("tcp", to)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(90 * time.Second))
	var id [20]byte
	copy(id[:], "-SF0001-hp-"+from)
	if err := wire.WriteHandshake(conn, wire.NewHandshake(infoHash, id)); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(conn)
	if _, err := wire.ReadHandshake(r); err != nil {
		t.Fatal(err)
	}
	ext, _ := (&wire.ExtHandshake{M: map[string]int{ExtName: ourHolepunchID}}).Marshal()
	out := wire.AppendExtended(nil, wire.ExtHandshakeID, ext)
	out = wire.AppendMessage(out, wire.Message{ID: wire.HaveNone})
	if _, err := conn.Write(out); err != nil {
		t.Fatal(err)
	}
	p := &ltPeer{conn: conn, local: conn.LocalAddr().(*net.TCPAddr).AddrPort(), msgs: make(chan []byte, 16)}
	for p.ltID == 0 {
		m, err := wire.ReadMessage(r, 0, nil)
		if err != nil {
			t.Fatalf("reading libtorrent's extension handshake: %v", err)
		}
		if m.ID == wire.Extended && m.ExtID == wire.ExtHandshakeID {
			h, err := wire.ParseExtHandshake(m.Data)
			if err != nil {
				t.Fatal(err)
			}
			var ok bool
			if p.ltID, ok = h.ID(ExtName); !ok {
				t.Fatalf("libtorrent does not announce %s: %v", ExtName, h.M)
			}
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			m, err := wire.ReadMessage(r, 0, nil)
			if err != nil {
				close(p.msgs)
				return
			}
			if m.ID == wire.Extended && m.ExtID == ourHolepunchID {
				select {
				case p.msgs <- append([]byte(nil), m.Data...):
				default:
				}
			}
		}
	}()
	t.Cleanup(func() {
		conn.Close()
		<-done
	})
	return p
}

func (p *ltPeer) send(t *testing.T, m Msg) {
	t.Helper()
	if _, err := p.conn.Write(wire.AppendExtended(nil, p.ltID, m.Append(nil))); err != nil {
		t.Fatal(err)
	}
}

func (p *ltPeer) next(t *testing.T) Msg {
	t.Helper()
	select {
	case b, ok := <-p.msgs:
		if !ok {
			t.Fatal("libtorrent closed the connection")
		}
		m, err := Parse(b)
		if err != nil {
			t.Fatalf("libtorrent's %q: %v", b, err)
		}
		return m
	case <-time.After(30 * time.Second):
		t.Fatal("no holepunch message from libtorrent within 30 s")
	}
	return Msg{}
}

// TestInteropLibtorrentRelay: libtorrent relays our rendezvous: two bare
// peers connected to a libtorrent seeder; one asks for a rendezvous with
// the other and both get a connect naming the other (libtorrent's form,
// without error code, parses); rendezvous with a stranger and with
// ourselves get libtorrent's NotConnected and NoSelf errors, which parse
// and match what our Relay answers.
func TestInteropLibtorrentRelay(t *testing.T) {
	enginetest.RequireLibtorrent(t)
	c := enginetest.MakeContent(t, "hp.bin", 16384, []enginetest.FileSpec{{Size: 100000}})
	lt := enginetest.StartSeeder(t, "127.0.7.1", c.Torrent, c.Dir)
	ih := [20]byte(c.Meta.InfoHash)
	a := dialLT(t, "127.0.7.2", lt.Addr, ih)
	b := dialLT(t, "127.0.7.3", lt.Addr, ih)

	a.send(t, Msg{Type: Rendezvous, Addr: b.local})
	if m := a.next(t); m != (Msg{Type: Connect, Addr: b.local}) {
		t.Fatalf("initiator got %v, want connect to %v", m, b.local)
	}
	if m := b.next(t); m != (Msg{Type: Connect, Addr: a.local}) {
		t.Fatalf("target got %v, want connect to %v", m, a.local)
	}

	// Our Relay in libtorrent's place answers the same.
	relay := NewRelay(RelayConfig{})
	v := newView(Peer{Addr: a.local, Holepunch: true}, Peer{Addr: b.local, Holepunch: true})
	for _, tc := range []struct {
		target netip.AddrPort
		code   ErrCode
	}{{ap("127.0.7.9:1"), NotConnected}, {a.local, NoSelf}} {
		a.send(t, Msg{Type: Rendezvous, Addr: tc.target})
		want := Msg{Type: Error, Addr: tc.target, Err: tc.code}
		if m := a.next(t); m != want {
			t.Fatalf("libtorrent answered %v, want %v", m, want)
		}
		ours := relay.Rendezvous(time.Now(), Peer{Addr: a.local, Holepunch: true}, Msg{Type: Rendezvous, Addr: tc.target}, v)
		if len(ours) != 1 || ours[0].Msg != want {
			t.Fatalf("our relay answered %+v, want %v", ours, want)
		}
	}
}
