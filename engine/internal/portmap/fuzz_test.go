package portmap

import (
	"errors"
	"net/url"
	"testing"
)

// allowed reports whether err is one a parser may return for hostile bytes.
func allowed(err error) bool {
	return err == nil || errors.Is(err, ErrMalformed) || errors.Is(err, ErrRefused) || errors.Is(err, ErrUnsupported) || errors.Is(err, ErrNoIGD)
}

func FuzzParsePMP(f *testing.F) {
	f.Add([]byte{0, 128, 0, 0, 0, 0, 0, 9, 100, 64, 1, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := parsePMP(b); !allowed(err) {
			t.Fatal(err)
		}
	})
}

func FuzzParsePCP(f *testing.F) {
	f.Add(make([]byte, 60))
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := parsePCP(b); !allowed(err) {
			t.Fatal(err)
		}
	})
}

func FuzzParseSSDP(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nLOCATION: http://10.1.0.1:5000/rootDesc.xml\r\n\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		u, err := parseSSDP(b)
		if !allowed(err) {
			t.Fatal(err)
		}
		if err == nil && u.Scheme != "http" {
			t.Fatalf("accepted %v", u)
		}
	})
}

func FuzzParseDescription(f *testing.F) {
	f.Add([]byte(testDesc))
	loc, _ := url.Parse("http://10.1.0.1:5000/rootDesc.xml")
	f.Fuzz(func(t *testing.T, b []byte) {
		u, _, err := parseDescription(b, loc)
		if !allowed(err) {
			t.Fatal(err)
		}
		if err == nil && u.Host != loc.Host {
			t.Fatalf("control URL %v off the device", u)
		}
	})
}

func FuzzParseSOAP(f *testing.F) {
	f.Add(200, []byte(`<s:Envelope><s:Body><u:AddPortMappingResponse/></s:Body></s:Envelope>`))
	f.Fuzz(func(t *testing.T, status int, b []byte) {
		if _, err := parseSOAP(status, b, "AddPortMapping"); !allowed(err) {
			t.Fatal(err)
		}
	})
}
