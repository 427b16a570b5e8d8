#!/usr/bin/env bash
# gen-testdata.sh regenerates testdata/torrents/ and testdata/golden.json.
#
# The content is deterministic (a SHA-1 counter stream written by
# /usr/bin/python3), so the info hashes come out the same on every run; the
# .torrent files made by transmission-create differ only in their creation
# date, which is outside the info dictionary. The golden file holds what
# libtorrent (python3-libtorrent) reports for every good fixture, and the
# expected error class for every malformed one.
#
# Needs: mktorrent, transmission-cli, python3-libtorrent (/usr/bin/python3).
# Usage: scripts/gen-testdata.sh   (from anywhere; writes into the repository)
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
out=$repo/testdata/torrents
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

rm -rf "$out"
mkdir -p "$out/good" "$out/bad"

# Content: deterministic bytes from SHA-1(seed || counter).
/usr/bin/python3 - "$work" <<'PY'
import hashlib, os, sys
root = sys.argv[1]
def data(seed, n):
    out, i = bytearray(), 0
    while len(out) < n:
        out += hashlib.sha1(f"{seed}:{i}".encode()).digest()
        i += 1
    return bytes(out[:n])
def put(rel, n, mode=0o644):
    p = os.path.join(root, rel)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "wb") as f:
        f.write(data(rel, n))
    os.chmod(p, mode)
put("single.bin", 100000)
put("odd.bin", 50001)
put("multi/a.txt", 1000)
put("multi/empty.txt", 0)
put("multi/sub/b.bin", 70000)
put("multi/sub/deeper/c.dat", 33333)
put("multi/sub/run.sh", 517, 0o755)
put("multi/z/empty2", 0)
PY

cd "$work"
# mktorrent: fixed piece sizes (-l is log2), no date for reproducible bytes.
mktorrent -d -l 15 -a http://127.0.0.1:6969/announce -o "$out/good/mktorrent-single.torrent" single.bin >/dev/null
mktorrent -d -l 15 -p -c "multi-file fixture" \
	-a http://127.0.0.1:6969/announce,http://127.0.0.2:6969/announce -a udp://127.0.0.3:6969 \
	-w http://127.0.0.1:8080/seed/ -o "$out/good/mktorrent-multi.torrent" multi >/dev/null
mktorrent -d -l 15 -a http://127.0.0.1:6969/announce -o "$out/good/mktorrent-odd.torrent" odd.bin >/dev/null

# transmission-create: its own automatic piece size, and a 16 KiB one.
transmission-create -t http://127.0.0.1:6969/announce -o "$out/good/transmission-single.torrent" single.bin >/dev/null
transmission-create -s 16 -c "made by transmission" -t http://127.0.0.1:6969/announce -t udp://127.0.0.2:6969 \
	-o "$out/good/transmission-multi.torrent" multi >/dev/null

# libtorrent: a default (hybrid v1+v2, BEP 47 pad files, attr x) torrent,
# a v1-only one, hand-built special cases, the v2-only and malformed ones.
/usr/bin/python3 - "$work" "$out" "$repo/testdata/golden.json" <<'PY'
import hashlib, json, os, sys
import libtorrent as lt
work, out, golden = sys.argv[1:4]

def lt_create(path, flags, piece_size, dest):
    fs = lt.file_storage()
    lt.add_files(fs, path)
    ct = lt.create_torrent(fs, piece_size, flags=flags)
    ct.add_tracker("http://127.0.0.1:6969/announce", 0)
    ct.set_creator("libtorrent fixture")
    lt.set_piece_hashes(ct, os.path.dirname(path))
    e = ct.generate()
    e.pop(b"creation date", None)
    with open(dest, "wb") as f:
        f.write(lt.bencode(e))
    return e

g = os.path.join(out, "good")
b = os.path.join(out, "bad")
lt_create(os.path.join(work, "multi"), 0, 16384, os.path.join(g, "libtorrent-hybrid.torrent"))
lt_create(os.path.join(work, "multi"), lt.create_torrent.v1_only, 32768, os.path.join(g, "libtorrent-v1-multi.torrent"))
lt_create(os.path.join(work, "odd.bin"), lt.create_torrent.v1_only, 16384, os.path.join(g, "libtorrent-odd.torrent"))
v2 = lt_create(os.path.join(work, "multi"), lt.create_torrent.v2_only, 16384, os.path.join(b, "v2-only.torrent"))

def pieces_of(blob, pl):
    return b"".join(hashlib.sha1(blob[i:i+pl]).digest() for i in range(0, len(blob), pl))

def write(dest, d):
    with open(dest, "wb") as f:
        f.write(lt.bencode(d))

# Hand-built good torrent: legacy ".pad" directory and BEP 47 pad files,
# utf-8 path variants, url-list as a single string, httpseeds, nodes.
a = hashlib.sha1(b"a").digest() * 100        # 2000 bytes
c = hashlib.sha1(b"c").digest() * 51          # 1020 bytes
pl = 4096  # tiny on purpose: the geometry around the pads is the point
blob = a + b"\0" * (pl - len(a)) + c + b"\0" * (pl - len(c)) + b"tail"
write(os.path.join(g, "handmade-pads.torrent"), {
    b"announce": b"http://127.0.0.1:6969/announce",
    b"url-list": b"http://127.0.0.1:8080/pads/",
    b"httpseeds": [b"http://127.0.0.1:8081/seed"],
    b"nodes": [[b"127.0.0.1", 6881], [b"::1", 6882]],
    b"comment": b"pads and utf-8 paths",
    b"creation date": 1700000000,
    b"info": {
        b"name": b"pads",
        b"piece length": pl,
        b"pieces": pieces_of(blob, pl),
        b"files": [
            {b"length": len(a), b"path": [b"a.bin"]},
            {b"length": pl - len(a), b"path": [b".pad", str(pl - len(a)).encode()]},
            {b"length": len(c), b"path": [b"x"], b"path.utf-8": [b"dir", b"c.bin"]},
            {b"length": pl - len(c), b"path": [b".pad", b"x"], b"attr": b"p"},
            {b"length": 0, b"path": [b"empty"]},
            {b"length": 4, b"path": [b"tail.txt"], b"attr": b"xh"},
        ],
    },
})

# Malformed torrents: each must fail with a one-line error.
base = {b"name": b"bad", b"piece length": 16384}
def multi(files, total=None, **extra):
    total = sum(f[b"length"] for f in files) if total is None else total
    n = max(1, (total + 16383) // 16384)
    info = dict(base)
    info[b"files"] = files
    info[b"pieces"] = b"\1" * 20 * n
    info.update(extra)
    return {b"announce": b"http://127.0.0.1:6969/announce", b"info": info}
F = lambda path, n=10: {b"length": n, b"path": path}
expect = {}
def bad(name, d, kind="invalid", raw=None):
    p = os.path.join(b, name + ".torrent")
    with open(p, "wb") as f:
        f.write(raw if raw is not None else lt.bencode(d))
    expect[name] = kind
bad("traversal", multi([F([b"..", b"..", b"etc", b"passwd"])]))
bad("traversal-utf8", multi([{b"length": 10, b"path": [b"ok"], b"path.utf-8": [b"..", b"x"]}]))
bad("absolute", multi([F([b"/etc/passwd"])]))
bad("slash-in-component", multi([F([b"a/../../b"])]))
bad("dot-component", multi([F([b"a", b".", b"b"])]))
bad("empty-component", multi([F([b"a", b"", b"b"])]))
bad("nul-component", multi([F([b"a\0b"])]))
bad("empty-path", multi([F([])]))
bad("name-dotdot", {b"info": {b"name": b"..", b"piece length": 16384, b"length": 10, b"pieces": b"\1" * 20}})
bad("name-slash", {b"info": {b"name": b"../x", b"piece length": 16384, b"length": 10, b"pieces": b"\1" * 20}})
bad("duplicate-names", multi([F([b"a"]), F([b"a"])]))
bad("file-is-dir", multi([F([b"a"]), F([b"a", b"b"])]))
bad("huge-length", {b"info": {b"name": b"x", b"piece length": 16384, b"length": 1 << 62, b"pieces": b"\1" * 20}})
bad("length-overflow", multi([F([b"a"], (1 << 63) - 1), F([b"b"], 2)], total=1))
bad("negative-length", multi([F([b"a"], -5)], total=1))
bad("deep-path", multi([F([b"d"] * 100)]))
bad("deep-nesting", None, raw=b"d4:infod4:name1:x4:junk" + b"l" * 10000 + b"e" * 10000 + b"ee")
bad("wrong-pieces-length", {b"info": {b"name": b"x", b"piece length": 16384, b"length": 10, b"pieces": b"\1" * 21}})
bad("too-many-pieces", {b"info": {b"name": b"x", b"piece length": 16384, b"length": 10, b"pieces": b"\1" * 40}})
bad("zero-piece-length", {b"info": {b"name": b"x", b"piece length": 0, b"length": 10, b"pieces": b"\1" * 20}})
bad("huge-piece-length", {b"info": {b"name": b"x", b"piece length": 1 << 40, b"length": 10, b"pieces": b"\1" * 20}})
bad("no-info", {b"announce": b"http://127.0.0.1:6969/announce"})
bad("not-a-dict", None, raw=b"l4:infoe")
bad("trailing-garbage", None, raw=lt.bencode({b"info": {b"name": b"x", b"piece length": 16384, b"length": 10, b"pieces": b"\1" * 20}}) + b"junk")
bad("leading-zero", None, raw=b"d4:infod6:lengthi010e4:name1:x12:piece lengthi16384e6:pieces20:" + b"\1" * 20 + b"ee")
bad("empty-content", multi([F([b"a"], 0)]))
with open(os.path.join(g, "libtorrent-v1-multi.torrent"), "rb") as f:
    whole = f.read()
bad("truncated", None, raw=whole[: len(whole) // 2])
bad("v2-only", v2, kind="unsupported")
bad("meta-version-3", {b"info": {b"name": b"x", b"piece length": 16384, b"length": 10, b"pieces": b"\1" * 20, b"meta version": 3}}, kind="unsupported")

# Golden results from libtorrent for each good fixture.
res = {"good": {}, "bad": expect}
for name in sorted(os.listdir(g)):
    ti = lt.torrent_info(os.path.join(g, name))
    fs = ti.files()
    files = []
    for i in range(fs.num_files()):
        path = fs.file_path(i)
        if fs.file_flags(i) & lt.file_storage.flag_pad_file:
            continue
        files.append({"path": path, "size": fs.file_size(i), "offset": fs.file_offset(i)})
    res["good"][name] = {
        "info_hash": str(ti.info_hashes().v1),
        "name": ti.name(),
        "piece_length": ti.piece_length(),
        "num_pieces": ti.num_pieces(),
        "total_size": ti.total_size(),
        "files": files,
    }
with open(golden, "w") as f:
    json.dump(res, f, indent=1, sort_keys=True)
    f.write("\n")
PY
echo "wrote $out and $repo/testdata/golden.json"
