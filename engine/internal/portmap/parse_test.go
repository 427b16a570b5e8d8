package portmap

import (
	"errors"
	"net/netip"
	"net/url"
	"strings"
	"testing"
)

func TestPMPCodec(t *testing.T) {
	req := pmpMapRequest(UDP, 6881, 6882, 7200)
	if len(req) != 12 || req[1] != pmpOpMapUDP || req[5] != 0xe1 || req[7] != 0xe2 {
		t.Fatalf("map request %x", req)
	}
	a, err := parsePMP([]byte{0, 128, 0, 0, 0, 0, 0, 9, 100, 64, 1, 1})
	if err != nil || a.Addr != netip.MustParseAddr("100.64.1.1") || a.Epoch != 9 {
		t.Fatalf("external answer: %+v %v", a, err)
	}
	a, err = parsePMP([]byte{0, 130, 0, 0, 0, 0, 0, 1, 0x1a, 0xe1, 0x1a, 0xe2, 0, 0, 0x1c, 0x20})
	if err != nil || a.Proto != TCP || a.Internal != 6881 || a.External != 6882 || a.Lifetime != 7200 {
		t.Fatalf("map answer: %+v %v", a, err)
	}
	// miniupnpd's answer for a private external address: result 3.
	_, err = parsePMP([]byte{0, 0x82, 0, 3, 0, 0, 8, 5, 0x1a, 0xe1, 0x1a, 0xe1, 0, 0, 0xe, 0x10})
	var pe *PMPError
	if !errors.As(err, &pe) || pe.Code != 3 || !errors.Is(err, ErrRefused) {
		t.Fatalf("refusal: %v", err)
	}
	for _, b := range [][]byte{nil, {0}, {1, 128, 0, 0, 0, 0, 0, 0}, {0, 128, 0, 0, 0, 0, 0, 0}, {0, 130, 0, 0, 0, 0, 0, 0, 0}} {
		if _, err := parsePMP(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%x: %v, want ErrMalformed", b, err)
		}
	}
}

func TestPCPCodec(t *testing.T) {
	var nonce [12]byte
	copy(nonce[:], "abcdefghijkl")
	client := netip.MustParseAddr("10.1.0.2")
	req := pcpMapRequest(client, nonce, TCP, 6881, 6881, 60)
	if len(req) != 60 || req[0] != 2 || req[1] != 1 || netip.AddrFrom16([16]byte(req[8:24])).Unmap() != client {
		t.Fatalf("request %x", req)
	}
	// An answer echoes the request with R set.
	ans := append([]byte(nil), req...)
	ans[1] |= 0x80
	copy(ans[8:24], make([]byte, 16))
	ext := netip.MustParseAddr("100.64.1.1").As16()
	copy(ans[24+20:], ext[:])
	a, err := parsePCP(ans)
	if err != nil || a.Nonce != nonce || a.Internal != 6881 || a.External != 6881 || a.Lifetime != 60 || a.ExternalAddr.String() != "100.64.1.1" {
		t.Fatalf("answer %+v %v", a, err)
	}
	ans[3] = 8
	if _, err := parsePCP(ans); !errors.Is(err, ErrRefused) {
		t.Fatalf("no resources: %v", err)
	}
	// A NAT-PMP-only server's answer to version 2.
	if _, err := parsePCP([]byte{0, 129, 0, 1, 0, 0, 0, 0}); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("NAT-PMP server: %v", err)
	}
	ans[3] = 0
	if _, err := parsePCP(ans[:30]); !errors.Is(err, ErrMalformed) {
		t.Fatalf("short: %v", err)
	}
}

func TestParseSSDP(t *testing.T) {
	good := "HTTP/1.1 200 OK\r\nST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\nLOCATION: http://10.1.0.1:5000/rootDesc.xml\r\n\r\n"
	u, err := parseSSDP([]byte(good))
	if err != nil || u.String() != "http://10.1.0.1:5000/rootDesc.xml" {
		t.Fatalf("%v %v", u, err)
	}
	for _, b := range []string{
		"HTTP/1.1 404 Not Found\r\nLOCATION: http://10.1.0.1/\r\n\r\n",
		"HTTP/1.1 200 OK\r\nLOCATION: https://10.1.0.1/\r\n\r\n",
		"HTTP/1.1 200 OK\r\nLOCATION: http://router.lan/\r\n\r\n",
		"HTTP/1.1 200 OK\r\n\r\n",
		"NOTIFY * HTTP/1.1\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX: " + strings.Repeat("a", maxSSDP) + "\r\n\r\n",
	} {
		if _, err := parseSSDP([]byte(b)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%q: %v", b[:min(len(b), 40)], err)
		}
	}
}

func TestParseDescription(t *testing.T) {
	loc, _ := url.Parse("http://10.1.0.1:5000/rootDesc.xml")
	u, st, err := parseDescription([]byte(testDesc), loc)
	if err != nil || u.String() != "http://10.1.0.1:5000/ctl/IPConn" || st != "urn:schemas-upnp-org:service:WANIPConnection:1" {
		t.Fatalf("%v %q %v", u, st, err)
	}
	ppp := strings.ReplaceAll(testDesc, "WANIPConnection", "WANPPPConnection")
	if _, st, err := parseDescription([]byte(ppp), loc); err != nil || !strings.Contains(st, "WANPPPConnection:1") {
		t.Fatalf("PPP: %q %v", st, err)
	}
	elsewhere := strings.Replace(testDesc, "/ctl/IPConn", "http://10.9.9.9/ctl", 1)
	if _, _, err := parseDescription([]byte(elsewhere), loc); !errors.Is(err, ErrMalformed) {
		t.Fatalf("control URL on another host: %v", err)
	}
	none := strings.ReplaceAll(testDesc, "WANIPConnection", "Layer3Forwarding")
	if _, _, err := parseDescription([]byte(none), loc); !errors.Is(err, ErrNoIGD) {
		t.Fatalf("no WAN service: %v", err)
	}
	if _, _, err := parseDescription([]byte("<root><device>"), loc); !errors.Is(err, ErrMalformed) {
		t.Fatalf("truncated: %v", err)
	}
}

func TestParseSOAP(t *testing.T) {
	ok := `<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><u:GetExternalIPAddressResponse xmlns:u="urn:schemas-upnp-org:service:WANIPConnection:1"><NewExternalIPAddress>100.64.1.1</NewExternalIPAddress></u:GetExternalIPAddressResponse></s:Body></s:Envelope>`
	v, err := parseSOAP(200, []byte(ok), "GetExternalIPAddress")
	if err != nil || v["NewExternalIPAddress"] != "100.64.1.1" {
		t.Fatalf("%v %v", v, err)
	}
	if _, err := parseSOAP(200, []byte(ok), "AddPortMapping"); !errors.Is(err, ErrMalformed) {
		t.Fatalf("wrong action: %v", err)
	}
	fault := `<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault><faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring><detail><UPnPError xmlns="urn:schemas-upnp-org:control-1-0"><errorCode>718</errorCode><errorDescription>ConflictInMappingEntry</errorDescription></UPnPError></detail></s:Fault></s:Body></s:Envelope>`
	_, err = parseSOAP(500, []byte(fault), "AddPortMapping")
	var ue *UPnPError
	if !errors.As(err, &ue) || ue.Code != 718 || ue.Description != "ConflictInMappingEntry" || !errors.Is(err, ErrRefused) {
		t.Fatalf("fault: %v", err)
	}
	_, err = parseSOAP(500, []byte(strings.Replace(fault, "718", "401", 1)), "X")
	if !errors.Is(err, ErrUnsupported) {
		t.Fatalf("invalid action: %v", err)
	}
	body := string(soapRequest("urn:x", "AddPortMapping", [][2]string{{"NewPortMappingDescription", "a<b&c"}}))
	if !strings.Contains(body, "a&lt;b&amp;c") || !strings.Contains(body, `<u:AddPortMapping xmlns:u="urn:x">`) {
		t.Fatalf("request %s", body)
	}
}

func TestParseRoutes(t *testing.T) {
	const routes = `Iface	Destination	Gateway 	Flags	RefCnt	Use	Metric	Mask		MTU	Window	IRTT
eth0	0000010A	00000000	0001	0	0	0	00FFFFFF	0	0	0
eth1	00000000	0202A8C0	0003	0	0	200	00000000	0	0	0
eth0	00000000	0100010A	0003	0	0	100	00000000	0	0	0
eth2	00000000	0303A8C0	0001	0	0	0	00000000	0	0	0
`
	g, err := parseRoutes(strings.NewReader(routes))
	if err != nil || g.String() != "10.1.0.1" {
		t.Fatalf("%v %v, want 10.1.0.1 (lowest metric with a gateway)", g, err)
	}
	if _, err := parseRoutes(strings.NewReader(strings.Split(routes, "\n")[0] + "\n")); !errors.Is(err, ErrNoGateway) {
		t.Fatalf("no default route: %v", err)
	}
}
