// The per-packet flow decision: given what the worker's flow table holds for a packet's flow
// (an entry or none), the snapshot and the packet's facts, which backend the packet goes to,
// why (a named outcome), and what the table should hold afterwards. Katran's
// connection_table_lookup() + get_packet_dst(), as one pure function with grout-style named
// outcomes.
//
// Callers:
// - the worker's fast path (worker.cc processBurst) for every TCP/UDP packet to a VIP: it does
//   what the decision says (store the entry, count, forward);
// - l4lbctl explain (control thread), with the entry a worker answered through its FlowQuery
//   slot, so the operator's answer can never disagree with forwarding.
// It reads and writes nothing but its arguments (and the round-robin cursor it is given), so
// it runs on any thread. Inline: called per packet.
#pragma once

#include <cstdint>

#include <rte_common.h>
#include <rte_hash.h>  // hash_sig_t

#include "dataplane/flow.h"
#include "dataplane/flow_table.h"  // StoreResult
#include "dataplane/lookup.h"
#include "dataplane/token_bucket.h"
#include "l4lb/maglev.h"
#include "l4lb/snapshot.h"

namespace l4lb::dataplane {

// What the flow table's entry for the flow says, before any new choice.
enum class EntryVerdict : uint8_t {
  None,      // no entry
  Live,      // an entry whose backend may carry the flow on: the flow keeps it
  Expired,   // an entry idle past its state's timeout: the flow starts anew
  Unusable,  // a live entry whose backend left the VIP's pool or failed: re-hashed
};

// Named outcomes, one per exit of the decision.
enum class FlowOutcome : uint8_t {
  Hit,        // live entry: the packet goes to the entry's backend
  Expired,    // the entry had expired: a new choice, stored over it
  Rehash,     // the entry's backend is no longer usable: a new choice, stored over it
  New,        // no entry: a new choice, stored
  Untracked,  // no entry and the table is full: a stateless choice (Maglev), not stored
  NoBackend,  // the VIP has no usable backend for a new choice: dropped (no_backend)
  // Flood admission (appended: the values above keep their numbers).
  EmbryonicFull,  // a new embryonic entry (SYN, first UDP packet) finds the quota full and
                  // nothing it may displace: a stateless choice, not stored (flow_embryonic_full)
  RateStateless,  // over the VIP's new-flow rate, over_rate = "stateless": a stateless choice,
                  // not stored (flow_rate_stateless)
  RateDrop,       // over the VIP's new-flow rate, over_rate = "drop": dropped (rate_limited)
};

constexpr const char* toString(FlowOutcome o) {
  switch (o) {
    case FlowOutcome::Hit: return "hit";
    case FlowOutcome::Expired: return "expired";
    case FlowOutcome::Rehash: return "rehash";
    case FlowOutcome::New: return "new";
    case FlowOutcome::Untracked: return "untracked";
    case FlowOutcome::NoBackend: return "no_backend";
    case FlowOutcome::EmbryonicFull: return "embryonic_full";
    case FlowOutcome::RateStateless: return "rate_stateless";
    case FlowOutcome::RateDrop: return "rate_limited";
  }
  return "?";
}

// The packet's facts the decision needs (the parser's and the VIP lookup's results).
struct FlowFacts {
  const SnapVip* vip;
  uint32_t vip_index;
  hash_sig_t slot_hash;  // the flow key's CRC (makeFlowKey): the Maglev slot, the same on every instance
  Family family;
  bool tcp;
  uint8_t tcp_flags;
};

struct FlowDecision {
  FlowOutcome outcome;
  EntryVerdict entry;
  uint32_t backend;      // where the packet goes; kNoBackend for NoBackend (and for a round-robin
                         // new choice asked without a cursor: explain cannot know the worker's)
  uint32_t old_backend;  // the entry's backend before this packet; kNoBackend without an entry
  bool store;            // write `value` under the flow's key (only Hit, New, Expired, Rehash)
  bool displaces;        // the store takes another entry's place (FlowTable::store: Displaced)
  FlowValue value;
};

// A stateless choice (no entry): Maglev on the 5-tuple gives the same answer for every packet
// of the flow while the tables do not change (round robin would not, so a round-robin VIP uses
// its Maglev table here).
template <typename SourceAddr>
__rte_always_inline uint32_t statelessFlowBackend(const SnapVip& v, const FlowFacts& p, SourceAddr&& source_addr) {
  if (isRoundRobin(v)) return v.maglev.empty() ? kNoBackend : v.maglev[maglevSlot(p.slot_hash, v.maglev.size())];
  return statelessBackend(v, p.slot_hash, source_addr(), p.family);
}

inline EntryVerdict classifyEntry(const FlowValue& fv, const Snapshot& s, uint32_t vip_index, uint32_t now_ms) {
  if (isExpired(fv, now_ms, s.timeouts)) return EntryVerdict::Expired;
  return usableForExisting(s.backend(fv.backend_id), vip_index) ? EntryVerdict::Live : EntryVerdict::Unusable;
}

// The scheduler's choice for a new flow. Round robin advances `rr_cursor` (the worker's, per
// VIP); without a cursor (explain) it returns kNoBackend. source_addr() gives the client
// address (source hashing).
template <typename SourceAddr>
__rte_always_inline uint32_t newFlowBackend(const SnapVip& v, const FlowFacts& p, uint32_t* rr_cursor,
                                            SourceAddr&& source_addr) {
  if (isRoundRobin(v)) {
    if (v.rr.empty() || rr_cursor == nullptr) return kNoBackend;
    uint32_t& c = *rr_cursor;
    if (c >= v.rr.size()) c = 0;
    return v.rr[c++];
  }
  return statelessBackend(v, p.slot_hash, source_addr(), p.family);
}

// hit/raw: the table's lookup result (raw is FlowValue::pack() of the entry). admit(embryonic):
// what storing a new value of that class under the flow's key would do
// (FlowTable::canStore: Stored, Displaced, TableFull or EmbryonicFull). source_addr(): the
// client address. Both are asked only on the way to a new choice, so a hit pays for neither.
// rr_cursor: see newFlowBackend. bucket: the worker's new-flow token bucket for this VIP
// (token_bucket.h); nullptr (explain) does not limit. decideFlow takes the two together
// (WorkerChoiceState).
//
// decideFlow is decideHit (an entry: live or not) then, unless live, decideMiss. The worker
// calls the two itself, so that a hit builds none of what a new choice needs (the callbacks'
// captures, the admission parameters): a hit costs what it did before admission.

// The worker's state a new choice may advance, per VIP: its round-robin cursor and its new-flow
// token bucket; {} (explain) advances neither and does not limit.
struct WorkerChoiceState {
  uint32_t* rr_cursor = nullptr;
  TokenBucket* new_flow_tokens = nullptr;
};

// Starts a decision (no entry).
__rte_always_inline FlowDecision startDecision() {
  FlowDecision d;
  d.store = true;
  d.displaces = false;
  d.old_backend = kNoBackend;
  d.entry = EntryVerdict::None;
  return d;
}

// The table held an entry (raw): true when it is live, with `d` the Hit decision. Otherwise `d`
// holds the entry's verdict, value and backend for decideMiss.
__rte_always_inline bool decideHit(const Snapshot& s, const FlowFacts& p, uint64_t raw, uint32_t now_ms,
                                   FlowDecision& d) {
  d.value = FlowValue::unpack(raw);
  d.old_backend = d.value.backend_id;
  d.entry = classifyEntry(d.value, s, p.vip_index, now_ms);
  if (likely(d.entry == EntryVerdict::Live)) {
    const FlowState ns = nextState(d.value.state, p.tcp, p.tcp_flags, s.admission.enabled);
    // A hit rewrites its entry only when the state moves or the last-seen time is due.
    d.store = ns != d.value.state || uint32_t(now_ms - d.value.last_seen_ms) >= kFlowRefreshMs;
    d.value.state = ns;
    d.value.last_seen_ms = now_ms;
    d.backend = d.old_backend;
    d.outcome = FlowOutcome::Hit;
    return true;
  }
  return false;
}

// No live entry (d from startDecision, or from a decideHit that returned false): a new choice.
template <typename Admit, typename SourceAddr>
__rte_always_inline FlowDecision decideMiss(const Snapshot& s, const FlowFacts& p, FlowDecision d, uint32_t now_ms,
                                            uint32_t* rr_cursor, TokenBucket* bucket, Admit&& admit,
                                            SourceAddr&& source_addr) {
  const bool admission = s.admission.enabled;
  // A new flow (no entry, or an expired one) takes a token of the VIP's new-flow rate; a
  // re-hash (a live flow whose backend left) does not.
  if (bucket != nullptr && d.entry != EntryVerdict::Unusable &&
      unlikely(!takeNewFlowToken(*bucket, p.vip->new_flow, now_ms))) {
    d.store = false;
    if (p.vip->new_flow.drop) {
      d.outcome = FlowOutcome::RateDrop;
      d.backend = kNoBackend;
      return d;
    }
    d.outcome = FlowOutcome::RateStateless;
    d.backend = statelessFlowBackend(*p.vip, p, source_addr);
    if (d.backend == kNoBackend) d.outcome = FlowOutcome::NoBackend;
    return d;
  }
  // The new entry's state. A re-hash keeps the flow's own progress (admission on): an
  // established flow moved to another backend stays confirmed.
  FlowState ns;
  if (!admission) ns = nextStateNoAdmission(FlowState::TcpSyn, p.tcp, p.tcp_flags);
  else if (d.entry == EntryVerdict::Unusable) ns = nextState(d.value.state, p.tcp, p.tcp_flags);
  else ns = initialState(p.tcp, p.tcp_flags, true);
  // A round-robin VIP cannot forward a UDP flow consistently without its entry (a first packet
  // forwarded statelessly would take the Maglev slot, a later one admitted the cursor's next
  // backend), and a UDP flow has no handshake to tell a first packet: its UDP flows are
  // confirmed from the first packet, as before admission. new_flow_rate bounds them.
  if (admission && !p.tcp && d.entry != EntryVerdict::Unusable && isRoundRobin(*p.vip)) ns = FlowState::Udp;
  const StoreResult room = admit(isEmbryonic(ns));
  if (unlikely(room == StoreResult::TableFull || room == StoreResult::EmbryonicFull)) {
    // Full: stay correct without state.
    d.outcome = room == StoreResult::TableFull ? FlowOutcome::Untracked : FlowOutcome::EmbryonicFull;
    d.store = false;
    d.backend = statelessFlowBackend(*p.vip, p, source_addr);
    if (d.backend == kNoBackend) d.outcome = FlowOutcome::NoBackend;
    return d;
  }
  d.displaces = room == StoreResult::Displaced;
  // A TCP flow first seen without SYN (admission on) may have had its SYN forwarded
  // statelessly (quota full, over the rate): it stays on that stateless choice, which for a
  // round-robin VIP is the Maglev slot, not the cursor's next backend. (A displaced embryonic
  // entry of a round-robin VIP loses its choice: its next packet, if any, lands here.)
  // A round-robin choice is pinned: FlowTable never displaces the entry while it lives.
  bool pinned = false;
  if (admission && p.tcp && d.entry != EntryVerdict::Unusable && !isEmbryonic(ns) && isRoundRobin(*p.vip)) {
    d.backend = statelessFlowBackend(*p.vip, p, source_addr);
  } else {
    d.backend = newFlowBackend(*p.vip, p, rr_cursor, source_addr);
    pinned = isRoundRobin(*p.vip);
  }
  // Asked without a cursor, a round-robin VIP with backends has a choice explain cannot name.
  const bool unnamed = rr_cursor == nullptr && isRoundRobin(*p.vip) && !p.vip->rr.empty();
  if (d.backend == kNoBackend && !unnamed) {
    d.outcome = FlowOutcome::NoBackend;
    d.store = false;
    return d;
  }
  d.value.backend_id = d.backend;
  d.value.state = ns;
  d.value.last_seen_ms = now_ms;
  d.value.pinned = pinned;
  switch (d.entry) {
    case EntryVerdict::Expired: d.outcome = FlowOutcome::Expired; return d;
    case EntryVerdict::Unusable: d.outcome = FlowOutcome::Rehash; return d;
    case EntryVerdict::None:
    case EntryVerdict::Live: break;
  }
  d.outcome = FlowOutcome::New;
  return d;
}

template <typename Admit, typename SourceAddr>
__rte_always_inline FlowDecision decideFlow(const Snapshot& s, const FlowFacts& p, bool hit, uint64_t raw,
                                            uint32_t now_ms, WorkerChoiceState ws, Admit&& admit,
                                            SourceAddr&& source_addr) {
  FlowDecision d = startDecision();
  if (hit && decideHit(s, p, raw, now_ms, d)) return d;
  return decideMiss(s, p, d, now_ms, ws.rr_cursor, ws.new_flow_tokens, admit, source_addr);
}

}  // namespace l4lb::dataplane
