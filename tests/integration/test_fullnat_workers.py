"""Full NAT with two workers through the real daemon: a backend's reply that reaches the worker
which does not hold the flow's session is handed to the owner and translated back to the client.

net_pcap ports have no RSS, so no pair is steered (fullnat_unsteered) and where each frame is
received is set by its queue: the client port's queue 0 (worker 0) carries every client's SYN,
so worker 0 opens every session, on the pairs it owns (the even offsets of the range); the
server port's queue 1 (worker 1) carries a reply from the backend to every pair of the range.
Worker 1 hands the replies to worker 0's pairs over worker 0's ring and drops the others
(fullnat_no_session: no flow uses them). Worker 0 takes its RX bursts before its ring in every
loop, and its first burst holds every SYN, so a handed-off reply never comes before its session.
"""

import ipaddress
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from scapy.all import IP, TCP, Ether  # noqa: E402

import fwd_common as fc  # noqa: E402
from l4lb_harness import Port, run_daemon  # noqa: E402

VIP, VPORT = "198.18.1.30", 80
BACKEND, BMAC, BPORT = "198.18.2.40", "02:00:00:00:04:40", 8080
SNAT, LO, HI = "198.18.2.210", 24000, 24015  # worker 0 owns LO, LO + 2, ...
NFLOWS = 8                                   # one per pair worker 0 owns
ISN, BISN = 1000, 7000


def body():
    v = fc.Vip("w2", VIP, VPORT, "tcp", "fullnat", [fc.Backend(BACKEND, BMAC, 1, BPORT)],
               extra=(f"snat_addresses = [{fc.toml_str(SNAT)}]", f'snat_ports = "{LO}-{HI}"'))
    return fc.NEIGHBOURS_TOML + "\n" + v.toml()


def client(k):
    return fc.client_addr(4, 700 + k), 30000 + k


def syn(k):
    c, sport = client(k)
    ip = IP(src=c, dst=VIP, id=k + 1, ttl=64) / TCP(sport=sport, dport=VPORT, flags="S", seq=ISN)
    return fc.frame_of(bytes(ip), 4, fc.GW4_MAC, fc.CLIENT_MAC)


def reply_ip(port):
    return bytes(IP(src=BACKEND, dst=SNAT, id=100 + port - LO, ttl=64) /
                 TCP(sport=BPORT, dport=port, flags="SA", seq=BISN, ack=ISN + 1))


def back_to_client(ip_bytes, c, cport):
    """The reply as full NAT must send it: from the VIP to the client, TTL - 1, checksums anew."""
    pkt = IP(ip_bytes)
    pkt.src, pkt.dst, pkt.ttl = VIP, c, pkt.ttl - 1
    pkt[TCP].sport, pkt[TCP].dport = VPORT, cport
    del pkt.chksum
    del pkt[TCP].chksum
    return bytes(IP(bytes(pkt)))


class FullNatTwoWorkers(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        ports = fc.two_arm_ports([], [])
        ports[0] = Port(**{**ports[0].__dict__, "rx_queues": [[syn(k) for k in range(NFLOWS)], []]})
        ports[1] = Port(**{**ports[1].__dict__,
                           "rx_queues": [[], [fc.frame_of(reply_ip(p), 4, BMAC, fc.SERVER_MAC)
                                              for p in range(LO, HI + 1)]]})
        cls.res = run_daemon(ports, body(), expect_tx=2 * NFLOWS, workers=2)

    def test_every_reply_reaches_its_client(self):
        # The pair of each flow, from the SYNs that left toward the backend (IP ID: the client).
        pair = {}
        for fr in self.res.out["server"]:
            ip = Ether(fr)[IP]
            self.assertEqual((ip.src, ip.dst, ip[TCP].dport), (SNAT, BACKEND, BPORT))
            pair[ip.id - 1] = ip[TCP].sport
        self.assertEqual(sorted(pair), list(range(NFLOWS)))
        self.assertEqual(sorted(pair.values()), list(range(LO, HI + 1, 2)), "worker 0's own pairs")
        got = {}
        for fr in self.res.out["client"]:
            e = Ether(fr)
            self.assertEqual((e.src, e.dst), (fc.CLIENT_MAC, fc.GW4_MAC))
            got[e[IP].id] = bytes(e[IP])
        self.assertEqual(len(got), NFLOWS)
        for k in range(NFLOWS):
            with self.subTest(flow=k):
                port = pair[k]
                c, cport = client(k)
                self.assertIn(100 + port - LO, got, f"the reply to {SNAT}:{port} did not come back")
                self.assertEqual(got[100 + port - LO], back_to_client(reply_ip(port), c, cport))

    def test_counters(self):
        c = self.res.counters
        self.assertEqual(c.get("fullnat_new"), NFLOWS)
        self.assertEqual(c.get("fullnat_unsteered"), NFLOWS)  # net_pcap: no RSS to steer by
        self.assertEqual(c.get("fullnat_handed_off"), NFLOWS)
        self.assertEqual(c.get("fullnat_reverse"), NFLOWS)
        self.assertEqual(self.res.nonzero_drops(), {"fullnat_no_session": HI - LO + 1 - NFLOWS})
        self.assertIn("full NAT: replies steered to their worker by RSS on 0 of 2 ports", self.res.stderr)
        # The handed-off replies were sent by worker 0 (its TX queue), the one holding the sessions.
        w = self.res.stats["workers"]
        self.assertEqual(w[0]["counters"]["fullnat_reverse"], NFLOWS)
        self.assertEqual(w[1]["counters"]["fullnat_handed_off"], NFLOWS)


if __name__ == "__main__":
    unittest.main()
