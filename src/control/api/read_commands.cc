// The commands that only read: status, vips, backends, list, config, stats (and observe(),
// which /metrics renders). Counters are summed by sumWorkers (control/worker_totals.h).
#include <unistd.h>

#include <algorithm>
#include <map>

#include "control/api/handlers.h"
#include "control/sha256.h"
#include "control/worker_totals.h"
#include "dataplane/worker.h"

namespace l4lb::control::api {

namespace {

using nlohmann::json;

json countersJson(const BackendCounters& c) {
  return {{"packets", c.packets}, {"bytes", c.bytes}, {"flows_new", c.flows_new}, {"active_flows", activeFlows(c)}};
}

json healthJson(const HealthChecker::Status& st) {
  return {{"state", std::string(toString(st.state))}, {"checks", st.checks}, {"last_reason", st.last_reason},
          {"last_latency_ms", st.last_latency_ms}, {"last_change_reason", st.last_change_reason}};
}

}  // namespace

Observation observe(const OperatorView& view) {
  Observation o;
  o.version = L4LB_VERSION;
  const Config& cfg = view.config();
  const Snapshot* s = view.snapshot();
  std::vector<uint32_t> ids;
  for (const VipConfig& v : cfg.vips)
    for (const BackendConfig& b : v.backends) {
      ObservedBackend ob;
      ob.vip = v.name;
      ob.backend = endpoint(b.address, b.port);
      ob.key = backendIdentity(v, b);
      ob.id = view.builder().idOf(ob.key);
      const SnapBackend* sb = s ? s->backend(ob.id) : nullptr;
      ob.state = sb ? std::string(toString(sb->state)) : "unknown";
      ob.weight = sb ? sb->weight : b.weight;
      ids.push_back(ob.id);
      o.backends.push_back(std::move(ob));
    }
  const size_t nports = s ? std::min<size_t>(s->ports.size(), kMaxPorts) : 0;
  const WorkerTotals t = sumWorkers(view.workers(), ids, nports);
  for (ObservedBackend& ob : o.backends) ob.c = t.backend(ob.id);
  const RunFacts f = view.runFacts();
  const auto& ws = view.workers();
  for (size_t i = 0; i < ws.size(); i++) {
    ObservedWorker ow;
    ow.counters = ws[i]->counters;
    ow.load = ws[i]->load;
    ow.busy_ratio = i < f.busy_ratio.size() ? f.busy_ratio[i] : 0;
    // The tables themselves are only read by their worker (explain asks it through a FlowQuery);
    // size() is a relaxed atomic.
    ow.flows4 = ws[i]->flows4 ? ws[i]->flows4->size() : 0;
    ow.flows6 = ws[i]->flows6 ? ws[i]->flows6->size() : 0;
    ow.embryonic = (ws[i]->flows4 ? ws[i]->flows4->embryonic() : 0) + (ws[i]->flows6 ? ws[i]->flows6->embryonic() : 0);
    // Two relaxed reads a burst apart at worst: never let the difference wrap.
    ow.confirmed = ow.flows4 + ow.flows6 >= ow.embryonic ? ow.flows4 + ow.flows6 - ow.embryonic : 0;
    ow.capacity = f.flow_capacity;
    o.workers.push_back(ow);
  }
  for (size_t p = 0; p < nports; p++) o.ports.push_back({s->ports[p].name, t.ports[p]});
  if (s != nullptr)
    for (size_t a = 0; a < s->snat_addrs.size(); a++)
      o.snat.push_back({s->snat_addrs[a].addr.str(), a < t.snat.size() ? t.snat[a] : SnatPortCounts{}});
  o.health_ok = f.health_ok;
  o.health_failed = f.health_failed;
  o.reloads_ok = f.stats.reloads_ok;
  o.reloads_failed = f.stats.reloads_failed;
  o.publishes = f.stats.publishes;
  o.health_transitions = f.stats.health_transitions;
  o.uptime_s = f.uptime_s;
  o.sync = view.syncStatus();
  o.bgp = observeBgp(view);
  return o;
}

json driftJson(const OperatorView& view) {
  json drift = json::array();
  const DynamicState& dyn = view.dynamicState();
  for (const VipConfig& v : view.config().vips)
    for (const BackendConfig& b : v.backends) {
      auto it = dyn.backends.find(backendIdentity(v, b));
      if (it == dyn.backends.end()) continue;
      const BackendRuntime& r = it->second;
      if (r.drained)
        drift.push_back({{"vip", v.name}, {"backend", endpoint(b.address, b.port)}, {"what", "drained"},
                         {"file", "not drained"}, {"running", "drained"}});
      if (r.weight && *r.weight != b.weight)
        drift.push_back({{"vip", v.name}, {"backend", endpoint(b.address, b.port)}, {"what", "weight"},
                         {"file", b.weight}, {"running", *r.weight}});
    }
  return drift;
}

json cmdStatus(OperatorView& view, const Args&) {
  const Config& cfg = view.config();
  const Snapshot* s = view.snapshot();
  const std::vector<PortRuntime>& rt = view.portRuntime();
  json ports = json::array();
  for (size_t i = 0; i < cfg.ports.size(); i++) {
    const PortConfig& p = cfg.ports[i];
    json j{{"name", p.name}, {"device", p.device}, {"mtu", p.mtu}};
    if (i < rt.size()) {
      j["port_id"] = rt[i].port_id;
      j["mac"] = rt[i].mac.str();
    }
    ports.push_back(j);
  }
  const json drift = driftJson(view);
  const RunFacts f = view.runFacts();
  const std::string on_disk = fileSha256Of(view.configPath());
  return {{"version", L4LB_VERSION},
          {"pid", int64_t(getpid())},
          {"uptime_s", f.uptime_s},
          {"started_unix", f.started_unix},
          {"workers", view.workers().size()},
          {"ports", ports},
          {"vips", cfg.vips.size()},
          {"config", {{"path", view.configPath()}, {"sha256", f.config_sha256}, {"on_disk_sha256", on_disk},
                      {"changed_on_disk", on_disk != f.config_sha256}}},
          {"generation", s ? s->generation : 0},
          {"reloads", {{"ok", f.stats.reloads_ok}, {"failed", f.stats.reloads_failed}}},
          {"log_level", cfg.log.level},
          {"metrics", f.metrics_listen},
          {"drift", drift}};
}

json cmdVips(OperatorView& view, const Args&) {
  const Snapshot* s = view.snapshot();
  json out = json::array();
  for (const VipConfig& v : view.config().vips) {
    size_t healthy = 0;
    for (const BackendConfig& b : v.backends)
      if (const SnapBackend* sb = s ? s->backend(view.builder().idOf(backendIdentity(v, b))) : nullptr)
        healthy += sb->state == BackendState::Healthy;
    out.push_back({{"name", v.name},
                   {"address", v.address.str()},
                   {"port", v.port},
                   {"protocol", std::string(toString(v.protocol))},
                   {"scheduler", std::string(toString(v.scheduler))},
                   {"forwarding", std::string(toString(v.forwarding))},
                   {"maglev_table_size", v.maglev_table_size},
                   {"backends", v.backends.size()},
                   {"healthy", healthy}});
  }
  return {{"vips", out}};
}

json cmdBackends(OperatorView& view, const Args& args) {
  const Snapshot* s = view.snapshot();
  const DynamicState& dyn = view.dynamicState();
  std::vector<std::pair<const VipConfig*, const BackendConfig*>> picked;
  bool found = args.empty();
  for (const VipConfig& v : view.config().vips) {
    if (!args.empty() && args[0] != v.name && args[0] != endpoint(v.address, v.port) && args[0] != v.address.str())
      continue;
    found = true;
    for (const BackendConfig& b : v.backends) picked.emplace_back(&v, &b);
  }
  if (!found) throw ApiError{"no VIP named '" + args[0] + "' (see l4lbctl vips)"};
  std::vector<uint32_t> ids;
  for (const auto& [v, b] : picked) ids.push_back(view.builder().idOf(backendIdentity(*v, *b)));
  const WorkerTotals t = sumWorkers(view.workers(), ids);
  json out = json::array();
  for (size_t i = 0; i < picked.size(); i++) {
    const VipConfig& v = *picked[i].first;
    const BackendConfig& b = *picked[i].second;
    const std::string key = backendIdentity(v, b);
    const uint32_t id = ids[i];
    const SnapBackend* sb = s ? s->backend(id) : nullptr;
    auto dit = dyn.backends.find(key);
    const BackendRuntime* r = dit == dyn.backends.end() ? nullptr : &dit->second;
    json j{{"vip", v.name},
           {"backend", endpoint(b.address, b.port)},
           {"address", b.address.str()},
           {"port", b.port},
           {"id", id},
           {"state", sb ? std::string(toString(sb->state)) : "unknown"},
           {"weight", sb ? sb->weight : b.weight},
           {"file_weight", b.weight},
           {"drained_by_command", r && r->drained},
           {"health_down", r && r->down}};
    j.update(countersJson(t.backend(id)));
    if (const HealthChecker::Status* st = view.healthStatus(key)) j["health"] = healthJson(*st);
    else j["health"] = {{"state", "not checked"}};
    if (const Transition* tr = view.lastTransition(key))
      j["last_transition"] = {{"unix_time", tr->unix_time}, {"from", tr->from}, {"to", tr->to}, {"why", tr->why}};
    else
      j["last_transition"] = nullptr;
    out.push_back(j);
  }
  return {{"backends", out}};
}

// ipvsadm -L's nested view: each VIP, then its backends with the control tick's rates.
json cmdList(OperatorView& view, const Args& args) {
  const Snapshot* s = view.snapshot();
  const RunFacts f = view.runFacts();
  json vips = json::array();
  bool found = args.empty();
  for (const VipConfig& v : view.config().vips) {
    if (!args.empty() && args[0] != v.name && args[0] != endpoint(v.address, v.port) && args[0] != v.address.str())
      continue;
    found = true;
    std::vector<uint32_t> ids;
    for (const BackendConfig& b : v.backends) ids.push_back(view.builder().idOf(backendIdentity(v, b)));
    const WorkerTotals t = sumWorkers(view.workers(), ids);
    json backends = json::array();
    double pps = 0, nfs = 0;
    uint64_t active = 0;
    for (size_t i = 0; i < v.backends.size(); i++) {
      const BackendConfig& b = v.backends[i];
      const SnapBackend* sb = s ? s->backend(ids[i]) : nullptr;
      auto rit = f.backend_rates.find(ids[i]);
      const RunFacts::Rate rate = rit == f.backend_rates.end() ? RunFacts::Rate{} : rit->second;
      const uint64_t flows = activeFlows(t.backend(ids[i]));
      pps += rate.packets_per_s;
      nfs += rate.new_flows_per_s;
      active += flows;
      backends.push_back({{"backend", endpoint(b.address, b.port)},
                          {"weight", sb ? sb->weight : b.weight},
                          {"state", sb ? std::string(toString(sb->state)) : "unknown"},
                          {"active_flows", flows},
                          {"packets_per_s", rate.packets_per_s},
                          {"new_flows_per_s", rate.new_flows_per_s}});
    }
    vips.push_back({{"name", v.name},
                    {"address", endpoint(v.address, v.port)},
                    {"protocol", std::string(toString(v.protocol))},
                    {"scheduler", std::string(toString(v.scheduler))},
                    {"forwarding", std::string(toString(v.forwarding))},
                    {"active_flows", active},
                    {"packets_per_s", pps},
                    {"new_flows_per_s", nfs},
                    {"backends", backends}});
  }
  if (!found) throw ApiError{"no VIP named '" + args[0] + "' (see l4lbctl vips)"};
  return {{"vips", vips}};
}

// The text the running configuration was loaded from, byte for byte: --check-config accepts it
// and a reload of it changes nothing. What l4lbctl changed since (drains, weights) is the
// drift, which the file does not say.
json cmdConfig(OperatorView& view, const Args&) {
  const Config& cfg = view.config();
  return {{"path", view.configPath()}, {"sha256", sha256Hex(cfg.text)}, {"text", cfg.text}, {"drift", driftJson(view)}};
}

json cmdStats(OperatorView& view, const Args&) {
  const Observation o = observe(view);
  json vips = json::array(), backends = json::array(), workers = json::array(), ports = json::array();
  std::map<std::string, BackendCounters> per_vip;
  for (const VipConfig& v : view.config().vips) per_vip[v.name];
  for (const ObservedBackend& b : o.backends) {
    json j{{"vip", b.vip}, {"backend", b.backend}, {"state", b.state}};
    j.update(countersJson(b.c));
    backends.push_back(j);
    accumulate(per_vip[b.vip], b.c);
  }
  for (const VipConfig& v : view.config().vips) {
    json j{{"vip", v.name}};
    j.update(countersJson(per_vip[v.name]));
    vips.push_back(j);
  }
  WorkerCounters total;
  for (const ObservedWorker& w : o.workers) accumulate(total, w.counters);
  json drops_total = json::object();
  for (size_t r = 1; r < size_t(Drop::Count); r++) drops_total[std::string(kDropNames[r])] = total.drops[r];
  for (size_t i = 0; i < o.workers.size(); i++) {
    const ObservedWorker& w = o.workers[i];
    json drops = json::object(), ctrs = json::object();
    for (size_t r = 1; r < size_t(Drop::Count); r++) drops[std::string(kDropNames[r])] = w.counters.drops[r];
    for (size_t c = 0; c < size_t(Ctr::Count); c++) ctrs[std::string(kCtrNames[c])] = w.counters.ctrs[c];
    workers.push_back({{"worker", i},
                       {"counters", ctrs},
                       {"drops", drops},
                       {"flows4", w.flows4},
                       {"flows6", w.flows6},
                       {"embryonic", w.embryonic},
                       {"confirmed", w.confirmed},
                       {"capacity", w.capacity},
                       {"occupancy", w.capacity ? double(w.flows4 + w.flows6) / double(2 * w.capacity) : 0.0},
                       {"busy_ratio", w.busy_ratio},
                       {"loops", w.load.loops}});
  }
  for (const ObservedPort& p : o.ports)
    ports.push_back({{"port", p.name}, {"rx_packets", p.c.rx_packets}, {"rx_bytes", p.c.rx_bytes},
                     {"tx_packets", p.c.tx_packets}, {"tx_bytes", p.c.tx_bytes}});
  json snat = json::array();
  for (const ObservedSnat& a : o.snat)
    snat.push_back({{"address", a.address}, {"in_use", a.c.in_use}, {"free", a.c.free}, {"quiet", a.c.quiet}});
  return {{"vips", vips},   {"backends", backends}, {"workers", workers},
          {"ports", ports}, {"drops", drops_total}, {"new_flows_per_s", view.runFacts().new_flows_per_s},
          {"snat", snat}};
}

}  // namespace l4lb::control::api
