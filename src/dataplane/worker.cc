#include "dataplane/worker.h"

#include <sys/prctl.h>

#include <algorithm>
#include <cstring>
#include <type_traits>

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_prefetch.h>
#include <rte_ring.h>

#include "dataplane/decide.h"
#include "dataplane/frag_table.h"
#include "dataplane/lookup.h"
#include "dataplane/parser.h"
#include "dataplane/parser_inline.h"
#include "dataplane/slow_path.h"
#include "dataplane/sync_rings.h"

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
  const void* key;  // its FlowKey4 / FlowKey6 in the burst's k4 / k6 (forward packets)
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
                                              const SnapVip& vip, uint32_t vip_index, hash_sig_t sig, hash_sig_t idx,
                                              const PacketInfo& pi, rte_mbuf* m, bool hit, FlowDecision d,
                                              uint32_t now_ms) {
  // Built here, not passed in: a FlowFacts whose address escaped to this out-of-line call would be
  // stored to memory for every packet, hits included (10 instructions a packet).
  const FlowFacts facts{&vip, vip_index, sig, pi.family, pi.proto == kProtoTcp, pi.tcp_flags};
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
        return ft.canStore(key, idx, embryonic, ap);
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
      stored = absent ? ft.insertAbsent(key, idx, value) : ft.upsert(key, idx, value);
    } else {
      FlowValue victim;
      const StoreResult sr = ft.store(key, idx, value, ap, victim);
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

// A hit that rewrites its entry (the state moved, or the last-seen time is due: about once a
// second per flow): the store, and flow sync's part (a peer's entry taken over, an entry that has
// just become announceable; sync_rings.h). Out of line: one call on the hit path, as the store
// alone was, and a plain hit pays nothing for sync.
__attribute__((noinline)) void rewriteHit(WorkerState& w, const Snapshot& s, FlowTable& ft, const void* key,
                                          hash_sig_t idx, bool v6, uint64_t raw, uint64_t value, uint32_t now_ms) {
  if (unlikely((raw & kFlowPeerBit) != 0 || (w.sync_out != nullptr && stateOfRaw(value) != stateOfRaw(raw))))
    value = syncOnRewrite(w, s, key, v6, raw, value, now_ms);
  ft.upsert(key, idx, value);  // the key is there: cannot fail
}

// A TCP/UDP packet of a VIP's 5-tuple (an unfragmented one, or a first fragment): the flow
// table lookup and the decision (decide.h). A hit (a live entry) is decided inline and builds
// nothing else; the rest (a new choice, admission, the store and its counters) runs out of line
// in handleMiss, which keeps the hit loop's registers free. Returns the backend, or kDropped when
// the packet was dropped (no backend, rate limit) and freed. `hits` counts flow-table hits
// (Ctr::FlowHit, added per burst).
__rte_always_inline uint32_t scheduleFlow(WorkerState& w, const Snapshot& s, const SnapVip& vip, uint32_t vip_index,
                                          hash_sig_t sig, hash_sig_t idx, bool v6, const void* key,
                                          const PacketInfo& pi, rte_mbuf* m, uint32_t now_ms, uint32_t& hits) {
  FlowTable& ft = v6 ? *w.flows6 : *w.flows4;
  uint64_t raw = 0;
  const bool hit = v6 ? ft.lookupFamily<true>(key, idx, raw) : ft.lookupFamily<false>(key, idx, raw);
  const FlowFacts facts{&vip, vip_index, sig, pi.family, pi.proto == kProtoTcp, pi.tcp_flags};
  if (likely(hit)) {
    // The hit's decision stays in registers: handleMiss takes its FlowDecision by value (in
    // memory), so the one passed to it is built on the miss path only (decideHit again there:
    // a pure function, and an entry that is not live is rare).
    FlowDecision d = startDecision();
    if (likely(decideHit(s, facts, raw, now_ms, d))) {
      hits++;
      if (d.store) rewriteHit(w, s, ft, key, idx, v6, raw, d.value.pack(), now_ms);
      return d.backend;
    }
  }
  FlowDecision d = startDecision();
  if (hit) decideHit(s, facts, raw, now_ms, d);
  return handleMiss(w, s, ft, key, vip, vip_index, sig, idx, pi, m, hit, d, now_ms);
}

// The VIP's forwarding mode applied to a packet going to backend `b`.
__rte_always_inline FwdResult forwardTo(WorkerState& w, const Snapshot& s, const SnapVip& vip, const SnapBackend& b,
                                        rte_mbuf* m, const PacketInfo& pi, hash_sig_t sig, uint16_t ingress) {
  switch (vip.mode) {
    case FwdMode::Dsr: return forwardDsr(m, pi, b, s, ingress);
    case FwdMode::Ipip: return forwardIpip(m, pi, vip, b, s, sig, ingress, w.ip_id++);
    case FwdMode::Gue: return forwardGue(m, pi, vip, b, s, sig, ingress, w.ip_id++);
    case FwdMode::Nat: return forwardNat(m, pi, b, s, ingress);
  }
  return {Drop::NoBackend};  // not reached: every mode is handled
}

// A tunnelled packet encapsulated whole but longer than the egress MTU (FwdResult::frag_mtu):
// fragmented on the outer header (outer_frag.h) and its fragments queued to the same egress.
// They count against the TX batch like fragments released from hold (emitBounded): at most up
// to kTxBatchCap - kBurst, so the burst's own packets always fit; past that, all of them are
// one tx_full drop. Out of line and cold: reached from finishForward's drop branch only.
[[gnu::cold]] [[gnu::noinline]] void emitOuterFragments(WorkerState& w, rte_mbuf* m, uint16_t egress,
                                                        uint16_t frag_mtu, uint32_t bid, TxBatch& tx) {
  const uint32_t need = outerFragCount(rte_pktmbuf_pkt_len(m) - kEthLen, frag_mtu);
  if (need == 0 || need > kMaxOuterFrags) {
    dropPkt(w, m, Drop::TooBig);
    return;
  }
  if (uint32_t(tx.n[egress]) + need > uint32_t(kTxBatchCap - kBurst)) {
    dropPkt(w, m, Drop::TxFull);
    return;
  }
  rte_mbuf* out[kMaxOuterFrags];
  const OuterFragResult f = fragmentOuter(m, frag_mtu, w.outer_frag, out, kMaxOuterFrags);
  if (f.drop != Drop::Ok) {
    dropPkt(w, m, f.drop);
    return;
  }
  w.counters.add(Ctr::TunnelFragmented);
  uint64_t bytes = 0;
  for (uint16_t i = 0; i < f.n; i++) {
    bytes += rte_pktmbuf_pkt_len(out[i]);
    emit(tx, out[i], egress);
  }
  if (bid < kMaxCountedBackends && bid != kNoBackend) {
    w.backend_ctrs[bid].packets += f.n;
    w.backend_ctrs[bid].bytes += bytes;
  }
}

// Accounts a forwarding step's result and queues the frame (or frees it with its reason).
// `bctrs`: w.backend_ctrs, loaded once per burst by processBurst.
__rte_always_inline void finishForward(WorkerState& w, rte_mbuf* m, const FwdResult& r, uint32_t bid, TxBatch& tx,
                                       BackendCounters* bctrs) {
  if (r.drop != Drop::Ok) {
    // Too big, but may leave fragmented (by value: `r` stays in registers).
    if (unlikely(r.frag_mtu != 0)) return emitOuterFragments(w, m, r.egress, r.frag_mtu, bid, tx);
    dropPkt(w, m, r.drop);
    return;
  }
  if (r.icmp_sent) {
    w.counters.drop(Drop::TooBig);
    w.counters.add(Ctr::IcmpTooBigSent);
  } else if (bid < kMaxCountedBackends && bid != kNoBackend) {
    // The frame as sent to the backend (after rewrite or encapsulation).
    BackendCounters& bc = bctrs[bid];
    bc.packets++;
    bc.bytes += rte_pktmbuf_pkt_len(m);
  }
  emit(tx, m, r.egress);
}

// Fragments (FragTable, frag_table.h). Out of line and cold: reached only for Drop::Fragment.

// A later fragment (or one released from hold) sent where its first fragment went.
[[gnu::cold]] void sendFragment(WorkerState& w, const Snapshot& s, rte_mbuf* m, const PacketInfo& pi,
                                const FragDecision& d, uint16_t ingress, TxBatch& tx, bool released) {
  if (d.drop) {
    dropPkt(w, m, Drop::Fragment);
    return;
  }
  const SnapBackend* b = s.backend(d.backend);
  // A reload between the first fragment and this one may have taken the backend away.
  if (d.vip_index >= s.vips.size() || !usableForExisting(b, d.vip_index)) {
    dropPkt(w, m, Drop::NoBackend);
    return;
  }
  const SnapVip& vip = s.vips[d.vip_index];
  // The decision's VIP must still be this fragment's destination: a reload may have given its
  // index (and a backend id) to another VIP, whose NAT checksum difference is for another address.
  if (vip.addr.isV4() != (pi.family == Family::V4) ||
      std::memcmp(vip.addr.bytes.data(), rte_pktmbuf_mtod(m, const uint8_t*) + pi.daddr_off,
                  pi.family == Family::V4 ? 4 : 16) != 0) {
    dropPkt(w, m, Drop::NoBackend);
    return;
  }
  const FwdResult r = vip.mode == FwdMode::Nat ? forwardNatLaterFragment(m, pi, *b, s, ingress)
                                               : forwardTo(w, s, vip, *b, m, pi, d.flow_hash, ingress);
  if (r.drop == Drop::Ok && !r.icmp_sent) {
    w.counters.add(Ctr::FragForwarded);
    if (released && !emitBounded(w, tx, m, r.egress)) return;
    if (d.backend < kMaxCountedBackends) {
      w.backend_ctrs[d.backend].packets++;
      w.backend_ctrs[d.backend].bytes += rte_pktmbuf_pkt_len(m);
    }
    if (!released) emit(tx, m, r.egress);
    return;
  }
  finishForward(w, m, r, d.backend, tx, w.backend_ctrs.get());
}

// A fragment to a VIP: the first is scheduled as its 5-tuple (scheduleFlow, the unfragmented
// path) and its decision recorded; later ones follow the decision, or are held until it exists.
// Fragments that are not TCP/UDP to a VIP keep the unparsed path (kernel or counted drop).
//
// Across workers: RSS may put the fragments of one datagram on different queues (NICs often
// hash fragments by addresses only and whole packets by the 4-tuple), so each fragment is
// handled by one owner worker, fragOwner(source, destination), handed over on the owner's ring
// (`from_ring`: it came that way). The owner schedules a first fragment with its *own* flow
// table, which stays single-writer: when the 5-tuple's unfragmented packets are served by
// another worker, the two tables hold separate entries for the flow. They agree through the
// stateless choice (Maglev / source hash are a pure function of the snapshot and the 5-tuple,
// decide.h); they can differ only where that choice is not stateless: round-robin schedulers,
// or an entry kept across a backend change (draining) on one worker and not the other.
[[gnu::cold, gnu::noinline]] void handleFragment(WorkerState& w, const Snapshot& s, rte_mbuf* m, const PacketInfo& pi,
                                                 uint16_t ingress, uint32_t now_ms, TxBatch& tx, bool from_ring) {
  if (pi.frag_proto != kProtoTcp && pi.frag_proto != kProtoUdp && pi.proto != kProtoTcp && pi.proto != kProtoUdp) {
    handleUnparsed(w, s, m, Drop::Fragment, ingress, tx);
    return;
  }
  FragTable& ft = *w.frags;
  const uint8_t* data = rte_pktmbuf_mtod(m, const uint8_t*);
  const uint8_t* saddr = data + pi.saddr_off;
  const uint8_t* daddr = data + pi.daddr_off;
  if (!from_ring && w.frag_rings.size() > 1) {
    const uint32_t owner = fragOwner(saddr, daddr, pi.family, uint32_t(w.frag_rings.size()));
    if (owner != w.index) {
      m->hash.usr = ingress;  // the RSS hash is not needed any more; the owner needs the port
      if (rte_ring_mp_enqueue(w.frag_rings[owner], m) != 0) {
        dropPkt(w, m, Drop::FragRingFull);
        return;
      }
      w.counters.add(Ctr::FragHandedOff);
      return;
    }
  }
  const FragKey key = makeFragKey(saddr, daddr, pi.family, pi.frag_id, pi.frag_proto);
  auto dropAs = [&w](Drop why) { return [&w, why](void* p) { dropPkt(w, static_cast<rte_mbuf*>(p), why); }; };
  if (pi.frag == FragKind::First) {
    uint32_t vip_index = 0;
    const SnapVip* vip = (pi.proto == kProtoTcp || pi.proto == kProtoUdp)
                             ? findVip(s, daddr, pi.family, pi.dport_be, pi.proto, vip_index)
                             : nullptr;
    if (vip == nullptr) {
      handleUnparsed(w, s, m, Drop::Fragment, ingress, tx);
      return;
    }
    w.counters.add(Ctr::FragFirst);
    FragDecision d{vip_index, kNoBackend, 0, true};
    bool ok = false;  // scheduled; when not, scheduleFlow dropped (and freed) the first fragment
    uint32_t bid = kNoBackend, hits = 0;
    if (vip->fragments == FragPolicy::Track) {
      if (pi.family == Family::V4) {
        FlowKey4 k;
        hash_sig_t idx;
        d.flow_hash = addFlowKey(k, saddr, daddr, pi, idx);
        bid = scheduleFlow(w, s, *vip, vip_index, d.flow_hash, idx, false, &k, pi, m, now_ms, hits);
      } else {
        FlowKey6 k;
        hash_sig_t idx;
        d.flow_hash = addFlowKey(k, saddr, daddr, pi, idx);
        bid = scheduleFlow(w, s, *vip, vip_index, d.flow_hash, idx, true, &k, pi, m, now_ms, hits);
      }
      w.counters.add(Ctr::FlowHit, hits);
      ok = bid != kDropped;
      d.backend = ok ? bid : kNoBackend;
      d.drop = !ok;
    }
    // The held ones leave first: they arrived before this one.
    auto release = [&](void* p) {
      auto* h = static_cast<rte_mbuf*>(p);
      PacketInfo hpi;
      // Parsed before it was held; the bytes have not changed since.
      if (parsePacket(rte_pktmbuf_mtod(h, const uint8_t*), rte_pktmbuf_data_len(h), hpi, h->ol_flags) != Drop::Fragment) {
        dropPkt(w, h, Drop::Fragment);
        return;
      }
      sendFragment(w, s, h, hpi, d, ingress, tx, true);
    };
    if (!ft.record(key, d, now_ms, s.frag_timeout_ms, release, dropAs(Drop::FragEvicted)))
      w.counters.add(Ctr::FragUntracked);
    if (vip->fragments == FragPolicy::Drop) {
      dropPkt(w, m, Drop::Fragment);
      return;
    }
    if (!ok) return;  // dropped by scheduleFlow, with its reason
    const FwdResult r = forwardTo(w, s, *vip, s.backends[bid], m, pi, d.flow_hash, ingress);
    if (r.drop == Drop::Ok && !r.icmp_sent) w.counters.add(Ctr::FragForwarded);
    finishForward(w, m, r, bid, tx, w.backend_ctrs.get());
    return;
  }
  if (const FragDecision* d = ft.lookup(key, now_ms)) {
    w.counters.add(Ctr::FragTracked);
    const FragDecision copy = *d;
    sendFragment(w, s, m, pi, copy, ingress, tx, false);
    return;
  }
  // No first fragment yet: held only when it is for a VIP address (the port is in the first)
  // where some VIP tracks fragments; to an address whose VIPs all drop them, dropped now.
  if (!isVipAddr(s, daddr, pi.family)) {
    handleUnparsed(w, s, m, Drop::Fragment, ingress, tx);
    return;
  }
  {
    AddrKey k;
    std::memcpy(k.addr.data(), daddr, pi.family == Family::V4 ? 4 : 16);
    k.family = uint32_t(pi.family);
    if (s.frag_track_addrs.find(k) == nullptr) {
      dropPkt(w, m, Drop::Fragment);
      return;
    }
  }
  switch (ft.hold(key, m, now_ms, s.frag_timeout_ms, dropAs(Drop::FragEvicted))) {
    case FragHold::Held: w.counters.add(Ctr::FragHeld); return;
    case FragHold::TableFull: dropPkt(w, m, Drop::FragTableFull); return;
    case FragHold::HeldFull: dropPkt(w, m, Drop::FragHeldFull); return;
    case FragHold::DatagramFull: dropPkt(w, m, Drop::FragDatagramFull); return;
    case FragHold::Decided: break;  // not reached: lookup() found no decision
  }
  dropPkt(w, m, Drop::Fragment);
}

}  // namespace

uint16_t drainFragRing(WorkerState& w, const Snapshot& s, uint32_t now_ms, TxBatch& tx) {
  if (w.index >= w.frag_rings.size()) return 0;  // one worker: no rings
  rte_mbuf* pkts[kBurst];
  const unsigned n = rte_ring_sc_dequeue_burst(w.frag_rings[w.index], reinterpret_cast<void**>(pkts), kBurst, nullptr);
  for (unsigned i = 0; i < n; i++) {
    rte_mbuf* m = pkts[i];
    const uint16_t ingress = uint16_t(m->hash.usr);
    PacketInfo pi;
    // Parsed by the worker that received it; parsed again here (the ring carries only the mbuf).
    if (ingress >= s.ports.size() ||
        parsePacket(rte_pktmbuf_mtod(m, const uint8_t*), rte_pktmbuf_data_len(m), pi, m->ol_flags) != Drop::Fragment) {
      dropPkt(w, m, Drop::Fragment);
      continue;
    }
    handleFragment(w, s, m, pi, ingress, now_ms, tx, true);
  }
  return uint16_t(n);
}

uint32_t sweepFrags(WorkerState& w, uint32_t now_ms) {
  if (!w.frags) return 0;
  // 32 ways per loop: a 4096-entry table is walked in 128 loops (well under a millisecond when
  // busy), and no loop spends more than a few hundred nanoseconds here.
  return w.frags->sweep(now_ms, 32, [&w](void* p) { dropPkt(w, static_cast<rte_mbuf*>(p), Drop::FragTimeout); });
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
  // Fragments (Drop::Fragment with a fragment table), handled after the burst's other packets.
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
    c.vip = findVip(s, daddr, family, c.pi.dport_be, c.pi.proto, c.vip_index, vip_memo);
    if (c.vip == nullptr) {
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
      c.sig = addFlowKey(k, saddr, daddr, c.pi, c.idx);
      c.key = &k;
      c.v6 = false;
      flows4.prefetchFamily<false>(c.idx);
    } else {
      FlowKey6& k = k6[n6++].v;
      c.sig = addFlowKey(k, saddr, daddr, c.pi, c.idx);
      c.key = &k;
      c.v6 = true;
      flows6.prefetchFamily<true>(c.idx);
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
    Drop d;
    if (likely(parser_detail::parseIpv4Fast(data, len, cksum_verified, c.pi, d))) {
      // Ok: TCP or UDP by the fast parser's entry condition. Otherwise a drop verdict (never a
      // fragment: those go to parseGeneral), handled below like parseGeneral's.
      if (likely(d == Drop::Ok)) {
        if (likely(admit(m, data, c, std::true_type{}))) live[nlive++] = m;
        continue;
      }
    } else {
      d = parser_detail::parseGeneral(data, len, cksum_verified, c.pi);
    }
    // Everything but TCP/UDP for a VIP or from a NAT backend leaves the fast path here, to the
    // out-of-line handlers of slow_path.cc (ARP/ND/echo replies, ICMP errors, exception path).
    if (unlikely(d != Drop::Ok)) {
      if (d == Drop::Fragment && w.frags) {
        frag_m[nfrag] = m;
        frag_pi[nfrag++].v = c.pi;
        continue;
      }
      handleUnparsed(w, s, m, d, ingress, tx);
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
      r = reverseNat(m, c.pi, *c.vip, s, ingress);
      if (r.drop == Drop::Ok && !r.icmp_sent) w.counters.add(Ctr::NatReverse);
    } else {
      bid = scheduleFlow(w, s, *c.vip, c.vip_index, c.sig, c.idx, c.v6, c.key, c.pi, m, now_ms, hits);
      if (unlikely(bid == kDropped)) continue;
      r = forwardTo(w, s, *c.vip, s.backends[bid], m, c.pi, c.sig, ingress);
    }
    finishForward(w, m, r, bid, tx, bctrs);
  }
  w.counters.add(Ctr::FlowHit, hits);
  for (uint16_t i = 0; unlikely(i < nfrag); i++) handleFragment(w, s, frag_m[i], frag_pi[i].v, ingress, now_ms, tx, false);
}

namespace {

inline uint32_t sweepShare(FlowTable& ft, uint32_t& debt, uint32_t elapsed_ms, uint32_t pass_ms) {
  const uint32_t per_ms = std::max((ft.capacity() + pass_ms - 1) / pass_ms, kSweepMinPerMs);
  debt = uint32_t(std::min<uint64_t>(uint64_t(debt) + uint64_t(per_ms) * elapsed_ms, ft.capacity()));
  return debt;
}

// `pass_ms`: how long one pass over a table may take. `s`: with it, flow sync's re-announce
// rides along (sync_rings.h).
uint32_t sweepPaced(WorkerState& w, uint32_t now_ms, const FlowTimeouts& t, uint32_t pass_ms, const Snapshot* s) {
  if (now_ms != w.sweep_last_ms) {
    // At most 10 ms accrue at once: the first call (sweep_last_ms 0) or a stalled worker does
    // not owe a whole pass; the pass then just takes a little longer.
    const uint32_t elapsed = std::min(now_ms - w.sweep_last_ms, 10u);
    w.sweep_last_ms = now_ms;
    sweepShare(*w.flows4, w.sweep_debt4, elapsed, pass_ms);
    sweepShare(*w.flows6, w.sweep_debt6, elapsed, pass_ms);
  }
  if ((w.sweep_debt4 | w.sweep_debt6) == 0) return 0;
  BackendCounters* ended = w.backend_ctrs.get();
  uint32_t expired = 0;
  if (w.sweep_debt4 != 0) {
    const uint32_t b = std::min(w.sweep_debt4, kSweepChunk);
    w.sweep_debt4 -= b;
    ReannounceCtx ctx{&w, s, now_ms, false};
    const FlowTable::LiveVisit visit = reannounceVisit(ctx);
    expired += w.flows4->sweep(now_ms, t, b, ended, s != nullptr ? &visit : nullptr);
  }
  if (w.sweep_debt6 != 0) {
    const uint32_t b = std::min(w.sweep_debt6, kSweepChunk);
    w.sweep_debt6 -= b;
    ReannounceCtx ctx{&w, s, now_ms, true};
    const FlowTable::LiveVisit visit = reannounceVisit(ctx);
    expired += w.flows6->sweep(now_ms, t, b, ended, s != nullptr ? &visit : nullptr);
  }
  if (expired) w.counters.add(Ctr::FlowExpired, expired);
  return expired;
}

}  // namespace

uint32_t sweepFlows(WorkerState& w, uint32_t now_ms, const FlowTimeouts& t) {
  return sweepPaced(w, now_ms, t, kSweepPassMs, nullptr);
}

uint32_t sweepFlows(WorkerState& w, uint32_t now_ms, const Snapshot& s) {
  // Flow sync: every live entry is visited at least once per sync_announce_ms.
  if (unlikely(w.sync_out != nullptr && s.sync_announce_ms != 0))
    return sweepPaced(w, now_ms, s.timeouts, std::min(kSweepPassMs, s.sync_announce_ms), &s);
  return sweepPaced(w, now_ms, s.timeouts, kSweepPassMs, nullptr);
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

namespace {

// Sends what a burst queued, per port; what the driver does not take is a tx_full drop.
inline void flushTx(WorkerState& w, const Snapshot& s, TxBatch& tx) {
  for (uint16_t p = 0; p < s.ports.size(); p++) {
    const uint16_t cnt = tx.n[p];
    if (cnt == 0) continue;
    uint64_t bytes = 0;  // read before the driver owns (and may free) the mbufs
    for (uint16_t k = 0; k < cnt; k++) bytes += rte_pktmbuf_pkt_len(tx.pkts[p][k]);
    uint16_t sent = rte_eth_tx_burst(s.ports[p].port_id, w.index, tx.pkts[p].data(), cnt);
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

}  // namespace

int workerMain(void* arg) {
  auto* a = static_cast<WorkerArgs*>(arg);
  WorkerState& w = *a->state;
  DataplaneShared& sh = *a->shared;
  TxBatch tx;
  rte_mbuf* pkts[kBurst];
  rte_rcu_qsbr_thread_register(sh.qsbr, w.index);
  rte_rcu_qsbr_thread_online(sh.qsbr, w.index);
  const bool backoff = a->idle.enabled;
  IdleBackoff idle(a->idle);
  // Linux adds up to 50 us of timer slack to a normal thread's nanosleep: a 1 us back-off sleep
  // would take 50. Best effort (a failure leaves the default slack: longer sleeps, still correct).
  if (backoff) prctl(PR_SET_TIMERSLACK, 1000UL, 0UL, 0UL, 0UL);
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
      flushTx(w, *s, tx);
    }
    if (unlikely(!w.frag_rings.empty())) {
      tx.clear();
      if (drainFragRing(w, *s, now, tx) != 0) {
        busy = true;
        flushTx(w, *s, tx);
      }
    }
    if (unlikely(w.sync_in != nullptr) && drainSyncIn(w, *s, now) != 0) busy = true;
    sweepFlows(w, now, *s);
    sweepFrags(w, now);
    if (unlikely(sh.test_stall.load(std::memory_order_relaxed)) && w.index == 0) {
      rte_rcu_qsbr_thread_offline(sh.qsbr, w.index);
      while (sh.test_stall.load(std::memory_order_relaxed) && !sh.stop.load(std::memory_order_relaxed)) rte_pause();
      rte_rcu_qsbr_thread_online(sh.qsbr, w.index);
      loop_start = rte_rdtsc();  // the stall is no loop's time either
      continue;                  // not a loop: the stall must not count (WorkerLoad::loops)
    }
    if (unlikely(w.query.request.load(std::memory_order_relaxed) != w.query.answer.load(std::memory_order_relaxed)))
      answerFlowQuery(w, s, now);
    // Adaptive idle back-off (idle_backoff.h); off: this one branch. A sleeping worker is
    // RCU-offline, so a snapshot publish never waits for its sleep to end (it holds no snapshot
    // pointer past this point; the next loop reloads it after going online).
    if (unlikely(backoff)) {
      if (busy) {
        idle.busy();
      } else if (const uint32_t us = idle.idle(); us != 0) {
        const uint64_t t0 = rte_rdtsc();
        if (likely(!a->idle.test_sleep_online)) {
          rte_rcu_qsbr_thread_offline(sh.qsbr, w.index);
          rte_delay_us_sleep(us);
          rte_rcu_qsbr_thread_online(sh.qsbr, w.index);
        } else {
          rte_delay_us_sleep(us);
        }
        w.load.idle_sleeps++;
        w.load.idle_sleep_cycles += rte_rdtsc() - t0;
      }
    }
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
