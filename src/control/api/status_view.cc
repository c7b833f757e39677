// The status page's content from the operator view: the same observation /metrics renders, the
// health checker's reasons, the rates of the last control tick, the config hash and the drift,
// and from the control plane's StatusHistory the sparklines' samples and the state changes.
#include <algorithm>
#include <ctime>
#include <set>

#include "control/api/handlers.h"
#include "control/worker_totals.h"

namespace l4lb::control::api {

StatusPage statusPage(const OperatorView& view) {
  const Observation o = observe(view);
  const RunFacts f = view.runFacts();
  StatusPage p;
  p.version = o.version;
  p.uptime_s = f.uptime_s;
  p.config_path = view.configPath();
  p.config_sha256 = f.config_sha256;
  for (const auto& d : driftJson(view))
    p.drift.push_back(d["vip"].get<std::string>() + " " + d["backend"].get<std::string>() + ": " +
                      d["what"].get<std::string>() + " (file: " + d["file"].dump() + ", running: " + d["running"].dump() +
                      ")");
  const StatusHistory* hist = view.history();
  // The busiest backends over the window get a sparkline (kMaxSparkBackends: the page's size).
  std::set<uint32_t> drawn;
  if (hist != nullptr) {
    std::vector<std::pair<float, uint32_t>> peak;
    for (const ObservedBackend& ob : o.backends)
      if (const StatusHistory::Pair* s = hist->backend(ob.id)) {
        const std::vector<float> v = s->packets_per_s.values();
        peak.emplace_back(v.empty() ? 0.f : *std::max_element(v.begin(), v.end()), ob.id);
      }
    std::stable_sort(peak.begin(), peak.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
    for (size_t i = 0; i < peak.size() && drawn.size() < kMaxSparkBackends; i++) drawn.insert(peak[i].second);
  }
  size_t next = 0;  // observe() lists backends in config order, VIP by VIP
  for (const VipConfig& v : view.config().vips) {
    StatusVip sv{v.name, endpoint(v.address, v.port), std::string(toString(v.protocol)),
                 std::string(toString(v.forwarding)), std::string(toString(v.scheduler)), {}};
    for (size_t i = 0; i < v.backends.size() && next < o.backends.size(); i++, next++) {
      const ObservedBackend& ob = o.backends[next];
      StatusBackend b;
      b.backend = ob.backend;
      b.state = ob.state;
      const HealthChecker::Status* st = view.healthStatus(ob.key);
      b.health = st ? std::string(toString(st->state)) + (st->last_reason.empty() ? "" : ": " + st->last_reason)
                    : "not checked";
      b.weight = ob.weight;
      if (auto r = f.backend_rates.find(ob.id); r != f.backend_rates.end()) {
        b.packets_per_s = r->second.packets_per_s;
        b.bytes_per_s = r->second.bytes_per_s;
        b.new_flows_per_s = r->second.new_flows_per_s;
      }
      b.packets = ob.c.packets;
      b.active_flows = activeFlows(ob.c);
      if (const StatusHistory::Pair* s = hist && drawn.count(ob.id) ? hist->backend(ob.id) : nullptr) {
        b.packets_hist = s->packets_per_s.values();
        b.new_flows_hist = s->new_flows_per_s.values();
      }
      sv.backends.push_back(std::move(b));
    }
    if (const StatusHistory::Pair* s = hist ? hist->vip(v.name) : nullptr) {
      sv.packets_hist = s->packets_per_s.values();
      sv.new_flows_hist = s->new_flows_per_s.values();
    }
    p.vips.push_back(std::move(sv));
  }
  p.now_unix = int64_t(time(nullptr));
  if (hist != nullptr) {
    p.drops_hist = hist->drops().values();
    for (const StatusHistory::Ring& w : hist->workers()) p.worker_hist.push_back(w.values());
    const std::vector<StatusHistory::Transition> ts = hist->transitionsSince(p.now_unix);
    p.transitions_total = ts.size();
    for (size_t i = 0; i < ts.size() && i < kMaxShownTransitions; i++)
      p.transitions.push_back({ts[i].change.unix_time, ts[i].vip, ts[i].backend, ts[i].change.from, ts[i].change.to,
                               ts[i].change.why});
  }
  const WorkerCounters total = sumWorkers(view.workers()).counters;
  for (size_t r = 1; r < size_t(Drop::Count); r++) p.drops.emplace_back(std::string(kDropNames[r]), total.drops[r]);
  for (const ObservedWorker& w : o.workers) p.worker_busy.push_back(w.busy_ratio);
  for (const ObservedSnat& a : o.snat) p.snat.push_back({a.address, a.c.in_use, a.c.free, a.c.quiet});
  return p;
}

}  // namespace l4lb::control::api
