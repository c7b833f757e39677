// sumWorkers: the one sum of the workers' counters (drops, events, the asked backends, ports,
// flow-table sizes).
#include "control/worker_totals.h"

#include <gtest/gtest.h>

#include "dataplane/worker.h"

namespace l4lb::control {
namespace {

TEST(WorkerTotals, SumsEveryKindOfCounter) {
  dataplane::WorkerState a, b;
  a.counters.drop(Drop::NoVip);
  b.counters.drop(Drop::NoVip);
  b.counters.drop(Drop::TxFull);
  a.counters.add(Ctr::FlowNew, 4);
  b.counters.add(Ctr::FlowNew, 5);
  a.backend_ctrs[3] = {1, 100, 1, 0};
  b.backend_ctrs[3] = {2, 200, 1, 1};
  b.backend_ctrs[9] = {7, 700, 0, 0};
  a.port_ctrs[0] = {1, 10, 2, 20};
  b.port_ctrs[0] = {3, 30, 4, 40};
  b.port_ctrs[1] = {5, 50, 6, 60};
  const WorkerTotals t = sumWorkers({&a, &b}, {3, kNoBackend, kMaxCountedBackends + 1}, 2);
  EXPECT_EQ(t.counters.get(Drop::NoVip), 2u);
  EXPECT_EQ(t.counters.get(Drop::TxFull), 1u);
  EXPECT_EQ(t.counters.totalDrops(), 3u);
  EXPECT_EQ(t.counters.get(Ctr::FlowNew), 9u);
  const BackendCounters c = t.backend(3);
  EXPECT_EQ(c.packets, 3u);
  EXPECT_EQ(c.bytes, 300u);
  EXPECT_EQ(c.flows_new, 2u);
  EXPECT_EQ(c.flows_ended, 1u);
  EXPECT_EQ(activeFlows(c), 1u);
  // Not asked for, "none", and beyond the counted range: zeros.
  EXPECT_EQ(t.backend(9).packets, 0u);
  EXPECT_EQ(t.backend(kNoBackend).packets, 0u);
  EXPECT_EQ(t.backend(kMaxCountedBackends + 1).packets, 0u);
  ASSERT_EQ(t.ports.size(), 2u);
  EXPECT_EQ(t.ports[0].rx_packets, 4u);
  EXPECT_EQ(t.ports[0].tx_bytes, 60u);
  EXPECT_EQ(t.ports[1].tx_packets, 6u);
  EXPECT_EQ(t.flows4, 0u);  // no tables
}

TEST(WorkerTotals, SumsTheFullNatPoolsPerAddress) {
  dataplane::WorkerState a, b, none;
  a.snat_ports = {{3, 10, 1}, {0, 20, 0}};
  b.snat_ports = {{4, 9, 2}, {1, 19, 5}};
  const WorkerTotals t = sumWorkers({&a, &none, &b});
  ASSERT_EQ(t.snat.size(), 2u);
  EXPECT_EQ(t.snat[0].in_use, 7u);
  EXPECT_EQ(t.snat[0].free, 19u);
  EXPECT_EQ(t.snat[0].quiet, 3u);
  EXPECT_EQ(t.snat[1].in_use, 1u);
  EXPECT_EQ(t.snat[1].free, 39u);
  EXPECT_EQ(t.snat[1].quiet, 5u);
  EXPECT_TRUE(sumWorkers({&none}).snat.empty());  // no fullnat VIPs
}

TEST(WorkerTotals, NoWorkersAndPortCap) {
  const WorkerTotals t = sumWorkers({}, {1}, kMaxPorts + 5);
  EXPECT_EQ(t.counters.totalDrops(), 0u);
  EXPECT_EQ(t.ports.size(), size_t(kMaxPorts));
  EXPECT_EQ(t.backend(1).packets, 0u);
}

TEST(WorkerTotals, ActiveFlowsNeverNegative) {
  EXPECT_EQ(activeFlows({0, 0, 2, 3}), 0u);
  EXPECT_EQ(activeFlows({0, 0, 5, 3}), 2u);
}

}  // namespace
}  // namespace l4lb::control
