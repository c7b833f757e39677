#include "bench_worker.h"

#include <algorithm>
#include <sstream>

#include <rte_lcore.h>

#include "bench_common.h"

namespace l4lb::perf {

using dataplane::FlowKey4;
using dataplane::FlowKey6;
using dataplane::FlowTable;
using dataplane::kBurst;

namespace {
int g_table_seq = 0;
}

void makeTables(dataplane::WorkerState& w, uint32_t cap4, uint32_t cap6) {
  w.flows4.reset();
  w.flows6.reset();
  std::string err;
  const std::string id = std::to_string(g_table_seq++);
  w.flows4 = FlowTable::create("pf4_" + id, cap4, sizeof(FlowKey4), int(rte_socket_id()), err);
  if (!w.flows4) die(err);
  w.flows6 = FlowTable::create("pf6_" + id, cap6, sizeof(FlowKey6), int(rte_socket_id()), err);
  if (!w.flows6) die(err);
}

void makeFullNat(dataplane::WorkerState& w, const Snapshot& s) {
  w.fullnat.reset();
  if (s.snat_addrs.empty()) return;
  std::string err;
  w.fullnat = dataplane::FullNatState::create(s.snat_addrs, 0, 1, int(rte_socket_id()), err);
  if (!w.fullnat) die(err);
}

std::string countersLine(const dataplane::WorkerState& w) {
  std::ostringstream s;  // (not string operator+: GCC 12 -O3 raises a false -Wrestrict on it)
  for (size_t i = 1; i < size_t(Drop::Count); i++)
    if (w.counters.drops[i]) s << ' ' << toString(Drop(i)) << '=' << w.counters.drops[i];
  for (size_t i = 0; i < size_t(Ctr::Count); i++)
    if (w.counters.ctrs[i]) s << ' ' << kCtrNames[i] << '=' << w.counters.ctrs[i];
  return s.str();
}

void warmFlows(dataplane::WorkerState& w, const Snapshot& s, const TrafficSpec& t, MbufStock& stock,
               const std::string& name, uint32_t now_ms) {
  FrameWriter fw(t);
  rte_mbuf* pkts[kBurst];
  dataplane::TxBatch tx;
  // Two packets per flow for UDP too: a UDP entry is embryonic (UdpNew) until its second
  // packet (flow.h), and a population warmed with one would rewrite every entry on its first
  // timed packet (+23 Ir/pkt in a 64k-packet callgrind run;
  // perf/RESULTS.md, "What changed since 517c89f").
  const int passes = 2;
  for (int pass = 0; pass < passes; pass++) {
    for (uint32_t f = 0; f < t.flows; f += kBurst) {
      const uint16_t n = uint16_t(std::min<uint32_t>(kBurst, t.flows - f));
      stock.take(pkts, n);
      for (uint16_t i = 0; i < n; i++) fw.write(pkts[i], f + i, pass == 0 ? 0x02 : 0x10);
      tx.clear();
      dataplane::processBurst(w, s, pkts, n, 0, now_ms ? now_ms : dataplane::nowMs(), tx);
      for (uint16_t p = 0; p < kMaxPorts; p++) stock.give(tx.pkts[p].data(), tx.n[p]);
    }
  }
  // Full NAT keeps its flows in its own index (fullnat_state.h).
  const FlowTable& ft = w.fullnat ? w.fullnat->index(t.ipv6) : t.ipv6 ? *w.flows6 : *w.flows4;
  if (w.counters.totalDrops() != 0 || ft.size() != t.flows)
    die(name + ": warm-up left " + std::to_string(ft.size()) + " flows of " + std::to_string(t.flows) + ":" +
        countersLine(w));
}

}  // namespace l4lb::perf
