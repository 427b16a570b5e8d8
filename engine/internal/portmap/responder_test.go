package portmap

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/enginetest"
)

// responder is a small NAT-PMP, PCP and UPnP IGD server for tests. It runs
// in a simulated router's namespace and installs each mapping as an element
// of an nftables map that a DNAT rule on the router's WAN side reads, so a
// mapped port is reached through the kernel's NAT.
type responder struct {
	t      *testing.T
	r      *enginetest.NetRouter
	pmp    bool // answer NAT-PMP
	pcp    bool // answer PCP (else: "unsupported version" as NAT-PMP does)
	upnp   bool
	mu     sync.Mutex // guards calls
	calls  []string   // requests seen, e.g. "PCP map TCP 6881 lifetime 60"
	httpLn net.Listener
}

func startResponder(t *testing.T, r *enginetest.NetRouter, pmp, pcp, upnp bool) *responder {
	t.Helper()
	rs := &responder{t: t, r: r, pmp: pmp, pcp: pcp, upnp: upnp}
	if err := r.Nft(`
add map ip netsim portmap { type inet_proto . inet_service : ipv4_addr . inet_service; }
add rule ip netsim prerouting iifname "wan0" dnat ip to meta l4proto . th dport map @portmap
`); err != nil {
		t.Fatal(err)
	}
	if pmp || pcp {
		pc, err := r.ListenPacket(context.Background(), "udp4", netip.AddrPortFrom(r.Addr(), pmpPort).String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pc.Close() })
		go rs.servePMP(pc)
	}
	if upnp {
		ln, err := r.Listen("tcp4", r.Addr().String()+":0")
		if err != nil {
			t.Fatal(err)
		}
		rs.httpLn = ln
		srv := &http.Server{Handler: http.HandlerFunc(rs.serveHTTP), ReadHeaderTimeout: 5 * time.Second}
		t.Cleanup(func() { srv.Close() })
		go srv.Serve(ln)
		var mc *net.UDPConn
		if err := r.Do(func() error {
			ifi, err := net.InterfaceByName("lan0")
			if err != nil {
				return err
			}
			mc, err = net.ListenMulticastUDP("udp4", ifi, &net.UDPAddr{IP: net.IPv4(239, 255, 255, 250), Port: 1900})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { mc.Close() })
		go rs.serveSSDP(mc)
	}
	return rs
}

func (rs *responder) record(s string) {
	rs.mu.Lock()
	rs.calls = append(rs.calls, s)
	rs.mu.Unlock()
}

// Calls returns the requests seen so far.
func (rs *responder) Calls() []string {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return append([]string(nil), rs.calls...)
}

// forward installs (lifetime > 0) or removes the DNAT of p ext.
func (rs *responder) forward(p Proto, ext uint16, to netip.AddrPort, lifetime uint32) error {
	proto := "tcp"
	if p == UDP {
		proto = "udp"
	}
	if lifetime == 0 {
		return rs.r.Nft(fmt.Sprintf("delete element ip netsim portmap { %s . %d }\n", proto, ext))
	}
	// Replace, as a renewal does.
	_ = rs.r.Nft(fmt.Sprintf("delete element ip netsim portmap { %s . %d }\n", proto, ext))
	return rs.r.Nft(fmt.Sprintf("add element ip netsim portmap { %s . %d : %s . %d }\n", proto, ext, to.Addr(), to.Port()))
}

// Elements lists the nftables map's elements.
func (rs *responder) Elements() string {
	out, err := rs.r.Run(context.Background(), "nft", "list", "map", "ip", "netsim", "portmap")
	if err != nil {
		rs.t.Error(err)
	}
	if m := regexp.MustCompile(`elements = \{([^}]*)\}`).FindStringSubmatch(out); m != nil {
		return m[1]
	}
	return ""
}

func (rs *responder) servePMP(pc net.PacketConn) {
	buf := make([]byte, 1100)
	ext := rs.r.ExternalAddr().As4()
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		b := buf[:n]
		src := from.(*net.UDPAddr).AddrPort()
		var out []byte
		switch {
		case n >= 2 && b[0] == 0 && rs.pmp && b[1] == pmpOpExternal:
			rs.record("NAT-PMP external")
			out = make([]byte, 12)
			out[1] = 128
			copy(out[8:], ext[:])
		case n >= 12 && b[0] == 0 && rs.pmp && (b[1] == pmpOpMapTCP || b[1] == pmpOpMapUDP):
			p := TCP
			if b[1] == pmpOpMapUDP {
				p = UDP
			}
			internal, lifetime := binary.BigEndian.Uint16(b[4:]), binary.BigEndian.Uint32(b[8:])
			rs.record(fmt.Sprintf("NAT-PMP map %v %d lifetime %d", p, internal, lifetime))
			extPort := internal
			if err := rs.forward(p, extPort, netip.AddrPortFrom(src.Addr(), internal), lifetime); err != nil {
				rs.t.Log(err)
			}
			if lifetime == 0 {
				extPort = 0
			}
			out = make([]byte, 16)
			out[1] = 128 + b[1]
			binary.BigEndian.PutUint16(out[8:], internal)
			binary.BigEndian.PutUint16(out[10:], extPort)
			binary.BigEndian.PutUint32(out[12:], lifetime)
		case n >= 2 && b[0] == pcpVersion && !rs.pcp:
			rs.record("PCP unsupported")
			out = []byte{0, 128 + b[1]&0x7f, 0, 1, 0, 0, 0, 0}
		case n >= pcpHeader+pcpMapBody && b[0] == pcpVersion && b[1] == pcpOpMap:
			o := b[pcpHeader:]
			p, internal, lifetime := Proto(o[12]), binary.BigEndian.Uint16(o[16:]), binary.BigEndian.Uint32(b[4:])
			client := netip.AddrFrom16([16]byte(b[8:24])).Unmap()
			rs.record(fmt.Sprintf("PCP map %v %d lifetime %d", p, internal, lifetime))
			out = make([]byte, pcpHeader+pcpMapBody)
			copy(out, b[:pcpHeader+pcpMapBody])
			out[1] = 0x80 | pcpOpMap
			out[2], out[3] = 0, 0
			copy(out[8:24], make([]byte, 16))
			if client != src.Addr() {
				out[3] = 12 // ADDRESS_MISMATCH
			} else if err := rs.forward(p, internal, netip.AddrPortFrom(src.Addr(), internal), lifetime); err != nil {
				rs.t.Log(err)
				out[3] = 7
			}
			ext16 := netip.AddrFrom4(ext).As16()
			copy(out[pcpHeader+20:], ext16[:])
			binary.BigEndian.PutUint16(out[pcpHeader+18:], internal)
		default:
			continue
		}
		_, _ = pc.WriteTo(out, from)
	}
}

func (rs *responder) serveSSDP(c *net.UDPConn) {
	buf := make([]byte, 2048)
	loc := "http://" + rs.httpLn.Addr().String() + "/desc.xml"
	for {
		n, from, err := c.ReadFromUDP(buf)
		if err != nil {
			return
		}
		if !regexp.MustCompile(`(?i)^M-SEARCH .*\r\n(.*\r\n)*ST: *urn:schemas-upnp-org:device:InternetGatewayDevice:1`).Match(buf[:n]) {
			continue
		}
		rs.record("SSDP search")
		msg := "HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=120\r\nST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\n" +
			"USN: uuid:swarmfs-test::urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\nEXT:\r\nLOCATION: " + loc + "\r\n\r\n"
		_, _ = c.WriteToUDP([]byte(msg), from)
	}
}

const testDesc = `<?xml version="1.0"?>
<root xmlns="urn:schemas-upnp-org:device-1-0"><specVersion><major>1</major><minor>0</minor></specVersion>
<device><deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:1</deviceType>
<deviceList><device><deviceType>urn:schemas-upnp-org:device:WANDevice:1</deviceType>
<deviceList><device><deviceType>urn:schemas-upnp-org:device:WANConnectionDevice:1</deviceType>
<serviceList><service><serviceType>urn:schemas-upnp-org:service:WANIPConnection:1</serviceType>
<serviceId>urn:upnp-org:serviceId:WANIPConn1</serviceId><controlURL>/ctl/IPConn</controlURL>
<eventSubURL>/evt/IPConn</eventSubURL><SCPDURL>/WANIPCn.xml</SCPDURL></service></serviceList>
</device></deviceList></device></deviceList></device></root>`

func (rs *responder) serveHTTP(w http.ResponseWriter, req *http.Request) {
	if req.URL.Path == "/desc.xml" {
		rs.record("UPnP description")
		w.Header().Set("Content-Type", "text/xml")
		io.WriteString(w, testDesc)
		return
	}
	body, _ := io.ReadAll(io.LimitReader(req.Body, 1<<16))
	arg := func(name string) string {
		m := regexp.MustCompile("<" + name + ">([^<]*)</" + name + ">").FindSubmatch(body)
		if m == nil {
			return ""
		}
		return string(m[1])
	}
	action := regexp.MustCompile(`#(\w+)"?$`).FindStringSubmatch(req.Header.Get("SOAPAction"))
	if req.URL.Path != "/ctl/IPConn" || action == nil {
		http.Error(w, "no", http.StatusNotFound)
		return
	}
	const svc = "urn:schemas-upnp-org:service:WANIPConnection:1"
	reply := func(inner string) {
		w.Header().Set("Content-Type", `text/xml; charset="utf-8"`)
		fmt.Fprintf(w, `<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><u:%sResponse xmlns:u="%s">%s</u:%sResponse></s:Body></s:Envelope>`, action[1], svc, inner, action[1])
	}
	proto := TCP
	if arg("NewProtocol") == "UDP" {
		proto = UDP
	}
	ext, _ := strconv.Atoi(arg("NewExternalPort"))
	switch action[1] {
	case "GetExternalIPAddress":
		rs.record("UPnP external")
		reply("<NewExternalIPAddress>" + rs.r.ExternalAddr().String() + "</NewExternalIPAddress>")
	case "AddPortMapping":
		internal, _ := strconv.Atoi(arg("NewInternalPort"))
		client, err := netip.ParseAddr(arg("NewInternalClient"))
		rs.record(fmt.Sprintf("UPnP map %v %d lease %s", proto, internal, arg("NewLeaseDuration")))
		if err == nil {
			err = rs.forward(proto, uint16(ext), netip.AddrPortFrom(client, uint16(internal)), 1)
		}
		if err != nil {
			rs.t.Log(err)
			w.WriteHeader(http.StatusInternalServerError)
			io.WriteString(w, `<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault><detail><UPnPError xmlns="urn:schemas-upnp-org:control-1-0"><errorCode>501</errorCode><errorDescription>Action Failed</errorDescription></UPnPError></detail></s:Fault></s:Body></s:Envelope>`)
			return
		}
		reply("")
	case "DeletePortMapping":
		rs.record(fmt.Sprintf("UPnP delete %v %d", proto, ext))
		if err := rs.forward(proto, uint16(ext), netip.AddrPort{}, 0); err != nil {
			rs.t.Log(err)
		}
		reply("")
	default:
		http.Error(w, "no", http.StatusInternalServerError)
	}
}
