// A benchmark's worker: flow tables made the production way, the population opened through
// processBurst itself, and the worker's counters as one line (fwd_bench.cc, flood_bench.cc).
#pragma once

#include <cstdint>
#include <string>

#include "dataplane/worker.h"
#include "l4lb/snapshot.h"
#include "traffic.h"

namespace l4lb::perf {

// (Re)creates the worker's IPv4 and IPv6 flow tables with these capacities (exits on failure).
void makeTables(dataplane::WorkerState& w, uint32_t cap4, uint32_t cap6);
// The worker's full-NAT state for the snapshot's source addresses (none without a fullnat VIP),
// fresh: every pair free.
void makeFullNat(dataplane::WorkerState& w, const Snapshot& s);

// The non-zero counters as " name=value ...".
std::string countersLine(const dataplane::WorkerState& w);

// Opens every flow of the population (SYN, then ACK so TCP flows are established; two packets
// so UDP flows are confirmed), untimed, through processBurst itself. Exits unless each one is in
// the table afterwards. `now_ms`: the worker clock every burst sees (0: the real clock, read per
// burst).
void warmFlows(dataplane::WorkerState& w, const Snapshot& s, const TrafficSpec& t, MbufStock& stock,
               const std::string& name, uint32_t now_ms = 0);

}  // namespace l4lb::perf
