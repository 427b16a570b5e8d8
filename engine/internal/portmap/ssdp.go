package portmap

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"time"
)

// ssdpGroup is the SSDP multicast address (UPnP Device Architecture).
const ssdpGroup = "239.255.255.250:1900"

// maxSSDP caps an SSDP answer we read.
const maxSSDP = 2048

// Search targets: an IGD of either version (an IGD:2 answers IGD:1 too).
var ssdpTargets = []string{
	"urn:schemas-upnp-org:device:InternetGatewayDevice:1",
	"urn:schemas-upnp-org:device:InternetGatewayDevice:2",
}

// listenFunc opens a packet socket like net.ListenConfig.ListenPacket.
type listenFunc func(ctx context.Context, network, address string) (net.PacketConn, error)

// ssdpSearch multicasts M-SEARCH for an IGD and returns the description
// URL of the first answer from gw (or, when none came from gw by the
// deadline of ctx, the first from any host of the LAN). An answer is taken
// only when its LOCATION names the host that sent it.
func ssdpSearch(ctx context.Context, listen listenFunc, gw netip.Addr) (*url.URL, error) {
	pc, err := listen(ctx, "udp4", ":0")
	if err != nil {
		return nil, fmt.Errorf("portmap: SSDP socket: %w", err)
	}
	defer pc.Close()
	dst, err := net.ResolveUDPAddr("udp4", ssdpGroup)
	if err != nil {
		return nil, err
	}
	send := func() error {
		for _, st := range ssdpTargets {
			msg := "M-SEARCH * HTTP/1.1\r\nHOST: " + ssdpGroup + "\r\nMAN: \"ssdp:discover\"\r\nMX: 1\r\nST: " + st + "\r\n\r\n"
			if _, err := pc.WriteTo([]byte(msg), dst); err != nil {
				return fmt.Errorf("portmap: SSDP search: %w", err)
			}
		}
		return nil
	}
	if err := send(); err != nil {
		return nil, err
	}
	var first *url.URL
	buf := make([]byte, maxSSDP+1)
	resend := time.Now().Add(time.Second)
	for {
		until := resend
		if d, ok := ctx.Deadline(); ok && d.Before(until) {
			until = d
		}
		_ = pc.SetReadDeadline(until)
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				return nil, fmt.Errorf("portmap: SSDP: %w", err)
			}
			if ctx.Err() != nil {
				if first != nil {
					return first, nil
				}
				return nil, ErrNoIGD
			}
			if time.Now().After(resend) { // UDP may be lost: ask again once a second
				if err := send(); err != nil {
					return nil, err
				}
				resend = time.Now().Add(time.Second)
			}
			continue
		}
		loc, err := parseSSDP(buf[:n])
		if err != nil {
			continue
		}
		src, ok := from.(*net.UDPAddr)
		if !ok {
			continue
		}
		host, err := netip.ParseAddr(loc.Hostname())
		if err != nil || host != src.AddrPort().Addr().Unmap() {
			continue
		}
		if host == gw {
			return loc, nil
		}
		if first == nil {
			first = loc
		}
	}
}

// parseSSDP parses an answer to M-SEARCH and returns its LOCATION, an
// http URL whose host is an IP address. It errors with ErrMalformed.
func parseSSDP(b []byte) (*url.URL, error) {
	if len(b) > maxSSDP {
		return nil, fmt.Errorf("%w: SSDP answer of %d bytes", ErrMalformed, len(b))
	}
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(b)), nil)
	if err != nil {
		return nil, fmt.Errorf("%w: SSDP: %v", ErrMalformed, err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("%w: SSDP status %d", ErrMalformed, resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || loc.Scheme != "http" || loc.User != nil {
		return nil, fmt.Errorf("%w: SSDP location %q", ErrMalformed, resp.Header.Get("Location"))
	}
	if _, err := netip.ParseAddr(loc.Hostname()); err != nil {
		return nil, fmt.Errorf("%w: SSDP location host %q is not an address", ErrMalformed, loc.Hostname())
	}
	return loc, nil
}
