package engine

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/internal/wire"
)

// TestProtocolViolationsDrop connects a peer that sends one message that
// breaks the protocol and checks that we hang up on it.
func TestProtocolViolationsDrop(t *testing.T) {
	f := makeFixture(t, "strict", 16<<10, nil, 100000) // 7 pieces
	n := uint32(f.mi.Info.NumPieces())
	cases := []struct {
		name string
		msgs []wire.Message
		stay bool // a well-behaved control: we keep the connection
	}{
		{"control: valid messages", []wire.Message{{ID: wire.Have, Index: n - 1}, {ID: wire.Interested}, {ID: wire.Request, Index: 0, Begin: 0, Length: 16384}}, true},
		{"have out of range", []wire.Message{{ID: wire.Have, Index: n}}, false},
		{"bitfield too short", []wire.Message{{ID: wire.Bitfield, Data: []byte{}}}, false},
		{"bitfield spare bits set", []wire.Message{{ID: wire.Bitfield, Data: []byte{0xff}}}, false},
		{"unrequested block", []wire.Message{{ID: wire.Unchoke}, {ID: wire.Piece, Index: 0, Begin: 0, Data: make([]byte, 16384)}}, false},
		{"block of a bad piece", []wire.Message{{ID: wire.Piece, Index: n + 3, Begin: 0, Data: make([]byte, 100)}}, false},
		{"request out of range", []wire.Message{{ID: wire.Request, Index: n, Begin: 0, Length: 16384}}, false},
		{"request past piece end", []wire.Message{{ID: wire.Request, Index: 0, Begin: 16000, Length: 16384}}, false},
		{"reject not requested", []wire.Message{{ID: wire.Reject, Index: 1, Begin: 0, Length: 16384}}, false},
		{"bad extension handshake", []wire.Message{{ID: wire.Extended, ExtID: 0, Data: []byte("i3e")}}, false},
	}
	c := newTestClient(t, "127.0.2.1", Config{})
	tor, err := c.AddTorrent(f.mi, AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.DialTimeout("tcp", c.Addr().String(), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			wait := 10 * time.Second
			if tc.stay {
				wait = 700 * time.Millisecond
			}
			_ = conn.SetDeadline(time.Now().Add(wait))
			var id [20]byte
			copy(id[:], "-XX0001-"+tc.name)
			if err := wire.WriteHandshake(conn, wire.NewHandshake(f.mi.InfoHash, id)); err != nil {
				t.Fatal(err)
			}
			if _, err := wire.ReadHandshake(conn); err != nil {
				t.Fatal(err)
			}
			var out []byte
			for _, m := range tc.msgs {
				out = wire.AppendMessage(out, m)
			}
			if _, err := conn.Write(out); err != nil {
				t.Fatal(err)
			}
			// We must hang up: reading ends with EOF (or a reset), not
			// with the deadline.
			br := bufio.NewReader(conn)
			buf := make([]byte, 64<<10)
			for {
				_, err := wire.ReadMessage(br, 0, buf)
				if err == nil {
					continue
				}
				var ne net.Error
				timedOut := errors.As(err, &ne) && ne.Timeout()
				if timedOut != tc.stay {
					t.Fatalf("connection kept: %v, want %v (%v)", timedOut, tc.stay, err)
				}
				if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Logf("connection ended with %v", err)
				}
				return
			}
		})
	}
	// After all that, the torrent still works and holds no peer.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for tor.Stats().Peers != 0 {
		select {
		case <-ctx.Done():
			t.Fatalf("peers left: %+v", tor.Stats())
		case <-time.After(10 * time.Millisecond):
		}
	}
}
