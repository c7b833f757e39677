// Packet rewriting for each forwarding mode. Called by the worker once the backend is chosen;
// each function edits the mbuf in place (or prepends headers) and returns its outcome
// (FwdResult): sent on an egress port, or dropped with the reason, or one of the two ways a
// packet too big for the egress leaves (an ICMP reply, or outer fragments). No allocation, no locks.
//
// Output frames are always untagged: an 802.1Q tag on input is removed (ports carry no VLAN
// configuration yet).
#pragma once

#include <cstdint>
#include <cstring>

#include <rte_byteorder.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_mbuf.h>

#include "dataplane/parser.h"
#include "l4lb/counters.h"
#include "l4lb/net.h"
#include "l4lb/snapshot.h"

namespace l4lb::dataplane {

// Header sizes and the checksum arithmetic (RFC 1071 / RFC 1624): include/l4lb/net.h.
using net::csumApplyDelta;
using net::csumReplace16;
using net::csumReplaceBytes;
using net::kIpv4HdrLen;
using net::kIpv6HdrLen;
using net::kUdpHdrLen;
inline constexpr uint16_t kEthLen = net::kEthHdrLen;
static_assert(kEthLen == sizeof(rte_ether_hdr));

// Makes the frame start with an untagged 14-byte Ethernet header for `ethertype` (host order),
// stripping pi.l3_off - 14 bytes of VLAN tag, and returns it.
inline rte_ether_hdr* rewriteEth(rte_mbuf* m, const PacketInfo& pi, const MacAddr& dst, const MacAddr& src,
                                 uint16_t ethertype) {
  if (pi.l3_off > kEthLen) rte_pktmbuf_adj(m, uint16_t(pi.l3_off - kEthLen));
  auto* eth = rte_pktmbuf_mtod(m, rte_ether_hdr*);
  std::memcpy(&eth->dst_addr, dst.bytes.data(), 6);
  std::memcpy(&eth->src_addr, src.bytes.data(), 6);
  eth->ether_type = rte_cpu_to_be_16(ethertype);
  return eth;
}

// Removes Ethernet padding after the IP packet so lengths of what we send are exact.
inline void trimPadding(rte_mbuf* m, const PacketInfo& pi) {
  uint32_t want = uint32_t(pi.l3_off) + pi.l3_len;
  if (rte_pktmbuf_pkt_len(m) > want) rte_pktmbuf_trim(m, uint16_t(rte_pktmbuf_pkt_len(m) - want));
}

inline uint16_t ethertypeOf(Family f) { return f == Family::V4 ? RTE_ETHER_TYPE_IPV4 : RTE_ETHER_TYPE_IPV6; }

// How a forwarding step ended.
enum class FwdOutcome : uint8_t {
  Sent,      // rewritten for the backend: queue it on `egress`
  Dropped,   // not sendable: free it, counted under `drop`
  IcmpSent,  // too big: turned into an ICMP too-big reply to the client, queue it on `egress`
  // Too big but encapsulated whole (outer IPv4, DF clear): may leave fragmented on the outer
  // header to `frag_mtu` (outer_frag.h), on `egress`; where that is not done, a `drop` (too_big).
  Fragment,
  // Handed to the worker that owns it (a full-NAT reply on that worker's ring): nothing to do here.
  HandedOff,
};

// A forwarding step's outcome and the fields it needs.
struct FwdResult {
  FwdOutcome outcome = FwdOutcome::Sent;
  Drop drop = Drop::Ok;   // Dropped: why; Fragment: TooBig, for a caller that does not fragment
  uint16_t egress = 0;    // Sent, IcmpSent, Fragment: Snapshot::ports index
  uint16_t frag_mtu = 0;  // Fragment: the egress MTU

  static constexpr FwdResult sent(uint16_t egress) { return {FwdOutcome::Sent, Drop::Ok, egress, 0}; }
  static constexpr FwdResult dropped(Drop why) { return {FwdOutcome::Dropped, why, 0, 0}; }
  static constexpr FwdResult icmpSent(uint16_t ingress) { return {FwdOutcome::IcmpSent, Drop::Ok, ingress, 0}; }
  static constexpr FwdResult handedOff() { return {FwdOutcome::HandedOff, Drop::Ok, 0, 0}; }
  static constexpr FwdResult fragment(uint16_t egress, uint16_t mtu) {
    return {FwdOutcome::Fragment, Drop::TooBig, egress, mtu};
  }
};

// Too big for the egress port (`overhead`: what encapsulation adds): ICMP back to the client
// when the sender asked not to fragment (always for IPv6), else a counted drop. (A tunnelled
// IPv4 packet without DF over an IPv4 outer header does not come here: encapsulate() marks it
// for outer fragmentation, FwdOutcome::Fragment.) Out of line: the rare path.
FwdResult tooBigFor(rte_mbuf* m, const PacketInfo& pi, const Snapshot& s, uint16_t ingress, uint16_t egress_mtu,
                    uint16_t overhead);

// Makes the frame start kEthLen before its IP header and end with its IP packet (any VLAN tag and
// the Ethernet padding dropped) and returns its start, where the new Ethernet header goes. One
// segment (nearly always): one move of the data start and one length, what trimPadding and
// rte_pktmbuf_adj do in two steps (the parser checked l3_off + l3_len against the first
// segment's data_len, so the new bounds lie within the old ones). A chained mbuf takes the two.
inline uint8_t* frameToIp(rte_mbuf* m, const PacketInfo& pi) {
  if (unlikely(m->nb_segs != 1)) {
    trimPadding(m, pi);
    if (pi.l3_off > kEthLen) rte_pktmbuf_adj(m, uint16_t(pi.l3_off - kEthLen));
    return rte_pktmbuf_mtod(m, uint8_t*);
  }
  uint8_t* eth = rte_pktmbuf_mtod_offset(m, uint8_t*, pi.l3_off - kEthLen);
  m->data_off = uint16_t(m->data_off + pi.l3_off - kEthLen);
  m->data_len = uint16_t(pi.l3_len + kEthLen);
  m->pkt_len = m->data_len;
  return eth;
}

// L2 direct server return: only the Ethernet header changes (RFC-free; IPVS "DR", Katran's L2).
// Inline: the whole of it is a few stores on the worker's hot path. The header is the backend's
// template (BackendRewrite::hdr: next hop, egress port's MAC, the VIP's ethertype, which is the
// packet's: it matched the VIP), and max_l3_len is the egress MTU.
inline FwdResult forwardDsr(rte_mbuf* m, const PacketInfo& pi, const SnapBackend& b, const Snapshot& s,
                            uint16_t ingress) {
  const BackendRewrite& rw = b.rw;
  if (unlikely(pi.l3_len > rw.max_l3_len)) return tooBigFor(m, pi, s, ingress, s.ports[b.egress].mtu, 0);
  std::memcpy(frameToIp(m, pi), rw.hdr.data(), kEthLen);
  return FwdResult::sent(b.egress);
}

// The generic encapsulation: builds every outer field from the snapshot (strip L2, prepend
// [eth][outer ip][udp if gue]). Out of line: the path for what encapFast leaves to it (too big,
// too little headroom, a chained mbuf), and the reference encapFast is tested against.
// Too big for the egress MTU once encapsulated: an IPv4 inner packet without DF (a fragment
// without DF too) under an IPv4 outer header is encapsulated whole with the outer DF clear and
// returned as FwdOutcome::Fragment with the egress MTU (the caller fragments the outer
// header, or drops it as too_big); otherwise
// tooBigFor (ICMP when DF is set, a counted drop otherwise; IPv6 outer is never fragmented).
// GUE or IP-in-IP by the VIP's mode (v.mode).
FwdResult encapsulate(rte_mbuf* m, const PacketInfo& pi, const SnapVip& v, const SnapBackend& b,
                      const Snapshot& s, uint32_t slot_hash, uint16_t ingress, uint16_t ip_id);

// The inner packet's TOS / traffic class, copied to the outer header (RFC 2003 §3.1, RFC 2473 §5.1).
inline uint8_t innerTos(const uint8_t* ip, Family f) {
  if (f == Family::V4) return ip[1];
  return uint8_t(((ip[0] & 0x0f) << 4) | (ip[1] >> 4));
}

// Encapsulation from the backend's precomputed header (BackendRewrite::hdr): one copy of the
// constant bytes, then the per-packet fields (lengths, TOS, ID and DF, flow label, UDP source
// port) and the IPv4 checksum from the precomputed sum. kOuter4 / kGue are per backend / per
// VIP, so the callers pick the specialisation once. Output is byte-identical to encapsulate().
template <bool kOuter4, bool kGue>
inline FwdResult encapFast(rte_mbuf* m, const PacketInfo& pi, const SnapVip& v, const SnapBackend& b,
                           const Snapshot& s, uint32_t slot_hash, uint16_t ingress, uint16_t ip_id) {
  constexpr uint16_t kIpLen = kOuter4 ? kIpv4HdrLen : kIpv6HdrLen;
  constexpr uint16_t kHdrLen = kEthLen + kIpLen + (kGue ? kUdpHdrLen : 0);
  const BackendRewrite& rw = b.rw;
  // The packet's fields in locals first: the stores below are byte stores, which may alias
  // `pi` as far as the compiler knows, and would make it load them again.
  const uint16_t l3_len = pi.l3_len;
  const uint16_t l3_off = pi.l3_off;
  const bool inner4 = pi.family == Family::V4;
  const bool inner_df = pi.df;
  // The new data start: negative when the headroom is too small for the outer headers.
  const int32_t new_off = int32_t(m->data_off) + l3_off - kHdrLen;
  if (unlikely(l3_len > rw.max_l3_len || m->nb_segs != 1 || new_off < 0))
    return encapsulate(m, pi, v, b, s, slot_hash, ingress, ip_id);
  uint8_t* inner = rte_pktmbuf_mtod_offset(m, uint8_t*, l3_off);
  // TOS / traffic class (innerTos) and, over IPv4, DF in one test of the inner family: DF is
  // copied from an IPv4 inner packet (RFC 2003 §3.1) and always set over IPv6 inside (IPv6 is
  // never fragmented on the way).
  uint8_t tos;
  uint32_t frag;
  if (inner4) {
    tos = inner[1];
    frag = inner_df ? RTE_IPV4_HDR_DF_FLAG : 0;
  } else {
    tos = uint8_t(((inner[0] & 0x0f) << 4) | (inner[1] >> 4));
    frag = RTE_IPV4_HDR_DF_FLAG;
  }
  // One segment: dropping L2 and padding and prepending the outer headers is one move of the
  // data start and one length (what rte_pktmbuf_adj + trim + prepend do in three steps).
  uint8_t* p = inner - kHdrLen;
  m->data_off = uint16_t(new_off);
  m->data_len = uint16_t(l3_len + kHdrLen);
  m->pkt_len = m->data_len;
  std::memcpy(p, rw.hdr.data(), kHdrLen);
  uint8_t* ip = p + kEthLen;
  const uint16_t after_ip = uint16_t(l3_len + (kGue ? kUdpHdrLen : 0));
  if constexpr (kOuter4) {
    // The header's first two 32-bit words in host order, each stored with one byte swap:
    // [version/IHL, TOS, total length] and [ID, flags/fragment offset].
    const uint32_t w0 = (uint32_t(tos) << 16) | uint16_t(after_ip + kIpv4HdrLen);
    const uint32_t w0_be = rte_cpu_to_be_32(w0 | (uint32_t(RTE_IPV4_VHL_DEF) << 24));
    const uint32_t w1_be = rte_cpu_to_be_32((uint32_t(ip_id) << 16) | frag);
    std::memcpy(ip, &w0_be, 4);
    std::memcpy(ip + 4, &w1_be, 4);
    // RFC 1071 in host order (a one's complement sum is byte-order independent, RFC 1071 §2(B)):
    // the constant words' sum (outer_sum, which has version/IHL; byte-swapped) plus TOS, length,
    // ID and flags, folded as Linux's csum_fold (the high half of sum + ror(sum, 16) is the
    // end-around-carry sum of the two halves: csumFold32's value in one add); one swap back.
    const uint32_t sum = uint32_t(rte_bswap16(rw.outer_sum)) + w0 + ip_id + frag;
    const uint16_t ck = rte_cpu_to_be_16(uint16_t(~((sum + ((sum >> 16) | (sum << 16))) >> 16)));
    std::memcpy(ip + 10, &ck, 2);
  } else {
    // Flow label from the flow hash: ECMP entropy on IPv6 underlays (RFC 6438).
    const uint32_t vtc_flow = rte_cpu_to_be_32((6u << 28) | (uint32_t(tos) << 20) | (slot_hash & 0xfffff));
    const uint16_t plen_be = rte_cpu_to_be_16(after_ip);
    std::memcpy(ip, &vtc_flow, 4);
    std::memcpy(ip + 4, &plen_be, 2);
  }
  if constexpr (kGue) {
    uint8_t* udp = ip + kIpLen;
    // Source port in 32768..65535 from the flow hash: stable per flow, spread across flows.
    const uint16_t sport_be = rte_cpu_to_be_16(uint16_t(0x8000 | (slot_hash & 0x7fff)));
    const uint16_t ulen_be = rte_cpu_to_be_16(after_ip);
    std::memcpy(udp, &sport_be, 2);
    std::memcpy(udp + 4, &ulen_be, 2);
    // IPv4: checksum 0 (RFC 768), as in the template. IPv6 needs one (RFC 8200 §8.1; the
    // zero-checksum exception of RFC 6935 is not something every receiver accepts).
    if constexpr (!kOuter4) {
      const uint16_t ck = rte_ipv6_udptcp_cksum(reinterpret_cast<const rte_ipv6_hdr*>(ip), udp);
      std::memcpy(udp + 6, &ck, 2);
    }
  }
  return FwdResult::sent(b.egress);
}

// IP-in-IP: RFC 2003 (IPv4 outer), RFC 2473 (IPv6 outer); the inner packet is untouched.
// `ip_id`: the outer IPv4 identification, from the worker's counter (unique while DF is clear).
inline FwdResult forwardIpip(rte_mbuf* m, const PacketInfo& pi, const SnapVip& v, const SnapBackend& b,
                             const Snapshot& s, uint32_t slot_hash, uint16_t ingress, uint16_t ip_id) {
  return b.addr.isV4() ? encapFast<true, false>(m, pi, v, b, s, slot_hash, ingress, ip_id)
                       : encapFast<false, false>(m, pi, v, b, s, slot_hash, ingress, ip_id);
}

// GUE variant 1 (draft-ietf-intarea-gue §4: direct IP encapsulation, no GUE header), as Katran:
// UDP to v.gue_port, source port from the flow hash for ECMP entropy.
inline FwdResult forwardGue(rte_mbuf* m, const PacketInfo& pi, const SnapVip& v, const SnapBackend& b,
                            const Snapshot& s, uint32_t slot_hash, uint16_t ingress, uint16_t ip_id) {
  return b.addr.isV4() ? encapFast<true, true>(m, pi, v, b, s, slot_hash, ingress, ip_id)
                       : encapFast<false, true>(m, pi, v, b, s, slot_hash, ingress, ip_id);
}

// Two-arm NAT, client -> backend: destination VIP:port becomes backend:port; TTL decremented.
// The checksums change by the backend's precomputed RFC 1624 differences (the packet's
// destination is the VIP's address and port, so the difference is the same for every packet).
inline FwdResult forwardNat(rte_mbuf* m, const PacketInfo& pi, const SnapBackend& b, const Snapshot& s,
                            uint16_t ingress) {
  if (unlikely(pi.ttl <= 1)) return FwdResult::dropped(Drop::TtlExceeded);
  const BackendRewrite& rw = b.rw;
  if (unlikely(pi.l3_len > rw.max_l3_len)) return tooBigFor(m, pi, s, ingress, s.ports[b.egress].mtu, 0);
  // The packet's fields in locals first: the byte stores below may alias `pi` as far as the
  // compiler knows, and would make it load them again.
  const uint16_t l3_off = pi.l3_off;
  const uint16_t l3_len = pi.l3_len;
  const bool v4 = pi.family == Family::V4;
  uint8_t* d = rte_pktmbuf_mtod(m, uint8_t*);
  uint8_t* l4 = d + pi.l4_off;
  if (likely(pi.proto == kProtoTcp)) {
    uint16_t ck;
    std::memcpy(&ck, l4 + 16, 2);
    ck = csumApplyDelta(ck, rw.nat_l4_delta);
    std::memcpy(l4 + 16, &ck, 2);
  } else {
    uint16_t ck;
    std::memcpy(&ck, l4 + 6, 2);
    // UDP over IPv4 may carry no checksum (0): keep it that way; 0 means "none", so a computed
    // 0 is sent as 0xffff (RFC 768).
    if (!v4 || ck != 0) {
      ck = csumApplyDelta(ck, rw.nat_l4_delta);
      if (ck == 0) ck = 0xffff;
      std::memcpy(l4 + 6, &ck, 2);
    }
  }
  if (b.port_be != 0) std::memcpy(l4 + 2, &b.port_be, 2);
  uint8_t* l3 = d + l3_off;
  if (v4) {
    uint16_t ck;
    std::memcpy(&ck, l3 + 10, 2);
    ck = csumApplyDelta(ck, rw.nat_ip_delta);
    std::memcpy(l3 + 10, &ck, 2);
    l3[8]--;  // TTL (> 1, checked above)
    std::memcpy(l3 + 16, b.addr.bytes.data(), 4);  // the destination (pi.daddr_off - pi.l3_off)
  } else {
    l3[7]--;  // hop limit
    std::memcpy(l3 + 24, b.addr.bytes.data(), 16);
  }
  // The Ethernet header from the template, after any VLAN tag and the padding are dropped
  // (frameToIp, with the fields loaded above).
  uint8_t* eth;
  if (unlikely(m->nb_segs != 1)) {
    eth = frameToIp(m, pi);
  } else {
    eth = l3 - kEthLen;
    m->data_off = uint16_t(m->data_off + l3_off - kEthLen);
    m->data_len = uint16_t(l3_len + kEthLen);
    m->pkt_len = m->data_len;
  }
  std::memcpy(eth, rw.hdr.data(), kEthLen);
  return FwdResult::sent(b.egress);
}

// Two-arm NAT for a later fragment (no L4 header in it): only the IP header changes, the
// destination address VIP -> backend and the TTL, with the IPv4 header checksum by the same
// precomputed difference as forwardNat. The L4 checksum (and the backend's port) is fixed in
// the first fragment, which carries the L4 header: forwardNat applies the whole-datagram
// difference there (a checksum is a sum, so where in the datagram it is corrected is free).
inline FwdResult forwardNatLaterFragment(rte_mbuf* m, const PacketInfo& pi, const SnapBackend& b, const Snapshot& s,
                                         uint16_t ingress) {
  if (unlikely(pi.ttl <= 1)) return FwdResult::dropped(Drop::TtlExceeded);
  const BackendRewrite& rw = b.rw;
  if (unlikely(pi.l3_len > rw.max_l3_len)) return tooBigFor(m, pi, s, ingress, s.ports[b.egress].mtu, 0);
  trimPadding(m, pi);
  uint8_t* d = rte_pktmbuf_mtod(m, uint8_t*);
  uint8_t* l3 = d + pi.l3_off;
  if (pi.family == Family::V4) {
    uint16_t ck;
    std::memcpy(&ck, l3 + 10, 2);
    ck = csumApplyDelta(ck, rw.nat_ip_delta);
    std::memcpy(l3 + 10, &ck, 2);
    l3[8]--;
    std::memcpy(d + pi.daddr_off, b.addr.bytes.data(), 4);
  } else {
    l3[7]--;
    std::memcpy(d + pi.daddr_off, b.addr.bytes.data(), 16);
  }
  if (pi.l3_off > kEthLen) rte_pktmbuf_adj(m, uint16_t(pi.l3_off - kEthLen));
  std::memcpy(rte_pktmbuf_mtod(m, uint8_t*), rw.hdr.data(), kEthLen);
  return FwdResult::sent(b.egress);
}

// Two-arm NAT, backend -> client: source backend:port becomes VIP:port; TTL decremented;
// routed toward the client by connected prefix or the port's gateway.
FwdResult reverseNat(rte_mbuf* m, const PacketInfo& pi, const SnapVip& v, const Snapshot& s,
                     uint16_t ingress);

// Turns `m` into an ICMP "fragmentation needed" (IPv4, DF set) or ICMPv6 "packet too big"
// reply to the client, advertising `mtu` as the largest packet that fits, sent back out of the
// ingress port. `ingress` is a Snapshot::ports index.
FwdResult replyTooBig(rte_mbuf* m, const PacketInfo& pi, const Snapshot& s, uint16_t ingress, uint16_t mtu);

}  // namespace l4lb::dataplane
