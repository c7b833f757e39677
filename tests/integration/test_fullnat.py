"""Full NAT (forwarding = "fullnat") through the real daemon, decoded by scapy: TCP and UDP VIPs
over IPv4 and IPv6, a TCP VIP with PROXY v2, and a VIP whose source pool is too small; and, in a
second run (MixedRun), VIPs whose backends are of the other family.

One daemon run for these, on the two-arm topology of fwd_common (clients on port "client",
backends on port "server"). Every input frame carries a unique number in its IPv4 ID or IPv6
flow label, which full NAT leaves alone, so each output frame is matched to its input.

The backends' replies cannot be built from the balancer's output within one run, and the run
should not depend on which source port the allocator hands out first. So the server port gets,
for every VIP, a reply from every backend to every pair of the VIP's range (a few more ports
than flows): exactly the replies from a flow's backend to the flow's pair must come back to that
flow's client (from the VIP), every other one is dropped as fullnat_no_session. The replies'
contents do not depend on the client (every client of a VIP starts at the same ISN), so they
can be written before the run. They sit behind as many filler frames (to no VIP, dropped) as the
client port receives: the worker reads at most one burst per port per loop, client port first,
so every client frame has been processed before the first reply is read.

ICMP errors from the backends' side go the same way: for two VIPs (IPv6 TCP: packet too big,
IPv4 TCP with PROXY v2: fragmentation needed), an error from a router on the backends' side to
the source address, quoting the balancer's packet from each pair to each backend. Exactly those
about a flow's pair and backend reach the flow's client, from the VIP, about the client's own
packet (its addresses, ports and, with PROXY v2, sequence number); the rest are dropped as
fullnat_no_session. The expected frames are built by scapy, every checksum computed from scratch.
"""

import collections
import ipaddress
import os
import random
import struct
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from scapy.all import ICMP, IP, IPv6, TCP, UDP, Ether, ICMPv6PacketTooBig, Raw  # noqa: E402

import fwd_common as fc  # noqa: E402
from l4lb_harness import run_daemon, shared_run  # noqa: E402

SEED = 55
BISN = 7000  # every backend's ISN
PROXY_SIG = b"\r\n\r\n\x00\r\nQUIT\n"
PROXY_LEN = {4: 28, 6: 52}
L1, L2 = 20, 15  # the PROXY VIP's clients' first and second data segments
MSS_IN = 1460    # offered in the backends' SYN-ACKs
ICMP_VIPS = ("v6tcp", "v4proxy")  # the VIPs whose flows get ICMP errors from the backends' side
ROUTER = {4: "198.18.2.254", 6: "2001:db8:2::fe"}  # the router on the backends' side that reports
ROUTER_MAC = "02:00:00:00:04:fe"
ERR_MTU = 1280


def norm(addr):
    return str(ipaddress.ip_address(addr))


def add32(a, b):
    return (a + b) & 0xFFFFFFFF


def backends(family, base, port=0):
    if family == 4:
        return [fc.Backend(f"198.18.2.{base + i}", f"02:00:00:00:04:{base + i:02x}", 1, port) for i in range(3)]
    return [fc.Backend(f"2001:db8:2::{base + i:x}", f"02:00:00:00:06:{base + i:02x}", 1, port) for i in range(3)]


class FnVip(fc.Vip):
    """A fullnat VIP: its source address and port range, and the ISN its clients use."""

    def __init__(self, key, addr, port, proto, bk, nflows, snat, lo, hi, isn=1000, proxy=False):
        extra = [f"snat_addresses = [{fc.toml_str(snat)}]", f'snat_ports = "{lo}-{hi}"']
        if proxy:
            extra.append('proxy_protocol = "v2"')
        super().__init__(key, addr, port, proto, "fullnat", bk, nflows=nflows, extra=tuple(extra))
        self.snat, self.lo, self.hi, self.isn, self.proxy = snat, lo, hi, isn, proxy

    def bport(self, b):
        return b.port or self.port


def parse_proxy_v2(data):
    """HAProxy's PROXY protocol v2 (§2.2), parsed independently: (header length, dict)."""
    if len(data) < 16 or data[:12] != PROXY_SIG:
        raise ValueError(f"no PROXY v2 signature: {data[:16].hex()}")
    ver_cmd, fam, length = data[12], data[13], struct.unpack_from("!H", data, 14)[0]
    if len(data) < 16 + length:
        raise ValueError("PROXY v2 header longer than the segment")
    body = data[16:16 + length]
    out = {"ver_cmd": ver_cmd, "fam": fam, "len": length}
    if fam == 0x11:  # AF_INET, STREAM
        out["src"], out["dst"] = norm(body[0:4]), norm(body[4:8])
        out["sport"], out["dport"] = struct.unpack_from("!HH", body, 8)
    elif fam == 0x21:  # AF_INET6, STREAM
        out["src"], out["dst"] = norm(body[0:16]), norm(body[16:32])
        out["sport"], out["dport"] = struct.unpack_from("!HH", body, 32)
    return 16 + length, out


def proxy_v2_bytes(fam, src, sport, dst, dport):
    """The header as the balancer must write it, built here from the specification."""
    a = ipaddress.ip_address(src).packed + ipaddress.ip_address(dst).packed + struct.pack("!HH", sport, dport)
    return PROXY_SIG + bytes([0x21, 0x11 if fam == 4 else 0x21]) + struct.pack("!H", len(a)) + a


def rewrite(ip_bytes, fam, src, sport, dst, dport, seq=None, ack=None, options=None, prefix=None):
    """The IP packet after full NAT, built by scapy: addresses and ports replaced, TTL - 1,
    optionally seq/ack/options changed and `prefix` put in front of the TCP payload; lengths and
    checksums recomputed from scratch (an IPv4 UDP checksum of 0 stays 0)."""
    pkt = IP(ip_bytes) if fam == 4 else IPv6(ip_bytes)
    pkt.src, pkt.dst = src, dst
    if fam == 4:
        pkt.ttl -= 1
        del pkt.chksum
        del pkt.len
    else:
        pkt.hlim -= 1
        del pkt.plen
    l4 = pkt[TCP] if TCP in pkt else pkt[UDP]
    l4.sport, l4.dport = sport, dport
    if seq is not None:
        l4.seq = seq
    if ack is not None:
        l4.ack = ack
    if options is not None:
        l4.options = options
    if prefix is not None:
        data = prefix + bytes(l4.payload)
        l4.remove_payload()
        l4.add_payload(Raw(data))
    if isinstance(l4, UDP):
        del l4.len
    if not (isinstance(l4, UDP) and fam == 4 and l4.chksum == 0):
        del l4.chksum
    return bytes(pkt)


def requote(ip_bytes, fam, src, sport, dst, dport, seq=None):
    """The quoted packet as its receiver sent it: addresses, ports and seq replaced, the TTL as it
    was, checksums recomputed by scapy."""
    pkt = IP(ip_bytes) if fam == 4 else IPv6(ip_bytes)
    pkt.src, pkt.dst = src, dst
    if fam == 4:
        del pkt.chksum
    l4 = pkt[TCP]
    l4.sport, l4.dport = sport, dport
    if seq is not None:
        l4.seq = seq
    del l4.chksum
    return bytes(pkt)


def icmp_error(fam, src, dst, ident, ttl, quote):
    """Fragmentation needed (IPv4) or packet too big (IPv6) with MTU ERR_MTU about `quote`."""
    if fam == 4:
        return bytes(IP(src=src, dst=dst, id=ident, ttl=ttl, flags="DF") / ICMP(type=3, code=4, nexthopmtu=ERR_MTU)
                     / Raw(quote))
    return bytes(IPv6(src=src, dst=dst, fl=ident, hlim=ttl) / ICMPv6PacketTooBig(mtu=ERR_MTU) / Raw(quote))


class FullNatRun:
    """Builds the traffic, runs the daemon once, indexes the output."""

    def __init__(self):
        self.rng = rng = random.Random(SEED)
        self.vips = collections.OrderedDict()
        for v in [
            FnVip("v4tcp", "198.18.1.10", 80, "tcp", backends(4, 0x11, 8080), 60, "198.18.2.200", 20000, 20063),
            FnVip("v4udp", "198.18.1.10", 53, "udp", backends(4, 0x21, 5353), 60, "198.18.2.201", 21000, 21063),
            FnVip("v6tcp", "2001:db8:1::10", 80, "tcp", backends(6, 0x11, 8080), 60, "2001:db8:2::200", 20000,
                  20063, isn=0x7FFFFFF0),
            FnVip("v6udp", "2001:db8:1::10", 53, "udp", backends(6, 0x21), 60, "2001:db8:2::201", 22000, 22063),
            # PROXY v2, the clients' ISN just below the 2^32 wrap: header and data cross it.
            FnVip("v4proxy", "198.18.1.20", 443, "tcp", backends(4, 0x31, 8443), 40, "198.18.2.202", 23000, 23043,
                  isn=0xFFFFFFF0, proxy=True),
            FnVip("v6proxy", "2001:db8:1::20", 443, "tcp", backends(6, 0x31), 40, "2001:db8:2::202", 23000, 23043,
                  isn=0xFFFFFFE0, proxy=True),
        ]:
            self.vips[v.key] = v
        # A pool of 4 pairs for 10 one-packet flows: 6 dropped as snat_exhausted.
        self.small = FnVip("small", "198.18.1.40", 53, "udp", backends(4, 0x41), 10, "198.18.2.203", 30000, 30003)

        self.sent = {}  # ident -> (kind, flow, k, ip bytes); kind "fwd", "rev", "drop"
        self.next_ident = 1
        self.flows = []
        first = 0
        for v in list(self.vips.values()) + [self.small]:
            for f in fc.make_flows(v, rng, first, nat=True):
                f.vlan = None if v.proxy else f.vlan
                f.npkts = 1 if v is self.small else (4 if v.proxy else (3 if v.proto == "tcp" else rng.choice([2, 3])))
                self.flows.append(f)
            first += v.nflows

        # Client side: the flows' packets round by round, each round in its own shuffled order.
        client_rx = []
        order = list(self.flows)
        rng.shuffle(order)
        for k in range(4):
            for f in order:
                if k < f.npkts:
                    ident, ip = self.emit_client(f, k)
                    client_rx.append(self.frame(f, ip, k))
        # Client packets that open nothing: an ACK and a FIN without a session (TCP VIP, v4 and v6).
        self.no_session_client = []
        for key, flags in (("v4tcp", "A"), ("v6tcp", "FA")):
            v = self.vips[key]
            f = fc.Flow(vip=v, client=fc.client_addr(v.family, 900), sport=4444, mac="02:00:00:bb:00:02", dport=v.port,
                        proto="tcp")
            ident = self.take("drop", f, 0)
            ip = self.ip(f.family, f.client, v.addr, ident, 64) / TCP(sport=f.sport, dport=v.port, flags=flags,
                                                                     seq=v.isn + 1, ack=5)
            self.sent[ident] = ("drop", f, 0, bytes(ip))
            self.no_session_client.append(ident)
            client_rx.append(fc.frame_of(bytes(ip), f.family, f.mac, fc.CLIENT_MAC))

        # Server side: filler, then every backend's replies to every pair of its VIP's range.
        server_rx = []
        self.filler = []
        for i in range(len(client_rx)):
            ident = self.take("drop", None, i)
            ip = IP(src="198.18.2.250", dst="198.18.1.99", id=ident & 0xFFFF, ttl=64) / UDP(sport=9, dport=9)
            server_rx.append(fc.frame_of(bytes(ip), 4, "02:00:00:00:04:fa", fc.SERVER_MAC))
            self.filler.append(ident)
        self.replies = []  # idents of every reply in a VIP's range
        for v in self.vips.values():
            for b in v.backends:
                for p in range(v.lo, v.hi + 1):
                    for k, l4 in enumerate(self.reply_l4(v, b, p)):
                        ident = self.take("rev", (v, b, p), k)
                        ip = self.ip(v.family, b.addr, v.snat, ident, 64) / l4
                        self.sent[ident] = ("rev", (v, b, p), k, bytes(ip))
                        self.replies.append(ident)
                        server_rx.append(fc.frame_of(bytes(ip), v.family, b.mac, fc.SERVER_MAC))
        # ICMP errors from the backends' side, about the balancer's packet from every pair to every
        # backend (the client's last segment as the backend received it).
        self.errors = []
        for key in ICMP_VIPS:
            v = self.vips[key]
            for b in v.backends:
                for p in range(v.lo, v.hi + 1):
                    ident = self.take("err", (v, b, p), 0)
                    ip = self.ip(v.family, v.snat, b.addr, 0, 63) / self.quoted_l4(v, b, p)
                    quote = bytes(ip)
                    self.sent[ident] = ("err", (v, b, p), 0, quote)
                    self.errors.append(ident)
                    err = icmp_error(v.family, ROUTER[v.family], v.snat, ident, 64, quote)
                    server_rx.append(fc.frame_of(err, v.family, ROUTER_MAC, fc.SERVER_MAC))
        # A backend's packet to a source address, below and above its range.
        self.out_of_range = []
        v = self.vips["v4tcp"]
        b = v.backends[0]
        for p in (v.lo - 1, v.hi + 1):
            ident = self.take("drop", None, p)
            ip = self.ip(4, b.addr, v.snat, ident, 64) / TCP(sport=v.bport(b), dport=p, flags="A", seq=BISN + 1, ack=1)
            self.out_of_range.append(ident)
            server_rx.append(fc.frame_of(bytes(ip), 4, b.mac, fc.SERVER_MAC))

        body = fc.NEIGHBOURS_TOML + "\n" + "\n".join(v.toml() for v in list(self.vips.values()) + [self.small])
        self.config = body
        self.n_fwd = sum(1 for kind, f, k, _ in self.sent.values() if kind == "fwd" and f.vip is not self.small)
        expect_tx = self.n_fwd + 4 + sum(
            len(self.reply_l4(v, v.backends[0], v.lo)) * v.nflows for v in self.vips.values()) + sum(
            self.vips[key].nflows for key in ICMP_VIPS)
        self.result = run_daemon(fc.two_arm_ports(client_rx, server_rx), body, expect_tx=expect_tx)
        self.index()

    # ---- input --------------------------------------------------------------------------------

    def take(self, kind, what, k):
        ident = self.next_ident
        self.next_ident += 1
        assert ident < 0x10000
        self.sent[ident] = (kind, what, k, None)
        return ident

    @staticmethod
    def ip(fam, src, dst, ident, ttl, tos=0, df=True, opts=False, dest_opts=False):
        if fam == 4:
            return IP(src=src, dst=dst, id=ident, ttl=ttl, tos=tos, flags="DF" if df else 0,
                      options=[fc.IPOption_Router_Alert()] if opts else [])
        ip = IPv6(src=src, dst=dst, fl=ident, hlim=ttl, tc=tos)
        return ip / fc.IPv6ExtHdrDestOpt() if dest_opts else ip

    def emit_client(self, f, k):
        v = f.vip
        ident = self.take("fwd", f, k)
        ip = self.ip(f.family, f.client, v.addr, ident, f.ttl, f.tos, f.df, f.ip_options, f.dest_opts)
        if v.proto == "udp":
            l4 = UDP(sport=f.sport, dport=v.port) / Raw(bytes(self.rng.randrange(256) for _ in range(8 + k)))
            if f.udp_zero_csum:
                l4.chksum = 0
        elif v.proxy:
            # SYN, the handshake's ACK, the first data segment (both at ISN + 1), the second.
            flags, seq, data = [("S", v.isn, b""), ("A", add32(v.isn, 1), b""),
                                ("PA", add32(v.isn, 1), bytes(range(1, L1 + 1))),
                                ("PA", add32(v.isn, 1 + L1), bytes(range(100, 100 + L2)))][k]
            l4 = TCP(sport=f.sport, dport=v.port, flags=flags, seq=seq, ack=0 if k == 0 else BISN + 1,
                     window=29200, options=[("MSS", 1460)] if k == 0 else [])
            if data:
                l4 = l4 / Raw(data)
        else:
            flags, seq = [("S", v.isn), ("A", add32(v.isn, 1)), ("PA", add32(v.isn, 1))][k]
            l4 = TCP(sport=f.sport, dport=v.port, flags=flags, seq=seq, ack=0 if k == 0 else BISN + 1, window=29200)
            if k == 2:
                l4 = l4 / Raw(bytes(self.rng.randrange(256) for _ in range(self.rng.randrange(1, 40))))
        b = bytes(ip / l4)
        self.sent[ident] = ("fwd", f, k, b)
        return ident, b

    @staticmethod
    def frame(f, ip, k):
        vlan = f.vlan == "all" or (f.vlan == "first" and k == 0)
        return fc.frame_of(ip, f.family, f.mac, fc.CLIENT_MAC, vlan=100 if vlan else None)

    @staticmethod
    def reply_l4(v, b, p):
        """The backend's packets to pair p: the same for every client of `v`."""
        sport = v.bport(b)
        if v.proto == "udp":
            return [UDP(sport=sport, dport=p) / Raw(b"reply from backend")]
        if not v.proxy:
            return [TCP(sport=sport, dport=p, flags="PA", seq=BISN + 1, ack=add32(v.isn, 30), window=500) / Raw(b"hi")]
        h = PROXY_LEN[v.family]
        first = add32(v.isn, 1)  # the client's first byte
        return [
            TCP(sport=sport, dport=p, flags="SA", seq=BISN, ack=first, window=65535,
                options=[("MSS", MSS_IN), ("SAckOK", b""), ("WScale", 7)]),
            # Part of the header, then the whole header acknowledged: the client sees ISN + 1.
            TCP(sport=sport, dport=p, flags="A", seq=BISN + 1, ack=add32(first, 10), window=500),
            TCP(sport=sport, dport=p, flags="A", seq=BISN + 1, ack=add32(first, h), window=500),
            # The first data segment acknowledged, the second selectively.
            TCP(sport=sport, dport=p, flags="PA", seq=BISN + 1, ack=add32(first, h + L1), window=500,
                options=[("NOP", None), ("NOP", None), ("SAck", (add32(first, h + L1), add32(first, h + L1 + L2)))])
            / Raw(b"banner"),
        ]

    @staticmethod
    def quoted_l4(v, b, p):
        """The segment the balancer sent backend `b` from pair `p`: the client's last (with PROXY
        v2 its second data segment, moved up by the header's length)."""
        if v.proxy:
            seq = add32(add32(v.isn, 1 + L1), PROXY_LEN[v.family])
            return TCP(sport=p, dport=v.bport(b), flags="PA", seq=seq, ack=BISN + 1, window=29200) / Raw(bytes(L2))
        return TCP(sport=p, dport=v.bport(b), flags="PA", seq=add32(v.isn, 1), ack=BISN + 1, window=29200) / Raw(b"x" * 9)

    def expected_error(self, v, ident, quote, flow):
        """The error as the client of `flow` must receive it: from the VIP, TTL - 1, the MTU as
        reported, the quote about the client's own segment (with PROXY v2 at its own seq)."""
        seq = add32(v.isn, 1 + L1) if v.proxy else None
        inner = requote(quote, v.family, flow.client, flow.sport, v.addr, v.port, seq=seq)
        return fc.expected_dsr_like(flow.mac, fc.CLIENT_MAC, icmp_error(v.family, v.addr, flow.client, ident, 63, inner))

    def expected_reply(self, v, k, ip_bytes, flow):
        """The backend's k-th reply as the client of `flow` must receive it."""
        fam = v.family
        kw = {}
        if v.proxy:
            first = add32(v.isn, 1)
            if k == 0:
                kw = {"ack": first, "options": [("MSS", MSS_IN - PROXY_LEN[fam]), ("SAckOK", b""), ("WScale", 7)]}
            elif k in (1, 2):
                kw = {"ack": first}
            else:
                kw = {"ack": add32(first, L1),
                      "options": [("NOP", None), ("NOP", None), ("SAck", (add32(first, L1), add32(first, L1 + L2)))]}
        ip = rewrite(ip_bytes, fam, v.addr, v.port, flow.client, flow.sport, **kw)
        return fc.expected_dsr_like(flow.mac, fc.CLIENT_MAC, ip)

    # ---- output -------------------------------------------------------------------------------

    def index(self):
        self.out = collections.defaultdict(list)  # ident -> [(port, frame)]
        self.unknown = []
        for port, frames in self.result.out.items():
            for fr in frames:
                eth = Ether(fr)
                ip = eth.getlayer(IP) or eth.getlayer(IPv6)
                if ip is None:
                    continue  # ARP
                if isinstance(ip, IPv6) and ip.nh == 58 and bytes(ip.payload)[0] in range(133, 138):
                    continue  # neighbour discovery
                ident = ip.id if isinstance(ip, IP) else ip.fl
                if ident in self.sent:
                    self.out[ident].append((port, fr))
                else:
                    self.unknown.append((port, fr))


_runs = {}


def fn_run():
    return shared_run(_runs, "fullnat", FullNatRun, "fullnat daemon run")


class FullNatTest(unittest.TestCase):
    maxDiff = None

    def flows_of(self, r, key):
        """Checks every client packet of VIP `key` and returns {flow id: (flow, backend, port)}."""
        v = r.vips[key]
        errors, pair_of = [], {}
        idents = [i for i, (kind, f, _, _) in r.sent.items() if kind == "fwd" and f.vip is v]
        self.assertEqual(len(idents), sum(f.npkts for f in r.flows if f.vip is v))
        for ident in idents:
            _, f, k, ip_in = r.sent[ident]
            outs = r.out.get(ident, [])
            if len(outs) != 1 or outs[0][0] != "server":
                errors.append(f"{key} flow {f.five_tuple()} packet {k}: out {[p for p, _ in outs]}, expected server once")
                continue
            fr = outs[0][1]
            ip = Ether(fr).payload
            b = v.backend_by_addr(norm(ip.dst))
            if b is None:
                errors.append(f"{key}: dst {ip.dst} is no backend")
                continue
            if norm(ip.src) != norm(v.snat):
                errors.append(f"{key}: src {ip.src}, expected the source address {v.snat}")
            l4 = ip[TCP] if TCP in ip else ip[UDP]
            port = l4.sport
            if not v.lo <= port <= v.hi:
                errors.append(f"{key}: source port {port} outside {v.lo}-{v.hi}")
            kw = {}
            if v.proxy and k > 0:
                h = PROXY_LEN[v.family]
                if k in (1, 2):  # at ISN + 1: the header in front, seq unchanged
                    kw["prefix"] = proxy_v2_bytes(v.family, f.client, f.sport, v.addr, v.port)
                    got = bytes(l4.payload)
                    try:
                        n, hdr = parse_proxy_v2(got)
                        want = {"ver_cmd": 0x21, "fam": 0x11 if v.family == 4 else 0x21, "len": h - 16,
                                "src": norm(f.client), "dst": norm(v.addr), "sport": f.sport, "dport": v.port}
                        if hdr != want or n != h:
                            errors.append(f"{key} packet {k}: PROXY header {hdr}, expected {want}")
                    except ValueError as e:
                        errors.append(f"{key} packet {k}: {e}")
                else:  # later: moved up by the header's length
                    kw["seq"] = add32(add32(v.isn, 1 + L1), h)
            exp = fc.expected_dsr_like(b.mac, fc.SERVER_MAC,
                                       rewrite(ip_in, v.family, v.snat, port, b.addr, v.bport(b), **kw))
            if fr != exp:
                errors.append(f"{key} flow {f.five_tuple()} packet {k}: {fc.describe_mismatch(fr, exp)}")
            prev = pair_of.setdefault(id(f), (f, b, port))
            if prev[1:] != (b, port):
                errors.append(f"{key} flow {f.five_tuple()}: packets to {prev[1].addr} from :{prev[2]}, "
                              f"then to {b.addr} from :{port}")
        self.assertEqual(errors, [], f"{len(errors)} problems, first ones:\n" + "\n".join(errors[:5]))
        self.assertEqual(len(pair_of), v.nflows)
        ports = [p for _, _, p in pair_of.values()]
        self.assertEqual(len(set(ports)), len(ports), "a source pair used by two live flows")
        return pair_of

    def replies_of(self, r, key):
        """Every backend's reply to every pair of `key`'s range: those from a flow's backend to the
        flow's pair reach the flow's client, exactly; the others are not sent."""
        v = r.vips[key]
        by_pair = {(b.addr, p): f for f, b, p in self.flows_of(r, key).values()}
        errors, delivered = [], 0
        for ident in r.replies:
            _, (rv, b, p), k, ip_in = r.sent[ident]
            if rv is not v:
                continue
            outs = r.out.get(ident, [])
            f = by_pair.get((b.addr, p))
            if f is None:
                if outs:
                    errors.append(f"{key}: reply from {b.addr} to :{p} (no flow) sent out of {[x for x, _ in outs]}")
                continue
            if len(outs) != 1 or outs[0][0] != "client":
                errors.append(f"{key}: reply {k} from {b.addr} to :{p}: out {[x for x, _ in outs]}, expected client once")
                continue
            exp = r.expected_reply(v, k, ip_in, f)
            if outs[0][1] != exp:
                errors.append(f"{key} reply {k} to {f.five_tuple()}: {fc.describe_mismatch(outs[0][1], exp)}")
            delivered += 1
        self.assertEqual(errors, [], f"{len(errors)} problems, first ones:\n" + "\n".join(errors[:5]))
        self.assertEqual(delivered, v.nflows * len(r.reply_l4(v, v.backends[0], v.lo)))

    def errors_of(self, r, key):
        """Every error from the backends' side about `key`'s pairs: those about a flow's pair and
        backend reach the flow's client from the VIP, exactly; the others are not sent."""
        v = r.vips[key]
        by_pair = {(b.addr, p): f for f, b, p in self.flows_of(r, key).values()}
        problems, delivered = [], 0
        for ident in r.errors:
            _, (ev, b, p), _, quote = r.sent[ident]
            if ev is not v:
                continue
            outs = r.out.get(ident, [])
            f = by_pair.get((b.addr, p))
            if f is None:
                if outs:
                    problems.append(f"{key}: error about {b.addr} from :{p} (no flow) sent out of {[x for x, _ in outs]}")
                continue
            if len(outs) != 1 or outs[0][0] != "client":
                problems.append(f"{key}: error about {b.addr} from :{p}: out {[x for x, _ in outs]}, expected client")
                continue
            exp = r.expected_error(v, ident, quote, f)
            if outs[0][1] != exp:
                problems.append(f"{key} error to {f.five_tuple()}: {fc.describe_mismatch(outs[0][1], exp)}")
            delivered += 1
        self.assertEqual(problems, [], f"{len(problems)} problems, first ones:\n" + "\n".join(problems[:5]))
        self.assertEqual(delivered, v.nflows)

    def test_v6_packet_too_big_from_the_backend_side(self):
        self.errors_of(fn_run(), "v6tcp")

    def test_v4_frag_needed_from_the_backend_side_proxy_v2(self):
        self.errors_of(fn_run(), "v4proxy")

    def test_v4_tcp(self):
        self.replies_of(fn_run(), "v4tcp")

    def test_v4_udp(self):
        self.replies_of(fn_run(), "v4udp")

    def test_v6_tcp(self):
        self.replies_of(fn_run(), "v6tcp")

    def test_v6_udp(self):
        self.replies_of(fn_run(), "v6udp")

    def test_v4_proxy_v2(self):
        self.replies_of(fn_run(), "v4proxy")

    def test_v6_proxy_v2(self):
        self.replies_of(fn_run(), "v6proxy")

    def test_flows_spread_over_backends(self):
        r = fn_run()
        for key in ("v4tcp", "v6udp"):
            used = collections.Counter(b.addr for _, b, _ in self.flows_of(r, key).values())
            self.assertEqual(len(used), 3, f"{key}: flows reached only {dict(used)}")

    def test_pool_exhaustion(self):
        r = fn_run()
        v = r.small
        idents = [i for i, (kind, f, _, _) in r.sent.items() if kind == "fwd" and f.vip is v]
        self.assertEqual(len(idents), 10)
        outs = [r.out[i] for i in idents if r.out.get(i)]
        self.assertEqual(len(outs), 4, "a pool of 4 pairs: 4 of 10 flows forwarded")
        ports = sorted(Ether(o[0][1])[UDP].sport for o in outs)
        self.assertEqual(ports, [30000, 30001, 30002, 30003])
        self.assertEqual(r.result.drops["snat_exhausted"], 6)

    def test_nothing_else_sent(self):
        r = fn_run()
        self.assertEqual(r.unknown, [], "frames that match no input")
        leaked = [i for i in r.filler + r.no_session_client + r.out_of_range if r.out.get(i)]
        self.assertEqual(leaked, [], "filler, sessionless client packets or out-of-range replies were sent")
        # No frame toward the clients carries a source address; none toward the backends a client's.
        snats = {norm(v.snat) for v in list(r.vips.values()) + [r.small]}
        clients = {norm(f.client) for f in r.flows}
        for port, frames in r.result.out.items():
            for fr in frames:
                ip = Ether(fr).getlayer(IP) or Ether(fr).getlayer(IPv6)
                if ip is None:
                    continue
                if port == "client":
                    self.assertNotIn(norm(ip.src), snats)
                    self.assertNotIn(norm(ip.dst), snats)
                else:
                    self.assertNotIn(norm(ip.src), clients)

    def test_counters(self):
        r = fn_run()
        d, c = r.result.drops, r.result.counters
        n_flows = sum(v.nflows for v in r.vips.values()) + 4
        n_replies = len(r.replies)
        delivered = sum(v.nflows * len(r.reply_l4(v, v.backends[0], v.lo)) for v in r.vips.values())
        self.assertEqual(c["fullnat_new"], n_flows)
        self.assertEqual(c["fullnat_reverse"], delivered)
        self.assertEqual(c["proxy_header_sent"], 2 * (r.vips["v4proxy"].nflows + r.vips["v6proxy"].nflows))
        n_errors = sum(r.vips[key].nflows for key in ICMP_VIPS)
        self.assertEqual(c["icmp_error_forwarded"], n_errors)
        self.assertEqual(d["fullnat_no_session"], n_replies - delivered + len(r.no_session_client) + len(r.out_of_range)
                         + len(r.errors) - n_errors)
        self.assertEqual(d["no_vip"], len(r.filler))
        self.assertEqual(d["snat_exhausted"], 6)
        self.assertEqual({k: n for k, n in r.result.nonzero_drops().items()
                          if k not in ("fullnat_no_session", "no_vip", "snat_exhausted")}, {})


# ---- across address families --------------------------------------------------------------------

MIX_PAIRS = 16  # each mixed VIP's source port range


def xlate(ip_bytes, src, sport, dst, dport):
    """The packet after full NAT into the other family, built by scapy (RFC 7915 as family_xlate.h
    states it): a new IP header of the other family (TOS <-> traffic class, TTL - 1, IPv4 DF with
    ID 0, IPv6 flow label 0), the L4 header's ports replaced and its checksum computed whole (an
    IPv4 UDP datagram without one gets one)."""
    pkt = IP(ip_bytes) if ip_bytes[0] >> 4 == 4 else IPv6(ip_bytes)
    l4 = (pkt[TCP] if TCP in pkt else pkt[UDP]).copy()
    l4.sport, l4.dport = sport, dport
    del l4.chksum
    if isinstance(l4, UDP):
        del l4.len
    tos, ttl = (pkt.tos, pkt.ttl) if isinstance(pkt, IP) else (pkt.tc, pkt.hlim)
    if ":" in dst:
        out = IPv6(src=src, dst=dst, tc=tos, fl=0, hlim=ttl - 1) / l4
    else:
        out = IP(src=src, dst=dst, tos=tos, ttl=ttl - 1, flags="DF", id=0) / l4
    return bytes(out)


def mark_of(l4):
    """The packet's number: a TCP timestamp's value or a UDP payload's first bytes ("ID" + 16
    bits), which full NAT carries across families (the IPv4 ID and IPv6 flow label it does not)."""
    if isinstance(l4, TCP):
        for name, val in l4.options:
            if name == "Timestamp":
                return val[0]
        return None
    data = bytes(l4.payload)
    return struct.unpack_from("!H", data, 2)[0] if data[:2] == b"ID" else None


class MixedRun:
    """A second daemon run: fullnat VIPs whose backends are of the other family (IPv4 clients to
    IPv6 backends and IPv6 clients to IPv4 backends), TCP and UDP, both directions. Replies are
    written as FullNatRun's are: every backend to every pair of its VIP, behind filler."""

    def __init__(self):
        self.rng = rng = random.Random(SEED + 1)
        self.vips = collections.OrderedDict()
        for v in [
            FnVip("m46tcp", "198.18.1.50", 80, "tcp", backends(6, 0x51, 8080), 12, "2001:db8:2::210", 24000,
                  24000 + MIX_PAIRS - 1),
            FnVip("m46udp", "198.18.1.50", 53, "udp", backends(6, 0x61, 5353), 12, "2001:db8:2::211", 24000,
                  24000 + MIX_PAIRS - 1),
            FnVip("m64tcp", "2001:db8:1::50", 80, "tcp", backends(4, 0x51, 8080), 12, "198.18.2.210", 24000,
                  24000 + MIX_PAIRS - 1, isn=0x7FFFFFF0),
            FnVip("m64udp", "2001:db8:1::50", 53, "udp", backends(4, 0x61), 12, "198.18.2.211", 24000,
                  24000 + MIX_PAIRS - 1),
        ]:
            self.vips[v.key] = v
        self.sent = {}  # mark -> (kind, what, k, ip bytes)
        self.next_mark = 1
        self.flows = []
        first = 0
        for v in self.vips.values():
            for f in fc.make_flows(v, rng, 2000 + first, nat=True):
                f.ip_options = f.dest_opts = False  # the cases apart below
                f.npkts = 3 if v.proto == "tcp" else 2
                self.flows.append(f)
            first += v.nflows
        client_rx = []
        order = list(self.flows)
        rng.shuffle(order)
        for k in range(3):
            for f in order:
                if k < f.npkts:
                    client_rx.append(self.frame(f, self.emit(f, k), k))
        # Not translated, and opening nothing: IPv4 options, an IPv6 extension header.
        self.untranslatable = []
        for key, opt in (("m46tcp", "ip_options"), ("m64udp", "dest_opts")):
            v = self.vips[key]
            f = fc.Flow(vip=v, client=fc.client_addr(v.family, 3000), sport=4444, mac="02:00:00:bb:00:03",
                        dport=v.port, proto=v.proto, npkts=1)
            setattr(f, opt, True)
            self.untranslatable.append(self.next_mark)
            client_rx.append(self.frame(f, self.emit(f, 0), 0))
        server_rx = []
        self.filler = []
        for i in range(len(client_rx)):
            m = self.take("drop", None, i)
            ip = IP(src="198.18.2.250", dst="198.18.1.99", id=m, ttl=64) / UDP(sport=9, dport=9) / Raw(b"ID" + struct.pack("!H", m))
            server_rx.append(fc.frame_of(bytes(ip), 4, "02:00:00:00:04:fa", fc.SERVER_MAC))
            self.filler.append(m)
        self.replies = []
        for v in self.vips.values():
            for b in v.backends:
                for p in range(v.lo, v.hi + 1):
                    m = self.take("rev", (v, b, p), 0)
                    fam = fc.family_of(b.addr)
                    ip = FullNatRun.ip(fam, b.addr, v.snat, m, 64, tos=0x48)
                    if v.proto == "udp":
                        l4 = UDP(sport=v.bport(b), dport=p) / Raw(b"ID" + struct.pack("!H", m) + b"reply")
                        if fam == 4 and p % 2:
                            l4.chksum = 0  # an IPv4 backend's datagram without a checksum
                    else:
                        l4 = TCP(sport=v.bport(b), dport=p, flags="PA", seq=BISN + 1, ack=add32(v.isn, 30),
                                 window=500, options=[("Timestamp", (m, 1))]) / Raw(b"hi")
                    b_ip = bytes(ip / l4)
                    self.sent[m] = ("rev", (v, b, p), 0, b_ip)
                    self.replies.append(m)
                    server_rx.append(fc.frame_of(b_ip, fam, b.mac, fc.SERVER_MAC))
        self.config = fc.NEIGHBOURS_TOML + "\n" + "\n".join(v.toml() for v in self.vips.values())
        n_fwd = sum(f.npkts for f in self.flows)
        self.result = run_daemon(fc.two_arm_ports(client_rx, server_rx), self.config,
                                 expect_tx=n_fwd + sum(v.nflows for v in self.vips.values()))
        self.out = collections.defaultdict(list)
        self.unknown = []
        for port, frames in self.result.out.items():
            for fr in frames:
                ip = Ether(fr).getlayer(IP) or Ether(fr).getlayer(IPv6)
                if ip is None or (isinstance(ip, IPv6) and ip.nh == 58):
                    continue  # ARP, neighbour discovery
                l4 = ip.getlayer(TCP) or ip.getlayer(UDP)
                m = mark_of(l4) if l4 is not None else None
                (self.out[m] if m in self.sent else self.unknown).append((port, fr))

    def take(self, kind, what, k):
        m = self.next_mark
        self.next_mark += 1
        self.sent[m] = (kind, what, k, None)
        return m

    def emit(self, f, k):
        v = f.vip
        m = self.take("fwd", f, k)
        ip = FullNatRun.ip(f.family, f.client, v.addr, m, f.ttl, f.tos, f.df, f.ip_options, f.dest_opts)
        if v.proto == "udp":
            l4 = UDP(sport=f.sport, dport=v.port) / Raw(b"ID" + struct.pack("!H", m) + bytes(range(k + 5)))
            if f.udp_zero_csum:
                l4.chksum = 0
        else:
            flags, seq = [("S", v.isn), ("A", add32(v.isn, 1)), ("PA", add32(v.isn, 1))][k]
            opts = ([("MSS", 1460)] if k == 0 else []) + [("Timestamp", (m, 0))]
            l4 = TCP(sport=f.sport, dport=v.port, flags=flags, seq=seq, ack=0 if k == 0 else BISN + 1, window=29200,
                     options=opts)
            if k == 2:
                l4 = l4 / Raw(bytes(self.rng.randrange(256) for _ in range(self.rng.randrange(1, 40))))
        b = bytes(ip / l4)
        self.sent[m] = ("fwd", f, k, b)
        return b

    frame = staticmethod(FullNatRun.frame)


def mixed_run():
    return shared_run(_runs, "mixed", MixedRun, "mixed-family fullnat daemon run")


class FullNatMixedFamilyTest(unittest.TestCase):
    """Every rewrite both ways across families, each frame compared with scapy's (checksums
    computed by scapy)."""
    maxDiff = None

    def check(self, key):
        r = mixed_run()
        v = r.vips[key]
        errors, pair_of = [], {}
        for m, (kind, f, k, ip_in) in r.sent.items():
            if kind != "fwd" or f.vip is not v or m in r.untranslatable:
                continue
            outs = r.out.get(m, [])
            if len(outs) != 1 or outs[0][0] != "server":
                errors.append(f"{key} packet {k} of {f.five_tuple()}: out {[p for p, _ in outs]}, expected server once")
                continue
            fr = outs[0][1]
            ip = Ether(fr).payload
            b = v.backend_by_addr(norm(ip.dst))
            if b is None:
                errors.append(f"{key}: dst {ip.dst} is no backend")
                continue
            port = (ip[TCP] if TCP in ip else ip[UDP]).sport
            exp = fc.expected_dsr_like(b.mac, fc.SERVER_MAC, xlate(ip_in, v.snat, port, b.addr, v.bport(b)))
            if fr != exp:
                errors.append(f"{key} packet {k} of {f.five_tuple()}: {fc.describe_mismatch(fr, exp)}")
            if pair_of.setdefault(id(f), (f, b, port))[1:] != (b, port):
                errors.append(f"{key}: {f.five_tuple()} changed its backend or pair")
        self.assertEqual(errors, [], f"{len(errors)} problems, first ones:\n" + "\n".join(errors[:5]))
        self.assertEqual(len(pair_of), v.nflows)
        by_pair = {(b.addr, p): f for f, b, p in pair_of.values()}
        delivered = 0
        for m in r.replies:
            _, (rv, b, p), _, ip_in = r.sent[m]
            if rv is not v:
                continue
            outs, f = r.out.get(m, []), by_pair.get((b.addr, p))
            if f is None:
                if outs:
                    errors.append(f"{key}: reply from {b.addr} to :{p} (no flow) sent")
                continue
            if len(outs) != 1 or outs[0][0] != "client":
                errors.append(f"{key}: reply from {b.addr} to :{p}: out {[x for x, _ in outs]}, expected client once")
                continue
            exp = fc.expected_dsr_like(f.mac, fc.CLIENT_MAC, xlate(ip_in, v.addr, v.port, f.client, f.sport))
            if outs[0][1] != exp:
                errors.append(f"{key} reply to {f.five_tuple()}: {fc.describe_mismatch(outs[0][1], exp)}")
            delivered += 1
        self.assertEqual(errors, [], f"{len(errors)} problems, first ones:\n" + "\n".join(errors[:5]))
        self.assertEqual(delivered, v.nflows)

    def test_v4_clients_to_v6_backends_tcp(self):
        self.check("m46tcp")

    def test_v4_clients_to_v6_backends_udp(self):
        self.check("m46udp")

    def test_v6_clients_to_v4_backends_tcp(self):
        self.check("m64tcp")

    def test_v6_clients_to_v4_backends_udp(self):
        self.check("m64udp")

    def test_counters_and_nothing_else(self):
        r = mixed_run()
        self.assertEqual(r.unknown, [], "frames that match no input")
        leaked = [m for m in r.filler + r.untranslatable if r.out.get(m)]
        self.assertEqual(leaked, [], "filler or untranslatable packets were sent")
        d, c = r.result.drops, r.result.counters
        n = sum(v.nflows for v in r.vips.values())
        self.assertEqual(c["fullnat_new"], n)
        self.assertEqual(c["fullnat_reverse"], n)
        self.assertEqual(d["fullnat_xlate_dropped"], len(r.untranslatable))
        self.assertEqual(d["fullnat_no_session"], len(r.replies) - n)
        self.assertEqual(d["no_vip"], len(r.filler))
        self.assertEqual({k: x for k, x in r.result.nonzero_drops().items()
                          if k not in ("fullnat_no_session", "no_vip", "fullnat_xlate_dropped")}, {})


if __name__ == "__main__":
    unittest.main()
