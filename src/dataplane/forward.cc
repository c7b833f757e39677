#include "dataplane/forward.h"

#include <cstring>

#include <rte_byteorder.h>
#include <rte_ether.h>
#include <rte_icmp.h>
#include <rte_ip.h>
#include <rte_tcp.h>
#include <rte_udp.h>

namespace l4lb::dataplane {

namespace {

inline FwdResult tooBig(rte_mbuf* m, const PacketInfo& pi, const Snapshot& s, uint16_t ingress,
                        uint16_t egress_mtu, uint16_t overhead) {
  return tooBigFor(m, pi, s, ingress, egress_mtu, overhead);
}

// Writes the outer IP header (and returns a pointer just past it) for a packet of `inner_len`
// bytes after the outer header, from `src` to `dst`, carrying `proto`.
// The per-packet fields of an outer header: TOS / traffic class; IPv4's DF and ID; IPv6's flow
// label, from the flow's slot hash.
struct OuterFields {
  uint8_t tos = 0;
  bool df = false;
  uint32_t slot_hash = 0;
  uint16_t ip_id = 0;
};

inline uint8_t* writeOuterIp(uint8_t* p, const IpAddr& src, const IpAddr& dst, uint8_t proto, uint16_t inner_len,
                             const OuterFields& f) {
  const uint8_t tos = f.tos;
  const bool df = f.df;
  const uint32_t slot_hash = f.slot_hash;
  const uint16_t ip_id = f.ip_id;
  if (dst.isV4()) {
    auto* ip = reinterpret_cast<rte_ipv4_hdr*>(p);
    ip->version_ihl = RTE_IPV4_VHL_DEF;
    ip->type_of_service = tos;
    ip->total_length = rte_cpu_to_be_16(uint16_t(inner_len + kIpv4HdrLen));
    ip->packet_id = rte_cpu_to_be_16(ip_id);
    ip->fragment_offset = df ? rte_cpu_to_be_16(RTE_IPV4_HDR_DF_FLAG) : 0;
    ip->time_to_live = kTunnelTtl;
    ip->next_proto_id = proto;
    ip->src_addr = src.v4be();
    ip->dst_addr = dst.v4be();
    // RFC 1071 sum of the header as written, from the values in registers (not reloaded from
    // the just-written bytes): 32-bit words as they sit in memory, folded to 16 bits.
    const uint16_t len_be = ip->total_length, id_be = ip->packet_id, frag_be = ip->fragment_offset;
    uint64_t sum = uint64_t(RTE_IPV4_VHL_DEF | uint32_t(tos) << 8 | uint32_t(len_be) << 16) +
                   (uint32_t(id_be) | uint32_t(frag_be) << 16) + (uint32_t(kTunnelTtl) | uint32_t(proto) << 8) +
                   ip->src_addr + ip->dst_addr;
    ip->hdr_checksum = uint16_t(~net::csumFold64(sum));
    return p + kIpv4HdrLen;
  }
  auto* ip6 = reinterpret_cast<rte_ipv6_hdr*>(p);
  // Flow label from the flow hash: ECMP entropy on IPv6 underlays (RFC 6438).
  ip6->vtc_flow = rte_cpu_to_be_32((6u << 28) | (uint32_t(tos) << 20) | (slot_hash & 0xfffff));
  ip6->payload_len = rte_cpu_to_be_16(inner_len);
  ip6->proto = proto;
  ip6->hop_limits = kTunnelTtl;
  std::memcpy(ip6->src_addr, src.bytes.data(), 16);
  std::memcpy(ip6->dst_addr, dst.bytes.data(), 16);
  return p + kIpv6HdrLen;
}

}  // namespace

// Field by field from the snapshot's addresses: the reference for encapFast's templates.
FwdResult encapsulate(rte_mbuf* m, const PacketInfo& pi, const SnapVip& v, const SnapBackend& b,
                      const Snapshot& s, uint32_t slot_hash, uint16_t ingress, uint16_t ip_id) {
  const bool gue = v.mode == FwdMode::Gue;
  const SnapPort& out = s.ports[b.egress];
  const bool outer4 = b.addr.isV4();
  const uint16_t overhead = net::encapOverhead(outer4, gue);
  uint16_t frag_mtu = 0;
  if (uint32_t(pi.l3_len) + overhead > out.mtu) {
    // RFC 2003 §5.1: an inner IPv4 packet without DF may be fragmented on the outer header.
    if (!outer4 || pi.family != Family::V4 || pi.df) return tooBig(m, pi, s, ingress, out.mtu, overhead);
    frag_mtu = out.mtu;
  }

  trimPadding(m, pi);
  const uint8_t* inner = rte_pktmbuf_mtod_offset(m, const uint8_t*, pi.l3_off);
  const uint8_t tos = innerTos(inner, pi.family);
  const bool df = pi.family == Family::V4 ? pi.df : true;
  const uint16_t prepend = uint16_t(kEthLen + overhead);
  // Drop the old L2 header; the new one is written in front of the outer IP header.
  rte_pktmbuf_adj(m, pi.l3_off);
  auto* p = reinterpret_cast<uint8_t*>(rte_pktmbuf_prepend(m, prepend));
  if (p == nullptr) return FwdResult::dropped(Drop::NoHeadroom);

  auto* eth = reinterpret_cast<rte_ether_hdr*>(p);
  std::memcpy(&eth->dst_addr, b.next_hop_mac.bytes.data(), 6);
  std::memcpy(&eth->src_addr, out.mac.bytes.data(), 6);
  eth->ether_type = rte_cpu_to_be_16(ethertypeOf(b.addr.family));

  uint8_t proto = gue ? kProtoUdp : (pi.family == Family::V4 ? uint8_t(IPPROTO_IPIP) : uint8_t(IPPROTO_IPV6));
  uint16_t after_ip = uint16_t(pi.l3_len + (gue ? kUdpHdrLen : 0));
  uint8_t* l4 = writeOuterIp(p + kEthLen, b.tunnel_src, b.addr, proto, after_ip, {tos, outer4 && df, slot_hash, ip_id});
  if (gue) {
    auto* udp = reinterpret_cast<rte_udp_hdr*>(l4);
    // Source port in 32768..65535 from the flow hash: stable per flow, spread across flows.
    udp->src_port = rte_cpu_to_be_16(uint16_t(0x8000 | (slot_hash & 0x7fff)));
    udp->dst_port = v.gue_port_be;
    udp->dgram_len = rte_cpu_to_be_16(after_ip);
    udp->dgram_cksum = 0;  // allowed for IPv4 (RFC 768)
    if (!outer4) {
      // IPv6 needs a UDP checksum (RFC 8200 §8.1; the zero-checksum exception of RFC 6935 is
      // not something every receiver accepts).
      udp->dgram_cksum = rte_ipv6_udptcp_cksum(reinterpret_cast<const rte_ipv6_hdr*>(p + kEthLen), udp);
    }
  }
  // Marked too_big: a caller that does not fragment (or cannot) drops it with that reason.
  if (unlikely(frag_mtu != 0)) return FwdResult::fragment(b.egress, frag_mtu);
  return FwdResult::sent(b.egress);
}

namespace {

// Rewrites one address (at addr_off) and optionally one port (at port_off) of an IP packet,
// decrementing the TTL, with incremental checksum updates (RFC 1624) of the IPv4 header and
// the L4 checksum (whose pseudo-header covers the address).
inline void natRewrite(uint8_t* l3, const PacketInfo& pi, unsigned addr_off, const uint8_t* new_addr,
                       unsigned l4_port_off, uint16_t new_port_be) {
  const unsigned alen = pi.family == Family::V4 ? 4 : 16;
  uint8_t* l4 = l3 + (pi.l4_off - pi.l3_off);
  uint16_t* l4sum = nullptr;
  if (pi.proto == kProtoTcp) {
    l4sum = reinterpret_cast<uint16_t*>(l4 + 16);
  } else if (pi.proto == kProtoUdp) {
    uint16_t cur;
    std::memcpy(&cur, l4 + 6, 2);
    // UDP over IPv4 may carry no checksum (0): keep it that way.
    if (pi.family == Family::V6 || cur != 0) l4sum = reinterpret_cast<uint16_t*>(l4 + 6);
  }
  uint16_t sum_l4 = 0;
  if (l4sum) std::memcpy(&sum_l4, l4sum, 2);
  if (l4sum) csumReplaceBytes(&sum_l4, l3 + addr_off, new_addr, alen);
  if (new_port_be != 0) {
    uint16_t old_port;
    std::memcpy(&old_port, l4 + l4_port_off, 2);
    if (l4sum) csumReplace16(&sum_l4, old_port, new_port_be);
    std::memcpy(l4 + l4_port_off, &new_port_be, 2);
  }
  if (pi.proto == kProtoUdp && l4sum && sum_l4 == 0) sum_l4 = 0xffff;  // 0 means "none" in UDP
  if (l4sum) std::memcpy(l4sum, &sum_l4, 2);

  if (pi.family == Family::V4) {
    auto* ip = reinterpret_cast<rte_ipv4_hdr*>(l3);
    uint16_t sum = ip->hdr_checksum;
    csumReplaceBytes(&sum, l3 + addr_off, new_addr, 4);
    // TTL shares a 16-bit word with the protocol.
    uint16_t old_word, new_word;
    std::memcpy(&old_word, l3 + 8, 2);
    ip->time_to_live--;
    std::memcpy(&new_word, l3 + 8, 2);
    csumReplace16(&sum, old_word, new_word);
    std::memcpy(l3 + addr_off, new_addr, 4);
    ip->hdr_checksum = sum;
  } else {
    l3[7]--;  // hop limit
    std::memcpy(l3 + addr_off, new_addr, 16);
  }
}

}  // namespace

// Next hop toward `dst` on the ports' connected prefixes, else through a port's gateway.
static bool routeTo(const Snapshot& s, const IpAddr& dst, uint16_t& egress, MacAddr& mac) {
  const bool v4 = dst.isV4();
  for (uint16_t i = 0; i < s.ports.size(); i++) {
    const SnapPort& p = s.ports[i];
    if (v4 ? (p.has_v4 && p.v4.contains(dst)) : (p.has_v6 && p.v6.contains(dst))) {
      const MacAddr* n = s.neighbours.find(AddrKey::make(dst));
      if (n == nullptr) return false;
      egress = i;
      mac = *n;
      return true;
    }
  }
  for (uint16_t i = 0; i < s.ports.size(); i++) {
    const SnapPort& p = s.ports[i];
    if (v4 ? p.has_gw4 : p.has_gw6) {
      egress = i;
      mac = v4 ? p.gw4_mac : p.gw6_mac;
      return true;
    }
  }
  return false;
}

FwdResult reverseNat(rte_mbuf* m, const PacketInfo& pi, const SnapVip& v, const Snapshot& s,
                     uint16_t ingress) {
  if (pi.ttl <= 1) return FwdResult::dropped(Drop::TtlExceeded);
  const uint8_t* base = rte_pktmbuf_mtod(m, const uint8_t*);
  IpAddr client = pi.family == Family::V4 ? IpAddr::v4([&] {
    uint32_t a;
    std::memcpy(&a, base + pi.daddr_off, 4);
    return a;
  }())
                                          : IpAddr::v6(base + pi.daddr_off);
  uint16_t egress;
  MacAddr mac;
  if (!routeTo(s, client, egress, mac)) return FwdResult::dropped(Drop::NoRoute);
  if (pi.l3_len > s.ports[egress].mtu) return tooBig(m, pi, s, ingress, s.ports[egress].mtu, 0);
  trimPadding(m, pi);
  uint8_t* l3 = rte_pktmbuf_mtod_offset(m, uint8_t*, pi.l3_off);
  natRewrite(l3, pi, pi.saddr_off - pi.l3_off, v.addr.bytes.data(), 0, v.port_be);
  rewriteEth(m, pi, mac, s.ports[egress].mac, ethertypeOf(pi.family));
  return FwdResult::sent(egress);
}

FwdResult tooBigFor(rte_mbuf* m, const PacketInfo& pi, const Snapshot& s, uint16_t ingress, uint16_t egress_mtu,
                    uint16_t overhead) {
  if (!pi.df) return FwdResult::dropped(Drop::TooBig);
  uint16_t mtu = egress_mtu > overhead ? uint16_t(egress_mtu - overhead) : 0;
  return replyTooBig(m, pi, s, ingress, mtu);
}

FwdResult replyTooBig(rte_mbuf* m, const PacketInfo& pi, const Snapshot& s, uint16_t ingress, uint16_t mtu) {
  const SnapPort& in = s.ports[ingress];
  const auto* eth_in = rte_pktmbuf_mtod(m, const rte_ether_hdr*);
  MacAddr client_mac;
  std::memcpy(client_mac.bytes.data(), &eth_in->src_addr, 6);
  const uint8_t* l3 = rte_pktmbuf_mtod_offset(m, const uint8_t*, pi.l3_off);
  // Reply from the VIP (the address the client sent to) so the client's stack and any stateful
  // firewall on its side match it to the connection; the balancer's own address stays hidden.
  uint8_t vip[16], client[16];
  const unsigned alen = pi.family == Family::V4 ? 4 : 16;
  std::memcpy(vip, l3 + (pi.daddr_off - pi.l3_off), alen);
  std::memcpy(client, l3 + (pi.saddr_off - pi.l3_off), alen);

  trimPadding(m, pi);
  rte_pktmbuf_adj(m, pi.l3_off);  // now the original IP packet: the ICMP payload
  if (pi.family == Family::V4) {
    // RFC 1191 / RFC 792: quote the IP header and at least 8 bytes; keep the reply <= 576 bytes.
    constexpr uint16_t kMaxQuote = 576 - kIpv4HdrLen - net::kIcmpHdrLen;
    if (rte_pktmbuf_pkt_len(m) > kMaxQuote) rte_pktmbuf_trim(m, uint16_t(rte_pktmbuf_pkt_len(m) - kMaxQuote));
    uint16_t quote = uint16_t(rte_pktmbuf_pkt_len(m));
    auto* p = reinterpret_cast<uint8_t*>(rte_pktmbuf_prepend(m, kEthLen + kIpv4HdrLen + net::kIcmpHdrLen));
    if (p == nullptr) return FwdResult::dropped(Drop::NoHeadroom);
    auto* icmp = reinterpret_cast<rte_icmp_hdr*>(p + kEthLen + kIpv4HdrLen);
    icmp->icmp_type = 3;  // destination unreachable
    icmp->icmp_code = 4;  // fragmentation needed and DF set
    icmp->icmp_cksum = 0;
    icmp->icmp_ident = 0;  // unused
    icmp->icmp_seq_nb = rte_cpu_to_be_16(mtu);  // next-hop MTU (RFC 1191 §4)
    icmp->icmp_cksum = uint16_t(~rte_raw_cksum(icmp, size_t(net::kIcmpHdrLen) + quote));
    IpAddr src = IpAddr::v4(0), dst = IpAddr::v4(0);
    std::memcpy(src.bytes.data(), vip, 4);
    std::memcpy(dst.bytes.data(), client, 4);
    writeOuterIp(p + kEthLen, src, dst, kProtoIcmp, uint16_t(net::kIcmpHdrLen + quote), {});
  } else {
    // RFC 4443 §3.2: as much of the invoking packet as fits in the minimum MTU (1280).
    constexpr uint16_t kMaxQuote = 1280 - kIpv6HdrLen - net::kIcmpHdrLen;
    if (rte_pktmbuf_pkt_len(m) > kMaxQuote) rte_pktmbuf_trim(m, uint16_t(rte_pktmbuf_pkt_len(m) - kMaxQuote));
    uint16_t quote = uint16_t(rte_pktmbuf_pkt_len(m));
    auto* p = reinterpret_cast<uint8_t*>(rte_pktmbuf_prepend(m, kEthLen + kIpv6HdrLen + net::kIcmpHdrLen));
    if (p == nullptr) return FwdResult::dropped(Drop::NoHeadroom);
    IpAddr src = IpAddr::v6(vip), dst = IpAddr::v6(client);
    writeOuterIp(p + kEthLen, src, dst, kProtoIcmp6, uint16_t(net::kIcmpHdrLen + quote), {});
    uint8_t* icmp = p + kEthLen + kIpv6HdrLen;
    icmp[0] = 2;  // packet too big
    icmp[1] = 0;
    icmp[2] = icmp[3] = 0;
    uint32_t mtu_be = rte_cpu_to_be_32(mtu < 1280 ? 1280u : mtu);
    std::memcpy(icmp + 4, &mtu_be, 4);
    uint16_t ck = rte_ipv6_udptcp_cksum(reinterpret_cast<const rte_ipv6_hdr*>(p + kEthLen), icmp);
    std::memcpy(icmp + 2, &ck, 2);
  }
  auto* eth = rte_pktmbuf_mtod(m, rte_ether_hdr*);
  std::memcpy(&eth->dst_addr, client_mac.bytes.data(), 6);
  std::memcpy(&eth->src_addr, in.mac.bytes.data(), 6);
  eth->ether_type = rte_cpu_to_be_16(ethertypeOf(pi.family));
  return FwdResult::icmpSent(ingress);
}

}  // namespace l4lb::dataplane
