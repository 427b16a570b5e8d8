# libtorrent session that speaks only uTP, started by the utp package's
# interop tests. One JSON argument; lines on stdout:
#   listening PORT | state NAME | piece INDEX | done | error TEXT
import json, sys, time
import libtorrent as lt

cfg = json.loads(sys.argv[1])
ip = cfg["ip"]
settings = {
    "listen_interfaces": "%s:%d" % (ip, cfg.get("port", 0)),
    "outgoing_interfaces": ip,
    "announce_ip": ip,
    "enable_dht": False, "enable_lsd": False,
    "enable_upnp": False, "enable_natpmp": False,
    "enable_incoming_tcp": False, "enable_outgoing_tcp": False,
    "enable_incoming_utp": True, "enable_outgoing_utp": True,
    "allow_multiple_connections_per_ip": True,
    "unchoke_slots_limit": -1,
    "upload_rate_limit": 0, "download_rate_limit": 0,
    "alert_mask": lt.alert.category_t.error_notification
    | lt.alert.category_t.peer_notification
    | (lt.alert.category_t.connect_notification if cfg.get("debug") else 0)
    | lt.alert.category_t.status_notification
    | lt.alert.category_t.piece_progress_notification,
}
if cfg.get("encryption"):
    settings["out_enc_policy"] = int(lt.enc_policy.forced)
    settings["in_enc_policy"] = int(lt.enc_policy.forced)
    settings["allowed_enc_level"] = int(lt.enc_level.rc4)
    settings["prefer_rc4"] = True
else:
    settings["out_enc_policy"] = int(lt.enc_policy.disabled)
    settings["in_enc_policy"] = int(lt.enc_policy.disabled)
ses = lt.session(settings)
h = ses.add_torrent({"ti": lt.torrent_info(cfg["torrent"]), "save_path": cfg["save_path"]})
print("listening", ses.listen_port(), flush=True)
peers_added = False
last_state = None
done = False
deadline = time.time() + float(cfg.get("timeout", 120))
while time.time() < deadline:
    for a in ses.pop_alerts():
        if isinstance(a, lt.piece_finished_alert):
            print("piece", a.piece_index, flush=True)
        elif isinstance(a, lt.session_stats_alert) and cfg.get("debug"):
            c = a.values
            print("stats", {k: c[k] for k in c if k.startswith("utp") and c[k]}, flush=True)
        elif cfg.get("debug") or isinstance(a, (lt.peer_disconnected_alert, lt.peer_error_alert)):
            print("alert", a.what(), a.message(), flush=True)
    if cfg.get("debug") and int(time.time() * 20) % 20 == 0:
        ses.post_session_stats()
        for pi in h.get_peer_info():
            print("peer", pi.ip, pi.flags, pi.down_speed, pi.total_download, pi.connection_type, flush=True)
    s = h.status()
    st = str(s.state)
    if st != last_state:
        print("state", st, flush=True)
        last_state = st
    if s.errc.value() != 0:
        print("error", s.errc.message(), flush=True)
    if not peers_added and st not in ("checking_files", "checking_resume_data"):
        for p in cfg.get("peers") or []:
            host, port = p.rsplit(":", 1)
            h.connect_peer((host, int(port)))
        peers_added = True
    if not done and st in ("seeding", "finished") and s.total_wanted_done == s.total_wanted and cfg.get("peers"):
        print("done", flush=True)
        done = True
    time.sleep(0.05)
