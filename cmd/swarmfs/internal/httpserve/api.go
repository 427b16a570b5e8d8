package httpserve

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"

	"github.com/swarmfs/swarmfs/cmd/swarmfs/internal/library"
	"github.com/swarmfs/swarmfs/metainfo"
)

// maxAddBody caps a POST body: a base64 torrent of the largest size
// metainfo accepts, and some JSON around it.
const maxAddBody = metainfo.MaxTorrentSize/3*4 + 8<<10

// addRequest is the JSON body of POST /api/torrents.
type addRequest struct {
	Magnet  string `json:"magnet"`
	Torrent string `json:"torrent"` // base64 of the .torrent file
}

// serveAPI serves /api/torrents and /api/torrents/INFOHASH (rest).
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request, rest string) {
	if err := s.cop.Check(r); err != nil {
		apiError(w, http.StatusForbidden, fmt.Errorf("httpserve: %w", err))
		return
	}
	switch {
	case r.Method == http.MethodGet && rest == "":
		ts := s.sorted()
		if ts == nil {
			ts = []library.Torrent{}
		}
		writeJSON(w, http.StatusOK, ts)
	case r.Method == http.MethodGet:
		h, err := parseHash(rest)
		if err != nil {
			apiError(w, statusOf(err), err)
			return
		}
		t, ok := s.lib.Torrent(h)
		if !ok {
			apiError(w, http.StatusNotFound, fmt.Errorf("%w: torrent %s", library.ErrNotFound, h))
			return
		}
		writeJSON(w, http.StatusOK, t)
	case r.Method == http.MethodPost && rest == "":
		s.apiAdd(w, r)
	case r.Method == http.MethodDelete && rest != "":
		s.apiRemove(w, r, rest)
	default:
		w.Header().Set("Allow", "GET, POST, DELETE")
		apiError(w, http.StatusMethodNotAllowed, errors.New("httpserve: method not allowed here"))
	}
}

func (s *Server) apiAdd(w http.ResponseWriter, r *http.Request) {
	if code, err := s.authorize(r); err != nil {
		apiError(w, code, err)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxAddBody))
	if err != nil {
		apiError(w, http.StatusRequestEntityTooLarge, fmt.Errorf("httpserve: reading body: %w", err))
		return
	}
	raw := body
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct == "application/json" {
		var req addRequest
		if err := json.Unmarshal(body, &req); err != nil {
			apiError(w, http.StatusBadRequest, fmt.Errorf("httpserve: JSON body: %w", err))
			return
		}
		switch {
		case req.Magnet != "" && req.Torrent == "":
			raw = []byte(req.Magnet)
		case req.Torrent != "" && req.Magnet == "":
			if raw, err = base64.StdEncoding.DecodeString(req.Torrent); err != nil {
				apiError(w, http.StatusBadRequest, fmt.Errorf("httpserve: torrent: %w", err))
				return
			}
		default:
			apiError(w, http.StatusBadRequest, errors.New(`httpserve: want one of "magnet" and "torrent"`))
			return
		}
	}
	src, err := library.ParseSource(raw)
	if err != nil {
		apiError(w, statusOf(err), err)
		return
	}
	t, err := s.lib.Add(r.Context(), src)
	if err != nil {
		apiError(w, statusOf(err), err)
		return
	}
	w.Header().Set("Location", "/api/torrents/"+t.InfoHash.String())
	writeJSON(w, http.StatusCreated, t)
}

func (s *Server) apiRemove(w http.ResponseWriter, r *http.Request, rest string) {
	if code, err := s.authorize(r); err != nil {
		apiError(w, code, err)
		return
	}
	h, err := parseHash(rest)
	if err != nil {
		apiError(w, statusOf(err), err)
		return
	}
	purge := r.URL.Query().Get("purge")
	if err := s.lib.Remove(r.Context(), h, purge == "1" || purge == "true"); err != nil {
		apiError(w, statusOf(err), err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// apiError writes {"error": ...}.
func apiError(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, map[string]string{"error": err.Error()})
}
