package enginetest

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// MixedPeerPort is the port every peer of a mixed swarm listens on (TCP and
// UDP), each in its own namespace; forwarded ports keep it on the router.
const MixedPeerPort = 6881

// MixedSwarmOptions configures StartMixedSwarm.
type MixedSwarmOptions struct {
	// Torrent is the .torrent file, announcing to an opentracker the caller
	// started in the simulation (NetHost.StartOpentracker).
	Torrent string
	// Dir is the save path holding the complete content. Every seeder reads
	// it; none writes to it.
	Dir string
	// UploadRate caps each seeder's upload in bytes per second, as real
	// peers on home lines are capped; 0 means unlimited.
	UploadRate int
	// NoTransmission replaces the two transmission-cli seeders by
	// libtorrent ones in the same positions (for machines without it).
	NoTransmission bool
}

// MixedPeer is one seeder of a mixed swarm.
type MixedPeer struct {
	// Name is short and unique in the swarm ("pub-utp", "cone-hp").
	Name string
	// What says where the peer is and what it speaks.
	What string
	// Host is the peer's namespace; Router is its home router, nil for a
	// public peer.
	Host   *NetHost
	Router *NetRouter
	// Proc is the seeding process (libtorrent's driver or transmission-cli).
	Proc *Proc
	// ips are the addresses other hosts see for the peer's connections:
	// its own public addresses, or its router's external ones.
	ips []netip.Addr
}

// MixedSwarm is twelve seeders of one torrent in every position of a
// simulated internet (see StartMixedSwarm).
type MixedSwarm struct {
	Peers []*MixedPeer
}

// mixedSpec describes one seeder of the mixed swarm before it starts.
type mixedSpec struct {
	name, what string
	nat        NATKind
	public     bool // on the internet bridge (else behind a router of kind nat)
	forward    bool // the router forwards MixedPeerPort (TCP and UDP) to it
	ipv6Only   bool
	tr         bool           // transmission-cli rather than libtorrent
	settings   map[string]any // libtorrent settings over mixedBase
}

var (
	ltTCPOnly = map[string]any{"enable_incoming_utp": false, "enable_outgoing_utp": false}
	ltBoth    = map[string]any{}
)

// mixedSpecs are the twelve seeders in the order they start: the IPv6-only
// one first, for "pub" to connect to it, then the other public ones, then
// the NATed ones, which connect to the public ones at start. That makes
// the public ones relays for hole punching (BEP 55) and lets their PEX
// tell clients about the others (libtorrent passes on in PEX only the
// peers it connected to or that told it their listen port).
var mixedSpecs = []mixedSpec{
	{name: "pub-v6", what: "public, IPv6 only (no tracker: PEX)", public: true, ipv6Only: true, settings: ltBoth},
	{name: "pub", what: "public, TCP+uTP, dual-stack", public: true, settings: ltBoth},
	{name: "pub-2", what: "public, TCP+uTP", public: true, settings: ltBoth},
	{name: "pub-tcp", what: "public, TCP only", public: true, settings: ltTCPOnly},
	{name: "pub-utp", what: "public, uTP only", public: true, settings: LTUTPOnly},
	{name: "pub-tr", what: "public, transmission-cli", public: true, tr: true},
	{name: "cone-fwd", what: "cone NAT, port forwarded", nat: ConeNAT, forward: true, settings: ltBoth},
	{name: "cone-hp", what: "cone NAT, TCP+uTP, holepunch", nat: ConeNAT, settings: ltBoth},
	{name: "cone-utp", what: "cone NAT, uTP only, holepunch", nat: ConeNAT, settings: LTUTPOnly},
	{name: "cone-tcp", what: "cone NAT, TCP only (no punch)", nat: ConeNAT, settings: ltTCPOnly},
	{name: "sym", what: "symmetric NAT, TCP+uTP", nat: SymmetricNAT, settings: ltBoth},
	{name: "cone-tr", what: "cone NAT, forwarded, transmission", nat: ConeNAT, forward: true, tr: true},
}

// StartMixedSwarm starts twelve seeders of o.Torrent in sim and waits until
// each seeds: libtorrent on public hosts (TCP+uTP and dual-stack, TCP
// only, uTP only, IPv6 only), transmission-cli on a public host and behind
// a cone NAT with its port forwarded, and libtorrent behind cone NATs
// (port forwarded; TCP+uTP and uTP only, both able to be hole punched;
// TCP only, which cannot be) and behind a symmetric NAT. Each NATed peer
// has a router of its own, so the address a connection comes from names
// the peer (PeerOf), and drops what nobody inside asked for (as every
// NetRouter does). Seeders keep their connections to each other
// (close_redundant_connections off), so that a public seeder can relay a
// hole punch to a NATed one, and its PEX tells clients about the others.
// The IPv6-only seeder has no IPv4 address: the dual-stack "pub" connects
// to it at start, and clients learn of it only through PEX (Debian's
// opentracker serves IPv4 only). Its address is a global one (see
// AddGlobalIPv6): swarmfs and libtorrent both ignore unique local
// addresses (fd00::/8, the simulation's own) that a peer with a global
// address sends in PEX. Clients need AddGlobalIPv6 on their host (or
// their router) to reach it.
func StartMixedSwarm(t testing.TB, sim *NetSim, o MixedSwarmOptions) *MixedSwarm {
	t.Helper()
	sw := &MixedSwarm{}
	var publics []string // "ip:port" of the public IPv4 seeders
	var v6only string    // "[ip]:port" of the IPv6-only seeder
	for _, sp := range mixedSpecs {
		p := &MixedPeer{Name: sp.name, What: sp.what}
		if sp.public {
			p.Host = sim.PublicHost("seed-" + sp.name)
			p.ips = []netip.Addr{p.Host.Addr(), p.Host.Addr6(), p.Host.AddGlobalIPv6(t)}
		} else {
			p.Router = sim.Router("home-"+sp.name, sp.nat)
			p.Host = p.Router.Host("seed-" + sp.name)
			p.ips = []netip.Addr{p.Router.ExternalAddr(), p.Router.ExternalAddr6(), p.Router.AddGlobalIPv6(t)}
			if sp.forward {
				for _, proto := range []string{"tcp", "udp"} {
					if err := p.Router.DNAT(proto, MixedPeerPort, netip.AddrPortFrom(p.Host.Addr(), MixedPeerPort)); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
		switch {
		case sp.tr && !o.NoTransmission:
			p.Proc = p.Host.startTransmissionSeeder(t, o)
			if sp.public {
				publics = append(publics, netip.AddrPortFrom(p.Host.Addr(), MixedPeerPort).String())
			}
		default:
			settings := map[string]any{
				"enable_incoming_utp": true, "enable_outgoing_utp": true,
				"close_redundant_connections": false, "announce_ip": "",
				"upload_rate_limit": o.UploadRate,
			}
			maps.Copy(settings, sp.settings)
			lo := LTOptions{Torrent: o.Torrent, SavePath: o.Dir, Port: MixedPeerPort, Settings: settings,
				CapLocalPeers: true, PeerLog: true, Timeout: 2 * time.Hour}
			switch {
			case sp.ipv6Only:
				v4 := netip.PrefixFrom(p.Host.Addr(), 16).String()
				if _, err := p.Host.Run(context.Background(), sim.ip, "addr", "del", v4, "dev", "eth0"); err != nil {
					t.Fatal(err)
				}
				p.ips = p.ips[1:]
				lo.IP = p.ips[1].String()
				v6only = netip.AddrPortFrom(p.ips[1], MixedPeerPort).String()
			case sp.name == "pub":
				settings["listen_interfaces"] = fmt.Sprintf("%s:%d,[%s]:%d", p.Host.Addr(), MixedPeerPort, p.ips[2], MixedPeerPort)
				settings["outgoing_interfaces"] = ""
				lo.Peers = []string{v6only}
			case !sp.public:
				lo.Peers = publics
			}
			lt := p.Host.StartLibtorrent(t, lo)
			p.Proc = lt.Proc
			if sp.public && !sp.ipv6Only {
				publics = append(publics, lt.Addr)
			}
		}
		sw.Peers = append(sw.Peers, p)
	}
	for _, p := range sw.Peers {
		if _, err := p.Proc.AwaitLine(mixedSeedingLine(p.Proc), 2*time.Minute); err != nil {
			t.Fatalf("mixed swarm: %s did not start seeding: %v\n%s", p.Name, err, p.Proc.Output())
		}
	}
	return sw
}

// mixedSeedingLine is the line prefix by which p says it seeds.
func mixedSeedingLine(p *Proc) string {
	if p.Name == "transmission-cli" {
		return "Seeding"
	}
	return "state seeding"
}

// PeerOf returns the name of the swarm's peer whose connections come from
// (or go to) addr, "" when addr is none of the swarm's.
func (sw *MixedSwarm) PeerOf(addr netip.Addr) string {
	addr = addr.Unmap()
	for _, p := range sw.Peers {
		for _, ip := range p.ips {
			if ip == addr {
				return p.Name
			}
		}
	}
	return ""
}

// startTransmissionSeeder starts transmission-cli on h seeding o.Torrent
// from o.Dir on MixedPeerPort, with uTP and PEX on and DHT, LPD and port
// mapping off; it announces to the tracker directly (inside a namespace
// it can only leave from h's address). Its upload is capped at
// o.UploadRate (transmission counts in kB of 1000 bytes).
func (h *NetHost) startTransmissionSeeder(t testing.TB, o MixedSwarmOptions) *Proc {
	t.Helper()
	bin := RequireTool(t, "transmission-cli", "transmission-cli")
	cfgDir := t.TempDir()
	settings := map[string]any{
		"bind-address-ipv4": h.Addr().String(), "bind-address-ipv6": "::",
		"peer-port": MixedPeerPort, "peer-port-random-on-start": false,
		"dht-enabled": false, "lpd-enabled": false, "pex-enabled": true, "utp-enabled": true,
		"port-forwarding-enabled": false, "rpc-enabled": false, "blocklist-enabled": false,
		"speed-limit-down-enabled": false, "alt-speed-enabled": false,
		"ratio-limit-enabled": false, "idle-seeding-limit-enabled": false,
		"encryption": 1, "message-level": 2,
		"peer-limit-per-torrent": 100, "upload-slots-per-torrent": 50,
		"download-dir": o.Dir,
	}
	limit := []string{"-U"}
	if o.UploadRate > 0 {
		limit = []string{"-u", strconv.Itoa(max(o.UploadRate/1000, 1))}
	}
	js, err := json.MarshalIndent(settings, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfgDir, "settings.json"), js, 0o644); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"--net=/run/netns/" + h.name, "--", bin, "-g", cfgDir, "-w", o.Dir,
		"-p", strconv.Itoa(MixedPeerPort), "-D", "-M"}, limit...)
	p := start(t, true, "nsenter", append(args, o.Torrent)...)
	p.Name = "transmission-cli"
	return p
}

// AddGlobalIPv6 gives a public host a second IPv6 address on the internet
// bridge, in the documentation prefix 2001:db8::/64 (reserved, never
// routed): the simulation's own addresses (fd64::N) are unique local ones,
// which clients treat as local (PEX ignores them from a non-local peer).
// The host keeps its number: fd64::N gets 2001:db8::N.
func (h *NetHost) AddGlobalIPv6(t testing.TB) netip.Addr {
	t.Helper()
	return h.addGlobalIPv6(t, "eth0", h.Addr6())
}

// AddGlobalIPv6 gives the router's WAN side an address in 2001:db8::/64 as
// NetHost.AddGlobalIPv6 does for a public host (fd64::1:N gets
// 2001:db8::1:N); its hosts' IPv6 connections to that prefix then leave
// masqueraded behind it.
func (r *NetRouter) AddGlobalIPv6(t testing.TB) netip.Addr {
	t.Helper()
	return r.addGlobalIPv6(t, "wan0", r.ExternalAddr6())
}

func (h *NetHost) addGlobalIPv6(t testing.TB, dev string, ula netip.Addr) netip.Addr {
	t.Helper()
	b := ula.As16()
	copy(b[:8], []byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0})
	a := netip.AddrFrom16(b)
	if _, err := h.Run(context.Background(), h.sim.ip, "addr", "add", netip.PrefixFrom(a, 64).String(), "dev", dev, "nodad"); err != nil {
		t.Fatal(err)
	}
	return a
}
