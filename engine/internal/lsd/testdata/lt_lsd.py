# libtorrent leecher with LSD only (no tracker, no DHT, no UPnP/NAT-PMP),
# started by TestLSDLibtorrent inside a simulated LAN host. Prints
# "listening PORT" and then "lsdpeer IP PORT" for each LSD alert.
import sys, time
import libtorrent as lt

ip, torrent, save, timeout = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
ses = lt.session({
    "listen_interfaces": ip + ":0",
    "outgoing_interfaces": ip,
    "enable_dht": False, "enable_lsd": True,
    "enable_upnp": False, "enable_natpmp": False,
    "enable_incoming_utp": False, "enable_outgoing_utp": False,
    "alert_mask": lt.alert.category_t.peer_notification | lt.alert.category_t.error_notification | lt.alert.category_t.status_notification,
})
h = ses.add_torrent({"ti": lt.torrent_info(torrent), "save_path": save})
print("listening", ses.listen_port(), flush=True)
end = time.time() + timeout
while time.time() < end:
    ses.wait_for_alert(200)
    for a in ses.pop_alerts():
        if a.what() == "lsd_peer":
            # Some builds of the bindings hand this alert over as a plain
            # alert without its endpoint: print its message then (a crash
            # here once killed libtorrent before it dialled us).
            ep = getattr(a, "endpoint", None) or getattr(a, "ip", None)
            if ep:
                print("lsdpeer", ep[0], ep[1], flush=True)
            else:
                print("lsdpeer", a.message(), flush=True)
        else:
            print("alert", a.what(), a.message(), flush=True)
