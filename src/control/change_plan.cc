#include "control/change_plan.h"

#include <algorithm>
#include <map>
#include <set>
#include <sstream>

#include "control/health/health_target.h"
#include "control/reload.h"

namespace l4lb::control {

namespace {

std::string endpoint(const IpAddr& a, uint16_t port) {
  return (a.isV4() ? a.str() : "[" + a.str() + "]") + ":" + std::to_string(port);
}

std::string show(const std::string& v) { return "\"" + v + "\""; }
std::string show(uint32_t v) { return std::to_string(v); }
std::string show(uint16_t v) { return std::to_string(v); }
std::string show(Scheduler v) { return std::string(toString(v)); }
std::string show(FwdMode v) { return std::string(toString(v)); }
std::string show(HealthType v) { return std::string(toString(v)); }
std::string show(AllDownPolicy v) { return v == AllDownPolicy::Drop ? "drop" : "keep"; }
template <typename T>
std::string show(const std::optional<T>& v) {
  if (!v) return "unset";
  if constexpr (std::is_same_v<T, std::string>) return show(*v);
  else return v->str();
}
std::string show(const std::vector<std::pair<uint16_t, uint16_t>>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); i++) s += (i ? "," : "") + std::to_string(v[i].first) + "-" + std::to_string(v[i].second);
  return s + "]";
}

// Appends "key (old -> new)" for each setting that differs.
struct FieldDiffer {
  std::vector<std::string>& out;
  template <typename T>
  void operator()(const std::string& key, const T& a, const T& b) {
    if (!(a == b)) out.push_back(key + " (" + show(a) + " -> " + show(b) + ")");
  }
};

void diffHealth(FieldDiffer& d, const HealthCheckConfig& a, const HealthCheckConfig& b) {
  d("health_check.type", a.type, b.type);
  d("health_check.interval_ms", a.interval_ms, b.interval_ms);
  d("health_check.timeout_ms", a.timeout_ms, b.timeout_ms);
  d("health_check.rise", a.rise, b.rise);
  d("health_check.fall", a.fall, b.fall);
  d("health_check.max_latency_ms", a.max_latency_ms, b.max_latency_ms);
  d("health_check.jitter_pct", a.jitter_pct, b.jitter_pct);
  d("health_check.port", a.port, b.port);
  d("health_check.http_path", a.http_path, b.http_path);
  d("health_check.http_host", a.http_host, b.http_host);
  d("health_check.http_expect", a.http_expect, b.http_expect);
  d("health_check.udp_payload", a.udp_payload, b.udp_payload);
  d("health_check.udp_expect", a.udp_expect, b.udp_expect);
}

std::vector<std::string> vipFields(const VipConfig& a, const VipConfig& b) {
  std::vector<std::string> out;
  FieldDiffer d{out};
  d("name", a.name, b.name);
  d("scheduler", a.scheduler, b.scheduler);
  d("forwarding", a.forwarding, b.forwarding);
  d("maglev_table_size", a.maglev_table_size, b.maglev_table_size);
  d("tunnel_source4", a.tunnel_source4, b.tunnel_source4);
  d("tunnel_source6", a.tunnel_source6, b.tunnel_source6);
  d("gue_port", a.gue_port, b.gue_port);
  d("on_all_down", a.on_all_down, b.on_all_down);
  d("new_flow_rate", a.new_flow_rate, b.new_flow_rate);
  d("new_flow_burst", a.new_flow_burst, b.new_flow_burst);
  d("over_rate", std::string(a.over_rate_drop ? "drop" : "stateless"), std::string(b.over_rate_drop ? "drop" : "stateless"));
  // Also what the backends' health checks send first (HealthCheckConfig::proxy_v2_local).
  d("proxy_protocol", std::string(a.proxy_v2 ? "v2" : "none"), std::string(b.proxy_v2 ? "v2" : "none"));
  diffHealth(d, a.health, b.health);
  return out;
}

// Backend settings other than the weight (reported on its own).
std::vector<std::string> backendFields(const BackendConfig& a, const BackendConfig& b) {
  std::vector<std::string> out;
  FieldDiffer d{out};
  d("mac", a.mac, b.mac);
  d("via", a.via, b.via);
  diffHealth(d, a.health, b.health);
  return out;
}

VipDiff diffVip(const VipConfig& ov, const VipConfig& nv) {
  VipDiff j;
  j.name = nv.name;
  j.fields = vipFields(ov, nv);
  std::map<std::string, const BackendConfig*> ob, nb;
  for (const auto& b : ov.backends) ob[endpoint(b.address, b.port)] = &b;
  for (const auto& b : nv.backends) nb[endpoint(b.address, b.port)] = &b;
  for (const auto& [e, b] : nb) {
    auto o = ob.find(e);
    if (o == ob.end()) {
      j.backends_added.push_back(e);
      continue;
    }
    if (o->second->weight != b->weight) j.weights.push_back({e, o->second->weight, b->weight});
    if (auto f = backendFields(*o->second, *b); !f.empty()) j.backends_changed.push_back({e, std::move(f)});
  }
  for (const auto& [e, b] : ob)
    if (!nb.count(e)) j.backends_removed.push_back(e);
  return j;
}

}  // namespace

std::string_view toString(VipChange c) {
  switch (c) {
    case VipChange::Unchanged: return "unchanged";
    case VipChange::Changed: return "changed";
    case VipChange::Added: return "added";
    case VipChange::Removed: return "removed";
  }
  return "?";
}

ConfigDiff diffConfigs(const Config& running, const Config& next, const Snapshot* running_snap, const Snapshot* next_snap) {
  ConfigDiff out;
  std::map<std::string, size_t> old_by_id, new_by_id;
  for (size_t i = 0; i < running.vips.size(); i++) old_by_id[vipIdentity(running.vips[i])] = i;
  for (size_t i = 0; i < next.vips.size(); i++) new_by_id[vipIdentity(next.vips[i])] = i;
  std::set<std::string> all;
  for (const auto& [k, i] : old_by_id) all.insert(k);
  for (const auto& [k, i] : new_by_id) all.insert(k);
  for (const std::string& k : all) {
    auto o = old_by_id.find(k), n = new_by_id.find(k);
    VipDiff d;
    if (o == old_by_id.end()) {
      const VipConfig& v = next.vips[n->second];
      d.name = v.name;
      d.change = VipChange::Added;
      for (const auto& b : v.backends) d.backends_added.push_back(endpoint(b.address, b.port));
    } else if (n == new_by_id.end()) {
      const VipConfig& v = running.vips[o->second];
      d.name = v.name;
      d.change = VipChange::Removed;
      for (const auto& b : v.backends) d.backends_removed.push_back(endpoint(b.address, b.port));
    } else {
      d = diffVip(running.vips[o->second], next.vips[n->second]);
      if (running_snap && next_snap && o->second < running_snap->vips.size() && n->second < next_snap->vips.size()) {
        const std::vector<uint32_t>& om = running_snap->vips[o->second].maglev;
        const std::vector<uint32_t>& nm = next_snap->vips[n->second].maglev;
        if (om.size() == nm.size()) {
          for (size_t i = 0; i < om.size(); i++) d.slots_moved += om[i] != nm[i];
        } else {
          d.slots_moved = std::max(om.size(), nm.size());  // a new table size reshuffles every slot
        }
        d.slots_total = nm.size();
      }
      const bool same = d.fields.empty() && d.backends_added.empty() && d.backends_removed.empty() &&
                        d.weights.empty() && d.backends_changed.empty() && d.slots_moved == 0;
      d.change = same ? VipChange::Unchanged : VipChange::Changed;
    }
    out.vips.push_back(std::move(d));
  }
  return out;
}

std::string ConfigDiff::summary() const {
  size_t vadd = 0, vdel = 0, vchg = 0, badd = 0, bdel = 0, bchg = 0;
  for (const VipDiff& v : vips) {
    vadd += v.change == VipChange::Added;
    vdel += v.change == VipChange::Removed;
    vchg += !v.fields.empty();
    badd += v.backends_added.size();
    bdel += v.backends_removed.size();
    std::set<std::string> changed;
    for (const WeightChange& w : v.weights) changed.insert(w.backend);
    for (const BackendChange& b : v.backends_changed) changed.insert(b.backend);
    bchg += changed.size();
  }
  std::ostringstream s;
  s << "vips +" << vadd << " -" << vdel << " ~" << vchg << ", backends +" << badd << " -" << bdel << " ~" << bchg;
  return s.str();
}

ChangePlan planChange(const Config& running, const Config& next, const SnapshotBuilder& builder,
                      const std::vector<PortRuntime>& ports, const DynamicState& dyn, const Snapshot* running_snap) {
  ChangePlan p;
  p.restart = restartRequired(running, next);
  // The listeners are opened once, as root, before anything else runs.
  if (next.control.socket != running.control.socket) p.restart.push_back("control.socket: needs a restart");
  if (next.control.mode != running.control.mode) p.restart.push_back("control.mode: needs a restart");
  if (next.metrics.listen != running.metrics.listen) p.restart.push_back("metrics.listen: needs a restart");
  // Build on a copy of the builder: a failed build leaves ids and history untouched.
  p.builder = builder;
  BuildResult built = p.builder.build(next, ports, &dyn);
  p.snapshot = std::move(built.snapshot);
  p.build_errors = std::move(built.errors);
  p.diff = diffConfigs(running, next, running_snap, p.snapshot.get());
  return p;
}

}  // namespace l4lb::control
