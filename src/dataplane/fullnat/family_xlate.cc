#include "dataplane/fullnat/family_xlate.h"

#include <cstring>

#include <rte_byteorder.h>
#include <rte_ether.h>
#include <rte_ip.h>

#include "dataplane/fullnat/tcp_seq.h"

namespace l4lb::dataplane::fullnat {

namespace {

// `s` plus the one's complement of each 32-bit word of `p` (len a multiple of 4): the words'
// removal from a sum (RFC 1624 eqn. 3's ~m terms).
uint64_t csumSubWords32(const uint8_t* p, unsigned len, uint64_t s) {
  for (unsigned i = 0; i < len; i += 4) {
    uint32_t v;
    std::memcpy(&v, p + i, 4);
    s += uint32_t(~v);
  }
  return s;
}

// What the new IP header takes over from the old one (RFC 7915 §4.1, §5.1): TOS / traffic
// class and TTL / hop limit.
struct IpFields {
  uint8_t tos, ttl;
};

IpFields readIp(const uint8_t* l3, bool v6) {
  if (!v6) return {l3[1], l3[8]};
  return {uint8_t(((l3[0] & 0x0f) << 4) | (l3[1] >> 4)), l3[7]};
}

// The IP header of family `v6` at `p` for an L4 segment of `l4_len` bytes of `proto`, from `src`
// to `dst`, the TTL / hop limit decremented (> 1: checked by the caller). IPv6: flow label 0.
// IPv4: DF set, identification 0 (an atomic datagram, RFC 6864 §4.1), the checksum computed.
void writeIp(uint8_t* p, bool v6, IpFields f, uint8_t proto, uint16_t l4_len, const uint8_t* src,
             const uint8_t* dst) {
  if (v6) {
    const uint32_t w0 = rte_cpu_to_be_32(6u << 28 | uint32_t(f.tos) << 20);
    std::memcpy(p, &w0, 4);
    net::store16be(p + 4, l4_len);
    p[6] = proto;
    p[7] = uint8_t(f.ttl - 1);
    std::memcpy(p + 8, src, 16);
    std::memcpy(p + 24, dst, 16);
    return;
  }
  p[0] = 0x45;
  p[1] = f.tos;
  net::store16be(p + 2, uint16_t(l4_len + kIpv4HdrLen));
  net::store16be(p + 4, 0);
  net::store16be(p + 6, RTE_IPV4_HDR_DF_FLAG);
  p[8] = uint8_t(f.ttl - 1);
  p[9] = proto;
  p[10] = p[11] = 0;
  std::memcpy(p + 12, src, 4);
  std::memcpy(p + 16, dst, 4);
  const uint16_t ck = uint16_t(~net::csumFold64(net::csumAddWords32(p, kIpv4HdrLen)));
  std::memcpy(p + 10, &ck, 2);
}

// The L4 header's ports and its checksum by the session's difference. True when the checksum is
// left for the caller to compute whole: an IPv4 UDP datagram without one (0), bound for IPv6.
bool rewriteL4(uint8_t* l4, uint8_t proto, bool from_v4, uint16_t delta, uint16_t sport_be, uint16_t dport_be) {
  const bool udp = proto == kProtoUdp;
  uint8_t* ckp = l4 + (udp ? 6 : 16);
  uint16_t ck;
  std::memcpy(&ck, ckp, 2);
  std::memcpy(l4, &sport_be, 2);
  std::memcpy(l4 + 2, &dport_be, 2);
  if (udp && from_v4 && ck == 0) return true;
  ck = csumApplyDelta(ck, delta);
  if (udp && ck == 0) ck = 0xffff;  // 0 means "none" in UDP
  std::memcpy(ckp, &ck, 2);
  return false;
}

// The UDP checksum of the IPv6 packet at `ip6` (in the frame's first segment), whose datagram of
// `l4_len` bytes starts at `l4_off` in the frame, computed whole (RFC 8200 §8.1).
void udpChecksum6(rte_mbuf* m, const uint8_t* ip6, uint32_t l4_off, uint16_t l4_len) {
  uint8_t* ckp = rte_pktmbuf_mtod_offset(m, uint8_t*, l4_off + 6);
  ckp[0] = ckp[1] = 0;
  uint32_t sum = rte_ipv6_phdr_cksum(reinterpret_cast<const rte_ipv6_hdr*>(ip6), 0);
  uint16_t raw = 0;
  rte_raw_cksum_mbuf(m, l4_off, l4_len, &raw);  // within the packet: its length was checked
  sum += raw;
  uint16_t ck = uint16_t(~net::csumFold32(sum));
  if (ck == 0) ck = 0xffff;
  std::memcpy(ckp, &ck, 2);
}

// Replaces the IP header of the packet (its L4 header already rewritten) by one of family `to_v6`
// and returns the frame's start, where the Ethernet header goes. The frame is then exactly
// [Ethernet][IP][L4].
uint8_t* swapIpHeader(rte_mbuf* m, const PacketInfo& pi, bool to_v6, const uint8_t* src, const uint8_t* dst,
                      bool udp_whole) {
  const uint8_t* old = rte_pktmbuf_mtod_offset(m, const uint8_t*, pi.l3_off);
  const IpFields f = readIp(old, !to_v6);
  const uint16_t l4_len = uint16_t(pi.l3_len - (pi.l4_off - pi.l3_off));
  frameToIp(m, pi);
  constexpr uint16_t kGrow = kIpv6HdrLen - kIpv4HdrLen;
  // Headroom checked by translatable(); the first segment holds the old headers.
  uint8_t* e = to_v6 ? reinterpret_cast<uint8_t*>(rte_pktmbuf_prepend(m, kGrow))
                     : reinterpret_cast<uint8_t*>(rte_pktmbuf_adj(m, kGrow));
  writeIp(e + kEthLen, to_v6, f, pi.proto, l4_len, src, dst);
  if (udp_whole) udpChecksum6(m, e + kEthLen, kEthLen + kIpv6HdrLen, l4_len);
  return e;
}

inline uint32_t tcpHdrLen(const uint8_t* l4) { return uint32_t(l4[12] >> 4) * 4; }

}  // namespace

bool translatable(const rte_mbuf* m, const PacketInfo& pi, bool from_v6) {
  if (pi.l4_off - pi.l3_off != (from_v6 ? kIpv6HdrLen : kIpv4HdrLen)) return false;
  // frameToIp gives back any VLAN tag's 4 bytes; IPv6 needs 20 more.
  return from_v6 || rte_pktmbuf_headroom(m) + (pi.l3_off - kEthLen) >= kIpv6HdrLen - kIpv4HdrLen;
}

void crossFamilyDeltas(FullNatSession& ss) {
  const unsigned clen = ss.client_v6 ? 16 : 4, blen = ss.backend_v6 ? 16 : 4;
  // The pseudo-header's sum is its addresses' plus the protocol and the L4 length in either
  // family (RFC 9293 §3.1, RFC 8200 §8.1): out go the client's addresses, in the backend's.
  uint64_t s = csumSubWords32(ss.client, clen, 0);
  s = csumSubWords32(ss.vip, clen, s);
  s = net::csumAddWords32(ss.snat, blen, s);
  s = net::csumAddWords32(ss.backend, blen, s);
  s = net::csumDiffBytes(reinterpret_cast<const uint8_t*>(&ss.client_port_be),
                         reinterpret_cast<const uint8_t*>(&ss.snat_port_be), 2, s);
  s = net::csumDiffBytes(reinterpret_cast<const uint8_t*>(&ss.vip_port_be),
                         reinterpret_cast<const uint8_t*>(&ss.backend_port_be), 2, s);
  ss.l4_to_backend = net::csumFold64(s);
  ss.l4_to_client = uint16_t(~ss.l4_to_backend);
  ss.ip_to_backend = ss.ip_to_client = 0;
}

FwdResult xlateToBackend(const Snapshot& s, const FullNatSession& ss, const SnapBackend& b, rte_mbuf* m,
                         const PacketInfo& pi, uint16_t ingress) {
  const bool to6 = ss.backend_v6;
  if (!translatable(m, pi, !to6)) return FwdResult::dropped(Drop::FullNatXlateDropped);
  const int out_len = int(pi.l3_len) + xlateGrowth(ss);
  if (unlikely(out_len > b.rw.max_l3_len)) {
    // The MTU the client's side has: the egress's, less or plus the 20 bytes the header changes.
    const uint16_t mtu = s.ports[b.egress].mtu;
    return to6 ? tooBigFor(m, pi, s, ingress, mtu, kIpv6HdrLen - kIpv4HdrLen)
               : replyTooBig(m, pi, s, ingress, uint16_t(mtu + kIpv6HdrLen - kIpv4HdrLen));
  }
  uint8_t* l4 = rte_pktmbuf_mtod_offset(m, uint8_t*, pi.l4_off);
  const bool whole = rewriteL4(l4, pi.proto, !ss.client_v6, ss.l4_to_backend, ss.snat_port_be, ss.backend_port_be);
  uint8_t* e = swapIpHeader(m, pi, to6, ss.snat, ss.backend, whole);
  std::memcpy(e, b.rw.hdr.data(), kEthLen);  // the backend's family (snapshot_builder.cc)
  return FwdResult::sent(b.egress);
}

FwdResult xlateToClient(WorkerState& w, const Snapshot& s, FullNatSession& ss, rte_mbuf* m, const PacketInfo& pi) {
  const bool to6 = ss.client_v6;
  if (!translatable(m, pi, !to6)) return FwdResult::dropped(Drop::FullNatXlateDropped);
  const SnapPort& out = s.ports[ss.client_port];
  if (int(pi.l3_len) - xlateGrowth(ss) > out.mtu) return FwdResult::dropped(Drop::TooBig);
  uint8_t* l4 = rte_pktmbuf_mtod_offset(m, uint8_t*, pi.l4_off);
  if (pi.proto == kProtoTcp && ss.proxy_len != 0) {  // as fullNatReverse
    const uint32_t hlen = tcpHdrLen(l4);
    if (pi.tcp_flags & kTcpSyn) lowerMss(l4, hlen, ss.proxy_len, to6 ? kMinMss6 : kMinMss4);
    if (seqToClient(l4, hlen, ss.delta, ss.client_isn) == SeqResult::OptionsKept)
      return FwdResult::dropped(Drop::FullNatUnsupported);
  }
  const bool whole = rewriteL4(l4, pi.proto, !ss.backend_v6, ss.l4_to_client, ss.vip_port_be, ss.client_port_be);
  uint8_t* e = swapIpHeader(m, pi, to6, ss.vip, ss.client, whole);
  std::memcpy(e, ss.client_mac, 6);
  std::memcpy(e + 6, out.mac.bytes.data(), 6);
  net::store16be(e + 12, to6 ? RTE_ETHER_TYPE_IPV6 : RTE_ETHER_TYPE_IPV4);
  w.counters.add(Ctr::FullNatReverse);
  return FwdResult::sent(ss.client_port);
}

}  // namespace l4lb::dataplane::fullnat
