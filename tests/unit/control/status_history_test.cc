// The status page's history (control/status_history.h): bounded rings, VIP rates as the sum of
// their backends', series dropped with their backend, drops per second from the counters, and
// state changes kept for an hour.
#include "control/status_history.h"

#include <gtest/gtest.h>

#include "l4lb/snapshot.h"

namespace l4lb::control {
namespace {

Snapshot twoVips() {
  Snapshot s;
  SnapVip web;
  web.name = "web";
  web.backends = {1, 2};
  SnapVip dns;
  dns.name = "dns";
  dns.backends = {3};
  s.vips = {web, dns};
  return s;
}

WorkerCounters withDrops(uint64_t n) {
  WorkerCounters c{};
  c.drops[size_t(Drop::Count) - 1] = n;
  return c;
}

TEST(StatusHistory, RingKeepsTheLastSamplesOldestFirst) {
  StatusHistory::Ring r;
  EXPECT_TRUE(r.values().empty());
  for (int i = 0; i < 3; i++) r.push(float(i));
  EXPECT_EQ(r.values(), (std::vector<float>{0, 1, 2}));
  for (size_t i = 3; i < StatusHistory::kSamples + 5; i++) r.push(float(i));
  const std::vector<float> v = r.values();
  ASSERT_EQ(v.size(), StatusHistory::kSamples);
  EXPECT_EQ(v.front(), 5.f);
  EXPECT_EQ(v.back(), float(StatusHistory::kSamples + 4));
}

TEST(StatusHistory, BackendsVipsDropsAndWorkersPerTick) {
  StatusHistory h;
  const Snapshot s = twoVips();
  h.record(s, {{1, {10, 1000, 1}}, {2, {5, 500, 2}}}, withDrops(100), 1.0, {0.5, 0.25});
  h.record(s, {{1, {20, 2000, 3}}, {3, {7, 700, 1}}}, withDrops(150), 0.5, {0.75, 0.0});
  ASSERT_NE(h.backend(1), nullptr);
  EXPECT_EQ(h.backend(1)->packets_per_s.values(), (std::vector<float>{10, 20}));
  EXPECT_EQ(h.backend(1)->new_flows_per_s.values(), (std::vector<float>{1, 3}));
  EXPECT_EQ(h.backend(2)->packets_per_s.values(), (std::vector<float>{5, 0}));  // no rate: 0
  EXPECT_EQ(h.backend(3)->packets_per_s.values(), (std::vector<float>{0, 7}));
  EXPECT_EQ(h.vip("web")->packets_per_s.values(), (std::vector<float>{15, 20}));
  EXPECT_EQ(h.vip("web")->new_flows_per_s.values(), (std::vector<float>{3, 3}));
  EXPECT_EQ(h.vip("dns")->packets_per_s.values(), (std::vector<float>{0, 7}));
  // The first tick has nothing to compare with; then 50 drops in half a second.
  EXPECT_EQ(h.drops().values(), (std::vector<float>{0, 100}));
  ASSERT_EQ(h.workers().size(), 2u);
  EXPECT_EQ(h.workers()[0].values(), (std::vector<float>{0.5, 0.75}));
  EXPECT_EQ(h.backend(9), nullptr);
  EXPECT_EQ(h.vip("mail"), nullptr);
}

TEST(StatusHistory, SeriesOfRemovedBackendsAndVipsAreDropped) {
  StatusHistory h;
  h.record(twoVips(), {{1, {10, 0, 0}}}, {}, 1.0, {});
  Snapshot web_only = twoVips();
  web_only.vips.pop_back();
  web_only.vips[0].backends = {2};
  h.record(web_only, {{2, {4, 0, 0}}}, {}, 1.0, {});
  EXPECT_EQ(h.backend(1), nullptr);
  EXPECT_EQ(h.backend(3), nullptr);
  EXPECT_EQ(h.vip("dns"), nullptr);
  EXPECT_EQ(h.backend(2)->packets_per_s.values(), (std::vector<float>{0, 4}));
  EXPECT_EQ(h.vip("web")->packets_per_s.values(), (std::vector<float>{10, 4}));
}

TEST(StatusHistory, StateChangesOfTheLastHourNewestFirst) {
  StatusHistory h;
  const int64_t t0 = 1700000000;
  h.transition({{t0, "healthy", "unhealthy", "health check: timeout"}, "web", "198.18.2.11:0"});
  h.transition({{t0 + 1800, "unhealthy", "healthy", "health check: 3 successes"}, "web", "198.18.2.11:0"});
  h.transition({{t0 + 3700, "healthy", "draining", "drained by l4lbctl"}, "web", "198.18.2.12:0"});
  // The first is more than an hour older than the newest: gone.
  const auto all = h.transitionsSince(t0 + 3700);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].change.to, "draining");
  EXPECT_EQ(all[0].backend, "198.18.2.12:0");
  EXPECT_EQ(all[1].change.why, "health check: 3 successes");
  EXPECT_EQ(h.transitionsSince(t0 + 1800 + 3601).size(), 1u);
  // Bounded whatever the rate of changes.
  for (size_t i = 0; i < 3 * StatusHistory::kMaxTransitions; i++)
    h.transition({{t0 + 3700, "healthy", "unhealthy", "x"}, "web", "198.18.2.13:0"});
  EXPECT_EQ(h.transitionsSince(t0 + 3700).size(), StatusHistory::kMaxTransitions);
}

}  // namespace
}  // namespace l4lb::control
