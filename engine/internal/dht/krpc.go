package dht

import (
	"fmt"
	"net/netip"

	"github.com/swarmfs/swarmfs/metainfo"
)

// KRPC limits against hostile input.
const (
	maxPacket    = 8192 // bytes; larger datagrams are dropped unread
	maxTIDLen    = 32   // transaction id bytes
	maxMethodLen = 32
	maxTokenLen  = 64
	maxNodes     = 64  // nodes (and nodes6) parsed from one message
	maxValues    = 256 // peer values parsed from one message
	maxErrMsgLen = 256
	maxWant      = 8 // entries of a "want" list looked at
)

// wants is the BEP 32 "want" of a find_node or get_peers query: which
// families of nodes the querier asks for. Zero means the query had no
// "want" (answer with the family the query came over).
type wants uint8

const (
	wantN4    wants = 1 << iota // "n4": IPv4 nodes ("nodes")
	wantN6                      // "n6": IPv6 nodes ("nodes6")
	wantGiven                   // the query had a "want" list
)

// parseWant decodes a "want" value leniently: anything but a list counts
// as absent, and entries other than "n4" and "n6" are ignored.
func parseWant(raw metainfo.RawMessage) wants {
	if len(raw) == 0 || raw[0] != 'l' {
		return 0
	}
	v, err := metainfo.Decode(raw)
	list, ok := v.([]any)
	if err != nil || !ok {
		return 0
	}
	w := wantGiven
	for _, x := range list[:min(len(list), maxWant)] {
		switch x {
		case "n4":
			w |= wantN4
		case "n6":
			w |= wantN6
		}
	}
	return w
}

// raw returns the bencoded "want" list of w, nil when w was not given.
func (w wants) raw() metainfo.RawMessage {
	if w&wantGiven == 0 {
		return nil
	}
	b := []byte("l")
	if w&wantN4 != 0 {
		b = append(b, "2:n4"...)
	}
	if w&wantN6 != 0 {
		b = append(b, "2:n6"...)
	}
	return append(b, 'e')
}

// KRPC methods.
const (
	methodPing         = "ping"
	methodFindNode     = "find_node"
	methodGetPeers     = "get_peers"
	methodAnnouncePeer = "announce_peer"
)

// nodeInfo is a node's id and address, as in compact node info.
type nodeInfo struct {
	ID   metainfo.Hash
	Addr netip.AddrPort
}

// message is a validated KRPC message. Fields not used by its kind and
// method are zero.
type message struct {
	T        string // transaction id
	Y        byte   // 'q', 'r' or 'e'
	Q        string // method of a query
	ReadOnly bool   // BEP 43 "ro" flag of a query
	Want     wants  // BEP 32 "want" of a find_node or get_peers query
	V        string // client version, informational

	ID          metainfo.Hash // sender id (queries and responses)
	Target      metainfo.Hash // find_node
	InfoHash    metainfo.Hash // get_peers, announce_peer
	Port        int           // announce_peer
	ImpliedPort bool          // announce_peer
	Token       string        // announce_peer query; get_peers response

	Nodes  []nodeInfo       // response: IPv4 nodes
	Nodes6 []nodeInfo       // response: IPv6 nodes
	Values []netip.AddrPort // get_peers response

	ErrCode int
	ErrMsg  string
}

// wireMsg is the bencode shape of a KRPC message.
type wireMsg struct {
	T  string    `bencode:"t"`
	Y  string    `bencode:"y"`
	Q  string    `bencode:"q,omitempty"`
	A  *wireArgs `bencode:"a"`
	R  *wireRet  `bencode:"r"`
	E  []any     `bencode:"e,omitempty"`
	V  string    `bencode:"v,omitempty"`
	RO int64     `bencode:"ro,omitempty"`
}

type wireArgs struct {
	ID          string `bencode:"id"`
	Target      string `bencode:"target,omitempty"`
	InfoHash    string `bencode:"info_hash,omitempty"`
	Port        int64  `bencode:"port,omitempty"`
	Token       string `bencode:"token,omitempty"`
	ImpliedPort int64  `bencode:"implied_port,omitempty"`

	Want metainfo.RawMessage `bencode:"want,omitempty"`
}

type wireRet struct {
	ID     string   `bencode:"id"`
	Nodes  string   `bencode:"nodes,omitempty"`
	Nodes6 string   `bencode:"nodes6,omitempty"`
	Token  string   `bencode:"token,omitempty"`
	Values []string `bencode:"values,omitempty"`
}

func badMsg(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadMessage, fmt.Sprintf(format, args...))
}

// parseMessage decodes and validates one KRPC datagram.
func parseMessage(b []byte) (*message, error) {
	if len(b) > maxPacket {
		return nil, badMsg("packet of %d bytes exceeds %d", len(b), maxPacket)
	}
	if len(b) == 0 || b[0] != 'd' {
		return nil, badMsg("not a dictionary")
	}
	var w wireMsg
	if err := metainfo.Unmarshal(b, &w); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadMessage, err)
	}
	if len(w.T) == 0 || len(w.T) > maxTIDLen {
		return nil, badMsg("transaction id of %d bytes", len(w.T))
	}
	m := &message{T: w.T, V: w.V}
	if len(m.V) > 16 {
		m.V = m.V[:16]
	}
	switch w.Y {
	case "q":
		m.Y = 'q'
		return m, m.parseQuery(&w)
	case "r":
		m.Y = 'r'
		return m, m.parseResponse(w.R)
	case "e":
		m.Y = 'e'
		return m, m.parseError(w.E)
	default:
		return nil, badMsg("message type %q", w.Y)
	}
}

func hash20(s, what string) (metainfo.Hash, error) {
	var h metainfo.Hash
	if len(s) != len(h) {
		return h, badMsg("%s of %d bytes, want 20", what, len(s))
	}
	copy(h[:], s)
	return h, nil
}

func (m *message) parseQuery(w *wireMsg) error {
	if len(w.Q) == 0 || len(w.Q) > maxMethodLen {
		return badMsg("method name of %d bytes", len(w.Q))
	}
	m.Q = w.Q
	m.ReadOnly = w.RO != 0
	a := w.A
	if a == nil {
		return badMsg("query without arguments")
	}
	var err error
	if m.ID, err = hash20(a.ID, "node id"); err != nil {
		return err
	}
	switch m.Q {
	case methodFindNode:
		m.Target, err = hash20(a.Target, "target")
		m.Want = parseWant(a.Want)
	case methodGetPeers:
		m.InfoHash, err = hash20(a.InfoHash, "info_hash")
		m.Want = parseWant(a.Want)
	case methodAnnouncePeer:
		if m.InfoHash, err = hash20(a.InfoHash, "info_hash"); err != nil {
			return err
		}
		m.ImpliedPort = a.ImpliedPort != 0
		if a.Port < 0 || a.Port > 65535 || (a.Port == 0 && !m.ImpliedPort) {
			return badMsg("announce port %d", a.Port)
		}
		m.Port = int(a.Port)
		if len(a.Token) == 0 || len(a.Token) > maxTokenLen {
			return badMsg("token of %d bytes", len(a.Token))
		}
		m.Token = a.Token
	}
	return err
}

func (m *message) parseResponse(r *wireRet) error {
	if r == nil {
		return badMsg("response without return values")
	}
	var err error
	if m.ID, err = hash20(r.ID, "node id"); err != nil {
		return err
	}
	if len(r.Token) > maxTokenLen {
		return badMsg("token of %d bytes", len(r.Token))
	}
	m.Token = r.Token
	if m.Nodes, err = parseNodes(r.Nodes, 4, maxNodes); err != nil {
		return err
	}
	if m.Nodes6, err = parseNodes(r.Nodes6, 16, maxNodes); err != nil {
		return err
	}
	for _, v := range r.Values {
		if len(m.Values) == maxValues {
			break
		}
		ap, ok := parsePeer(v)
		if ok {
			m.Values = append(m.Values, ap)
		}
	}
	return nil
}

func (m *message) parseError(e []any) error {
	if len(e) < 2 {
		return badMsg("error list of %d items", len(e))
	}
	code, ok1 := e[0].(int64)
	msg, ok2 := e[1].(string)
	if !ok1 || !ok2 || code < 0 || code > 1<<20 {
		return badMsg("error list is not [code, message]")
	}
	if len(msg) > maxErrMsgLen {
		msg = msg[:maxErrMsgLen]
	}
	m.ErrCode, m.ErrMsg = int(code), msg
	return nil
}

// parseNodes decodes compact node info with ipLen-byte addresses (4 or 16),
// keeping at most limit entries.
func parseNodes(s string, ipLen, limit int) ([]nodeInfo, error) {
	size := 20 + ipLen + 2
	if len(s)%size != 0 {
		return nil, badMsg("compact node info of %d bytes is not a multiple of %d", len(s), size)
	}
	n := min(len(s)/size, limit)
	if n == 0 {
		return nil, nil
	}
	out := make([]nodeInfo, 0, n)
	for i := range n {
		rec := s[i*size : (i+1)*size]
		var ni nodeInfo
		copy(ni.ID[:], rec[:20])
		ni.Addr, _ = parsePeer(rec[20:])
		out = append(out, ni)
	}
	return out, nil
}

// parsePeer decodes a compact peer address of 6 (IPv4) or 18 (IPv6) bytes.
func parsePeer(s string) (netip.AddrPort, bool) {
	var ip netip.Addr
	switch len(s) {
	case 6:
		ip = netip.AddrFrom4([4]byte([]byte(s[:4])))
	case 18:
		ip = netip.AddrFrom16([16]byte([]byte(s[:16]))).Unmap()
	default:
		return netip.AddrPort{}, false
	}
	port := uint16(s[len(s)-2])<<8 | uint16(s[len(s)-1])
	return netip.AddrPortFrom(ip, port), true
}

// appendPeer appends the compact form of a (6 or 18 bytes).
func appendPeer(b []byte, a netip.AddrPort) []byte {
	ip := a.Addr().Unmap()
	if ip.Is4() {
		v := ip.As4()
		b = append(b, v[:]...)
	} else {
		v := ip.As16()
		b = append(b, v[:]...)
	}
	return append(b, byte(a.Port()>>8), byte(a.Port()))
}

// compactNodes encodes the nodes of one family (IPv4 when v4, else IPv6).
func compactNodes(nodes []nodeInfo, v4 bool) string {
	var b []byte
	for _, n := range nodes {
		if n.Addr.Addr().Unmap().Is4() != v4 {
			continue
		}
		b = append(b, n.ID[:]...)
		b = appendPeer(b, n.Addr)
	}
	return string(b)
}

// encode returns the bencoded form of m.
func (m *message) encode() ([]byte, error) {
	w := wireMsg{T: m.T, Y: string(m.Y), V: m.V}
	switch m.Y {
	case 'q':
		w.Q = m.Q
		if m.ReadOnly {
			w.RO = 1
		}
		a := &wireArgs{ID: string(m.ID[:])}
		switch m.Q {
		case methodFindNode:
			a.Target = string(m.Target[:])
			a.Want = m.Want.raw()
		case methodGetPeers:
			a.InfoHash = string(m.InfoHash[:])
			a.Want = m.Want.raw()
		case methodAnnouncePeer:
			a.InfoHash = string(m.InfoHash[:])
			a.Port = int64(m.Port)
			a.Token = m.Token
			if m.ImpliedPort {
				a.ImpliedPort = 1
			}
		}
		w.A = a
	case 'r':
		r := &wireRet{ID: string(m.ID[:]), Token: m.Token}
		r.Nodes = compactNodes(m.Nodes, true)
		r.Nodes6 = compactNodes(m.Nodes6, false)
		for _, v := range m.Values {
			r.Values = append(r.Values, string(appendPeer(nil, v)))
		}
		w.R = r
	case 'e':
		w.E = []any{int64(m.ErrCode), m.ErrMsg}
	default:
		return nil, fmt.Errorf("dht: encode: message type %q", m.Y)
	}
	return metainfo.Marshal(&w)
}
