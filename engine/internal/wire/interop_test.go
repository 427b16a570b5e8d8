package wire_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/internal/metadata"
	"github.com/swarmfs/swarmfs/engine/internal/wire"
	"github.com/swarmfs/swarmfs/engine/internal/wire/bitfield"
	"github.com/swarmfs/swarmfs/metainfo"
)

const libtorrentPython = "/usr/bin/python3"

// seederScript runs a libtorrent seeder for argv[1] (a .torrent) with data
// in argv[2], listening on argv[3]:0. It prints "SEEDING <port>" once the
// torrent is checked and seeding, then runs until stdin closes or it is
// killed.
const seederScript = `
import sys, time
import libtorrent as lt
tor, save, ip = sys.argv[1:4]
s = lt.session({
    'listen_interfaces': ip + ':0', 'outgoing_interfaces': ip, 'announce_ip': ip,
    'enable_dht': False, 'enable_lsd': False, 'enable_upnp': False, 'enable_natpmp': False,
    'enable_incoming_utp': False, 'enable_outgoing_utp': False,
    'allow_multiple_connections_per_ip': True, 'alert_mask': 0,
})
h = s.add_torrent({'ti': lt.torrent_info(tor), 'save_path': save})
deadline = time.time() + 60
while h.status().state != lt.torrent_status.seeding:
    if time.time() > deadline:
        print('TIMEOUT', h.status().state, flush=True)
        sys.exit(1)
    time.sleep(0.05)
print('SEEDING', s.listen_port(), flush=True)
sys.stdin.read()
`

type testInfo struct {
	Length      int64  `bencode:"length"`
	Name        string `bencode:"name"`
	PieceLength int64  `bencode:"piece length"`
	Pieces      []byte `bencode:"pieces"`
}

type testTorrent struct {
	Info metainfo.RawMessage `bencode:"info"`
}

// makeTorrent writes a single-file torrent of data with the given piece
// length into dir and returns its path and info dictionary bytes.
func makeTorrent(t *testing.T, dir, name string, data []byte, pieceLen int) (string, []byte) {
	t.Helper()
	var pieces []byte
	for off := 0; off < len(data); off += pieceLen {
		h := sha1.Sum(data[off:min(len(data), off+pieceLen)])
		pieces = append(pieces, h[:]...)
	}
	info, err := metainfo.Marshal(&testInfo{Length: int64(len(data)), Name: name, PieceLength: int64(pieceLen), Pieces: pieces})
	if err != nil {
		t.Fatal(err)
	}
	tor, err := metainfo.Marshal(&testTorrent{Info: info})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name+".torrent")
	if err := os.WriteFile(path, tor, 0o644); err != nil {
		t.Fatal(err)
	}
	return path, info
}

// startSeeder starts a libtorrent seeder on ip and returns its port once it
// is seeding.
func startSeeder(t *testing.T, torrent, saveDir, ip string) int {
	t.Helper()
	line, stderr := runPython(t, seederScript, torrent, saveDir, ip)
	port, err := strconv.Atoi(strings.TrimPrefix(line, "SEEDING "))
	if !strings.HasPrefix(line, "SEEDING ") || err != nil {
		t.Fatalf("seeder said %q; stderr: %s", line, stderr)
	}
	return port
}

// runPython runs script with libtorrent's python and args, and returns the
// first line it prints (empty if it exits or stays silent for two
// minutes) and what it wrote to stderr so far. The process is killed in
// t.Cleanup; it also exits when its stdin closes.
func runPython(t *testing.T, script string, args ...string) (line, stderr string) {
	t.Helper()
	if _, err := os.Stat(libtorrentPython); err != nil {
		t.Skip("needs /usr/bin/python3 with libtorrent (Debian package python3-libtorrent)")
	}
	if err := exec.Command(libtorrentPython, "-c", "import libtorrent").Run(); err != nil {
		t.Skip("needs the libtorrent python module (Debian package python3-libtorrent)")
	}
	path := filepath.Join(t.TempDir(), "script.py")
	if err := os.WriteFile(path, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	cmd := exec.CommandContext(ctx, libtorrentPython, append([]string{path}, args...)...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	errBuf := &lockedBuffer{}
	cmd.Stderr = errBuf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		cancel()
	})
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case line = <-lines:
	case <-time.After(2 * time.Minute):
	}
	return line, errBuf.String()
}

// lockedBuffer is a bytes.Buffer safe for the writer goroutine of exec and
// a reader.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestInteropLibtorrent downloads two blocks and the metadata from a real
// libtorrent seeder with nothing but this package's codec.
func TestInteropLibtorrent(t *testing.T) {
	const pieceLen = 16384
	dir := t.TempDir()
	// 1000 pieces, the last one short: the info dictionary is over 16 KiB,
	// so ut_metadata takes two pieces.
	data := make([]byte, 999*pieceLen+5000)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	if err := os.WriteFile(filepath.Join(dir, "payload.bin"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	torrent, info := makeTorrent(t, dir, "payload.bin", data, pieceLen)
	infoHash := sha1.Sum(info)
	numPieces := (len(data) + pieceLen - 1) / pieceLen

	port := startSeeder(t, torrent, dir, "127.0.3.2")
	d := net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 3, 1)}}
	conn, err := d.Dial("tcp", fmt.Sprintf("127.0.3.2:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(60 * time.Second)); err != nil {
		t.Fatal(err)
	}

	var peerID [20]byte
	copy(peerID[:], "-SF0001-wiretest0001")
	if err := wire.WriteHandshake(conn, wire.NewHandshake(infoHash, peerID)); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(conn)
	hs, err := wire.ReadHandshake(r)
	if err != nil {
		t.Fatal(err)
	}
	if hs.InfoHash != infoHash || !hs.SupportsExtended() || !hs.SupportsFast() {
		t.Fatalf("libtorrent handshake %+v", hs)
	}

	ours := wire.ExtHandshake{
		M:    map[string]int{wire.ExtMetadata: int(wire.ExtMetadataID), wire.ExtPex: int(wire.ExtPexID)},
		V:    "swarmfs-wiretest",
		Reqq: 250,
	}
	ext, err := ours.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var out []byte
	out = wire.AppendExtended(out, wire.ExtHandshakeID, ext)
	out = wire.AppendMessage(out, wire.Message{ID: wire.HaveNone})
	if _, err := conn.Write(out); err != nil {
		t.Fatal(err)
	}

	var (
		theirs      *wire.ExtHandshake
		haveAll     bool
		interested  bool
		requested   bool
		blocks      = map[[2]uint32][]byte{}
		asm         *metadata.Assembler[string]
		metaDone    bool
		metaReqOut  int
		unknownSeen []wire.ID
	)
	want := []wire.Message{
		{ID: wire.Request, Index: 0, Begin: 0, Length: pieceLen},
		{ID: wire.Request, Index: uint32(numPieces - 1), Begin: 0, Length: 5000},
	}
	buf := make([]byte, 0, 64<<10)
	for range 10000 {
		if theirs != nil && len(blocks) == len(want) && metaDone {
			break
		}
		m, err := wire.ReadMessage(r, wire.MaxMessageLen(numPieces), buf)
		if err != nil {
			t.Fatalf("reading (ext %v, haveAll %v, blocks %d, meta %v): %v", theirs != nil, haveAll, len(blocks), metaDone, err)
		}
		out = out[:0]
		switch {
		case m.Keepalive:
		case m.ID == wire.Extended && m.ExtID == wire.ExtHandshakeID:
			h, err := wire.ParseExtHandshake(m.Data)
			if err != nil {
				t.Fatal(err)
			}
			theirs = &h
			if h.MetadataSize != len(info) {
				t.Fatalf("metadata_size %d, want %d", h.MetadataSize, len(info))
			}
			id, ok := h.ID(wire.ExtMetadata)
			if !ok {
				t.Fatalf("libtorrent does not offer ut_metadata: %+v", h.M)
			}
			if h.YourIP.IsValid() && h.YourIP.String() != "127.0.3.1" {
				t.Errorf("yourip %v, want 127.0.3.1", h.YourIP)
			}
			asm, err = metadata.New[string](infoHash, h.MetadataSize)
			if err != nil {
				t.Fatal(err)
			}
			for {
				i, ok := asm.Next("libtorrent", time.Now())
				if !ok {
					break
				}
				out = wire.AppendExtended(out, id, wire.AppendMetadataMsg(nil, wire.MetadataMsg{Type: wire.MetadataRequest, Piece: i}))
				metaReqOut++
			}
		case m.ID == wire.Extended && m.ExtID == wire.ExtMetadataID:
			mm, err := wire.ParseMetadataMsg(m.Data)
			if err != nil {
				t.Fatal(err)
			}
			if mm.Type != wire.MetadataData || mm.TotalSize != len(info) {
				t.Fatalf("ut_metadata answer %v total %d", mm.Type, mm.TotalSize)
			}
			done, err := asm.Add("libtorrent", mm.Piece, mm.Data)
			if err != nil {
				t.Fatal(err)
			}
			metaDone = done
		case m.ID == wire.HaveAll:
			haveAll = true
		case m.ID == wire.Bitfield:
			bf, err := bitfield.Parse(m.Data, numPieces)
			if err != nil {
				t.Fatal(err)
			}
			haveAll = bf.All()
		case m.ID == wire.Unchoke:
			if !requested {
				for _, q := range want {
					out = wire.AppendMessage(out, q)
				}
				requested = true
			}
		case m.ID == wire.Piece:
			blocks[[2]uint32{m.Index, m.Begin}] = bytes.Clone(m.Data)
		case m.ID == wire.Reject:
			t.Fatalf("libtorrent rejected %v", m)
		case !m.ID.Known():
			unknownSeen = append(unknownSeen, m.ID)
		}
		if haveAll && !interested {
			out = wire.AppendMessage(out, wire.Message{ID: wire.Interested})
			interested = true
		}
		if len(out) > 0 {
			if _, err := conn.Write(out); err != nil {
				t.Fatal(err)
			}
		}
	}
	if !haveAll {
		t.Fatal("seeder did not announce all pieces")
	}
	for _, q := range want {
		got := blocks[[2]uint32{q.Index, q.Begin}]
		off := int(q.Index)*pieceLen + int(q.Begin)
		if !bytes.Equal(got, data[off:off+int(q.Length)]) {
			t.Fatalf("block %d+%d: %d bytes differ from the data", q.Index, q.Begin, len(got))
		}
	}
	if !metaDone || !bytes.Equal(asm.Bytes(), info) || sha1.Sum(asm.Bytes()) != infoHash {
		t.Fatal("metadata not fetched or wrong")
	}
	if metaReqOut != 2 {
		t.Errorf("metadata took %d requests, want 2", metaReqOut)
	}
	t.Logf("libtorrent client %q, reqq %d, unknown ids %v", theirs.V, theirs.Reqq, unknownSeen)
}

// leecherScript runs a libtorrent leecher on argv[3] that knows only the
// magnet link argv[1], saves into argv[2], is told of the peer argv[4]:argv[5],
// and prints "DONE" once it has the metadata and every piece and they are in
// its file.
//
// libtorrent 2.0 hashes a piece from its store buffer and may mark it (and
// the torrent seeding) before its disk thread has written the blocks, so
// the file can still hold holes when the state says seeding; on a loaded
// machine it did. flush_cache is a fence behind every write of the torrent,
// and cache_flushed_alert reports it done.
const leecherScript = `
import sys, time
import libtorrent as lt
uri, save, ip, peer_ip, peer_port = sys.argv[1:6]
s = lt.session({
    'listen_interfaces': ip + ':0', 'outgoing_interfaces': ip, 'announce_ip': ip,
    'enable_dht': False, 'enable_lsd': False, 'enable_upnp': False, 'enable_natpmp': False,
    'enable_incoming_utp': False, 'enable_outgoing_utp': False,
    'allow_multiple_connections_per_ip': True,
    'alert_mask': lt.alert.category_t.storage_notification,
})
p = lt.parse_magnet_uri(uri)
p.save_path = save
h = s.add_torrent(p)
h.connect_peer((peer_ip, int(peer_port)))
deadline = time.time() + 90
while True:
    st = h.status()
    if st.has_metadata and st.state == lt.torrent_status.seeding:
        break
    if time.time() > deadline:
        print('TIMEOUT', st.state, st.has_metadata, st.progress, flush=True)
        sys.exit(1)
    time.sleep(0.05)
s.pop_alerts()
h.flush_cache()
flushed = False
while not flushed:
    if time.time() > deadline:
        print('TIMEOUT waiting for the disk writes (cache_flushed_alert)', flush=True)
        sys.exit(1)
    s.wait_for_alert(500)
    flushed = any(isinstance(a, lt.cache_flushed_alert) for a in s.pop_alerts())
print('DONE', flush=True)
sys.stdin.read()
`

// TestInteropLibtorrentLeecher serves a torrent to a libtorrent leecher
// that starts from a magnet link: it must fetch the info dictionary from us
// with ut_metadata (two pieces) and then every block, checking each piece
// hash, so every message we encode is checked by libtorrent.
func TestInteropLibtorrentLeecher(t *testing.T) {
	const pieceLen = 16384
	dir := t.TempDir()
	data := make([]byte, 899*pieceLen+777)
	rng := rand.New(rand.NewPCG(5, 6))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	_, info := makeTorrent(t, dir, "served.bin", data, pieceLen)
	infoHash := sha1.Sum(info)
	if metadata.NumPieces(len(info)) != 2 {
		t.Fatalf("info of %d bytes: want two metadata pieces", len(info))
	}

	ln, err := net.Listen("tcp", "127.0.3.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	// libtorrent tries an encrypted (MSE) connection first and falls back
	// to plain BitTorrent when we hang up on it: serve every connection.
	served := make(chan error, 16)
	go func() {
		for range cap(served) {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				served <- serveOne(conn, infoHash, info, data, pieceLen)
			}()
		}
	}()

	save := t.TempDir()
	port := ln.Addr().(*net.TCPAddr).Port
	uri := fmt.Sprintf("magnet:?xt=urn:btih:%x", infoHash)
	line, stderr := runPython(t, leecherScript, uri, save, "127.0.3.3", "127.0.3.1", strconv.Itoa(port))
	if line != "DONE" {
		var serr []error
		for len(served) > 0 {
			serr = append(serr, <-served)
		}
		t.Fatalf("leecher said %q; stderr: %s; our side: %v", line, stderr, serr)
	}
	got, err := os.ReadFile(filepath.Join(save, "served.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("the leecher's file differs from the data")
	}
	for len(served) > 0 {
		t.Logf("a connection ended with: %v", <-served)
	}
}

// serveOne is a minimal seeder built from the codec: it answers the
// handshake, advertises ut_metadata, has all pieces, unchokes at once and
// answers requests until the connection ends.
func serveOne(conn net.Conn, infoHash [20]byte, info, data []byte, pieceLen int) error {
	if err := conn.SetDeadline(time.Now().Add(2 * time.Minute)); err != nil {
		return err
	}
	r := bufio.NewReader(conn)
	res, ih, err := wire.ReadHandshakeStart(r)
	if err != nil {
		return err
	}
	if ih != infoHash {
		return fmt.Errorf("peer wants %x", ih)
	}
	var id [20]byte
	copy(id[:], "-SF0001-wireseeder01")
	if err := wire.WriteHandshake(conn, wire.NewHandshake(infoHash, id)); err != nil {
		return err
	}
	if _, err := wire.ReadPeerID(r); err != nil {
		return err
	}
	peer := wire.Handshake{Reserved: res}
	if !peer.SupportsExtended() || !peer.SupportsFast() {
		return fmt.Errorf("peer lacks extensions: % x", res)
	}
	ours := wire.ExtHandshake{M: map[string]int{wire.ExtMetadata: int(wire.ExtMetadataID)}, MetadataSize: len(info), V: "swarmfs-wiretest"}
	ext, err := ours.Marshal()
	if err != nil {
		return err
	}
	out := wire.AppendExtended(nil, wire.ExtHandshakeID, ext)
	out = wire.AppendMessage(out, wire.Message{ID: wire.HaveAll})
	out = wire.AppendMessage(out, wire.Message{ID: wire.Unchoke})
	if _, err := conn.Write(out); err != nil {
		return err
	}
	var theirMeta uint8
	buf := make([]byte, 0, 64<<10)
	for {
		m, err := wire.ReadMessage(r, 0, buf)
		if err != nil {
			return err
		}
		switch {
		case m.ID == wire.Extended && m.ExtID == wire.ExtHandshakeID:
			h, err := wire.ParseExtHandshake(m.Data)
			if err != nil {
				return err
			}
			theirMeta, _ = h.ID(wire.ExtMetadata)
		case m.ID == wire.Extended && m.ExtID == wire.ExtMetadataID:
			mm, err := wire.ParseMetadataMsg(m.Data)
			if err != nil {
				return err
			}
			if mm.Type != wire.MetadataRequest || theirMeta == 0 {
				continue
			}
			reply := wire.MetadataMsg{Type: wire.MetadataReject, Piece: mm.Piece}
			if p, err := metadata.Piece(info, mm.Piece); err == nil {
				reply = wire.MetadataMsg{Type: wire.MetadataData, Piece: mm.Piece, TotalSize: len(info), Data: p}
			}
			if _, err := conn.Write(wire.AppendExtended(nil, theirMeta, wire.AppendMetadataMsg(nil, reply))); err != nil {
				return err
			}
		case m.ID == wire.Request:
			off := int64(m.Index)*int64(pieceLen) + int64(m.Begin)
			if int(m.Begin)+int(m.Length) > pieceLen || off+int64(m.Length) > int64(len(data)) {
				if _, err := conn.Write(wire.AppendMessage(nil, wire.Message{ID: wire.Reject, Index: m.Index, Begin: m.Begin, Length: m.Length})); err != nil {
					return err
				}
				continue
			}
			// The block goes out from where it lies, after a 13-byte header.
			hdr := wire.AppendPieceHeader(nil, m.Index, m.Begin, int(m.Length))
			bufs := net.Buffers{hdr, data[off : off+int64(m.Length)]}
			if _, err := bufs.WriteTo(conn); err != nil {
				return err
			}
		}
	}
}
