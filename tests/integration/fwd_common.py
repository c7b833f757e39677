"""Shared topology, traffic generator and independent checks for the forwarding tests.

Topology (two-arm, as config/l4lb.toml): port "client" faces the clients (off-link, behind the
gateway 198.18.0.254 / 2001:db8::fe); port "server" has the backends on its connected prefixes.
Every input packet carries a marker with its sequence number in the payload (which no mode
changes), so each output frame is matched to the packet it came from and its expected bytes are
built from scratch with scapy, then compared byte for byte.
"""

import struct
from dataclasses import dataclass

from scapy.all import Dot1Q, Ether, IP, IPv6, IPv6ExtHdrDestOpt, IPOption_Router_Alert, Raw, TCP, UDP, conf

from l4lb_harness import Port, toml_str

conf.verb = 0

CLIENT_MAC = "02:00:00:00:00:01"       # port "client"
SERVER_MAC = "02:00:00:00:00:02"       # port "server"
GW4, GW4_MAC = "198.18.0.254", "02:00:00:00:00:fe"
GW6, GW6_MAC = "2001:db8::fe", "02:00:00:00:00:fd"
ONLINK4, ONLINK6, ONLINK_MAC = "198.18.0.77", "2001:db8::77", "02:00:00:00:00:77"  # neighbour entries
PORT_ADDR4, PORT_ADDR6 = "198.18.2.1", "2001:db8:2::1"  # server port's own addresses

MARK = b"L4LB#"
ETH_IPV4, ETH_IPV6, ETH_VLAN = 0x0800, 0x86DD, 0x8100
MIN_FRAME = 60  # frames shorter than this are padded, as a NIC would deliver them

NEIGHBOURS_TOML = f"""
[[neighbours]]
address = "{GW4}"
mac = "{GW4_MAC}"

[[neighbours]]
address = "{GW6}"
mac = "{GW6_MAC}"

[[neighbours]]
address = "{ONLINK4}"
mac = "{ONLINK_MAC}"

[[neighbours]]
address = "{ONLINK6}"
mac = "{ONLINK_MAC}"
"""


def two_arm_ports(client_rx, server_rx, server_mtu=None):
    return [Port("client", CLIENT_MAC, ipv4="198.18.0.1/24", ipv6="2001:db8::1/64", gateway4=GW4,
                 gateway6=GW6, rx=client_rx),
            Port("server", SERVER_MAC, ipv4="198.18.2.1/24", ipv6="2001:db8:2::1/64", mtu=server_mtu,
                 rx=server_rx)]


def family_of(addr):
    return 6 if ":" in addr else 4


@dataclass
class Backend:
    addr: str
    mac: str
    weight: int = 1
    port: int = 0  # NAT destination port; 0 = keep


@dataclass
class Vip:
    key: str
    addr: str
    port: int
    proto: str                 # "tcp" | "udp"
    mode: str                  # "dsr" | "ipip" | "gue" | "nat"
    backends: list
    nflows: int = 0
    scheduler: str = "maglev"
    tunnel_source4: str = None
    tunnel_source6: str = None
    gue_port: int = None
    extra: tuple = ()          # more "key = value" lines of the VIP (before its backends)

    @property
    def family(self):
        return family_of(self.addr)

    def toml(self):
        lines = ["[[vips]]", f"name = {toml_str(self.key)}", f"address = {toml_str(self.addr)}",
                 f"port = {self.port}", f"protocol = {toml_str(self.proto)}",
                 f"forwarding = {toml_str(self.mode)}", f"scheduler = {toml_str(self.scheduler)}"]
        for k in ("tunnel_source4", "tunnel_source6", "gue_port"):
            if getattr(self, k) is not None:
                v = getattr(self, k)
                lines.append(f"{k} = {toml_str(v) if isinstance(v, str) else v}")
        lines += list(self.extra)
        for b in self.backends:
            lines += ["[[vips.backends]]", f"address = {toml_str(b.addr)}", f"mac = {toml_str(b.mac)}",
                      f"weight = {b.weight}"]
            if b.port:
                lines.append(f"port = {b.port}")
        return "\n".join(lines) + "\n"

    def backend_by_addr(self, addr):
        for b in self.backends:
            if b.addr == addr:
                return b
        return None

    def backend_by_mac(self, mac):
        for b in self.backends:
            if b.mac == mac:
                return b
        return None

    def tunnel_source(self, backend):
        if family_of(backend.addr) == 4:
            return self.tunnel_source4 or PORT_ADDR4
        return self.tunnel_source6 or PORT_ADDR6


@dataclass
class Flow:
    vip: Vip
    client: str
    sport: int
    mac: str
    dport: int
    proto: str
    npkts: int = 3
    ttl: int = 64
    tos: int = 0
    df: bool = True
    vlan: str = None           # None | "all" | "first"
    ip_options: bool = False   # IPv4 Router Alert option (IHL 6)
    dest_opts: bool = False    # IPv6 destination options header
    udp_zero_csum: bool = False
    flow_label: int = 0

    @property
    def family(self):
        return family_of(self.client)

    def five_tuple(self):
        return (self.client, self.vip.addr if self.vip else None, self.sport, self.dport, self.proto)


@dataclass
class Sent:
    seq: int
    flow: Flow
    frame: bytes      # as received by the daemon
    ip: bytes         # the IP packet inside it (no L2, no padding)
    vlan: bool


def marker(seq):
    return MARK + struct.pack("!I", seq) + b"#"


def seq_of(frame):
    i = frame.find(MARK)
    if i < 0:
        return None
    return struct.unpack_from("!I", frame, i + len(MARK))[0]


def build_ip(flow, k, seq, rng, dst=None):
    """The IP packet of the k-th packet of `flow` (bytes)."""
    dst = dst or flow.vip.addr
    payload = marker(seq) + bytes(rng.randrange(256) for _ in range(rng.randrange(0, 48)))
    if flow.proto == "tcp":
        flags = "S" if k == 0 else ("A" if k == 1 else "PA")
        l4 = TCP(sport=flow.sport, dport=flow.dport, flags=flags, seq=1000 + k * 100, ack=0 if k == 0 else 5000,
                 window=rng.randrange(1024, 65535))
    else:
        l4 = UDP(sport=flow.sport, dport=flow.dport)
        if flow.udp_zero_csum:
            l4.chksum = 0
    if flow.family == 4:
        ip = IP(src=flow.client, dst=dst, ttl=flow.ttl, tos=flow.tos, flags="DF" if flow.df else 0,
                id=rng.randrange(65536), options=[IPOption_Router_Alert()] if flow.ip_options else [])
        return bytes(ip / l4 / Raw(payload))
    ip = IPv6(src=flow.client, dst=dst, hlim=flow.ttl, tc=flow.tos, fl=flow.flow_label)
    if flow.dest_opts:
        ip = ip / IPv6ExtHdrDestOpt()
    return bytes(ip / l4 / Raw(payload))


def frame_of(ip_bytes, family, src_mac, dst_mac, vlan=None):
    et = ETH_IPV4 if family == 4 else ETH_IPV6
    if vlan is not None:
        fr = bytes(Ether(src=src_mac, dst=dst_mac, type=ETH_VLAN) / Dot1Q(vlan=vlan, prio=3, type=et)) + ip_bytes
    else:
        fr = bytes(Ether(src=src_mac, dst=dst_mac, type=et)) + ip_bytes
    if len(fr) < MIN_FRAME:
        fr += b"\x00" * (MIN_FRAME - len(fr))
    return fr


def client_addr(family, i):
    if family == 4:
        return f"198.19.{i // 250}.{i % 250 + 1}"
    return f"2001:db8:100::{i // 250:x}:{i % 250 + 1:x}"


def make_flows(vip, rng, first_client, nat=False):
    """vip.nflows flows with varied TTL / TOS / DF / VLAN / options, two flows per client."""
    flows = []
    for i in range(vip.nflows):
        f = Flow(vip=vip, client=client_addr(vip.family, first_client + i // 2),
                 sport=rng.randrange(1024, 65536), mac=f"02:00:00:aa:{i // 256:02x}:{i % 256:02x}",
                 dport=vip.port or rng.randrange(1, 65536), proto=vip.proto, npkts=rng.choice([2, 3, 3, 4]))
        f.ttl = rng.choice([64, 64, 128, 255, 2] + ([] if nat else [1]))
        f.tos = rng.choice([0, 0, 0x10, 0xB8, 0x2A, 0x03])
        f.df = vip.family == 6 or rng.random() < 0.7
        r = rng.random()
        f.vlan = "all" if r < 0.08 else ("first" if r < 0.12 else None)
        if vip.family == 4:
            f.ip_options = rng.random() < 0.05
            f.udp_zero_csum = vip.proto == "udp" and rng.random() < 0.15
        else:
            f.dest_opts = rng.random() < 0.05
            f.flow_label = rng.randrange(1 << 20)
        flows.append(f)
    return flows


def interleave(flows, rng):
    """Packet k of every flow, then packet k+1 ..., the flows in one shuffled order every round: the
    gap between two packets of a flow is at least the number of flows in the later round, so a
    flow's packets never share a 32-packet RX burst (the same-burst case is tested apart)."""
    shuffled = list(flows)
    rng.shuffle(shuffled)
    order = []
    for k in range(max(f.npkts for f in flows)):
        batch = [f for f in shuffled if k < f.npkts]
        assert len(batch) >= 64, "too few flows in the last round to keep a flow's packets apart"
        order += [(f, k) for f in batch]
    return order


def expected_nat(ip_bytes, family, new_dst=None, new_dport=None, new_src=None, new_sport=None):
    """The IP packet after NAT, built independently by scapy: address/port replaced, TTL - 1,
    checksums recomputed from scratch (an IPv4 UDP checksum of 0, "none", stays 0)."""
    pkt = IP(ip_bytes) if family == 4 else IPv6(ip_bytes)
    if new_dst:
        pkt.dst = new_dst
    if new_src:
        pkt.src = new_src
    if family == 4:
        pkt.ttl -= 1
        del pkt.chksum
    else:
        pkt.hlim -= 1
    l4 = pkt[TCP] if TCP in pkt else pkt[UDP]
    if new_dport:
        l4.dport = new_dport
    if new_sport:
        l4.sport = new_sport
    if not (UDP in pkt and family == 4 and l4.chksum == 0):
        del l4.chksum
    return bytes(pkt)


def inner_tos(ip_bytes):
    if ip_bytes[0] >> 4 == 4:
        return ip_bytes[1]
    return ((ip_bytes[0] & 0x0F) << 4) | (ip_bytes[1] >> 4)


def inner_df(ip_bytes):
    # RFC 2003 §3.1: DF copied from an inner IPv4 header; IPv6 is never fragmented on path.
    if ip_bytes[0] >> 4 == 4:
        return bool(ip_bytes[6] & 0x40)
    return True


def expected_tunnel(vip, backend, ip_bytes, gue, outer_id=0, udp_sport=None, flow_label=None):
    """Ethernet + outer IP (+ UDP for GUE) + the untouched inner packet, as scapy builds them
    (lengths and checksums computed by scapy)."""
    inner_v4 = ip_bytes[0] >> 4 == 4
    src = vip.tunnel_source(backend)
    tos = inner_tos(ip_bytes)
    if family_of(backend.addr) == 4:
        outer = IP(src=src, dst=backend.addr, ttl=64, tos=tos, id=outer_id,
                   flags="DF" if inner_df(ip_bytes) else 0, proto=17 if gue else (4 if inner_v4 else 41))
        et = ETH_IPV4
    else:
        outer = IPv6(src=src, dst=backend.addr, hlim=64, tc=tos, fl=flow_label,
                     nh=17 if gue else (4 if inner_v4 else 41))
        et = ETH_IPV6
    if gue:
        udp = UDP(sport=udp_sport, dport=vip.gue_port or 6080)
        if family_of(backend.addr) == 4:
            udp.chksum = 0  # RFC 768: no checksum over IPv4 (the inner packet has its own)
        outer = outer / udp
    return bytes(Ether(dst=backend.mac, src=SERVER_MAC, type=et) / outer / Raw(ip_bytes))


def expected_dsr_like(dst_mac, src_mac, ip_bytes):
    """An untagged, unpadded Ethernet frame around `ip_bytes`."""
    et = ETH_IPV4 if ip_bytes[0] >> 4 == 4 else ETH_IPV6
    return bytes(Ether(dst=dst_mac, src=src_mac, type=et)) + ip_bytes


def expected_dsr(backend, ip_bytes):
    # Only the Ethernet header changes; the IP packet (TTL included) is byte-identical.
    return expected_dsr_like(backend.mac, SERVER_MAC, ip_bytes)


def first_diff(a, b):
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return min(len(a), len(b))


def describe_mismatch(actual, expected):
    i = first_diff(actual, expected)
    return (f"len actual {len(actual)} expected {len(expected)}, first difference at byte {i}\n"
            f"  actual:   {actual[max(0, i - 8):i + 24].hex()}\n"
            f"  expected: {expected[max(0, i - 8):i + 24].hex()}\n"
            f"  actual decoded:   {Ether(actual).summary()}\n"
            f"  expected decoded: {Ether(expected).summary()}")
