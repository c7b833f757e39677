// diff FILE: what reloading FILE would change.
#include <algorithm>
#include <map>
#include <set>

#include "control/api/handlers.h"
#include "control/reload.h"

namespace l4lb::control::api {

using nlohmann::json;

json cmdDiff(OperatorView& view, const Args& args) {
  const Config& cfg = view.config();
  ConfigResult r = loadConfigFile(args[0]);
  if (!r.ok()) return {{"ok", false}, {"error", args[0] + " is not a valid configuration"}, {"messages", r.error.messages}};
  const Config& next = *r.config;
  std::vector<std::string> restart = restartRequired(cfg, next);
  if (next.control.socket != cfg.control.socket) restart.push_back("control.socket: needs a restart");
  if (next.control.mode != cfg.control.mode) restart.push_back("control.mode: needs a restart");
  if (next.metrics.listen != cfg.metrics.listen) restart.push_back("metrics.listen: needs a restart");
  SnapshotBuilder trial = view.builder();
  std::string err;
  std::unique_ptr<Snapshot> ns = trial.build(next, view.portRuntime(), err, &view.dynamicState());
  if (!ns) return {{"ok", false}, {"error", args[0] + " cannot be built on the running ports"}, {"messages", json::array({err})}};
  const Snapshot* cur = view.snapshot();
  json vips = json::array();
  std::map<std::string, size_t> old_by_id, new_by_id;
  for (size_t i = 0; i < cfg.vips.size(); i++) old_by_id[vipIdentity(cfg.vips[i])] = i;
  for (size_t i = 0; i < next.vips.size(); i++) new_by_id[vipIdentity(next.vips[i])] = i;
  std::set<std::string> all;
  for (auto& [k, i] : old_by_id) all.insert(k);
  for (auto& [k, i] : new_by_id) all.insert(k);
  for (const std::string& k : all) {
    auto o = old_by_id.find(k), n = new_by_id.find(k);
    json j;
    if (o == old_by_id.end()) {
      j = {{"vip", next.vips[n->second].name}, {"change", "added"}};
    } else if (n == new_by_id.end()) {
      j = {{"vip", cfg.vips[o->second].name}, {"change", "removed"}};
    } else {
      const VipConfig &ov = cfg.vips[o->second], &nv = next.vips[n->second];
      json added = json::array(), removed = json::array(), weights = json::array();
      std::map<std::string, const BackendConfig*> ob, nb;
      for (const auto& b : ov.backends) ob[endpoint(b.address, b.port)] = &b;
      for (const auto& b : nv.backends) nb[endpoint(b.address, b.port)] = &b;
      for (auto& [e, b] : nb)
        if (!ob.count(e)) added.push_back(e);
        else if (ob[e]->weight != b->weight) weights.push_back({{"backend", e}, {"from", ob[e]->weight}, {"to", b->weight}});
      for (auto& [e, b] : ob)
        if (!nb.count(e)) removed.push_back(e);
      const std::vector<uint32_t>& om = cur->vips[o->second].maglev;
      const std::vector<uint32_t>& nm = ns->vips[n->second].maglev;
      size_t moved = 0;
      if (om.size() == nm.size()) {
        for (size_t i = 0; i < om.size(); i++) moved += om[i] != nm[i];
      } else {
        moved = std::max(om.size(), nm.size());  // a new table size reshuffles every slot
      }
      const size_t total = std::max<size_t>(nm.size(), 1);
      j = {{"vip", nv.name},
           {"change", added.empty() && removed.empty() && weights.empty() && moved == 0 ? "unchanged" : "changed"},
           {"backends_added", added},
           {"backends_removed", removed},
           {"weights_changed", weights},
           {"slots_moved", moved},
           {"slots_total", nm.size()},
           {"moved_share", double(moved) / double(total)}};
    }
    vips.push_back(j);
  }
  return {{"file", args[0]}, {"summary", diffSummary(cfg, next)}, {"restart_required", restart},
          {"vips", vips}};
}

}  // namespace l4lb::control::api
