package httpserve

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/swarmfs/swarmfs/cmd/swarmfs/internal/library"
	"github.com/swarmfs/swarmfs/cmd/swarmfs/internal/library/librarytest"
)

// rateLib is a fake library with rate limits.
type rateLib struct {
	*librarytest.Fake
	r library.RateLimits
}

func (l *rateLib) RateLimits() library.RateLimits { return l.r }
func (l *rateLib) SetRateLimits(r library.RateLimits) error {
	l.r = r
	return nil
}

func TestRatesAPI(t *testing.T) {
	_, plain, _, _ := fixture(t)
	if resp, body := get(t, plain.URL+"/api/rates"); resp.StatusCode != http.StatusNotImplemented {
		t.Errorf("GET without rate limits: %d %s", resp.StatusCode, body)
	}
	lib := &rateLib{Fake: librarytest.NewFake(), r: library.RateLimits{Up: 100, Down: 200}}
	srv := httptest.NewServer(New(Config{Library: lib, Token: token}))
	defer srv.Close()
	api := srv.URL + "/api/rates"
	auth := []string{"Authorization", "Bearer " + token}
	var got library.RateLimits
	if resp, body := get(t, api); resp.StatusCode != http.StatusOK || json.Unmarshal(body, &got) != nil || got != lib.r {
		t.Fatalf("GET: %d %s", resp.StatusCode, body)
	}
	for _, tc := range []struct {
		name, body string
		hdr        []string
		code       int
	}{
		{"no token", `{"up":1}`, nil, http.StatusUnauthorized},
		{"cross-site", `{"up":1}`, append([]string{"Sec-Fetch-Site", "cross-site"}, auth...), http.StatusForbidden},
		{"negative", `{"down":-1}`, auth, http.StatusBadRequest},
		{"not JSON", `up=1`, auth, http.StatusBadRequest},
	} {
		if resp, body := do(t, http.MethodPut, api, []byte(tc.body), tc.hdr...); resp.StatusCode != tc.code {
			t.Errorf("PUT %s: %d %s, want %d", tc.name, resp.StatusCode, body, tc.code)
		}
	}
	if lib.r != (library.RateLimits{Up: 100, Down: 200}) {
		t.Fatalf("refused requests changed the limits to %+v", lib.r)
	}
	resp, body := do(t, http.MethodPut, api, []byte(`{"down":0}`), auth...)
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &got) != nil || got != (library.RateLimits{Up: 100}) {
		t.Fatalf("PUT: %d %s", resp.StatusCode, body)
	}
	if resp, _ := do(t, http.MethodDelete, api, nil, auth...); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("DELETE: %d", resp.StatusCode)
	}
}
