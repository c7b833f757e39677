// A worker: one per configured core, pinned, polling its RX queues in bursts, choosing a backend
// per flow and rewriting packets toward it (l3fwd-style loop; grout-style named drop verdicts).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include <rte_cycles.h>
#include <rte_mbuf.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring.h>

#include "dataplane/flow_table.h"
#include "dataplane/frag_table.h"
#include "dataplane/fullnat/fullnat_state.h"
#include "dataplane/forward.h"
#include "dataplane/outer_frag.h"
#include "dataplane/token_bucket.h"
#include "dataplane/flow_query.h"
#include "dataplane/idle_backoff.h"
#include "l4lb/counters.h"
#include "l4lb/snapshot.h"

namespace l4lb::dataplane {

inline constexpr uint16_t kBurst = 32;
using l4lb::kMaxVips;  // include/l4lb/limits.h: the snapshot builder enforces it
// The sweeper only reclaims memory (a lookup already treats an expired entry as a miss), so it
// is paced by time, not by loops: each table is walked once per kSweepPassMs (faster for small
// tables: at least kSweepMinPerMs positions per ms), whatever the load, in chunks of at most
// kSweepChunk positions per loop so no loop stalls the worker. A position is up to three slot
// reads (a cache miss on a large table); paced, a 1M table costs ~105 positions per ms, and an
// expired entry is reclaimed within timeout + 10 s.
inline constexpr uint32_t kSweepPassMs = 10'000;
inline constexpr uint32_t kSweepMinPerMs = 16;
inline constexpr uint32_t kSweepChunk = 64;

// Room per port for a burst's own packets (kBurst) plus fragments released from hold with their
// first (the fragment path checks this room, emitBounded; the per-packet path cannot exceed
// kBurst, which it uses first).
inline constexpr uint16_t kTxBatchCap = kBurst * 4;

// Packets ready to send, grouped by egress port (Snapshot::ports index).
struct TxBatch {
  std::array<std::array<rte_mbuf*, kTxBatchCap>, kMaxPorts> pkts;
  std::array<uint16_t, kMaxPorts> n{};
  void clear() { n.fill(0); }
};

// Everything one worker owns. Cache-aligned so two workers never share a line.
struct alignas(RTE_CACHE_LINE_SIZE) WorkerState {
  uint16_t index = 0;  // worker number: TX queue on every port, QSBR thread id
  std::unique_ptr<FlowTable> flows4, flows6;
  WorkerCounters counters;
  // Filled by the worker (processBurst / workerMain); read and summed by the control plane.
  std::unique_ptr<BackendCounters[]> backend_ctrs{new BackendCounters[kMaxCountedBackends]};
  std::array<PortCounters, kMaxPorts> port_ctrs{};
  WorkerLoad load;
  std::array<uint32_t, kMaxVips> rr_cursor{};  // round-robin position per VIP index
  std::array<TokenBucket, kMaxVips> new_flow_tokens{};  // new-flow rate limit per VIP index (decide.h)
  TokenBucket icmp_errors;  // forwarded ICMP errors ([icmp], slow_path.cc)
  uint16_t ip_id = 0;  // next outer IPv4 ID for tunnelled packets (RFC 6864: unique when DF is clear)
  // Sweep pacing (sweepFlows): positions owed per table, and when they were last accrued.
  uint32_t sweep_last_ms = 0;
  uint32_t sweep_debt4 = 0, sweep_debt6 = 0;
  FlowQuery query;  // written by the control thread only through the FlowQuery protocol
  // Full NAT's sessions and this worker's share of the source pairs (fullnat/fullnat_state.h);
  // null without fullnat VIPs.
  std::unique_ptr<FullNatState> fullnat;
  // Full NAT's pool usage per source address (Snapshot::snat_addrs index), this worker's share:
  // written by the worker (publishSnatUsage, at most once a second), read and summed by the
  // control plane like the counters above. Sized by the daemon with `fullnat`, before the
  // worker starts; never resized after.
  std::vector<SnatPortCounts> snat_ports;
  uint32_t snat_published_ms = 0;
  // IP fragments (frag_table.h); null: fragments take the exception path as unparsed packets.
  std::unique_ptr<FragTable> frags;
  // With several workers, every worker's hand-off ring (index = worker; multi-producer,
  // single-consumer: any worker hands a packet to its owner, and only the owner dequeues): IP
  // fragments to the worker that owns their datagram (fragOwner, frag_path.cc) and full NAT's
  // replies to the worker that holds their session (fullnat_handoff.h). Empty with one worker.
  // Created and freed by the daemon, outside the loop.
  std::vector<rte_ring*> handoff_rings;
  // Mbufs for outer-header fragments of tunnelled packets (outer_frag.h), shared by the workers
  // and created by the daemon; null pools: such packets are frag_out_nomem drops.
  OuterFragPools outer_frag;
  // Flow sync (sync_rings.h): SP/SC element rings of l4lb::SyncFlow, created by
  // createSyncRings before the worker starts, freed with the WorkerState. nullptr: sync off.
  rte_ring* sync_out = nullptr;  // worker (producer) -> sync sender (consumer)
  rte_ring* sync_in = nullptr;   // sync receiver (producer) -> worker (consumer)

  WorkerState() = default;
  WorkerState(const WorkerState&) = delete;
  WorkerState& operator=(const WorkerState&) = delete;
  ~WorkerState() {
    rte_ring_free(sync_out);  // no-ops on nullptr
    rte_ring_free(sync_in);
  }
};

// Packets in a hand-off ring: at most this many per worker (the mbuf pool is sized with room for
// them).
inline constexpr uint32_t kHandOffRingSize = 512;

// The owner's side of the hand-off rings: takes up to kBurst packets other workers handed to this
// one (fragments, each with the ingress port index it arrived on; full NAT's replies) and handles
// them as its own. Returns how many were taken.
uint16_t drainHandOffRing(WorkerState& w, const Snapshot& s, uint32_t now_ms, TxBatch& tx);

inline void emit(TxBatch& tx, rte_mbuf* m, uint16_t port) { tx.pkts[port][tx.n[port]++] = m; }

inline void dropPkt(WorkerState& w, rte_mbuf* m, Drop d) {
  w.counters.drop(d);
  rte_pktmbuf_free(m);
}

// emit() for fragments released from hold, which may be more than kBurst per port in one
// burst: they may fill a port's batch up to kTxBatchCap - kBurst (the burst's own packets, at
// most kBurst, always fit); past that the frame is a counted tx_full drop.
inline bool emitBounded(WorkerState& w, TxBatch& tx, rte_mbuf* m, uint16_t port) {
  if (unlikely(tx.n[port] >= kTxBatchCap - kBurst)) {
    dropPkt(w, m, Drop::TxFull);
    return false;
  }
  emit(tx, m, port);
  return true;
}

// Reclaims expired fragment-table entries (bounded per call; held fragments dropped as
// frag_timeout). Returns the number of entries removed.
uint32_t sweepFrags(WorkerState& w, uint32_t now_ms);

// Processes up to kBurst packets received on Snapshot::ports[ingress]. Each packet is either put
// in `tx` or freed with its drop reason counted. `now_ms` is the worker's clock (flow timeouts).
void processBurst(WorkerState& w, const Snapshot& s, rte_mbuf** pkts, uint16_t n, uint16_t ingress,
                  uint32_t now_ms, TxBatch& tx);

// The worker loop's share of the flow-table sweep (see kSweepPassMs); returns the number of
// entries removed (counted as Ctr::FlowExpired and per backend as flows_ended).
uint32_t sweepFlows(WorkerState& w, uint32_t now_ms, const FlowTimeouts& t);
// workerMain's: the same, plus flow sync's re-announce when the worker has a sync_out ring and
// s.sync_announce_ms is set; a pass then takes at most sync_announce_ms (sync_rings.h).
uint32_t sweepFlows(WorkerState& w, uint32_t now_ms, const Snapshot& s);

// One RX queue a worker polls.
struct RxQueue {
  uint16_t port_index;  // Snapshot::ports index
  uint16_t port_id;     // DPDK port id
  uint16_t queue;
};

// Shared between the control thread and the workers.
struct DataplaneShared {
  std::atomic<const Snapshot*> snapshot{nullptr};  // control: rw (publish), workers: ro (acquire)
  rte_rcu_qsbr* qsbr = nullptr;                     // one thread id per worker
  std::atomic<bool> stop{false};
  // Test-only (ControlPlane::testHooksEnabled): worker 0 stops looping while set, as a stuck
  // worker would (the systemd watchdog test); it goes RCU-offline meanwhile so publishing goes on.
  std::atomic<bool> test_stall{false};
  std::vector<uint16_t> port_ids;                   // Snapshot::ports index -> DPDK port id
};

struct WorkerArgs {
  WorkerState* state;
  DataplaneShared* shared;
  std::vector<RxQueue> rx;
  IdleBackoffConfig idle;  // [eal] idle_*: off unless configured
};

// A worker loop's accounting in WorkerLoad (workerMain, and perf/ports_bench.cc's contenders):
// one TSC read per loop, this loop's end being the next one's start.
struct LoopClock {
  uint64_t start = rte_rdtsc();
  // Time spent outside any loop (a stall) is no loop's: the next loop starts now.
  void restart() { start = rte_rdtsc(); }
  // Ends a loop (`busy`: it received packets) and starts the next.
  void endLoop(WorkerLoad& load, bool busy) {
    const uint64_t end = rte_rdtsc();
    const uint64_t cycles = end - start;
    start = end;
    load.loops++;
    load.total_cycles += cycles;
    if (busy) {
      load.busy_loops++;
      load.busy_cycles += cycles;
    }
  }
};

// The lcore entry point (rte_eal_remote_launch): loops until shared->stop.
int workerMain(void* args);

uint32_t nowMs();

}  // namespace l4lb::dataplane
