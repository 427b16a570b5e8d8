package lsd

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func hash(b byte) [20]byte {
	var h [20]byte
	for i := range h {
		h[i] = b
	}
	return h
}

func TestParseAnnounce(t *testing.T) {
	const h1 = "0101010101010101010101010101010101010101"
	const h2 = "ABABABABABABABABABABABABABABABABABABABAB"
	good := []struct {
		name, msg string
		port      uint16
		cookie    string
		hashes    int
	}{
		{"libtorrent style", "BT-SEARCH * HTTP/1.1\r\nHost: 239.192.152.143:6771\r\nPort: 6881\r\nInfohash: " + h1 + "\r\ncookie: 5f3a\r\n\r\n\r\n", 6881, "5f3a", 1},
		{"two hashes, no cookie, bare newlines", "BT-SEARCH * HTTP/1.1\nport: 1\nINFOHASH: " + h1 + "\ninfohash: " + h2 + "\n\n", 1, "", 2},
		{"duplicate hash once", "BT-SEARCH * HTTP/1.1\r\nPort: 9\r\nInfohash: " + h1 + "\r\nInfohash: " + h1 + "\r\nX-Other: y\r\n\r\n", 9, "", 1},
	}
	for _, c := range good {
		a, err := ParseAnnounce([]byte(c.msg))
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if a.Port != c.port || a.Cookie != c.cookie || len(a.InfoHashes) != c.hashes {
			t.Errorf("%s: got %+v", c.name, a)
		}
	}
	bad := map[string]string{
		"M-SEARCH":     "M-SEARCH * HTTP/1.1\r\nPort: 1\r\nInfohash: " + h1 + "\r\n\r\n",
		"no port":      "BT-SEARCH * HTTP/1.1\r\nInfohash: " + h1 + "\r\n\r\n",
		"port 0":       "BT-SEARCH * HTTP/1.1\r\nPort: 0\r\nInfohash: " + h1 + "\r\n\r\n",
		"port 70000":   "BT-SEARCH * HTTP/1.1\r\nPort: 70000\r\nInfohash: " + h1 + "\r\n\r\n",
		"no hash":      "BT-SEARCH * HTTP/1.1\r\nPort: 1\r\n\r\n",
		"short hash":   "BT-SEARCH * HTTP/1.1\r\nPort: 1\r\nInfohash: 0101\r\n\r\n",
		"non-hex hash": "BT-SEARCH * HTTP/1.1\r\nPort: 1\r\nInfohash: " + strings.Repeat("zz", 20) + "\r\n\r\n",
		"header junk":  "BT-SEARCH * HTTP/1.1\r\nPort 1\r\n\r\n",
		"too long":     "BT-SEARCH * HTTP/1.1\r\nPort: 1\r\nX: " + strings.Repeat("a", MaxMessage) + "\r\n\r\n",
	}
	for name, msg := range bad {
		if a, err := ParseAnnounce([]byte(msg)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: got %+v, %v; want ErrMalformed", name, a, err)
		}
	}
}

func TestFormatAnnounceRoundTrip(t *testing.T) {
	var hs [][20]byte
	for i := 0; i < hashesPerMessage; i++ {
		hs = append(hs, hash(byte(i)))
	}
	for _, host := range []string{GroupV4, GroupV6} {
		msg := formatAnnounce(host, 65535, "0123456789abcdef", hs)
		if len(msg) > MaxMessage {
			t.Fatalf("a full announce is %d bytes, over %d", len(msg), MaxMessage)
		}
		if !bytes.Contains(msg, []byte("Host: "+host+"\r\n")) {
			t.Errorf("no Host header in %q", msg)
		}
		a, err := ParseAnnounce(msg)
		if err != nil {
			t.Fatal(err)
		}
		if a.Port != 65535 || a.Cookie != "0123456789abcdef" || len(a.InfoHashes) != len(hs) || a.InfoHashes[5] != hs[5] {
			t.Errorf("round trip: %+v", a)
		}
	}
}

// TestNewErrors checks New's refusals without opening sockets.
func TestNewErrors(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Error("New without a port succeeded")
	}
	if _, err := New(Config{Port: 1, Interfaces: []string{"no-such-if0"}}); err == nil {
		t.Error("New on a missing interface succeeded")
	}
	if _, err := New(Config{Port: 1, Interfaces: []string{}}); !errors.Is(err, ErrNoSocket) || strings.Contains(err.Error(), "%!") {
		t.Errorf("New with no interfaces: %v", err)
	}
}
