package enginetest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"github.com/swarmfs/swarmfs/engine/internal/container"
)

// MediaPlan lists the byte ranges of a video that a client streaming it
// over a slow network needs for each step of playing it, for reference
// clients that fetch ranges rather than read files (a libtorrent client
// with piece deadlines). Each range is [off, end).
type MediaPlan struct {
	// Play is what a demuxer reads at open (container.Walk's Start: the
	// headers, the index, the first media data) plus the packets of the
	// first seconds.
	Play [][2]int64
	// Seeks holds, for each seek position, the packets from the video key
	// frame at or before it to one second after it.
	Seeks [][][2]int64
}

// PlanMedia builds a MediaPlan for the video at path, playing its first
// playSeconds and seeking to each of seeks (seconds), from a container
// walk and the packet positions that ffprobe lists.
func PlanMedia(ctx context.Context, path string, playSeconds float64, seeks []float64) (*MediaPlan, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	res, err := container.Walk(f, st.Size(), container.Config{})
	if err != nil {
		return nil, fmt.Errorf("enginetest: %s: %w", path, err)
	}
	out, err := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-show_entries",
		"packet=stream_index,pts_time,pos,size,flags", "-of", "json", path).Output()
	if err != nil {
		return nil, fmt.Errorf("enginetest: ffprobe %s: %w", path, err)
	}
	var probe struct {
		Packets []struct {
			Stream int    `json:"stream_index"`
			PTS    string `json:"pts_time"`
			Pos    string `json:"pos"`
			Size   string `json:"size"`
			Flags  string `json:"flags"`
		} `json:"packets"`
	}
	if err := json.Unmarshal(out, &probe); err != nil {
		return nil, fmt.Errorf("enginetest: ffprobe %s: %w", path, err)
	}
	type packet struct {
		videoKey bool
		t        float64
		off, end int64
	}
	var pkts []packet
	for _, p := range probe.Packets {
		t, err1 := strconv.ParseFloat(p.PTS, 64)
		off, err2 := strconv.ParseInt(p.Pos, 10, 64)
		n, err3 := strconv.ParseInt(p.Size, 10, 64)
		if err1 != nil || err2 != nil || err3 != nil {
			continue
		}
		pkts = append(pkts, packet{p.Stream == 0 && strings.Contains(p.Flags, "K"), t, off, off + n})
	}
	span := func(from, to float64) [][2]int64 {
		var rs [][2]int64
		for _, p := range pkts {
			if p.t >= from && p.t < to {
				rs = append(rs, [2]int64{p.off, p.end})
			}
		}
		return rs
	}
	plan := &MediaPlan{}
	for _, r := range res.Start {
		plan.Play = append(plan.Play, [2]int64{r.Off, r.End})
	}
	plan.Play = append(plan.Play, span(0, playSeconds)...)
	for _, t := range seeks {
		key := 0.0
		for _, p := range pkts {
			if p.videoKey && p.t <= t && p.t > key {
				key = p.t
			}
		}
		plan.Seeks = append(plan.Seeks, span(key, t+1))
	}
	return plan, nil
}
