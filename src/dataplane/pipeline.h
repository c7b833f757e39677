// The per-packet steps of the forwarding path, shared by the burst (burst.cc) and the fragment
// path (frag_path.cc): schedule the flow (flow-table lookup and decision, decide.h), forward it
// by the VIP's mode (forward.h), and account and queue the result. Each step takes the packet's
// context (packet_ctx.h) by reference. The inline steps are forced inline (they are the hot loop
// of processBurst); what runs out of line is marked so, and is the rarer path.
#pragma once

#include <cstdint>

#include <rte_branch_prediction.h>
#include <rte_common.h>
#include <rte_mbuf.h>

#include "dataplane/decide.h"
#include "dataplane/forward.h"
#include "dataplane/packet_ctx.h"
#include "dataplane/worker.h"

namespace l4lb::dataplane {

// What scheduleFlow returns when it dropped (and freed) the packet.
inline constexpr uint32_t kDropped = ~0u;

// Out-of-line steps, defined next to processBurst (burst.cc) and hidden (not interposable: the
// compiler may treat them as the local functions they are).
#define L4LB_PIPELINE_STEP __attribute__((visibility("hidden")))

// A packet whose flow has no live entry (none, an expired one, or one whose backend left):
// decideMiss, then the store and its counters. `hit`: the lookup found an entry, and `d` is
// decideHit's verdict on it. Returns the backend, or kDropped when the packet was dropped.
[[gnu::noinline]] L4LB_PIPELINE_STEP uint32_t decideWithoutLiveEntry(WorkerState& w, const Snapshot& s, FlowTable& ft,
                                                                     const PktCtx& c, rte_mbuf* m, bool hit,
                                                                     FlowDecision d, uint32_t now_ms);

// A hit that rewrites its entry (the state moved, or the last-seen time is due: about once a
// second per flow): the store, and flow sync's part. `raw`: the entry as found, `value`: as it
// is to be stored.
[[gnu::noinline]] L4LB_PIPELINE_STEP void rewriteHit(WorkerState& w, const Snapshot& s, FlowTable& ft, const PktCtx& c,
                                                     uint64_t raw, uint64_t value, uint32_t now_ms);

// A tunnelled packet encapsulated whole but longer than the egress MTU (FwdOutcome::Fragment),
// fragmented on the outer header (outer_frag.cc).
[[gnu::cold, gnu::noinline]] void emitOuterFragments(WorkerState& w, rte_mbuf* m, uint16_t egress, uint16_t frag_mtu,
                                                     uint32_t bid, TxBatch& tx);

// A TCP/UDP packet of a VIP's 5-tuple (an unfragmented one, or a first fragment): the flow
// table lookup and the decision (decide.h). A hit (a live entry) is decided inline and builds
// nothing else; the rest (a new choice, admission, the store and its counters) runs out of line
// in decideWithoutLiveEntry, which keeps the hit loop's registers free. Returns the backend, or
// kDropped when the packet was dropped (no backend, rate limit) and freed. `hits` counts
// flow-table hits (Ctr::FlowHit, added per burst).
__rte_always_inline uint32_t scheduleFlow(WorkerState& w, const Snapshot& s, const PktCtx& c, rte_mbuf* m,
                                          uint32_t now_ms, uint32_t& hits) {
  FlowTable& ft = c.v6 ? *w.flows6 : *w.flows4;
  uint64_t raw = 0;
  const bool hit =
      c.v6 ? ft.lookupFamily<true>(c.key, c.bucket_hash, raw) : ft.lookupFamily<false>(c.key, c.bucket_hash, raw);
  const FlowFacts facts{c.vip, c.vip_index, c.slot_hash, c.pi.family, c.pi.proto == kProtoTcp, c.pi.tcp_flags};
  if (likely(hit)) {
    // The hit's decision stays in registers: decideWithoutLiveEntry takes its FlowDecision by
    // value (in memory), so the one passed to it is built on the miss path only (decideHit again
    // there: a pure function, and an entry that is not live is rare).
    FlowDecision d = startDecision();
    if (likely(decideHit(s, facts, raw, now_ms, d))) {
      hits++;
      if (d.store) rewriteHit(w, s, ft, c, raw, d.value.pack(), now_ms);
      return d.backend;
    }
  }
  FlowDecision d = startDecision();
  if (hit) decideHit(s, facts, raw, now_ms, d);
  return decideWithoutLiveEntry(w, s, ft, c, m, hit, d, now_ms);
}

// The one switch on the forwarding mode, for the fast path and the slow path alike: DSR and the
// tunnels are the same for every caller; `nat` is the caller's NAT step (forwardNat for a
// client's packet, forwardNatLaterFragment for a later fragment, the RFC 5508 rewrite for an
// ICMP error), a callable returning FwdResult.
template <typename NatStep>
__rte_always_inline FwdResult forwardByMode(WorkerState& w, const Snapshot& s, const PktCtx& c, const SnapBackend& b,
                                            rte_mbuf* m, uint16_t ingress, NatStep&& nat) {
  switch (c.vip->mode) {
    case FwdMode::Dsr: return forwardDsr(m, c.pi, b, s, ingress);
    case FwdMode::Ipip: return forwardIpip(m, c.pi, *c.vip, b, s, c.slot_hash, ingress, w.ip_id++);
    case FwdMode::Gue: return forwardGue(m, c.pi, *c.vip, b, s, c.slot_hash, ingress, w.ip_id++);
    case FwdMode::Nat: return nat();
    // Full NAT keeps a session per flow (fullnat_path.h): the burst calls it directly, the slow
    // path translates an ICMP error about its flow before this switch (fullnat_icmp.h); a
    // fragment is not translated.
    case FwdMode::FullNat: return FwdResult::dropped(Drop::FullNatUnsupported);
  }
  return FwdResult::dropped(Drop::NoBackend);  // not reached: every mode is handled
}

// A client's packet forwarded to backend `b` by its VIP's mode.
__rte_always_inline FwdResult forwardTo(WorkerState& w, const Snapshot& s, const PktCtx& c, const SnapBackend& b,
                                        rte_mbuf* m, uint16_t ingress) {
  return forwardByMode(w, s, c, b, m, ingress,
                       [&]() __attribute__((always_inline)) { return forwardNat(m, c.pi, b, s, ingress); });
}

// Accounts a forwarding step's result and queues the frame (or frees it with its reason).
// `bctrs`: w.backend_ctrs, loaded once per burst by processBurst.
__rte_always_inline void finishForward(WorkerState& w, rte_mbuf* m, const FwdResult& r, uint32_t bid, TxBatch& tx,
                                       BackendCounters* bctrs) {
  // Sent is the one outcome the hot loop expects: one test of `outcome` before the accounting.
  if (unlikely(r.outcome != FwdOutcome::Sent)) {
    if (r.outcome == FwdOutcome::Dropped) {
      dropPkt(w, m, r.drop);
      return;
    }
    // Too big, but may leave fragmented (by value: `r` stays in registers).
    if (r.outcome == FwdOutcome::Fragment) return emitOuterFragments(w, m, r.egress, r.frag_mtu, bid, tx);
    if (r.outcome == FwdOutcome::HandedOff) return;  // another worker's mbuf now
    // IcmpSent: the reply goes back to the client, counted as a too_big drop of the packet.
    w.counters.drop(Drop::TooBig);
    w.counters.add(Ctr::IcmpTooBigSent);
    emit(tx, m, r.egress);
    return;
  }
  if (bid < kMaxCountedBackends && bid != kNoBackend) {
    // The frame as sent to the backend (after rewrite or encapsulation).
    BackendCounters& bc = bctrs[bid];
    bc.packets++;
    bc.bytes += rte_pktmbuf_pkt_len(m);
  }
  emit(tx, m, r.egress);
}

}  // namespace l4lb::dataplane
