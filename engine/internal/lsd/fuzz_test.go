package lsd

import (
	"errors"
	"testing"
)

func FuzzParseAnnounce(f *testing.F) {
	f.Add([]byte("BT-SEARCH * HTTP/1.1\r\nHost: 239.192.152.143:6771\r\nPort: 6881\r\nInfohash: 0101010101010101010101010101010101010101\r\ncookie: x\r\n\r\n\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := ParseAnnounce(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if a.Port == 0 || len(a.InfoHashes) == 0 || len(a.InfoHashes) > MaxHashes {
			t.Fatalf("accepted %+v", a)
		}
		// What we accept we can say again, and read back the same.
		b2 := formatAnnounce(GroupV4, a.Port, a.Cookie, a.InfoHashes)
		a2, err := ParseAnnounce(b2)
		if len(b2) <= MaxMessage && (err != nil || a2.Port != a.Port || len(a2.InfoHashes) != len(a.InfoHashes)) {
			t.Fatalf("round trip of %+v: %+v %v", a, a2, err)
		}
	})
}
