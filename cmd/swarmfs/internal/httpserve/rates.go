package httpserve

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/swarmfs/swarmfs/cmd/swarmfs/internal/library"
)

// maxRatesBody caps the body of PUT /api/rates.
const maxRatesBody = 4 << 10

// ratesRequest is the body of PUT /api/rates: a missing field keeps its
// limit.
type ratesRequest struct {
	Up   *int64 `json:"up"`
	Down *int64 `json:"down"`
}

// serveRates serves /api/rates: GET reads the rate limits, PUT (or POST)
// changes them.
func (s *Server) serveRates(w http.ResponseWriter, r *http.Request) {
	if err := s.cop.Check(r); err != nil {
		apiError(w, http.StatusForbidden, fmt.Errorf("httpserve: %w", err))
		return
	}
	rl, ok := s.lib.(library.RateLimiter)
	if !ok {
		apiError(w, http.StatusNotImplemented, library.ErrNoRates)
		return
	}
	switch r.Method {
	case http.MethodGet:
		writeJSON(w, http.StatusOK, rl.RateLimits())
	case http.MethodPut, http.MethodPost:
		if code, err := s.authorize(r); err != nil {
			apiError(w, code, err)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRatesBody))
		if err != nil {
			apiError(w, http.StatusRequestEntityTooLarge, fmt.Errorf("httpserve: reading body: %w", err))
			return
		}
		var req ratesRequest
		if err := json.Unmarshal(body, &req); err != nil {
			apiError(w, http.StatusBadRequest, fmt.Errorf("httpserve: JSON body: %w", err))
			return
		}
		cur := rl.RateLimits()
		if req.Up != nil {
			cur.Up = *req.Up
		}
		if req.Down != nil {
			cur.Down = *req.Down
		}
		if cur.Up < 0 || cur.Down < 0 {
			apiError(w, http.StatusBadRequest, errors.New("httpserve: negative rate limit"))
			return
		}
		if err := rl.SetRateLimits(cur); err != nil {
			apiError(w, http.StatusBadRequest, err)
			return
		}
		writeJSON(w, http.StatusOK, rl.RateLimits())
	default:
		w.Header().Set("Allow", "GET, PUT, POST")
		apiError(w, http.StatusMethodNotAllowed, errors.New("httpserve: method not allowed here"))
	}
}
