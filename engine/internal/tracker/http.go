package tracker

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
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
	hreq, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, fmt.Errorf("tracker: %s: %w", rawURL, err)
	}
	hreq.Header.Set("User-Agent", c.cfg.UserAgent)
	hreq.Header.Set("Accept-Encoding", "identity")
	resp, err := c.http.Do(hreq)
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
	v := *u
	v.Fragment, v.RawFragment = "", ""
	if v.RawQuery == "" {
		v.RawQuery = b.String()
	} else {
		v.RawQuery = strings.TrimSuffix(v.RawQuery, "&") + "&" + b.String()
	}
	return v.String()
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

// parseHTTPResponse decodes an HTTP tracker's bencoded answer, keeping at
// most maxPeers peers (0 = no cap). A "failure reason" gives a
// *FailureError (with an empty URL); undecodable input wraps
// ErrBadResponse. Fields of the wrong type are ignored, as are bytes after
// the dictionary and partial entries at the end of compact peer strings.
func parseHTTPResponse(body []byte, maxPeers int) (*AnnounceResponse, error) {
	v, _, err := metainfo.DecodePrefix(body)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadResponse, err)
	}
	d, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%w: not a dictionary", ErrBadResponse)
	}
	if reason, ok := d["failure reason"].(string); ok {
		return nil, &FailureError{Reason: reason}
	}
	if maxPeers <= 0 {
		maxPeers = int(^uint(0) >> 1)
	}
	r := &AnnounceResponse{
		Interval:    seconds(d["interval"]),
		MinInterval: seconds(d["min interval"]),
		Seeders:     count(d["complete"]),
		Leechers:    count(d["incomplete"]),
	}
	r.Warning, _ = d["warning message"].(string)
	r.TrackerID, _ = d["tracker id"].(string)
	ps := peerSet{max: maxPeers}
	_, hasPeers := d["peers"]
	_, hasPeers6 := d["peers6"]
	_, hasInterval := d["interval"]
	if !hasPeers && !hasPeers6 && !hasInterval {
		return nil, fmt.Errorf("%w: neither peers nor interval", ErrBadResponse)
	}
	switch p := d["peers"].(type) {
	case string:
		ps.addCompact([]byte(p), 4)
	case []any:
		ps.addDicts(p)
	}
	if p, ok := d["peers6"].(string); ok {
		ps.addCompact([]byte(p), 16)
	}
	r.Peers = ps.list
	return r, nil
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

// addDicts adds peers from a BEP 3 list of {"ip", "port"} dictionaries.
// Entries whose ip is a host name rather than an address are skipped: a
// tracker answer must not make us resolve names.
func (s *peerSet) addDicts(list []any) {
	for _, e := range list {
		if s.full() {
			return
		}
		d, ok := e.(map[string]any)
		if !ok {
			continue
		}
		ipStr, _ := d["ip"].(string)
		port, ok := d["port"].(int64)
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
