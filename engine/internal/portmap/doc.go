// Package portmap asks the home router to forward ports to us: PCP (RFC
// 6887) and NAT-PMP (RFC 6886) to the default gateway on port 5351, and
// UPnP IGD (SSDP discovery on the LAN, the device description, SOAP
// AddPortMapping, DeletePortMapping and GetExternalIPAddress on the
// WANIPConnection or WANPPPConnection service).
//
// A Mapper (Start) owns one goroutine. For its ports (TCP and UDP, usually
// the BitTorrent listen port for both) it tries PCP, falls back to NAT-PMP
// when the server speaks only that, then UPnP; maps every port with a
// lease (Config.Lease), renews at half the granted lease, retries every
// Config.RetryAfter when all methods failed, and deletes its mappings when
// its context ends or Close is called. Each attempt is bounded by
// Config.Timeout. Status reports the method, the external address and the
// external port of each mapping (what the client should announce);
// Changed signals changes. A refusal or failure is logged once per method
// and kind (then at debug level), never returned from a call.
//
// Sockets come from Config.Dial and Config.ListenPacket, so a test can run
// the Mapper for a host of a simulated network (enginetest.NetSim).
//
// Everything read from the network is parsed by functions with fuzz
// targets (parsePMP, parsePCP, parseSSDP, parseDescription, parseSOAP),
// with size caps: 2 KiB for SSDP answers, 64 KiB for XML.
//
// Errors: sentinels ErrNoGateway, ErrNoAnswer, ErrNoIGD, ErrRefused,
// ErrUnsupported, ErrMalformed, ErrClosed; the typed errors PMPError (a
// PCP or NAT-PMP result code) and UPnPError (a SOAP fault) unwrap to
// ErrRefused or ErrUnsupported.
package portmap
