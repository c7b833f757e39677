// Packet rewriting for each forwarding mode. Called by the worker once the backend is chosen;
// each function edits the mbuf in place (or prepends headers) and returns Drop::Ok with the
// egress port index, or the reason the packet cannot be sent. No allocation, no locks.
//
// Output frames are always untagged: an 802.1Q tag on input is removed (ports carry no VLAN
// configuration yet).
#pragma once

#include <cstdint>
#include <cstring>

#include <rte_ether.h>
#include <rte_mbuf.h>

#include "dataplane/parser.h"
#include "l4lb/counters.h"
#include "l4lb/snapshot.h"

namespace l4lb::dataplane {

// Encapsulation overheads on the IP packet.
inline constexpr uint16_t kIpv4HdrLen = 20;
inline constexpr uint16_t kIpv6HdrLen = 40;
inline constexpr uint16_t kUdpHdrLen = 8;
inline constexpr uint8_t kTunnelTtl = 64;

inline constexpr uint16_t kEthLen = sizeof(rte_ether_hdr);

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

// Result of a forwarding step.
struct FwdResult {
  Drop drop = Drop::Ok;
  uint16_t egress = 0;      // Snapshot::ports index when drop == Ok
  bool icmp_sent = false;   // the packet was turned into an ICMP too-big reply to the client
};

// Too big for the egress port (`overhead`: what encapsulation adds): ICMP back to the client
// when the sender asked not to fragment (always for IPv6), else a counted drop (outer
// fragmentation is not implemented). Out of line: the rare path.
FwdResult tooBigFor(rte_mbuf* m, const PacketInfo& pi, const Snapshot& s, uint16_t ingress, uint16_t egress_mtu,
                    uint16_t overhead);

// L2 direct server return: only the Ethernet header changes (RFC-free; IPVS "DR", Katran's L2).
// Inline: the whole of it is a few stores on the worker's hot path.
inline FwdResult forwardDsr(rte_mbuf* m, const PacketInfo& pi, const SnapBackend& b, const Snapshot& s,
                            uint16_t ingress) {
  const SnapPort& out = s.ports[b.egress];
  if (unlikely(pi.l3_len > out.mtu)) return tooBigFor(m, pi, s, ingress, out.mtu, 0);
  trimPadding(m, pi);
  rewriteEth(m, pi, b.next_hop_mac, out.mac, ethertypeOf(pi.family));
  return {Drop::Ok, b.egress};
}

// IP-in-IP: RFC 2003 (IPv4 outer), RFC 2473 (IPv6 outer); the inner packet is untouched.
// `ip_id`: the outer IPv4 identification, from the worker's counter (unique while DF is clear).
FwdResult forwardIpip(rte_mbuf* m, const PacketInfo& pi, const SnapVip& v, const SnapBackend& b,
                      const Snapshot& s, uint32_t flow_hash, uint16_t ingress, uint16_t ip_id);

// GUE variant 1 (draft-ietf-intarea-gue §4: direct IP encapsulation, no GUE header), as Katran:
// UDP to v.gue_port, source port from the flow hash for ECMP entropy.
FwdResult forwardGue(rte_mbuf* m, const PacketInfo& pi, const SnapVip& v, const SnapBackend& b,
                     const Snapshot& s, uint32_t flow_hash, uint16_t ingress, uint16_t ip_id);

// Two-arm NAT, client -> backend: destination VIP:port becomes backend:port; TTL decremented.
FwdResult forwardNat(rte_mbuf* m, const PacketInfo& pi, const SnapBackend& b, const Snapshot& s,
                     uint16_t ingress);

// Two-arm NAT, backend -> client: source backend:port becomes VIP:port; TTL decremented;
// routed toward the client by connected prefix or the port's gateway.
FwdResult reverseNat(rte_mbuf* m, const PacketInfo& pi, const SnapVip& v, const Snapshot& s,
                     uint16_t ingress);

// Turns `m` into an ICMP "fragmentation needed" (IPv4, DF set) or ICMPv6 "packet too big"
// reply to the client, advertising `mtu` as the largest packet that fits, sent back out of the
// ingress port. `ingress` is a Snapshot::ports index.
FwdResult replyTooBig(rte_mbuf* m, const PacketInfo& pi, const Snapshot& s, uint16_t ingress, uint16_t mtu);

// RFC 1624 incremental checksum update: `sum` is a 16-bit checksum field (as stored, network
// order); old/new are the replaced 16-bit words as stored.
inline void csumReplace16(uint16_t* sum, uint16_t old_be, uint16_t new_be) {
  uint32_t s = uint16_t(~*sum);
  s += uint16_t(~old_be);
  s += new_be;
  s = (s & 0xffff) + (s >> 16);
  s = (s & 0xffff) + (s >> 16);
  *sum = uint16_t(~s);
}

// The same over `len` (even) bytes, e.g. an address: RFC 1624 eqn. 3 summed over 32-bit words
// (2^16 = 1 mod 0xffff, so a 32-bit word adds as its two halves) and folded once. The result is
// the one csumReplace16 word by word gives (both keep the sum in 1..0xffff).
inline void csumReplaceBytes(uint16_t* sum, const uint8_t* old_bytes, const uint8_t* new_bytes, unsigned len) {
  uint64_t s = uint16_t(~*sum);
  unsigned i = 0;
  for (; i + 4 <= len; i += 4) {
    uint32_t o, n;
    std::memcpy(&o, old_bytes + i, 4);
    std::memcpy(&n, new_bytes + i, 4);
    s += uint32_t(~o);
    s += n;
  }
  if (i + 2 <= len) {
    uint16_t o, n;
    std::memcpy(&o, old_bytes + i, 2);
    std::memcpy(&n, new_bytes + i, 2);
    s += uint16_t(~o);
    s += n;
  }
  s = (s & 0xffffffffu) + (s >> 32);
  s = (s & 0xffff) + (s >> 16);
  s = (s & 0xffff) + (s >> 16);
  s = (s & 0xffff) + (s >> 16);
  *sum = uint16_t(~s);
}

}  // namespace l4lb::dataplane
