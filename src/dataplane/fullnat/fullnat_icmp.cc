#include "dataplane/fullnat/fullnat_icmp.h"

#include <cstring>

#include <rte_byteorder.h>

#include "dataplane/flow.h"
#include "dataplane/flow_table.h"
#include "dataplane/forward.h"
#include "dataplane/fullnat/fullnat_state.h"
#include "dataplane/lookup.h"
#include "dataplane/token_bucket.h"
#include "l4lb/limits.h"

namespace l4lb::dataplane {
namespace {

using net::kIcmpHdrLen;

// One error's translation: the outer addresses, the quoted packet's addresses and ports, the
// quoted TCP/UDP checksum's difference (the session's, fullnat_state.h), the direction, and
// where it leaves (the port and the Ethernet header in front of the IP packet).
struct IcmpRewrite {
  const uint8_t* outer_src;
  const uint8_t* outer_dst;
  const uint8_t* qsrc;
  const uint8_t* qdst;
  uint16_t qsport_be, qdport_be, l4_delta;
  bool to_client;
  uint16_t egress;
  const uint8_t* eth;  // 14 bytes
};

inline bool sessionLive(const FullNatSession& ss, const Snapshot& s, uint32_t now_ms) {
  return ss.used && uint32_t(now_ms - ss.last_seen_ms) <= timeoutMs(ss.state, s.timeouts);
}

inline void replace32(uint8_t* field, uint32_t v, uint16_t* ck) {
  const uint32_t be = rte_cpu_to_be_32(v);
  if (ck != nullptr) net::csumReplaceBytes(ck, field, reinterpret_cast<const uint8_t*>(&be), 4);
  std::memcpy(field, &be, 4);
}

// The quoted TCP header's sequence number (and ACK) back into the receiver's space, inverting
// fullNatForward / fullNatReverse (tcp_seq.h). `avail`: the quoted TCP bytes (>= 8); `ck`: the
// quoted checksum, updated, or null when the quote does not hold it.
void quotedSeq(uint8_t* tcp, uint32_t avail, const FullNatSession& ss, bool to_client, uint16_t* ck) {
  const uint32_t seq = net::load32be(tcp + 4);
  if (to_client) {
    // A segment the balancer sent the backend: the SYN kept the client's ISN, the segment at
    // ISN + 1 carried the header at that number; every other one was moved up by the delta.
    if (seq != ss.client_isn && seq != ss.client_isn + 1) replace32(tcp + 4, seq - ss.delta.client, ck);
    return;
  }
  // A segment the balancer sent the client: its seq moved by the server's delta, its ACK down by
  // the client's (a SYN-ACK's acknowledges the ISN, the same in both spaces).
  replace32(tcp + 4, seq - ss.delta.server, ck);
  if (avail >= 14 && (tcp[13] & kTcpAck) != 0 && (tcp[13] & kTcpSyn) == 0)
    replace32(tcp + 8, net::load32be(tcp + 8) + ss.delta.client, ck);
}

// Rewrites the error in place: the quote's TCP/UDP header (ports, sequence, checksum), its IP
// header (addresses, IPv4 checksum), the outer IP header (addresses, TTL / hop limit, IPv4
// checksum) and the ICMP checksum.
void rewriteError(rte_mbuf* m, const PacketInfo& pi, const Quote& q, const FullNatSession& ss, const IcmpRewrite& t) {
  uint8_t* d = rte_pktmbuf_mtod(m, uint8_t*);
  uint8_t* l3 = d + pi.l3_off;
  uint8_t* icmp = d + pi.l4_off;
  const uint32_t len = pi.l3_len - uint32_t(pi.l4_off - pi.l3_off);
  uint8_t* quote = icmp + kIcmpHdrLen;
  const uint32_t qlen = len - kIcmpHdrLen;
  uint8_t* ql4 = quote + q.hdr_len;
  const bool v4 = pi.family == Family::V4;
  const unsigned alen = v4 ? 4 : 16;
  const bool tcp = q.proto == kProtoTcp;

  const uint32_t ck_off = tcp ? 16 : 6;
  uint16_t ck = 0;
  bool has_ck = qlen >= q.hdr_len + ck_off + 2;
  if (has_ck) {
    std::memcpy(&ck, ql4 + ck_off, 2);
    has_ck = tcp || !v4 || ck != 0;  // IPv4 UDP without a checksum stays without
  }
  if (has_ck) ck = csumApplyDelta(ck, t.l4_delta);  // addresses and ports (RFC 1624)
  if (tcp && !ss.delta.isZero()) quotedSeq(ql4, qlen - q.hdr_len, ss, t.to_client, has_ck ? &ck : nullptr);
  if (has_ck) {
    if (!tcp && ck == 0) ck = 0xffff;  // 0 means "none" in UDP
    std::memcpy(ql4 + ck_off, &ck, 2);
  }
  std::memcpy(ql4, &t.qsport_be, 2);
  std::memcpy(ql4 + 2, &t.qdport_be, 2);
  uint8_t* qs = quote + (v4 ? 12 : 8);
  uint8_t* qd = quote + (v4 ? 16 : 24);
  if (v4) {
    uint16_t qck;
    std::memcpy(&qck, quote + 10, 2);
    csumReplaceBytes(&qck, qs, t.qsrc, 4);
    csumReplaceBytes(&qck, qd, t.qdst, 4);
    std::memcpy(quote + 10, &qck, 2);
  }
  std::memcpy(qs, t.qsrc, alen);
  std::memcpy(qd, t.qdst, alen);

  if (v4) {
    uint16_t sum;
    std::memcpy(&sum, l3 + 10, 2);
    csumReplaceBytes(&sum, l3 + 12, t.outer_src, 4);
    csumReplaceBytes(&sum, l3 + 16, t.outer_dst, 4);
    uint16_t old_word, new_word;  // TTL shares a 16-bit word with the protocol
    std::memcpy(&old_word, l3 + 8, 2);
    l3[8]--;
    std::memcpy(&new_word, l3 + 8, 2);
    csumReplace16(&sum, old_word, new_word);
    std::memcpy(l3 + 10, &sum, 2);
    std::memcpy(l3 + 12, t.outer_src, 4);
    std::memcpy(l3 + 16, t.outer_dst, 4);
  } else {
    l3[7]--;
    std::memcpy(l3 + 8, t.outer_src, 16);
    std::memcpy(l3 + 24, t.outer_dst, 16);
  }
  // Recomputed: the quote changed in several places, and ICMPv6's pseudo-header too.
  setIcmpChecksum(l3, pi.family, icmp, len);
}

// The last checks (TTL, egress MTU, the error rate: last, so that a refused error spends no
// token), the rewrite and the Ethernet header.
FwdResult translate(WorkerState& w, const Snapshot& s, rte_mbuf* m, const PacketInfo& pi, const Quote& q,
                    const FullNatSession& ss, const IcmpRewrite& t, uint32_t now_ms) {
  if (pi.ttl <= 1) return FwdResult::dropped(Drop::TtlExceeded);
  // RFC 1122 §3.2.2: no ICMP error about an ICMP error, so one too big is dropped, not answered.
  if (pi.l3_len > s.ports[t.egress].mtu) return FwdResult::dropped(Drop::TooBig);
  if (!takeIcmpErrorToken(w.icmp_errors, s.icmp_errors, now_ms)) return FwdResult::dropped(Drop::IcmpRateLimited);
  rewriteError(m, pi, q, ss, t);
  std::memcpy(frameToIp(m, pi), t.eth, kEthLen);
  return FwdResult::sent(t.egress);
}

// From the backend's side: the quote is snat:sport -> backend:bport, `addr` the source address's
// Snapshot::snat_addrs index.
FwdResult fromBackend(WorkerState& w, const Snapshot& s, rte_mbuf* m, const PacketInfo& pi, const Quote& q,
                      uint32_t addr, uint32_t now_ms) {
  const uint8_t* quote = rte_pktmbuf_mtod_offset(m, const uint8_t*, pi.l4_off + kIcmpHdrLen);
  const uint32_t qlen = pi.l3_len - uint32_t(pi.l4_off - pi.l3_off) - kIcmpHdrLen;
  if (q.later_fragment) return FwdResult::dropped(Drop::IcmpQuoteFragment);  // no ports to find it by
  if (qlen < q.hdr_len + 8) return FwdResult::dropped(Drop::BadIcmpQuote);
  const uint8_t* ql4 = quote + q.hdr_len;
  const bool v4 = pi.family == Family::V4;
  const uint16_t port = net::load16be(ql4);
  FullNatState* fn = w.fullnat.get();
  if (fn == nullptr || !fn->inRange(addr, port)) return FwdResult::dropped(Drop::FullNatNoSession);
  if (fn->ownerOf(addr, port) != w.index) return FwdResult::dropped(Drop::FullNatWrongWorker);
  const FullNatSession& ss = fn->session(addr, port);
  if (!sessionLive(ss, s, now_ms) || ss.proto != q.proto || std::memcmp(ql4 + 2, &ss.backend_port_be, 2) != 0 ||
      std::memcmp(ss.backend, quote + (v4 ? 16 : 24), v4 ? 4 : 16) != 0)
    return FwdResult::dropped(Drop::FullNatNoSession);
  if (ss.xlate) return FwdResult::dropped(Drop::FullNatUnsupported);  // a client of the other family
  const SnapPort& out = s.ports[ss.client_port];
  uint8_t eth[kEthLen];
  std::memcpy(eth, ss.client_mac, 6);
  std::memcpy(eth + 6, out.mac.bytes.data(), 6);
  const uint16_t et = rte_cpu_to_be_16(ethertypeOf(pi.family));
  std::memcpy(eth + 12, &et, 2);
  return translate(w, s, m, pi, q, ss,
                   {ss.vip, ss.client, ss.client, ss.vip, ss.client_port_be, ss.vip_port_be, ss.l4_to_client, true,
                    ss.client_port, eth},
                   now_ms);
}

// From the client's side: the quote is vip:vport -> client:cport, the session the one of the
// client's tuple.
FwdResult fromClient(WorkerState& w, const Snapshot& s, rte_mbuf* m, const PacketInfo& pi, const Quote& q,
                     uint32_t now_ms) {
  const uint8_t* quote = rte_pktmbuf_mtod_offset(m, const uint8_t*, pi.l4_off + kIcmpHdrLen);
  const uint8_t* ql4 = quote + q.hdr_len;
  const bool v4 = pi.family == Family::V4;
  FullNatState* fn = w.fullnat.get();
  if (fn == nullptr) return FwdResult::dropped(Drop::FullNatNoSession);
  uint16_t vport_be, cport_be;
  std::memcpy(&vport_be, ql4, 2);
  std::memcpy(&cport_be, ql4 + 2, 2);
  const uint8_t* vip = quote + (v4 ? 12 : 8);
  const uint8_t* client = quote + (v4 ? 16 : 24);
  uint64_t raw = 0;
  bool hit;
  if (v4) {
    FlowKey4 k;
    makeFlowKey(k, client, vip, cport_be, vport_be, q.proto);
    hit = fn->index(false).lookup(&k, FlowTable::indexHash(k), raw);
  } else {
    FlowKey6 k;
    makeFlowKey(k, client, vip, cport_be, vport_be, q.proto);
    hit = fn->index(true).lookup(&k, FlowTable::indexHash(k), raw);
  }
  if (!hit) return FwdResult::dropped(Drop::FullNatNoSession);
  const FullNatSession& ss = fn->sessionOf(uint32_t(raw & kMaxBackendId));  // FlowValue::backend_id
  if (!sessionLive(ss, s, now_ms)) return FwdResult::dropped(Drop::FullNatNoSession);
  const SnapBackend* b = s.backend(ss.backend_id);
  if (b == nullptr) return FwdResult::dropped(Drop::NoBackend);  // removed by a reload
  if (b->addr.isV4() != v4) return FwdResult::dropped(Drop::FullNatUnsupported);  // a backend of the other family
  return translate(w, s, m, pi, q, ss,
                   {ss.snat, ss.backend, ss.backend, ss.snat, ss.backend_port_be, ss.snat_port_be, ss.l4_to_backend,
                    false, b->egress, b->rw.hdr.data()},
                   now_ms);
}

}  // namespace

bool fullNatIcmpError(WorkerState& w, const Snapshot& s, rte_mbuf* m, const PacketInfo& pi, const Quote& q,
                      uint32_t now_ms, TxBatch& tx) {
  if (s.snat_by_addr.size() == 0) return false;  // no source address: no fullnat VIP either
  const uint8_t* quote = rte_pktmbuf_mtod_offset(m, const uint8_t*, pi.l4_off + kIcmpHdrLen);
  const uint32_t qlen = pi.l3_len - uint32_t(pi.l4_off - pi.l3_off) - kIcmpHdrLen;
  const uint8_t* qsrc = quote + (pi.family == Family::V4 ? 12 : 8);
  uint32_t addr = 0;
  FwdResult r;
  if (findSnatAddr(s, qsrc, pi.family, addr)) {
    r = fromBackend(w, s, m, pi, q, addr, now_ms);
  } else {
    // A fullnat VIP's service at the quoted source: the quote's ports name it. Without them (a
    // later fragment, a short quote) the error is the slow path's to refuse.
    if (q.later_fragment || qlen < q.hdr_len + 8) return false;
    uint16_t vport_be;
    std::memcpy(&vport_be, quote + q.hdr_len, 2);
    uint32_t vip_index = 0;
    const SnapVip* v = findVip(s, qsrc, pi.family, vport_be, q.proto, vip_index);
    if (v == nullptr || v->mode != FwdMode::FullNat) return false;
    r = fromClient(w, s, m, pi, q, now_ms);
  }
  if (r.outcome != FwdOutcome::Sent) {
    dropPkt(w, m, r.drop);
    return true;
  }
  w.counters.add(Ctr::IcmpErrorForwarded);
  emit(tx, m, r.egress);
  return true;
}

}  // namespace l4lb::dataplane
