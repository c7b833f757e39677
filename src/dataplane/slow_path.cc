// The worker's slow path (see slow_path.h for who owns which packet). Cold code: clarity over
// speed, but still no allocation, no lock, no syscall and no log line per packet.
#include "dataplane/slow_path.h"

#include <algorithm>
#include <cstring>

#include <rte_byteorder.h>
#include <rte_ether.h>
#include <rte_ip.h>

#include "dataplane/decide.h"
#include "dataplane/forward.h"
#include "dataplane/fullnat/fullnat_icmp.h"
#include "dataplane/lookup.h"
#include "dataplane/icmp_quote.h"
#include "dataplane/pipeline.h"

namespace l4lb::dataplane {
namespace {

using net::kEtherTypeArp;
using net::kEtherTypeVlan;
constexpr uint32_t kIcmpHdrLen = net::kIcmpHdrLen;
using net::load16be;
constexpr uint32_t kVlanEthLen = net::kVlanEthHdrLen;
constexpr uint32_t kArpLen = 28;  // RFC 826 body for Ethernet (6-byte) / IPv4 (4-byte) addresses
constexpr uint16_t kArpRequest = 1, kArpReply = 2;

constexpr uint8_t kIcmpEchoReply = 0, kIcmpUnreachable = 3, kIcmpEchoRequest = 8, kIcmpTimeExceeded = 11;
constexpr uint8_t kIcmpParamProblem = 12, kIcmp6ParamProblem = 4;
constexpr uint8_t kIcmpFragNeeded = 4;  // type 3 code 4 (RFC 1191)
constexpr uint8_t kIcmp6Unreachable = 1, kIcmp6TooBig = 2, kIcmp6TimeExceeded = 3;
constexpr uint8_t kIcmp6EchoRequest = 128, kIcmp6EchoReply = 129;
constexpr uint8_t kNdSolicit = 135, kNdAdvert = 136;
constexpr uint32_t kNsLen = 24;       // RFC 4861 §4.3: type, code, checksum, reserved, target
constexpr uint32_t kNaLen = 24 + 8;   // §4.4 + one target link-layer address option (§4.6.1)
constexpr uint8_t kNdOptSourceLla = 1, kNdOptTargetLla = 2;
constexpr uint8_t kNdHopLimit = 255;  // §7.1.1: proves the sender is on the link
constexpr uint8_t kNaSolicited = 0x40, kNaOverride = 0x20;
constexpr uint8_t kReplyTtl = 64;

inline bool isZero(const uint8_t* p, unsigned n) {
  for (unsigned i = 0; i < n; i++)
    if (p[i] != 0) return false;
  return true;
}

inline bool validKernelPort(const Snapshot& s, int16_t kp, uint16_t self) {
  return kp >= 0 && size_t(kp) < s.ports.size() && uint16_t(kp) != self;
}

// Not balancer traffic: the kernel's when the port has an exception path, else dropped as `d`
// (the reason the packet had before the exception path existed).
void toKernelOrDrop(WorkerState& w, const Snapshot& s, rte_mbuf* m, uint16_t ingress, TxBatch& tx, Drop d) {
  const int16_t kp = s.ports[ingress].kernel_port;
  if (kp < 0) return dropPkt(w, m, d);
  if (!validKernelPort(s, kp, ingress)) return dropPkt(w, m, Drop::NoKernelPath);
  w.counters.add(Ctr::ToKernel);
  emit(tx, m, uint16_t(kp));
}

// Writes a 20-byte IPv4 header (no options, DF: the reply is no larger than the request that
// reached us; RFC 6864 §4.1 lets an atomic datagram carry ID 0).
void writeIpv4(uint8_t* ip, uint8_t tos, uint16_t payload_len, uint8_t proto, uint8_t ttl, const uint8_t* src,
               const uint8_t* dst) {
  auto* h = reinterpret_cast<rte_ipv4_hdr*>(ip);
  h->version_ihl = RTE_IPV4_VHL_DEF;
  h->type_of_service = tos;
  h->total_length = rte_cpu_to_be_16(uint16_t(kIpv4HdrLen + payload_len));
  h->packet_id = 0;
  h->fragment_offset = rte_cpu_to_be_16(RTE_IPV4_HDR_DF_FLAG);
  h->time_to_live = ttl;
  h->next_proto_id = proto;
  h->hdr_checksum = 0;
  std::memcpy(&h->src_addr, src, 4);
  std::memcpy(&h->dst_addr, dst, 4);
  h->hdr_checksum = rte_ipv4_cksum(h);
}

void writeIpv6(uint8_t* ip, uint8_t tc, uint16_t payload_len, uint8_t next, uint8_t hop, const uint8_t* src,
               const uint8_t* dst) {
  auto* h = reinterpret_cast<rte_ipv6_hdr*>(ip);
  h->vtc_flow = rte_cpu_to_be_32((6u << 28) | (uint32_t(tc) << 20));
  h->payload_len = rte_cpu_to_be_16(payload_len);
  h->proto = next;
  h->hop_limits = hop;
  std::memcpy(h->src_addr, src, 16);
  std::memcpy(h->dst_addr, dst, 16);
}

inline void writeEth(uint8_t* p, const uint8_t* dst, const MacAddr& src, uint16_t ethertype) {
  std::memmove(p, dst, 6);  // may be the frame's own source field (p + 6)
  std::memcpy(p + 6, src.bytes.data(), 6);
  p[12] = uint8_t(ethertype >> 8);
  p[13] = uint8_t(ethertype);
}

// Makes the single-segment mbuf exactly `len` bytes long; false when it has no room.
bool resize(rte_mbuf* m, uint32_t len) {
  const uint32_t cur = rte_pktmbuf_pkt_len(m);
  if (cur > len) return rte_pktmbuf_trim(m, uint16_t(cur - len)) == 0;
  if (cur < len) return rte_pktmbuf_append(m, uint16_t(len - cur)) != nullptr;
  return true;
}

// Is `addr` the balancer's on `ingress`: a VIP (any port), or a full-NAT source address on a port
// that a backend of one of its VIPs is reached through. The source addresses are only the
// backends' business: answering ARP, ND or echo for them on the clients' side would hand the
// clients the pool's addresses.
bool answeredHere(const Snapshot& s, const uint8_t* addr, Family f, uint16_t ingress) {
  if (!isVipAddr(s, addr, f)) return false;
  uint32_t a = 0;
  if (!findSnatAddr(s, addr, f, a)) return true;
  for (const SnapVip& v : s.vips) {
    const std::vector<uint32_t>& pool = f == Family::V4 ? v.snat4 : v.snat6;
    if (v.mode != FwdMode::FullNat || std::find(pool.begin(), pool.end(), a) == pool.end()) continue;
    for (uint32_t id : v.backends)
      if (const SnapBackend* b = s.backend(id); b != nullptr && b->egress == ingress) return true;
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// ARP (RFC 826)

// An untagged Ethernet/IPv4 ARP request whose target is ours on `ingress` (answeredHere). A
// gratuitous ARP (sender address = target address) announces, it does not ask: not answered.
bool isArpRequestForVip(const Snapshot& s, const uint8_t* d, uint32_t len, uint16_t ingress) {
  if (len < kEthLen + kArpLen || load16be(d + 12) != kEtherTypeArp) return false;
  const uint8_t* a = d + kEthLen;
  if (load16be(a) != 1 || load16be(a + 2) != RTE_ETHER_TYPE_IPV4 || a[4] != 6 || a[5] != 4 ||
      load16be(a + 6) != kArpRequest) {
    return false;
  }
  if (std::memcmp(a + 14, a + 24, 4) == 0) return false;
  return answeredHere(s, a + 24, Family::V4, ingress);
}

void arpReply(WorkerState& w, const Snapshot& s, rte_mbuf* m, uint16_t ingress, TxBatch& tx) {
  const SnapPort& port = s.ports[ingress];
  uint8_t* d = rte_pktmbuf_mtod(m, uint8_t*);
  uint8_t* a = d + kEthLen;
  uint8_t req_mac[6], req_ip[4], vip[4];
  std::memcpy(req_mac, a + 8, 6);
  std::memcpy(req_ip, a + 14, 4);
  std::memcpy(vip, a + 24, 4);
  writeEth(d, d + 6, port.mac, kEtherTypeArp);  // back to the requester's Ethernet source
  a[6] = 0;
  a[7] = kArpReply;
  std::memcpy(a + 8, port.mac.bytes.data(), 6);  // sender: the VIP at the receiving port's MAC
  std::memcpy(a + 14, vip, 4);
  std::memcpy(a + 18, req_mac, 6);
  std::memcpy(a + 24, req_ip, 4);
  resize(m, kEthLen + kArpLen);  // drops the request's Ethernet padding; never grows
  w.counters.add(Ctr::ArpReply);
  emit(tx, m, ingress);
}

// ---------------------------------------------------------------------------------------------
// Echo (RFC 792, RFC 4443 §4)

// The reply is the request's ICMP message (identifier, sequence number, data) behind new headers
// from the VIP. IPv4 options and IPv6 extension headers are not echoed (RFC 1122 §3.2.2.6 only
// asks for Record Route / Timestamp, which a VIP does not process).
void echoReply(WorkerState& w, const Snapshot& s, rte_mbuf* m, const PacketInfo& pi, uint16_t ingress,
               TxBatch& tx) {
  uint8_t* d = rte_pktmbuf_mtod(m, uint8_t*);
  const uint8_t* l3 = d + pi.l3_off;
  const uint32_t len = pi.l3_len - uint32_t(pi.l4_off - pi.l3_off);
  if (!icmpChecksumOk(l3, pi.family, d + pi.l4_off, len)) return dropPkt(w, m, Drop::BadIcmp);
  const bool v4 = pi.family == Family::V4;
  const uint16_t ip_len = v4 ? kIpv4HdrLen : kIpv6HdrLen;
  const unsigned alen = v4 ? 4 : 16;
  uint8_t client[16], vip[16], client_mac[6];
  std::memcpy(client, d + pi.saddr_off, alen);
  std::memcpy(vip, d + pi.daddr_off, alen);
  std::memcpy(client_mac, d + 6, 6);
  const uint8_t tos = v4 ? l3[1] : uint8_t((l3[0] & 0x0f) << 4 | l3[1] >> 4);

  trimPadding(m, pi);
  rte_pktmbuf_adj(m, uint16_t(pi.l4_off - kEthLen - ip_len));  // untagged, so l4_off >= 14 + ip_len
  uint8_t* p = rte_pktmbuf_mtod(m, uint8_t*);
  writeEth(p, client_mac, s.ports[ingress].mac, ethertypeOf(pi.family));
  uint8_t* ip = p + kEthLen;
  if (v4) writeIpv4(ip, tos, uint16_t(len), kProtoIcmp, kReplyTtl, vip, client);
  else writeIpv6(ip, tos, uint16_t(len), kProtoIcmp6, kReplyTtl, vip, client);
  uint8_t* icmp = ip + ip_len;
  icmp[0] = v4 ? kIcmpEchoReply : kIcmp6EchoReply;
  icmp[1] = 0;
  setIcmpChecksum(ip, pi.family, icmp, len);
  w.counters.add(Ctr::EchoReply);
  emit(tx, m, ingress);
}

// ---------------------------------------------------------------------------------------------
// Neighbour discovery (RFC 4861)

// RFC 4291 §2.7.1: ff02::1:ffXX:XXXX with the target's low 24 bits.
inline bool isSolicitedNodeOf(const uint8_t* dst, const uint8_t* target) {
  static constexpr uint8_t kPrefix[13] = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff};
  return std::memcmp(dst, kPrefix, sizeof(kPrefix)) == 0 && std::memcmp(dst + 13, target + 13, 3) == 0;
}

// A neighbour solicitation whose target is a VIP: validated (RFC 4861 §7.1.1), then answered
// with a solicited, override advertisement carrying the receiving port's MAC (§7.2.4). A
// solicitation from the unspecified address is duplicate address detection (RFC 4862 §5.4.3):
// the advertisement goes to all-nodes, unsolicited.
void neighbourAdvert(WorkerState& w, const Snapshot& s, rte_mbuf* m, const PacketInfo& pi, uint16_t ingress,
                     TxBatch& tx) {
  uint8_t* d = rte_pktmbuf_mtod(m, uint8_t*);
  const uint8_t* l3 = d + pi.l3_off;
  const uint8_t* icmp = d + pi.l4_off;
  const uint32_t len = pi.l3_len - uint32_t(pi.l4_off - pi.l3_off);  // >= kNsLen (checked by the caller)
  const uint8_t* src = l3 + 8;
  const uint8_t* target = icmp + 8;  // a VIP, so not multicast
  bool ok = pi.ttl == kNdHopLimit && icmp[1] == 0 && icmpChecksumOk(l3, pi.family, icmp, len);
  bool has_slla = false;
  for (uint32_t off = kNsLen; ok && off < len;) {
    // Every option is 8n bytes with n > 0 and lies within the message.
    if (len - off < 2 || icmp[off + 1] == 0 || icmp[off + 1] * 8u > len - off) {
      ok = false;
      break;
    }
    has_slla |= icmp[off] == kNdOptSourceLla;
    off += icmp[off + 1] * 8u;
  }
  const bool dad = isZero(src, 16);
  if (dad) ok = ok && !has_slla && isSolicitedNodeOf(l3 + 24, target);
  if (!ok) return dropPkt(w, m, Drop::BadNd);

  static constexpr uint8_t kAllNodes[16] = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01};
  static constexpr uint8_t kAllNodesMac[6] = {0x33, 0x33, 0, 0, 0, 0x01};  // RFC 2464 §7
  uint8_t to[16], vip[16], to_mac[6];
  std::memcpy(to, dad ? kAllNodes : src, 16);
  std::memcpy(vip, target, 16);
  std::memcpy(to_mac, dad ? kAllNodesMac : d + 6, 6);
  if (!resize(m, kEthLen + kIpv6HdrLen + kNaLen)) return dropPkt(w, m, Drop::NoHeadroom);
  uint8_t* p = rte_pktmbuf_mtod(m, uint8_t*);
  const MacAddr& mac = s.ports[ingress].mac;
  writeEth(p, to_mac, mac, RTE_ETHER_TYPE_IPV6);
  uint8_t* ip = p + kEthLen;
  writeIpv6(ip, 0, kNaLen, kProtoIcmp6, kNdHopLimit, vip, to);
  uint8_t* na = ip + kIpv6HdrLen;
  std::memset(na, 0, kNaLen);
  na[0] = kNdAdvert;
  na[4] = uint8_t((dad ? 0 : kNaSolicited) | kNaOverride);  // router flag clear: a VIP is a host
  std::memcpy(na + 8, vip, 16);
  na[24] = kNdOptTargetLla;
  na[25] = 1;  // length in units of 8 bytes
  std::memcpy(na + 26, mac.bytes.data(), 6);
  setIcmpChecksum(ip, Family::V6, na, kNaLen);
  w.counters.add(Ctr::NdReply);
  emit(tx, m, ingress);
}

// ---------------------------------------------------------------------------------------------
// ICMP errors about a VIP flow

// Does a fragmentation-needed (IPv4 type 3 code 4, RFC 1191: next-hop MTU in bytes 6-7) or
// packet-too-big (ICMPv6 type 2, RFC 4443 §3.2: 32-bit MTU in bytes 4-7) report less than any
// path may have (RFC 791: every IPv4 host takes 576-byte datagrams; RFC 8200 §5: every IPv6
// link carries 1280)? False for every other error.
bool reportsMtuBelowMinimum(const uint8_t* icmp, Family f) {
  if (f == Family::V4) return icmp[0] == kIcmpUnreachable && icmp[1] == kIcmpFragNeeded && load16be(icmp + 6) < 576;
  if (icmp[0] != kIcmp6TooBig) return false;
  const uint32_t mtu = uint32_t{load16be(icmp + 4)} << 16 | load16be(icmp + 6);
  return mtu < 1280;
}

// NAT: the backend sent backend:bport -> client, which reverseNat turned into VIP:vport ->
// client; the error quotes that. RFC 5508 §4.2: translate the outer destination back to the
// backend and the quoted source to backend:bport, with the outer IP header, quoted IP header,
// quoted TCP/UDP (when the quote holds its checksum) and ICMP checksums fixed. TTL decremented as
// forwardNat does (the caller checked the egress MTU).
FwdResult natIcmpError(rte_mbuf* m, const PacketInfo& pi, const Quote& q, const SnapBackend& b, const Snapshot& s) {
  const SnapPort& out = s.ports[b.egress];
  if (pi.ttl <= 1) return FwdResult::dropped(Drop::TtlExceeded);
  trimPadding(m, pi);
  uint8_t* d = rte_pktmbuf_mtod(m, uint8_t*);
  uint8_t* l3 = d + pi.l3_off;
  uint8_t* icmp = d + pi.l4_off;
  const uint32_t len = pi.l3_len - uint32_t(pi.l4_off - pi.l3_off);
  uint8_t* quote = icmp + kIcmpHdrLen;
  const uint32_t qlen = len - kIcmpHdrLen;
  uint8_t* ql4 = quote + q.hdr_len;
  const bool v4 = pi.family == Family::V4;
  const unsigned alen = v4 ? 4 : 16;
  uint8_t* qsrc = quote + (v4 ? 12 : 8);
  const uint8_t* baddr = b.addr.bytes.data();

  // A quoted later fragment has no TCP/UDP header (its ports and checksum are in the first):
  // only its IP source is translated.
  const uint32_t ck_off = q.proto == kProtoTcp ? 16 : 6;
  if (!q.later_fragment && qlen >= q.hdr_len + ck_off + 2) {
    uint16_t ck;
    std::memcpy(&ck, ql4 + ck_off, 2);
    if (q.proto == kProtoTcp || !v4 || ck != 0) {  // IPv4 UDP without checksum stays without
      csumReplaceBytes(&ck, qsrc, baddr, alen);
      if (b.port_be != 0) {
        uint16_t old_port;
        std::memcpy(&old_port, ql4, 2);
        csumReplace16(&ck, old_port, b.port_be);
      }
      if (q.proto == kProtoUdp && ck == 0) ck = 0xffff;
      std::memcpy(ql4 + ck_off, &ck, 2);
    }
  }
  if (v4) {
    uint16_t qck;
    std::memcpy(&qck, quote + 10, 2);
    csumReplaceBytes(&qck, qsrc, baddr, 4);
    std::memcpy(quote + 10, &qck, 2);
  }
  if (b.port_be != 0 && !q.later_fragment) std::memcpy(ql4, &b.port_be, 2);
  std::memcpy(qsrc, baddr, alen);

  if (v4) {
    uint16_t sum;
    std::memcpy(&sum, l3 + 10, 2);
    csumReplaceBytes(&sum, l3 + 16, baddr, 4);
    uint16_t old_word, new_word;  // TTL shares a 16-bit word with the protocol
    std::memcpy(&old_word, l3 + 8, 2);
    l3[8]--;
    std::memcpy(&new_word, l3 + 8, 2);
    csumReplace16(&sum, old_word, new_word);
    std::memcpy(l3 + 16, baddr, 4);
    std::memcpy(l3 + 10, &sum, 2);
  } else {
    l3[7]--;
    std::memcpy(l3 + 24, baddr, 16);
  }
  // Recomputed rather than updated: the quote changed in several places, and for ICMPv6 the
  // pseudo-header's destination too.
  setIcmpChecksum(l3, pi.family, icmp, len);
  rewriteEth(m, pi, b.next_hop_mac, out.mac, ethertypeOf(pi.family));
  return FwdResult::sent(b.egress);
}

// An error whose backend is chosen: the error as a packet of the quoted flow (its PacketInfo,
// the flow's VIP and slot hash: the tunnel entropy the flow's own packets get), the quote, and
// the backend.
struct IcmpErrorTarget {
  PktCtx pkt;
  Quote q;
  uint32_t bid;
};

IcmpErrorTarget icmpErrorTarget(const PacketInfo& pi, const Quote& q, const SnapVip& vip, uint32_t bid,
                                hash_sig_t slot_hash) {
  IcmpErrorTarget e{};
  e.pkt.pi = pi;
  e.pkt.vip = &vip;
  e.pkt.slot_hash = slot_hash;
  e.q = q;
  e.bid = bid;
  return e;
}

// The last checks (egress MTU, rate) and the send, for an error whose backend is chosen.
void sendIcmpError(WorkerState& w, const Snapshot& s, rte_mbuf* m, const IcmpErrorTarget& e, uint16_t ingress,
                   uint32_t now_ms, TxBatch& tx) {
  const PacketInfo& pi = e.pkt.pi;
  const SnapVip& vip = *e.pkt.vip;
  const SnapBackend& b = s.backends[e.bid];
  // RFC 1122 §3.2.2: no ICMP error about an ICMP error. One that does not fit the egress MTU is
  // dropped here (too_big), before the forwarders could answer it with fragmentation-needed.
  uint32_t overhead = 0;
  if (vip.mode == FwdMode::Ipip || vip.mode == FwdMode::Gue) {
    overhead = net::encapOverhead(b.addr.isV4(), vip.mode == FwdMode::Gue);
  }
  if (pi.l3_len + overhead > s.ports[b.egress].mtu) return dropPkt(w, m, Drop::TooBig);
  // Last: only an error that would be forwarded takes a token, so refused ones (spoofed quotes,
  // unknown flows) cannot use up the rate valid ones need.
  if (!takeIcmpErrorToken(w.icmp_errors, s.icmp_errors, now_ms)) return dropPkt(w, m, Drop::IcmpRateLimited);
  // The fast path's mode switch; NAT rewrites the error itself (RFC 5508).
  const FwdResult r = forwardByMode(w, s, e.pkt, b, m, ingress, [&] { return natIcmpError(m, pi, e.q, b, s); });
  // Not fragmented here: an error that fits the egress MTU (checked above) is never Fragment.
  if (r.outcome == FwdOutcome::Dropped || r.outcome == FwdOutcome::Fragment) return dropPkt(w, m, r.drop);
  w.counters.add(Ctr::IcmpErrorForwarded);
  emit(tx, m, r.egress);
}

// An ICMP error (IPv4 type 3 or 11, ICMPv6 type 1, 2 or 3; for full NAT also a parameter
// problem, IPv4 type 12, ICMPv6 type 4) to a VIP address. It quotes a packet
// the VIP's side sent, VIP:vport -> client:cport; the flow it belongs to is client -> VIP, whose
// backend must see the error (path MTU discovery, RFC 1191 / RFC 8201, only works if it does).
// The checks and the rule for the backend, in order: slow_path.h.
void forwardIcmpError(WorkerState& w, const Snapshot& s, rte_mbuf* m, const PacketInfo& pi, uint16_t ingress,
                      uint32_t now_ms, TxBatch& tx) {
  const uint8_t* d = rte_pktmbuf_mtod(m, const uint8_t*);
  const uint8_t* l3 = d + pi.l3_off;
  const uint8_t* icmp = d + pi.l4_off;
  const uint32_t len = pi.l3_len - uint32_t(pi.l4_off - pi.l3_off);
  if (!icmpChecksumOk(l3, pi.family, icmp, len)) return dropPkt(w, m, Drop::BadIcmp);
  // Forwarded, such an error would have the backend send segments no path needs (or, with
  // IPv4's RFC 1191 "0" from old routers, guess): a cheap way to slow its connections down.
  if (reportsMtuBelowMinimum(icmp, pi.family)) return dropPkt(w, m, Drop::IcmpMtuTooSmall);

  // The quote: an IP header of the ICMP's own family, then at least the 8 bytes that hold the
  // ports (RFC 792; RFC 4443 §3 quotes more).
  const bool v4 = pi.family == Family::V4;
  const unsigned alen = v4 ? 4 : 16;
  const uint8_t* quote = icmp + kIcmpHdrLen;
  const uint32_t qlen = len - kIcmpHdrLen;
  Quote q;
  if (const Drop qd = parseQuote(quote, qlen, pi.family, q); qd != Drop::Ok) return dropPkt(w, m, qd);
  const uint8_t* qsrc = quote + (v4 ? 12 : 8);
  const uint8_t* qdst = quote + (v4 ? 16 : 24);
  // The error goes to the quoted packet's source: anything else was not sent by this VIP.
  if ((q.proto != kProtoTcp && q.proto != kProtoUdp) || std::memcmp(qsrc, d + pi.daddr_off, alen) != 0) {
    return dropPkt(w, m, Drop::BadIcmpQuote);
  }
  // Full NAT's errors are translated by their flow's session (fullnat_icmp.h).
  if (fullNatIcmpError(w, s, m, pi, q, now_ms, tx)) return;
  // A parameter problem goes no further: only full NAT's are translated.
  if (icmp[0] == (v4 ? kIcmpParamProblem : kIcmp6ParamProblem)) return dropPkt(w, m, Drop::Icmp);
  if (q.later_fragment) {
    // No ports: the quoted datagram is named by (qsrc, qdst, ID, protocol), as it went: VIP ->
    // client. Forwarded only to the backend this worker's fragment table recorded for exactly
    // that datagram (never the client -> VIP datagram with the same ID: IDs are chosen by each
    // sender, so that would be a coincidence, not the flow). Unknown: refused.
    const FragDecision* fd =
        w.frags ? w.frags->lookup(makeFragKey(qsrc, qdst, pi.family, q.frag_id, q.proto), now_ms) : nullptr;
    if (fd == nullptr || fd->drop || fd->vip_index >= s.vips.size()) {
      return dropPkt(w, m, Drop::IcmpQuoteFragment);
    }
    const SnapVip& fv = s.vips[fd->vip_index];
    // The decision must be about a VIP at the quoted source, for the quoted protocol.
    if (uint8_t(fv.proto) != q.proto || fv.addr.isV4() != v4 || std::memcmp(fv.addr.bytes.data(), qsrc, alen) != 0) {
      return dropPkt(w, m, Drop::IcmpQuoteFragment);
    }
    // A reload since the decision may have taken the backend away (as for the fragments).
    if (!usableForExisting(s.backend(fd->backend), fd->vip_index)) return dropPkt(w, m, Drop::NoBackend);
    return sendIcmpError(w, s, m, icmpErrorTarget(pi, q, fv, fd->backend, fd->slot_hash), ingress, now_ms, tx);
  }
  if (qlen < q.hdr_len + 8) return dropPkt(w, m, Drop::BadIcmpQuote);
  const uint8_t* ql4 = quote + q.hdr_len;
  uint16_t vport_be, cport_be;
  std::memcpy(&vport_be, ql4, 2);
  std::memcpy(&cport_be, ql4 + 2, 2);
  uint32_t vip_index = 0;
  const SnapVip* v = findVip(s, qsrc, pi.family, vport_be, q.proto, vip_index);
  if (v == nullptr) return dropPkt(w, m, Drop::BadIcmpQuote);

  // The flow as the fast path keys it: client -> VIP.
  hash_sig_t slot_hash;
  uint64_t raw = 0;
  bool hit;
  if (v4) {
    FlowKey4 k;
    slot_hash = makeFlowKey(k, qdst, qsrc, cport_be, vport_be, q.proto);
    hit = w.flows4->lookup(&k, FlowTable::indexHash(k), raw);
  } else {
    FlowKey6 k;
    slot_hash = makeFlowKey(k, qdst, qsrc, cport_be, vport_be, q.proto);
    hit = w.flows6->lookup(&k, FlowTable::indexHash(k), raw);
  }
  uint32_t bid = kNoBackend;
  if (hit) {
    const FlowValue fv = FlowValue::unpack(raw);
    // The fast path's own rules for an entry (decide.h): a live entry whose backend may carry
    // the flow on (healthy or draining) owns the error.
    if (classifyEntry(fv, s, vip_index, now_ms) == EntryVerdict::Live) {
      bid = fv.backend_id;
    }
  }
  if (bid == kNoBackend) {
    // Flow tables are per worker, and RSS spreads the error by its own addresses (router ->
    // VIP), not by the flow it quotes: it often reaches a worker that never saw the flow. Maglev
    // and source hashing are pure functions of the flow, so their stateless choice is the
    // flow's backend (unless the tables changed since the flow started, as for a full flow
    // table). Round robin depends on the owning worker's cursor: no guess would be right, so
    // the error is dropped and counted (icmp_error_no_flow).
    if (isRoundRobin(*v)) {
      return dropPkt(w, m, Drop::IcmpErrorNoFlow);
    }
    bid = statelessBackend(*v, slot_hash, qdst, pi.family);
    if (bid == kNoBackend) return dropPkt(w, m, Drop::NoBackend);
  }
  sendIcmpError(w, s, m, icmpErrorTarget(pi, q, *v, bid, slot_hash), ingress, now_ms, tx);
}

// For Fragment / UnsupportedProto verdicts: the parser validated the IP header before it gave
// them, so the destination address is readable. True (keep it ours) if it is not.
bool destIsVip(const Snapshot& s, const uint8_t* d, uint32_t len) {
  uint32_t l3 = kEthLen;
  uint16_t type = load16be(d + 12);
  if (type == kEtherTypeVlan) {
    if (len < kVlanEthLen) return true;
    type = load16be(d + 16);
    l3 = kVlanEthLen;
  }
  if (type == RTE_ETHER_TYPE_IPV4) return len < l3 + kIpv4HdrLen || isVipAddr(s, d + l3 + 16, Family::V4);
  if (type == RTE_ETHER_TYPE_IPV6) return len < l3 + kIpv6HdrLen || isVipAddr(s, d + l3 + 24, Family::V6);
  return true;
}

}  // namespace

void relayFromKernel(WorkerState& w, const Snapshot& s, rte_mbuf** pkts, uint16_t n, uint16_t ingress,
                     TxBatch& tx) {
  const int16_t kp = s.ports[ingress].kernel_port;
  const bool ok = validKernelPort(s, kp, ingress);
  for (uint16_t i = 0; i < n; i++) {  // received: counted by processBurst
    if (!ok) {
      dropPkt(w, pkts[i], Drop::NoKernelPath);
      continue;
    }
    w.counters.add(Ctr::FromKernel);
    emit(tx, pkts[i], uint16_t(kp));
  }
}

void handleUnparsed(WorkerState& w, const Snapshot& s, rte_mbuf* m, Drop verdict, uint16_t ingress, TxBatch& tx) {
  const uint8_t* d = rte_pktmbuf_mtod(m, const uint8_t*);
  const uint32_t len = rte_pktmbuf_data_len(m);
  switch (verdict) {
    case Drop::NotIp:
      if (isArpRequestForVip(s, d, len, ingress)) return arpReply(w, s, m, ingress, tx);
      return toKernelOrDrop(w, s, m, ingress, tx, verdict);
    case Drop::Fragment:
    case Drop::UnsupportedProto:
      if (destIsVip(s, d, len)) return dropPkt(w, m, verdict);
      return toKernelOrDrop(w, s, m, ingress, tx, verdict);
    default:
      return dropPkt(w, m, verdict);  // IP or L4 header not valid: nobody's
  }
}

void handleIcmp(WorkerState& w, const Snapshot& s, rte_mbuf* m, const PacketInfo& pi, uint16_t ingress,
                uint32_t now_ms, TxBatch& tx) {
  const uint8_t* d = rte_pktmbuf_mtod(m, const uint8_t*);
  const bool to_vip = isVipAddr(s, d + pi.daddr_off, pi.family);
  const bool echo_ok = to_vip && !pi.has_vlan && answeredHere(s, d + pi.daddr_off, pi.family, ingress);
  const uint8_t* icmp = d + pi.l4_off;
  const uint32_t len = pi.l3_len - uint32_t(pi.l4_off - pi.l3_off);
  const uint8_t type = icmp[0];
  if (pi.family == Family::V4) {
    if (echo_ok && type == kIcmpEchoRequest) return echoReply(w, s, m, pi, ingress, tx);
    if (to_vip && (type == kIcmpUnreachable || type == kIcmpTimeExceeded || type == kIcmpParamProblem)) {
      return forwardIcmpError(w, s, m, pi, ingress, now_ms, tx);
    }
  } else {
    // Solicitations go to the target's solicited-node multicast address (or the target itself
    // for unreachability detection): recognised by the target, not the destination.
    if (type == kNdSolicit && !pi.has_vlan && len >= kNsLen && answeredHere(s, icmp + 8, Family::V6, ingress)) {
      return neighbourAdvert(w, s, m, pi, ingress, tx);
    }
    if (echo_ok && type == kIcmp6EchoRequest) return echoReply(w, s, m, pi, ingress, tx);
    if (to_vip && (type == kIcmp6Unreachable || type == kIcmp6TooBig || type == kIcmp6TimeExceeded ||
                   type == kIcmp6ParamProblem)) {
      return forwardIcmpError(w, s, m, pi, ingress, now_ms, tx);
    }
  }
  if (to_vip) return dropPkt(w, m, Drop::Icmp);
  toKernelOrDrop(w, s, m, ingress, tx, Drop::Icmp);
}

void handleNotForVip(WorkerState& w, const Snapshot& s, rte_mbuf* m, const PacketInfo& pi, uint16_t ingress,
                     TxBatch& tx) {
  // A VIP address on a port or protocol no VIP serves: the kernel does not own the address
  // either, so nobody would answer; and no_vip traffic is never relayed (no open relay).
  const uint8_t* d = rte_pktmbuf_mtod(m, const uint8_t*);
  if (isVipAddr(s, d + pi.daddr_off, pi.family)) return dropPkt(w, m, Drop::NoVip);
  toKernelOrDrop(w, s, m, ingress, tx, Drop::NoVip);
}

}  // namespace l4lb::dataplane
