"""Malformed input through the real daemon: it must keep running (exit 0 on SIGINT), forward
exactly the valid VIP packets mixed in with the junk, and count every other frame under its drop
reason (include/l4lb/counters.h), exactly.

Two runs: a hand-labelled corpus (every expected reason written down per frame, from the rules in
src/dataplane/parser.h), and a seeded random corpus (garbage and mutated valid packets) whose
expected verdicts come from `classify`, an independent Python reading of the same rules; the
oracle is itself checked against the hand labels.
"""

import collections
import ipaddress
import os
import random
import struct
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from scapy.all import (ARP, GRE, ICMP, IP, SCTP, TCP, UDP, Dot1Q, Ether, ICMPv6EchoRequest, IPv6,  # noqa: E402
                       IPv6ExtHdrDestOpt, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop, IPv6ExtHdrRouting,
                       IPOption_Router_Alert, Raw, conf)

from l4lb_harness import Port, run_daemon, shared_run  # noqa: E402

conf.verb = 0

PORT_MAC = "02:00:00:00:00:01"
CLIENT_MAC = "02:00:00:00:aa:01"
C4, C6 = "198.19.7.1", "2001:db8:100::7"
VIP4, VIP6 = "198.18.1.10", "2001:db8:1::10"
# (address, port, protocol) -> backend MAC; DSR, one backend each so the output is determined.
VIPS = {(VIP4, 80, 6): "02:00:00:00:04:11", (VIP4, 53, 17): "02:00:00:00:04:21",
        (VIP6, 80, 6): "02:00:00:00:06:11", (VIP6, 53, 17): "02:00:00:00:06:21"}
BACKEND_ADDR = {"02:00:00:00:04:11": "198.18.2.11", "02:00:00:00:04:21": "198.18.2.21",
                "02:00:00:00:06:11": "2001:db8::11", "02:00:00:00:06:21": "2001:db8::21"}

# fragments = "drop": this test is about the parser's verdicts; fragments that follow their flow
# (the default, "track") are test_fragments.py's.
CONFIG = ""
for (addr, port, proto), mac in VIPS.items():
    CONFIG += (f'[[vips]]\naddress = "{addr}"\nport = {port}\nprotocol = "{"tcp" if proto == 6 else "udp"}"\n'
               f'forwarding = "dsr"\nfragments = "drop"\n[[vips.backends]]\naddress = "{BACKEND_ADDR[mac]}"\nmac = "{mac}"\n\n')


def ports(frames):
    return [Port("p0", PORT_MAC, ipv4="198.18.0.1/16", ipv6="2001:db8::1/64", rx=frames)]


def eth(et=0x0800, vlan=None):
    if vlan is not None:
        return bytes(Ether(src=CLIENT_MAC, dst=PORT_MAC, type=0x8100) / Dot1Q(vlan=vlan, type=et))
    return bytes(Ether(src=CLIENT_MAC, dst=PORT_MAC, type=et))


def v4(l4, dst=VIP4, **kw):
    return bytes(IP(src=C4, dst=dst, **kw) / l4)


def v6(l4, dst=VIP6, **kw):
    return bytes(IPv6(src=C6, dst=dst, **kw) / l4)


def tcp(dport=80, payload=b"hello", **kw):
    return TCP(sport=40000, dport=dport, flags="S", **kw) / Raw(payload)


def udp(dport=53, payload=b"query", **kw):
    return UDP(sport=40001, dport=dport, **kw) / Raw(payload)


def ip_csum(hdr):
    s = sum(struct.unpack(f"!{len(hdr) // 2}H", hdr))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def patch_v4(ip, fix_csum=True, **fields):
    """Sets raw IPv4 header fields (version_ihl, tot_len, frag, proto, csum) and, unless asked
    not to, recomputes the header checksum so that the field under test is what is wrong."""
    b = bytearray(ip)
    if "version_ihl" in fields:
        b[0] = fields["version_ihl"]
    if "tot_len" in fields:
        struct.pack_into("!H", b, 2, fields["tot_len"])
    if "frag" in fields:
        struct.pack_into("!H", b, 6, fields["frag"])
    if "proto" in fields:
        b[9] = fields["proto"]
    hl = max(20, (b[0] & 0x0F) * 4)
    if fix_csum:
        struct.pack_into("!H", b, 10, 0)
        struct.pack_into("!H", b, 10, ip_csum(bytes(b[:hl])) if len(b) >= hl else 0)
    if "csum" in fields:
        struct.pack_into("!H", b, 10, fields["csum"])
    return bytes(b)


def pad60(fr):
    return fr + b"\x00" * max(0, 60 - len(fr))


def hand_corpus():
    """(name, frame, expected reason) — each reason derived by hand from parser.h's rules."""
    good4 = v4(tcp())
    good6 = v6(tcp())
    c = []
    add = lambda name, fr, why: c.append((name, bytes(fr), why))  # noqa: E731

    # Ethernet / VLAN
    add("empty frame", b"", "too_short")
    add("1 byte", b"\x02", "too_short")
    add("13 bytes", eth()[:13], "too_short")
    add("ethernet only, IPv4 type", eth(), "too_short")
    add("ethernet only, IPv6 type", eth(0x86DD), "too_short")
    add("VLAN tag cut after TCI", eth()[:12] + b"\x81\x00\x00\x64", "too_short")
    add("VLAN tag cut in inner type", eth()[:12] + b"\x81\x00\x00\x64\x08", "too_short")
    add("VLAN without payload (IPv4)", eth(0x0800, vlan=100), "too_short")
    add("VLAN without payload (IPv6)", eth(0x86DD, vlan=100), "too_short")
    add("QinQ 8100/8100", eth()[:12] + b"\x81\x00\x00\x64\x81\x00\x00\x65\x08\x00" + good4, "not_ip")
    add("QinQ 88a8 outer", eth()[:12] + b"\x88\xa8\x00\x64\x81\x00\x00\x65\x08\x00" + good4, "not_ip")
    # An ARP request for a VIP is answered and an untagged echo to a VIP gets a reply (slow_path.h):
    # these ask for another address, which stays a drop on a port without an exception path.
    add("ARP request for a non-VIP address",
        Ether(src=CLIENT_MAC, dst="ff:ff:ff:ff:ff:ff") / ARP(psrc=C4, pdst="198.18.1.11"), "not_ip")
    add("ARP in VLAN", eth(0x0806, vlan=7) + bytes(ARP(psrc=C4, pdst=VIP4)), "not_ip")
    add("LLDP ethertype", eth(0x88CC) + b"\x02\x07\x04" + b"\x00" * 40, "not_ip")
    add("802.3 length field", eth(0x0040) + good4, "not_ip")
    add("IPv6 packet behind IPv4 ethertype", eth(0x0800) + good6, "bad_ip_header")
    add("IPv4 packet behind IPv6 ethertype", eth(0x86DD) + good4 + b"\x00" * 20, "bad_ip_header")

    # IPv4 header
    add("IPv4 header 19 bytes", eth() + good4[:19], "too_short")
    add("IPv4 in VLAN, header 10 bytes", eth(vlan=5) + good4[:10], "too_short")
    add("IHL 4", eth() + patch_v4(good4, version_ihl=0x44), "bad_ip_header")
    add("IHL 0", eth() + patch_v4(good4, version_ihl=0x40), "bad_ip_header")
    add("version 5", eth() + patch_v4(good4, version_ihl=0x55), "bad_ip_header")
    add("IHL 15, frame holds 45 IP bytes", eth() + patch_v4(good4, version_ihl=0x4F)[:45], "too_short")
    add("IHL 6, option cut (22 bytes)", eth() + patch_v4(v4(tcp(), options=[IPOption_Router_Alert()]))[:22],
        "too_short")
    add("bad header checksum", eth() + patch_v4(good4, csum=0x1234), "bad_ip_header")
    add("checksum field zeroed", eth() + patch_v4(good4, fix_csum=False, csum=0), "bad_ip_header")
    add("checksum of a VLAN frame wrong", eth(vlan=9) + patch_v4(good4, csum=0xBEEF), "bad_ip_header")
    add("total length beyond frame", eth() + patch_v4(good4, tot_len=len(good4) + 1), "bad_length")
    add("total length 65535", eth() + patch_v4(good4, tot_len=65535), "bad_length")
    add("total length < IHL*4", eth() + patch_v4(good4, tot_len=19), "bad_length")
    add("total length 0", eth() + patch_v4(good4, tot_len=0), "bad_length")
    add("first fragment (MF)", eth() + patch_v4(good4, frag=0x2000), "fragment")
    add("last fragment (offset)", eth() + patch_v4(good4, frag=0x00B9), "fragment")
    add("middle fragment, DF|MF|offset", eth() + patch_v4(good4, frag=0x6001), "fragment")
    add("IPv4 fragment of UDP", eth() + patch_v4(v4(udp()), frag=0x2000), "fragment")

    # IPv4 L4
    add("TCP header 10 bytes (total length)", eth() + patch_v4(good4, tot_len=30), "bad_length")
    add("TCP header cut by frame (total length fixed)", eth() + patch_v4(good4[:30], tot_len=30), "bad_length")
    add("TCP data offset 4", eth() + v4(tcp(dataofs=4)), "bad_length")
    add("TCP data offset 15, 25 bytes of TCP", eth() + v4(tcp(dataofs=15)), "bad_length")
    add("UDP length > IP payload", eth() + v4(udp(len=20)), "bad_length")
    add("UDP length < IP payload", eth() + v4(udp(len=8)), "bad_length")
    add("zero-length UDP (length 0)", eth() + v4(udp(len=0)), "bad_length")
    add("UDP header 4 bytes", eth() + patch_v4(v4(udp())[:24], tot_len=24), "bad_length")
    add("ICMP echo to a non-VIP address", eth() + v4(ICMP() / Raw(b"ping"), dst="198.18.1.11"), "icmp")
    add("ICMP 4 bytes", eth() + patch_v4(v4(ICMP())[:24], tot_len=24), "bad_length")
    add("ICMPv6 inside IPv4", eth() + patch_v4(v4(ICMP()), proto=58), "unsupported_proto")
    add("GRE", eth() + v4(GRE() / Raw(b"x" * 20)), "unsupported_proto")
    add("SCTP", eth() + v4(SCTP(sport=1, dport=80)), "unsupported_proto")
    add("IP protocol 255", eth() + patch_v4(good4, proto=255), "unsupported_proto")

    # IPv6
    add("IPv6 header 39 bytes", eth(0x86DD) + good6[:39], "too_short")
    add("IPv6 version 7", eth(0x86DD) + bytes([0x70]) + good6[1:], "bad_ip_header")
    add("IPv6 payload length beyond frame", eth(0x86DD) + v6(tcp(), plen=len(good6) - 39), "bad_length")
    add("IPv6 payload length 65535", eth(0x86DD) + v6(tcp(), plen=65535), "bad_length")
    add("IPv6 payload length 10 (TCP needs 20)", eth(0x86DD) + v6(tcp(), plen=10), "bad_length")
    add("IPv6 payload length 0, next header TCP", eth(0x86DD) + v6(tcp(), plen=0), "bad_length")
    add("IPv6 zero-length UDP", eth(0x86DD) + v6(udp(len=0)), "bad_length")
    add("IPv6 UDP length mismatch", eth(0x86DD) + v6(udp(len=9)), "bad_length")
    add("IPv6 fragment header", eth(0x86DD) + v6(IPv6ExtHdrFragment(m=1) / tcp()), "fragment")
    # An atomic fragment (offset 0, M 0) is a whole packet (RFC 6946): to a port no VIP has, no_vip.
    add("IPv6 atomic fragment (offset 0, M 0)", eth(0x86DD) + v6(IPv6ExtHdrFragment() / udp(dport=54)), "no_vip")
    add("IPv6 hop-by-hop then fragment", eth(0x86DD) + v6(IPv6ExtHdrHopByHop() / IPv6ExtHdrFragment(m=1) / tcp()),
        "fragment")
    add("IPv6 routing then fragment", eth(0x86DD) + v6(IPv6ExtHdrRouting() / IPv6ExtHdrFragment(offset=3) / tcp()),
        "fragment")
    add("IPv6 hop-by-hop not first", eth(0x86DD) + v6(IPv6ExtHdrDestOpt() / IPv6ExtHdrHopByHop() / tcp()),
        "bad_ip_header")
    nine = IPv6ExtHdrDestOpt()
    for _ in range(8):
        nine = nine / IPv6ExtHdrDestOpt()
    add("IPv6 nine extension headers", eth(0x86DD) + v6(nine / tcp()), "ipv6_ext_limit")
    add("IPv6 ext header longer than payload",
        eth(0x86DD) + v6(IPv6ExtHdrDestOpt(len=5) / Raw(b"\x01\x04" + b"\x00" * 4), plen=8), "bad_length")
    add("IPv6 ext header, 4 bytes of payload", eth(0x86DD) + v6(Raw(b"\x06\x00\x01\x00"), nh=60), "bad_length")
    add("IPv6 no next header (59)", eth(0x86DD) + v6(Raw(b"\x00" * 8), nh=59), "unsupported_proto")
    add("ICMP (v4) inside IPv6", eth(0x86DD) + v6(ICMP() / Raw(b"ping"), nh=1), "unsupported_proto")
    add("ICMPv6 echo to a non-VIP address", eth(0x86DD) + v6(ICMPv6EchoRequest(data=b"ping"), dst="2001:db8:1::11"),
        "icmp")
    add("ICMPv6 4 bytes", eth(0x86DD) + v6(Raw(b"\x80\x00\x00\x00"), nh=58), "bad_length")
    add("IPv6 header cut in VLAN frame", eth(0x86DD, vlan=3) + good6[:30], "too_short")

    # Well-formed but not for a VIP.
    add("TCP to a non-VIP address", eth() + v4(tcp(), dst="198.18.1.11"), "no_vip")
    add("TCP to the VIP, non-VIP port", eth() + v4(tcp(dport=8080)), "no_vip")
    add("UDP to the TCP VIP port", eth() + v4(udp(dport=80)), "no_vip")
    add("IPv6 UDP to the VIP, non-VIP port", eth(0x86DD) + v6(udp(dport=54)), "no_vip")
    add("IPv6 TCP to a non-VIP address", eth(0x86DD) + v6(tcp(), dst="2001:db8:1::11"), "no_vip")
    return c  # not padded: the frame lengths are the point


def valid_corpus():
    """(name, frame, expected output frame): valid VIP packets, including the unusual-but-legal."""
    out = []

    def fwd(name, fr, l3_off, l3_len, vip_key):
        family = 4 if vip_key[0] == VIP4 else 6
        exp = bytes(Ether(dst=VIPS[vip_key], src=PORT_MAC, type=0x0800 if family == 4 else 0x86DD))
        out.append((name, bytes(fr), exp + bytes(fr)[l3_off:l3_off + l3_len]))

    def plain(name, ip, vip_key, vlan=None, trailer=b""):
        fr = (eth(0x0800 if vip_key[0] == VIP4 else 0x86DD, vlan) + ip + trailer)
        fr = pad60(fr)
        fwd(name, fr, 18 if vlan is not None else 14, len(ip), vip_key)

    for i in range(10):
        plain(f"v4 tcp {i}", v4(tcp(payload=b"v4tcp%d" % i)), (VIP4, 80, 6))
        plain(f"v4 udp {i}", v4(udp(payload=b"v4udp%d" % i)), (VIP4, 53, 17))
        plain(f"v6 tcp {i}", v6(tcp(payload=b"v6tcp%d" % i)), (VIP6, 80, 6))
        plain(f"v6 udp {i}", v6(udp(payload=b"v6udp%d" % i)), (VIP6, 53, 17))
    plain("v4 with IP options", v4(tcp(), options=[IPOption_Router_Alert()]), (VIP4, 80, 6))
    plain("v4 UDP, short, Ethernet-padded", v4(udp(payload=b"")), (VIP4, 53, 17))
    plain("v4 UDP with no checksum", v4(udp(chksum=0)), (VIP4, 53, 17))
    plain("v4 with a non-zero trailer", v4(tcp()), (VIP4, 80, 6), trailer=b"\xde\xad\xbe\xef" * 5)
    plain("v4 TCP data offset 15 (40 bytes of options)", v4(tcp(options=[("NOP", None)] * 40)), (VIP4, 80, 6))
    plain("v4 in VLAN", v4(tcp(payload=b"tagged")), (VIP4, 80, 6), vlan=42)
    plain("v4 TTL 0 (DSR does not route)", v4(tcp(), ttl=0), (VIP4, 80, 6))
    eight = IPv6ExtHdrDestOpt()
    for _ in range(7):
        eight = eight / IPv6ExtHdrDestOpt()
    plain("v6 eight extension headers", v6(eight / tcp()), (VIP6, 80, 6))
    plain("v6 hop-by-hop, routing, dest-opts, UDP",
          v6(IPv6ExtHdrHopByHop() / IPv6ExtHdrRouting() / IPv6ExtHdrDestOpt() / udp()), (VIP6, 53, 17))
    plain("v6 with a trailer beyond payload length", v6(udp()), (VIP6, 53, 17), trailer=b"\xff" * 7)
    plain("v6 in VLAN", v6(udp(payload=b"tagged")), (VIP6, 53, 17), vlan=4094)
    return out


# ---------------------------------------------------------------------------------------------
# Oracle: parser.h's rules, written out again independently.
# ---------------------------------------------------------------------------------------------

def _be16(b, o):
    return (b[o] << 8) | b[o + 1]


def _l4(b, proto, icmp_proto, first_frag=False):
    n = len(b)
    if proto == 6:
        if n < 20:
            return "bad_length", None
        doff = b[12] >> 4
        if doff < 5 or doff * 4 > n:
            return "bad_length", None
        return "ok", _be16(b, 2)
    if proto == 17:
        if n < 8 or (_be16(b, 4) != n and not first_frag):
            return "bad_length", None
        return "ok", _be16(b, 2)
    if proto == icmp_proto:
        return ("bad_length", None) if n < 8 else ("icmp", None)
    return "unsupported_proto", None


def classify(fr):
    """('drop', reason) or ('fwd', expected output frame)."""
    fr = fr[:65535]
    n = len(fr)
    if n < 14:
        return "drop", "too_short"
    et, l3 = _be16(fr, 12), 14
    if et == 0x8100:
        if n < 18:
            return "drop", "too_short"
        et, l3 = _be16(fr, 16), 18
    avail = n - l3
    if et == 0x0800:
        if avail < 20:
            return "drop", "too_short"
        hl = (fr[l3] & 0x0F) * 4
        if fr[l3] >> 4 != 4 or hl < 20:
            return "drop", "bad_ip_header"
        if hl > avail:
            return "drop", "too_short"
        if ip_csum(fr[l3:l3 + hl]) != 0:
            return "drop", "bad_ip_header"
        tot = _be16(fr, l3 + 2)
        if tot < hl or tot > avail:
            return "drop", "bad_length"
        proto, l3_len, dst = fr[l3 + 9], tot, fr[l3 + 16:l3 + 20]
        frag = _be16(fr, l3 + 6)
        if frag & 0x1FFF:
            return "drop", "fragment"  # a later fragment: no L4 header
        if frag & 0x2000:
            # A first fragment: its L4 header must parse (UDP's length is the datagram's).
            verdict, _ = _l4(fr[l3 + hl:l3 + tot], proto, 1, first_frag=True)
            return "drop", "fragment" if verdict in ("ok", "icmp") else verdict
        verdict, dport = _l4(fr[l3 + hl:l3 + tot], proto, 1)
        family = 4
    elif et == 0x86DD:
        if avail < 40:
            return "drop", "too_short"
        if fr[l3] >> 4 != 6:
            return "drop", "bad_ip_header"
        ip_len = 40 + _be16(fr, l3 + 4)
        if ip_len > avail:
            return "drop", "bad_length"
        nxt, off, count, first_frag = fr[l3 + 6], 40, 0, False
        while nxt not in (6, 17):
            if nxt == 44:
                if count == 8:
                    return "drop", "ipv6_ext_limit"
                if first_frag:
                    return "drop", "bad_ip_header"
                if ip_len - off < 8:
                    return "drop", "bad_length"
                offm = _be16(fr, l3 + off + 2)
                nxt, off, count = fr[l3 + off], off + 8, count + 1
                if offm & 0xFFF8:
                    return "drop", "fragment"
                first_frag = bool(offm & 1)  # else atomic: a whole packet
                continue
            if nxt not in (0, 43, 60):
                break
            if nxt == 0 and count != 0:
                return "drop", "bad_ip_header"
            if count == 8:
                return "drop", "ipv6_ext_limit"
            if ip_len - off < 8:
                return "drop", "bad_length"
            ext = (fr[l3 + off + 1] + 1) * 8
            if ext > ip_len - off:
                return "drop", "bad_length"
            nxt, off, count = fr[l3 + off], off + ext, count + 1
        proto, l3_len, dst = nxt, ip_len, fr[l3 + 24:l3 + 40]
        if first_frag:
            verdict, _ = _l4(fr[l3 + off:l3 + ip_len], nxt, 58, first_frag=True)
            return "drop", "fragment" if verdict in ("ok", "icmp") else verdict
        verdict, dport = _l4(fr[l3 + off:l3 + ip_len], nxt, 58)
        family = 6
    else:
        return "drop", "not_ip"
    if verdict != "ok":
        return "drop", verdict
    addr = str(ipaddress.ip_address(bytes(dst)))
    mac = VIPS.get((addr, dport, proto))
    if mac is None:
        return "drop", "no_vip"
    assert l3_len <= 1500, "the corpus stays below the port MTU"
    exp = bytes(Ether(dst=mac, src=PORT_MAC, type=0x0800 if family == 4 else 0x86DD)) + fr[l3:l3 + l3_len]
    return "fwd", exp


def random_corpus(seed=20241124, n_garbage=150, n_mutants=350):
    rng = random.Random(seed)
    frames = []
    for i in range(n_garbage):
        n = rng.choice([rng.randrange(0, 20), rng.randrange(14, 120), rng.randrange(60, 400)])
        fr = bytearray(rng.randbytes(n))
        if n >= 14 and i % 2 == 0:  # aim at the IP parsers
            fr[12:14] = rng.choice([b"\x08\x00", b"\x86\xdd", b"\x81\x00"])
            if len(fr) > 14 and fr[12:14] != b"\x81\x00":
                fr[14] = rng.choice([0x45, 0x46, 0x4F, 0x60, 0x65, fr[14]])
        frames.append(bytes(fr))
    seeds = [fr for _, fr, _ in valid_corpus()]
    for _ in range(n_mutants):
        fr = bytearray(rng.choice(seeds))
        for _ in range(rng.randrange(1, 4)):
            op = rng.random()
            if op < 0.45 and len(fr) > 14:
                i = rng.randrange(12, len(fr))
                fr[i] = rng.randrange(256) if rng.random() < 0.5 else fr[i] ^ (1 << rng.randrange(8))
            elif op < 0.75:
                fr = fr[:rng.randrange(0, len(fr) + 1)]
            else:
                fr += rng.randbytes(rng.randrange(1, 30))
        l3 = 18 if fr[12:14] == b"\x81\x00" else 14
        if rng.random() < 0.6 and len(fr) >= l3 + 20 and fr[l3] >> 4 == 4 and (fr[l3] & 15) >= 5:
            hl = (fr[l3] & 15) * 4
            if len(fr) >= l3 + hl:  # make the header checksum right so deeper checks run
                fr[l3 + 10:l3 + 12] = b"\x00\x00"
                fr[l3 + 10:l3 + 12] = struct.pack("!H", ip_csum(bytes(fr[l3:l3 + hl])))
        frames.append(bytes(fr))
    return frames


class OracleTest(unittest.TestCase):
    """The oracle must agree with every hand label before it may judge the random corpus."""

    def test_oracle_matches_hand_labels(self):
        bad = [(n, classify(fr), why) for n, fr, why in hand_corpus() if classify(fr) != ("drop", why)]
        self.assertEqual(bad, [])
        bad = [n for n, fr, exp in valid_corpus() if classify(fr) != ("fwd", exp)]
        self.assertEqual(bad, [])

    def test_every_drop_reason_of_the_parser_is_covered(self):
        reasons = {why for _, _, why in hand_corpus()}
        self.assertEqual(reasons, {"too_short", "not_ip", "bad_ip_header", "bad_length", "fragment",
                                   "unsupported_proto", "icmp", "no_vip", "ipv6_ext_limit"})


def mix(junk, valid, rng):
    """Valid packets spread through the junk, order fixed by the seed."""
    out = [(x, False) for x in junk]
    for v in valid:
        out.insert(rng.randrange(len(out) + 1), (v, True))
    return out


_runs = {}


def corpus_run(which):
    def make():
        rng = random.Random(7 if which == "hand" else 8)
        valid = valid_corpus()
        if which == "hand":
            junk = hand_corpus()
            items = mix([(n, fr, ("drop", why)) for n, fr, why in junk],
                        [(n, fr, ("fwd", exp)) for n, fr, exp in valid], rng)
        else:
            items = mix([(f"random {i}", fr, classify(fr)) for i, fr in enumerate(random_corpus())],
                        [(n, fr, ("fwd", exp)) for n, fr, exp in valid], rng)
        items = [x for x, _ in items]
        return items, run_daemon(ports([fr for _, fr, _ in items]), CONFIG,
                                 expect_tx=sum(1 for _, _, v in items if v[0] == "fwd"))

    return shared_run(_runs, which, make, f"{which} corpus run")


class _CorpusTests:
    WHICH = None

    def test_daemon_survives(self):
        items, res = corpus_run(self.WHICH)  # the harness requires exit 0 after SIGINT
        self.assertEqual(res.counters["rx_packets"], len(items))

    def test_exactly_the_valid_packets_forwarded(self):
        items, res = corpus_run(self.WHICH)
        want = [v[1] for _, _, v in items if v[0] == "fwd"]
        got = res.out["p0"]
        names = [n for n, _, v in items if v[0] == "fwd"]
        for i, (g, w) in enumerate(zip(got, want)):
            self.assertEqual(g.hex(), w.hex(), f"output {i}, expected from {names[i]!r}")
        self.assertEqual(len(got), len(want))

    def test_drop_counts_per_reason(self):
        items, res = corpus_run(self.WHICH)
        want = collections.Counter(v[1] for _, _, v in items if v[0] == "drop")
        expected = {k: want.get(k, 0) for k in res.drops}
        self.assertEqual(res.drops, expected)
        self.assertEqual(res.counters["tx_packets"], sum(1 for _, _, v in items if v[0] == "fwd"))


class HandCorpusTest(_CorpusTests, unittest.TestCase):
    WHICH = "hand"


class RandomCorpusTest(_CorpusTests, unittest.TestCase):
    WHICH = "random"

    def test_random_corpus_reaches_deep(self):
        """The mutants must exercise more than the first check (else the run proves little)."""
        items, _ = corpus_run(self.WHICH)
        seen = collections.Counter(v[1] if v[0] == "drop" else "fwd" for n, _, v in items if n.startswith("random"))
        for reason in ("too_short", "not_ip", "bad_ip_header", "bad_length", "no_vip", "fwd"):
            self.assertGreater(seen[reason], 3, f"{reason}: {dict(seen)}")


if __name__ == "__main__":
    unittest.main()
