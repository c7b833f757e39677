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
#include "dataplane/lookup.h"
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
};

constexpr const char* toString(FlowOutcome o) {
  switch (o) {
    case FlowOutcome::Hit: return "hit";
    case FlowOutcome::Expired: return "expired";
    case FlowOutcome::Rehash: return "rehash";
    case FlowOutcome::New: return "new";
    case FlowOutcome::Untracked: return "untracked";
    case FlowOutcome::NoBackend: return "no_backend";
  }
  return "?";
}

// The packet's facts the decision needs (the parser's and the VIP lookup's results).
struct FlowFacts {
  const SnapVip* vip;
  uint32_t vip_index;
  hash_sig_t sig;  // the flow key's CRC (makeFlowKey): the Maglev slot, the same on every instance
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
  bool store;            // write `value` under the flow's key (never for Untracked / NoBackend)
  FlowValue value;
};

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
  return statelessBackend(v, p.sig, source_addr(), p.family);
}

// hit/raw: the table's lookup result (raw is FlowValue::pack() of the entry). has_room(): may a
// new key be inserted (size below capacity)? source_addr(): the client address. Both are asked
// only on the way to a new choice, so a hit pays for neither. rr_cursor: see newFlowBackend.
template <typename HasRoom, typename SourceAddr>
__rte_always_inline FlowDecision decideFlow(const Snapshot& s, const FlowFacts& p, bool hit, uint64_t raw,
                                            uint32_t now_ms, uint32_t* rr_cursor, HasRoom&& has_room,
                                            SourceAddr&& source_addr) {
  FlowDecision d;
  d.store = true;
  d.old_backend = kNoBackend;
  d.entry = EntryVerdict::None;
  if (hit) {
    d.value = FlowValue::unpack(raw);
    d.old_backend = d.value.backend_id;
    d.entry = classifyEntry(d.value, s, p.vip_index, now_ms);
    if (likely(d.entry == EntryVerdict::Live)) {
      const FlowState ns = nextState(d.value.state, p.tcp, p.tcp_flags);
      // A hit rewrites its entry only when the state moves or the last-seen time is due.
      d.store = ns != d.value.state || uint32_t(now_ms - d.value.last_seen_ms) >= kFlowRefreshMs;
      d.value.state = ns;
      d.value.last_seen_ms = now_ms;
      d.backend = d.old_backend;
      d.outcome = FlowOutcome::Hit;
      return d;
    }
  }
  d.backend = newFlowBackend(*p.vip, p, rr_cursor, source_addr);
  // Asked without a cursor, a round-robin VIP with backends has a choice explain cannot name.
  const bool unnamed = rr_cursor == nullptr && isRoundRobin(*p.vip) && !p.vip->rr.empty();
  if (d.backend == kNoBackend && !unnamed) {
    d.outcome = FlowOutcome::NoBackend;
    d.store = false;
    return d;
  }
  d.value.backend_id = d.backend;
  d.value.state = nextState(FlowState::TcpSyn, p.tcp, p.tcp_flags);
  d.value.last_seen_ms = now_ms;
  switch (d.entry) {
    case EntryVerdict::Expired: d.outcome = FlowOutcome::Expired; return d;
    case EntryVerdict::Unusable: d.outcome = FlowOutcome::Rehash; return d;
    case EntryVerdict::None:
    case EntryVerdict::Live: break;
  }
  if (likely(has_room())) {
    d.outcome = FlowOutcome::New;
    return d;
  }
  // Full: stay correct without state. Maglev on the 5-tuple gives the same answer for every
  // packet of the flow while the tables do not change (round robin would not).
  d.outcome = FlowOutcome::Untracked;
  d.store = false;
  if (isRoundRobin(*p.vip)) {
    d.backend = p.vip->maglev.empty() ? kNoBackend : p.vip->maglev[maglevSlot(p.sig, p.vip->maglev.size())];
    if (d.backend == kNoBackend) d.outcome = FlowOutcome::NoBackend;
  }
  return d;
}

}  // namespace l4lb::dataplane
