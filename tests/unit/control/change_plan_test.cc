// The change plan (control/change_plan.h): one diff of two configurations that both reload's log
// line and `l4lbctl diff` are derived from.
#include "control/change_plan.h"

#include <gtest/gtest.h>

#include "config_fixture.h"
#include "packet_builder.h"

namespace l4lb::control {
namespace {

using test::ipAddr;

Config base() { return test::oneVipTwoBackends(HealthType::Tcp); }

// The second disagreement: reload's summary ignored health-check changes.
TEST(ChangePlan, SummaryCountsHealthCheckChanges) {
  Config vip_level = base();
  vip_level.vips[0].health.interval_ms = 5000;  // the VIP's check, merged into each backend's
  for (BackendConfig& b : vip_level.vips[0].backends) b.health.interval_ms = 5000;
  EXPECT_EQ(diffSummary(base(), vip_level), "vips +0 -0 ~1, backends +0 -0 ~2");
  Config backend_level = base();
  backend_level.vips[0].backends[1].health.rise = 5;  // one backend's own override
  EXPECT_EQ(diffSummary(base(), backend_level), "vips +0 -0 ~0, backends +0 -0 ~1");
}

TEST(ChangePlan, VipSettingsAreNamedInTheDiff) {
  Config n = base();
  n.vips[0].forwarding = FwdMode::Nat;
  n.vips[0].on_all_down = AllDownPolicy::Keep;
  n.vips[0].tunnel_source4 = ipAddr("198.18.30.1");
  n.vips[0].maglev_table_size = 251;
  const ConfigDiff d = diffConfigs(base(), n);
  ASSERT_EQ(d.vips.size(), 1u);
  EXPECT_EQ(d.vips[0].change, VipChange::Changed);
  EXPECT_EQ(d.vips[0].fields, (std::vector<std::string>{"forwarding (dsr -> nat)", "maglev_table_size (65537 -> 251)",
                                                        "tunnel_source4 (unset -> 198.18.30.1)",
                                                        "on_all_down (drop -> keep)"}));
  EXPECT_EQ(d.summary(), "vips +0 -0 ~1, backends +0 -0 ~0");
  // No snapshots given: no slot counts.
  EXPECT_EQ(d.vips[0].slots_total, 0u);
}

TEST(ChangePlan, ProxyProtocolIsNamedInTheDiff) {
  Config a = base(), n = base();
  a.vips[0].forwarding = n.vips[0].forwarding = FwdMode::FullNat;
  n.vips[0].proxy_v2 = true;
  const ConfigDiff d = diffConfigs(a, n);
  ASSERT_EQ(d.vips.size(), 1u);
  EXPECT_EQ(d.vips[0].fields, (std::vector<std::string>{"proxy_protocol (\"none\" -> \"v2\")"}));
}

TEST(ChangePlan, BackendSettingsAndWeightCountOnce) {
  Config n = base();
  n.vips[0].backends[0].weight = 4;
  n.vips[0].backends[0].via = "lan";
  const ConfigDiff d = diffConfigs(base(), n);
  ASSERT_EQ(d.vips[0].weights.size(), 1u);
  EXPECT_EQ(d.vips[0].weights[0].backend, "198.18.30.11:0");
  EXPECT_EQ(d.vips[0].weights[0].from, 1u);
  EXPECT_EQ(d.vips[0].weights[0].to, 4u);
  ASSERT_EQ(d.vips[0].backends_changed.size(), 1u);
  EXPECT_EQ(d.vips[0].backends_changed[0].fields, (std::vector<std::string>{"via (\"\" -> \"lan\")"}));
  EXPECT_EQ(d.summary(), "vips +0 -0 ~0, backends +0 -0 ~1");
}

TEST(ChangePlan, RestartOnlySettingsIncludeTheListeners) {
  Config n = base();
  n.eal.main_core = 3;
  n.control.socket = "/tmp/x.sock";
  n.control.mode = 0660;
  n.metrics.listen = "127.0.0.1:9200";
  SnapshotBuilder b;
  std::vector<PortRuntime> rt{{0, test::macAddr("02:00:00:00:00:01")}};
  const ChangePlan p = planChange(base(), n, b, rt, DynamicState{}, nullptr);
  EXPECT_EQ(p.restart, (std::vector<std::string>{"eal.main_core changed (0 -> 3): needs a restart",
                                                 "control.socket: needs a restart", "control.mode: needs a restart",
                                                 "metrics.listen: needs a restart"}));
}

// The trial build runs on a copy: the running builder keeps its ids, and the plan's builder has
// the ids a reload adopts. Slots moved compare the running and the trial snapshot.
TEST(ChangePlan, TrialBuildOnACopyAndSlotsMoved) {
  Config cur = base();
  cur.vips[0].maglev_table_size = 7;
  for (size_t i = 0; i < 2; i++) cur.vips[0].backends[i].mac = test::macAddr("02:00:00:00:00:1" + std::to_string(i));
  std::vector<PortRuntime> rt{{0, test::macAddr("02:00:00:00:00:01")}};
  SnapshotBuilder b;
  BuildResult built = b.build(cur, rt);
  ASSERT_TRUE(built) << built.joined();
  auto running = std::move(built.snapshot);
  Config n = cur;
  BackendConfig third = n.vips[0].backends[0];
  third.address = ipAddr("198.18.30.13");
  n.vips[0].backends.push_back(third);
  const ChangePlan p = planChange(cur, n, b, rt, DynamicState{}, running.get());
  ASSERT_TRUE(p.snapshot) << p.build_errors.size();
  const std::string key = backendIdentity(n.vips[0], third);
  EXPECT_EQ(b.idOf(key), kNoBackend);
  EXPECT_NE(p.builder.idOf(key), kNoBackend);
  size_t moved = 0;
  for (size_t i = 0; i < 7; i++) moved += running->vips[0].maglev[i] != p.snapshot->vips[0].maglev[i];
  EXPECT_GT(moved, 0u);
  EXPECT_EQ(p.diff.vips[0].slots_moved, moved);
  EXPECT_EQ(p.diff.vips[0].slots_total, 7u);
  EXPECT_EQ(p.diff.vips[0].backends_added, (std::vector<std::string>{"198.18.30.13:0"}));
  EXPECT_EQ(p.diff.summary(), "vips +0 -0 ~0, backends +1 -0 ~0");
  // A next config that cannot be built: no snapshot, the message, and still a diff.
  Config bad = n;
  bad.vips[0].backends[2].mac.reset();
  const ChangePlan q = planChange(cur, bad, b, rt, DynamicState{}, running.get());
  EXPECT_FALSE(q.snapshot);
  ASSERT_EQ(q.build_errors.size(), 1u);
  EXPECT_NE(q.build_errors[0].find("198.18.30.13"), std::string::npos) << q.build_errors[0];
  EXPECT_EQ(q.diff.vips[0].slots_total, 0u);
}

}  // namespace
}  // namespace l4lb::control
