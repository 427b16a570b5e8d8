# libtorrent driver for BenchmarkWAN (cmd/swarmfs/wan_bench_test.go). One
# JSON argument; lines on stdout:
#   listening PORT | state NAME | phase NAME SECONDS | connected SECONDS |
#   done SECONDS RATE | error TEXT
# Modes:
#   seed     seed the torrent with upload_rate_limit applied to every peer
#            (a peer class filter puts all addresses in the global class;
#            libtorrent otherwise exempts loopback from rate limits)
#   stream   stream as players on libtorrent do: no piece wanted until a
#            phase asks for byte ranges, then set_piece_deadline on their
#            pieces; each phase prints the time until all are verified
#            (the first phase counts from adding the torrent)
#   download download the whole file in sequential mode
#   connect  time from adding the torrent to a finished handshake with
#            every peer, with the encryption policy given
import json, sys, time
import libtorrent as lt

cfg = json.loads(sys.argv[1])
ip = cfg["ip"]
enc = lt.enc_policy.disabled if cfg.get("encryption") == "off" else lt.enc_policy.enabled
settings = {
    "listen_interfaces": "%s:0" % ip,
    "outgoing_interfaces": ip,
    "announce_ip": ip,
    "enable_dht": False, "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
    "enable_incoming_utp": False, "enable_outgoing_utp": False,
    "allow_multiple_connections_per_ip": True,
    "unchoke_slots_limit": -1,
    "upload_rate_limit": int(cfg.get("upload_rate", 0)),
    "send_buffer_watermark": 8 * 1024 * 1024,
    "connections_limit": 400,
    "close_redundant_connections": False,
    "out_enc_policy": int(enc), "in_enc_policy": int(enc), "allowed_enc_level": int(lt.enc_level.both),
    "alert_mask": lt.alert.category_t.error_notification | lt.alert.category_t.status_notification,
}
ses = lt.session(settings)
if cfg.get("upload_rate"):
    f = lt.ip_filter()
    f.add_rule("0.0.0.0", "255.255.255.255", 1 << lt.session.global_peer_class_id)
    ses.set_peer_class_filter(f)
print("listening", ses.listen_port(), flush=True)
deadline = time.time() + float(cfg.get("timeout", 600))
ti = lt.torrent_info(cfg["torrent"])
n, plen = ti.num_pieces(), ti.piece_length()
mode = cfg["mode"]

start = time.time()
h = ses.add_torrent({"ti": ti, "save_path": cfg["save_path"]})
h.replace_trackers([])  # peers come from connect_peer only
if mode in ("stream", "connect"):
    h.prioritize_pieces([0] * n)
if mode == "download":
    h.set_flags(lt.torrent_flags.sequential_download)
for p in cfg.get("peers") or []:
    host, port = p.rsplit(":", 1)
    h.connect_peer((host, int(port)))


def wait(cond):
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(0.002)
    print("error timeout", flush=True)
    sys.exit(1)


if mode == "seed":
    last = None
    while time.time() < deadline:
        st = str(h.status().state)
        if st != last:
            print("state", st, flush=True)
            last = st
        time.sleep(0.2)
elif mode == "stream":
    for i, ph in enumerate(cfg["phases"]):
        t = start if i == 0 else time.time()
        pieces = sorted({p for off, end in ph["ranges"] for p in range(off // plen, (end - 1) // plen + 1)})
        for k, p in enumerate(pieces):
            h.piece_priority(p, 7)
            h.set_piece_deadline(p, 10 * k)
        wait(lambda: all(h.have_piece(p) for p in pieces))
        print("phase", ph["name"], "%.3f" % (time.time() - t), flush=True)
elif mode == "download":
    wait(lambda: h.status().is_seeding)
    el = time.time() - start
    print("done %.3f %.0f" % (el, ti.total_size() / el), flush=True)
elif mode == "connect":
    want = len(cfg["peers"])
    busy = lt.peer_info.handshake | lt.peer_info.connecting
    wait(lambda: sum(1 for p in h.get_peer_info() if not p.flags & busy) >= want)
    print("connected %.3f" % (time.time() - start), flush=True)
