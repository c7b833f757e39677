// The commands that change the running state: drain, undrain, weight (held in DynamicState,
// published by a rebuild; a restart forgets them) and reload.
#include <algorithm>

#include "control/api/handlers.h"
#include "control/log.h"

namespace l4lb::control::api {

namespace {

using nlohmann::json;

// BACKEND is ADDR, ADDR:PORT or [ADDR6]:PORT, optionally prefixed "VIP/" to pick one VIP.
std::vector<std::pair<const VipConfig*, const BackendConfig*>> matchBackends(const Config& cfg, const std::string& arg) {
  // VIP names default to "addr:port/proto": the backend is what follows the last '/'.
  std::string spec = arg, vip;
  if (size_t slash = spec.rfind('/'); slash != std::string::npos) {
    vip = spec.substr(0, slash);
    spec = spec.substr(slash + 1);
  }
  std::optional<IpAddr> addr = IpAddr::parse(spec);
  std::optional<uint16_t> port;
  if (!addr) {
    // Port 0 is a backend's "keeps the client's port": accepted here, unlike in listen addresses.
    const bool zero = spec.size() > 2 && spec.compare(spec.size() - 2, 2, ":0") == 0;
    auto l = parseListenAddr(zero ? spec.substr(0, spec.size() - 1) + "1" : spec);
    if (!l) throw ApiError{"bad backend '" + arg + "': expected ADDR, ADDR:PORT or [ADDR6]:PORT (optionally VIP/...)"};
    addr = l->first;
    port = zero ? 0 : l->second;
  }
  std::vector<std::pair<const VipConfig*, const BackendConfig*>> out;
  bool vip_found = vip.empty();
  for (const VipConfig& v : cfg.vips) {
    if (!vip.empty() && v.name != vip) continue;
    vip_found = true;
    for (const BackendConfig& b : v.backends)
      if (b.address == *addr && (!port || b.port == *port)) out.emplace_back(&v, &b);
  }
  if (!vip_found) throw ApiError{"no VIP named '" + vip + "' (see l4lbctl vips)"};
  if (out.empty()) throw ApiError{"no backend " + arg + " in the running configuration (see l4lbctl backends)"};
  return out;
}

json drainOrUndrain(OperatorView& view, const Args& args, bool drain) {
  json changed = json::array();
  for (const auto& [v, b] : matchBackends(view.config(), args[0])) {
    BackendRuntime& r = view.dynamicState().backends[backendIdentity(*v, *b)];
    if (r.drained != drain) changed.push_back({{"vip", v->name}, {"backend", endpoint(b->address, b->port)}});
    r.drained = drain;
  }
  if (!changed.empty()) {
    logInfo(std::string(drain ? "drain " : "undrain ") + args[0] + " (l4lbctl): " + std::to_string(changed.size()) +
            " backend(s)");
    if (!view.rebuild(std::string(drain ? "drained" : "undrained") + " by l4lbctl"))
      throw ApiError{"rebuild failed (see the log)"};
  }
  return {{"changed", changed}};
}

}  // namespace

json cmdDrain(OperatorView& view, const Args& args) { return drainOrUndrain(view, args, true); }
json cmdUndrain(OperatorView& view, const Args& args) { return drainOrUndrain(view, args, false); }

json cmdWeight(OperatorView& view, const Args& args) {
  const std::string& n = args[1];
  if (n.empty() || n.size() > 5 || !std::all_of(n.begin(), n.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
      std::stoul(n) > 65535)
    throw ApiError{"bad weight '" + n + "': must be 0..65535"};
  const uint32_t w = uint32_t(std::stoul(n));
  json changed = json::array();
  for (const auto& [v, b] : matchBackends(view.config(), args[0])) {
    BackendRuntime& r = view.dynamicState().backends[backendIdentity(*v, *b)];
    const uint32_t before = r.weight ? *r.weight : b->weight;
    // Setting the file's own weight ends the override (no drift left to report).
    if (w == b->weight) r.weight.reset();
    else r.weight = w;
    if (before != w)
      changed.push_back({{"vip", v->name}, {"backend", endpoint(b->address, b->port)}, {"from", before}, {"to", w}});
  }
  if (!changed.empty()) {
    logInfo("weight " + args[0] + " " + n + " (l4lbctl): " + std::to_string(changed.size()) + " backend(s)");
    if (!view.rebuild("weight set by l4lbctl")) throw ApiError{"rebuild failed (see the log)"};
  }
  return {{"changed", changed}};
}

json cmdReload(OperatorView& view, const Args&) {
  const ReloadOutcome r = view.reload();
  json j{{"ok", r.ok}, {"messages", r.messages}};
  if (!r.ok) j["error"] = "reload failed: the running configuration is unchanged";
  return j;
}

}  // namespace l4lb::control::api
