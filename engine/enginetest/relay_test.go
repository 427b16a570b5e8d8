package enginetest

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/metainfo"
)

// TestAnnounceRelay announces to a real opentracker through a relay: the
// answer carries the short interval, the tracker sees the relay's source
// address, and a later announce with left=0 turns the leecher into a seeder
// (what transmission's re-announces rely on).
func TestAnnounceRelay(t *testing.T) {
	c := MakeContent(t, "relay", 32<<10, []FileSpec{{Path: "a.bin", Size: 100_000}})
	tr := StartOpentracker(t, "127.0.7.50", c.Meta.InfoHash.String())
	const clientIP = "127.0.7.51"
	relay := startAnnounceRelay(t, clientIP, tr.HTTP)
	if !strings.HasSuffix(relay, "/announce") || !strings.HasPrefix(relay, "http://"+clientIP+":") {
		t.Fatalf("relay URL %q", relay)
	}
	ih := string(c.Meta.InfoHash[:])
	announce := func(base, peerID, left string, port int) map[string]any {
		t.Helper()
		q := url.Values{"info_hash": {ih}, "peer_id": {peerID}, "port": {strconv.Itoa(port)}, "left": {left}, "compact": {"1"}, "numwant": {"50"}}
		return getDict(t, base+"?"+q.Encode())
	}
	scrape := func() (complete, incomplete int64) {
		t.Helper()
		d := getDict(t, strings.Replace(tr.HTTP, "/announce", "/scrape", 1)+"?info_hash="+url.QueryEscape(ih))
		files, _ := d["files"].(map[string]any)
		e, _ := files[ih].(map[string]any)
		complete, _ = e["complete"].(int64)
		incomplete, _ = e["incomplete"].(int64)
		return complete, incomplete
	}

	ans := announce(relay, "-TR3000-relaytest001", "12345", 6001)
	if iv, _ := ans["interval"].(int64); iv != int64(relayInterval/time.Second) {
		t.Errorf("interval through the relay %v, want %v", ans["interval"], relayInterval.Seconds())
	}
	if mi, _ := ans["min interval"].(int64); mi > int64(relayInterval/time.Second) {
		t.Errorf("min interval through the relay %v, want at most %v", ans["min interval"], relayInterval.Seconds())
	}
	if c, i := scrape(); c != 0 || i != 1 {
		t.Fatalf("after an announce with left>0: %d complete, %d incomplete; want 0, 1", c, i)
	}
	// Another peer asks the tracker directly: it must list the relayed
	// peer at the relay's source address.
	direct := announce(tr.HTTP, "-SF0000-relayprobe01", "1", 6002)
	peers, _ := direct["peers"].(string)
	want := string(net.ParseIP(clientIP).To4()) + string([]byte{6001 >> 8, 6001 & 0xff})
	if !strings.Contains(peers, want) {
		t.Errorf("tracker lists peers % x, want %s:6001 among them", peers, clientIP)
	}
	announce(relay, "-TR3000-relaytest001", "0", 6001)
	if c, i := scrape(); c != 1 || i != 1 {
		t.Fatalf("after the relayed re-announce with left=0: %d complete, %d incomplete; want 1, 1", c, i)
	}
}

func getDict(t *testing.T, u string) map[string]any {
	t.Helper()
	client := &http.Client{Timeout: 20 * time.Second}
	resp, err := client.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if err != nil {
		t.Fatal(err)
	}
	v, err := metainfo.Decode(body)
	d, ok := v.(map[string]any)
	if err != nil || !ok {
		t.Fatalf("GET %s: answer %q is not a dictionary (%v)", u, body, err)
	}
	if f, ok := d["failure reason"]; ok {
		t.Fatalf("GET %s: failure %v", u, f)
	}
	return d
}

func TestShortenInterval(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"d8:intervali1800e12:min intervali900e5:peers0:e", "d8:intervali2e12:min intervali2e5:peers0:e"},
		{"d8:intervali1e5:peers6:abcdefe", "d8:intervali1e12:min intervali2e5:peers6:abcdefe"},
		{"d14:failure reason3:no!8:intervali1800ee", "d14:failure reason3:no!8:intervali1800ee"},
		{"not bencode", "not bencode"},
		{"li1ee", "li1ee"},
	} {
		if got := shortenInterval([]byte(tc.in), 2*time.Second); !bytes.Equal(got, []byte(tc.want)) {
			t.Errorf("shortenInterval(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestRelayTorrent checks that the rewritten .torrent keeps the info hash
// and points every HTTP tracker at a relay.
func TestRelayTorrent(t *testing.T) {
	c := MakeContent(t, "relayed", 32<<10, []FileSpec{{Path: "a.bin", Size: 50_000}})
	tr := StartOpentracker(t, "127.0.7.52", c.Meta.InfoHash.String())
	c.Meta.Announce = tr.HTTP
	c.Meta.AnnounceList = [][]string{{tr.HTTP}, {"udp://127.0.7.52:1"}}
	b, err := c.Meta.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	orig := t.TempDir() + "/x.torrent"
	if err := os.WriteFile(orig, b, 0o644); err != nil {
		t.Fatal(err)
	}
	mi, err := metainfo.LoadFile(relayTorrent(t, "127.0.7.53", orig))
	if err != nil {
		t.Fatal(err)
	}
	if mi.InfoHash != c.Meta.InfoHash {
		t.Fatalf("info hash %s, want %s", mi.InfoHash, c.Meta.InfoHash)
	}
	if !strings.HasPrefix(mi.Announce, "http://127.0.7.53:") || mi.AnnounceList[0][0] != mi.Announce || mi.AnnounceList[1][0] != "udp://127.0.7.52:1" {
		t.Fatalf("announce %q, list %q", mi.Announce, mi.AnnounceList)
	}
}
