// diff FILE: what reloading FILE would change, from the same change plan reload() applies
// (control/change_plan.h).
#include <algorithm>

#include "control/api/handlers.h"
#include "control/change_plan.h"

namespace l4lb::control::api {

namespace {

using nlohmann::json;

json vipJson(const VipDiff& d) {
  if (d.change == VipChange::Added || d.change == VipChange::Removed)
    return {{"vip", d.name}, {"change", std::string(toString(d.change))}};
  json weights = json::array(), changed = json::array();
  for (const WeightChange& w : d.weights) weights.push_back({{"backend", w.backend}, {"from", w.from}, {"to", w.to}});
  for (const BackendChange& b : d.backends_changed) changed.push_back({{"backend", b.backend}, {"fields", b.fields}});
  return {{"vip", d.name},
          {"change", std::string(toString(d.change))},
          {"fields_changed", d.fields},
          {"backends_added", d.backends_added},
          {"backends_removed", d.backends_removed},
          {"backends_changed", changed},
          {"weights_changed", weights},
          {"slots_moved", d.slots_moved},
          {"slots_total", d.slots_total},
          {"moved_share", double(d.slots_moved) / double(std::max<size_t>(d.slots_total, 1))}};
}

}  // namespace

json cmdDiff(OperatorView& view, const Args& args) {
  ConfigResult r = loadConfigFile(args[0]);
  if (!r.ok()) return {{"ok", false}, {"error", args[0] + " is not a valid configuration"}, {"messages", r.error.messages}};
  const ChangePlan plan =
      planChange(view.config(), *r.config, view.builder(), view.portRuntime(), view.dynamicState(), view.snapshot());
  if (!plan.snapshot)
    return {{"ok", false},
            {"error", args[0] + " cannot be built on the running ports"},
            {"messages", plan.build_errors}};
  json vips = json::array();
  for (const VipDiff& d : plan.diff.vips) vips.push_back(vipJson(d));
  return {{"file", args[0]}, {"summary", plan.diff.summary()}, {"restart_required", plan.restart}, {"vips", vips}};
}

}  // namespace l4lb::control::api
