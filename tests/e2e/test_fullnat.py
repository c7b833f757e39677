"""Full NAT end to end: private backends that have no route to the clients and no VIP (the lab's
fullnat topology), real clients through l4lb with forwarding = "fullnat", nginx 1.22 learning the
client's address from PROXY v2 headers. One lab and one l4lb for the whole module.

The VIPs (all on the lab's VIP address; each pool address is its VIPs' own):
  :80    tcp, proxy_protocol v2 -> nginx :8080 (`listen ... proxy_protocol`), from SNAT4[0] / SNAT6[0]
  :5353  udp -> the backends' UDP echo (lab_server.py), from SNAT4[0] / SNAT6[0]
  :81    tcp, no PROXY header -> nginx :8081 (plain), from SNAT4[1]: the negative control
  :25    tcp, proxy_protocol v2 -> proxy_banner.py :8082 (the server speaks first), from SNAT4[3]
  :82    tcp, no PROXY header -> nginx :8081, from SNAT4[2] with a pool of 16 ports
  :83    tcp on the IPv6 VIP, proxy_protocol v2 -> the IPv4 backends' nginx :8080, from SNAT4[4]:
         full NAT across families (IPv6 clients to IPv4 backends)
Losses are made in the backends' namespaces with nftables (this kernel may lack sch_netem; see
impair()). Figures are printed (the closing note quotes them).
"""
import hashlib
import json
import os
import re
import subprocess
import time
import unittest

from e2e_common import BUILD_DIR, REPO_ROOT, BalancerConfig, client, new_lab, sh, start_balancer

import lab_nginx  # scripts/lib, on the path through e2e_common
from balancer_config import Vip

HEALTH = {"type": "tcp", "interval_ms": 500, "timeout_ms": 400, "rise": 2, "fall": 2}
PLAIN_VIP_PORT, BANNER_VIP_PORT, POOL_VIP_PORT, MIXED_VIP_PORT = 81, 25, 82, 83
POOL_PORTS = (20000, 20015)
SIGNATURE_HEX = "0x0d0a0d0a000d0a515549540a"  # the PROXY v2 signature, the first 12 bytes of a header
BLOB_SHA256 = hashlib.sha256(lab_nginx.blob_bytes()).hexdigest()


def ctl(sock, *args):
    p = subprocess.run([os.path.join(BUILD_DIR, "l4lbctl"), "-s", sock] + list(args), capture_output=True,
                       text=True, timeout=10)
    return p.returncode, p.stdout, p.stderr


def counter(stats, name):
    """A counter or drop of an `l4lbctl --json stats` reply (summed over workers) or of the
    stats file ("total")."""
    parts = [stats["total"]] if "total" in stats else stats.get("workers", [])
    return sum(p.get(k, {}).get(name, 0) for p in parts for k in ("counters", "drops")
               if isinstance(p.get(k, {}).get(name, 0), (int, float)))


def nft(lab, ns, name, text):
    """Loads the nft rules `text` into namespace `ns` (from a file in the lab's state dir)."""
    path = lab.path(f"{ns}.{name}.nft")
    with open(path, "w") as f:
        f.write(text)
    sh("nft", "-f", path, ns=ns)


def nft_counter(ns, table, name):
    out = json.loads(sh("nft", "-j", "list", "counter", "inet", table, name, ns=ns, capture=True))
    return next(x["counter"]["packets"] for x in out["nftables"] if "counter" in x)


def drop_first_header_segment(port, then=None):
    """nft rules that drop, once per connection, the first segment towards `port` that starts
    with a PROXY v2 header (and, with `then`, has those bytes right after the header: the
    segment that carries the client's first bytes), and let its retransmission and everything
    else through. Counted in counter "dropped"."""
    rules = []
    for fam, saddr, setname, hdr_len in (("ipv4", "ip saddr", "seen4", 28), ("ipv6", "ip6 saddr", "seen6", 52)):
        # The signature and the PROXY command (0x21): a health check's LOCAL header (0x20) is
        # not a client's and is left alone.
        match = f"meta nfproto {fam} tcp dport {port} @ih,0,104 {SIGNATURE_HEX}21"
        if then:
            # A payload match past the segment's end does not match (nft stops the rule).
            match += f" @ih,{hdr_len * 8},{len(then) * 8} 0x{then.hex()}"
        rules.append(f"    {match} {saddr} . tcp sport @{setname} accept")
        rules.append(f"    {match} add @{setname} {{ {saddr} . tcp sport }} counter name dropped drop")
    return ("table inet l4lbonce {\n"
            "  set seen4 { type ipv4_addr . inet_service; size 65536; }\n"
            "  set seen6 { type ipv6_addr . inet_service; size 65536; }\n"
            "  counter dropped {}\n"
            "  chain input {\n    type filter hook input priority 0; policy accept;\n"
            + "\n".join(rules) + "\n  }\n}\n")


def impair(lab, i, port, loss_pct=2, reorder_pct=20):
    """Loss and reordering on backend i's side of the segment, for TCP port `port`.

    This kernel has no sch_netem (CONFIG_NET_SCH_NETEM is not set), so nftables and HTB do the
    job: nft drops `loss_pct` % of the segments in each direction at random (numgen random), and
    marks `reorder_pct` % of the backend's outgoing segments for a slow HTB class (1:2, 20 Mbit/s,
    one packet of burst), which delivers them after the segments sent behind them. The backend's
    veth takes one segment per packet (gso_max_segs 1: TCP always builds GSO batches otherwise), so
    what nft drops or delays is one segment on the wire, not a 64 KiB batch."""
    ns, dev = lab.ns_backends[i], f"{lab.prefix}b{i + 1}"
    sh("ip", "link", "set", "dev", dev, "gso_max_segs", "1", ns=ns)
    sh("tc", "qdisc", "add", "dev", dev, "root", "handle", "1:", "htb", "default", "1", ns=ns)
    sh("tc", "class", "add", "dev", dev, "parent", "1:", "classid", "1:1", "htb", "rate", "10gbit", ns=ns)
    sh("tc", "class", "add", "dev", dev, "parent", "1:", "classid", "1:2", "htb", "rate", "20mbit",
       "burst", "1600", "cburst", "1600", ns=ns)
    nft(lab, ns, "impair", "table inet l4lbimpair {\n"
        "  counter lost_in {}\n  counter lost_out {}\n  counter slowed {}\n"
        "  chain input {\n    type filter hook input priority 0; policy accept;\n"
        f"    tcp dport {port} numgen random mod 100 < {loss_pct} counter name lost_in drop\n  }}\n"
        "  chain output {\n    type filter hook output priority 0; policy accept;\n"
        f"    tcp sport {port} numgen random mod 100 < {loss_pct} counter name lost_out drop\n"
        f"    tcp sport {port} numgen random mod 100 < {reorder_pct} counter name slowed meta priority set 1:2\n"
        "  }\n}\n")


def unimpair(lab, i):
    ns, dev = lab.ns_backends[i], f"{lab.prefix}b{i + 1}"
    sh("nft", "delete", "table", "inet", "l4lbimpair", ns=ns, check=False)
    sh("tc", "qdisc", "del", "dev", dev, "root", ns=ns, check=False)
    sh("ip", "link", "set", "dev", dev, "gso_max_segs", "65535", ns=ns, check=False)


def htb_sent(ns, dev, classid):
    """Packets sent by HTB class `classid` (tc has no JSON output for HTB classes)."""
    out = sh("tc", "-s", "class", "show", "dev", dev, ns=ns, capture=True)
    m = re.search(rf"class htb {re.escape(classid)} .*\n Sent \d+ bytes (\d+) pkt", out)
    return int(m.group(1)) if m else 0


class FullNat(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.lab = lab = new_lab("fullnat", ipv6=True)
        try:
            cls.sock = lab.path("l4lb.sock")
            extra = [
                Vip(lab.vip4, PLAIN_VIP_PORT, "tcp", "fullnat", HEALTH, [(b, None) for b in lab.backend4],
                    backend_port=lab_nginx.PLAIN_PORT, **lab.fullnat_keys(False, 1)),
                Vip(lab.vip4, BANNER_VIP_PORT, "tcp", "fullnat", HEALTH, [(b, None) for b in lab.backend4],
                    backend_port=8082, **lab.fullnat_keys(False, 3, proxy_protocol="v2")),
                Vip(lab.vip4, POOL_VIP_PORT, "tcp", "fullnat", HEALTH, [(b, None) for b in lab.backend4],
                    backend_port=lab_nginx.PLAIN_PORT,
                    **lab.fullnat_keys(False, 2, snat_ports=f"{POOL_PORTS[0]}-{POOL_PORTS[1]}", snat_quiet_time=60)),
                Vip(lab.vip6, MIXED_VIP_PORT, "tcp", "fullnat", HEALTH, [(b, None) for b in lab.backend4],
                    backend_port=lab_nginx.PP_PORT, **lab.fullnat_keys(False, 4, proxy_protocol="v2")),
            ]
            text = BalancerConfig(health=HEALTH, udp=True, extra_sections=f'[control]\nsocket = "{cls.sock}"\n',
                                  extra_vips="\n".join(c for v in extra for c in v.chunks())).toml(lab)
        except Exception:
            lab.down()
            raise
        cls.lb = start_balancer(lab, text, text.count("[[vips.backends]]"))

    @classmethod
    def tearDownClass(cls):
        try:
            stats = cls.lb.stop()
            names = ("fullnat_new", "fullnat_ended", "fullnat_reverse", "proxy_header_sent", "snat_exhausted",
                     "fullnat_no_session", "fullnat_wrong_worker", "fullnat_ring_full", "fullnat_unsupported", "fullnat_xlate_dropped",
                     "proxy_header_no_room")
            print("  fullnat: final stats: " + ", ".join(f"{k} {counter(stats, k)}" for k in names))
        finally:
            cls.lb.kill()
            cls.lab.down()

    def stats(self):
        rc, out, err = ctl(self.sock, "--json", "stats")
        self.assertEqual(rc, 0, err)
        return json.loads(out)

    def log_offsets(self, listener):
        return [lab_nginx.log_size(self.lab.state_dir, f"b{i + 1}", listener) for i in range(self.lab.n)]

    def log_since(self, listener, offsets):
        out = []
        for i, start in enumerate(offsets):
            for line in lab_nginx.read_log(self.lab.state_dir, f"b{i + 1}", listener, start):
                line["backend"] = f"b{i + 1}"
                out.append(line)
        return out

    # -- the lab itself ----------------------------------------------------------------------
    def test_0_backends_are_private(self):
        """What the module's claims rest on: a backend cannot reach the client's network (no
        route in either family), holds no VIP, and only the balancer's addresses on its segment."""
        lab = self.lab
        for ns in lab.ns_backends:
            for dst in (lab.client4, lab.client6, "198.18.21.2"):
                rc = sh("ip", "route", "get", dst, ns=ns, check=False)
                self.assertNotEqual(rc, 0, f"{ns} has a route to {dst}")
            addrs = json.loads(sh("ip", "-j", "addr", "show", ns=ns, capture=True))
            mine = {a["local"] for link in addrs for a in link.get("addr_info", [])}
            self.assertNotIn(lab.vip4, mine)
            self.assertNotIn(lab.vip6, mine)

    def test_0_instruments_read_a_hand_made_header(self):
        """The instruments themselves: from the balancer's own kernel address on the segment (as
        the health checks go), a hand-made PROXY v2 header naming another client reaches nginx's
        log and the banner server's banner as that client; nginx's PROXY listener logs no request
        that came without a header."""
        lab, b1 = self.lab, self.lab.backend4[0]
        fake = ("198.18.21.99", 4242)
        pp0 = self.log_offsets("pp")
        code = f"""
import socket, sys
sys.path.insert(0, {os.path.join(REPO_ROOT, "scripts", "lib")!r})
from proxy_banner import build_proxy_v2
hdr = build_proxy_v2({fake!r}, ({lab.vip4!r}, 80))
s = socket.create_connection(({b1!r}, {lab_nginx.PP_PORT}), 3)
s.sendall(hdr + b"GET /hand HTTP/1.0\\r\\n\\r\\n")
print(s.recv(4096).split(b"\\r\\n")[0].decode())
s = socket.create_connection(({b1!r}, {lab_nginx.PP_PORT}), 3)
s.sendall(b"GET /noheader HTTP/1.0\\r\\n\\r\\n")
s.settimeout(3)
print(len(s.recv(4096)))
s = socket.create_connection(({b1!r}, 8082), 3)
s.sendall(build_proxy_v2({fake!r}, ({lab.vip4!r}, 25)))
s.settimeout(3)
print(s.makefile("rb").readline().decode().strip())
"""
        out = sh("/usr/bin/python3", "-c", code, ns=lab.ns_lb, capture=True).splitlines()
        lines = self.log_since("pp", pp0)
        self.assertEqual(out[0], "HTTP/1.1 200 OK", out)
        self.assertEqual(out[1], "0", out)  # nginx closes a connection without a header, unanswered
        self.assertEqual(out[2].split()[2:5], ["client", fake[0], str(fake[1])], out)
        self.assertEqual([(x["pp_addr"], x["pp_port"], x["remote_addr"], x["uri"]) for x in lines],
                         [(fake[0], str(fake[1]), lab.lb_lan4, "/hand")])

    # -- a. the client's address through PROXY v2, and the control without it ------------------
    def test_1_nginx_sees_the_client_address(self):
        lab, n = self.lab, 2000
        pp0, plain0 = self.log_offsets("pp"), self.log_offsets("plain")
        t0 = time.monotonic()
        r = client(lab, "conns", lab.vip4, 80, n, 16, 30000, timeout=300)
        dt = time.monotonic() - t0
        self.assertEqual(r["fail"], 0, r)
        lines = self.log_since("pp", pp0)
        with_client = [x for x in lines if x["pp_addr"] == lab.client4]
        per = {b: sum(1 for x in lines if x["backend"] == b) for b in ("b1", "b2", "b3")}
        print(f"  fullnat {lab.vip4}:80 (PROXY v2): {n} requests in {dt:.1f} s; nginx logged {len(lines)}, "
              f"{len(with_client)} with the client's address {lab.client4}; per backend {per}")
        self.assertEqual(len(lines), n)
        self.assertEqual(len(with_client), n, [x for x in lines if x["pp_addr"] != lab.client4][:5])
        # Each header carries its own connection's client port and the VIP; the TCP peer is the pool.
        self.assertEqual(sorted(int(x["pp_port"]) for x in lines), list(range(30000, 30000 + n)))
        self.assertEqual({(x["pp_server_addr"], x["pp_server_port"]) for x in lines}, {(lab.vip4, "80")})
        self.assertEqual({x["remote_addr"] for x in lines}, {lab.snat4[0]})
        self.assertEqual(self.log_since("plain", plain0), [])
        self.assertTrue(all(per.values()), per)

    def test_1_negative_control_without_proxy_protocol(self):
        """The same requests to a VIP without proxy_protocol: nginx's plain listener sees only the
        pool address, so the client's address reached the backend above only through the header."""
        lab, n = self.lab, 2000
        pp0, plain0 = self.log_offsets("pp"), self.log_offsets("plain")
        r = client(lab, "conns", lab.vip4, PLAIN_VIP_PORT, n, 16, 32000, timeout=300)
        self.assertEqual(r["fail"], 0, r)
        lines = self.log_since("plain", plain0)
        from_pool = [x for x in lines if x["remote_addr"] == lab.snat4[1]]
        print(f"  fullnat {lab.vip4}:{PLAIN_VIP_PORT} (no PROXY header): nginx logged {len(lines)}, "
              f"{len(from_pool)} from the pool address {lab.snat4[1]}, "
              f"{sum(1 for x in lines if lab.client4 in x.values())} with the client's address")
        self.assertEqual(len(lines), n)
        self.assertEqual(len(from_pool), n)
        self.assertEqual([x for x in lines if lab.client4 in x.values()], [])
        self.assertEqual({x["pp_addr"] for x in lines}, {"-"})
        self.assertEqual(self.log_since("pp", pp0), [])

    def test_2_ipv6_client_address(self):
        lab, n = self.lab, 500
        pp0 = self.log_offsets("pp")
        r = client(lab, "conns", lab.vip6, 80, n, 16, 15000, timeout=300)
        self.assertEqual(r["fail"], 0, r)
        lines = self.log_since("pp", pp0)
        print(f"  fullnat [{lab.vip6}]:80 (PROXY v2): nginx logged {len(lines)}, "
              f"{sum(1 for x in lines if x['pp_addr'] == lab.client6)} with the client's address")
        self.assertEqual(len(lines), n)
        self.assertEqual({x["pp_addr"] for x in lines}, {lab.client6})
        self.assertEqual(sorted(int(x["pp_port"]) for x in lines), list(range(15000, 15000 + n)))
        self.assertEqual({x["remote_addr"] for x in lines}, {lab.snat6[0]})

    def test_2_ipv6_clients_to_ipv4_backends(self):
        """An IPv6 VIP in front of IPv4 backends: every request completes, nginx on IPv4 learns
        each IPv6 client's address and port from the PROXY v2 header (the 52-byte IPv6 form), and
        its TCP peer is the IPv4 pool address."""
        lab, n = self.lab, 500
        pp0 = self.log_offsets("pp")
        s0 = self.stats()
        r = client(lab, "conns", lab.vip6, MIXED_VIP_PORT, n, 16, 16000, timeout=300)
        self.assertEqual(r["fail"], 0, r)
        lines = self.log_since("pp", pp0)
        s1 = self.stats()
        per = {b: sum(1 for x in lines if x["backend"] == b) for b in ("b1", "b2", "b3")}
        print(f"  fullnat [{lab.vip6}]:{MIXED_VIP_PORT} -> IPv4 backends (PROXY v2): nginx logged {len(lines)}, "
              f"{sum(1 for x in lines if x['pp_addr'] == lab.client6)} with the client's IPv6 address, from "
              f"{sorted({x['remote_addr'] for x in lines})}; per backend {per}")
        self.assertEqual(len(lines), n)
        self.assertEqual({x["pp_addr"] for x in lines}, {lab.client6})
        self.assertEqual(sorted(int(x["pp_port"]) for x in lines), list(range(16000, 16000 + n)))
        self.assertEqual({(x["pp_server_addr"], x["pp_server_port"]) for x in lines}, {(lab.vip6, str(MIXED_VIP_PORT))})
        self.assertEqual({x["remote_addr"] for x in lines}, {lab.snat4[4]})
        self.assertTrue(all(per.values()), per)
        self.assertEqual(counter(s1, "fullnat_xlate_dropped") - counter(s0, "fullnat_xlate_dropped"), 0)

    # -- b. 1 MiB transfers under loss and reordering -------------------------------------------
    def test_3_transfers_under_loss_and_reordering(self):
        lab = self.lab
        try:
            for i in range(lab.n):
                impair(lab, i, lab_nginx.PP_PORT)
            t0 = time.monotonic()
            res = {vip: client(lab, "blob", vip, 80, 12, timeout=180)["transfers"] for vip in (lab.vip4, lab.vip6)}
            dt = time.monotonic() - t0
            lost = sum(nft_counter(ns, "l4lbimpair", c) for ns in lab.ns_backends for c in ("lost_in", "lost_out"))
            slowed = sum(htb_sent(ns, f"{lab.prefix}b{i + 1}", "1:2") for i, ns in enumerate(lab.ns_backends))
        finally:
            for i in range(lab.n):
                unimpair(lab, i)
        good = {vip: sum(1 for t in ts if t.get("sha256") == BLOB_SHA256 and t.get("size") == lab_nginx.BLOB_SIZE)
                for vip, ts in res.items()}
        print(f"  fullnat: 2 x 12 transfers of 1 MiB under 2 % loss each way and 20 % reordering in {dt:.1f} s: "
              f"{lost} segments dropped, {slowed} sent late; SHA-256 correct: "
              + ", ".join(f"{v} {k}/12" for k, v in good.items()))
        for vip, ts in res.items():
            for t in ts:
                self.assertNotIn("error", t, f"{vip}: {t}")
                self.assertEqual((t["size"], t["sha256"]), (lab_nginx.BLOB_SIZE, BLOB_SHA256), f"{vip}: {t}")
        self.assertGreater(lost, 0, "no segment was dropped: the impairment was not in effect")
        self.assertGreater(slowed, 0, "no segment went through the slow class: nothing was reordered")

    # -- c. the first data segment lost once --------------------------------------------------
    def requests_with_drop(self, n, sport0, then):
        """n requests to the PROXY v2 VIP from source ports sport0.., each connection's first
        header-carrying segment (with `then` after the header, if given) dropped once at the
        backend; returns (client result, seconds, segments dropped, proxy_header_sent delta,
        nginx's lines)."""
        lab = self.lab
        pp0 = self.log_offsets("pp")
        s0 = self.stats()
        try:
            if then is not False:
                for ns in lab.ns_backends:
                    nft(lab, ns, "once", drop_first_header_segment(lab_nginx.PP_PORT, then))
            t0 = time.monotonic()
            r = client(lab, "conns", lab.vip4, 80, n, 8, sport0, timeout=120)
            dt = time.monotonic() - t0
            dropped = (sum(nft_counter(ns, "l4lbonce", "dropped") for ns in lab.ns_backends)
                       if then is not False else 0)
        finally:
            for ns in lab.ns_backends:
                sh("nft", "delete", "table", "inet", "l4lbonce", ns=ns, check=False)
        sent = counter(self.stats(), "proxy_header_sent") - counter(s0, "proxy_header_sent")
        lines = self.log_since("pp", pp0)
        self.assertEqual(r["fail"], 0, r)
        self.assertEqual(len(lines), n)
        self.assertEqual({x["pp_addr"] for x in lines}, {lab.client4})
        self.assertEqual(sorted(int(x["pp_port"]) for x in lines), list(range(sport0, sport0 + n)))
        return r, dt, dropped, sent, lines

    def test_4_first_data_segment_dropped_once(self):
        """Each connection loses, once, (1) its first segment with payload at the backend,
        whichever it is (the balancer may send the header on its own first), then in a second
        round (2) the segment that carries the client's request behind the header: the request
        completes, and the client's retransmission of its first bytes carries the header again."""
        n = 30
        _, dt0, _, base, _ = self.requests_with_drop(n, 34000, False)
        _, dt1, dropped1, sent1, _ = self.requests_with_drop(n, 34100, None)
        _, dt2, dropped2, sent2, _ = self.requests_with_drop(n, 34200, b"GET ")
        print(f"  fullnat: {n} requests each: no loss {dt0:.1f} s, proxy_header_sent +{base}; first segment with "
              f"payload dropped once: {dropped1} dropped, all completed in {dt1:.1f} s, proxy_header_sent "
              f"+{sent1}; the request's segment dropped once: {dropped2} dropped, all completed in {dt2:.1f} s, "
              f"proxy_header_sent +{sent2}")
        self.assertEqual(dropped1, n)  # every connection lost its first segment, and only that one
        self.assertEqual(dropped2, n)
        self.assertGreaterEqual(sent2, base + n)  # the retransmitted first bytes carried the header again

    # -- d. a server that speaks first --------------------------------------------------------
    def check_banners(self, conns, via):
        lab = self.lab
        for c in conns:
            self.assertIsNone(c["error"], c)
            words = c["banner"].split()
            self.assertEqual(words[0], "220", c)
            self.assertIn(words[1], ("b1", "b2", "b3"), c)
            self.assertEqual(words[2:5], ["client", lab.client4, str(c["local"][1])], c)
            self.assertEqual(words[5:7], ["via", via], c)
            self.assertEqual(c["bye"], f"221 {words[1]} bye", c)

    def test_5_server_speaks_first(self):
        lab, n = self.lab, 50
        r = client(lab, "banner", lab.vip4, BANNER_VIP_PORT, n, 8, timeout=120)["conns"]
        waits = sorted(c["s"] for c in r if c["s"] is not None)
        print(f"  fullnat: server-speaks-first, {n} connections: {sum(1 for c in r if not c['error'])} banners "
              f"naming the client; median wait {waits[len(waits) // 2] if waits else None} s")
        self.check_banners(r, lab.snat4[3])

    def test_5_server_speaks_first_header_lost_once(self):
        lab, n = self.lab, 20
        try:
            for ns in lab.ns_backends:
                nft(lab, ns, "once", drop_first_header_segment(8082))
            r = client(lab, "banner", lab.vip4, BANNER_VIP_PORT, n, 8, timeout=120)["conns"]
            dropped = sum(nft_counter(ns, "l4lbonce", "dropped") for ns in lab.ns_backends)
        finally:
            for ns in lab.ns_backends:
                sh("nft", "delete", "table", "inet", "l4lbonce", ns=ns, check=False)
        waits = sorted(c["s"] for c in r if c["s"] is not None)
        print(f"  fullnat: server-speaks-first with each header's first segment dropped once: "
              f"{sum(1 for c in r if not c['error'])} of {n} banners, {dropped} headers dropped, "
              f"waits {waits[0] if waits else None}..{waits[-1] if waits else None} s")
        self.assertEqual(dropped, n)
        self.check_banners(r, lab.snat4[3])

    # -- f. UDP -------------------------------------------------------------------------------
    def test_6_udp_request_reply(self):
        lab = self.lab
        for vip, n, sport0 in ((lab.vip4, 1000, 41000), (lab.vip6, 200, 43000)):
            t0 = time.monotonic()
            flows = client(lab, "udp", vip, 5353, n, sport0, timeout=600)["flows"]
            dt = time.monotonic() - t0
            ok = [f for f in flows if len(set(f["replies"])) == 1 and f["replies"][0] in ("b1", "b2", "b3")]
            per = {b: sum(1 for f in ok if f["replies"][0] == b) for b in ("b1", "b2", "b3")}
            print(f"  fullnat UDP {vip}: {n} flows x 3 requests in {dt:.1f} s: {len(ok)} flows with every reply "
                  f"back from one backend; {per}")
            self.assertEqual(sorted(f["sport"] for f in flows), list(range(sport0, sport0 + n)))
            self.assertEqual(len(ok), n, [f for f in flows if f not in ok][:5])
            self.assertTrue(all(per.values()), per)

    # -- e. a pool of 16 ports under 200 connections --------------------------------------------
    def test_7_pool_exhaustion(self):
        lab = self.lab
        s0 = self.stats()
        pp0 = self.log_offsets("pp")
        # 200 connections opened within 1 s, each held 2 s with 3 requests: at most 16 get a pair
        # (the quiet time keeps freed pairs out for 60 s); the others' SYNs are dropped.
        r = client(lab, "held", lab.vip4, POOL_VIP_PORT, 1.0, 200.0, 2.0, timeout=120)["connections"]
        s1 = self.stats()
        self.lb.check_alive()
        exhausted = counter(s1, "snat_exhausted") - counter(s0, "snat_exhausted")
        done = [c for c in r if c["replies"] == 3 and not c["error"]]
        broken = [c for c in r if c["replies"] and c not in done]
        never = [c for c in r if not c["replies"]]
        print(f"  fullnat pool of 16 ports, {len(r)} connections: {len(done)} established and completed, "
              f"{len(broken)} broken after establishing, {len(never)} never established; "
              f"snat_exhausted +{exhausted}")
        self.assertGreater(exhausted, 0)
        self.assertEqual(broken, [])
        self.assertGreater(len(done), 0)
        self.assertLessEqual(len(done), POOL_PORTS[1] - POOL_PORTS[0] + 1)
        # Another VIP's pool is untouched by this one's exhaustion.
        after = client(lab, "conns", lab.vip4, 80, 200, 16)
        self.assertEqual(after["fail"], 0, after)
        self.assertEqual(len(self.log_since("pp", pp0)), 200)
        self.lb.check_alive()


if __name__ == "__main__":
    unittest.main()
