package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dustin/go-humanize"

	"github.com/swarmfs/swarmfs/metainfo"
)

var infoCommand = &command{
	summary: "show what a .torrent file or magnet URI holds",
	usage:   "[--json] FILE.torrent|MAGNET",
	examples: []string{
		"swarmfs info ubuntu.torrent",
		"swarmfs info --json ubuntu.torrent | jq .files",
		"swarmfs info 'magnet:?xt=urn:btih:...&dn=name&tr=udp://tracker:1337'",
	},
	run:     runInfo,
	flagSet: func() *flag.FlagSet { fset, _ := infoFlags(); return fset },
}

func infoFlags() (*flag.FlagSet, *bool) {
	fset := newFlagSet("info")
	asJSON := fset.Bool("json", false, "print a JSON object instead of text (for scripts)")
	return fset, asJSON
}

// infoJSON is the --json output. Sizes are in bytes; absent values are
// omitted; magnets have no piece or file data.
type infoJSON struct {
	Source       string     `json:"source"` // "torrent" or "magnet"
	Name         string     `json:"name"`
	InfoHash     string     `json:"info_hash"`
	Magnet       string     `json:"magnet"`
	TotalSize    int64      `json:"total_size,omitempty"`
	PieceLength  int64      `json:"piece_length,omitempty"`
	NumPieces    int        `json:"num_pieces,omitempty"`
	Private      bool       `json:"private"`
	SingleFile   bool       `json:"single_file"`
	Hybrid       bool       `json:"hybrid,omitempty"`
	Trackers     [][]string `json:"trackers"`
	WebSeeds     []string   `json:"web_seeds,omitempty"`
	HTTPSeeds    []string   `json:"http_seeds,omitempty"`
	Peers        []string   `json:"peers,omitempty"`
	Comment      string     `json:"comment,omitempty"`
	CreatedBy    string     `json:"created_by,omitempty"`
	CreationDate string     `json:"creation_date,omitempty"` // RFC 3339, UTC
	Files        []fileJSON `json:"files,omitempty"`
}

type fileJSON struct {
	Path       string `json:"path"` // below the torrent's directory; the name for single-file torrents
	Size       int64  `json:"size"`
	Offset     int64  `json:"offset"`
	Executable bool   `json:"executable,omitempty"`
	Hidden     bool   `json:"hidden,omitempty"`
}

func runInfo(_ context.Context, e *env, args []string) error {
	fset, asJSON := infoFlags()
	pos, err := parseFlags(fset, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError("want exactly one FILE.torrent or MAGNET, got %d arguments", len(pos))
	}
	out, err := describe(pos[0])
	if err != nil {
		return err
	}
	if *asJSON {
		b, err := json.MarshalIndent(out, "", "  ")
		if err != nil {
			return err
		}
		_, err = e.stdout.Write(append(jsonPrintable(b), '\n'))
		return err
	}
	printInfo(e.stdout, out)
	return nil
}

// describe loads a torrent file or parses a magnet URI.
func describe(src string) (*infoJSON, error) {
	if strings.HasPrefix(strings.ToLower(src), "magnet:") {
		m, err := metainfo.ParseMagnet(src)
		if err != nil {
			return nil, err
		}
		out := &infoJSON{Source: "magnet", Name: m.Name, InfoHash: m.InfoHash.String(), Magnet: m.String(),
			TotalSize: m.Length, WebSeeds: m.WebSeeds, Peers: m.Peers, Trackers: [][]string{}}
		for _, t := range m.Trackers {
			out.Trackers = append(out.Trackers, []string{t})
		}
		return out, nil
	}
	mi, err := metainfo.LoadFile(src)
	if err != nil {
		return nil, err
	}
	in := mi.Info
	out := &infoJSON{
		Source: "torrent", Name: in.Name, InfoHash: mi.InfoHash.String(), Magnet: mi.Magnet().String(),
		TotalSize: in.TotalLength, PieceLength: in.PieceLength, NumPieces: in.NumPieces(),
		Private: in.Private, SingleFile: in.SingleFile, Hybrid: mi.Hybrid, Trackers: mi.Trackers(), WebSeeds: mi.WebSeeds,
		HTTPSeeds: mi.HTTPSeeds, Comment: mi.Comment, CreatedBy: mi.CreatedBy,
	}
	if out.Trackers == nil {
		out.Trackers = [][]string{}
	}
	if !mi.CreationDate.IsZero() {
		out.CreationDate = mi.CreationDate.UTC().Format(time.RFC3339)
	}
	for _, f := range in.Files {
		out.Files = append(out.Files, fileJSON{Path: f.DisplayPath(), Size: f.Length, Offset: f.Offset,
			Executable: f.Executable, Hidden: f.Hidden})
	}
	return out, nil
}

// size formats n as "1.5 MiB (1572864 bytes)".
func size(n int64) string {
	return fmt.Sprintf("%s (%d bytes)", humanize.IBytes(uint64(n)), n)
}

func printInfo(w io.Writer, in *infoJSON) {
	row := func(k, v string) { fmt.Fprintf(w, "%-12s %s\n", k+":", printable(v)) }
	name := in.Name
	if name == "" {
		name = "(unknown until metadata is fetched)"
	}
	row("Name", name)
	row("Info hash", in.InfoHash)
	if in.Source == "magnet" {
		if in.TotalSize > 0 {
			row("Size", size(in.TotalSize))
		}
		row("Metadata", "not in the magnet; fetched from peers when added")
	} else {
		var inFiles int64
		for _, f := range in.Files {
			inFiles += f.Size
		}
		sz := size(in.TotalSize)
		if inFiles != in.TotalSize {
			sz = fmt.Sprintf("%s; %s in files, the rest is padding", sz, humanize.IBytes(uint64(inFiles)))
		}
		row("Size", sz)
		last := in.TotalSize - int64(in.NumPieces-1)*in.PieceLength
		pieces := fmt.Sprintf("%d x %s", in.NumPieces, humanize.IBytes(uint64(in.PieceLength)))
		if last != in.PieceLength {
			pieces += fmt.Sprintf(" (last %s)", humanize.IBytes(uint64(last)))
		}
		row("Pieces", pieces)
		row("Private", map[bool]string{true: "yes (no DHT, no PEX)", false: "no"}[in.Private])
		if in.Hybrid {
			row("Format", "hybrid v1+v2 (used as v1)")
		}
	}
	if len(in.Trackers) == 0 {
		row("Trackers", "none")
	} else {
		fmt.Fprintln(w, "Trackers:")
		for i, tier := range in.Trackers {
			fmt.Fprintf(w, "  tier %d: %s\n", i+1, printable(strings.Join(tier, ", ")))
		}
	}
	for _, l := range []struct {
		k  string
		vs []string
	}{{"Web seeds", in.WebSeeds}, {"HTTP seeds", in.HTTPSeeds}, {"Peers", in.Peers}} {
		if len(l.vs) > 0 {
			fmt.Fprintf(w, "%s:\n", l.k)
			for _, v := range l.vs {
				fmt.Fprintf(w, "  %s\n", printable(v))
			}
		}
	}
	if in.Comment != "" {
		row("Comment", in.Comment)
	}
	if in.CreatedBy != "" {
		row("Created by", in.CreatedBy)
	}
	if in.CreationDate != "" {
		row("Created", in.CreationDate)
	}
	if in.Source == "torrent" {
		fmt.Fprintf(w, "Files (%d):\n", len(in.Files))
		printTree(w, in)
	}
	row("Magnet", in.Magnet)
}

// treeLine is one line of the file tree: a directory or a file.
type treeLine struct {
	depth int
	label string
	size  int64
}

// printTree prints the files as an indented tree with humanized sizes in an
// aligned column; directories show the sum of their files.
func printTree(w io.Writer, in *infoJSON) {
	var lines []treeLine
	base := 0
	if !in.SingleFile {
		// Multi-file: everything sits in the torrent's directory.
		lines = append(lines, treeLine{0, in.Name + "/", in.TotalSize})
		base = 1
	}
	var open []string // directories of the previous file
	dirIndex := map[string]int{}
	for _, f := range in.Files {
		comps := strings.Split(f.Path, "/")
		dirs := comps[:len(comps)-1]
		common := 0
		for common < len(open) && common < len(dirs) && open[common] == dirs[common] {
			common++
		}
		for i := common; i < len(dirs); i++ {
			key := strings.Join(dirs[:i+1], "/")
			dirIndex[key] = len(lines)
			lines = append(lines, treeLine{base + i, dirs[i] + "/", 0})
		}
		for i := range dirs {
			lines[dirIndex[strings.Join(dirs[:i+1], "/")]].size += f.Size
		}
		open = slices.Clone(dirs)
		lines = append(lines, treeLine{base + len(dirs), comps[len(comps)-1], f.Size})
	}
	if base == 1 {
		// The top directory's size is the file sum, without padding.
		lines[0].size = 0
		for _, f := range in.Files {
			lines[0].size += f.Size
		}
	}
	width := 0
	for _, l := range lines {
		width = max(width, 2*l.depth+utf8.RuneCountInString(printable(l.label)))
	}
	width = min(width, 70)
	for _, l := range lines {
		text := strings.Repeat("  ", l.depth) + printable(l.label)
		fmt.Fprintf(w, "  %-*s  %10s\n", width, text, humanize.IBytes(uint64(l.size)))
	}
}
