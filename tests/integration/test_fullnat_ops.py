"""Full NAT as an operator sees it, on the real daemon (net_pcap ports, test_ctl's harness).

Five client SYNs go to a fullnat VIP with one source address (ports 2000-2099, one worker)
and proxy_protocol = "v2". Then:
- `l4lbctl stats`, /metrics and the status page report that address's ports: 5 in use, 95 free, 0 quiet (the
  worker publishes its counts once a second: polled for a few seconds);
- `l4lbctl explain` names, for each client flow, the source pair its SYN actually left from
  (read from the forwarded frame, matched to the client by the SYN's sequence number, which
  full NAT keeps) and "proxy v2: on".
"""

import os
import time
import unittest

from scapy.all import Ether, IP, TCP

import l4lb_harness as h
from test_ctl import CLIENT, CLIENT_MAC, GW_MAC, VIP, Daemon, ctl, ctl_json, scrape

SNAT = "198.18.2.2"
BACKEND = ("198.18.2.11", "02:00:00:00:01:11")
NFLOWS = 5

BODY = f"""
[[neighbours]]
address = "198.18.0.254"
mac = "{GW_MAC}"

[[vips]]
name = "app"
address = "{VIP}"
port = 80
protocol = "tcp"
forwarding = "fullnat"
snat_addresses = ["{SNAT}"]
snat_ports = "2000-2099"
proxy_protocol = "v2"

[[vips.backends]]
address = "{BACKEND[0]}"
port = 8080
mac = "{BACKEND[1]}"
"""


class FullNatDaemon(Daemon):
    """test_ctl's daemon with the fullnat VIP above instead of its DSR one."""

    def config_text(self, body):
        return super().config_text(BODY)


def syn(i):
    return Ether(src=GW_MAC, dst=CLIENT_MAC) / IP(src=CLIENT, dst=VIP) / TCP(sport=30000 + i, dport=80, flags="S",
                                                                            seq=1000 + i)


class FullNatOpsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = FullNatDaemon([syn(i) for i in range(NFLOWS)])
        cls.frames = h.wait_for_pcap(os.path.join(cls.d.tmp, "server.out.pcap"), NFLOWS)

    @classmethod
    def tearDownClass(cls):
        cls.d.finish()

    def test_frames_left_from_the_source_address(self):
        self.assertEqual(len(self.frames), NFLOWS)
        for f in self.frames:
            p = Ether(f)
            self.assertEqual((p[IP].src, p[IP].dst, p[TCP].dport), (SNAT, BACKEND[0], 8080))

    def wait_pool(self, want):
        deadline = time.monotonic() + 5
        while True:
            s = ctl_json(self.d, "stats")
            if s["snat"] == want or time.monotonic() > deadline:
                return s
            time.sleep(0.2)

    def test_stats_and_metrics_count_the_pool(self):
        want = [{"address": SNAT, "in_use": NFLOWS, "free": 100 - NFLOWS, "quiet": 0}]
        s = self.wait_pool(want)
        self.assertEqual(s["snat"], want)
        rc, out, _ = ctl(self.d, "stats")
        self.assertEqual(rc, 0)
        self.assertRegex(out, rf"snat ports:\n  ADDRESS\s+IN_USE\s+FREE\s+QUIET\n  {SNAT}\s+{NFLOWS}\s+{100 - NFLOWS}\s+0\n")
        _, _, body = scrape(self.d.metrics_port)
        for state, n in (("in_use", NFLOWS), ("free", 100 - NFLOWS), ("quiet", 0)):
            self.assertIn(f'l4lb_snat_ports{{address="{SNAT}",state="{state}"}} {n}\n', body)
        # The status page's table.
        _, _, page = scrape(self.d.metrics_port, "/")
        self.assertIn('<table id="snat">', page)
        self.assertIn(f'<tr><td>{SNAT}<td class="n">{NFLOWS}<td class="n">{100 - NFLOWS}<td class="n">0\n', page)

    def test_explain_names_the_pair_each_flow_uses(self):
        by_seq = {Ether(f)[TCP].seq: Ether(f)[TCP].sport for f in self.frames}
        self.assertEqual(sorted(by_seq), [1000 + i for i in range(NFLOWS)])
        for i in range(NFLOWS):
            r = ctl_json(self.d, "explain", "tcp", f"{CLIENT}:{30000 + i}", f"{VIP}:80")
            self.assertEqual(r["fullnat"], {"proxy_v2": True, "source": f"{SNAT}:{by_seq[1000 + i]}", "worker": 0})
        rc, out, _ = ctl(self.d, "explain", "tcp", f"{CLIENT}:30000", f"{VIP}:80")
        self.assertEqual(rc, 0)
        self.assertIn(f"\nsnat:       {SNAT}:{by_seq[1000]} (worker 0)\nproxy v2:   on\n", out)
        # A flow nobody sent: no pair yet.
        r = ctl_json(self.d, "explain", "tcp", f"{CLIENT}:39999", f"{VIP}:80")
        self.assertEqual(r["fullnat"], {"proxy_v2": True, "source": None, "worker": None})


if __name__ == "__main__":
    unittest.main()
