package httpserve

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
)

// latencyBuckets are the upper bounds, in seconds, of the read latency
// histogram: from a cache hit to a read that waits for the network.
var latencyBuckets = []float64{0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

// histogram is a Prometheus histogram: counts per bucket, sum and count.
type histogram struct {
	bounds []float64

	mu     sync.Mutex // guards the fields below
	counts []uint64   // per bucket, not cumulative; the last is +Inf
	sum    float64
	n      uint64
}

func newHistogram(bounds []float64) *histogram {
	return &histogram{bounds: bounds, counts: make([]uint64, len(bounds)+1)}
}

func (h *histogram) observe(v float64) {
	i := len(h.bounds)
	for j, b := range h.bounds {
		if v <= b {
			i = j
			break
		}
	}
	h.mu.Lock()
	h.counts[i]++
	h.sum += v
	h.n++
	h.mu.Unlock()
}

// write writes the histogram named name in the text format.
func (h *histogram) write(w io.Writer, name, help string) {
	h.mu.Lock()
	counts := append([]uint64(nil), h.counts...)
	sum, n := h.sum, h.n
	h.mu.Unlock()
	fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name)
	var cum uint64
	for i, b := range h.bounds {
		cum += counts[i]
		fmt.Fprintf(w, "%s_bucket{le=\"%s\"} %d\n", name, formatFloat(b), cum)
	}
	fmt.Fprintf(w, "%s_bucket{le=\"+Inf\"} %d\n%s_sum %s\n%s_count %d\n", name, n, name, formatFloat(sum), name, n)
}

func formatFloat(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// labelEscaper escapes a label value of the text format.
var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

// torrentMetric is one per-torrent metric family.
type torrentMetric struct {
	name, typ, help string
	value           func(t torrentSample) float64
}

type torrentSample struct {
	labels string
	st     statsView
}

// statsView holds the numbers of one torrent that metrics report.
type statsView struct {
	down, up, downRate, upRate float64
	webSeed                    float64
	hashFailed, banned         float64
	evicted                    float64
	peers, seeds               float64
	have, total, bytesHave     float64
	size, readers              float64
}

var torrentMetrics = []torrentMetric{
	{"swarmfs_torrent_downloaded_bytes_total", "counter", "Payload bytes downloaded from peers since the torrent was added.", func(t torrentSample) float64 { return t.st.down }},
	{"swarmfs_torrent_web_seed_bytes_total", "counter", "Payload bytes downloaded from web seeds (BEP 19) since the torrent was added.", func(t torrentSample) float64 { return t.st.webSeed }},
	{"swarmfs_torrent_uploaded_bytes_total", "counter", "Payload bytes uploaded to peers since the torrent was added.", func(t torrentSample) float64 { return t.st.up }},
	{"swarmfs_torrent_download_rate_bytes", "gauge", "Recent download rate in bytes per second.", func(t torrentSample) float64 { return t.st.downRate }},
	{"swarmfs_torrent_upload_rate_bytes", "gauge", "Recent upload rate in bytes per second.", func(t torrentSample) float64 { return t.st.upRate }},
	{"swarmfs_torrent_peers", "gauge", "Connected peers.", func(t torrentSample) float64 { return t.st.peers }},
	{"swarmfs_torrent_seeds", "gauge", "Connected peers that have every piece.", func(t torrentSample) float64 { return t.st.seeds }},
	{"swarmfs_torrent_pieces_have", "gauge", "Pieces verified in the cache.", func(t torrentSample) float64 { return t.st.have }},
	{"swarmfs_torrent_pieces", "gauge", "Pieces of the torrent (0 until its metadata is known).", func(t torrentSample) float64 { return t.st.total }},
	{"swarmfs_torrent_cache_bytes", "gauge", "Bytes of the torrent's verified pieces held in the cache.", func(t torrentSample) float64 { return t.st.bytesHave }},
	{"swarmfs_torrent_size_bytes", "gauge", "Total size of the torrent's files (0 until its metadata is known).", func(t torrentSample) float64 { return t.st.size }},
	{"swarmfs_torrent_open_readers", "gauge", "Readers open on the torrent (mount and HTTP).", func(t torrentSample) float64 { return t.st.readers }},
	{"swarmfs_torrent_hash_failures_total", "counter", "Pieces that failed their SHA-1 check (from peers or web seeds).", func(t torrentSample) float64 { return t.st.hashFailed }},
	{"swarmfs_torrent_banned_peers", "gauge", "IPs banned for sending data that failed verification.", func(t torrentSample) float64 { return t.st.banned }},
	{"swarmfs_torrent_cache_evicted_bytes_total", "counter", "Verified bytes the cache gave up under its cap.", func(t torrentSample) float64 { return t.st.evicted }},
}

// serveMetrics writes the Prometheus text format.
func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	if r.Method == http.MethodHead {
		return
	}
	ts := s.sorted()
	samples := make([]torrentSample, len(ts))
	var cacheBytes float64
	for i, t := range ts {
		st := t.Stats
		samples[i] = torrentSample{
			labels: fmt.Sprintf(`{infohash="%s",name="%s"}`, t.InfoHash, labelEscaper.Replace(t.Name)),
			st: statsView{
				down: float64(st.Downloaded), up: float64(st.Uploaded), downRate: st.DownRate, upRate: st.UpRate,
				webSeed:    float64(st.WebSeedBytes),
				hashFailed: float64(st.HashFailures), banned: float64(st.Banned), evicted: float64(st.EvictedBytes),
				peers: float64(st.Peers), seeds: float64(st.Seeds), have: float64(st.PiecesHave),
				total: float64(st.PiecesTotal), bytesHave: float64(st.BytesHave), size: float64(t.Size),
				readers: float64(st.OpenReaders),
			},
		}
		cacheBytes += float64(st.BytesHave)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# HELP swarmfs_torrents Torrents in the library.\n# TYPE swarmfs_torrents gauge\nswarmfs_torrents %d\n", len(ts))
	fmt.Fprintf(&b, "# HELP swarmfs_cache_bytes Bytes of verified pieces held in the cache for the library's torrents.\n# TYPE swarmfs_cache_bytes gauge\nswarmfs_cache_bytes %s\n", formatFloat(cacheBytes))
	for _, m := range torrentMetrics {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", m.name, m.help, m.name, m.typ)
		for _, t := range samples {
			fmt.Fprintf(&b, "%s%s %s\n", m.name, t.labels, formatFloat(m.value(t)))
		}
	}
	s.latency.write(&b, "swarmfs_http_read_duration_seconds", "Time one read of file data for an HTTP client took, waiting for pieces included.")
	_, _ = io.WriteString(w, b.String())
}
