// Flow sync as the operator sees it: syncStatusJson (the "sync" section of l4lbctl cluster) and
// the l4lb_sync_* metrics, from one SyncStatus with every field set to a distinct value.
#include "control/sync/sync_status.h"

#include <gtest/gtest.h>

#include "control/metrics.h"

namespace l4lb::control::sync {
namespace {

SyncStatus sample() {
  SyncStatus s;
  s.listen = "198.18.40.11:7400";
  SyncPeerStatus a;
  a.address = "198.18.40.12:7400";
  a.last_heard_ms_ago = 250;
  a.records_in_per_s = 12.5;
  a.records_out_per_s = 3;
  a.records_in = 100;
  a.datagrams_in = 10;
  a.records_out = 30;
  a.datagrams_out = 5;
  a.send_errors = 1;
  a.rejected[size_t(SyncReject::BadMac)] = 2;
  SyncPeerStatus b;
  b.address = "198.18.40.13:7400";  // never heard
  s.peers = {a, b};
  s.records_out = 30;
  s.datagrams_out = 5;
  s.records_in = 100;
  s.datagrams_in = 10;
  s.delivered = 99;
  s.ring_full = 1;
  s.send_errors = 1;
  s.rejected[size_t(SyncReject::BadMac)] = 2;
  s.rejected[size_t(SyncReject::UnknownPeer)] = 7;
  s.lag_buckets = {1, 4, 8, 10, 10, 10, 10, 10, 10, 10};
  s.lag_count = 10;
  s.lag_sum_s = 0.05;
  s.lag_last_ms = 3;
  s.lag_max_ms = 9;
  return s;
}

TEST(SyncStatus, Json) {
  const nlohmann::json j = syncStatusJson(sample());
  EXPECT_EQ(j["listen"], "198.18.40.11:7400");
  ASSERT_EQ(j["peers"].size(), 2u);
  EXPECT_EQ(j["peers"][0]["address"], "198.18.40.12:7400");
  EXPECT_EQ(j["peers"][0]["last_heard_ms_ago"], 250);
  EXPECT_TRUE(j["peers"][1]["last_heard_ms_ago"].is_null());
  EXPECT_EQ(j["peers"][0]["records_in_per_s"], 12.5);
  EXPECT_EQ(j["peers"][0]["records_out_per_s"], 3.0);
  EXPECT_EQ(j["peers"][0]["rejected"]["bad_mac"], 2);
  EXPECT_EQ(j["peers"][0]["rejected"].size(), size_t(SyncReject::Count));
  EXPECT_EQ(j["totals"]["records_in"], 100);
  EXPECT_EQ(j["totals"]["records_out"], 30);
  EXPECT_EQ(j["totals"]["ring_full"], 1);
  EXPECT_EQ(j["totals"]["rejected"]["unknown_peer"], 7);
  EXPECT_EQ(j["totals"]["rejected"]["replay"], 0);
  EXPECT_EQ(j["lag_ms"]["last"], 3);
  EXPECT_EQ(j["lag_ms"]["max"], 9);
  EXPECT_DOUBLE_EQ(j["lag_ms"]["mean"].get<double>(), 5.0);
}

TEST(SyncStatus, Metrics) {
  Observation o;
  EXPECT_EQ(renderMetrics(o).find("l4lb_sync_"), std::string::npos);  // sync off: no family at all
  o.sync = sample();
  const std::string m = renderMetrics(o);
  for (const char* line : {
           "l4lb_sync_records_total{direction=\"sent\"} 30\n",
           "l4lb_sync_records_total{direction=\"received\"} 100\n",
           "l4lb_sync_datagrams_total{direction=\"sent\"} 5\n",
           "l4lb_sync_delivered_total 99\n",
           "l4lb_sync_ring_full_total 1\n",
           "l4lb_sync_send_errors_total 1\n",
           "l4lb_sync_rejected_total{reason=\"bad_mac\"} 2\n",
           "l4lb_sync_rejected_total{reason=\"unknown_peer\"} 7\n",
           "l4lb_sync_rejected_total{reason=\"stale\"} 0\n",
           "l4lb_sync_peer_records_total{peer=\"198.18.40.12:7400\",direction=\"received\"} 100\n",
           "l4lb_sync_peer_rejected_total{peer=\"198.18.40.12:7400\",reason=\"bad_mac\"} 2\n",
           "l4lb_sync_peer_last_heard_seconds{peer=\"198.18.40.12:7400\"} 0.25\n",
           "l4lb_sync_lag_seconds_bucket{le=\"0.001\"} 1\n",
           "l4lb_sync_lag_seconds_bucket{le=\"0.0025\"} 4\n",
           "l4lb_sync_lag_seconds_bucket{le=\"+Inf\"} 10\n",
           "l4lb_sync_lag_seconds_sum 0.05\n",
           "l4lb_sync_lag_seconds_count 10\n",
           "l4lb_sync_lag_max_seconds 0.009\n",
       })
    EXPECT_NE(m.find(line), std::string::npos) << line;
  // A peer never heard has no last-heard sample.
  EXPECT_EQ(m.find("l4lb_sync_peer_last_heard_seconds{peer=\"198.18.40.13:7400\"}"), std::string::npos);
}

}  // namespace
}  // namespace l4lb::control::sync
