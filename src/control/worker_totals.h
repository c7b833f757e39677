// The one place that sums the workers' counters. Each worker writes its own arrays
// (WorkerState, src/dataplane/worker.h); the control thread reads them with plain 64-bit loads
// (word-atomic on x86-64: a value may be one burst old, never torn) and adds them up here, for
// l4lbctl stats/backends, /metrics, the control tick and the daemon's stats file alike.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <vector>

#include "l4lb/counters.h"

namespace l4lb::dataplane {
struct WorkerState;
}

namespace l4lb::control {

// Field-by-field sums: the only code that knows which fields each counter struct has.
void accumulate(WorkerCounters& into, const WorkerCounters& c);
void accumulate(BackendCounters& into, const BackendCounters& c);
void accumulate(PortCounters& into, const PortCounters& c);
void accumulate(SnatPortCounts& into, const SnatPortCounts& c);

struct WorkerTotals {
  WorkerCounters counters;                       // drops and events over all workers
  std::map<uint32_t, BackendCounters> backends;  // the ids asked for (ids not counted: zeros)
  std::vector<PortCounters> ports;               // Snapshot::ports index (the first `nports`)
  uint64_t flows4 = 0, flows6 = 0;               // flow-table entries over all workers
  uint64_t embryonic = 0;                         // ... of them embryonic (both families)
  // Full NAT's pools per source address (Snapshot::snat_addrs index): each worker's share as it
  // last published it (at most a second old); empty without fullnat VIPs.
  std::vector<SnatPortCounts> snat;

  BackendCounters backend(uint32_t id) const {
    auto it = backends.find(id);
    return it == backends.end() ? BackendCounters{} : it->second;
  }
};

// Sums `workers`: every WorkerCounters, the BackendCounters of `backend_ids` (only those: the
// arrays hold kMaxCountedBackends entries each), the PortCounters of the first `nports` ports
// the flow-table sizes and the full-NAT pools' usage.
WorkerTotals sumWorkers(const std::vector<const dataplane::WorkerState*>& workers,
                        const std::vector<uint32_t>& backend_ids = {}, size_t nports = 0);

// Active flows of a backend: entries created minus entries ended (never negative: the two
// counters are read at slightly different times).
inline uint64_t activeFlows(const BackendCounters& c) {
  return c.flows_new >= c.flows_ended ? c.flows_new - c.flows_ended : 0;
}

}  // namespace l4lb::control
