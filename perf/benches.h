// Entry points of l4lb-bench's commands (perf/main.cc dispatches on the first argument).
#pragma once

#include "bench_common.h"

namespace l4lb::perf {

int fwdMain(const Options& o);       // forwarding: processBurst vs the 5tswap baseline
int pcapMain(const Options& o);      // the fwd input as a pcap file (dpdk-testpmd cross-check)
int maglevMain(const Options& o);    // buildMaglevTable time
int publishMain(const Options& o);   // SnapshotPublisher::publish latency with a busy worker
int flowMemMain(const Options& o);   // FlowTable heap usage
int floodMain(const Options& o);     // SYN flood: established hit rate, new flows tracked, embryonic entries
int idleMain(const Options& o);      // idle back-off: first-packet latency, Mpps and idle CPU, off vs on
int portsMain(const Options& o);     // workerMain on net_ring ports vs a testpmd 5tswap loop, cold packets

}  // namespace l4lb::perf
