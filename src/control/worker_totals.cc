#include "control/worker_totals.h"

#include "dataplane/worker.h"

namespace l4lb::control {

void accumulate(WorkerCounters& into, const WorkerCounters& c) {
  for (size_t i = 0; i < size_t(Drop::Count); i++) into.drops[i] += c.drops[i];
  for (size_t i = 0; i < size_t(Ctr::Count); i++) into.ctrs[i] += c.ctrs[i];
}

void accumulate(BackendCounters& into, const BackendCounters& c) {
  into.packets += c.packets;
  into.bytes += c.bytes;
  into.flows_new += c.flows_new;
  into.flows_ended += c.flows_ended;
}

void accumulate(PortCounters& into, const PortCounters& c) {
  into.rx_packets += c.rx_packets;
  into.rx_bytes += c.rx_bytes;
  into.tx_packets += c.tx_packets;
  into.tx_bytes += c.tx_bytes;
}

void accumulate(SnatPortCounts& into, const SnatPortCounts& c) {
  into.in_use += c.in_use;
  into.free += c.free;
  into.quiet += c.quiet;
}

WorkerTotals sumWorkers(const std::vector<const dataplane::WorkerState*>& workers,
                        const std::vector<uint32_t>& backend_ids, size_t nports) {
  WorkerTotals t;
  if (nports > kMaxPorts) nports = kMaxPorts;
  t.ports.resize(nports);
  for (uint32_t id : backend_ids) t.backends[id];
  for (const dataplane::WorkerState* w : workers) {
    accumulate(t.counters, w->counters);
    for (auto& [id, c] : t.backends)
      if (id != kNoBackend && id < kMaxCountedBackends) accumulate(c, w->backend_ctrs[id]);
    for (size_t p = 0; p < nports; p++) accumulate(t.ports[p], w->port_ctrs[p]);
    // FlowTable::size() is a relaxed atomic the worker updates: off by a burst at worst.
    t.flows4 += w->flows4 ? w->flows4->size() : 0;
    t.flows6 += w->flows6 ? w->flows6->size() : 0;
    // Sized before the workers start and never resized: only the counts change under us.
    if (t.snat.size() < w->snat_ports.size()) t.snat.resize(w->snat_ports.size());
    for (size_t a = 0; a < w->snat_ports.size(); a++) accumulate(t.snat[a], w->snat_ports[a]);
    t.embryonic += (w->flows4 ? w->flows4->embryonic() : 0) + (w->flows6 ? w->flows6->embryonic() : 0);
  }
  return t;
}

}  // namespace l4lb::control
