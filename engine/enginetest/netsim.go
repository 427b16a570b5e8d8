package enginetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// NATKind is how a simulated home router translates its hosts' addresses.
type NATKind int

const (
	// ConeNAT masquerades with the kernel's default port choice, which keeps
	// a host's source port when it is free: the same internal address and
	// port map to the same external port for every destination.
	ConeNAT NATKind = iota
	// SymmetricNAT masquerades with "masquerade random": each new
	// connection or UDP flow gets a random external port.
	SymmetricNAT
)

// String returns "cone" or "symmetric".
func (k NATKind) String() string {
	switch k {
	case ConeNAT:
		return "cone"
	case SymmetricNAT:
		return "symmetric"
	}
	return fmt.Sprintf("NATKind(%d)", int(k))
}

// NetSim is a simulated internet built from network namespaces: an
// "internet" namespace holding a bridge, public hosts attached to it with
// addresses in 100.64.0.0/16 (shared address space, never routed on the
// real internet), and home routers whose WAN side is on that bridge and
// whose LAN side is a bridge of its own in 10.N.0.0/24, with hosts behind
// it. Every namespace and link exists only for the test that made it and
// is deleted in t.Cleanup, also when the test fails.
//
// Addresses: public hosts get 100.64.0.1, 100.64.0.2, ...; router N (from 1)
// gets 100.64.1.N outside and 10.N.0.1 inside; its hosts get 10.N.0.2, ...
// Every namespace also has IPv6 unique local addresses (fd00::/8, never
// routed): public hosts fd64::N, router N fd64::1:N outside and fd00:N::1
// inside, its hosts fd00:N::2, ... Routers masquerade IPv6 the same way as
// IPv4 (real home routers route IPv6 and only filter it; for reachability
// tests the difference is which address a peer sees).
//
// Methods may be called from several goroutines; building normally happens
// at the start of a test.
type NetSim struct {
	t      testing.TB
	ip     string // path of the ip command
	nft    string // path of the nft command
	prefix string // "sfs<hex>-", unique per NetSim
	inet   string // name of the internet namespace

	mu      sync.Mutex      // guards the counters and names below
	names   map[string]bool // namespace name: made (false while reserved)
	publics int
	routers int
}

// NetHost is a namespace in a NetSim: a public host, a host behind a router,
// or (through NetRouter.Host's router) the router itself.
type NetHost struct {
	sim   *NetSim
	name  string // namespace name
	addr  netip.Addr
	addr6 netip.Addr
}

// NetRouter is a simulated home router: a namespace that forwards between
// its LAN bridge and the internet, masquerading the LAN behind its one
// external address, and dropping what comes from outside unless it belongs
// to a connection started inside or is destination-translated by a rule
// (see DNAT).
//
// Like a real home router's firewall, it also turns away unsolicited
// packets for its own external address (TCP with a reset, the rest
// silently) before the kernel's connection tracking records them. Without
// that, the first uTP SYN of a hole punch that arrives before the host
// behind the router sent its own would be delivered to the router itself
// and leave a tracked UDP flow between the two external endpoints; the
// host's own SYN, leaving a moment later, would then clash with it and be
// masqueraded to another port, and the punch would fail on both sides.
type NetRouter struct {
	NetHost // the router's own namespace; Addr is its LAN address
	kind    NATKind
	n       int
	ext     netip.Addr
	ext6    netip.Addr
	hosts   int
}

// RequireNetSim skips t unless the test runs as root and the ip (Debian
// package iproute2), nft (nftables) and nsenter (util-linux) commands are
// installed. It returns the paths of ip and nft.
func RequireNetSim(t testing.TB) (ip, nft string) {
	t.Helper()
	ip = RequireNetns(t)
	nft = RequireTool(t, "nft", "nftables")
	RequireTool(t, "nsenter", "util-linux")
	return ip, nft
}

// NewNetSim makes the internet namespace with its bridge and registers the
// deletion of every namespace the simulation makes in t.Cleanup.
func NewNetSim(t testing.TB) *NetSim {
	t.Helper()
	ip, nft := RequireNetSim(t)
	var rnd [4]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		t.Fatal(err)
	}
	s := &NetSim{t: t, ip: ip, nft: nft, prefix: "sfs" + hex.EncodeToString(rnd[:]) + "-", names: map[string]bool{}}
	t.Cleanup(s.cleanup)
	s.inet = s.addNS("internet")
	s.must("-n", s.inet, "link", "add", "br0", "type", "bridge", "mcast_snooping", "0")
	s.must("-n", s.inet, "link", "set", "br0", "up")
	return s
}

// Prefix is the prefix of every namespace name of s ("sfs<hex>-").
func (s *NetSim) Prefix() string { return s.prefix }

// PublicHost adds a host with its own public address on the internet bridge.
func (s *NetSim) PublicHost(name string) *NetHost {
	s.t.Helper()
	s.mu.Lock()
	s.publics++
	n := s.publics
	s.mu.Unlock()
	if n > 250 {
		s.t.Fatal("netsim: more than 250 public hosts")
	}
	h := &NetHost{sim: s, name: s.addNS(name), addr: netip.AddrFrom4([4]byte{100, 64, 0, byte(n)}),
		addr6: netip.MustParseAddr(fmt.Sprintf("fd64::%x", n))}
	s.attach(h.name, "eth0", fmt.Sprintf("p%d", n), h.addr.String()+"/16", h.addr6.String()+"/64")
	return h
}

// Router adds a home router of the given kind with an empty LAN.
func (s *NetSim) Router(name string, kind NATKind) *NetRouter {
	s.t.Helper()
	s.mu.Lock()
	s.routers++
	n := s.routers
	s.mu.Unlock()
	if n > 250 {
		s.t.Fatal("netsim: more than 250 routers")
	}
	r := &NetRouter{kind: kind, n: n, ext: netip.AddrFrom4([4]byte{100, 64, 1, byte(n)}),
		ext6: netip.MustParseAddr(fmt.Sprintf("fd64::1:%x", n))}
	r.NetHost = NetHost{sim: s, name: s.addNS(name), addr: netip.AddrFrom4([4]byte{10, byte(n), 0, 1}),
		addr6: netip.MustParseAddr(fmt.Sprintf("fd00:%x::1", n))}
	s.attach(r.name, "wan0", fmt.Sprintf("r%d", n), r.ext.String()+"/16", r.ext6.String()+"/64")
	s.must("-n", r.name, "link", "add", "lan0", "type", "bridge", "mcast_snooping", "0")
	s.must("-n", r.name, "addr", "add", r.addr.String()+"/24", "dev", "lan0")
	s.must("-n", r.name, "addr", "add", r.addr6.String()+"/64", "dev", "lan0", "nodad")
	s.must("-n", r.name, "link", "set", "lan0", "up")
	if _, err := r.Run(context.Background(), "sysctl", "-q", "-w", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"); err != nil {
		s.t.Fatal(err)
	}
	masq := "masquerade"
	if kind == SymmetricNAT {
		masq = "masquerade random"
	}
	var rules string
	for _, family := range []string{"ip", "ip6"} {
		icmp := "icmp"
		if family == "ip6" {
			icmp = "ipv6-icmp" // neighbour discovery must pass
		}
		rules += `
table ` + family + ` netsim {
	chain prerouting { type nat hook prerouting priority -100; }
	chain postrouting { type nat hook postrouting priority 100; oifname "wan0" ` + masq + `; }
	chain forward {
		type filter hook forward priority 0; policy drop;
		ct state established,related accept
		ct status dnat accept
		iifname "lan0" accept
	}
	chain input {
		type filter hook input priority 0; policy accept;
		iifname "wan0" ct state established,related accept
		iifname "wan0" meta l4proto ` + icmp + ` accept
		iifname "wan0" meta l4proto tcp reject with tcp reset
		iifname "wan0" counter drop
	}
}
`
	}
	if err := r.Nft(rules); err != nil {
		s.t.Fatal(err)
	}
	return r
}

// Host adds a host behind r, on its LAN bridge, with r as default gateway.
func (r *NetRouter) Host(name string) *NetHost {
	s := r.sim
	s.t.Helper()
	s.mu.Lock()
	r.hosts++
	k := r.hosts
	s.mu.Unlock()
	if k > 250 {
		s.t.Fatal("netsim: more than 250 hosts behind one router")
	}
	h := &NetHost{sim: s, name: s.addNS(name), addr: netip.AddrFrom4([4]byte{10, byte(r.n), 0, byte(k + 1)}),
		addr6: netip.MustParseAddr(fmt.Sprintf("fd00:%x::%x", r.n, k+1))}
	peer := fmt.Sprintf("h%d", k)
	s.must("link", "add", "eth0", "netns", h.name, "type", "veth", "peer", "name", peer, "netns", r.name)
	s.must("-n", r.name, "link", "set", peer, "master", "lan0", "up")
	s.must("-n", h.name, "addr", "add", h.addr.String()+"/24", "dev", "eth0")
	s.must("-n", h.name, "addr", "add", h.addr6.String()+"/64", "dev", "eth0", "nodad")
	s.must("-n", h.name, "link", "set", "eth0", "up")
	s.must("-n", h.name, "route", "add", "default", "via", r.addr.String())
	s.must("-n", h.name, "-6", "route", "add", "default", "via", r.addr6.String())
	return h
}

// Kind is the router's NAT kind.
func (r *NetRouter) Kind() NATKind { return r.kind }

// ExternalAddr is the router's address on the internet bridge: the source
// address public hosts see for its hosts' connections.
func (r *NetRouter) ExternalAddr() netip.Addr { return r.ext }

// ExternalAddr6 is the router's IPv6 address on the internet bridge.
func (r *NetRouter) ExternalAddr6() netip.Addr { return r.ext6 }

// DNAT makes connections and datagrams of protocol proto ("tcp" or "udp")
// arriving at the router's external address of to's family on port extPort
// go to to, the way a port forward in a home router's settings would. The
// rule stays until the simulation is torn down.
func (r *NetRouter) DNAT(proto string, extPort uint16, to netip.AddrPort) error {
	family := "ip"
	if to.Addr().Is6() {
		family = "ip6"
	}
	return r.Nft(fmt.Sprintf("add rule %s netsim prerouting iifname \"wan0\" %s dport %d dnat to %s\n", family, proto, extPort, to))
}

// Nft feeds script to nft -f - inside the router's namespace.
func (r *NetRouter) Nft(script string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := r.Command(ctx, r.sim.nft, "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("nft in %s: %v: %s", r.name, err, out)
	}
	return nil
}

// Name is the namespace's name, usable as /run/netns/NAME.
func (h *NetHost) Name() string { return h.name }

// Addr is the host's own IPv4 address (for a router, its LAN address).
func (h *NetHost) Addr() netip.Addr { return h.addr }

// Addr6 is the host's own IPv6 address (for a router, its LAN address).
func (h *NetHost) Addr6() netip.Addr { return h.addr6 }

// Command returns a command that runs name with args inside the host's
// network namespace. It enters only the network namespace (nsenter --net),
// not a mount namespace of its own as `ip netns exec` would, so FUSE mounts
// made by or for the command stay visible to the rest of the test.
func (h *NetHost) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "nsenter", append([]string{"--net=/run/netns/" + h.name, "--", name}, args...)...)
}

// Run runs argv inside the namespace and returns its combined output; the
// error includes that output.
func (h *NetHost) Run(ctx context.Context, argv ...string) (string, error) {
	if len(argv) == 0 {
		return "", fmt.Errorf("netsim: Run without a command")
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	out, err := h.Command(ctx, argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s in %s: %v: %s", strings.Join(argv, " "), h.name, err, out)
	}
	return string(out), nil
}

// Start starts a long-running process inside the namespace the way Start
// does (killed in t.Cleanup, its output on Lines).
func (h *NetHost) Start(t testing.TB, name string, args ...string) *Proc {
	t.Helper()
	p := start(t, false, "nsenter", append([]string{"--net=/run/netns/" + h.name, "--", name}, args...)...)
	p.Name = name
	return p
}

// addNS creates the namespace prefix+name with lo up and returns its name.
func (s *NetSim) addNS(name string) string {
	s.t.Helper()
	full := s.prefix + name
	s.mu.Lock()
	_, dup := s.names[full]
	if !dup {
		s.names[full] = false // reserved; true once made
	}
	s.mu.Unlock()
	if dup {
		s.t.Fatalf("netsim: two namespaces named %q", name)
	}
	s.must("netns", "add", full)
	s.mu.Lock()
	s.names[full] = true // made: delete in cleanup
	s.mu.Unlock()
	s.must("-n", full, "link", "set", "lo", "up")
	return full
}

// attach links namespace ns to the internet bridge through a veth pair
// (dev inside ns, peer on the bridge) and gives dev the addresses cidr4
// and cidr6.
func (s *NetSim) attach(ns, dev, peer, cidr4, cidr6 string) {
	s.must("link", "add", dev, "netns", ns, "type", "veth", "peer", "name", peer, "netns", s.inet)
	s.must("-n", s.inet, "link", "set", peer, "master", "br0", "up")
	s.must("-n", ns, "addr", "add", cidr4, "dev", dev)
	s.must("-n", ns, "addr", "add", cidr6, "dev", dev, "nodad")
	s.must("-n", ns, "link", "set", dev, "up")
}

// must runs ip with args and fails the test on error.
func (s *NetSim) must(args ...string) {
	s.t.Helper()
	if err := s.runIP(args...); err != nil {
		s.t.Fatal(err)
	}
}

func (s *NetSim) runIP(args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, s.ip, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

// cleanup deletes every namespace of s (those not deleted already);
// deleting a namespace removes its links and, once its processes are gone,
// its nftables rules.
func (s *NetSim) cleanup() {
	s.mu.Lock()
	names := make([]string, 0, len(s.names))
	for n, made := range s.names {
		if made {
			names = append(names, n)
		}
	}
	s.mu.Unlock()
	for _, n := range names {
		if err := s.runIP("netns", "delete", n); err != nil {
			s.t.Errorf("netsim cleanup: %v", err)
			continue
		}
		s.mu.Lock()
		delete(s.names, n)
		s.mu.Unlock()
	}
}
