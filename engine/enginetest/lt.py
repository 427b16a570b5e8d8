# Lab driver for libtorrent, started by engine/enginetest from Go tests.
# One JSON argument describes the session; progress goes to stdout as lines:
#   listening PORT | state NAME | progress FRACTION RATE | done SECONDS RATE | error TEXT
# ("no_pex": a session without ut_pex; "upload_mode": a torrent that
# requests nothing) and, when the settings give an alert_mask, every alert as
#   alert WHAT MESSAGE
# With "peer_log", also once per peer endpoint that completed the handshake:
#   peer HOST PORT utp|tcp punched|direct in|out
# "done" comes once every wanted piece is verified AND written to the files:
# libtorrent 2.0 hashes a piece from its store buffer, so it may call a
# torrent finished or seeding while its disk thread still has writes queued
# (seen on a loaded machine). flush_cache is a fence behind all of them.
import json, os, re, sys, time
import libtorrent as lt

cfg = json.loads(sys.argv[1])
ip = cfg["ip"]
settings = {
    "listen_interfaces": ("[%s]:%d" if ":" in ip else "%s:%d") % (ip, cfg.get("port", 0)),
    "outgoing_interfaces": ip,
    "announce_ip": ip,
    "enable_dht": bool(cfg.get("dht", False)),
    "enable_lsd": False,
    "enable_upnp": False,
    "enable_natpmp": False,
    "enable_incoming_utp": False,
    "enable_outgoing_utp": False,
    "allow_multiple_connections_per_ip": True,
    "unchoke_slots_limit": -1,
    "upload_rate_limit": 0,
    "download_rate_limit": 0,
    "send_buffer_watermark": 8 * 1024 * 1024,
    "connections_limit": 400,
    "alert_mask": lt.alert.category_t.error_notification | lt.alert.category_t.status_notification
    | lt.alert.category_t.storage_notification,
}
if cfg.get("dht"):
    settings.update({
        "dht_bootstrap_nodes": cfg.get("dht_bootstrap", ""),
        "dht_restrict_routing_ips": False,
        "dht_restrict_search_ips": False,
        "dht_prefer_verified_node_ids": False,
        "dht_ignore_dark_internet": False,
        "dht_enforce_node_id": False,
    })
settings.update(cfg.get("settings") or {})
log_alerts = "alert_mask" in (cfg.get("settings") or {})
if cfg.get("no_pex"):
    ses = lt.session(settings, 0)  # without add_default_plugins: no ut_pex
else:
    ses = lt.session(settings)
if cfg.get("cap_local_peers"):
    # libtorrent puts private and loopback addresses in its local peer
    # class, which the rate limits do not apply to: put every address in
    # the global class instead.
    f = lt.ip_filter()
    f.add_rule("0.0.0.0", "255.255.255.255", 1 << lt.session.global_peer_class_id)
    f.add_rule("::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 1 << lt.session.global_peer_class_id)
    ses.set_peer_class_filter(f)
params = {"save_path": cfg["save_path"]}
if cfg.get("torrent"):
    params["ti"] = lt.torrent_info(cfg["torrent"])
else:
    atp = lt.parse_magnet_uri(cfg["magnet"])
    atp.save_path = cfg["save_path"]
    params = atp
if cfg.get("seed_mode"):
    params["flags"] = lt.torrent_flags.seed_mode
if cfg.get("upload_mode"):
    params["flags"] = params.get("flags", 0) | lt.torrent_flags.upload_mode
h = ses.add_torrent(params)
for p in cfg.get("peers") or []:
    host, port = p.rsplit(":", 1)
    h.connect_peer((host.strip("[]"), int(port)))


# Alerts about every block and the data messages of peer_log would crowd
# out what a test wants to see (connections, extensions, holepunch).
quiet_alerts = {"block_downloading", "block_finished", "block_uploaded", "piece_finished",
                "incoming_request", "stats", "file_completed", "cache_flushed", "state_update"}
quiet_peer_log = re.compile(r"REQUEST|PIECE|HAVE|CORKED|SEND_DATA|RECEIVE_DATA|ASYNC|ALLOWED_FAST"
                            r"|SUGGEST|CHOKE|INTERESTED|BITFIELD|KEEPALIVE|UNCORK|BUFFER|READ|WRITE|RATE")


def print_alerts(alerts):
    """Prints alerts when the settings asked for them (log_alerts), but
    not the per-block ones."""
    if log_alerts:
        for a in alerts:
            what, msg = a.what(), a.message()
            if what in quiet_alerts or (what == "peer_log" and quiet_peer_log.search(msg)):
                continue
            print("alert", what, msg, flush=True)


def flush_writes(handle, until):
    """Waits until libtorrent has written every block it verified so far."""
    print_alerts(ses.pop_alerts())
    handle.flush_cache()
    while time.time() < until:
        ses.wait_for_alert(500)
        alerts = ses.pop_alerts()
        print_alerts(alerts)
        for a in alerts:
            if isinstance(a, lt.cache_flushed_alert):
                return True
    return False


UTP_SOCKET = 1 << 17  # peer_info::utp_socket, not exported to Python
logged_peers = set()


def log_peers(handle):
    """Prints each peer endpoint once, when its handshake is complete."""
    for p in handle.get_peer_info():
        if p.flags & (lt.peer_info.handshake | lt.peer_info.connecting):
            continue
        if p.ip in logged_peers:
            continue
        logged_peers.add(p.ip)
        print("peer %s %d %s %s %s" % (p.ip[0], p.ip[1], "utp" if p.flags & UTP_SOCKET else "tcp",
              "punched" if p.flags & lt.peer_info.holepunched else "direct",
              "out" if p.flags & lt.peer_info.outgoing_connection else "in"), flush=True)


port = ses.listen_port()
print("listening", port, flush=True)
start = time.time()
last_state = None
done_reported = False
last_upload = -1
deadline = start + float(cfg.get("timeout", 600))
while time.time() < deadline:
    if log_alerts:
        print_alerts(ses.pop_alerts())
    s = h.status()
    st = str(s.state)
    if st != last_state:
        print("state", st, flush=True)
        last_state = st
    if s.errc.value() != 0:
        print("error", s.errc.message(), flush=True)
    if cfg.get("peer_log"):
        log_peers(h)
    if cfg.get("progress"):
        print("progress %.4f %d" % (s.progress, s.download_rate), flush=True)
    if not done_reported and st in ("seeding", "finished") and s.total_wanted_done == s.total_wanted:
        el = time.time() - start
        if not flush_writes(h, deadline):
            print("error disk writes not flushed before the driver's timeout", flush=True)
            break
        print("done %.3f %.0f" % (el, s.total_done / max(el, 1e-9)), flush=True)
        done_reported = True
        if cfg.get("exit_when_done"):
            break
    if cfg.get("upload_file"):
        up = s.total_payload_upload
        if up != last_upload:
            tmp = cfg["upload_file"] + ".tmp"
            with open(tmp, "w") as f:
                f.write(str(up))
            os.replace(tmp, cfg["upload_file"])
            last_upload = up
    time.sleep(0.05 if not done_reported else 0.2)
