package tracker

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/swarmfs/swarmfs/metainfo"
)

// announceHTTP sends req to an HTTP(S) tracker.
func (c *Client) announceHTTP(ctx context.Context, u *url.URL, rawURL string, req AnnounceRequest) (*AnnounceResponse, error) {
	target := announceURL(u, req)
	if a, err := netip.ParseAddr(strings.Trim(u.Hostname(), "[]")); err == nil && !req.Family.allows(a) {
		return nil, fmt.Errorf("%w: %s over %s", ErrNoAddress, rawURL, req.Family)
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, fmt.Errorf("tracker: %s: %w", rawURL, err)
	}
	hreq.Header.Set("User-Agent", c.cfg.UserAgent)
	hreq.Header.Set("Accept-Encoding", "identity")
	resp, err := c.http[min(req.Family, FamilyIPv6)].Do(hreq)
	if err != nil {
		return nil, fmt.Errorf("tracker: %s: %w", rawURL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, c.cfg.MaxResponseBytes+1))
	if err != nil {
		return nil, fmt.Errorf("tracker: %s: reading response: %w", rawURL, err)
	}
	if int64(len(body)) > c.cfg.MaxResponseBytes {
		return nil, fmt.Errorf("%w: %s: body larger than %d bytes", ErrBadResponse, rawURL, c.cfg.MaxResponseBytes)
	}
	ar, err := parseHTTPResponse(body, c.cfg.MaxPeers)
	if ferr, ok := err.(*FailureError); ok {
		ferr.URL = rawURL
		return nil, ferr
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: %s: %s", ErrHTTPStatus, rawURL, resp.Status)
	}
	if err != nil {
		return nil, fmt.Errorf("%w (%s)", err, rawURL)
	}
	return ar, nil
}

// announceURL appends the announce parameters to the tracker URL, keeping
// any query the URL already has (private trackers put passkeys there).
func announceURL(u *url.URL, req AnnounceRequest) string {
	var b strings.Builder
	b.WriteString("info_hash=")
	b.WriteString(escapeBinary(req.InfoHash[:]))
	b.WriteString("&peer_id=")
	b.WriteString(escapeBinary(req.PeerID[:]))
	fmt.Fprintf(&b, "&port=%d&uploaded=%d&downloaded=%d&left=%d&compact=1&no_peer_id=1",
		req.Port, max(req.Uploaded, 0), max(req.Downloaded, 0), max(req.Left, 0))
	if ev := req.Event.String(); ev != "" {
		b.WriteString("&event=" + ev)
	}
	if req.NumWant > 0 {
		b.WriteString("&numwant=" + strconv.Itoa(req.NumWant))
	}
	fmt.Fprintf(&b, "&key=%08x", req.Key)
	if req.TrackerID != "" {
		b.WriteString("&trackerid=" + url.QueryEscape(req.TrackerID))
	}
	// BEP 7: our address of each family; the port is "port".
	if a := req.IPv4.Unmap(); a.Is4() && !a.IsUnspecified() {
		b.WriteString("&ipv4=" + a.String())
	}
	if a := req.IPv6; a.Is6() && !a.Is4In6() && !a.IsUnspecified() && a.Zone() == "" {
		b.WriteString("&ipv6=" + url.QueryEscape(a.String()))
	}
	v := *u
	v.Fragment, v.RawFragment = "", ""
	if v.RawQuery == "" {
		v.RawQuery = b.String()
	} else {
		v.RawQuery = strings.TrimSuffix(v.RawQuery, "&") + "&" + b.String()
	}
	return v.String()
}

// dialFamily returns the DialContext of the Client's own HTTP transport
// for announces over f, so that a tracker whose name has addresses of both
// families sees us over the one we chose.
func dialFamily(f Family) func(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if network == "tcp" {
			network = f.network("tcp")
		}
		return d.DialContext(ctx, network, addr)
	}
}

// escapeBinary percent-encodes every byte except RFC 3986 unreserved ones.
func escapeBinary(p []byte) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for _, c := range p {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '-', c == '.', c == '_', c == '~':
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&15])
		}
	}
	return b.String()
}

// httpAnswer holds the raw values of the keys we read from an HTTP
// tracker's answer. Other keys are skipped without being decoded.
type httpAnswer struct {
	Failure     metainfo.RawMessage `bencode:"failure reason"`
	Warning     metainfo.RawMessage `bencode:"warning message"`
	Interval    metainfo.RawMessage `bencode:"interval"`
	MinInterval metainfo.RawMessage `bencode:"min interval"`
	TrackerID   metainfo.RawMessage `bencode:"tracker id"`
	Complete    metainfo.RawMessage `bencode:"complete"`
	Incomplete  metainfo.RawMessage `bencode:"incomplete"`
	Peers       metainfo.RawMessage `bencode:"peers"`
	Peers6      metainfo.RawMessage `bencode:"peers6"`
}

// parseHTTPResponse decodes an HTTP tracker's bencoded answer, keeping at
// most maxPeers peers (0 = no cap). A "failure reason" gives a
// *FailureError (with an empty URL); undecodable input wraps
// ErrBadResponse. Values of the wrong type are ignored, as are trailing
// white space and partial entries at the end of compact peer strings.
// Memory stays proportional to the body: unknown keys are skipped, and
// dictionary peer lists are decoded one entry at a time.
func parseHTTPResponse(body []byte, maxPeers int) (*AnnounceResponse, error) {
	var a httpAnswer
	if err := metainfo.Unmarshal(bytes.TrimRight(body, " \t\r\n"), &a); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadResponse, err)
	}
	if reason, ok := rawString(a.Failure); ok {
		return nil, &FailureError{Reason: reason}
	}
	if a.Peers == nil && a.Peers6 == nil && a.Interval == nil {
		return nil, fmt.Errorf("%w: neither peers nor interval", ErrBadResponse)
	}
	if maxPeers <= 0 {
		maxPeers = int(^uint(0) >> 1)
	}
	r := &AnnounceResponse{
		Interval:    seconds(rawInt(a.Interval)),
		MinInterval: seconds(rawInt(a.MinInterval)),
		Seeders:     count(rawInt(a.Complete)),
		Leechers:    count(rawInt(a.Incomplete)),
	}
	r.Warning, _ = rawString(a.Warning)
	r.TrackerID, _ = rawString(a.TrackerID)
	ps := peerSet{max: maxPeers}
	if p, ok := rawString(a.Peers); ok {
		ps.addCompact([]byte(p), 4)
	} else if len(a.Peers) > 0 && a.Peers[0] == 'l' {
		ps.addDictList(a.Peers)
	}
	if p, ok := rawString(a.Peers6); ok {
		ps.addCompact([]byte(p), 16)
	}
	r.Peers = ps.list
	return r, nil
}

// rawString returns the string in raw, if raw holds one.
func rawString(raw metainfo.RawMessage) (string, bool) {
	if len(raw) == 0 || raw[0] < '0' || raw[0] > '9' {
		return "", false
	}
	var s string
	if metainfo.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// rawInt returns the integer in raw, or nil when raw holds none.
func rawInt(raw metainfo.RawMessage) any {
	var n int64
	if len(raw) == 0 || raw[0] != 'i' || metainfo.Unmarshal(raw, &n) != nil {
		return nil
	}
	return n
}

// seconds turns a bencoded integer of seconds into a Duration clamped to
// [0, MaxInterval]; anything else is 0.
func seconds(v any) time.Duration {
	n, ok := v.(int64)
	if !ok || n <= 0 {
		return 0
	}
	if n > int64(MaxInterval/time.Second) {
		return MaxInterval
	}
	return time.Duration(n) * time.Second
}

// count turns a bencoded integer into a count, -1 when absent or invalid.
func count(v any) int {
	n, ok := v.(int64)
	if !ok || n < 0 {
		return -1
	}
	return int(min(n, 1<<31-1))
}

// peerSet collects valid, distinct peers up to max.
type peerSet struct {
	max  int
	list []netip.AddrPort
	seen map[netip.AddrPort]bool
}

func (s *peerSet) full() bool { return len(s.list) >= s.max }

func (s *peerSet) add(ap netip.AddrPort) {
	a := ap.Addr()
	if s.full() || ap.Port() == 0 || !a.IsValid() || a.IsUnspecified() || a.IsMulticast() {
		return
	}
	if s.seen == nil {
		s.seen = make(map[netip.AddrPort]bool)
	}
	if !s.seen[ap] {
		s.seen[ap] = true
		s.list = append(s.list, ap)
	}
}

// addCompact adds peers from a compact string: addrLen address bytes then
// a big-endian port, repeated. A partial entry at the end is ignored.
func (s *peerSet) addCompact(p []byte, addrLen int) {
	step := addrLen + 2
	for ; len(p) >= step && !s.full(); p = p[step:] {
		var a netip.Addr
		if addrLen == 4 {
			a = netip.AddrFrom4([4]byte(p[:4]))
		} else {
			a = netip.AddrFrom16([16]byte(p[:16])).Unmap()
		}
		s.add(netip.AddrPortFrom(a, binary.BigEndian.Uint16(p[addrLen:])))
	}
}

// valueLen returns the length of the bencoded value at the start of p, or
// -1 if p does not start with a complete one. It allocates nothing; p comes
// from input the decoder already validated, the checks are a safety net.
func valueLen(p []byte, depth int) int {
	if len(p) == 0 || depth > metainfo.MaxDepth {
		return -1
	}
	switch c := p[0]; {
	case c == 'i':
		if i := bytes.IndexByte(p, 'e'); i > 0 {
			return i + 1
		}
	case c >= '0' && c <= '9':
		colon := bytes.IndexByte(p, ':')
		if colon < 0 {
			return -1
		}
		n, err := strconv.Atoi(string(p[:colon]))
		if err != nil || n < 0 || n > len(p)-colon-1 {
			return -1
		}
		return colon + 1 + n
	case c == 'l' || c == 'd':
		pos := 1
		for pos < len(p) && p[pos] != 'e' {
			n := valueLen(p[pos:], depth+1)
			if n <= 0 {
				return -1
			}
			pos += n
		}
		if pos < len(p) {
			return pos + 1
		}
	}
	return -1
}

// dictPeer is one entry of a BEP 3 dictionary peer list.
type dictPeer struct {
	IP   metainfo.RawMessage `bencode:"ip"`
	Port metainfo.RawMessage `bencode:"port"`
}

// addDictList adds peers from the bencoded list raw of {"ip", "port"}
// dictionaries (already validated by the decoder), decoding one entry at a
// time and giving up after 2*max+64 entries, so that a list of junk costs
// little. Entries whose ip is a host name rather than an address are
// skipped: a tracker answer must not make us resolve names.
func (s *peerSet) addDictList(raw metainfo.RawMessage) {
	p := raw[1:]
	budget := 64 + 2*min(s.max, 1<<20)
	for ; len(p) > 0 && p[0] != 'e' && !s.full() && budget > 0; budget-- {
		n := valueLen(p, 0)
		if n <= 0 {
			return
		}
		e := p[:n]
		p = p[n:]
		var d dictPeer
		if len(e) == 0 || e[0] != 'd' || metainfo.Unmarshal(e, &d) != nil {
			continue
		}
		ipStr, _ := rawString(d.IP)
		port, ok := rawInt(d.Port).(int64)
		if !ok || port <= 0 || port > 65535 {
			continue
		}
		a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(ipStr, "["), "]"))
		if err != nil || a.Zone() != "" {
			continue
		}
		s.add(netip.AddrPortFrom(a.Unmap(), uint16(port)))
	}
}
