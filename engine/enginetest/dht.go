package enginetest

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// ltNodeScript drives one libtorrent session with its DHT on, for DHT, PEX
// and magnet tests. Unlike lt.py it can run with no torrent (a plain DHT
// node), can keep seed-to-seed connections open (libtorrent closes them by
// default, which hides seeds from PEX), can re-announce on the DHT on a
// schedule, and reports the moments that magnet benchmarks need. One JSON
// argument describes the session; it prints lines:
//
//	listening PORT | dht_nodes N | state NAME | peers N |
//	metadata SECONDS | dht_reply N | dht_announce INFOHASH PORT |
//	dht_get_peers INFOHASH | done SECONDS RATE | error TEXT
//
// SECONDS count from the moment the torrent was added to the session;
// dht_reply reports a finished lookup of ours that found peers (none when
// it found nobody), dht_announce and dht_get_peers a query another node
// sent us.
const ltNodeScript = `
import json, sys, time, warnings
import libtorrent as lt
warnings.filterwarnings("ignore")
cfg = json.loads(sys.argv[1])
ip = cfg["ip"]
cat = lt.alert.category_t
settings = {
    "listen_interfaces": "%s:%d" % (ip, cfg.get("port", 0)),
    "outgoing_interfaces": ip,
    "announce_ip": ip,
    "enable_dht": not cfg.get("no_dht", False),
    "dht_bootstrap_nodes": ",".join(cfg.get("routers") or []),
    "dht_restrict_routing_ips": False,
    "dht_restrict_search_ips": False,
    "dht_prefer_verified_node_ids": False,
    "dht_ignore_dark_internet": False,
    "dht_enforce_node_id": False,
    "enable_lsd": False,
    "enable_upnp": False,
    "enable_natpmp": False,
    "enable_incoming_utp": False,
    "enable_outgoing_utp": False,
    "allow_multiple_connections_per_ip": True,
    "close_redundant_connections": not cfg.get("keep_seed_connections", False),
    "unchoke_slots_limit": -1,
    "upload_rate_limit": 0,
    "download_rate_limit": 0,
    "connections_limit": 400,
    "alert_mask": cat.error_notification | cat.status_notification | cat.dht_notification | cat.tracker_notification,
}
if cfg.get("no_pex"):
    # Without the default plugins (ut_pex, ut_metadata, smart_ban); put back
    # all but ut_pex.
    ses = lt.session(settings, lt.session_flags_t.start_default_features)
    ses.add_extension("ut_metadata")
    ses.add_extension("smart_ban")
else:
    ses = lt.session(settings)
print("listening", ses.listen_port(), flush=True)
# libtorrent never keeps its bootstrap routers (dht_bootstrap_nodes) in its
# routing table, so on a DHT of a few nodes nobody would know anybody: add
# the nodes as ordinary nodes instead, again while they have not answered.
boot = []
for b in cfg.get("bootstrap") or []:
    host, port = b.rsplit(":", 1)
    boot.append((host.strip("[]"), int(port)))
def add_nodes():
    for b in boot:
        ses.add_dht_node(b)
add_nodes()
last_add = time.time()
h = None
added = time.time()
if cfg.get("torrent") or cfg.get("magnet"):
    if cfg.get("torrent"):
        params = {"save_path": cfg["save_path"], "ti": lt.torrent_info(cfg["torrent"])}
    else:
        params = lt.parse_magnet_uri(cfg["magnet"])
        params.save_path = cfg["save_path"]
    added = time.time()
    h = ses.add_torrent(params)
    for p in cfg.get("peers") or []:
        host, port = p.rsplit(":", 1)
        h.connect_peer((host.strip("[]"), int(port)))
every = float(cfg.get("announce_every", 0))
deadline = time.time() + float(cfg.get("timeout", 600))
last_announce = 0.0
last = {}
def report(key, value):
    # Print a line only when the value changed.
    if last.get(key) != value:
        last[key] = value
        print(key, value, flush=True)
meta_done = False
done = False
while time.time() < deadline:
    ses.wait_for_alert(50)
    for a in ses.pop_alerts():
        if isinstance(a, lt.metadata_received_alert) and not meta_done:
            meta_done = True
            print("metadata %.3f" % (time.time() - added), flush=True)
        elif isinstance(a, lt.dht_reply_alert):
            print("dht_reply", a.num_peers, flush=True)
        elif isinstance(a, lt.dht_announce_alert):
            print("dht_announce", str(a.info_hash), a.port, flush=True)
        elif isinstance(a, lt.dht_get_peers_alert):
            print("dht_get_peers", str(a.info_hash), flush=True)
    nodes = ses.status().dht_nodes
    report("dht_nodes", nodes)
    if boot and nodes < len(boot) and time.time() - last_add >= 1:
        last_add = time.time()
        add_nodes()
    if h is None:
        continue
    s = h.status()
    if s.has_metadata and not meta_done:
        meta_done = True
        print("metadata %.3f" % (time.time() - added), flush=True)
    report("state", str(s.state))
    report("peers", s.num_peers)
    if s.errc.value() != 0:
        report("error", s.errc.message())
    if not done and s.has_metadata and str(s.state) in ("seeding", "finished") and s.total_wanted_done == s.total_wanted:
        el = time.time() - added
        print("done %.3f %.0f" % (el, s.total_done / max(el, 1e-9)), flush=True)
        done = True
    if every > 0 and time.time() - last_announce >= every:
        last_announce = time.time()
        h.force_dht_announce()
`

// LTNodeOptions configures a libtorrent session with its DHT on, started by
// StartLTNode.
type LTNodeOptions struct {
	// IP is the loopback address the session binds and leaves from.
	IP string
	// Port is its TCP and UDP (DHT) port; 0 picks one.
	Port int
	// Bootstrap lists "host:port" DHT nodes to join through; they are
	// added as ordinary nodes (add_dht_node), retried every second while
	// the routing table holds fewer nodes than listed. Nil starts an
	// isolated node that others may join through.
	Bootstrap []string
	// Routers lists "host:port" DHT routers, libtorrent's ordinary
	// bootstrap (dht_bootstrap_nodes): it asks them for nodes but never
	// keeps them in its routing table.
	Routers []string
	// Torrent is a .torrent path, or Magnet a magnet URI; both empty runs a
	// plain DHT node with no torrent.
	Torrent, Magnet string
	// SavePath is the data directory (needed with Torrent or Magnet).
	SavePath string
	// Peers are "host:port" peers to connect to at start.
	Peers []string
	// KeepSeedConnections keeps connections between two seeds open
	// (libtorrent's close_redundant_connections off), so that a seed tells
	// others about another seed through PEX.
	KeepSeedConnections bool
	// AnnounceEvery, when positive, makes the session announce the torrent
	// on the DHT that often (libtorrent's own schedule is minutes).
	AnnounceEvery time.Duration
	// NoDHT turns the session's DHT off.
	NoDHT bool
	// NoPEX leaves libtorrent's ut_pex plugin out: the session neither
	// sends nor learns peers through PEX.
	NoPEX bool
	// Timeout caps the driver's lifetime; 0 means 10 minutes.
	Timeout time.Duration
}

// StartLTNode starts a libtorrent session with its DHT on and waits until it
// listens. Its Addr is also its DHT node's address.
func StartLTNode(t testing.TB, o LTNodeOptions) *LT {
	t.Helper()
	RequireLibtorrent(t)
	script := filepath.Join(t.TempDir(), "ltnode.py")
	if err := os.WriteFile(script, []byte(ltNodeScript), 0o644); err != nil {
		t.Fatal(err)
	}
	if o.Timeout == 0 {
		o.Timeout = 10 * time.Minute
	}
	js, err := json.Marshal(map[string]any{
		"ip": o.IP, "port": o.Port, "bootstrap": o.Bootstrap, "routers": o.Routers,
		"torrent": o.Torrent, "magnet": o.Magnet, "save_path": o.SavePath,
		"peers": o.Peers, "no_dht": o.NoDHT, "no_pex": o.NoPEX, "keep_seed_connections": o.KeepSeedConnections,
		"announce_every": o.AnnounceEvery.Seconds(), "timeout": o.Timeout.Seconds(),
	})
	if err != nil {
		t.Fatal(err)
	}
	p := Start(t, Python, script, string(js))
	port := p.WaitLine(t, "listening ", 30*time.Second)
	if _, err := strconv.Atoi(port); err != nil {
		t.Fatalf("libtorrent printed a bad port %q", port)
	}
	return &LT{Proc: p, Addr: net.JoinHostPort(o.IP, port)}
}

// StartDHTMesh starts one plain libtorrent DHT node (no torrent) on each of
// ips, every node bootstrapping from all the others, and waits (up to
// timeout) until each has at least one other node in its routing table.
func StartDHTMesh(t testing.TB, timeout time.Duration, ips ...string) []*LT {
	t.Helper()
	addrs := make([]string, len(ips))
	for i, ip := range ips {
		addrs[i] = net.JoinHostPort(ip, strconv.Itoa(FreePort(t, ip)))
	}
	nodes := make([]*LT, len(ips))
	for i, ip := range ips {
		var boot []string
		for j, a := range addrs {
			if j != i {
				boot = append(boot, a)
			}
		}
		port, _ := strconv.Atoi(addrs[i][strings.LastIndexByte(addrs[i], ':')+1:])
		nodes[i] = StartLTNode(t, LTNodeOptions{IP: ip, Port: port, Bootstrap: boot})
	}
	deadline := time.Now().Add(timeout)
	for _, n := range nodes {
		n.WaitDHTNodes(t, 1, time.Until(deadline))
	}
	return nodes
}

var dhtNodesRe = regexp.MustCompile(`(?m)^dht_nodes (\d+)$`)

// DHTNodes returns the number of nodes in the session's DHT routing table
// as last reported (0 before any report).
func (l *LT) DHTNodes() int {
	m := dhtNodesRe.FindAllStringSubmatch(l.Output(), -1)
	if len(m) == 0 {
		return 0
	}
	n, _ := strconv.Atoi(m[len(m)-1][1])
	return n
}

// WaitDHTNodes waits until the session's DHT routing table holds at least
// n nodes, failing the test at the timeout.
func (l *LT) WaitDHTNodes(t testing.TB, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for l.DHTNodes() < n {
		select {
		case <-l.Exited():
			t.Fatalf("%s exited with %d DHT nodes, waiting for %d; output:\n%s", l.Name, l.DHTNodes(), n, l.Output())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s has %d DHT nodes after %v, want %d; output:\n%s", l.Name, l.DHTNodes(), timeout, n, l.Output())
		}
	}
}

// Stop kills the session and waits (up to 10 s) until it has exited.
func (l *LT) Stop(t testing.TB) {
	t.Helper()
	l.Kill()
	select {
	case <-l.Exited():
	case <-time.After(10 * time.Second):
		t.Fatalf("%s (pid %d) did not exit after SIGKILL", l.Name, l.PID())
	}
}

// WaitOutput waits until the process's output so far (stdout and stderr)
// matches re and returns the first match. Unlike WaitLine it consumes
// nothing, so waits for different lines may come in any order. It fails the
// test at the timeout or when the process exits without a match.
func (p *Proc) WaitOutput(t testing.TB, re *regexp.Regexp, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		out := p.Output()
		if m := re.FindString(out); m != "" {
			return m
		}
		select {
		case <-p.Exited():
			if m := re.FindString(p.Output()); m != "" {
				return m
			}
			t.Fatalf("%s exited before printing %v; output:\n%s", p.Name, re, p.Output())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no output matching %v within %v; output:\n%s", p.Name, re, timeout, out)
		}
	}
}

// Magnet returns a magnet URI for content with only xt and dn (no tracker,
// no peer address), so that only the DHT or PEX can find its peers.
func (c *Content) Magnet() string {
	return fmt.Sprintf("magnet:?xt=urn:btih:%s&dn=%s", c.Meta.InfoHash, urlQueryEscape(c.Name))
}

// urlQueryEscape escapes s for a magnet's query string.
func urlQueryEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || strings.IndexByte("-._~", ch) >= 0 {
			b.WriteByte(ch)
		} else {
			fmt.Fprintf(&b, "%%%02X", ch)
		}
	}
	return b.String()
}
