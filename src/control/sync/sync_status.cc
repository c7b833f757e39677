#include "control/sync/sync_status.h"

namespace l4lb::control::sync {

namespace {

nlohmann::json rejectsJson(const RejectCounts& r) {
  nlohmann::json j = nlohmann::json::object();
  for (size_t i = 0; i < r.size(); i++) j[std::string(kSyncRejectNames[i])] = r[i];
  return j;
}

// The keys a peer and the totals share (SyncTraffic).
nlohmann::json trafficJson(const SyncTraffic& t) {
  return {{"records_in", t.records_in},       {"records_out", t.records_out}, {"datagrams_in", t.datagrams_in},
          {"datagrams_out", t.datagrams_out}, {"send_errors", t.send_errors}, {"rejected", rejectsJson(t.rejected)}};
}

}  // namespace

nlohmann::json syncStatusJson(const SyncStatus& s) {
  nlohmann::json peers = nlohmann::json::array();
  for (const SyncPeerStatus& p : s.peers) {
    nlohmann::json j = trafficJson(p);
    j["address"] = p.address;
    j["last_heard_ms_ago"] = p.last_heard_ms_ago < 0 ? nlohmann::json() : nlohmann::json(p.last_heard_ms_ago);
    j["records_in_per_s"] = p.records_in_per_s;
    j["records_out_per_s"] = p.records_out_per_s;
    peers.push_back(std::move(j));
  }
  nlohmann::json totals = trafficJson(s);
  totals["delivered"] = s.delivered;
  totals["ring_full"] = s.ring_full;
  return {{"listen", s.listen},
          {"peers", peers},
          {"totals", totals},
          {"lag_ms",
           {{"last", s.lag_last_ms},
            {"max", s.lag_max_ms},
            {"mean", s.lag_count ? s.lag_sum_s * 1000.0 / double(s.lag_count) : 0.0},
            {"count", s.lag_count}}}};
}

}  // namespace l4lb::control::sync
