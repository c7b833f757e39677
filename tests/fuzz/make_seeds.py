#!/usr/bin/python3
# Writes the fuzz targets' seed corpora (tests/fuzz/corpus/<target>/) and the config dictionary.
# Re-run after changing a fuzz target's input format; the output is committed. Files named
# found-<sha1> are inputs a campaign found (libFuzzer -merge=1 of its corpus): kept as they are.
#   /usr/bin/python3 tests/fuzz/make_seeds.py [L4LB_BINARY]   (scapy: Debian's python3-scapy)
# With L4LB_BINARY, fuzz_config.dict is regenerated from `l4lb --config-keys config/l4lb.toml`.
# Addresses are fuzz_burst's topology (tests/fuzz/fuzz_burst.cc): clients behind the wan gateway,
# VIPs 198.18.1.10:80/tcp, [2001:db8:1::53]:53/udp, 198.18.1.20 (all ports / udp 53),
# 198.18.1.30:443, backends 198.18.2.11.. and 2001:db8:2::11.. on lan.
import hashlib
import json
import os
import struct
import subprocess
import sys

from scapy.all import (ARP, DNS, DNSQR, ICMP, IP, IPOption_RR, TCP, UDP, Dot1Q, Ether, ICMPv6EchoRequest,
                       ICMPv6ND_NS, ICMPv6NDOptSrcLLAddr, ICMPv6PacketTooBig, IPv6, IPv6ExtHdrDestOpt,
                       IPv6ExtHdrFragment, IPv6ExtHdrHopByHop, IPv6ExtHdrRouting, Raw, fragment, fragment6)

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.dirname(os.path.dirname(here))
corpus = os.path.join(here, "corpus")

WAN = "02:00:00:00:00:10"
LAN = "02:00:00:00:00:20"
CLIENT = "02:00:00:00:c0:01"
GW = "02:00:00:00:00:fe"
C4, C6 = "198.18.0.7", "2001:db8::7"
REMOTE4, REMOTE6 = "198.19.5.5", "2001:db8:9::5"
V4, V6, ANY4, RR4 = "198.18.1.10", "2001:db8:1::53", "198.18.1.20", "198.18.1.30"


def write(target, name, data):
    d = os.path.join(corpus, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(bytes(data))


def eth(src=CLIENT, dst=WAN):
    return Ether(src=src, dst=dst)


def tcp4(flags="S", sport=40000, dst=V4, dport=80, src=REMOTE4, payload=b""):
    return eth(GW) / IP(src=src, dst=dst) / TCP(sport=sport, dport=dport, flags=flags) / Raw(payload)


def udp6(sport=5353, dst=V6, dport=53, src=REMOTE6):
    return eth(GW) / IPv6(src=src, dst=dst) / UDP(sport=sport, dport=dport) / DNS(qd=DNSQR(qname="example.test"))


# The frames both packet targets start from: one per parser branch worth reaching.
big = b"x" * 1460
frames = {
    "tcp4_syn": tcp4(),
    "tcp4_ack_data": tcp4("PA", payload=b"GET / HTTP/1.1\r\n\r\n"),
    "tcp4_fin": tcp4("FA"),
    "tcp4_rst": tcp4("R"),
    "tcp4_options": eth(GW) / IP(src=REMOTE4, dst=V4, options=[IPOption_RR()]) / TCP(dport=80, flags="S",
                                                                                   options=[("MSS", 1460), ("SAckOK", b"")]),
    "tcp4_vlan": eth(GW) / Dot1Q(vlan=5) / IP(src=REMOTE4, dst=V4) / TCP(dport=80, flags="S"),
    "tcp4_big_df": eth(GW) / IP(src=REMOTE4, dst=V4, flags="DF") / TCP(dport=80, flags="A") / Raw(big),
    "tcp4_big": eth(GW) / IP(src=REMOTE4, dst=V4) / TCP(dport=80, flags="A") / Raw(big),
    "tcp4_allports": tcp4(dst=ANY4, dport=22),
    "tcp4_rr": tcp4(dst=RR4, dport=443),
    "tcp4_not_vip": tcp4(dst="198.18.0.1", dport=22),
    "udp4": eth(GW) / IP(src=REMOTE4, dst=ANY4) / UDP(sport=5353, dport=53) / DNS(qd=DNSQR(qname="a.test")),
    "udp6": udp6(),
    "udp6_big": eth(GW) / IPv6(src=REMOTE6, dst=V6) / UDP(sport=5353, dport=53) / Raw(big),
    "tcp6_ext": eth(GW) / IPv6(src=REMOTE6, dst=V6) / IPv6ExtHdrHopByHop() / IPv6ExtHdrRouting() /
                IPv6ExtHdrDestOpt() / UDP(sport=1, dport=53) / Raw(b"q"),
    "frag4_first": fragment(eth(GW) / IP(src=REMOTE4, dst=ANY4, id=7) / UDP(sport=5353, dport=53) / Raw(b"y" * 64),
                            fragsize=32)[0],
    "frag4_last": fragment(eth(GW) / IP(src=REMOTE4, dst=ANY4, id=7) / UDP(sport=5353, dport=53) / Raw(b"y" * 64),
                           fragsize=32)[-1],
    "frag6_first": eth(GW) / IPv6(src=REMOTE6, dst=V6) / IPv6ExtHdrFragment(id=9, m=1, offset=0) /
                   UDP(sport=5353, dport=53, len=80) / Raw(b"z" * 24),
    "frag6_later": eth(GW) / IPv6(src=REMOTE6, dst=V6) / IPv6ExtHdrFragment(id=9, m=0, offset=4, nh=17) / Raw(b"z" * 48),
    "icmp4_echo_vip": eth(GW) / IP(src=REMOTE4, dst=V4) / ICMP(type=8) / Raw(b"ping"),
    "icmp4_frag_needed": eth(GW) / IP(src="198.19.9.9", dst=V4) / ICMP(type=3, code=4, nexthopmtu=1400) /
                         IP(src=V4, dst=REMOTE4) / TCP(sport=80, dport=40000, flags="SA"),
    "icmp4_frag_needed_tiny_mtu": eth(GW) / IP(src="198.19.9.9", dst=V4) / ICMP(type=3, code=4, nexthopmtu=68) /
                                  IP(src=V4, dst=REMOTE4) / TCP(sport=80, dport=40000, flags="SA"),
    "icmp6_echo_vip": eth(GW) / IPv6(src=REMOTE6, dst=V6) / ICMPv6EchoRequest(data=b"ping"),
    "icmp6_ptb": eth(GW) / IPv6(src="2001:db8:9::9", dst=V6) / ICMPv6PacketTooBig(mtu=1280) /
                 IPv6(src=V6, dst=REMOTE6) / UDP(sport=53, dport=5353),
    "icmp6_ns_vip": Ether(src=CLIENT, dst="33:33:ff:00:00:53") / IPv6(src="2001:db8::7", dst="ff02::1:ff00:53", hlim=255) /
                    ICMPv6ND_NS(tgt=V6) / ICMPv6NDOptSrcLLAddr(lladdr=CLIENT),
    "arp_vip": Ether(src=CLIENT, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=CLIENT, psrc=C4, pdst=V4),
    "arp_own": Ether(src=CLIENT, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=CLIENT, psrc=C4, pdst="198.18.0.1"),
    # Replies from NAT backends (snapshot 2 and 3): to the client through the gateway.
    "nat_reply4": Ether(src="02:00:00:00:01:11", dst=LAN) / IP(src="198.18.2.11", dst=REMOTE4) /
                  TCP(sport=8080, dport=40000, flags="SA"),
    "nat_reply4_near": Ether(src="02:00:00:00:01:12", dst=LAN) / IP(src="198.18.2.12", dst=C4) /
                       TCP(sport=80, dport=40000, flags="SA"),
    "nat_reply6": Ether(src="02:00:00:00:02:11", dst=LAN) / IPv6(src="2001:db8:2::11", dst=REMOTE6) /
                  UDP(sport=53, dport=5353),
    "health_reply": Ether(src="02:00:00:00:01:11", dst=LAN) / IP(src="198.18.2.11", dst="198.18.2.1") /
                    TCP(sport=80, dport=33000, flags="SA"),
}

# --- parser: 8 bytes of ol_flags (little-endian) + the frame.
CKSUM_GOOD, CKSUM_BAD = 1 << 7, 1 << 4
for name, f in frames.items():
    write("parser", name, struct.pack("<Q", 0) + bytes(f))
write("parser", "tcp4_cksum_good_flag", struct.pack("<Q", CKSUM_GOOD) + bytes(frames["tcp4_syn"]))
bad = bytearray(bytes(frames["tcp4_syn"]))
bad[24] ^= 0xff  # IPv4 header checksum wrong
write("parser", "tcp4_bad_cksum_nic_good", struct.pack("<Q", CKSUM_GOOD) + bytes(bad))
write("parser", "tcp4_bad_cksum", struct.pack("<Q", CKSUM_BAD) + bytes(bad))
write("parser", "runt", struct.pack("<Q", 0) + bytes(frames["tcp4_syn"])[:30])
PAD_64K = 1 << 63  # fuzz_parser: 65535 zero bytes after the frame
write("parser", "tcp4_padded_past_64k", struct.pack("<Q", PAD_64K) + bytes(frames["tcp4_syn"]))
jumbo = bytearray(bytes(eth(GW) / IP(src=REMOTE4, dst=V4) / UDP(sport=1, dport=53)))
jumbo[16:18] = b"\xff\xff"  # IPv4 total length 65535: the IP packet runs into the padding
write("parser", "udp4_len_65535_padded", struct.pack("<Q", PAD_64K) + bytes(jumbo))

# --- burst: operations (tests/fuzz/fuzz_burst.cc).
WAN_P, LAN_P, TAP_P = 0, 1, 2


def pkt(frame, port=WAN_P, flags=0):
    b = bytes(frame)
    return bytes([0x00, port | flags]) + struct.pack("<H", len(b)) + b


def clock(ms=0, s=None):
    return bytes([0x01]) + struct.pack("<H", (0x8000 | s) if s is not None else ms)


def swap(i):
    return bytes([0x02, i])


def conn4(sport, swap_to=None, dst=V4, dport=80):
    ops = [pkt(tcp4("S", sport, dst, dport)), pkt(tcp4("A", sport, dst, dport)),
           pkt(tcp4("PA", sport, dst, dport, payload=b"hello"))]
    if swap_to is not None:
        ops.append(swap(swap_to))
    ops += [pkt(tcp4("PA", sport, dst, dport, payload=b"more")), pkt(tcp4("FA", sport, dst, dport))]
    return b"".join(ops)


burst = {}
for snap in range(4):
    burst[f"tcp_conn_snap{snap}"] = swap(snap) + conn4(41000 + snap)
    burst[f"all_frames_snap{snap}"] = swap(snap) + b"".join(pkt(f) for f in frames.values())
    burst[f"nat_replies_snap{snap}"] = swap(snap) + b"".join(
        pkt(frames[n], LAN_P) for n in ("nat_reply4", "nat_reply4_near", "nat_reply6", "health_reply"))
burst["conn_across_swaps"] = conn4(42000, swap_to=1) + swap(2) + conn4(42001, swap_to=3) + swap(0) + conn4(42002)
burst["udp6_rr"] = b"".join(pkt(udp6(sport=6000 + i)) for i in range(8)) + swap(1) + \
    b"".join(pkt(udp6(sport=6000 + i)) for i in range(8))
# More new flows than the small tables hold (16 IPv4, 8 IPv6), then time passes and they expire.
burst["syn_flood"] = b"".join(pkt(tcp4("S", 10000 + i, src=f"198.19.{i // 200}.{i % 200 + 1}")) for i in range(48)) + \
    clock(s=3) + pkt(tcp4("A", 10001, src="198.19.0.2")) + clock(s=30) + pkt(tcp4("S", 20000))
burst["udp6_flood"] = b"".join(pkt(udp6(sport=7000 + i)) for i in range(24)) + clock(s=6) + pkt(udp6(sport=7000))
burst["timeouts"] = conn4(43000) + clock(1500) + clock(s=2) + pkt(tcp4("A", 43000)) + clock(s=25) + \
    pkt(tcp4("A", 43000)) + clock(0xffff)
burst["tap_relay"] = swap(2) + pkt(frames["arp_own"], TAP_P) + pkt(frames["tcp4_not_vip"], TAP_P) + \
    pkt(frames["tcp4_not_vip"]) + pkt(frames["arp_own"]) + pkt(b"\x01\x02\x03", TAP_P)
burst["no_headroom_tunnels"] = swap(1) + pkt(frames["tcp4_syn"], flags=0x20) + pkt(frames["udp6"], flags=0x20) + \
    swap(3) + pkt(frames["tcp4_syn"], flags=0x20) + pkt(frames["tcp4_big_df"]) + pkt(frames["tcp4_big"])
cksum_ops = bytearray(pkt(bad, flags=0x80) + pkt(bad, flags=0x40) + pkt(frames["tcp4_syn"], flags=0x80))
burst["cksum_flags"] = bytes(cksum_ops)
burst["slow_path"] = b"".join(pkt(frames[n]) for n in ("icmp4_echo_vip", "icmp6_echo_vip", "icmp6_ns_vip", "arp_vip",
                                                      "icmp4_frag_needed", "icmp6_ptb", "frag4_first", "frag4_last",
                                                      "frag6_first", "frag6_later")) + swap(2) + \
    pkt(frames["icmp4_frag_needed"]) + pkt(frames["icmp4_frag_needed_tiny_mtu"])
# Fragmented datagrams (fuzz_burst's worker has a small fragment table, 1 s timeout): first
# fragment first, and later fragments first (held until their first arrives), IPv4 and IPv6,
# TCP and UDP, in every snapshot; later fragments whose first never comes (held, then freed by
# the timeout); an ICMP error quoting a later fragment.
def frags4(ident, dst=V4, dport=80, udp=False, src=REMOTE4):
    l4 = UDP(sport=5353, dport=dport) if udp else TCP(sport=40500, dport=dport, flags="PA")
    return [eth(GW) / f[IP] for f in fragment(IP(src=src, dst=dst, id=ident) / l4 / Raw(b"f" * 120), fragsize=48)]


def frags6(ident, dst=V6, dport=53, src=REMOTE6):
    d = IPv6(src=src, dst=dst) / IPv6ExtHdrFragment(id=ident) / UDP(sport=5353, dport=dport) / Raw(b"g" * 200)
    return [eth(GW) / f for f in fragment6(d, 120)]


def frag_ops(fs):
    return b"".join(pkt(f) for f in fs)


for snap in range(4):
    f4, u4, f6 = frags4(100 + snap), frags4(200 + snap, ANY4, 53, True), frags6(300 + snap)
    burst[f"frags_in_order_snap{snap}"] = swap(snap) + frag_ops(f4) + frag_ops(u4) + frag_ops(f6)
    burst[f"frags_reverse_snap{snap}"] = swap(snap) + frag_ops(f4[::-1]) + frag_ops(u4[::-1]) + \
        frag_ops(f6[::-1]) + frag_ops(f4[1:])  # and later duplicates after the decision
burst["frags_held_timeout"] = frag_ops(frags4(400)[1:] + frags6(401)[1:]) + \
    frag_ops(f[1:][0] for f in (frags4(410 + i, src=f"198.19.1.{i + 1}") for i in range(20))) + \
    clock(500) + frag_ops(frags4(400)[:1]) + clock(s=2) + frag_ops(frags6(401)[:1])
burst["frags_across_swaps"] = frag_ops(frags4(500)[2:]) + swap(2) + frag_ops(frags4(500)[:2]) + swap(1) + \
    frag_ops(frags6(501)[1:]) + swap(3) + frag_ops(frags6(501)[:1])
burst["frags_icmp_quote"] = frag_ops(frags4(600)) + pkt(eth(GW) / IP(src="198.19.9.9", dst=V4) /
                                                     ICMP(type=3, code=4, nexthopmtu=1400) /
                                                     bytes(IP(src=V4, dst=REMOTE4, id=600, frag=6, proto=6) / Raw(b"h" * 16)))


# Full NAT (every snapshot: fullnat VIPs on FN4/FN6, port 443/tcp and 53/udp, source addresses
# SNAT4/SNAT6 with ports 40000-40003 and a 1 s quiet time; PROXY v2 on the TCP VIPs in some
# snapshots). A fresh worker hands out 40000 first. Replies come from every backend that Maglev
# may have chosen (the others are dropped as fullnat_no_session).
FN4, FN6, SNAT4, SNAT6 = "198.18.1.40", "2001:db8:1::40", "198.18.2.50", "2001:db8:2::50"
FN_BACKENDS = {  # (VIP family, protocol) -> [(address, port, MAC)]
    (4, "tcp"): [("198.18.2.41", 8443, "02:00:00:00:03:41"), ("198.18.2.42", 443, "02:00:00:00:03:42"),
                 ("198.18.2.43", 443, "02:00:00:00:03:43")],
    (6, "tcp"): [("2001:db8:2::41", 8443, "02:00:00:00:04:41")],
    (4, "udp"): [("198.18.2.44", 5353, "02:00:00:00:03:44")],
    (6, "udp"): [("2001:db8:2::44", 53, "02:00:00:00:04:44")],
}
FN_ISN, FN_BISN = 0xFFFFFFF0, 0x10000


def fn_ip(fam, src, dst):
    return IP(src=src, dst=dst) if fam == 4 else IPv6(src=src, dst=dst)


def fn_client(fam, l4, sport=41000):
    src, dst = (REMOTE4, FN4) if fam == 4 else (REMOTE6, FN6)
    l4.sport, l4.dport = sport, (443 if isinstance(l4, TCP) else 53)
    return pkt(eth(GW) / fn_ip(fam, src, dst) / l4)


def fn_replies(fam, proto, l4, dport=40000):
    ops = b""
    for addr, port, mac in FN_BACKENDS[(fam, proto)]:
        x = l4.copy()
        x.sport, x.dport = port, dport
        ops += pkt(Ether(src=mac, dst=LAN) / fn_ip(fam, addr, SNAT4 if fam == 4 else SNAT6) / x, LAN_P)
    return ops


def add32(a, b):
    return (a + b) & 0xFFFFFFFF


def fn_tcp_ops(fam, h):
    """A whole connection, one operation a step: the PROXY header (h bytes, 0 without) takes the
    backend's sequence numbers ISN + 1 .. ISN + h."""
    first = add32(FN_ISN, 1)
    return [
        fn_client(fam, TCP(flags="S", seq=FN_ISN, options=[("MSS", 1460), ("SAckOK", b""), ("WScale", 7),
                                                          ("Timestamp", (1, 0))])),
        fn_replies(fam, "tcp", TCP(flags="SA", seq=FN_BISN, ack=first, options=[
            ("MSS", 1460), ("NOP", None), ("WScale", 7), ("SAckOK", b""), ("Timestamp", (9, 1))])),
        fn_client(fam, TCP(flags="A", seq=first, ack=FN_BISN + 1)),
        fn_client(fam, TCP(flags="PA", seq=first, ack=FN_BISN + 1) / Raw(b"GET / HTTP/1.1\r\n\r\n")),
        fn_replies(fam, "tcp", TCP(flags="A", seq=FN_BISN + 1, ack=add32(first, h // 2))),
        fn_replies(fam, "tcp", TCP(flags="PA", seq=FN_BISN + 1, ack=add32(first, h + 18), options=[
            ("NOP", None), ("NOP", None), ("SAck", (add32(first, 2), add32(first, h + 40)))]) / Raw(b"HTTP/1.1 200")),
        fn_client(fam, TCP(flags="PA", seq=add32(first, 18), ack=FN_BISN + 13) / Raw(b"more")),
        fn_client(fam, TCP(flags="A", seq=first, ack=FN_BISN + 13) / Raw(b"GET")),  # a retransmission at ISN + 1
        fn_replies(fam, "tcp", TCP(flags="FA", seq=FN_BISN + 13, ack=add32(first, h + 22))),
        fn_client(fam, TCP(flags="FA", seq=add32(first, 22), ack=FN_BISN + 14)),
        fn_replies(fam, "tcp", TCP(flags="A", seq=FN_BISN + 14, ack=add32(first, h + 23))),
    ]


def fn_tcp_conn(fam, h):
    return b"".join(fn_tcp_ops(fam, h))


def fn_udp(fam):
    return fn_client(fam, UDP() / Raw(b"query")) + fn_replies(fam, "udp", UDP() / Raw(b"answer")) + \
        fn_client(fam, UDP() / Raw(b"again"))


burst["fullnat_tcp4_proxy"] = swap(0) + fn_tcp_conn(4, 28)
burst["fullnat_tcp4_plain"] = swap(1) + fn_tcp_conn(4, 0)
burst["fullnat_tcp6_proxy"] = swap(0) + fn_tcp_conn(6, 52)
burst["fullnat_tcp6_plain"] = swap(1) + fn_tcp_conn(6, 0)
burst["fullnat_udp"] = fn_udp(4) + fn_udp(6) + swap(2) + fn_udp(4) + fn_udp(6)
# A pool of 4: the fifth and sixth SYN find none; the SYNs time out (2 s), their pairs wait the
# quiet time (1 s), then a new flow gets one.
burst["fullnat_exhausted"] = b"".join(fn_client(4, TCP(flags="S", seq=FN_ISN), 42000 + i) for i in range(6)) + \
    clock(s=3) + clock(s=2) + fn_client(4, TCP(flags="S", seq=FN_ISN), 42100) + \
    fn_replies(4, "tcp", TCP(flags="SA", seq=FN_BISN, ack=add32(FN_ISN, 1)))
# A connection across reloads: PROXY v2 on, then off (and one backend gone), then on again.
burst["fullnat_across_swaps"] = swap(0) + b"".join(fn_tcp_ops(4, 28)[:5]) + swap(1) + b"".join(fn_tcp_ops(4, 28)[5:]) + \
    swap(3) + fn_tcp_conn(6, 0) + swap(0) + fn_tcp_conn(6, 52)
# What is no session's: a client ACK without a SYN, backends' packets to a pair out of range or
# unused, an ICMP error from a backend quoting a full-NAT flow, and the source addresses asked
# for from both sides (ARP, ND, echo).
burst["fullnat_strays"] = fn_client(4, TCP(flags="PA", seq=5) / Raw(b"x")) + \
    fn_client(4, TCP(flags="S", seq=FN_ISN)) + \
    fn_replies(4, "tcp", TCP(flags="A", seq=1, ack=1), dport=39999) + \
    fn_replies(4, "tcp", TCP(flags="A", seq=1, ack=1), dport=40001) + \
    pkt(Ether(src="02:00:00:00:03:41", dst=LAN) / IP(src="198.18.2.41", dst=SNAT4) / ICMP(type=3, code=4, nexthopmtu=1300) /
        IP(src=SNAT4, dst="198.18.2.41") / TCP(sport=40000, dport=8443, flags="A"), LAN_P) + \
    pkt(Ether(src=CLIENT, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=CLIENT, psrc=C4, pdst=SNAT4)) + \
    pkt(Ether(src="02:00:00:00:03:41", dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc="02:00:00:00:03:41",
                                                                      psrc="198.18.2.41", pdst=SNAT4), LAN_P) + \
    pkt(Ether(src=CLIENT, dst="33:33:ff:00:00:50") / IPv6(src=C6, dst="ff02::1:ff00:50", hlim=255) /
        ICMPv6ND_NS(tgt=SNAT6) / ICMPv6NDOptSrcLLAddr(lladdr=CLIENT)) + \
    pkt(eth(GW) / IP(src=REMOTE4, dst=SNAT4) / ICMP(type=8) / Raw(b"ping")) + \
    pkt(eth(GW) / IPv6(src=REMOTE6, dst=SNAT6) / ICMPv6EchoRequest(data=b"ping")) + \
    pkt(eth(GW) / IP(src=REMOTE4, dst=SNAT4) / TCP(sport=80, dport=40000, flags="A"))
for name, data in burst.items():
    write("burst", name, data)

# --- config: the repo's example configs and the targets' own.
for name in ("l4lb.toml", "lab.toml"):
    with open(os.path.join(root, "config", name), "rb") as f:
        write("config", name, f.read())
configs = os.path.join(root, "tests", "common", "configs")  # shared with the C++ and Python tests


def config_text(name):
    with open(os.path.join(configs, name)) as f:
        return f.read()


minimal = config_text("minimal.toml")
write("config", "minimal.toml", minimal.encode())
write("config", "nat_v6_tunnel.toml", (minimal + config_text("nat_v6_tunnel_vip.toml")).encode())
write("config", "errors.toml", b'[eal]\nworker_cores = [1, "x"]\n[[ports]]\nname = 3\n[[vips]]\naddress = "::g"\n')

# --- api: one request per command, with valid arguments (FakeView: VIPs "web" and "dns").
requests = [
    {"cmd": "status"}, {"cmd": "vips"}, {"cmd": "backends"}, {"cmd": "backends", "args": ["web"]}, {"cmd": "stats"},
    {"cmd": "drain", "args": ["198.18.0.11"]}, {"cmd": "undrain", "args": ["web/198.18.0.12"]},
    {"cmd": "weight", "args": ["198.18.0.12", "5"]}, {"cmd": "reload"},
    {"cmd": "explain", "args": ["tcp", "198.18.5.1:40000", "198.18.0.10:80"]},
    {"cmd": "explain", "args": ["udp", "[2001:db8::1]:53", "198.18.0.20:53"]},
    {"cmd": "diff", "args": [minimal]},
]
for r in requests:
    body = json.dumps(r).encode()
    write("api", r["cmd"] + "_" + hashlib.sha1(body).hexdigest()[:8], body)
write("api", "bad_args", b'{"cmd": "vips", "args": [1]}')

# --- the config dictionary: every key the loader knows (l4lb --config-keys), as keys, as table
# headers, and the enumerations' values.
if len(sys.argv) > 1:
    keys = subprocess.run([sys.argv[1], "--config-keys", os.path.join(root, "config", "l4lb.toml")],
                          check=True, capture_output=True, text=True).stdout.split()
    words = set()
    for k in keys:
        parts = k.split(".")
        words.add(parts[-1] + " = ")
        for i in range(1, len(parts)):
            t = ".".join(parts[:i])
            words.add("[" + t + "]")
            words.add("[[" + t + "]]")
    values = ["tcp", "udp", "dsr", "nat", "ipip", "gue", "maglev", "round_robin", "weighted_round_robin", "drop",
              "none", "tap", "xdp", "http", "true", "false", "198.18.0.1/24", "2001:db8::1/64",
              "02:00:00:00:00:11", "net_null0", "\"", "[", "]", "\n", "=", "0x", "1e3", "inf", "nan"]
    with open(os.path.join(here, "fuzz_config.dict"), "w") as f:
        f.write("# Generated by tests/fuzz/make_seeds.py from `l4lb --config-keys` and the enumerations.\n")
        for w in sorted(words) + values:
            f.write('"' + "".join(c if c.isprintable() and c not in '"\\' else "\\x%02x" % ord(c) for c in w) + '"\n')
