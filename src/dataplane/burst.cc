// The burst: processBurst's two stages over up to kBurst packets of one RX queue (parse and
// prefetch, then schedule, forward and account each), and the out-of-line halves of the flow
// step (pipeline.h): a packet without a live entry, and a hit that rewrites its entry.
#include <cstring>
#include <type_traits>

#include <rte_prefetch.h>

#include "dataplane/frag_path.h"
#include "dataplane/fullnat/fullnat_path.h"
#include "dataplane/lookup.h"
#include "dataplane/parser.h"
#include "dataplane/parser_inline.h"
#include "dataplane/pipeline.h"
#include "dataplane/slow_path.h"
#include "dataplane/sync_rings.h"
#include "dataplane/worker.h"

namespace l4lb::dataplane {

namespace {

inline bool isOwnAddress(const SnapPort& p, const uint8_t* addr, Family f) {
  return f == Family::V4 ? p.has_v4 && std::memcmp(addr, p.v4.addr.bytes.data(), 4) == 0
                         : p.has_v6 && std::memcmp(addr, p.v6.addr.bytes.data(), 16) == 0;
}

template <typename T>
union Uninit {
  Uninit() {}
  T v;
};

// Receive counters, once per burst: the worker's totals and the ingress port's.
inline void countRx(WorkerState& w, uint16_t ingress, uint16_t n, uint64_t bytes) {
  w.counters.add(Ctr::RxPackets, n);
  w.counters.add(Ctr::RxBytes, bytes);
  w.port_ctrs[ingress].rx_packets += n;
  w.port_ctrs[ingress].rx_bytes += bytes;
}

}  // namespace

// The out-of-line half of scheduleFlow (pipeline.h): no live entry for the packet's flow.
uint32_t decideWithoutLiveEntry(WorkerState& w, const Snapshot& s, FlowTable& ft, const PktCtx& c, rte_mbuf* m,
                                bool hit, FlowDecision d, uint32_t now_ms) {
  const PacketInfo& pi = c.pi;
  const void* key = c.key;
  const hash_sig_t bucket_hash = c.bucket_hash;
  // Built here, not passed in: a FlowFacts whose address escaped to this out-of-line call would be
  // stored to memory for every packet, hits included (10 instructions a packet).
  const FlowFacts facts{c.vip, c.vip_index, c.slot_hash, pi.family, pi.proto == kProtoTcp, pi.tcp_flags};
  const AdmitParams ap{s.admission.enabled, s.admission.embryonicLimit(ft.capacity()), now_ms, &s.timeouts};
  const uint32_t vslot = facts.vip_index % kMaxVips;
  // The key is absent (the lookup just missed it) and its class has room: the store is a plain
  // insert, with no search of the buckets (FlowTable::insertAbsent).
  bool absent = false;
  d = decideMiss(
      s, facts, d, now_ms, &w.rr_cursor[vslot], &w.new_flow_tokens[vslot],
      [&](bool embryonic) {
        // A new key with room in its class: no need to look at the buckets again.
        if (!hit && ft.size() < ft.capacity() && (!embryonic || !ap.enabled || ft.embryonic() < ap.embryonic_limit)) {
          absent = true;
          return StoreResult::Stored;
        }
        return ft.canStore(key, bucket_hash, embryonic, ap);
      },
      [m, &pi] { return rte_pktmbuf_mtod_offset(m, const uint8_t*, pi.saddr_off); });
  if (unlikely(d.entry == EntryVerdict::Unusable)) w.counters.add(Ctr::FlowRehash);
  const uint32_t bid = d.backend;
  if (unlikely(d.outcome == FlowOutcome::NoBackend)) {
    dropPkt(w, m, Drop::NoBackend);
    return kDropped;
  }
  if (unlikely(d.outcome == FlowOutcome::RateDrop)) {
    dropPkt(w, m, Drop::RateLimited);
    return kDropped;
  }
  if (d.store) {
    // Flow sync: a new confirmed flow is announced (sync_rings.h). Before the store, so the entry
    // is written once with its announced bit; the store cannot fail here (canStore said so).
    uint64_t value = d.value.pack();
    if (unlikely(w.sync_out != nullptr) && s.sync_announce_ms != 0 && isAnnounceable(d.value.state) &&
        announceFlow(w, s, key, pi.family == Family::V6, d.value, now_ms))
      value |= kFlowAnnouncedBit;
    bool stored;
    if (likely(!d.displaces)) {
      // canStore said Stored.
      stored = absent ? ft.insertAbsent(key, bucket_hash, value) : ft.upsert(key, bucket_hash, value);
    } else {
      FlowValue victim;
      const StoreResult sr = ft.store(key, bucket_hash, value, ap, victim);
      stored = sr == StoreResult::Stored || sr == StoreResult::Displaced;
      if (sr == StoreResult::Displaced) {
        // An expired victim ended anyway (as the sweep would count it); a live one was displaced.
        w.counters.add(isExpired(victim, now_ms, s.timeouts) ? Ctr::FlowExpired : Ctr::FlowEmbryonicDisplaced);
        if (victim.backend_id < kMaxCountedBackends && victim.backend_id != kNoBackend)
          w.backend_ctrs[victim.backend_id].flows_ended++;
      }
    }
    if (likely(stored)) {
      // A new entry, or an old one re-pointed: per backend, active = new - ended.
      if (d.outcome != FlowOutcome::Rehash) w.counters.add(Ctr::FlowNew);
      if (d.old_backend < kMaxCountedBackends && d.old_backend != kNoBackend) w.backend_ctrs[d.old_backend].flows_ended++;
      if (bid < kMaxCountedBackends) w.backend_ctrs[bid].flows_new++;
    } else {
      w.counters.add(Ctr::FlowTableFull);  // never: canStore said it would fit
    }
  } else if (d.outcome == FlowOutcome::EmbryonicFull) {
    w.counters.add(Ctr::FlowEmbryonicFull);
  } else if (d.outcome == FlowOutcome::RateStateless) {
    w.counters.add(Ctr::FlowRateStateless);
  } else {
    w.counters.add(Ctr::FlowTableFull);  // Untracked
  }
  return bid;
}

// The out-of-line half of a hit (pipeline.h): the store, and flow sync's part (a peer's entry
// taken over, an entry that has just become announceable; sync_rings.h). Out of line: one call
// on the hit path, as the store alone was, and a plain hit pays nothing for sync.
void rewriteHit(WorkerState& w, const Snapshot& s, FlowTable& ft, const PktCtx& c, uint64_t raw, uint64_t value,
                uint32_t now_ms) {
  if (unlikely((raw & kFlowPeerBit) != 0 || (w.sync_out != nullptr && stateOfRaw(value) != stateOfRaw(raw))))
    value = syncOnRewrite(w, s, c.key, c.v6, raw, value, now_ms);
  ft.upsert(c.key, c.bucket_hash, value);  // the key is there: cannot fail
}

void processBurst(WorkerState& w, const Snapshot& s, rte_mbuf** pkts, uint16_t n, uint16_t ingress,
                  uint32_t now_ms, TxBatch& tx) {
  // A tap's burst is the kernel's traffic for the wire: relayed whole, never parsed.
  if (unlikely(s.ports[ingress].is_kernel)) {
    uint64_t bytes = 0;
    for (uint16_t i = 0; i < n; i++) bytes += rte_pktmbuf_pkt_len(pkts[i]);
    countRx(w, ingress, n, bytes);
    relayFromKernel(w, s, pkts, n, ingress, tx);
    return;
  }
  // Cold packets (a port's mbufs come back only after its whole ring has cycled): start loading
  // every mbuf of the burst and the first packets' headers now, and keep the header prefetch
  // kHeadersAhead packets ahead, so that the misses of several packets overlap (perf/RESULTS.md,
  // "The whole worker on ports": 180 -> 127 TSC cycles per packet on cold packets).
  constexpr uint16_t kHeadersAhead = 8;
  for (uint16_t i = 0; i < n; i++) rte_prefetch0(pkts[i]);
  for (uint16_t i = 0; i < n && i < kHeadersAhead; i++) rte_prefetch0(rte_pktmbuf_mtod(pkts[i], void*));
  // Per-burst scratch left uninitialised (the types' default member initialisers would zero
  // ~3 KiB per burst): each element is written in full before it is read.
  Uninit<PktCtx> ctx[kBurst];
  Uninit<FlowKey4> k4[kBurst];
  Uninit<FlowKey6> k6[kBurst];
  uint16_t n4 = 0, n6 = 0;
  rte_mbuf* live[kBurst];
  uint16_t nlive = 0;
  // Fragments (Parse::Fragment, with a fragment table), handled after the burst's other packets.
  rte_mbuf* frag_m[kBurst];
  Uninit<PacketInfo> frag_pi[kBurst];
  uint16_t nfrag = 0;

  // Stage 1: parse, find the VIP, build the flow key and its hash, and prefetch the key's flow
  // table bucket: it is read in stage 2, after the rest of the burst has been parsed.
  uint64_t rx_bytes = 0;
  VipMemo vip_memo;
  const FlowTable& flows4 = *w.flows4;
  const FlowTable& flows6 = *w.flows6;
  // A parsed TCP/UDP packet: its VIP (or NAT reply), key and bucket prefetch; false when it left
  // the fast path. Instantiated twice: for parseIpv4Fast's packets (kV4Fast: untagged IPv4
  // without options, so the family and the address offsets are constants) and for the rest.
  auto admit = [&](rte_mbuf* m, const uint8_t* data, PktCtx& c, auto v4_fast) __attribute__((always_inline)) {
    constexpr bool kV4Fast = decltype(v4_fast)::value;
    const Family family = kV4Fast ? Family::V4 : c.pi.family;
    const uint8_t* saddr = data + (kV4Fast ? net::kEthHdrLen + 12 : c.pi.saddr_off);
    const uint8_t* daddr = data + (kV4Fast ? net::kEthHdrLen + 16 : c.pi.daddr_off);
    c.reverse = false;
    c.fullnat_reply = false;
    c.vip = findVip(s, daddr, family, c.pi.dport_be, c.pi.proto, c.vip_index, vip_memo);
    if (c.vip == nullptr) {
      if (unlikely(s.snat_by_addr.size() != 0) && findSnatAddr(s, daddr, family, c.vip_index)) {
        c.reverse = c.fullnat_reply = true;  // a backend's packet to a full-NAT source pair
        return true;
      }
      c.vip = findNatReply(s, saddr, family, c.pi.sport_be, c.pi.proto, c.vip_index);
      // A backend talking to the balancer's own address is not a NAT reply: it answers the
      // kernel (health checks go out from that address), so it takes the exception path.
      if (unlikely(c.vip == nullptr || c.vip->mode != FwdMode::Nat || isOwnAddress(s.ports[ingress], daddr, family))) {
        handleNotForVip(w, s, m, c.pi, ingress, tx);  // never relayed: the kernel's, or dropped
        return false;
      }
      c.reverse = true;  // stateless: needs no flow entry (see snapshot_builder.cc)
    } else if (family == Family::V4) {
      FlowKey4& k = k4[n4++].v;
      makePktFlowKey(k, saddr, daddr, c);
      c.key = &k;
      c.v6 = false;
      flows4.prefetchFamily<false>(c.bucket_hash);
    } else {
      FlowKey6& k = k6[n6++].v;
      makePktFlowKey(k, saddr, daddr, c);
      c.key = &k;
      c.v6 = true;
      flows6.prefetchFamily<true>(c.bucket_hash);
    }
    return true;
  };
  for (uint16_t i = 0; i < n; i++) {
    if (i + kHeadersAhead < n) rte_prefetch0(rte_pktmbuf_mtod(pkts[i + kHeadersAhead], void*));
    rte_mbuf* m = pkts[i];
    rx_bytes += rte_pktmbuf_pkt_len(m);
    const uint8_t* data = rte_pktmbuf_mtod(m, const uint8_t*);
    PktCtx& c = ctx[nlive].v;
    // data_len is 16 bits: within parser_detail::kMaxFrameLen, as parsePacketInline clamps to.
    const uint32_t len = rte_pktmbuf_data_len(m);
    const bool cksum_verified = parser_detail::rxIpCksumVerified(m->ol_flags);
    ParseResult d;
    if (likely(parser_detail::parseIpv4Fast(data, len, cksum_verified, c.pi, d))) {
      // Ok: TCP or UDP by the fast parser's entry condition. Otherwise a drop verdict (never a
      // fragment: those go to parseGeneral), handled below like parseGeneral's.
      if (likely(d.verdict == Parse::Ok)) {
        if (likely(admit(m, data, c, std::true_type{}))) live[nlive++] = m;
        continue;
      }
    } else {
      d = parser_detail::parseGeneral(data, len, cksum_verified, c.pi);
    }
    // Everything but TCP/UDP for a VIP or from a NAT backend leaves the fast path here, to the
    // out-of-line handlers of slow_path.cc (ARP/ND/echo replies, ICMP errors, exception path).
    if (unlikely(d.verdict != Parse::Ok)) {
      if (d.verdict == Parse::Fragment && w.frags) {
        frag_m[nfrag] = m;
        frag_pi[nfrag++].v = c.pi;
        continue;
      }
      handleUnparsed(w, s, m, d.reason, ingress, tx);
      continue;
    }
    if (unlikely(c.pi.proto != kProtoTcp && c.pi.proto != kProtoUdp)) {
      handleIcmp(w, s, m, c.pi, ingress, now_ms, tx);
      continue;
    }
    if (admit(m, data, c, std::false_type{})) live[nlive++] = m;
  }
  countRx(w, ingress, n, rx_bytes);

  // Stage 2: per packet, look the flow up (its bucket is in cache by now), decide (decide.h),
  // rewrite and account.
  // Looked up here, in arrival order, not in bulk before: a flow a packet of this burst has just
  // added is found by the next packet of the same flow (SYN, ACK in one burst keep one backend).
  uint32_t hits = 0;  // Ctr::FlowHit, added once per burst
  BackendCounters* const bctrs = w.backend_ctrs.get();
  for (uint16_t i = 0; i < nlive; i++) {
    rte_mbuf* m = live[i];
    PktCtx& c = ctx[i].v;
    FwdResult r;
    uint32_t bid = kNoBackend;  // the backend a forward packet goes to (counted once sent)
    if (c.reverse) {
      if (unlikely(c.fullnat_reply)) {
        r = fullNatReverse(w, s, c, m, now_ms);
      } else {
        r = reverseNat(m, c.pi, *c.vip, s, ingress);
        if (r.outcome == FwdOutcome::Sent) w.counters.add(Ctr::NatReverse);
      }
    } else if (unlikely(c.vip->mode == FwdMode::FullNat)) {
      r = fullNatForward(w, s, c, m, ingress, now_ms, bid);
    } else {
      bid = scheduleFlow(w, s, c, m, now_ms, hits);
      if (unlikely(bid == kDropped)) continue;
      r = forwardTo(w, s, c, s.backends[bid], m, ingress);
    }
    finishForward(w, m, r, bid, tx, bctrs);
  }
  w.counters.add(Ctr::FlowHit, hits);
  for (uint16_t i = 0; unlikely(i < nfrag); i++) handleFragment(w, s, frag_m[i], frag_pi[i].v, ingress, now_ms, tx, false);
}

}  // namespace l4lb::dataplane
