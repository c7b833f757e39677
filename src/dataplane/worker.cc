#include "dataplane/worker.h"

#include <algorithm>
#include <cstring>

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_prefetch.h>

#include "dataplane/decide.h"
#include "dataplane/lookup.h"
#include "dataplane/parser.h"
#include "dataplane/parser_inline.h"
#include "dataplane/slow_path.h"

namespace l4lb::dataplane {

uint32_t nowMs() {
  static const uint64_t hz_ms = rte_get_tsc_hz() / 1000;
  return uint32_t(rte_rdtsc() / hz_ms);
}

namespace {

// Per-packet scratch for one burst.
struct PktCtx {
  PacketInfo pi;
  const SnapVip* vip;
  uint32_t vip_index;
  hash_sig_t sig;  // the flow's CRC: Maglev slot, tunnel entropy (the same on every instance)
  hash_sig_t idx;  // the flow table's keyed bucket index (flow_index.h)
  uint16_t key;  // index in k4 / k6 (forward packets)
  bool v6;       // which flow table
  bool reverse;  // NAT reply from a backend
};

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

template <typename Key>
inline hash_sig_t addFlowKey(Key& k, const uint8_t* saddr, const uint8_t* daddr, const PacketInfo& pi,
                             hash_sig_t& idx) {
  return makeFlowKey(k, saddr, daddr, pi.sport_be, pi.dport_be, pi.proto, &idx);
}

// A packet whose flow has no live entry: decideMiss, then the store and its counters. Returns
// the backend, or kDropped when the packet was dropped (and freed).
constexpr uint32_t kDropped = ~0u;

__attribute__((noinline)) uint32_t handleMiss(WorkerState& w, const Snapshot& s, FlowTable& ft, const void* key,
                                              const PktCtx& c, rte_mbuf* m, bool hit, FlowDecision d,
                                              uint32_t now_ms) {
  const FlowFacts facts{c.vip, c.vip_index, c.sig, c.pi.family, c.pi.proto == kProtoTcp, c.pi.tcp_flags};
  const AdmitParams ap{s.admission.enabled, s.admission.embryonicLimit(ft.capacity()), now_ms, &s.timeouts};
  const uint32_t vslot = c.vip_index % kMaxVips;
  d = decideMiss(
      s, facts, d, now_ms, &w.rr_cursor[vslot], &w.new_flow_tokens[vslot],
      [&](bool embryonic) {
        // A new key with room in its class: no need to look at the buckets again.
        if (!hit && ft.size() < ft.capacity() && (!embryonic || !ap.enabled || ft.embryonic() < ap.embryonic_limit))
          return StoreResult::Stored;
        return ft.canStore(key, c.idx, embryonic, ap);
      },
      [m, &c] { return rte_pktmbuf_mtod_offset(m, const uint8_t*, c.pi.saddr_off); });
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
    bool stored;
    if (likely(!d.displaces)) {
      stored = ft.upsert(key, c.idx, d.value);  // canStore said Stored
    } else {
      FlowValue victim;
      const StoreResult sr = ft.store(key, c.idx, d.value, ap, victim);
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

}  // namespace

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
  // Per-burst scratch left uninitialised (the types' default member initialisers would zero
  // ~3 KiB per burst): each element is written in full before it is read.
  Uninit<PktCtx> ctx[kBurst];
  Uninit<FlowKey4> k4[kBurst];
  Uninit<FlowKey6> k6[kBurst];
  uint16_t n4 = 0, n6 = 0;
  rte_mbuf* live[kBurst];
  uint16_t nlive = 0;

  // Stage 1: parse, find the VIP, build the flow key and its hash, and prefetch the key's flow
  // table bucket: it is read in stage 2, after the rest of the burst has been parsed.
  uint64_t rx_bytes = 0;
  VipMemo vip_memo;
  for (uint16_t i = 0; i < n; i++) {
    if (i + 3 < n) rte_prefetch0(rte_pktmbuf_mtod(pkts[i + 3], void*));
    rte_mbuf* m = pkts[i];
    rx_bytes += rte_pktmbuf_pkt_len(m);
    const uint8_t* data = rte_pktmbuf_mtod(m, const uint8_t*);
    PktCtx& c = ctx[nlive].v;
    Drop d = parsePacketInline(data, rte_pktmbuf_data_len(m), c.pi, m->ol_flags);
    // Everything but TCP/UDP for a VIP or from a NAT backend leaves the fast path here, to the
    // out-of-line handlers of slow_path.cc (ARP/ND/echo replies, ICMP errors, exception path).
    if (unlikely(d != Drop::Ok)) {
      handleUnparsed(w, s, m, d, ingress, tx);
      continue;
    }
    if (unlikely(c.pi.proto != kProtoTcp && c.pi.proto != kProtoUdp)) {
      handleIcmp(w, s, m, c.pi, ingress, now_ms, tx);
      continue;
    }
    const uint8_t* saddr = data + c.pi.saddr_off;
    const uint8_t* daddr = data + c.pi.daddr_off;
    c.reverse = false;
    c.vip = findVip(s, daddr, c.pi.family, c.pi.dport_be, c.pi.proto, c.vip_index, vip_memo);
    if (c.vip == nullptr) {
      c.vip = findNatReply(s, saddr, c.pi.family, c.pi.sport_be, c.pi.proto, c.vip_index);
      // A backend talking to the balancer's own address is not a NAT reply: it answers the
      // kernel (health checks go out from that address), so it takes the exception path.
      if (unlikely(c.vip == nullptr || c.vip->mode != FwdMode::Nat || isOwnAddress(s.ports[ingress], daddr, c.pi.family))) {
        handleNotForVip(w, s, m, c.pi, ingress, tx);  // never relayed: the kernel's, or dropped
        continue;
      }
      c.reverse = true;  // stateless: needs no flow entry (see snapshot_builder.cc)
    } else if (c.pi.family == Family::V4) {
      c.sig = addFlowKey(k4[n4].v, saddr, daddr, c.pi, c.idx);
      c.key = n4++;
      c.v6 = false;
      w.flows4->prefetchFamily<false>(c.idx);
    } else {
      c.sig = addFlowKey(k6[n6].v, saddr, daddr, c.pi, c.idx);
      c.key = n6++;
      c.v6 = true;
      w.flows6->prefetchFamily<true>(c.idx);
    }
    live[nlive++] = m;
  }
  countRx(w, ingress, n, rx_bytes);

  // Stage 2: per packet, look the flow up (its bucket is in cache by now), decide (decide.h),
  // rewrite and account.
  // Looked up here, in arrival order, not in bulk before: a flow a packet of this burst has just
  // added is found by the next packet of the same flow (SYN, ACK in one burst keep one backend).
  uint32_t hits = 0;  // Ctr::FlowHit, added once per burst
  for (uint16_t i = 0; i < nlive; i++) {
    rte_mbuf* m = live[i];
    PktCtx& c = ctx[i].v;
    FwdResult r;
    uint32_t bid = kNoBackend;  // the backend a forward packet goes to (counted once sent)
    if (c.reverse) {
      r = reverseNat(m, c.pi, *c.vip, s, ingress);
      if (r.drop == Drop::Ok && !r.icmp_sent) w.counters.add(Ctr::NatReverse);
    } else {
      FlowTable& ft = c.v6 ? *w.flows6 : *w.flows4;
      const void* key = c.v6 ? static_cast<const void*>(&k6[c.key].v) : &k4[c.key].v;
      uint64_t raw = 0;
      const bool hit = c.v6 ? w.flows6->lookupFamily<true>(key, c.idx, raw)
                            : w.flows4->lookupFamily<false>(key, c.idx, raw);
      const FlowFacts facts{c.vip, c.vip_index, c.sig, c.pi.family, c.pi.proto == kProtoTcp, c.pi.tcp_flags};
      FlowDecision d = startDecision();
      if (likely(hit) && likely(decideHit(s, facts, raw, now_ms, d))) {
        // The fast path: a live entry (decide.h decideFlow, split so a hit builds nothing else).
        hits++;
        bid = d.backend;
        if (d.store) ft.upsert(key, c.idx, d.value);  // the key is there: cannot fail
      } else {
        // Everything else (a new choice, admission, the store and its counters) out of line:
        // it keeps the hit loop's registers free.
        bid = handleMiss(w, s, ft, key, c, m, hit, d, now_ms);
        if (unlikely(bid == kDropped)) continue;
      }
      const SnapBackend& b = s.backends[bid];
      switch (c.vip->mode) {
        case FwdMode::Dsr: r = forwardDsr(m, c.pi, b, s, ingress); break;
        case FwdMode::Ipip: r = forwardIpip(m, c.pi, *c.vip, b, s, c.sig, ingress, w.ip_id++); break;
        case FwdMode::Gue: r = forwardGue(m, c.pi, *c.vip, b, s, c.sig, ingress, w.ip_id++); break;
        case FwdMode::Nat: r = forwardNat(m, c.pi, b, s, ingress); break;
      }
    }
    if (r.drop != Drop::Ok) {
      dropPkt(w, m, r.drop);
      continue;
    }
    if (r.icmp_sent) {
      w.counters.drop(Drop::TooBig);
      w.counters.add(Ctr::IcmpTooBigSent);
    } else if (bid < kMaxCountedBackends && bid != kNoBackend) {
      // The frame as sent to the backend (after rewrite or encapsulation).
      BackendCounters& bc = w.backend_ctrs[bid];
      bc.packets++;
      bc.bytes += rte_pktmbuf_pkt_len(m);
    }
    emit(tx, m, r.egress);
  }
  w.counters.add(Ctr::FlowHit, hits);
}

namespace {

inline uint32_t sweepShare(FlowTable& ft, uint32_t& debt, uint32_t elapsed_ms) {
  const uint32_t per_ms = std::max((ft.capacity() + kSweepPassMs - 1) / kSweepPassMs, kSweepMinPerMs);
  debt = uint32_t(std::min<uint64_t>(uint64_t(debt) + uint64_t(per_ms) * elapsed_ms, ft.capacity()));
  return debt;
}

}  // namespace

uint32_t sweepFlows(WorkerState& w, uint32_t now_ms, const FlowTimeouts& t) {
  if (now_ms != w.sweep_last_ms) {
    // At most 10 ms accrue at once: the first call (sweep_last_ms 0) or a stalled worker does
    // not owe a whole pass; the pass then just takes a little longer.
    const uint32_t elapsed = std::min(now_ms - w.sweep_last_ms, 10u);
    w.sweep_last_ms = now_ms;
    sweepShare(*w.flows4, w.sweep_debt4, elapsed);
    sweepShare(*w.flows6, w.sweep_debt6, elapsed);
  }
  if ((w.sweep_debt4 | w.sweep_debt6) == 0) return 0;
  BackendCounters* ended = w.backend_ctrs.get();
  uint32_t expired = 0;
  if (w.sweep_debt4 != 0) {
    const uint32_t b = std::min(w.sweep_debt4, kSweepChunk);
    w.sweep_debt4 -= b;
    expired += w.flows4->sweep(now_ms, t, b, ended);
  }
  if (w.sweep_debt6 != 0) {
    const uint32_t b = std::min(w.sweep_debt6, kSweepChunk);
    w.sweep_debt6 -= b;
    expired += w.flows6->sweep(now_ms, t, b, ended);
  }
  if (expired) w.counters.add(Ctr::FlowExpired, expired);
  return expired;
}

void answerFlowQuery(WorkerState& w, const Snapshot* s, uint32_t now_ms) {
  FlowQuery& q = w.query;
  const uint32_t req = q.request.load(std::memory_order_acquire);
  const FlowTable& ft = q.v6 ? *w.flows6 : *w.flows4;
  uint64_t v = 0;
  const hash_sig_t idx = FlowTable::indexHash(q.key, q.v6 ? sizeof(FlowKey6) : sizeof(FlowKey4));
  q.hit = ft.lookup(q.key, idx, v);
  q.value = v;
  if (s != nullptr) {
    const AdmitParams ap{s->admission.enabled, s->admission.embryonicLimit(ft.capacity()), now_ms, &s->timeouts};
    auto fits = [](StoreResult r) { return r == StoreResult::Stored || r == StoreResult::Displaced; };
    q.room = fits(ft.canStore(q.key, idx, false, ap));
    q.room_embryonic = fits(ft.canStore(q.key, idx, true, ap));
  } else {
    q.room = ft.size() < ft.capacity();
    q.room_embryonic = q.room && ft.embryonic() < FlowAdmission{}.embryonicLimit(ft.capacity());
  }
  q.answer.store(req, std::memory_order_release);
}

bool postFlowQuery(FlowQuery& q, bool v6, const void* key, size_t key_len) {
  const uint32_t req = q.request.load(std::memory_order_relaxed);  // only this thread writes it
  if (q.answer.load(std::memory_order_acquire) != req || key_len > sizeof(q.key)) return false;
  q.v6 = v6;
  std::memset(q.key, 0, sizeof(q.key));
  std::memcpy(q.key, key, key_len);
  q.request.store(req + 1, std::memory_order_release);
  return true;
}

bool takeFlowAnswer(const FlowQuery& q, FlowQueryAnswer& out) {
  if (q.answer.load(std::memory_order_acquire) != q.request.load(std::memory_order_relaxed)) return false;
  out = {q.hit, q.value, q.room, q.room_embryonic};
  return true;
}

int workerMain(void* arg) {
  auto* a = static_cast<WorkerArgs*>(arg);
  WorkerState& w = *a->state;
  DataplaneShared& sh = *a->shared;
  TxBatch tx;
  rte_mbuf* pkts[kBurst];
  rte_rcu_qsbr_thread_register(sh.qsbr, w.index);
  rte_rcu_qsbr_thread_online(sh.qsbr, w.index);
  uint64_t loop_start = rte_rdtsc();
  while (!sh.stop.load(std::memory_order_relaxed)) {
    bool busy = false;
    // Quiescent: this worker holds no snapshot pointer from the previous iteration.
    rte_rcu_qsbr_quiescent(sh.qsbr, w.index);
    const Snapshot* s = sh.snapshot.load(std::memory_order_acquire);
    const uint32_t now = nowMs();
    for (const RxQueue& q : a->rx) {
      uint16_t n = rte_eth_rx_burst(q.port_id, q.queue, pkts, kBurst);
      if (n == 0) continue;
      busy = true;
      tx.clear();
      processBurst(w, *s, pkts, n, q.port_index, now, tx);
      for (uint16_t p = 0; p < s->ports.size(); p++) {
        const uint16_t cnt = tx.n[p];
        if (cnt == 0) continue;
        uint64_t bytes = 0;  // read before the driver owns (and may free) the mbufs
        for (uint16_t k = 0; k < cnt; k++) bytes += rte_pktmbuf_pkt_len(tx.pkts[p][k]);
        uint16_t sent = rte_eth_tx_burst(s->ports[p].port_id, w.index, tx.pkts[p].data(), cnt);
        for (uint16_t k = sent; k < cnt; k++) {
          bytes -= rte_pktmbuf_pkt_len(tx.pkts[p][k]);
          dropPkt(w, tx.pkts[p][k], Drop::TxFull);
        }
        w.counters.add(Ctr::TxPackets, sent);
        w.counters.add(Ctr::TxBytes, bytes);
        w.port_ctrs[p].tx_packets += sent;
        w.port_ctrs[p].tx_bytes += bytes;
      }
    }
    sweepFlows(w, now, s->timeouts);
    if (unlikely(sh.test_stall.load(std::memory_order_relaxed)) && w.index == 0) {
      rte_rcu_qsbr_thread_offline(sh.qsbr, w.index);
      while (sh.test_stall.load(std::memory_order_relaxed) && !sh.stop.load(std::memory_order_relaxed)) rte_pause();
      rte_rcu_qsbr_thread_online(sh.qsbr, w.index);
      loop_start = rte_rdtsc();  // the stall is no loop's time either
      continue;                  // not a loop: the stall must not count (WorkerLoad::loops)
    }
    if (unlikely(w.query.request.load(std::memory_order_relaxed) != w.query.answer.load(std::memory_order_relaxed)))
      answerFlowQuery(w, s, now);
    // One TSC read per loop: this loop's end is the next one's start.
    const uint64_t loop_end = rte_rdtsc();
    const uint64_t cycles = loop_end - loop_start;
    loop_start = loop_end;
    w.load.loops++;
    w.load.total_cycles += cycles;
    if (busy) {
      w.load.busy_loops++;
      w.load.busy_cycles += cycles;
    }
  }
  rte_rcu_qsbr_thread_offline(sh.qsbr, w.index);
  rte_rcu_qsbr_thread_unregister(sh.qsbr, w.index);
  return 0;
}

}  // namespace l4lb::dataplane
