// Live reload: which differences need a restart (each named, with old and new value) and the
// one-line summary of what a reload changes.
#include "control/reload.h"

#include "control/change_plan.h"

#include <gtest/gtest.h>

#include "config_fixture.h"
#include "packet_builder.h"

namespace l4lb::control {
namespace {

using test::ipAddr;

Config base() { return test::oneVipTwoBackends(); }

TEST(Reload, IdenticalNeedsNothing) {
  EXPECT_TRUE(restartRequired(base(), base()).empty());
  EXPECT_EQ(diffSummary(base(), base()), "vips +0 -0 ~0, backends +0 -0 ~0");
}

TEST(Reload, RestartOnlyFieldsAreNamed) {
  Config n = base();
  n.eal.worker_cores = {1, 2};
  n.ports[0].mtu = 9000;
  n.ports[0].exception_path = ExceptionPath::Tap;
  n.flow_table.capacity = 2048;
  EXPECT_EQ(restartRequired(base(), n), (std::vector<std::string>{
                                            "eal.worker_cores changed ([1] -> [1,2]): needs a restart",
                                            "flow_table.capacity changed (1048576 -> 2048): needs a restart",
                                            "ports[0].mtu changed (1500 -> 9000): needs a restart",
                                            "ports[0].exception_path changed (none -> tap): needs a restart",
                                        }));
  Config idle = base();  // workers take the idle back-off from WorkerArgs, at start
  idle.eal.idle_backoff = true;
  idle.eal.idle_polls_before_sleep = 32;
  idle.eal.idle_sleep_max_us = 50;
  EXPECT_EQ(restartRequired(base(), idle),
            (std::vector<std::string>{"eal.idle_backoff changed (false -> true): needs a restart",
                                      "eal.idle_polls_before_sleep changed (256 -> 32): needs a restart",
                                      "eal.idle_sleep_max_us changed (1000 -> 50): needs a restart"}));
  Config more = base();
  more.ports.push_back(more.ports[0]);
  EXPECT_EQ(restartRequired(base(), more), (std::vector<std::string>{"ports: 1 -> 2 ports: needs a restart"}));
}

TEST(Reload, SyncNeedsARestartExceptTheAnnounceInterval) {
  Config a = base();
  a.sync.enabled = true;
  a.sync.listen = {ipAddr("198.18.40.11"), 7400};
  a.sync.peers = {{ipAddr("198.18.40.12"), 7400}};
  a.sync.key_file = "/etc/l4lb/sync.key";
  Config n = a;
  n.sync.announce_interval_ms = 500;
  EXPECT_TRUE(restartRequired(a, n).empty());
  n.sync.enabled = false;
  n.sync.listen.port = 7401;
  n.sync.peers.push_back({ipAddr("198.18.40.13"), 7400});
  n.sync.key[0] = 1;
  EXPECT_EQ(restartRequired(a, n), (std::vector<std::string>{
                                       "sync.enabled changed (true -> false): needs a restart",
                                       "sync.listen changed (198.18.40.11:7400 -> 198.18.40.11:7401): needs a restart",
                                       "sync.peers changed ([198.18.40.12:7400] -> [198.18.40.12:7400,198.18.40.13:7400]): "
                                       "needs a restart",
                                       "sync.key_file: the key changed: needs a restart",
                                   }));
}

TEST(Reload, LiveFieldsNeedNoRestart) {
  Config n = base();
  n.ports[0].gateway4 = ipAddr("198.18.30.254");  // gateways are re-resolved live
  n.flow_table.tcp_established_timeout_ms = 1000;
  n.icmp.errors = {5, 5};  // the workers read it from the snapshot
  n.vips[0].backends[0].weight = 7;
  n.vips.push_back(n.vips[0]);
  n.vips[1].port = 443;
  EXPECT_TRUE(restartRequired(base(), n).empty());
}

TEST(Reload, SummaryCountsVipsAndBackends) {
  Config n = base();
  n.vips[0].backends[0].weight = 5;                     // changed
  n.vips[0].backends.erase(n.vips[0].backends.begin() + 1);  // removed
  BackendConfig b;
  b.address = ipAddr("198.18.30.13");
  n.vips[0].backends.push_back(b);                      // added
  n.vips[0].scheduler = Scheduler::RoundRobin;          // the VIP changed
  VipConfig v2 = n.vips[0];
  v2.port = 8080;
  n.vips.push_back(v2);                                 // a new VIP with two backends
  EXPECT_EQ(diffSummary(base(), n), "vips +1 -0 ~1, backends +3 -1 ~1");
  EXPECT_EQ(diffSummary(n, base()), "vips +0 -1 ~1, backends +1 -3 ~1");
}

}  // namespace
}  // namespace l4lb::control
