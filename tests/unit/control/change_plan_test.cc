// The change plan (control/change_plan.h): one diff of two configurations that both reload's log
// line and `l4lbctl diff` are derived from.
#include "control/change_plan.h"

#include <gtest/gtest.h>

#include "packet_builder.h"

namespace l4lb::control {
namespace {

using test::ipAddr;

Config base() {
  Config c;
  c.eal.worker_cores = {1};
  PortConfig p;
  p.name = "lan";
  p.device = "net_null0";
  p.ipv4 = *Prefix::parse("198.18.30.1/24");
  c.ports.push_back(p);
  VipConfig v;
  v.name = "web";
  v.address = ipAddr("198.18.20.100");
  v.port = 80;
  v.health.type = HealthType::Tcp;
  for (const char* a : {"198.18.30.11", "198.18.30.12"}) {
    BackendConfig b;
    b.address = ipAddr(a);
    b.health = v.health;
    v.backends.push_back(b);
  }
  c.vips.push_back(v);
  return c;
}

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

}  // namespace
}  // namespace l4lb::control
