"""The balancer's edge through the real daemon (src/dataplane/slow_path.cc): ARP replies, IPv6
neighbour advertisements and echo replies for VIP addresses, and ICMP errors about a VIP flow
(fragmentation needed, packet too big, time exceeded) reaching that flow's backend in dsr, ipip,
gue and nat. One daemon run on net_pcap ports (no exception path: these ports have no kernel
side); every output frame is compared byte for byte with one built by scapy.

A second run checks which errors are forwarded (src/dataplane/slow_path.h): valid ones to their
flow's backend (Maglev with several backends, round robin with a known flow, MTUs at the
minimum), refusals counted by name (an unknown round-robin flow, MTUs below 576 / 1280), and a
burst of valid errors cut by a small [icmp] token bucket.
"""

import collections
import os
import socket
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from scapy.all import (ARP, ICMP, ICMPv6EchoReply, ICMPv6EchoRequest, ICMPv6ND_NA, ICMPv6ND_NS,  # noqa: E402
                       ICMPv6NDOptDstLLAddr, ICMPv6NDOptSrcLLAddr, ICMPv6PacketTooBig, ICMPv6TimeExceeded, IP,
                       IPv6, TCP, UDP, Ether, Raw)
from scapy.layers.inet6 import in6_chksum  # noqa: E402
from scapy.pton_ntop import inet_ntop, inet_pton  # noqa: E402
from scapy.utils import checksum  # noqa: E402
from scapy.utils6 import in6_getnsma, in6_getnsmac  # noqa: E402

import fwd_common as fc  # noqa: E402
from l4lb_harness import run_daemon, shared_run  # noqa: E402

ROUTER4, ROUTER6 = "198.18.0.9", "2001:db8::9"  # routers on the client side of the path
CLIENT4, CLIENT6 = "198.19.7.1", "2001:db8:100::7"
CPORT = 40000
PMTU4, PMTU6 = 1400, 1280

# One backend per VIP, so the backend of every flow is known.
VIPS = collections.OrderedDict((v.key, v) for v in [
    fc.Vip("dsr4", "198.18.1.10", 80, "tcp", "dsr", [fc.Backend("198.18.2.11", "02:00:00:00:0b:11")]),
    fc.Vip("ipip4", "198.18.1.20", 80, "tcp", "ipip", [fc.Backend("198.18.2.21", "02:00:00:00:0b:21")]),
    fc.Vip("gue4", "198.18.1.40", 80, "tcp", "gue", [fc.Backend("198.18.2.41", "02:00:00:00:0b:41")]),
    fc.Vip("nat4", "198.18.1.30", 80, "tcp", "nat", [fc.Backend("198.18.2.31", "02:00:00:00:0b:31", port=8080)]),
    fc.Vip("dsr6", "2001:db8:1::10", 53, "udp", "dsr", [fc.Backend("2001:db8:2::11", "02:00:00:00:0b:61")]),
    fc.Vip("ipip6", "2001:db8:1::20", 53, "udp", "ipip", [fc.Backend("2001:db8:2::21", "02:00:00:00:0b:62")]),
    fc.Vip("nat6", "2001:db8:1::30", 53, "udp", "nat", [fc.Backend("2001:db8:2::31", "02:00:00:00:0b:63", port=5353)]),
])
BACKEND_PORT = {"nat4": 8080, "nat6": 5353}


def client_eth(family):
    # The ethertype is explicit: the frames are assembled from bytes, and scapy's default for an
    # Ethernet header with no payload is not IP.
    if family == 4:
        return Ether(src=fc.GW4_MAC, dst=fc.CLIENT_MAC, type=fc.ETH_IPV4)
    return Ether(src=fc.GW6_MAC, dst=fc.CLIENT_MAC, type=fc.ETH_IPV6)


def data_packet(vip):
    """The client's first packet of the flow the ICMP errors are about."""
    if vip.family == 4:
        return bytes(IP(src=CLIENT4, dst=vip.addr, flags="DF") / TCP(sport=CPORT, dport=vip.port, flags="S")
                     / Raw(fc.marker(0)))
    return bytes(IPv6(src=CLIENT6, dst=vip.addr) / UDP(sport=CPORT, dport=vip.port) / Raw(fc.marker(0)))


def quoted(vip, src=None, sport=None):
    """What the VIP's side sent to the client (VIP:port -> client:CPORT), as an error quotes it;
    with src/sport: the same packet as the backend sent it (NAT's other side)."""
    if vip.family == 4:
        return bytes(IP(src=src or vip.addr, dst=CLIENT4, flags="DF", id=0x4242)
                     / TCP(sport=sport or vip.port, dport=CPORT, flags="SA", seq=5000, ack=1001) / Raw(b"r" * 60))
    return bytes(IPv6(src=src or vip.addr, dst=CLIENT6) / UDP(sport=sport or vip.port, dport=CPORT) / Raw(b"r" * 30))


def icmp_error(vip, quote, kind, dst=None, hlim=64):
    """ICMP error from a router to `dst` (the VIP), quoting `quote`. kind: "pmtu" (IPv4 type 3
    code 4 / ICMPv6 packet too big) or "ttl" (time exceeded)."""
    dst = dst or vip.addr
    if vip.family == 4:
        icmp = ICMP(type=3, code=4, nexthopmtu=PMTU4) if kind == "pmtu" else ICMP(type=11, code=0)
        return bytes(IP(src=ROUTER4, dst=dst, ttl=hlim) / icmp / Raw(quote))
    icmp = ICMPv6PacketTooBig(mtu=PMTU6) if kind == "pmtu" else ICMPv6TimeExceeded(code=0)
    return bytes(IPv6(src=ROUTER6, dst=dst, hlim=hlim) / icmp / Raw(quote))


class EdgeRun:
    def __init__(self):
        frames = []
        self.replies = []   # (name, input frame, expected output frame on port client)
        self.errors = []    # (name, vip, input IP packet, quote length or None)

        def add(fr):
            fr = bytes(fr)
            if len(fr) < fc.MIN_FRAME:
                fr += b"\x00" * (fc.MIN_FRAME - len(fr))
            frames.append(fr)
            return fr

        dsr4, dsr6 = VIPS["dsr4"], VIPS["dsr6"]
        # ARP: who has the VIP? (RFC 826) -> the VIP is at the receiving port's MAC.
        add(Ether(src=fc.GW4_MAC, dst="ff:ff:ff:ff:ff:ff")
            / ARP(op=1, hwsrc=fc.GW4_MAC, psrc=fc.GW4, hwdst="00:00:00:00:00:00", pdst=dsr4.addr))
        self.replies.append(("arp", bytes(Ether(src=fc.CLIENT_MAC, dst=fc.GW4_MAC)
                                          / ARP(op=2, hwsrc=fc.CLIENT_MAC, psrc=dsr4.addr, hwdst=fc.GW4_MAC,
                                                pdst=fc.GW4))))
        # NS for the VIP, to its solicited-node address (RFC 4861 §4.3) -> solicited, override NA.
        nsma = in6_getnsma(inet_pton(socket.AF_INET6, dsr6.addr))
        add(Ether(src=fc.GW6_MAC, dst=in6_getnsmac(nsma))
            / IPv6(src=fc.GW6, dst=inet_ntop(socket.AF_INET6, nsma), hlim=255)
            / ICMPv6ND_NS(tgt=dsr6.addr) / ICMPv6NDOptSrcLLAddr(lladdr=fc.GW6_MAC))
        self.replies.append(("na", bytes(Ether(src=fc.CLIENT_MAC, dst=fc.GW6_MAC)
                                         / IPv6(src=dsr6.addr, dst=fc.GW6, hlim=255)
                                         / ICMPv6ND_NA(R=0, S=1, O=1, tgt=dsr6.addr)
                                         / ICMPv6NDOptDstLLAddr(lladdr=fc.CLIENT_MAC))))
        # Echo to a VIP, both families.
        add(client_eth(4) / IP(src=CLIENT4, dst=VIPS["nat4"].addr, tos=0x10, id=99, ttl=55)
            / ICMP(type=8, id=0x77, seq=3) / Raw(b"ping" * 10))
        self.replies.append(("echo4", bytes(Ether(src=fc.CLIENT_MAC, dst=fc.GW4_MAC)
                                            / IP(src=VIPS["nat4"].addr, dst=CLIENT4, tos=0x10, id=0, ttl=64,
                                                 flags="DF") / ICMP(type=0, id=0x77, seq=3) / Raw(b"ping" * 10))))
        add(client_eth(6) / IPv6(src=CLIENT6, dst=dsr6.addr, hlim=50) / ICMPv6EchoRequest(id=5, seq=9, data=b"p6" * 20))
        self.replies.append(("echo6", bytes(Ether(src=fc.CLIENT_MAC, dst=fc.GW6_MAC)
                                            / IPv6(src=dsr6.addr, dst=CLIENT6, hlim=64)
                                            / ICMPv6EchoReply(id=5, seq=9, data=b"p6" * 20))))

        # Every VIP: the client's packet (the flow), then errors about it.
        for v in VIPS.values():
            add(bytes(client_eth(v.family)) + data_packet(v))
        for v in VIPS.values():
            q = quoted(v)
            cases = [("pmtu", q, None), ("ttl", q, None)]
            if v.family == 4:
                cases.append(("pmtu-28", q[:28], 28))  # RFC 792's minimum: IP header + 8 bytes
            for kind, quote, qlen in cases:
                ip = icmp_error(v, quote, kind.split("-")[0])
                add(bytes(client_eth(v.family)) + ip)
                self.errors.append((f"{v.key} {kind}", v, ip, qlen))

        body = fc.NEIGHBOURS_TOML + "\n" + "\n".join(v.toml() for v in VIPS.values())
        self.n_data = len(VIPS)
        self.result = run_daemon(fc.two_arm_ports(frames, []), body,
                                 expect_tx=len(self.replies) + self.n_data + len(self.errors))


_run = {}


def edge_run():
    return shared_run(_run, "edge", EdgeRun, "edge daemon run")


def expected_error(v, ip, qlen, out_frame, data_frame):
    """What the backend of `v` must receive for the ICMP error `ip`. Tunnels: the outer IPv4 ID
    is the worker's counter (taken from the output), the GUE source port that of the flow's own
    data packet (both from the flow hash)."""
    b = v.backends[0]
    if v.mode == "dsr":
        return fc.expected_dsr(b, ip)
    if v.mode in ("ipip", "gue"):
        v4_outer = fc.family_of(b.addr) == 4
        outer_id = int.from_bytes(out_frame[18:20], "big") if v4_outer else 0
        label = None if v4_outer else IPv6(data_frame[14:]).fl
        sport = UDP(data_frame[34:] if v4_outer else data_frame[54:]).sport if v.mode == "gue" else None
        return fc.expected_tunnel(v, b, ip, v.mode == "gue", outer_id=outer_id, udp_sport=sport, flow_label=label)
    # NAT (RFC 5508 §4.2): outer destination -> backend, TTL - 1; the quote as the backend sent it;
    # the ICMP header's type, code and rest kept, its checksum computed here.
    q = quoted(v, src=b.addr, sport=BACKEND_PORT[v.key])
    if qlen is not None:
        q = q[:qlen]
    if v.family == 4:
        orig = IP(ip)
        msg = bytearray(ip[20:28] + q)
        msg[2:4] = b"\0\0"
        msg[2:4] = checksum(bytes(msg)).to_bytes(2, "big")
        outer = (IP(src=ROUTER4, dst=b.addr, ttl=63, id=orig.id, flags=orig.flags, tos=orig.tos, proto=1)
                 / Raw(bytes(msg)))
    else:
        msg = bytearray(ip[40:48] + q)
        msg[2:4] = b"\0\0"
        outer = IPv6(src=ROUTER6, dst=b.addr, hlim=63, nh=58)
        msg[2:4] = in6_chksum(58, outer / Raw(bytes(msg)), bytes(msg)).to_bytes(2, "big")
        outer = outer / Raw(bytes(msg))
    return fc.expected_dsr_like(b.mac, fc.SERVER_MAC, bytes(outer))


class EdgeTest(unittest.TestCase):
    def test_replies_from_the_vip(self):
        """ARP reply, neighbour advertisement and echo replies: exact bytes (scapy computes every
        checksum), out of the port they came in on, in input order."""
        r = edge_run()
        got = r.result.out["client"]
        self.assertEqual(len(got), len(r.replies), [Ether(f).summary() for f in got])
        for (name, want), fr in zip(r.replies, got):
            self.assertEqual(fr.hex(), want.hex(), f"{name}: {fc.describe_mismatch(fr, want)}")
        na = Ether(got[1])
        self.assertEqual((na[ICMPv6ND_NA].R, na[ICMPv6ND_NA].S, na[ICMPv6ND_NA].O), (0, 1, 1))

    def test_icmp_errors_reach_the_flows_backend(self):
        """Every error leaves on the server port to its flow's backend, rewritten per mode."""
        r = edge_run()
        out = r.result.out["server"]
        data = {fr[:6]: fr for fr in out if fc.MARK in fr}
        self.assertEqual(len(data), r.n_data, "every VIP's data packet reaches its backend")
        errors = [fr for fr in out if fc.MARK not in fr]
        self.assertEqual(len(errors), len(r.errors))
        remaining = list(errors)
        for name, v, ip, qlen in r.errors:
            mac = bytes.fromhex(v.backends[0].mac.replace(":", ""))
            cands = [fr for fr in remaining if fr[:6] == mac]
            match = [fr for fr in cands if fr == expected_error(v, ip, qlen, fr, data[mac])]
            if not match:
                want = expected_error(v, ip, qlen, cands[0], data[mac]) if cands else b""
                self.fail(f"{name}: no matching output among {len(cands)} to {v.backends[0].mac}; "
                          + (fc.describe_mismatch(cands[0], want) if cands else "none at all"))
            remaining.remove(match[0])
        self.assertEqual(remaining, [])

    def test_counters(self):
        r = edge_run()
        c = r.result.counters
        self.assertEqual((c["arp_reply"], c["nd_reply"], c["echo_reply"]), (1, 1, 2))
        self.assertEqual(c["icmp_error_forwarded"], len(r.errors))
        self.assertEqual(c["to_kernel"] + c["from_kernel"], 0)
        self.assertEqual(c["flow_new"], r.n_data)  # errors create no flow
        self.assertEqual(r.result.nonzero_drops(), {})


# ---------------------------------------------------------------------------------------------
# Which errors are forwarded (slow_path.h): a second run with a small [icmp] token bucket.

RATE, BURST = 1, 12  # [icmp] errors_per_second, burst
MAGLEV4 = fc.Vip("mag4", "198.18.1.50", 80, "tcp", "dsr",
                 [fc.Backend(f"198.18.2.5{i}", f"02:00:00:00:0c:5{i}") for i in range(3)])
RR4 = fc.Vip("rr4", "198.18.1.60", 80, "tcp", "dsr",
             [fc.Backend(f"198.18.2.6{i}", f"02:00:00:00:0c:6{i}") for i in range(2)], scheduler="round_robin")
DSR6 = fc.Vip("v6", "2001:db8:1::50", 53, "udp", "dsr", [fc.Backend("2001:db8:2::51", "02:00:00:00:0c:71")])
N_MAGLEV_FLOWS = 6
N_FLOOD = 40
KBURST = 32


def flow_packet(v, cport):
    if v.family == 4:
        return bytes(IP(src=CLIENT4, dst=v.addr) / TCP(sport=cport, dport=v.port, flags="S") / Raw(fc.marker(cport)))
    return bytes(IPv6(src=CLIENT6, dst=v.addr) / UDP(sport=cport, dport=v.port) / Raw(fc.marker(cport)))


def quote_of(v, cport):
    if v.family == 4:
        return bytes(IP(src=v.addr, dst=CLIENT4) / TCP(sport=v.port, dport=cport, flags="SA") / Raw(b"q" * 40))
    return bytes(IPv6(src=v.addr, dst=CLIENT6) / UDP(sport=v.port, dport=cport) / Raw(b"q" * 40))


def pmtu_error(v, cport, mtu):
    if v.family == 4:
        return bytes(IP(src=ROUTER4, dst=v.addr) / ICMP(type=3, code=4, nexthopmtu=mtu) / Raw(quote_of(v, cport)))
    return bytes(IPv6(src=ROUTER6, dst=v.addr) / ICMPv6PacketTooBig(mtu=mtu) / Raw(quote_of(v, cport)))


class ValidationRun:
    def __init__(self, limited=True):
        frames = []
        self.forwarded = []  # (name, vip, error IP packet, client port of its flow): must arrive

        def add(ip, family):
            frames.append(bytes(client_eth(family)) + ip)

        # The flows: six on the Maglev VIP (spread over its three backends), one round robin, one IPv6.
        mag_ports = [41000 + i for i in range(N_MAGLEV_FLOWS)]
        for cp in mag_ports:
            add(flow_packet(MAGLEV4, cp), 4)
        add(flow_packet(RR4, 42000), 4)
        add(flow_packet(DSR6, 43000), 6)
        self.n_flows = N_MAGLEV_FLOWS + 2
        # processBurst handles a burst's ICMP before it stores the burst's new flows, so the flows
        # fill the first burst (worker.h kBurst = 32; net_pcap returns full bursts) with more of
        # their packets: the errors come in later bursts, as they would a round trip later.
        while len(frames) < KBURST:
            add(flow_packet(MAGLEV4, mag_ports[len(frames) % N_MAGLEV_FLOWS]), 4)
        self.n_data = len(frames)
        # Valid errors (they take BURST - 1 tokens... at most BURST): each to its flow's backend.
        for cp in mag_ports:
            self.forwarded.append((f"maglev {cp}", MAGLEV4, pmtu_error(MAGLEV4, cp, 1400), cp))
        self.forwarded.append(("round robin, known flow", RR4, pmtu_error(RR4, 42000, 1400), 42000))
        self.forwarded.append(("frag needed at 576", MAGLEV4, pmtu_error(MAGLEV4, mag_ports[0], 576), mag_ports[0]))
        self.forwarded.append(("packet too big at 1280", DSR6, pmtu_error(DSR6, 43000, 1280), 43000))
        assert len(self.forwarded) < BURST
        for _, v, ip, _ in self.forwarded:
            add(ip, v.family)
        # Refused (no token spent): a round-robin flow this worker never saw, MTUs below the minimum.
        add(pmtu_error(RR4, 42001, 1400), 4)
        add(pmtu_error(MAGLEV4, mag_ports[1], 575), 4)
        add(pmtu_error(MAGLEV4, mag_ports[2], 0), 4)
        add(pmtu_error(DSR6, 43000, 1279), 6)
        # A burst of valid errors (time exceeded, so they are told apart from the ones above).
        self.flood = []
        for i in range(N_FLOOD):
            cp = mag_ports[i % N_MAGLEV_FLOWS]
            ip = bytes(IP(src=ROUTER4, dst=MAGLEV4.addr) / ICMP(type=11, code=0) / Raw(quote_of(MAGLEV4, cp)))
            self.flood.append(ip)
            add(ip, 4)

        icmp = f"[icmp]\nerrors_per_second = {RATE}\nburst = {BURST}\n" if limited else ""
        body = (icmp + fc.NEIGHBOURS_TOML + "\n"
                + "\n".join(v.toml() for v in (MAGLEV4, RR4, DSR6)))
        self.result = run_daemon(fc.two_arm_ports(frames, []), body, expect_tx=self.n_data + len(self.forwarded))


_vrun = {}


def validation_run(limited=True):
    return shared_run(_vrun, limited, lambda: ValidationRun(limited), "validation daemon run")


def flow_backends(r):
    """Client port -> destination MAC of that flow's data packets."""
    out = {}
    for fr in r.result.out["server"]:
        for cp in range(41000, 44000):
            if fc.marker(cp) in fr:
                out[cp] = fr[:6]
    return out


def is_time_exceeded(fr):
    return fr[12:14] == b"\x08\x00" and fr[14 + 9] == 1 and fr[14 + 20] == 11


class IcmpValidationTest(unittest.TestCase):
    def test_valid_errors_reach_their_flows_backend(self):
        """Each valid error leaves, unchanged but for the MACs (DSR), to the backend its flow's
        data packet went to; Maglev's flows cover more than one backend."""
        r = validation_run()
        out = r.result.out["server"]
        backend_of = flow_backends(r)
        self.assertEqual(len(backend_of), r.n_flows, "every flow's data packet reaches a backend")
        self.assertGreater(len({backend_of[41000 + i] for i in range(N_MAGLEV_FLOWS)}), 1)
        errors = [fr for fr in out if not any(fc.marker(cp) in fr for cp in backend_of) and not is_time_exceeded(fr)]
        self.assertEqual(len(errors), len(r.forwarded), [Ether(f).summary() for f in errors])
        by_mac = {bytes.fromhex(b.mac.replace(":", "")): b for v in (MAGLEV4, RR4, DSR6) for b in v.backends}
        for (name, v, ip, cp), fr in zip(r.forwarded, errors):
            want = fc.expected_dsr(by_mac[backend_of[cp]], ip)
            self.assertEqual(fr.hex(), want.hex(), f"{name}: {fc.describe_mismatch(fr, want)}")

    def test_refusals_are_counted(self):
        r = validation_run()
        d = r.result.drops
        self.assertEqual(d["icmp_error_no_flow"], 1)   # round robin, flow unknown to this worker
        self.assertEqual(d["icmp_mtu_too_small"], 3)   # 575 and 0 (IPv4), 1279 (IPv6)
        self.assertEqual(set(r.result.nonzero_drops()),
                         {"icmp_error_no_flow", "icmp_mtu_too_small", "icmp_rate_limited"})

    def test_burst_of_errors_is_rate_limited(self):
        """The bucket holds BURST tokens and refills RATE a second: over the daemon's whole
        lifetime no more than BURST + RATE * lifetime errors can leave; the rest are counted."""
        r = validation_run()
        c, d = r.result.counters, r.result.drops
        bound = BURST + int(RATE * r.result.elapsed) + 1
        flood_out = [fr for fr in r.result.out["server"] if is_time_exceeded(fr)]
        self.assertEqual(c["icmp_error_forwarded"], len(r.forwarded) + len(flood_out))
        self.assertLessEqual(c["icmp_error_forwarded"], bound)
        self.assertGreater(d["icmp_rate_limited"], 0)
        self.assertEqual(d["icmp_rate_limited"] + len(flood_out), N_FLOOD)
        backend_of = flow_backends(r)
        quotes = {quote_of(MAGLEV4, cp): cp for cp in range(41000, 41000 + N_MAGLEV_FLOWS)}
        for fr in flood_out:  # the few that got a token went where their flow's packets went
            cp = quotes.get(fr[14 + 28:])
            self.assertIsNotNone(cp, Ether(fr).summary())
            self.assertEqual(fr[:6], backend_of[cp])
        # Negative control: the same frames under the default limit (1000/s, burst 200) all leave.
        ctl = validation_run(limited=False)
        ctl_flood = [fr for fr in ctl.result.out["server"] if is_time_exceeded(fr)]
        self.assertEqual((len(ctl_flood), ctl.result.drops["icmp_rate_limited"]), (N_FLOOD, 0))
        print(f"\n    rate limit: {len(flood_out)} of {N_FLOOD} burst errors forwarded, "
              f"{d['icmp_rate_limited']} icmp_rate_limited, daemon lifetime {r.result.elapsed:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    unittest.main()
