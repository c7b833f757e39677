#include "control/sync/sync_status.h"

namespace l4lb::control::sync {

namespace {

nlohmann::json rejectsJson(const RejectCounts& r) {
  nlohmann::json j = nlohmann::json::object();
  for (size_t i = 0; i < r.size(); i++) j[std::string(kSyncRejectNames[i])] = r[i];
  return j;
}

}  // namespace

nlohmann::json syncStatusJson(const SyncStatus& s) {
  nlohmann::json peers = nlohmann::json::array();
  for (const SyncPeerStatus& p : s.peers)
    peers.push_back({{"address", p.address},
                     {"last_heard_ms_ago", p.last_heard_ms_ago < 0 ? nlohmann::json() : nlohmann::json(p.last_heard_ms_ago)},
                     {"records_in_per_s", p.records_in_per_s},
                     {"records_out_per_s", p.records_out_per_s},
                     {"records_in", p.records_in},
                     {"records_out", p.records_out},
                     {"datagrams_in", p.datagrams_in},
                     {"datagrams_out", p.datagrams_out},
                     {"send_errors", p.send_errors},
                     {"rejected", rejectsJson(p.rejected)}});
  return {{"listen", s.listen},
          {"peers", peers},
          {"totals",
           {{"records_out", s.records_out},
            {"records_in", s.records_in},
            {"datagrams_out", s.datagrams_out},
            {"datagrams_in", s.datagrams_in},
            {"delivered", s.delivered},
            {"ring_full", s.ring_full},
            {"send_errors", s.send_errors},
            {"rejected", rejectsJson(s.rejected)}}},
          {"lag_ms",
           {{"last", s.lag_last_ms},
            {"max", s.lag_max_ms},
            {"mean", s.lag_count ? s.lag_sum_s * 1000.0 / double(s.lag_count) : 0.0},
            {"count", s.lag_count}}}};
}

}  // namespace l4lb::control::sync
