#!/usr/bin/env bash
# Regenerates the fuzz seeds: tiny real files made by ffmpeg (0.4 s of
# 64x48 test pattern), written in Go's fuzz corpus format.
set -euo pipefail
cd "$(dirname "$0")"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
src=(-f lavfi -i testsrc=duration=0.4:size=64x48:rate=10 -f lavfi -i sine=frequency=440:duration=0.4)
x264=(-c:v libx264 -g 5 -c:a aac -b:a 16k -shortest)
ffmpeg -v error -y "${src[@]}" "${x264[@]}" "$tmp/moovend.mp4"
ffmpeg -v error -y "${src[@]}" "${x264[@]}" -movflags +faststart "$tmp/faststart.mp4"
ffmpeg -v error -y "${src[@]}" "${x264[@]}" -f mov "$tmp/video.mov"
ffmpeg -v error -y "${src[@]}" "${x264[@]}" -movflags +frag_keyframe+empty_moov "$tmp/frag.mp4"
ffmpeg -v error -y "${src[@]}" "${x264[@]}" "$tmp/video.mkv"
ffmpeg -v error -y "${src[@]}" -c:v libvpx -g 5 -c:a libopus -b:a 16k -shortest "$tmp/video.webm"
ffmpeg -v error -y "${src[@]}" -c:v mpeg4 -g 5 -an -shortest "$tmp/odml.avi"
corpus() { # DIR FILE...: one corpus entry per file
  local dir=$1; shift; mkdir -p "$dir"
  for f in "$@"; do
    python3 -c 'import sys
b = open(sys.argv[1], "rb").read()
q = "".join(chr(c) if 32 <= c < 127 and chr(c) not in "\"\\" else "\\x%02x" % c for c in b)
sys.stdout.write("go test fuzz v1\n[]byte(\"%s\")\nuint32(0)\n" % q)' "$f" > "$dir/$(basename "$f")"
  done
}
corpus fuzz/FuzzMP4 "$tmp"/{moovend,faststart,frag}.mp4 "$tmp/video.mov"
corpus fuzz/FuzzMatroska "$tmp/video.mkv" "$tmp/video.webm"
corpus fuzz/FuzzAVI "$tmp/odml.avi"
