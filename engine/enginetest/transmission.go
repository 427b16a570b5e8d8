package enginetest

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// TransmissionOptions configures a transmission-cli session.
type TransmissionOptions struct {
	// IP is the address transmission listens on and leaves from. It must
	// not be in 127.0.0.0/8 (transmission ignores such peers): use an
	// address of a Netns. Transmission's HTTP announces are not bound to
	// it, so they go through a relay that leaves from IP (see
	// announceRelay): the tracker sees transmission's own address.
	IP string
	// Port is the peer port; 0 picks a free one.
	Port int
	// Torrent is the .torrent file.
	Torrent string
	// Dir is the download directory (-w). Data already there is verified
	// at start and seeded.
	Dir string
	// UTP turns transmission's uTP on (its own default; off here unless
	// set, so that the TCP interop tests speak TCP).
	UTP bool
	// Encryption is transmission's "encryption" setting: 0 prefers
	// plaintext (allows encryption), 1 prefers encryption, 2 requires it.
	// Nil means 1, transmission's default.
	Encryption *int
}

// Transmission is a running transmission-cli.
type Transmission struct {
	*Proc
	// Addr is the peer address "ip:port".
	Addr string
}

// StartTransmission runs transmission-cli on a .torrent with a fresh
// configuration directory: no DHT, LPD, PEX or port mapping, uTP only
// when o.UTP is set, no speed limits, encryption as o.Encryption says
// (preferred by default, as transmission's own default). Its HTTP trackers
// are reached through announce relays that make it announce every
// relayInterval: its first announce may go out during its verification,
// claiming data it has not verified yet as missing. Transmission
// verifies existing data itself when it adds the torrent; asking again
// with -v started a second check, and transmission-cli 3.00 quits when it
// sees the torrent stopped between the two (a flaky "exited before
// printing Seeding"). Its progress lines ("Progress: ...",
// "Seeding, ...") arrive as lines of the Proc.
func StartTransmission(t testing.TB, o TransmissionOptions) *Transmission {
	t.Helper()
	bin := RequireTool(t, "transmission-cli", "transmission-cli")
	if ip := net.ParseIP(o.IP); ip == nil || ip.IsLoopback() {
		t.Fatalf("transmission: IP %q: want a non-127/8 address of a test namespace", o.IP)
	}
	if o.Port == 0 {
		o.Port = FreePort(t, o.IP)
	}
	cfgDir := t.TempDir()
	settings := map[string]any{
		"bind-address-ipv4":          o.IP,
		"bind-address-ipv6":          "::1",
		"peer-port":                  o.Port,
		"peer-port-random-on-start":  false,
		"dht-enabled":                false,
		"lpd-enabled":                false,
		"pex-enabled":                false,
		"utp-enabled":                false,
		"port-forwarding-enabled":    false,
		"rpc-enabled":                false,
		"blocklist-enabled":          false,
		"speed-limit-up-enabled":     false,
		"speed-limit-down-enabled":   false,
		"alt-speed-enabled":          false,
		"ratio-limit-enabled":        false,
		"idle-seeding-limit-enabled": false,
		"encryption":                 1,
		"message-level":              2,
		"peer-limit-per-torrent":     100,
		"upload-slots-per-torrent":   50,
		"download-dir":               o.Dir,
	}
	settings["utp-enabled"] = o.UTP
	if o.Encryption != nil {
		settings["encryption"] = *o.Encryption
	}
	js, err := json.MarshalIndent(settings, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfgDir, "settings.json"), js, 0o644); err != nil {
		t.Fatal(err)
	}
	torrent := relayTorrent(t, o.IP, o.Torrent)
	p := start(t, true, bin, "-g", cfgDir, "-w", o.Dir, "-p", strconv.Itoa(o.Port), "-U", "-D", "-M", torrent)
	return &Transmission{Proc: p, Addr: net.JoinHostPort(o.IP, strconv.Itoa(o.Port))}
}

// WaitSeeding waits until transmission reports that it seeds (after its
// verification of existing data, or after it finished downloading).
func (tr *Transmission) WaitSeeding(timeout time.Duration) error {
	if _, err := tr.AwaitLine("Seeding", timeout); err != nil {
		return fmt.Errorf("transmission: %w\n%s", err, tr.Output())
	}
	return nil
}
