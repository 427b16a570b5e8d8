package utp

import (
	"bytes"
	"context"
	"crypto/sha1"
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/enginetest"
	"github.com/swarmfs/swarmfs/engine/internal/mse"
	"github.com/swarmfs/swarmfs/engine/internal/wire"
)

//go:embed testdata/lt_utp.py
var ltUTPScript []byte

// startLTUTP starts a uTP-only libtorrent session on ip for the torrent
// whose data lies in saveDir, connecting to peers once its data is checked.
func startLTUTP(t *testing.T, ip, torrent, saveDir string, encrypted bool, peers ...string) (*enginetest.Proc, netip.AddrPort) {
	t.Helper()
	enginetest.RequireLibtorrent(t)
	script := filepath.Join(t.TempDir(), "lt_utp.py")
	if err := os.WriteFile(script, ltUTPScript, 0o644); err != nil {
		t.Fatal(err)
	}
	js, _ := json.Marshal(map[string]any{"ip": ip, "torrent": torrent, "save_path": saveDir,
		"encryption": encrypted, "peers": peers, "timeout": 180, "debug": os.Getenv("UTP_LT_DEBUG") != ""})
	p := enginetest.Start(t, enginetest.Python, script, string(js))
	port, err := strconv.Atoi(p.WaitLine(t, "listening ", 30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return p, netip.AddrPortFrom(netip.MustParseAddr(ip), uint16(port))
}

func listenOn(t *testing.T, ip string) *Socket {
	t.Helper()
	s, err := Listen("udp4", ip+":0", Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// readUntil reads messages until one with id arrives, answering nothing.
func readUntil(t *testing.T, r io.Reader, id wire.ID, buf []byte) wire.Message {
	t.Helper()
	for {
		m, err := wire.ReadMessage(r, wire.DefaultMaxMessageLen, buf)
		if err != nil {
			t.Fatalf("waiting for %v: %v", id, err)
		}
		if !m.Keepalive && m.ID == id {
			return m
		}
	}
}

// TestLibtorrentSeedsOverUTP dials a uTP-only libtorrent seeder with our
// uTP, speaks the BitTorrent protocol with the wire package (plain and
// inside MSE) and checks every piece's SHA-1.
func TestLibtorrentSeedsOverUTP(t *testing.T) {
	for _, encrypted := range []bool{false, true} {
		t.Run(fmt.Sprintf("mse=%v", encrypted), func(t *testing.T) {
			enginetest.RequireLibtorrent(t)
			c := enginetest.MakeContent(t, "seed.bin", 256<<10, []enginetest.FileSpec{{Size: 4<<20 + 12345}})
			lt, ltAddr := startLTUTP(t, "127.0.61.2", c.Torrent, c.Dir, encrypted)
			for lt.WaitLine(t, "state ", time.Minute) != "seeding" {
			}
			s := listenOn(t, "127.0.61.1")
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			conn, err := s.Dial(ctx, ltAddr)
			if err != nil {
				t.Fatalf("dial libtorrent over uTP: %v\n%s", err, lt.Output())
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(2 * time.Minute))
			ih := [20]byte(c.Meta.InfoHash)
			hs := wire.NewHandshake(ih, [20]byte([]byte("-SF0000-utpinterop01")))
			var rw io.ReadWriter = conn
			if encrypted {
				ia := wire.AppendHandshake(nil, hs)
				rw, _, err = mse.InitiateHandshake(conn, ih, ia, mse.RC4)
				if err != nil {
					t.Fatalf("MSE over uTP: %v\n%s", err, lt.Output())
				}
			} else if err := wire.WriteHandshake(rw, hs); err != nil {
				t.Fatal(err)
			}
			theirs, err := wire.ReadHandshake(rw)
			if err != nil {
				t.Fatalf("handshake: %v\n%s", err, lt.Output())
			}
			if theirs.InfoHash != ih {
				t.Fatalf("libtorrent answered for %x", theirs.InfoHash)
			}
			if _, err := rw.Write(wire.AppendMessage(nil, wire.Message{ID: wire.Interested})); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, wire.DefaultMaxMessageLen)
			readUntil(t, rw, wire.Unchoke, buf)
			info := c.Meta.Info
			for i := range info.NumPieces() {
				size := int(info.PieceSize(i))
				var req []byte
				for off := 0; off < size; off += wire.BlockSize {
					req = wire.AppendMessage(req, wire.Message{ID: wire.Request, Index: uint32(i),
						Begin: uint32(off), Length: uint32(min(wire.BlockSize, size-off))})
				}
				if _, err := rw.Write(req); err != nil {
					t.Fatal(err)
				}
				piece := make([]byte, size)
				for got := 0; got < size; {
					m := readUntil(t, rw, wire.Piece, buf)
					if int(m.Index) != i || int(m.Begin)+len(m.Data) > size {
						t.Fatalf("unexpected block %v", m)
					}
					copy(piece[m.Begin:], m.Data)
					got += len(m.Data)
				}
				if sha1.Sum(piece) != [20]byte(info.Pieces[i]) {
					t.Fatalf("piece %d: SHA-1 mismatch", i)
				}
			}
			t.Logf("%d pieces from libtorrent over uTP verified", info.NumPieces())
		})
	}
}

// TestLibtorrentLeechesOverUTP has a uTP-only libtorrent download a
// torrent from our Listener: we answer its handshake (in MSE when it
// insists) and serve the blocks it requests from the content on disk,
// until libtorrent reports every piece.
func TestLibtorrentLeechesOverUTP(t *testing.T) {
	for _, encrypted := range []bool{false, true} {
		t.Run(fmt.Sprintf("mse=%v", encrypted), func(t *testing.T) {
			enginetest.RequireLibtorrent(t)
			c := enginetest.MakeContent(t, "leech.bin", 256<<10, []enginetest.FileSpec{{Size: 3<<20 + 999}})
			data, err := os.ReadFile(filepath.Join(c.Dir, c.Name))
			if err != nil {
				t.Fatal(err)
			}
			s := listenOn(t, "127.0.62.1")
			ln := s.Listener()
			served := make(chan error, 1)
			go func() { served <- serveTorrent(ln, c.Meta.InfoHash, c.Meta.Info.PieceLength, data, encrypted) }()
			lt, _ := startLTUTP(t, "127.0.62.2", c.Torrent, t.TempDir(), encrypted, s.Addr().String())
			// libtorrent may say "done" before its last "piece" line:
			// wait for every piece and for "done", in any order.
			pieces, done := 0, false
			for pieces < c.Meta.Info.NumPieces() || !done {
				line, err := lt.AwaitLine("", time.Minute)
				if err != nil {
					t.Fatalf("libtorrent reported %d of %d pieces (done %v): %v\n%s", pieces, c.Meta.Info.NumPieces(), done, err, lt.Output())
				}
				switch {
				case strings.HasPrefix(line, "piece "):
					pieces++
				case line == "done":
					done = true
				case strings.HasPrefix(line, "error "):
					t.Fatalf("libtorrent reported %s\n%s", line, lt.Output())
				}
			}
			lt.Kill()
			ln.Close()
			select {
			case err := <-served:
				if err != nil {
					t.Logf("server ended: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("server did not end after libtorrent left")
			}
		})
	}
}

// serveTorrent accepts one connection and seeds the torrent over it until
// the peer leaves.
func serveTorrent(ln net.Listener, infoHash [20]byte, pieceLen int64, data []byte, encrypted bool) error {
	nc, err := ln.Accept()
	if err != nil {
		return err
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(3 * time.Minute))
	var rw io.ReadWriter = nc
	if encrypted {
		lookup := func(req2 [20]byte) ([20]byte, bool) { return infoHash, req2 == mse.SKeyHash(infoHash) }
		var ia []byte
		rw, _, _, ia, err = mse.ReceiveHandshake(nc, lookup, mse.RC4, mse.RC4)
		if err != nil {
			return fmt.Errorf("MSE: %w", err)
		}
		rw = struct {
			io.Reader
			io.Writer
		}{io.MultiReader(bytes.NewReader(ia), rw), rw}
	}
	theirs, err := wire.ReadHandshake(rw)
	if err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	if theirs.InfoHash != infoHash {
		return fmt.Errorf("peer asked for %x", theirs.InfoHash)
	}
	hs := wire.NewHandshake(infoHash, [20]byte([]byte("-SF0000-utpseeder001")))
	out := wire.AppendHandshake(nil, hs)
	out = wire.AppendMessage(out, wire.Message{ID: wire.HaveAll})
	out = wire.AppendMessage(out, wire.Message{ID: wire.Unchoke})
	if _, err := rw.Write(out); err != nil {
		return err
	}
	buf := make([]byte, wire.DefaultMaxMessageLen)
	for {
		m, err := wire.ReadMessage(rw, wire.DefaultMaxMessageLen, buf)
		if err != nil {
			return err
		}
		if m.Keepalive || m.ID != wire.Request {
			continue
		}
		off := int64(m.Index)*pieceLen + int64(m.Begin)
		if off+int64(m.Length) > int64(len(data)) {
			return fmt.Errorf("request past the end: %v", m)
		}
		msg := wire.AppendPieceHeader(nil, m.Index, m.Begin, int(m.Length))
		msg = append(msg, data[off:off+int64(m.Length)]...)
		if _, err := rw.Write(msg); err != nil {
			return err
		}
	}
}
