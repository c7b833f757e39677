// The worker's end of flow sync (docs/SCALE-OUT.md, "Flow sync"): two
// SP/SC rte_ring element rings of l4lb::SyncFlow per worker, and what the worker puts in and
// takes out of them. The sync thread (src/control/sync) owns the other ends.
//
// What it promises, and what it may drop:
// - It never blocks and never allocates on the worker: a record that does not fit sync_out is
//   dropped and counted (sync_out_full); the sweep announces the flow again on its next pass.
// - Announce (sync_out): a flow is announced when its entry becomes a live confirmed flow that
//   has not begun to close (flow.h isAnnounceable): a new entry in that state (handleMiss), or an
//   embryonic entry confirmed by a hit (the handshake's ACK, a second UDP packet). Embryonic
//   entries are never announced: a SYN flood on one balancer must not fill its peers' tables
//   with entries they would treat as confirmed. The sweep re-announces a live announceable entry
//   on each pass (at most sync_announce_ms apart) if local traffic refreshed it since its last
//   announcement (kFlowAnnouncedBit, cleared by every rewrite by local traffic, so a flow that goes quiet
//   is not re-announced: its peers age it as it ages here). A pass over a small table is
//   shorter than sync_announce_ms (kSweepMinPerMs positions per ms), so there a busy flow may
//   be re-announced as often as it is refreshed (kFlowRefreshMs); with sync on, a large table's
//   sweep runs sync_announce_ms / kSweepPassMs times as often as without (every entry read once
//   per pass). An entry still marked from a peer
//   (kFlowPeerBit) is never announced: two peers would keep a dead flow alive forever.
// - Receive (sync_in): a record names its backend by identity (address, port); the worker maps
//   it to its own backend id (VIP by destination, port, protocol; then the VIP's backend with
//   that address and port) and
//     no entry, or an expired one  -> inserted, marked from a peer (sync_in_inserted), by the
//                                     flow table's admission rules (sync_in_table_full)
//     a live entry from a peer     -> same backend: refreshed (sync_in_refreshed); another
//                                     backend: replaced if the record is newer (sync_in_replaced)
//                                     by its last-seen time; an older record changes nothing
//                                     (sync_in_stale)
//     a live local entry           -> kept: local traffic decides (sync_in_kept_local)
//   and counts a record whose VIP or backend it does not have, or whose backend is down here
//   (sync_in_unknown). A peer entry's last-seen time is the record's, at least
//   min(kFlowRefreshMs, timeout) ago, so the first local packet to hit it rewrites it: that
//   rewrite clears the from-peer mark and counts flow_peer_hit, and the hit path pays nothing
//   for either.
#pragma once

#include <cstdint>
#include <string>

#include "dataplane/flow.h"
#include "dataplane/worker.h"
#include "l4lb/snapshot.h"
#include "l4lb/sync_record.h"

namespace l4lb::dataplane {

// Records a worker takes from sync_in per loop (workerMain): a bounded share of its time.
inline constexpr uint32_t kSyncDrainBurst = 32;

// Creates w.sync_out and w.sync_in, each holding exactly `size` records (1..2^24), on the
// socket of the calling thread's lcore (any socket when it has none). Called before the worker
// starts, only when sync is enabled; the rings are freed with the WorkerState. False with `err`
// set ("what: why") when the worker has rings already, the size is out of range, or
// rte_ring_create_elem fails (rte_errno's text).
bool createSyncRings(WorkerState& w, uint32_t size, std::string& err);

// The record announcing entry `v` under `key` (FlowKey4/6 bytes; `v6` says which), or false
// when its backend is not in `s` (a stale entry: the next packet re-hashes it).
bool makeSyncFlow(const Snapshot& s, const void* key, bool v6, const FlowValue& v, uint32_t now_ms, SyncFlow& out);

// Pushes the record of `v` to w.sync_out (which must exist). True when pushed (sync_announced);
// false when the ring is full (sync_out_full) or the backend is unknown.
bool announceFlow(WorkerState& w, const Snapshot& s, const void* key, bool v6, const FlowValue& v, uint32_t now_ms);

// The hit path's rewrite of an entry held as `raw` into `value` (packed, decideHit's), when
// `raw` is from a peer or the state moves (the worker calls it only then): counts
// flow_peer_hit, and announces an entry that has just become announceable. Returns the value
// to store.
uint64_t syncOnRewrite(WorkerState& w, const Snapshot& s, const void* key, bool v6, uint64_t raw, uint64_t value,
                       uint32_t now_ms);

// What applySyncFlow did with a record (each outcome has its counter).
enum class SyncApply : uint8_t { Inserted, Refreshed, Replaced, KeptLocal, Stale, Unknown, TableFull };

// Applies one peer record to w's flow tables by the rules above, and counts the outcome.
SyncApply applySyncFlow(WorkerState& w, const Snapshot& s, const SyncFlow& r, uint32_t now_ms);

// Takes up to kSyncDrainBurst records from w.sync_in (which must exist) and applies them.
// Returns how many were taken.
uint32_t drainSyncIn(WorkerState& w, const Snapshot& s, uint32_t now_ms);

// The sweep's re-announce (FlowTable::LiveVisit): announces a live entry the sweep skips unless
// it is neither from a peer nor announced since its last refresh.
struct ReannounceCtx {
  WorkerState* w;
  const Snapshot* s;
  uint32_t now_ms;
  bool v6;
};
FlowTable::LiveVisit reannounceVisit(ReannounceCtx& ctx);

}  // namespace l4lb::dataplane
