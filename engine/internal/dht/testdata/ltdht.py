"""Drive libtorrent DHT nodes for dht interop tests.

Usage: ltdht.py SAVE_DIR IP:PORT [IP:PORT ...]   (IPv6 as [IP]:PORT)

Starts one libtorrent session per address with only the DHT on, each told
about the others with add_dht_node (not as bootstrap routers, which
libtorrent never puts in its routing table). Reads commands from stdin, one
per line, and writes JSON lines to stdout:

  nodes I                    -> {"event": "nodes", "i": I, "n": N}
  add I IP PORT              -> node I learns a DHT node (no reply)
  add_torrent I HEX          -> node I adds a magnet torrent for info hash HEX,
                                which makes it announce its listen port to the
                                DHT (the python binding cannot call
                                dht_announce: its flags type is not exposed)
  get_peers I HEX            -> {"event": "peers", "i": I, "ih": HEX, "peers": ["ip:port", ...]}
                                once per reply batch
Unsolicited: {"event": "ready"} once all sessions listen, and
{"event": "incoming_announce", "i": I, "ih": HEX, "peer": "ip:port"} when a
node stores an announce. Exits when stdin closes.
"""
import json
import queue
import sys
import threading
import time

import libtorrent as lt


def out(**kw):
    sys.stdout.write(json.dumps(kw) + "\n")
    sys.stdout.flush()


def session(ip, port):
    listen = ("[%s]:%d" if ":" in ip else "%s:%d") % (ip, port)
    return lt.session({
        "listen_interfaces": listen,
        "outgoing_interfaces": ip,
        "announce_ip": ip,
        "enable_dht": True,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "enable_incoming_utp": False,
        "enable_outgoing_utp": False,
        "dht_bootstrap_nodes": "",
        "dht_restrict_routing_ips": False,
        "dht_restrict_search_ips": False,
        "dht_enforce_node_id": False,
        "dht_prefer_verified_node_ids": False,
        "dht_ignore_dark_internet": False,
        "dht_aggressive_lookups": True,
        "dht_block_ratelimit": 10000,
        "dht_announce_interval": 2,
        "alert_mask": lt.alert.category_t.dht_notification
        | lt.alert.category_t.status_notification
        | lt.alert.category_t.error_notification
        | lt.alert.category_t.dht_operation_notification,
    })


def main():
    save_path = sys.argv[1]
    addrs = []
    for a in sys.argv[2:]:
        ip, port = a.rsplit(":", 1)
        addrs.append((ip.strip("[]"), int(port)))
    sessions = [session(ip, port) for ip, port in addrs]
    for i, s in enumerate(sessions):
        for j, a in enumerate(addrs):
            if i != j:
                s.add_dht_node(a)
    cmds = queue.Queue()

    def reader():
        for line in sys.stdin:
            cmds.put(line.split())
        cmds.put(None)

    threading.Thread(target=reader, daemon=True).start()
    out(event="ready")
    pending_nodes = {}
    while True:
        try:
            while True:
                c = cmds.get_nowait()
                if c is None:
                    return
                if not c:
                    continue
                i = int(c[1])
                s = sessions[i]
                if c[0] == "nodes":
                    pending_nodes[i] = True
                    s.post_dht_stats()
                elif c[0] == "add":
                    s.add_dht_node((c[2], int(c[3])))
                elif c[0] == "add_torrent":
                    atp = lt.parse_magnet_uri("magnet:?xt=urn:btih:" + c[2])
                    atp.save_path = save_path
                    s.add_torrent(atp)
                elif c[0] == "get_peers":
                    s.dht_get_peers(lt.sha1_hash(bytes.fromhex(c[2])))
        except queue.Empty:
            pass
        for i, s in enumerate(sessions):
            for a in s.pop_alerts():
                if isinstance(a, lt.dht_stats_alert) and pending_nodes.pop(i, False):
                    out(event="nodes", i=i, n=sum(b["num_nodes"] for b in a.routing_table))
                elif isinstance(a, lt.dht_get_peers_reply_alert):
                    out(event="peers", i=i, ih=str(a.info_hash),
                        peers=[(("[%s]:%d" if ":" in p[0] else "%s:%d") % (p[0], p[1])) for p in a.peers()])
                elif isinstance(a, lt.dht_announce_alert):
                    ip = str(a.ip)
                    out(event="incoming_announce", i=i, ih=str(a.info_hash),
                        peer=("[%s]:%d" if ":" in ip else "%s:%d") % (ip, a.port))
        time.sleep(0.02)


if __name__ == "__main__":
    main()
