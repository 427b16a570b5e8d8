package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/swarmfs/swarmfs/engine/enginetest"
)

// mixedWindow is how long after its start a client's connections count.
const mixedWindow = 30 * time.Second

// mixedClientPort is where the client under test listens (TCP and UDP).
const mixedClientPort = 7000

// mixedRun is what one client did in one position.
type mixedRun struct {
	client, position string
	reach            *enginetest.Reach
	secs             float64 // from the client's start to its download's end; 0 if it did not end
}

// BenchmarkMixedSwarm runs swarmfs and libtorrent, one after the other, in
// the same positions of a simulated internet (enginetest.NetSim) holding a
// mixed swarm of twelve seeders (enginetest.StartMixedSwarm: public TCP+uTP,
// TCP-only, uTP-only, IPv6-only and transmission peers; peers behind cone
// NATs with and without a forwarded port and hole punching; a peer behind a
// symmetric NAT) and opentracker. Each client runs in a namespace of its
// own: a public host, or a host behind a home router of its own that drops
// unsolicited packets as every NetRouter does, each
// starting a whole number of minutes after the swarm was up (mixedSlot).
// swarmfs is the real command (this test binary as swarmfs) run with `get
// --seed -v` inside that namespace, TCP and uTP both; libtorrent is the
// lab driver with TCP and uTP, both dual-stack. Neither uses DHT, LSD or
// port mapping (the simulation has no DHT node and no mapping service).
//
// For each client and position it reports the swarm's peers connected
// (handshake completed) within 30 s of the client's start (<client>_<pos>_peers)
// and the download rate in MB/s from the client's start to the last
// piece (<client>_<pos>_MB/s), and prints which peer each one reached and
// how. Each seeder's upload is capped (SWARMFS_MIXED_SEED_RATE, default
// 64KiB per second; 0 for none), as peers on home lines are, so the rate
// grows with the peers reached; SWARMFS_MIXED_SIZE sets the torrent size
// (default 16MiB) and SWARMFS_MIXED_POSITIONS the positions
// (default "public,cone"; also "symmetric").
func BenchmarkMixedSwarm(b *testing.B) {
	enginetest.RequireNetSim(b)
	enginetest.RequireLibtorrent(b)
	enginetest.RequireTool(b, "opentracker", "opentracker")
	size := int64(mixedEnvBytes(b, "SWARMFS_MIXED_SIZE", 16<<20))
	rate := int(mixedEnvBytes(b, "SWARMFS_MIXED_SEED_RATE", 64<<10))
	positions := strings.Split(os.Getenv("SWARMFS_MIXED_POSITIONS"), ",")
	if positions[0] == "" {
		positions = []string{"public", "cone"}
	}
	sim := enginetest.NewNetSim(b)
	trk := sim.PublicHost("tracker")
	c := enginetest.MakeContent(b, "mixed.bin", 128<<10, []enginetest.FileSpec{{Size: size}}, trk.TrackerURL())
	trk.StartOpentracker(b, c.Meta.InfoHash.String())
	_, noTr := exec.LookPath("transmission-cli")
	sw := enginetest.StartMixedSwarm(b, sim, enginetest.MixedSwarmOptions{
		Torrent: c.Torrent, Dir: c.Dir, UploadRate: rate, NoTransmission: noTr != nil,
	})
	b.Setenv("SWARMFS_TEST_MAIN", "1")
	ref := time.Now()
	b.ResetTimer()
	var runs []mixedRun
	for i := range b.N {
		runs = runs[:0]
		for _, pos := range positions {
			for _, client := range []string{"libtorrent", "swarmfs"} {
				mixedWaitSlot(ref)
				h := mixedClientHost(b, sim, client, pos, i)
				r := mixedRun{client: client, position: pos, reach: sw.NewReach()}
				if client == "swarmfs" {
					r.secs = runMixedSwarmfs(b, h, c, r.reach)
				} else {
					r.secs = runMixedLibtorrent(b, h, c, r.reach)
				}
				runs = append(runs, r)
			}
		}
	}
	b.StopTimer()
	capped := "not capped"
	if rate > 0 {
		capped = "capped at " + humanize.IBytes(uint64(rate)) + "/s"
	}
	fmt.Printf("mixed swarm of %d seeders, %s torrent, each seeder's upload %s; peers with a completed handshake within %v of the client's start\n",
		len(sw.Peers), humanize.IBytes(uint64(size)), capped, mixedWindow)
	fmt.Print(mixedTable(sw, runs, size))
	for _, r := range runs {
		name := map[string]string{"libtorrent": "lt", "swarmfs": "sfs"}[r.client] + "_" + r.position
		b.ReportMetric(float64(r.reach.Len()), name+"_peers")
		b.ReportMetric(mixedMBps(size, r.secs), name+"_MB/s")
	}
}

// mixedSlot is the period at which client runs start: libtorrent's PEX
// period. Seeders behind NATs that no one can dial learn of a new client
// only through the PEX of the public seeders they are connected to, once a
// minute at a phase set when the swarm started; a client started at
// another phase would meet that minute earlier or later in its window.
const mixedSlot = time.Minute

// mixedWaitSlot sleeps until the next start of a slot after ref (at once
// at ref itself), so that every client run meets the seeders' PEX at the
// same phase.
func mixedWaitSlot(ref time.Time) {
	el := time.Since(ref)
	n := (el + mixedSlot - 1) / mixedSlot
	time.Sleep(time.Until(ref.Add(n * mixedSlot)))
}

// mixedEnvBytes reads a size like "16MiB" from the environment variable
// name, def when unset.
func mixedEnvBytes(b *testing.B, name string, def uint64) uint64 {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := humanize.ParseBytes(s)
	if err != nil {
		b.Fatalf("%s=%q: %v", name, s, err)
	}
	return n
}

// mixedClientHost makes a fresh namespace for one client run in position
// pos: a public host, or a host behind a new router.
func mixedClientHost(b *testing.B, sim *enginetest.NetSim, client, pos string, i int) *enginetest.NetHost {
	name := fmt.Sprintf("%s-%s-%d", client, pos, i)
	switch pos {
	case "public":
		h := sim.PublicHost(name)
		h.AddGlobalIPv6(b)
		return h
	case "cone", "symmetric":
		kind := enginetest.ConeNAT
		if pos == "symmetric" {
			kind = enginetest.SymmetricNAT
		}
		r := sim.Router("home-"+name, kind)
		r.AddGlobalIPv6(b)
		return r.Host(name)
	}
	b.Fatalf("SWARMFS_MIXED_POSITIONS: unknown position %q (public, cone, symmetric)", pos)
	return nil
}

// mixedTimeout bounds one client's download.
const mixedTimeout = 5 * time.Minute

// runMixedSwarmfs runs `swarmfs get --seed -v` on h until the window has
// passed and the download ended (or mixedTimeout), recording connections
// made within the window in reach. It returns the seconds from start to
// the end of the download, 0 if it did not end.
func runMixedSwarmfs(b *testing.B, h *enginetest.NetHost, c *enginetest.Content, reach *enginetest.Reach) float64 {
	start := time.Now()
	p := h.Start(b, "sh", "-c", `exec "$0" "$@" 2>&1`, os.Args[0], "get", "--seed", "-v", "--no-dht",
		"--port", strconv.Itoa(mixedClientPort), "--cache-dir", b.TempDir(), "-o", b.TempDir(), c.Torrent)
	defer p.Kill()
	return mixedFollow(b, p, start, reach, enginetest.ParseSwarmfsPeerLine, func(line string) bool {
		return strings.HasPrefix(line, c.Name+": downloaded ")
	})
}

// runMixedLibtorrent runs the libtorrent driver on h as runMixedSwarmfs
// runs swarmfs: TCP and uTP, listening on both of h's addresses.
func runMixedLibtorrent(b *testing.B, h *enginetest.NetHost, c *enginetest.Content, reach *enginetest.Reach) float64 {
	start := time.Now()
	lt := h.StartLibtorrent(b, enginetest.LTOptions{
		Torrent: c.Torrent, SavePath: b.TempDir(), PeerLog: true, Timeout: mixedTimeout + time.Minute,
		Settings: map[string]any{
			"enable_incoming_utp": true, "enable_outgoing_utp": true, "announce_ip": "",
			"listen_interfaces":   fmt.Sprintf("0.0.0.0:%d,[::]:%d", mixedClientPort, mixedClientPort),
			"outgoing_interfaces": "",
		},
	})
	defer lt.Kill()
	return mixedFollow(b, lt.Proc, start, reach, enginetest.ParseLTPeerLine, func(line string) bool {
		return strings.HasPrefix(line, "done ")
	})
}

// mixedFollow reads p's lines until the window has passed and done has
// matched a line, or mixedTimeout: connections that parse reports before
// the window ends go into reach. It returns the seconds from start to the
// done line, 0 without one.
func mixedFollow(b *testing.B, p *enginetest.Proc, start time.Time, reach *enginetest.Reach,
	parse func(string) (enginetest.PeerConn, bool), done func(string) bool) float64 {
	ctx, cancel := context.WithTimeout(context.Background(), mixedTimeout)
	defer cancel()
	var secs float64
	for {
		line, err := p.NextLine(ctx)
		el := time.Since(start)
		switch {
		case errors.Is(err, io.EOF):
			b.Logf("%s exited early:\n%s", p.Name, p.Output())
			return secs
		case err != nil:
			if secs == 0 {
				b.Logf("%s did not finish within %v", p.Name, mixedTimeout)
			}
			return secs
		}
		if pc, ok := parse(line); ok && el < mixedWindow {
			reach.Add(pc)
		}
		if secs == 0 && done(line) {
			secs = el.Seconds()
			if el >= mixedWindow {
				return secs
			}
			// Done: read on only until the window ends.
			var wcancel context.CancelFunc
			ctx, wcancel = context.WithDeadline(ctx, start.Add(mixedWindow))
			defer wcancel()
		}
	}
}

// mixedMBps is the download rate in MB/s, 0 for a download that did not end.
func mixedMBps(size int64, secs float64) float64 {
	if secs <= 0 {
		return 0
	}
	return float64(size) / secs / 1e6
}

// mixedTable formats the runs: a summary line per client and position,
// then per swarm peer how each run reached it.
func mixedTable(sw *enginetest.MixedSwarm, runs []mixedRun, size int64) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "%-10s %-11s %6s %7s %8s  %s\n", "position", "client", "peers", "MB/s", "time", "missed")
	for _, r := range runs {
		t := "-"
		if r.secs > 0 {
			t = fmt.Sprintf("%.1fs", r.secs)
		}
		fmt.Fprintf(&sb, "%-10s %-11s %3d/%-2d %7.2f %8s  %s\n", r.position, r.client, r.reach.Len(), len(sw.Peers),
			mixedMBps(size, r.secs), t, strings.Join(r.reach.Missed(), " "))
	}
	fmt.Fprintf(&sb, "\n%-9s %-34s", "peer", "position")
	for _, r := range runs {
		fmt.Fprintf(&sb, " %-14s", r.position+"/"+map[string]string{"libtorrent": "lt", "swarmfs": "sfs"}[r.client])
	}
	sb.WriteString("\n")
	for _, p := range sw.Peers {
		fmt.Fprintf(&sb, "%-9s %-34s", p.Name, p.What)
		for _, r := range runs {
			how := "-"
			if c, ok := r.reach.Conn(p.Name); ok {
				how = c.String()
			}
			fmt.Fprintf(&sb, " %-14s", how)
		}
		sb.WriteString("\n")
	}
	return sb.String()
}
