"""The lab end to end: real TCP/UDP clients and servers in network namespaces,
through l4lb on net_af_xdp ports, in both topologies. Shares, detection times and transfer
results are printed (the closing note quotes them)."""
import json
import os
import re
import subprocess
import threading
import time
import unittest

from e2e_common import Balancer, BalancerConfig, assert_transfers_complete, client, new_lab, start_balancer, sh

HEALTH = {"type": "http", "interval_ms": 500, "timeout_ms": 400, "rise": 2, "fall": 2,
          "max_latency_ms": 300, "jitter_pct": 10}
DETECT_BOUND = 2 * 0.5 + 0.4 + 0.5  # fall x interval + timeout + 0.5 s (test_3_failover*)
HERE = os.path.dirname(os.path.abspath(__file__))


def shares(backends, n):
    return {b: backends.get(b, 0) / n for b in ("b1", "b2", "b3")}


def sniff(ns, iface, seconds, bpf):
    """Starts scapy in namespace `ns` capturing on `iface`; returns a function that waits and
    returns the captured frames as hex strings."""
    code = ("import sys,json\nfrom scapy.all import sniff\n"
            f"p = sniff(iface={iface!r}, timeout={seconds}, filter={bpf!r})\n"
            "print(json.dumps([bytes(x).hex() for x in p]))\n")
    proc = subprocess.Popen(["ip", "netns", "exec", ns, "/usr/bin/python3", "-c", code],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)  # scapy import and socket setup

    def result():
        out, err = proc.communicate(timeout=seconds + 30)
        if proc.returncode != 0:
            raise AssertionError(f"sniffer failed: {err}")
        return [bytes.fromhex(h) for h in json.loads(out)]
    return result


class LabCase(unittest.TestCase):
    topology = "nat"
    ipv6 = True
    backends = 3
    config_kw = {}

    @classmethod
    def setUpClass(cls):
        cls.lab = new_lab(cls.topology, ipv6=cls.ipv6, backends=cls.backends)
        text = BalancerConfig(health=HEALTH, **cls.config_kw).toml(cls.lab)
        cls.lb = start_balancer(cls.lab, text, len(text.split("[[vips.backends]]")) - 1)

    @classmethod
    def tearDownClass(cls):
        try:
            cls.lb.stop()
        finally:
            cls.lb.kill()
            cls.lab.down()

    # -- shared checks ----------------------------------------------------------------------
    def check_distribution(self, vip, n=10000):
        # Source ports 20000.. (IPv4) or 10000.. (IPv6; a dual-stack bind would collide with the
        # IPv4 test's sockets still in TIME_WAIT), below the ephemeral range: n distinct flows.
        # With the kernel's own choice, a port may be reused while its earlier flow is still in
        # l4lb's flow table, and such connections are not independent draws.
        t0 = time.monotonic()
        r = client(self.lab, "conns", vip, 80, n, 16, 10000 if ":" in vip else 20000, timeout=300)
        dt = time.monotonic() - t0
        self.assertEqual(r["fail"], 0, r)
        s = shares(r["backends"], n)
        print(f"  {self.topology} {vip}: {n} connections in {dt:.1f} s: "
              + ", ".join(f"{b} {v:.2%}" for b, v in s.items()) + " (weights 1:2:3)")
        for b, w in (("b1", 1), ("b2", 2), ("b3", 3)):
            self.assertAlmostEqual(s[b], w / 6, delta=0.02, msg=f"{b}: {s}")

    def check_failover(self, vip, idx=1):
        lab, lb = self.lab, self.lb
        result = {}
        th = threading.Thread(target=lambda: result.update(client(lab, "stream", vip, 80, 6.0, 100)))
        th.start()
        time.sleep(1.0)
        pos = lb.log_size()
        killed = time.time()
        t_kill = time.monotonic()
        lab.stop_server(idx)
        addr = lab.backend4[idx] if ":" not in vip else lab.backend6[idx]
        try:
            m, seen = lb.wait_log(re.escape(f"health {vip}/80/tcp|{addr}:0: up -> down (") + r"([^)]*)\)", pos,
                                  timeout=10)
            detect = seen - t_kill
            # In force: l4lb logs the backend's state change once every worker has the new table.
            vip_name = vip if ":" not in vip else f"[{vip}]"
            _, applied = lb.wait_log(re.escape(f"backend {addr} of VIP {vip_name}:80/tcp: healthy -> unhealthy"), pos,
                                     timeout=5)
            applied_at = time.time() - (time.monotonic() - applied)
            th.join()
            reqs = result["requests"]
            after = [q for q in reqs if q["t"] >= applied_at]
            window = [q for q in reqs if killed <= q["t"] < applied_at]
            bad_after = [q for q in after if q["error"]]
            print(f"  {self.topology} {vip}: b{idx + 1} killed, marked down after {detect:.2f} s ({m.group(1)}), "
                  f"in force after {applied - t_kill:.2f} s; {sum(1 for q in window if q['error'])}/{len(window)} "
                  f"failed before, {len(bad_after)}/{len(after)} after")
            self.assertLessEqual(detect, DETECT_BOUND)
            self.assertEqual(bad_after, [])
            self.assertGreater(len(after), 200)
        finally:
            th.join()
            pos = lb.log_size()
            t_back = time.monotonic()
            lab.start_server(idx)  # whatever happened: later tests need every backend
        m, seen = lb.wait_log(re.escape(f"health {vip}/80/tcp|{addr}:0: down -> up ("), pos, timeout=15)
        print(f"  {self.topology} {vip}: b{idx + 1} restarted, back up after {seen - t_back:.2f} s (rise 2)")
        # rise = 2 checks after the server is back: at least one interval, at most
        # rise x interval x 1.1 + timeout + the server's start-up.
        self.assertGreaterEqual(seen - t_back, 0.45)
        self.assertLessEqual(seen - t_back, 2 * 0.55 + 0.4 + 1.5)
        # Every check of the restarted backend (TCP and UDP, both families) is up again before
        # the next test, so the next test sees the whole pool.
        for k in (f"{lab.vip4}/80/tcp|{lab.backend4[idx]}:0", f"{lab.vip4}/5353/udp|{lab.backend4[idx]}:0") + (
                (f"{lab.vip6}/80/tcp|{lab.backend6[idx]}:0", f"{lab.vip6}/5353/udp|{lab.backend6[idx]}:0")
                if lab.ipv6 else ()):
            last = re.findall(re.escape(f"health {k}: ") + r"\S+ -> (\S+)", lb.log())
            if last and last[-1] == "down":
                lb.wait_log(re.escape(f"health {k}: down -> up ("), pos, timeout=10)
        r = client(lab, "conns", vip, 80, 300, 16)
        self.assertEqual(r["fail"], 0, r)
        self.assertIn(f"b{idx + 1}", r["backends"])

    def check_established_survive(self, reloads=100):
        """Long transfers (b1..b3) complete byte for byte while b4 is added and removed,
        weights change and the config is reloaded `reloads` times."""
        lab, lb = self.lab, self.lb
        size, rate = 6 << 20, 1 << 20  # 6 MiB at 1 MiB/s: 6 s each, long enough for the reloads
        for i in range(3):
            lab.set_knob(i, "blob", size)
            lab.set_knob(i, "rate", rate)
        base = dict(health=HEALTH, **self.config_kw)
        # b4 (when the lab has it) appears and disappears; the transfers started without it.
        configs = [BalancerConfig(weights=(1, 2, 3), backends=3, **base).toml(lab),
                   BalancerConfig(weights=(3, 2, 1, 1), **base).toml(lab),
                   BalancerConfig(weights=(2, 2, 2), backends=3, **base).toml(lab)]
        result = {}
        th = threading.Thread(target=lambda: result.update(client(lab, "blob", lab.vip4, 80, 9, timeout=120)))
        th.start()
        time.sleep(0.8)
        t0 = time.monotonic()
        for k in range(reloads):
            pos = lb.reload(configs[(k + 1) % len(configs)])
            lb.wait_log(r"reload (applied|rejected|refused)", pos, timeout=10)
        dt = time.monotonic() - t0
        th.join()
        for i in range(3):
            lab.set_knob(i, "rate", None)
        expect = __import__("hashlib").sha256(bytes((i * 7 + 3) & 0xFF for i in range(65536)) * (size // 65536)).hexdigest()
        transfers = result["transfers"]
        print(f"  {self.topology}: {reloads} reloads in {dt:.1f} s during 9 transfers of {size >> 20} MiB: "
              + ", ".join(f"{t.get('backend')}:{'ok' if t.get('sha256') == expect else t}" for t in transfers))
        self.assertEqual(len(re.findall(r"reload applied", lb.log())) >= reloads, True)
        for t in transfers:
            self.assertNotIn("error", t, t)
            self.assertEqual(t["size"], size, t)
            self.assertEqual(t["sha256"], expect, t)
        lb.reload(configs[0])


class NatLab(LabCase):
    topology = "nat"
    backends = 4
    config_kw = {"udp": True}

    @classmethod
    def setUpClass(cls):
        cls.lab = new_lab("nat", ipv6=True, backends=4)
        cfg = BalancerConfig(health=HEALTH, udp=True, backends=3).toml(cls.lab)  # b4: only in the reload test
        cls.lb = start_balancer(cls.lab, cfg, len(cfg.split("[[vips.backends]]")) - 1)

    def test_1_distribution_ipv4(self):
        self.check_distribution(self.lab.vip4)

    def test_8_distribution_ipv6(self):
        self.check_distribution(self.lab.vip6)

    def test_3_failover_ipv4(self):
        self.check_failover(self.lab.vip4, 1)

    def test_8_failover_ipv6(self):
        self.check_failover(self.lab.vip6, 2)

    def test_5_established_flows_survive_100_reloads(self):
        self.check_established_survive(100)

    def test_7_udp_request_response(self):
        for vip in (self.lab.vip4, self.lab.vip6):
            u = client(self.lab, "udp", vip, 5353, 60)
            per_backend = {}
            for f in u["flows"]:
                self.assertEqual(len(set(f["replies"])), 1, f)  # every reply of a flow from one backend
                self.assertIn(f["replies"][0], ("b1", "b2", "b3"), f)
                per_backend[f["replies"][0]] = per_backend.get(f["replies"][0], 0) + 1
            print(f"  nat UDP {vip}: 60 flows x 3 requests: {per_backend}")
            self.assertEqual(set(per_backend), {"b1", "b2", "b3"})

    def test_10_edge_behaviour(self):
        lab = self.lab
        p = sh("ping", "-c", "3", "-i", "0.2", "-W", "1", lab.vip4, ns=lab.ns_client, capture=True, check=False)
        self.assertIn("3 received", p)
        p = sh("ping", "-c", "3", "-i", "0.2", "-W", "1", lab.vip6, ns=lab.ns_client, capture=True, check=False)
        self.assertIn("3 received", p)
        # ARP for the VIP answered with the balancer's MAC; a scan of the VIP's other ports and
        # traffic to a non-VIP address reach no backend and get no answer.
        wan_mac = lab.lb_mac(lab.wan_if)
        caps = [sniff(ns, f"{lab.prefix}b{i + 1}", 6, "not arp and not icmp6 and not (tcp port 80) and not (udp port 5353)")
                for i, ns in enumerate(lab.ns_backends)]
        code = f"""
import json
from scapy.all import ARP, Ether, IP, TCP, UDP, conf, srp, sr
conf.verb = 0
iface = {lab.prefix + 'c0'!r}
a, _ = srp(Ether(dst="ff:ff:ff:ff:ff:ff") / ARP(pdst={lab.vip4!r}), iface=iface, timeout=2)
arp = [r.hwsrc for _, r in a]
ports = [p for p in range(1, 1025) if p != 80]
scan, _ = sr(IP(dst={lab.vip4!r}) / TCP(sport=40000, dport=ports, flags="S"), timeout=2, iface=iface)
udp, _ = sr(IP(dst={lab.vip4!r}) / UDP(sport=40001, dport=[53, 123, 161, 5354]), timeout=1, iface=iface)
other, _ = sr(IP(dst="198.18.20.101") / TCP(sport=40002, dport=80, flags="S"), timeout=1, iface=iface)
print(json.dumps({{"arp": arp, "scan": len(scan), "udp": len(udp), "other": len(other)}}))
"""
        out = json.loads(sh("/usr/bin/python3", "-c", code, ns=lab.ns_client, capture=True))
        print(f"  nat edge: ARP for VIP -> {out['arp']}; answers to 1023 scanned TCP ports: {out['scan']}, "
              f"UDP ports: {out['udp']}, non-VIP address: {out['other']}")
        self.assertEqual(out["arp"], [wan_mac])
        self.assertEqual(out["scan"], 0)
        self.assertEqual(out["udp"], 0)
        self.assertEqual(out["other"], 0)
        for i, cap in enumerate(caps):
            got = cap()
            self.assertEqual(got, [], f"b{i + 1} received {len(got)} frames that were not its service traffic")


class DsrLab(LabCase):
    topology = "dsr"
    ipv6 = False
    config_kw = {"udp": False}

    def test_1_distribution(self):
        self.check_distribution(self.lab.vip4)

    def test_3_failover(self):
        self.check_failover(self.lab.vip4, 0)

    def test_5_established_flows_survive_100_reloads(self):
        self.check_established_survive(100)


class Stickiness(unittest.TestCase):
    def test_2_source_hash(self):
        lab = new_lab("nat")
        lb = start_balancer(lab, BalancerConfig(health=HEALTH, udp=False, scheduler="source_hash").toml(lab), 3)
        try:
            srcs = lab.extra_clients(30)
            r = client(lab, "sticky", lab.vip4, 80, 10, *srcs)["sources"]
            per = {s: list(v) for s, v in r.items()}
            for s, seen in r.items():
                self.assertEqual(len(seen), 1, f"{s}: {seen}")  # one backend for every connection
                self.assertIn(next(iter(seen)), ("b1", "b2", "b3"), seen)
            spread = {}
            for s, seen in per.items():
                spread[seen[0]] = spread.get(seen[0], 0) + 1
            print(f"  source_hash: 30 clients x 10 connections, clients per backend: {spread}")
            self.assertEqual(set(spread), {"b1", "b2", "b3"})
        finally:
            lb.kill()
            lab.down()


class Drain(unittest.TestCase):
    def test_6_drained_backend_finishes_its_transfer(self):
        lab = new_lab("nat")
        cfg = BalancerConfig(health=HEALTH, udp=False, weights=(1, 1, 1)).toml(lab)
        lb = start_balancer(lab, cfg, 3)
        try:
            size = 4 << 20
            for i in range(3):
                lab.set_knob(i, "blob", size)
                lab.set_knob(i, "rate", 1 << 20)
            result = {}
            # 16 transfers over 3 equal backends: all miss b2 with probability (2/3)^16 = 0.15 %.
            th = threading.Thread(target=lambda: result.update(client(lab, "blob", lab.vip4, 80, 16, timeout=60)))
            th.start()
            time.sleep(0.7)
            # Drain b2 (weight 0 in the file; l4lbctl drain does the same at run time).
            pos = lb.reload(BalancerConfig(health=HEALTH, udp=False, weights=(1, 0, 1)).toml(lab))
            lb.wait_log(r"reload applied", pos)
            lb.wait_log(re.escape(f"backend {lab.backend4[1]} of VIP {lab.vip4}:80/tcp: healthy -> draining"), pos)
            r = client(lab, "conns", lab.vip4, 80, 300, 16)
            self.assertEqual(r["fail"], 0, r)
            self.assertNotIn("b2", r["backends"])
            th.join()
            on_b2 = [t for t in result["transfers"] if t.get("backend") == "b2"]
            print(f"  drain: {len(on_b2)} transfers on b2 when drained; new connections after: {r['backends']}")
            assert_transfers_complete(self, result, size, on_b2)
        finally:
            lb.kill()
            lab.down()


class Tunnels(unittest.TestCase):
    """ipip and gue leave the balancer toward the backends; this kernel has no IPIP/FOU module,
    so the frames are captured on the backends' side and decoded by scapy."""

    def test_9_ipip_decoded(self):
        self.check_tunnel("ipip")

    def test_9_gue_decoded(self):
        self.check_tunnel("gue")

    def check_tunnel(self, mode):
        lab = new_lab("dsr")
        try:
            lb = Balancer(lab, BalancerConfig(health={"type": "none"}, udp=False, forwarding=mode,
                                              file_prefix=f"l4lb_lab_{lab.prefix}_{mode}").toml(lab))
            try:
                lb.start()
                cap = sniff(lab.ns_backends[2], f"{lab.prefix}b3", 5,
                            "ip proto 4" if mode == "ipip" else "udp dst port 6080")
                # 300 SYNs of 300 flows (no answers: the backends cannot decapsulate).
                sh("timeout", "60", "/usr/bin/python3", "-c", "from scapy.all import IP, TCP, send; "
                   f"send(IP(dst={lab.vip4!r}) / TCP(sport=(20000, 20299), dport=80, flags='S'), verbose=0)",
                   ns=lab.ns_client)
                frames = cap()
                lb.stop()
            finally:
                lb.kill()
            code = """
import sys, json
from scapy.all import Ether, IP, TCP, UDP
out = []
for h in json.load(sys.stdin):
    e = Ether(bytes.fromhex(h))
    ip = e[IP]
    if ip.proto == 4:
        inner = ip.payload
    else:
        inner = IP(bytes(ip[UDP].payload))
    chk = inner[TCP].chksum
    inner2 = IP(bytes(inner)); del inner2[TCP].chksum; del inner2.chksum
    ok = IP(bytes(inner2))[TCP].chksum == chk
    out.append({"outer_src": ip.src, "outer_dst": ip.dst, "proto": ip.proto, "ttl": ip.ttl,
                "inner_dst": inner.dst, "inner_dport": inner[TCP].dport, "inner_csum_ok": ok,
                "inner_src": inner.src})
print(json.dumps(out))
"""
            decoded = json.loads(subprocess.run(["/usr/bin/python3", "-c", code], input=json.dumps([f.hex() for f in frames]),
                                                capture_output=True, text=True, check=True).stdout)
            print(f"  {mode}: {len(decoded)} frames to b3 captured; first: {decoded[:1]}")
            self.assertGreater(len(decoded), 100)  # weight 3 of 6: about 150 of the 300 flows
            for d in decoded:
                self.assertEqual(d["outer_src"], lab.lb_lan4)
                self.assertEqual(d["outer_dst"], lab.backend4[2])
                self.assertEqual(d["proto"], 4 if mode == "ipip" else 17)
                self.assertEqual(d["inner_dst"], lab.vip4)
                self.assertEqual(d["inner_src"], lab.client4)
                self.assertEqual(d["inner_dport"], 80)
                self.assertTrue(d["inner_csum_ok"], d)
        finally:
            lab.down()


if __name__ == "__main__":
    unittest.main()
