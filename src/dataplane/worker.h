// A worker: one per configured core, pinned, polling its RX queues in bursts, choosing a backend
// per flow and rewriting packets toward it (l3fwd-style loop; grout-style named drop verdicts).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include <rte_mbuf.h>
#include <rte_rcu_qsbr.h>

#include "dataplane/flow_table.h"
#include "dataplane/forward.h"
#include "l4lb/counters.h"
#include "l4lb/snapshot.h"

namespace l4lb::dataplane {

inline constexpr uint16_t kBurst = 32;
inline constexpr uint32_t kMaxVips = 4096;
// Table positions the sweeper visits per loop and table (two hash lookups per occupied one):
// a full pass over 1M positions takes 64k loops, a fraction of a second busy or idle, far
// below the shortest flow timeout, for well under one position per packet at full bursts.
inline constexpr uint32_t kSweepBudget = 16;

// Packets ready to send, grouped by egress port (Snapshot::ports index).
struct TxBatch {
  std::array<std::array<rte_mbuf*, kBurst>, kMaxPorts> pkts;
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
  uint16_t ip_id = 0;  // next outer IPv4 ID for tunnelled packets (RFC 6864: unique when DF is clear)
};

inline void emit(TxBatch& tx, rte_mbuf* m, uint16_t port) { tx.pkts[port][tx.n[port]++] = m; }

inline void dropPkt(WorkerState& w, rte_mbuf* m, Drop d) {
  w.counters.drop(d);
  rte_pktmbuf_free(m);
}

// Processes up to kBurst packets received on Snapshot::ports[ingress]. Each packet is either put
// in `tx` or freed with its drop reason counted. `now_ms` is the worker's clock (flow timeouts).
void processBurst(WorkerState& w, const Snapshot& s, rte_mbuf** pkts, uint16_t n, uint16_t ingress,
                  uint32_t now_ms, TxBatch& tx);

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
  std::vector<uint16_t> port_ids;                   // Snapshot::ports index -> DPDK port id
};

struct WorkerArgs {
  WorkerState* state;
  DataplaneShared* shared;
  std::vector<RxQueue> rx;
};

// The lcore entry point (rte_eal_remote_launch): loops until shared->stop.
int workerMain(void* args);

uint32_t nowMs();

}  // namespace l4lb::dataplane
