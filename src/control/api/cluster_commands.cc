// The scale-out commands (docs/SCALE-OUT.md): `cluster` (this balancer among its peers: BGP through BIRD,
// what it announces and why, flow sync) and `drain-balancer` / `undrain-balancer`.
#include "control/api/handlers.h"
#include "control/bgp/announcer.h"
#include "control/log.h"
#include "control/sync/sync_status.h"

namespace l4lb::control::api {

using nlohmann::json;

json cmdCluster(OperatorView& view, const Args&) {
  const Config& cfg = view.config();
  const bgp::Announcer* a = view.announcer();
  json out{{"name", cfg.cluster.name}, {"balancer_drained", a != nullptr && a->drained()}};
  if (a != nullptr) {
    out["bgp"] = a->bgpJson(view.monoMs());
    out["announcements"] = a->announcementsJson();
  } else {
    out["bgp"] = nullptr;  // no [bgp]: this balancer announces nothing
    out["announcements"] = json::array();
  }
  // Flow sync's section (src/control/sync/sync_status.h) when [sync] is on.
  if (auto s = view.syncStatus()) out["sync"] = sync::syncStatusJson(*s);
  else out["sync"] = nullptr;
  return out;
}

namespace {

json setDrained(OperatorView& view, bool drained) {
  const bgp::Announcer* a = view.announcer();
  if (a == nullptr) throw ApiError{"no [bgp] in the configuration: this balancer announces nothing to withdraw"};
  const bool was = a->drained();
  if (!view.setBalancerDrained(drained)) throw ApiError{"no [bgp] in the configuration"};
  logInfo(std::string("l4lbctl: balancer ") + (drained ? "drained: every VIP withdrawn" : "undrained: VIPs announced again") +
          (was == drained ? " (no change)" : ""));
  return {{"balancer_drained", drained}, {"changed", was != drained}, {"in_sync", a->inSync()},
          {"announcements", a->announcementsJson()}};
}

}  // namespace

json cmdDrainBalancer(OperatorView& view, const Args&) { return setDrained(view, true); }
json cmdUndrainBalancer(OperatorView& view, const Args&) { return setDrained(view, false); }

ObservedBgp observeBgp(const OperatorView& view) {
  ObservedBgp o;
  const bgp::Announcer* a = view.announcer();
  if (a == nullptr) return o;
  o.enabled = true;
  o.drained = a->drained();
  for (const json& j : a->announcementsJson()) o.vips.emplace_back(j["vip"].get<std::string>(), j["announced"].get<bool>());
  for (const bgp::BirdProtocol& p : a->protocols()) o.sessions.emplace_back(p.name, p.sessionUp());
  o.bird_errors = a->birdErrors();
  return o;
}

}  // namespace l4lb::control::api
