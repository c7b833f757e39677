#include "dataplane/fullnat/fullnat_path.h"

#include <algorithm>
#include <cstring>

#include <rte_byteorder.h>
#include <rte_ether.h>

#include "dataplane/decide.h"
#include "dataplane/fullnat/family_xlate.h"
#include "dataplane/fullnat/fullnat_handoff.h"
#include "dataplane/fullnat/fullnat_state.h"
#include "dataplane/fullnat/proxy_v2.h"
#include "dataplane/fullnat/segment_prefix.h"
#include "dataplane/fullnat/tcp_seq.h"

namespace l4lb::dataplane {

namespace {

inline uint32_t load32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// Rewrites source and destination (addresses and ports) of the packet at `l3` (its L4 header at
// `l4`), decrementing the TTL / hop limit, with the checksums updated by the session's
// precomputed differences (sessionDeltas).
// One direction's rewrite: the new source and destination, and the checksum differences.
struct TupleRewrite {
  const uint8_t* src;
  const uint8_t* dst;
  uint16_t sport_be, dport_be, l4_delta, ip_delta;
};

__rte_always_inline void rewriteTuple(uint8_t* l3, uint8_t* l4, const PacketInfo& pi, const TupleRewrite& t) {
  const uint8_t* src = t.src;
  const uint8_t* dst = t.dst;
  const uint16_t sport_be = t.sport_be, dport_be = t.dport_be, l4_delta = t.l4_delta, ip_delta = t.ip_delta;
  const bool v4 = pi.family == Family::V4;
  if (pi.proto == kProtoTcp) {
    uint16_t ck;
    std::memcpy(&ck, l4 + 16, 2);
    ck = csumApplyDelta(ck, l4_delta);
    std::memcpy(l4 + 16, &ck, 2);
  } else {
    uint16_t ck;
    std::memcpy(&ck, l4 + 6, 2);
    if (!v4 || ck != 0) {  // IPv4 UDP may carry none: it stays so
      ck = csumApplyDelta(ck, l4_delta);
      if (ck == 0) ck = 0xffff;  // 0 means "none" in UDP
      std::memcpy(l4 + 6, &ck, 2);
    }
  }
  std::memcpy(l4, &sport_be, 2);
  std::memcpy(l4 + 2, &dport_be, 2);
  if (v4) {
    uint16_t ck;
    std::memcpy(&ck, l3 + 10, 2);
    ck = csumApplyDelta(ck, ip_delta);
    std::memcpy(l3 + 10, &ck, 2);
    l3[8]--;  // TTL, > 1 (checked by the caller)
    std::memcpy(l3 + 12, src, 4);
    std::memcpy(l3 + 16, dst, 4);
  } else {
    l3[7]--;  // hop limit
    std::memcpy(l3 + 8, src, 16);
    std::memcpy(l3 + 24, dst, 16);
  }
}

// The session's checksum differences: the client's tuple (client, VIP) against the backend's
// (source pair, backend), once when the session opens. The L4 sum covers the pseudo-header's
// addresses and the two ports, wherever they sit, so the way back is the same difference
// negated; IPv4's adds the TTL's decrement both ways.
void sessionDeltas(FullNatSession& ss, const uint8_t* snat, uint16_t snat_port_be) {
  const unsigned alen = ss.client_v6 ? 16 : 4;
  uint64_t a = net::csumDiffBytes(ss.client, snat, alen);
  a = net::csumDiffBytes(ss.vip, ss.backend, alen, a);
  uint64_t l4 = net::csumDiffBytes(reinterpret_cast<const uint8_t*>(&ss.client_port_be),
                                   reinterpret_cast<const uint8_t*>(&snat_port_be), 2, a);
  l4 = net::csumDiffBytes(reinterpret_cast<const uint8_t*>(&ss.vip_port_be),
                          reinterpret_cast<const uint8_t*>(&ss.backend_port_be), 2, l4);
  ss.l4_to_backend = net::csumFold64(l4);
  ss.l4_to_client = uint16_t(~ss.l4_to_backend);
  // TTL - 1: the word [TTL, protocol] goes down by [1, 0], which in one's complement adds ~[1, 0].
  const uint8_t ttl_one[2] = {1, 0};
  uint16_t one;
  std::memcpy(&one, ttl_one, 2);
  const uint16_t addrs = net::csumFold64(a);
  ss.ip_to_backend = net::csumFold64(uint64_t(addrs) + uint16_t(~one));
  ss.ip_to_client = net::csumFold64(uint64_t(uint16_t(~addrs)) + uint16_t(~one));
}

inline uint32_t tcpHdrLen(const uint8_t* l4) { return uint32_t(l4[12] >> 4) * 4; }

// The session's flow-table key (the client's 5-tuple as makeFlowKey builds it).
template <typename Key>
void sessionKey(const FullNatSession& ss, Key& k) {
  const unsigned alen = ss.client_v6 ? 16 : 4;
  std::memcpy(&k.saddr, ss.client, alen);
  std::memcpy(&k.daddr, ss.vip, alen);
  k.sport = ss.client_port_be;
  k.dport = ss.vip_port_be;
  k.proto = ss.proto;
}

void endSession(WorkerState& w, FullNatSession& ss, SnatPair pair, uint32_t now_ms) {
  FullNatState& fn = *w.fullnat;
  if (ss.client_v6) {
    FlowKey6 k;
    sessionKey(ss, k);
    fn.index(true).erase(&k, FlowTable::indexHash(k));
  } else {
    FlowKey4 k;
    sessionKey(ss, k);
    fn.index(false).erase(&k, FlowTable::indexHash(k));
  }
  ss.used = false;
  fn.release(pair, now_ms);
  w.counters.add(Ctr::FullNatEnded);
  if (ss.backend_id < kMaxCountedBackends && ss.backend_id != kNoBackend) w.backend_ctrs[ss.backend_id].flows_ended++;
}

inline bool sessionExpired(const FullNatSession& ss, uint32_t now_ms, const FlowTimeouts& t) {
  return uint32_t(now_ms - ss.last_seen_ms) > timeoutMs(ss.state, t);
}

// A new session for the client's packet: a backend by the VIP's scheduler, a pair from the
// VIP's source addresses of the backend's family. Null with the drop reason.
FullNatSession* openSession(WorkerState& w, const Snapshot& s, const PktCtx& c, rte_mbuf* m, uint16_t ingress,
                            uint32_t now_ms, SnatPair& pair, Drop& why) {
  FullNatState& fn = *w.fullnat;
  const PacketInfo& pi = c.pi;
  const bool tcp = pi.proto == kProtoTcp;
  // Only a SYN opens a TCP session: any other segment belongs to a connection the backend
  // never saw, and could not be translated.
  if (tcp && (pi.tcp_flags & (kTcpSyn | kTcpAck | kTcpRst | kTcpFin)) != kTcpSyn) {
    why = Drop::FullNatNoSession;
    return nullptr;
  }
  const uint8_t* d = rte_pktmbuf_mtod(m, const uint8_t*);
  // The flow's replies go to the frame's source MAC (client_mac below). A group address there
  // names no station (IEEE 802.3 §3.2.3: a source address is individual), and replies sent to
  // it would be flooded to every host on the clients' segment.
  if (unlikely(d[6] & 0x01)) {
    why = Drop::FullNatUnsupported;
    return nullptr;
  }
  const FlowFacts facts{c.vip, c.vip_index, c.slot_hash, pi.family, tcp, pi.tcp_flags};
  const uint32_t bid =
      newFlowBackend(*c.vip, facts, &w.rr_cursor[c.vip_index % kMaxVips], [&] { return d + pi.saddr_off; });
  const SnapBackend* b = s.backend(bid);
  if (b == nullptr) {
    why = Drop::NoBackend;
    return nullptr;
  }
  // A packet that cannot cross to the backend's family opens nothing (family_xlate.h).
  const bool xlate = b->addr.isV4() == c.v6;
  if (unlikely(xlate) && !fullnat::translatable(m, pi, c.v6)) {
    why = Drop::FullNatXlateDropped;
    return nullptr;
  }
  const std::vector<uint32_t>& addrs = b->addr.isV4() ? c.vip->snat4 : c.vip->snat6;
  bool got = false, steered = false;
  // Spread over the VIP's addresses: start at the flow's hash. A pair whose reply RSS brings to
  // this worker when there is one (snat_rss.h); else the reply may take the hand-off ring.
  const ReplyFrom from{b->addr.bytes.data(), b->port_be != 0 ? b->port_be : pi.dport_be, b->egress, pi.proto,
                       c.slot_hash};
  for (size_t i = 0; i < addrs.size() && !got; i++)
    got = fn.allocFor(addrs[(c.slot_hash + i) % addrs.size()], now_ms, from, pair, steered);
  if (!got) {
    why = Drop::SnatExhausted;
    return nullptr;
  }
  if (!steered) w.counters.add(Ctr::FullNatUnsteered);
  const FlowValue v{fn.packPair(pair), FlowState::TcpEstablished, 0, false};
  if (!fn.index(c.v6).upsert(c.key, c.bucket_hash, v.pack())) {  // room for every pair: not expected
    fn.release(pair, now_ms);
    why = Drop::SnatExhausted;
    return nullptr;
  }
  FullNatSession& ss = fn.session(pair.addr, pair.port);
  const unsigned alen = c.v6 ? 16 : 4;
  std::memcpy(ss.client, d + pi.saddr_off, alen);
  std::memcpy(ss.vip, d + pi.daddr_off, alen);
  std::memcpy(ss.backend, b->addr.bytes.data(), 16);  // the backend's family (IPv4: 4 bytes, then zeros)
  ss.client_port_be = pi.sport_be;
  ss.vip_port_be = pi.dport_be;
  ss.backend_port_be = b->port_be != 0 ? b->port_be : pi.dport_be;
  ss.proto = pi.proto;
  ss.client_v6 = c.v6;
  ss.backend_v6 = !b->addr.isV4();
  ss.xlate = xlate;
  ss.used = true;
  ss.state = initialState(tcp, pi.tcp_flags, false);
  ss.last_seen_ms = now_ms;
  ss.backend_id = bid;
  ss.vip_index = c.vip_index;
  ss.client_isn = tcp ? rte_be_to_cpu_32(load32(d + pi.l4_off + 4)) : 0;
  ss.proxy_len = tcp && c.vip->proxy_v2 ? uint8_t(c.v6 ? fullnat::kProxyV2Len6 : fullnat::kProxyV2Len4) : 0;
  ss.delta = {ss.proxy_len, 0};
  ss.client_port = ingress;
  std::memcpy(ss.client_mac, d + 6, 6);  // the frame's source MAC
  std::memcpy(ss.snat, s.snat_addrs[pair.addr].addr.bytes.data(), 16);  // as the backend's
  ss.snat_port_be = rte_cpu_to_be_16(pair.port);
  if (unlikely(ss.xlate))
    fullnat::crossFamilyDeltas(ss);
  else
    sessionDeltas(ss, ss.snat, ss.snat_port_be);
  w.counters.add(Ctr::FullNatNew);
  if (bid < kMaxCountedBackends) w.backend_ctrs[bid].flows_new++;
  return &ss;
}

// The Ethernet header for `egress` toward `dst_mac`, in front of the IP packet (any VLAN tag and
// padding of the received frame dropped).
inline void writeEth(rte_mbuf* m, const PacketInfo& pi, const uint8_t* dst_mac, const MacAddr& src_mac, bool v4) {
  uint8_t* e = frameToIp(m, pi);
  std::memcpy(e, dst_mac, 6);
  std::memcpy(e + 6, src_mac.bytes.data(), 6);
  const uint16_t et = rte_cpu_to_be_16(v4 ? RTE_ETHER_TYPE_IPV4 : RTE_ETHER_TYPE_IPV6);
  std::memcpy(e + 12, &et, 2);
}

// The IP header's length as the packet leaves toward the backend (frameToIp done): the client's,
// or, translated, the backend family's (no options).
__rte_always_inline uint32_t outIpHdrLen(const FullNatSession& ss, const PacketInfo& pi, bool translated) {
  if (!translated) return uint32_t(pi.l4_off - pi.l3_off);
  return ss.backend_v6 ? kIpv6HdrLen : kIpv4HdrLen;
}

// PROXY v2: translate, and put the header (of the client's family, pi.family) in front of a
// segment at the client's ISN + 1. `translated`: the packet crossed families (family_xlate.h);
// what it changed is computed where it is used, so that the same-family path (a constant false)
// keeps no more values live across the calls.
__rte_always_inline FwdResult proxyToBackend(WorkerState& w, const Snapshot& s, const FullNatSession& ss, rte_mbuf* m,
                                             const PacketInfo& pi, uint16_t egress, bool translated) {
  uint8_t* l3 = rte_pktmbuf_mtod_offset(m, uint8_t*, kEthLen);
  uint8_t* l4 = l3 + outIpHdrLen(ss, pi, translated);
  const uint32_t hlen = tcpHdrLen(l4);
  if (pi.tcp_flags & kTcpSyn) return FwdResult::sent(egress);  // the SYN keeps the ISN
  fullnat::seqToBackend(l4, hlen, ss.delta);
  const uint32_t first = ss.client_isn + 1;
  const uint32_t client_seq = rte_be_to_cpu_32(load32(l4 + 4)) - ss.delta.client;
  if (client_seq != first || (pi.tcp_flags & kTcpRst) != 0) return FwdResult::sent(egress);
  const int l3_len = int(pi.l3_len) + (translated ? fullnat::xlateGrowth(ss) : 0);
  if (l3_len + ss.proxy_len > s.ports[egress].mtu) return FwdResult::dropped(Drop::ProxyHeaderNoRoom);
  const uint32_t first_be = rte_cpu_to_be_32(first);
  std::memcpy(l4 + 4, &first_be, 4);  // the header starts at ISN + 1; the checksum is recomputed below
  uint8_t hdr[fullnat::kProxyV2Len6];
  const size_t n = fullnat::writeProxyV2(hdr, pi.family, ss.client, ss.client_port_be, ss.vip, ss.vip_port_be, true);
  const Family out_family = !translated ? pi.family : ss.backend_v6 ? Family::V6 : Family::V4;
  if (!fullnat::insertSegmentPrefix(m, kEthLen, kEthLen + outIpHdrLen(ss, pi, translated), out_family, hdr,
                                    uint16_t(n)))
    return FwdResult::dropped(Drop::ProxyHeaderNoRoom);
  w.counters.add(Ctr::ProxyHeaderSent);
  return FwdResult::sent(egress);
}

// A client's packet of a session whose backend is of the other family: translated, then the
// PROXY step as for the same family. Out of line: the same-family path keeps its registers.
[[gnu::noinline]] FwdResult xlateForward(WorkerState& w, const Snapshot& s, const FullNatSession& ss,
                                         const SnapBackend& b, rte_mbuf* m, const PacketInfo& pi, uint16_t ingress) {
  const FwdResult r = fullnat::xlateToBackend(s, ss, b, m, pi, ingress);
  if (r.outcome != FwdOutcome::Sent || ss.proxy_len == 0) return r;
  return proxyToBackend(w, s, ss, m, pi, b.egress, true);
}

}  // namespace

FwdResult fullNatForward(WorkerState& w, const Snapshot& s, const PktCtx& c, rte_mbuf* m, uint16_t ingress,
                         uint32_t now_ms, uint32_t& bid) {
  if (unlikely(w.fullnat == nullptr)) return FwdResult::dropped(Drop::SnatExhausted);
  FullNatState& fn = *w.fullnat;
  const PacketInfo& pi = c.pi;
  const bool tcp = pi.proto == kProtoTcp;
  FullNatSession* ss = nullptr;
  SnatPair pair;
  uint64_t raw;
  const FlowTable& ix = fn.index(c.v6);
  if (c.v6 ? ix.lookupFamily<true>(c.key, c.bucket_hash, raw) : ix.lookupFamily<false>(c.key, c.bucket_hash, raw)) {
    const uint32_t packed = uint32_t(raw & kMaxBackendId);  // FlowValue::backend_id
    ss = &fn.sessionOf(packed);
    // Expired, or the client reuses the 5-tuple for a new connection after a close (RFC 6191):
    // a new session, with its own pair and ISN, while the old pair waits out its quiet time.
    if (sessionExpired(*ss, now_ms, s.timeouts) ||
        (unlikely(pi.tcp_flags & kTcpSyn) && (pi.tcp_flags & (kTcpAck | kTcpRst | kTcpFin)) == 0 &&
         ss->state == FlowState::TcpClosing &&
         rte_be_to_cpu_32(load32(rte_pktmbuf_mtod(m, const uint8_t*) + pi.l4_off + 4)) != ss->client_isn)) {
      endSession(w, *ss, fn.unpackPair(packed), now_ms);
      ss = nullptr;
    } else {
      ss->state = nextState(ss->state, tcp, pi.tcp_flags, s.admission.enabled);
      ss->last_seen_ms = now_ms;
    }
  }
  if (ss == nullptr) {
    Drop why = Drop::Ok;
    ss = openSession(w, s, c, m, ingress, now_ms, pair, why);
    if (ss == nullptr) return FwdResult::dropped(why);
  }
  bid = ss->backend_id;
  const SnapBackend* b = s.backend(ss->backend_id);
  if (unlikely(b == nullptr)) return FwdResult::dropped(Drop::NoBackend);  // removed by a reload
  if (unlikely(pi.ttl <= 1)) return FwdResult::dropped(Drop::TtlExceeded);
  if (unlikely(ss->xlate)) return xlateForward(w, s, *ss, *b, m, pi, ingress);  // family_xlate.h
  if (unlikely(pi.l3_len > b->rw.max_l3_len)) return tooBigFor(m, pi, s, ingress, s.ports[b->egress].mtu, 0);

  uint8_t* d = rte_pktmbuf_mtod(m, uint8_t*);
  uint8_t* l3 = d + pi.l3_off;
  uint8_t* l4 = d + pi.l4_off;
  rewriteTuple(l3, l4, pi,
               {ss->snat, ss->backend, ss->snat_port_be, ss->backend_port_be, ss->l4_to_backend, ss->ip_to_backend});
  std::memcpy(frameToIp(m, pi), b->rw.hdr.data(), kEthLen);  // as forwardNat: the backend's prebuilt header
  if (likely(ss->proxy_len == 0)) return FwdResult::sent(b->egress);  // (never set for UDP)
  return proxyToBackend(w, s, *ss, m, pi, b->egress, false);
}

FwdResult fullNatReverse(WorkerState& w, const Snapshot& s, const PktCtx& c, rte_mbuf* m, uint32_t now_ms) {
  const PacketInfo& pi = c.pi;
  const uint16_t dport = rte_be_to_cpu_16(pi.dport_be);
  if (unlikely(w.fullnat == nullptr) || !w.fullnat->inRange(c.vip_index, dport))
    return FwdResult::dropped(Drop::FullNatNoSession);
  FullNatState& fn = *w.fullnat;
  // Another worker's pair (its reply was not steered to it): to that worker's ring.
  if (const uint16_t owner = fn.ownerOf(c.vip_index, dport); unlikely(owner != w.index)) return handOffReply(w, c, m, owner);
  FullNatSession& ss = fn.session(c.vip_index, dport);
  uint8_t* d = rte_pktmbuf_mtod(m, uint8_t*);
  const unsigned alen = pi.family == Family::V4 ? 4 : 16;
  if (!ss.used || ss.proto != pi.proto || ss.backend_v6 != (pi.family == Family::V6) || ss.backend_port_be != pi.sport_be ||
      std::memcmp(ss.backend, d + pi.saddr_off, alen) != 0 || sessionExpired(ss, now_ms, s.timeouts))
    return FwdResult::dropped(Drop::FullNatNoSession);
  if (unlikely(pi.ttl <= 1)) return FwdResult::dropped(Drop::TtlExceeded);
  const bool tcp = pi.proto == kProtoTcp;
  // The backend closing or resetting ends the flow as the client's FIN or RST would; anything
  // else keeps it alive.
  if (tcp && (pi.tcp_flags & (kTcpFin | kTcpRst))) ss.state = FlowState::TcpClosing;
  ss.last_seen_ms = now_ms;
  if (unlikely(ss.xlate)) return fullnat::xlateToClient(w, s, ss, m, pi);  // family_xlate.h
  const SnapPort& out = s.ports[ss.client_port];
  if (pi.l3_len > out.mtu) return FwdResult::dropped(Drop::TooBig);
  uint8_t* l3 = d + pi.l3_off;
  uint8_t* l4 = d + pi.l4_off;
  if (tcp && ss.proxy_len != 0) {
    const uint32_t hlen = tcpHdrLen(l4);
    if (pi.tcp_flags & kTcpSyn)
      fullnat::lowerMss(l4, hlen, ss.proxy_len, ss.client_v6 ? fullnat::kMinMss6 : fullnat::kMinMss4);
    if (fullnat::seqToClient(l4, hlen, ss.delta, ss.client_isn) == fullnat::SeqResult::OptionsKept)
      return FwdResult::dropped(Drop::FullNatUnsupported);
  }
  rewriteTuple(l3, l4, pi, {ss.vip, ss.client, ss.vip_port_be, ss.client_port_be, ss.l4_to_client, ss.ip_to_client});
  writeEth(m, pi, ss.client_mac, out.mac, pi.family == Family::V4);
  w.counters.add(Ctr::FullNatReverse);
  return FwdResult::sent(ss.client_port);
}

uint32_t sweepFullNat(WorkerState& w, uint32_t now_ms, const FlowTimeouts& t, uint32_t budget) {
  if (w.fullnat == nullptr) return 0;
  FullNatState& fn = *w.fullnat;
  const uint64_t total = fn.totalSlots();
  if (total == 0) return 0;
  uint32_t ended = 0;
  for (uint32_t i = 0; i < budget; i++) {
    if (fn.sweep_next >= total) fn.sweep_next = 0;
    SnatPair pair;
    FullNatSession& ss = fn.slot(fn.sweep_next++, pair);
    if (ss.used && sessionExpired(ss, now_ms, t)) {
      endSession(w, ss, pair, now_ms);
      ended++;
    }
  }
  return ended;
}

void publishSnatUsage(WorkerState& w, uint32_t now_ms) {
  w.snat_published_ms = now_ms;
  if (w.fullnat == nullptr) return;
  const uint32_t n = std::min<uint32_t>(w.fullnat->naddrs(), uint32_t(w.snat_ports.size()));
  for (uint32_t i = 0; i < n; i++) {
    const FullNatState::Usage u = w.fullnat->usage(i, now_ms);
    // Plain stores, one word each: the control thread reads them as it reads the counters.
    SnatPortCounts& c = w.snat_ports[i];
    c.in_use = u.in_use;
    c.free = u.waiting - u.quiet;
    c.quiet = u.quiet;
  }
}

}  // namespace l4lb::dataplane
