package portmap

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strings"
)

// DefaultGateway returns the IPv4 default gateway from /proc/net/route
// (of the calling process's network namespace), or ErrNoGateway.
func DefaultGateway() (netip.Addr, error) {
	f, err := os.Open("/proc/net/route")
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%w: %v", ErrNoGateway, err)
	}
	defer f.Close()
	return parseRoutes(io.LimitReader(f, 1<<20))
}

// parseRoutes finds the default route with a gateway in the format of
// /proc/net/route (hexadecimal fields in host byte order, little-endian on
// the machines Linux runs on here), preferring the lowest metric.
func parseRoutes(r io.Reader) (netip.Addr, error) {
	sc := bufio.NewScanner(r)
	best, bestMetric := netip.Addr{}, -1
	first := true
	for sc.Scan() {
		if first { // header line
			first = false
			continue
		}
		f := strings.Fields(sc.Text())
		if len(f) < 8 || f[1] != "00000000" || f[7] != "00000000" {
			continue // not a default route
		}
		var flags, metric int
		if _, err := fmt.Sscanf(f[3]+" "+f[6], "%x %d", &flags, &metric); err != nil || flags&0x3 != 0x3 {
			continue // not up, or no gateway (RTF_UP|RTF_GATEWAY)
		}
		g, err := hex.DecodeString(f[2])
		if err != nil || len(g) != 4 {
			continue
		}
		var a [4]byte
		binary.BigEndian.PutUint32(a[:], binary.LittleEndian.Uint32(g))
		if bestMetric < 0 || metric < bestMetric {
			best, bestMetric = netip.AddrFrom4(a), metric
		}
	}
	if bestMetric < 0 {
		return netip.Addr{}, ErrNoGateway
	}
	return best, nil
}

// discoverUPnP finds the IGD by SSDP, reads its description and returns a
// UPnP method for its WAN connection service.
func discoverUPnP(ctx context.Context, cfg *Config, gw netip.Addr, client *http.Client) (*upnp, error) {
	loc, err := ssdpSearch(ctx, cfg.ListenPacket, gw)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, loc.String(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: UPnP description: %v", ErrNoAnswer, err)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxXML+1))
	resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("%w: UPnP description: %v", ErrNoAnswer, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: UPnP description: HTTP %d", ErrNoIGD, resp.StatusCode)
	}
	control, service, err := parseDescription(body, loc)
	if err != nil {
		return nil, err
	}
	local, err := localAddr(ctx, cfg.Dial, control)
	if err != nil {
		return nil, err
	}
	return &upnp{client: client, control: control, service: service, local: local, desc: cfg.Description}, nil
}

// localAddr is our address on the way to u's host, from a connected UDP
// socket (which sends nothing).
func localAddr(ctx context.Context, dial dialFunc, u *url.URL) (netip.Addr, error) {
	c, err := dial(ctx, "udp", u.Host)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("portmap: local address: %w", err)
	}
	defer c.Close()
	ua, ok := c.LocalAddr().(*net.UDPAddr)
	if !ok {
		return netip.Addr{}, fmt.Errorf("portmap: local address: %v", c.LocalAddr())
	}
	return ua.AddrPort().Addr().Unmap(), nil
}
