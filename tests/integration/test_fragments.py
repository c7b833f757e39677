"""IP fragments through the real daemon (net_pcap, one worker): every fragment of a datagram
leaves toward the backend of its 5-tuple, with its bytes intact, in all four forwarding modes.

Per mode one run: IPv4 and IPv6 VIPs, TCP and UDP, 3 backends each; per flow unfragmented
packets and datagrams cut into 2..8 fragments by scapy, sent in order, in reverse, with
duplicates and interleaved with the flow's unfragmented packets. The output is taken apart
independently (outer headers stripped by mode), grouped by datagram (source, IP ID /
identification), reassembled here and compared with what was sent; NAT's reassembled L4
checksum is recomputed by scapy. Then: fragments = "drop" drops them (the negative control of
the per-VIP switch) and a flood of random later fragments leaves unfragmented traffic intact
while the bounds are counted.
"""

import collections
import os
import random
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from scapy.all import (ICMP, IP, IPv6, IPv6ExtHdrFragment, Raw, TCP, UDP, Ether, defragment, fragment,  # noqa: E402
                       fragment6)

import fwd_common as fc  # noqa: E402
from l4lb_harness import run_daemon  # noqa: E402

CLIENT_SRC_MAC = "02:00:00:aa:00:01"


def backends(family, base):
    if family == 4:
        return [fc.Backend(f"198.18.2.{base + i}", f"02:00:00:00:04:{base + i:02x}", 1, 0) for i in range(3)]
    return [fc.Backend(f"2001:db8:2::{base + i:x}", f"02:00:00:00:06:{base + i:02x}", 1, 0) for i in range(3)]


def make_vips(mode, fragments=None):
    vips = [
        fc.Vip("v4udp", "198.18.1.10", 53, "udp", mode, backends(4, 0x21)),
        fc.Vip("v4tcp", "198.18.1.10", 80, "tcp", mode, backends(4, 0x11)),
        fc.Vip("v6udp", "2001:db8:1::10", 53, "udp", mode, backends(6, 0x21)),
        fc.Vip("v6tcp", "2001:db8:1::10", 80, "tcp", mode, backends(6, 0x11)),
    ]
    if mode == "nat":
        for v in vips:
            for b in v.backends:
                b.port = 8053 if v.proto == "udp" else 8080
    return vips


def vips_toml(vips, fragments=None):
    out = ""
    for v in vips:
        t = v.toml()
        if fragments:
            # The VIP's own keys end before its first [[vips.backends]].
            t = t.replace("[[vips.backends]]", f"fragments = {fragments!r}\n[[vips.backends]]".replace("'", '"'), 1)
        out += t
    return out


def ip_layer(vip, client, ident):
    if vip.family == 4:
        return IP(src=client, dst=vip.addr, id=ident, ttl=64)
    return IPv6(src=client, dst=vip.addr, hlim=64)


def l4_layer(vip, sport):
    return UDP(sport=sport, dport=vip.port) if vip.proto == "udp" else TCP(sport=sport, dport=vip.port, flags="A")


def datagram(vip, client, sport, ident, payload):
    return ip_layer(vip, client, ident) / l4_layer(vip, sport) / Raw(payload)


def cut(pkt, vip, npieces, ident):
    """The datagram as `npieces` fragments (scapy), as raw IP packets."""
    total = len(bytes(pkt[IP].payload if vip.family == 4 else pkt[IPv6].payload))
    size = max(8, ((total + npieces - 1) // npieces + 7) // 8 * 8)
    if vip.family == 4:
        frags = fragment(pkt, fragsize=size)
    else:
        base = pkt.copy()
        hdr = base[IPv6]
        hdr.remove_payload()
        pl = pkt[IPv6].payload.copy()
        p6 = hdr / IPv6ExtHdrFragment(id=ident) / pl
        frags = fragment6(p6, size + 40 + 8)
    return [bytes(f) for f in frags]


def frame(ip_bytes, family):
    return fc.frame_of(ip_bytes, family, CLIENT_SRC_MAC, fc.CLIENT_MAC)


def inner_ip(frame_bytes, mode):
    """The client's IP packet inside an output frame (after the mode's outer headers)."""
    data = frame_bytes[14:]
    if mode in ("ipip", "gue"):
        outer_v4 = data[0] >> 4 == 4
        data = data[(20 if outer_v4 else 40) + (8 if mode == "gue" else 0):]
    return data


def frag_info(ip):
    """(family, src, ident, offset, more, payload, proto) of a fragment, or None when whole."""
    if ip[0] >> 4 == 4:
        p = IP(ip)
        if p.flags.MF == 0 and p.frag == 0:
            return None
        return 4, p.src, p.id, p.frag * 8, bool(p.flags.MF), bytes(p.payload)[: p.len - p.ihl * 4], p.proto
    p = IPv6(ip)
    if IPv6ExtHdrFragment not in p:
        return None
    f = p[IPv6ExtHdrFragment]
    return 6, p.src, f.id, f.offset * 8, bool(f.m), bytes(f.payload), f.nh


def reassemble(pieces):
    """Fragments (offset, more, payload) -> the datagram's L4 bytes, or None when incomplete."""
    data = bytearray()
    end = None
    for off, more, pl in sorted(set(pieces)):
        if off > len(data):
            return None
        data[off:off + len(pl)] = pl
        if not more:
            end = off + len(pl)
    if end is None or len(data) < end:
        return None
    return bytes(data[:end])


class Traffic:
    """One mode's input: per VIP, flows with unfragmented packets and fragmented datagrams."""

    def __init__(self, mode, seed, flows_per_vip=6):
        self.mode = mode
        self.rng = rng = random.Random(seed)
        self.vips = make_vips(mode)
        self.rx = []
        self.datagrams = {}  # (src, ident) -> (vip, flow key, L4 bytes as sent, fragment count)
        self.whole = {}      # marker -> flow key
        self.expected_fragment_frames = 0
        ident = 0x100
        client_no = 0
        for v in self.vips:
            for f in range(flows_per_vip):
                client_no += 1
                client = f"198.18.5.{client_no}" if v.family == 4 else f"2001:db8:5::{client_no:x}"
                sport = 20000 + client_no
                key = (v.key, client, sport)
                events = []
                for k in range(3):  # unfragmented packets of the flow
                    marker = f"W{v.key}-{client_no}-{k}#".encode()
                    self.whole[marker] = key
                    events.append([frame(bytes(datagram(v, client, sport, ident + 9999, marker)), v.family)])
                for shape in ("order", "reverse", "dup", "shuffle"):
                    ident += 1
                    npieces = rng.randint(2, 8)
                    payload = bytes(rng.getrandbits(8) for _ in range(rng.randint(120 * npieces, 170 * npieces)))
                    dg = datagram(v, client, sport, ident, payload)
                    pieces = cut(dg, v, npieces, ident)
                    l4 = bytes(dg[IP].payload if v.family == 4 else dg[IPv6].payload)
                    self.datagrams[(client, ident)] = (v, key, l4, len(pieces))
                    if shape == "reverse":
                        pieces = pieces[::-1]
                    elif shape == "dup":
                        pieces = pieces + [pieces[rng.randrange(len(pieces))]]
                    elif shape == "shuffle":
                        rng.shuffle(pieces)
                    self.expected_fragment_frames += len(pieces)
                    events.append([frame(p, v.family) for p in pieces])
                # Interleave: each list keeps its own order (reversed, shuffled ...), but the
                # flow's datagrams and unfragmented packets are mixed between its fragments.
                while events:
                    e = events[rng.randrange(len(events))]
                    self.rx.append(e.pop(0))
                    if not e:
                        events.remove(e)


class FragmentModes(unittest.TestCase):
    def run_mode(self, mode, seed, workers=1):
        t = Traffic(mode, seed)
        body = fc.NEIGHBOURS_TOML + "".join(v.toml() for v in t.vips)
        ports = fc.two_arm_ports(t.rx, [])
        if workers > 1:
            # Two RX queues, two workers: frames alternate between the queues, so a datagram's
            # fragments (and its flow's whole packets) arrive on both workers, as when RSS hashes
            # fragments by addresses and whole packets by ports.
            ports[0].rx_queues = [t.rx[q::workers] for q in range(workers)]
            ports[1].rx_queues = [[] for _ in range(workers)]
        res = run_daemon(ports, body, expect_tx=len(t.rx), workers=workers)
        frames = res.out["server"] + res.out["client"]
        self.assertEqual(res.nonzero_drops(), {}, "no fragment may be dropped")
        backend_of_flow = {}
        for fr in frames:
            ip = inner_ip(bytes(fr), mode)
            if frag_info(ip) is None:
                for marker, key in t.whole.items():
                    if marker in ip:
                        mac = bytes(fr)[0:6].hex(":")
                        self.assertEqual(backend_of_flow.setdefault(key, mac), mac, f"flow {key} split")
        self.assertEqual(len(backend_of_flow), len({k for k in t.whole.values()}))
        got = collections.defaultdict(list)
        macs = collections.defaultdict(set)
        header = {}
        for fr in frames:
            ip = inner_ip(bytes(fr), mode)
            fi = frag_info(ip)
            if fi is None:
                continue
            fam, src, ident, off, more, pl, proto = fi
            got[(src, ident)].append((off, more, pl))
            macs[(src, ident)].add(bytes(fr)[0:6].hex(":"))
            if off == 0:
                header[(src, ident)] = ip
        self.assertEqual(sum(len(v) for v in got.values()), t.expected_fragment_frames)
        for (src, ident), (v, key, l4, n) in t.datagrams.items():
            with self.subTest(datagram=(v.key, src, ident)):
                self.assertIn((src, ident), got)
                self.assertEqual(macs[(src, ident)], {backend_of_flow[key]}, "fragments left for another backend")
                data = reassemble(got[(src, ident)])
                self.assertIsNotNone(data, "incomplete datagram")
                if mode != "nat":
                    self.assertEqual(data, l4)
                    continue
                # NAT: payload intact after the L4 header, the destination port rewritten, and the
                # L4 checksum (fixed in the first fragment only) right for the new pseudo-header.
                hlen = 8 if v.proto == "udp" else 20
                self.assertEqual(data[hlen:], l4[hlen:])
                self.assertEqual(int.from_bytes(data[2:4], "big"), v.backends[0].port)
                first = header[(src, ident)]
                if v.family == 4:
                    h = IP(first)
                    whole = IP(src=h.src, dst=h.dst, proto=h.proto, ttl=h.ttl) / Raw(data)
                    self.assertEqual(h.dst, {b.addr for b in v.backends if b.mac == backend_of_flow[key]}.pop())
                else:
                    h = IPv6(first)
                    whole = IPv6(src=h.src, dst=h.dst, nh=h[IPv6ExtHdrFragment].nh) / Raw(data)
                parsed = whole.__class__(bytes(whole))
                l4p = parsed[UDP] if v.proto == "udp" else parsed[TCP]
                sent_ck = l4p.chksum
                del l4p.chksum
                self.assertEqual(sent_ck, parsed.__class__(bytes(parsed))[UDP if v.proto == "udp" else TCP].chksum)
        c = res.counters
        # Every datagram's first fragment was scheduled (a duplicated first one twice).
        self.assertGreaterEqual(c.get("frag_first"), len(t.datagrams))
        self.assertLessEqual(c.get("frag_first"), len(t.datagrams) * 2)
        self.assertGreater(c.get("frag_held", 0), 0, "reverse order must have held fragments")
        self.assertEqual(c.get("frag_forwarded", 0), t.expected_fragment_frames)
        if workers > 1:
            # The owner worker took the other worker's fragments over its ring.
            self.assertGreater(c.get("frag_handed_off", 0), 0)
            self.assertEqual(res.drops.get("frag_ring_full", 0), 0)

    def test_dsr(self):
        self.run_mode("dsr", 1)

    def test_ipip(self):
        self.run_mode("ipip", 2)

    def test_gue(self):
        self.run_mode("gue", 3)

    def test_nat(self):
        self.run_mode("nat", 4)

    def test_two_workers_dsr(self):
        self.run_mode("dsr", 7, workers=2)

    def test_two_workers_nat(self):
        self.run_mode("nat", 8, workers=2)


class FragmentPolicy(unittest.TestCase):
    def test_drop_policy_drops_every_fragment(self):
        rng = random.Random(5)
        vips = make_vips("dsr")
        rx, nfrag = [], 0
        for i, v in enumerate(vips):
            client = "198.18.6.1" if v.family == 4 else "2001:db8:6::1"
            dg = datagram(v, client, 30000 + i, 0x4000 + i, bytes(rng.getrandbits(8) for _ in range(900)))
            pieces = cut(dg, v, 3, 0x4000 + i)
            nfrag += len(pieces)
            rx += [frame(p, v.family) for p in pieces[::-1]]
            rx.append(frame(bytes(datagram(v, client, 30000 + i, 1, b"whole")), v.family))
        body = fc.NEIGHBOURS_TOML + vips_toml(vips, fragments="drop")
        res = run_daemon(fc.two_arm_ports(rx, []), body, expect_tx=len(vips))
        self.assertEqual(len(res.out["server"]), len(vips), "only the unfragmented packets pass")
        self.assertEqual(res.drops.get("fragment"), nfrag)


class FragmentFlood(unittest.TestCase):
    def test_random_later_fragments_leave_whole_traffic_intact(self):
        rng = random.Random(6)
        vips = make_vips("dsr")
        rx = []
        whole = 0
        flood = 0
        legit = []
        for i in range(3000):
            v = vips[i % 4]
            # A later fragment with a random ID, never followed by its first.
            if v.family == 4:
                p = IP(src=f"198.18.{7 + rng.randrange(2)}.{rng.randrange(1, 255)}", dst=v.addr, id=rng.getrandbits(16),
                       frag=rng.randrange(1, 100), flags=rng.choice([0, 1]), proto=17) / Raw(b"x" * 64)
            else:
                p = IPv6(src=f"2001:db8:7::{rng.getrandbits(16):x}", dst=v.addr) / IPv6ExtHdrFragment(
                    id=rng.getrandbits(32), offset=rng.randrange(1, 100), m=rng.choice([0, 1]), nh=17) / Raw(b"x" * 64)
            rx.append(frame(bytes(p), v.family))
            flood += 1
            if i % 5 == 0:
                client = f"198.18.9.{i % 250 + 1}" if v.family == 4 else f"2001:db8:9::{i:x}"
                rx.append(frame(bytes(datagram(v, client, 40000 + i, 1, f"W{i}#".encode())), v.family))
                whole += 1
            if i % 300 == 0:
                client = "198.18.10.1" if v.family == 4 else "2001:db8:10::1"
                dg = datagram(v, client, 41000 + i, 0x6000 + i, bytes(300 * 3))
                pieces = cut(dg, v, 3, 0x6000 + i)
                legit.append(len(pieces))
                rx += [frame(x, v.family) for x in pieces]  # in order: needs no hold
        body = fc.NEIGHBOURS_TOML + "".join(v.toml() for v in vips) + "\n[fragments]\ntable_size = 64\nmax_held = 128\n"
        res = run_daemon(fc.two_arm_ports(rx, []), body, expect_tx=whole + sum(legit))
        out = [bytes(f) for f in res.out["server"]]
        markers = {m for m in (f"W{i}#".encode() for i in range(0, 3000, 5))}
        seen = {m for m in markers for f in out if m in f}
        self.assertEqual(seen, markers, "every unfragmented packet is forwarded")
        self.assertEqual(len(out), whole + sum(legit), "in-order datagrams pass too; no flood fragment does")
        d = res.drops
        c = res.counters
        # The bounds were hit and counted: held pool full, held-only entries evicted.
        self.assertGreater(d.get("frag_held_full", 0) + d.get("frag_evicted", 0), 0)
        self.assertGreater(d.get("frag_evicted", 0), 0)
        self.assertEqual(c.get("frag_held") + d.get("frag_held_full", 0) + d.get("frag_table_full", 0)
                         + d.get("frag_datagram_full", 0), flood)


if __name__ == "__main__":
    unittest.main()


class OuterFragmentation(unittest.TestCase):
    """A tunnelled IPv4 packet longer than the egress MTU once encapsulated: without DF it leaves
    as outer-header fragments (RFC 2003 §5.1, librte_ip_frag), each within the MTU, which scapy
    reassembles into exactly the encapsulated packet; with DF set it is answered with ICMP
    fragmentation-needed as before and no fragment of it leaves (the negative control)."""

    SERVER_MTU = 1000
    IPIP = fc.Vip("ofipip", "198.18.1.30", 53, "udp", "ipip", [fc.Backend("198.18.2.70", "02:00:00:00:04:70")])
    GUE = fc.Vip("ofgue", "198.18.1.31", 53, "udp", "gue", [fc.Backend("198.18.2.71", "02:00:00:00:04:71")])

    @classmethod
    def setUpClass(cls):
        rng = random.Random(13)
        cls.sent = {}  # (vip key, df) -> (client, inner IP bytes)
        rx = []
        for i, v in enumerate((cls.IPIP, cls.GUE)):
            for df in (False, True):
                client = f"198.18.10.{1 + 2 * i + int(df)}"
                payload = bytes(rng.getrandbits(8) for _ in range(1400 - 28))
                inner = bytes(IP(src=client, dst=v.addr, id=0x700 + i, ttl=64, tos=0x20, flags="DF" if df else 0)
                              / UDP(sport=31000 + i, dport=v.port) / Raw(payload))
                assert len(inner) == 1400
                cls.sent[(v.key, df)] = (client, inner)
                rx.append(frame(inner, 4))
        body = fc.NEIGHBOURS_TOML + cls.IPIP.toml() + cls.GUE.toml()
        # 1420 (IPIP) and 1428 (GUE) bytes into 976-byte payloads: 2 fragments each; 2 ICMP replies.
        cls.res = run_daemon(fc.two_arm_ports(rx, [], server_mtu=cls.SERVER_MTU), body, expect_tx=2 * 2 + 2)

    def fragments_by_backend(self):
        out = collections.defaultdict(list)
        for fr in self.res.out["server"]:
            eth = Ether(bytes(fr))
            self.assertIn(IP, eth)
            out[eth[IP].dst].append(bytes(fr))
        return out

    def check_mode(self, v, overhead):
        frames = self.fragments_by_backend()[v.backends[0].addr]
        client, inner = self.sent[(v.key, False)]
        need = -(-(len(inner) + overhead - 20) // ((self.SERVER_MTU - 20) // 8 * 8))
        self.assertEqual(len(frames), need)
        self.assertGreater(need, 1)
        ips = []
        for fr in frames:
            self.assertEqual(fr[0:6].hex(":"), v.backends[0].mac)
            self.assertEqual(fr[6:12].hex(":"), fc.SERVER_MAC)
            ip = IP(fr[14:])
            self.assertLessEqual(len(fr) - 14, self.SERVER_MTU, "fragment over the MTU")
            self.assertEqual(ip.len, len(fr) - 14)
            self.assertFalse(ip.flags.DF)
            ck = ip.chksum
            del ip.chksum
            self.assertEqual(IP(bytes(ip)).chksum, ck, "outer header checksum")
            ips.append(IP(fr[14:]))
        self.assertEqual(len({ip.id for ip in ips}), 1, "one outer ID")
        self.assertEqual(sorted((ip.frag, ip.flags.MF) for ip in ips)[-1][1], 0, "last fragment without MF")
        whole = defragment(ips)
        self.assertEqual(len(whole), 1, "reassembles into one packet")
        w = whole[0]
        w = IP(bytes(w))
        self.assertEqual((w.src, w.dst, w.ttl, w.tos, w.flags.DF, w.frag),
                         (fc.PORT_ADDR4, v.backends[0].addr, 64, 0x20, False, 0))
        if v.mode == "ipip":
            self.assertEqual(w.proto, 4)
            self.assertEqual(bytes(w.payload), inner, "inner packet intact")
        else:
            self.assertEqual(w.proto, 17)
            u = w[UDP]
            self.assertEqual((u.dport, u.len, u.chksum), (6080, 8 + len(inner), 0))
            self.assertGreaterEqual(u.sport, 0x8000)
            self.assertEqual(bytes(u.payload), inner, "inner packet intact")
        # The DF-set packet of the same VIP: ICMP fragmentation-needed to the client, advertising
        # the MTU left inside the tunnel; none of its bytes went to the backend.
        df_client, df_inner = self.sent[(v.key, True)]
        replies = [Ether(bytes(fr)) for fr in self.res.out["client"]]
        mine = [r for r in replies if IP in r and r[IP].dst == df_client]
        self.assertEqual(len(mine), 1)
        icmp = mine[0][ICMP]
        self.assertEqual((icmp.type, icmp.code, icmp.nexthopmtu), (3, 4, self.SERVER_MTU - overhead))
        for fr in frames + [b for frs in self.fragments_by_backend().values() for b in frs]:
            self.assertNotIn(df_inner[20:60], fr, "a DF-set packet must not be fragmented")

    def test_ipip(self):
        self.check_mode(self.IPIP, 20)

    def test_gue(self):
        self.check_mode(self.GUE, 28)

    def test_counters(self):
        c = self.res.counters
        self.assertEqual(c.get("tunnel_fragmented"), 2)
        self.assertEqual(c.get("icmp_too_big_sent"), 2)
        self.assertEqual(self.res.nonzero_drops(), {"too_big": 2})
        self.assertEqual(len(self.res.out["server"]), 4)
        self.assertEqual(c.get("tx_packets"), 6)
