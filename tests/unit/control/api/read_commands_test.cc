// status, vips, backends, stats over the in-memory view: every field of the JSON reply, and
// l4lbctl's text for it.
#include <unistd.h>

#include "control/sha256.h"
#include "ctl/render.h"
#include "fake_view.h"

namespace l4lb::control::api::test {
namespace {

using nlohmann::json;

constexpr int64_t kNow = 1700000100;

TEST(ApiStatus, ReportsPortsConfigAndDrift) {
  FakeView v;
  v.facts.config_sha256 = "abc";
  v.facts.stats.reloads_ok = 2;
  v.facts.stats.reloads_failed = 1;
  v.facts.metrics_listen = "127.0.0.1:9100";
  v.dyn.backends[backendIdentity(v.cfg.vips[0], v.cfg.vips[0].backends[0])].drained = true;
  v.dyn.backends[backendIdentity(v.cfg.vips[0], v.cfg.vips[0].backends[1])].weight = 5;
  json r = call(v, "status");
  EXPECT_EQ(r["ok"], true);
  EXPECT_EQ(r["version"], L4LB_VERSION);
  EXPECT_EQ(r["pid"], int64_t(getpid()));
  EXPECT_EQ(r["uptime_s"], 12.5);
  EXPECT_EQ(r["started_unix"], 1700000000);
  EXPECT_EQ(r["workers"], 1);
  EXPECT_EQ(r["vips"], 2);
  EXPECT_EQ(r["ports"], (json::array({{{"name", "lan"}, {"device", "net_null0"}, {"mtu", 1500}, {"port_id", 0},
                                       {"mac", "02:00:00:00:00:01"}}})));
  // The file cannot be read: its on-disk digest is "" and differs from the loaded one.
  EXPECT_EQ(r["config"], (json{{"path", "/nonexistent/l4lb.toml"}, {"sha256", "abc"}, {"on_disk_sha256", ""},
                               {"changed_on_disk", true}}));
  EXPECT_EQ(r["generation"], v.snap->generation);
  EXPECT_EQ(r["reloads"], (json{{"ok", 2}, {"failed", 1}}));
  EXPECT_EQ(r["log_level"], "info");
  EXPECT_EQ(r["metrics"], "127.0.0.1:9100");
  EXPECT_EQ(r["drift"], (json::array({{{"vip", "web"}, {"backend", "198.18.0.11:0"}, {"what", "drained"},
                                       {"file", "not drained"}, {"running", "drained"}},
                                      {{"vip", "web"}, {"backend", "198.18.0.12:0"}, {"what", "weight"},
                                       {"file", 2}, {"running", 5}}})));
  r["pid"] = 4242;
  r["version"] = "9.9";
  EXPECT_EQ(ctl::renderReply("status", r, kNow),
            "l4lb 9.9  pid 4242  uptime 12s  workers 1  VIPs 2\n"
            "config /nonexistent/l4lb.toml sha256 abc  (file changed on disk since loaded: l4lbctl diff / reload)\n"
            "generation " + std::to_string(v.snap->generation) + "  reloads ok 2 failed 1  log info  metrics 127.0.0.1:9100\n"
            "ports:\n"
            "  NAME  PORT_ID  MAC                MTU   DEVICE\n"
            "  lan   0        02:00:00:00:00:01  1500  net_null0\n"
            "drift (changed by l4lbctl, not in the config file):\n"
            "  VIP  BACKEND        WHAT     FILE         RUNNING\n"
            "  web  198.18.0.11:0  drained  not drained  drained\n"
            "  web  198.18.0.12:0  weight   2            5\n");
}

TEST(StatusView, EveryVipAndBackendWithStateHealthRatesAndDrift) {
  FakeView v;
  const uint32_t b0 = v.idOf(0, 0), b1 = v.idOf(0, 1);
  v.worker(0).backend_ctrs[b0] = {100, 6400, 7, 2};
  v.worker(0).counters.drops[size_t(Drop::NoVip)] = 3;
  v.facts.backend_rates[b0] = {50, 3200, 2};
  v.facts.config_sha256 = "abc";
  v.dyn.backends[backendIdentity(v.cfg.vips[0], v.cfg.vips[0].backends[1])].weight = 5;
  HealthChecker::Status st;
  st.state = Health::Up;
  st.last_reason = "status 200";
  v.health[backendIdentity(v.cfg.vips[0], v.cfg.vips[0].backends[0])] = st;
  const StatusPage p = statusPage(v);
  ASSERT_EQ(p.vips.size(), 2u);
  EXPECT_EQ(p.vips[0].name, "web");
  EXPECT_EQ(p.vips[0].address, "198.18.0.10:80");
  EXPECT_EQ(p.vips[1].scheduler, "round_robin");
  ASSERT_EQ(p.vips[0].backends.size(), 2u);
  const StatusBackend& a = p.vips[0].backends[0];
  EXPECT_EQ(a.backend, "198.18.0.11:0");
  EXPECT_EQ(a.state, "healthy");
  EXPECT_EQ(a.health, "up: status 200");
  EXPECT_EQ(a.packets_per_s, 50);
  EXPECT_EQ(a.bytes_per_s, 3200);
  EXPECT_EQ(a.new_flows_per_s, 2);
  EXPECT_EQ(a.packets, 100u);
  EXPECT_EQ(a.active_flows, 5u);
  EXPECT_EQ(p.vips[0].backends[1].health, "not checked");
  EXPECT_EQ(p.vips[0].backends[1].packets_per_s, 0);
  (void)b1;
  EXPECT_EQ(p.config_sha256, "abc");
  EXPECT_EQ(p.drift, (std::vector<std::string>{"web 198.18.0.12:0: weight (file: 2, running: 5)"}));
  bool found = false;
  for (const auto& [reason, n] : p.drops) found |= reason == "no_vip" && n == 3;
  EXPECT_TRUE(found);
  EXPECT_EQ(p.drops.size(), size_t(Drop::Count) - 1);
  EXPECT_EQ(p.worker_busy, (std::vector<double>{0.25}));
}

TEST(ApiStatus, FileOnDiskMatchesAndNoDrift) {
  char tmpl[] = "/tmp/l4lb_api_test_XXXXXX";
  const int fd = mkstemp(tmpl);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, "x = 1\n", 6), 6);
  close(fd);
  FakeView v;
  v.path = tmpl;
  v.facts.config_sha256 = sha256Hex("x = 1\n");
  json r = call(v, "status");
  unlink(tmpl);
  EXPECT_EQ(r["config"]["on_disk_sha256"], sha256Hex("x = 1\n"));
  EXPECT_EQ(r["config"]["changed_on_disk"], false);
  EXPECT_EQ(r["metrics"], "");
  EXPECT_EQ(r["drift"], json::array());
  const std::string text = ctl::renderReply("status", r, kNow);
  EXPECT_NE(text.find("log info  metrics off\n"), std::string::npos) << text;
  EXPECT_NE(text.find("drift: none (running state matches the config file)\n"), std::string::npos) << text;
  EXPECT_EQ(text.find("changed on disk"), std::string::npos) << text;
}

TEST(ApiVips, ListsEveryVipWithHealthyCount) {
  FakeView v;
  v.dyn.backends[backendIdentity(v.cfg.vips[0], v.cfg.vips[0].backends[1])].down = true;
  ASSERT_TRUE(v.rebuild("test"));
  json r = call(v, "vips");
  EXPECT_EQ(r, (json{{"ok", true},
                     {"vips", json::array({{{"name", "web"}, {"address", "198.18.0.10"}, {"port", 80}, {"protocol", "tcp"},
                                            {"scheduler", "maglev"}, {"forwarding", "dsr"}, {"maglev_table_size", 7},
                                            {"backends", 2}, {"healthy", 1}},
                                           {{"name", "dns"}, {"address", "198.18.0.20"}, {"port", 53}, {"protocol", "udp"},
                                            {"scheduler", "round_robin"}, {"forwarding", "dsr"},
                                            {"maglev_table_size", 65537}, {"backends", 1}, {"healthy", 1}}})}}));
  EXPECT_EQ(ctl::renderReply("vips", r, kNow),
            "NAME  ADDRESS      PORT  PROTO  SCHEDULER    FORWARDING  HEALTHY\n"
            "web   198.18.0.10  80    tcp    maglev       dsr         1/2\n"
            "dns   198.18.0.20  53    udp    round_robin  dsr         1/1\n");
}

TEST(ApiBackends, StateWeightHealthCountersAndLastTransition) {
  FakeView v(kToml, 2);
  const uint32_t id11 = v.idOf(0, 0), id12 = v.idOf(0, 1);
  ASSERT_NE(id11, kNoBackend);
  // Counters summed over both workers.
  v.worker(0).backend_ctrs[id11] = {10, 1000, 3, 1};
  v.worker(1).backend_ctrs[id11] = {5, 500, 2, 0};
  v.worker(1).backend_ctrs[id12] = {7, 700, 1, 1};
  const std::string k11 = backendIdentity(v.cfg.vips[0], v.cfg.vips[0].backends[0]);
  const std::string k12 = backendIdentity(v.cfg.vips[0], v.cfg.vips[0].backends[1]);
  v.dyn.backends[k11].drained = true;
  v.dyn.backends[k12].weight = 9;
  ASSERT_TRUE(v.rebuild("test"));
  HealthChecker::Status st{Health::Up, 3, 0, 17, "ok", 1.5, 0, "3 successes"};
  v.health[k11] = st;
  v.transitions[k11] = {kNow - 30, "healthy", "draining", "drained by l4lbctl"};
  json r = call(v, "backends", {"web"});
  ASSERT_EQ(r["ok"], true) << r;
  ASSERT_EQ(r["backends"].size(), 2u);
  EXPECT_EQ(r["backends"][0], (json{{"vip", "web"}, {"backend", "198.18.0.11:0"}, {"address", "198.18.0.11"},
                                    {"port", 0}, {"id", id11}, {"state", "draining"}, {"weight", 1},
                                    {"file_weight", 1}, {"drained_by_command", true}, {"health_down", false},
                                    {"packets", 15}, {"bytes", 1500}, {"flows_new", 5}, {"active_flows", 4},
                                    {"health", {{"state", "up"}, {"checks", 17}, {"last_reason", "ok"},
                                                {"last_latency_ms", 1.5}, {"last_change_reason", "3 successes"}}},
                                    {"last_transition", {{"unix_time", kNow - 30}, {"from", "healthy"},
                                                         {"to", "draining"}, {"why", "drained by l4lbctl"}}}}));
  EXPECT_EQ(r["backends"][1], (json{{"vip", "web"}, {"backend", "198.18.0.12:0"}, {"address", "198.18.0.12"},
                                    {"port", 0}, {"id", id12}, {"state", "healthy"}, {"weight", 9},
                                    {"file_weight", 2}, {"drained_by_command", false}, {"health_down", false},
                                    {"packets", 7}, {"bytes", 700}, {"flows_new", 1}, {"active_flows", 0},
                                    {"health", {{"state", "not checked"}}}, {"last_transition", nullptr}}));
  EXPECT_EQ(ctl::renderReply("backends", r, kNow),
            "VIP  BACKEND        STATE     WEIGHT      HEALTH       ACTIVE_FLOWS  PACKETS  LAST_CHANGE\n"
            "web  198.18.0.11:0  draining  1           up (ok)      4             15       healthy->draining 30s ago: drained by l4lbctl\n"
            "web  198.18.0.12:0  healthy   9 (file 2)  not checked  0             7        -\n");
  // No argument: every VIP; by address:port or address too.
  EXPECT_EQ(call(v, "backends")["backends"].size(), 3u);
  EXPECT_EQ(call(v, "backends", {"198.18.0.20:53"})["backends"][0]["backend"], "198.18.0.21:0");
  EXPECT_EQ(call(v, "backends", {"198.18.0.20"})["backends"].size(), 1u);
}

TEST(ApiBackends, UnknownVipIsRefused) {
  FakeView v;
  EXPECT_EQ(call(v, "backends", {"mail"}), (json{{"ok", false}, {"error", "no VIP named 'mail' (see l4lbctl vips)"}}));
}

TEST(ApiStats, SumsWorkersPerVipBackendPortAndDrop) {
  FakeView v(kToml, 2);
  const uint32_t id11 = v.idOf(0, 0), id12 = v.idOf(0, 1), id21 = v.idOf(1, 0);
  v.worker(0).backend_ctrs[id11] = {4, 400, 4, 1};
  v.worker(1).backend_ctrs[id12] = {6, 600, 2, 0};
  v.worker(1).backend_ctrs[id21] = {1, 100, 1, 1};
  v.worker(0).counters.add(Ctr::RxPackets, 11);
  v.worker(1).counters.add(Ctr::RxPackets, 9);
  v.worker(0).counters.add(Ctr::TxPackets, 10);
  v.worker(1).counters.drop(Drop::NoVip);
  v.worker(1).counters.drop(Drop::NoVip);
  v.worker(0).counters.drop(Drop::TooShort);
  v.worker(0).port_ctrs[0] = {11, 1100, 10, 1000};
  v.worker(1).port_ctrs[0] = {9, 900, 1, 100};
  v.worker(0).load.loops = 77;
  json r = call(v, "stats");
  ASSERT_EQ(r["ok"], true) << r;
  EXPECT_EQ(r["vips"], (json::array({{{"vip", "web"}, {"packets", 10}, {"bytes", 1000}, {"flows_new", 6}, {"active_flows", 5}},
                                     {{"vip", "dns"}, {"packets", 1}, {"bytes", 100}, {"flows_new", 1}, {"active_flows", 0}}})));
  EXPECT_EQ(r["backends"][0], (json{{"vip", "web"}, {"backend", "198.18.0.11:0"}, {"state", "healthy"}, {"packets", 4},
                                    {"bytes", 400}, {"flows_new", 4}, {"active_flows", 3}}));
  EXPECT_EQ(r["backends"][1]["packets"], 6);
  EXPECT_EQ(r["backends"][2]["packets"], 1);
  EXPECT_EQ(r["ports"], (json::array({{{"port", "lan"}, {"rx_packets", 20}, {"rx_bytes", 2000}, {"tx_packets", 11},
                                       {"tx_bytes", 1100}}})));
  EXPECT_EQ(r["drops"]["no_vip"], 2);
  EXPECT_EQ(r["drops"]["too_short"], 1);
  EXPECT_EQ(r["drops"]["no_backend"], 0);
  EXPECT_FALSE(r["drops"].contains("ok"));
  ASSERT_EQ(r["workers"].size(), 2u);
  EXPECT_EQ(r["workers"][0]["counters"]["rx_packets"], 11);
  EXPECT_EQ(r["workers"][1]["drops"]["no_vip"], 2);
  EXPECT_EQ(r["workers"][0]["loops"], 77);
  EXPECT_EQ(r["workers"][0]["capacity"], 1024);
  EXPECT_EQ(r["workers"][0]["busy_ratio"], 0.25);
  EXPECT_EQ(r["workers"][0]["occupancy"], 0.0);
  EXPECT_EQ(r["workers"][1]["worker"], 1);
  EXPECT_EQ(r["new_flows_per_s"], 3.5);
  EXPECT_EQ(ctl::renderReply("stats", r, kNow),
            "vips:\n"
            "  VIP  PACKETS  BYTES  NEW_FLOWS  ACTIVE_FLOWS\n"
            "  web  10       1000   6          5\n"
            "  dns  1        100    1          0\n"
            "backends:\n"
            "  VIP  BACKEND        STATE    PACKETS  BYTES  NEW_FLOWS  ACTIVE_FLOWS\n"
            "  web  198.18.0.11:0  healthy  4        400    4          3\n"
            "  web  198.18.0.12:0  healthy  6        600    2          2\n"
            "  dns  198.18.0.21:0  healthy  1        100    1          0\n"
            "workers:\n"
            "  WORKER  RX  TX  DROPS  FLOWS4  FLOWS6  EMBRYONIC  CONFIRMED  OCCUPANCY  BUSY\n"
            "  0       11  10  1      0       0       0          0          0.0000%    25.0%\n"
            "  1       9   0   2      0       0       0          0          0.0000%    25.0%\n"
            "ports:\n"
            "  PORT  RX_PACKETS  RX_BYTES  TX_PACKETS  TX_BYTES\n"
            "  lan   20          2000      11          1100\n"
            "drops:\n"
            "  REASON     PACKETS\n"
            "  no_vip     2\n"
            "  too_short  1\n"
            "new flows/s: 3.5\n");
}

TEST(ApiStats, FullNatPoolsPerSourceAddress) {
  FakeView v(kFullNatToml, 2);
  ASSERT_EQ(v.snap->snat_addrs.size(), 2u);
  // Each worker's share as it last published it (WorkerState::snat_ports).
  v.worker(0).snat_ports = {{3, 496, 1}, {0, 500, 0}};
  v.worker(1).snat_ports = {{2, 498, 0}, {1, 497, 2}};
  json r = call(v, "stats");
  ASSERT_EQ(r["ok"], true) << r;
  EXPECT_EQ(r["snat"], (json::array({{{"address", "198.18.0.2"}, {"in_use", 5}, {"free", 994}, {"quiet", 1}},
                                     {{"address", "198.18.0.3"}, {"in_use", 1}, {"free", 997}, {"quiet", 2}}})));
  const std::string text = ctl::renderReply("stats", r, kNow);
  EXPECT_NE(text.find("new flows/s: 3.5\n"
                      "snat ports:\n"
                      "  ADDRESS     IN_USE  FREE  QUIET\n"
                      "  198.18.0.2  5       994   1\n"
                      "  198.18.0.3  1       997   2\n"),
            std::string::npos)
      << text;
  // /metrics and the status page read the same sums.
  const Observation o = observe(v);
  ASSERT_EQ(o.snat.size(), 2u);
  EXPECT_EQ(o.snat[1].address, "198.18.0.3");
  EXPECT_EQ(o.snat[1].c.quiet, 2u);
  const StatusPage p = statusPage(v);
  ASSERT_EQ(p.snat.size(), 2u);
  EXPECT_EQ(p.snat[0].address, "198.18.0.2");
  EXPECT_EQ(p.snat[0].in_use, 5u);
  EXPECT_EQ(p.snat[0].free, 994u);
  // Without fullnat VIPs: an empty list, and no section in the text.
  FakeView plain(kToml, 1);
  json q = call(plain, "stats");
  EXPECT_EQ(q["snat"], json::array());
  EXPECT_EQ(ctl::renderReply("stats", q, kNow).find("snat"), std::string::npos);
}

// /metrics renders observe(): the same sums.
TEST(ApiObserve, BackendsWorkersPortsAndControlCounts) {
  FakeView v(kToml, 2);
  v.worker(0).backend_ctrs[v.idOf(0, 1)] = {3, 30, 1, 0};
  v.worker(1).backend_ctrs[v.idOf(0, 1)] = {4, 40, 1, 1};
  v.worker(1).port_ctrs[0] = {2, 20, 3, 30};
  v.facts.stats.publishes = 5;
  v.facts.stats.health_transitions = 6;
  const Observation o = observe(v);
  ASSERT_EQ(o.backends.size(), 3u);
  EXPECT_EQ(o.backends[1].backend, "198.18.0.12:0");
  EXPECT_EQ(o.backends[1].key, backendIdentity(v.cfg.vips[0], v.cfg.vips[0].backends[1]));
  EXPECT_EQ(o.backends[1].weight, 2u);
  EXPECT_EQ(o.backends[1].state, "healthy");
  EXPECT_EQ(o.backends[1].c.packets, 7u);
  EXPECT_EQ(o.backends[1].c.flows_ended, 1u);
  EXPECT_EQ(o.backends[0].c.packets, 0u);
  ASSERT_EQ(o.ports.size(), 1u);
  EXPECT_EQ(o.ports[0].name, "lan");
  EXPECT_EQ(o.ports[0].c.tx_bytes, 30u);
  ASSERT_EQ(o.workers.size(), 2u);
  EXPECT_EQ(o.workers[1].capacity, 1024u);
  EXPECT_EQ(o.publishes, 5u);
  EXPECT_EQ(o.health_transitions, 6u);
  EXPECT_EQ(o.uptime_s, 12.5);
}

TEST(ApiList, EachVipThenItsBackendsWithRates) {
  FakeView v(kToml, 2);
  const uint32_t id11 = v.idOf(0, 0), id12 = v.idOf(0, 1), id21 = v.idOf(1, 0);
  v.worker(0).backend_ctrs[id11] = {10, 1000, 3, 1};  // 2 active
  v.worker(1).backend_ctrs[id12] = {7, 700, 1, 1};    // 0 active
  v.dyn.backends[backendIdentity(v.cfg.vips[0], v.cfg.vips[0].backends[1])].weight = 9;
  ASSERT_TRUE(v.rebuild("test"));
  v.facts.backend_rates[id11] = {120.5, 9000, 4};
  v.facts.backend_rates[id21] = {3, 300, 1};
  json r = call(v, "list");
  ASSERT_EQ(r["ok"], true) << r;
  EXPECT_EQ(r["vips"][0], (json{{"name", "web"}, {"address", "198.18.0.10:80"}, {"protocol", "tcp"},
                                {"scheduler", "maglev"}, {"forwarding", "dsr"}, {"active_flows", 2},
                                {"packets_per_s", 120.5}, {"new_flows_per_s", 4.0},
                                {"backends", json::array({{{"backend", "198.18.0.11:0"}, {"weight", 1},
                                                           {"state", "healthy"}, {"active_flows", 2},
                                                           {"packets_per_s", 120.5}, {"new_flows_per_s", 4.0}},
                                                          {{"backend", "198.18.0.12:0"}, {"weight", 9},
                                                           {"state", "healthy"}, {"active_flows", 0},
                                                           {"packets_per_s", 0.0}, {"new_flows_per_s", 0.0}}})}}));
  EXPECT_EQ(ctl::renderReply("list", r, kNow),
            "VIP / BACKEND           STATE            WEIGHT  ACTIVE_FLOWS  PACKETS/S  NEW_FLOWS/S\n"
            "tcp 198.18.0.10:80 web  maglev dsr               2             120.50     4.00\n"
            "  -> 198.18.0.11:0      healthy          1       2             120.50     4.00\n"
            "  -> 198.18.0.12:0      healthy          9       0             0.00       0.00\n"
            "udp 198.18.0.20:53 dns  round_robin dsr          0             3.00       1.00\n"
            "  -> 198.18.0.21:0      healthy          1       0             3.00       1.00\n");
  EXPECT_EQ(call(v, "list", {"dns"})["vips"].size(), 1u);
  EXPECT_EQ(call(v, "list", {"mail"}), (json{{"ok", false}, {"error", "no VIP named 'mail' (see l4lbctl vips)"}}));
}

TEST(ApiConfig, TheTextTheRunningConfigWasLoadedFrom) {
  FakeView v;
  json r = call(v, "config");
  ASSERT_EQ(r["ok"], true) << r;
  EXPECT_EQ(r["text"], kToml);
  EXPECT_EQ(r["sha256"], sha256Hex(kToml));
  EXPECT_EQ(r["drift"], json::array());
  EXPECT_EQ(ctl::renderReply("config", r, kNow), kToml);
  // It loads to the same configuration.
  ConfigResult again = loadConfigString(ctl::renderReply("config", r, kNow), "t.toml");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again.config->vips.size(), v.cfg.vips.size());
  // What l4lbctl changed since follows as comments, which a loader passes over.
  v.dyn.backends[backendIdentity(v.cfg.vips[0], v.cfg.vips[0].backends[1])].weight = 5;
  const std::string text = ctl::renderReply("config", call(v, "config"), kNow);
  EXPECT_EQ(text, kToml + "# Changed by l4lbctl since it was loaded (not in the text above):\n"
                          "#   web 198.18.0.12:0: weight 5 (file: 2)\n");
  EXPECT_TRUE(loadConfigString(text, "t.toml").ok());
}

}  // namespace
}  // namespace l4lb::control::api::test
