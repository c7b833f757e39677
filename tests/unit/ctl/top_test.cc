// l4lbctl top: rates from two `stats` replies and the frame drawn from them, exact numbers and text.
#include "ctl/top.h"

#include <gtest/gtest.h>

#include "ctl/render.h"

namespace l4lb::ctl {
namespace {

using nlohmann::json;

json worker(uint64_t id, uint64_t rx, uint64_t tx, double busy) {
  return {{"worker", id}, {"counters", {{"rx_packets", rx}, {"tx_packets", tx}}}, {"busy_ratio", busy}};
}

json backend(const char* vip, const char* b, const char* state, uint64_t pk, uint64_t by, uint64_t fn, uint64_t af) {
  return {{"vip", vip}, {"backend", b}, {"state", state}, {"packets", pk}, {"bytes", by}, {"flows_new", fn}, {"active_flows", af}};
}

json vip(const char* name, uint64_t pk, uint64_t by, uint64_t fn, uint64_t af) {
  return {{"vip", name}, {"packets", pk}, {"bytes", by}, {"flows_new", fn}, {"active_flows", af}};
}

// Two samples 2 s apart: web's two backends, one idle; drops no_vip +10 and too_short unchanged.
json before() {
  return {{"vips", {vip("web", 1000, 64000, 10, 5)}},
          {"backends", {backend("web", "198.18.2.11:0", "healthy", 600, 38400, 6, 3),
                        backend("web", "198.18.2.12:0", "healthy", 400, 25600, 4, 2)}},
          {"workers", {worker(0, 2000, 1000, 0.25)}},
          {"drops", {{"too_short", 7}, {"no_vip", 10}, {"no_backend", 0}}}};
}

json after() {
  return {{"vips", {vip("web", 3000, 192000, 30, 25)}},
          {"backends", {backend("web", "198.18.2.11:0", "healthy", 2600, 166400, 26, 23),
                        backend("web", "198.18.2.12:0", "drained", 400, 25600, 4, 2)}},
          {"workers", {worker(0, 6010, 3000, 0.5)}},
          {"drops", {{"too_short", 7}, {"no_vip", 20}, {"no_backend", 0}}}};
}

json health() {
  return {{"backends", {{{"vip", "web"}, {"backend", "198.18.2.11:0"}, {"health", {{"state", "healthy"}}}},
                        {{"vip", "web"}, {"backend", "198.18.2.12:0"}, {"health", {{"state", "not checked"}}}}}}};
}

TEST(CtlTop, RatesAreDifferencesOverTheInterval) {
  const TopFrame f = computeTop(before(), after(), 2.0, health());
  EXPECT_EQ(f.seconds, 2.0);
  ASSERT_EQ(f.vips.size(), 1u);
  EXPECT_EQ(f.vips[0].vip, "web");
  EXPECT_EQ(f.vips[0].rates.packets_per_s, 1000.0);
  EXPECT_EQ(f.vips[0].rates.bytes_per_s, 64000.0);
  EXPECT_EQ(f.vips[0].rates.flows_new_per_s, 10.0);
  EXPECT_EQ(f.vips[0].rates.active_flows, 25u);
  ASSERT_EQ(f.backends.size(), 2u);
  EXPECT_EQ(f.backends[0].backend, "198.18.2.11:0");
  EXPECT_EQ(f.backends[0].state, "healthy");
  EXPECT_EQ(f.backends[0].health, "healthy");
  EXPECT_EQ(f.backends[0].rates.packets_per_s, 1000.0);
  EXPECT_EQ(f.backends[0].rates.bytes_per_s, 64000.0);
  EXPECT_EQ(f.backends[0].rates.flows_new_per_s, 10.0);
  EXPECT_EQ(f.backends[0].rates.active_flows, 23u);
  EXPECT_EQ(f.backends[1].state, "drained");
  EXPECT_EQ(f.backends[1].health, "not checked");
  EXPECT_EQ(f.backends[1].rates.packets_per_s, 0.0);
  EXPECT_EQ(f.backends[1].rates.active_flows, 2u);
  // Only the non-zero drop rates, in the reply's (alphabetical, nlohmann's map) order.
  ASSERT_EQ(f.drops_per_s.size(), 1u);
  EXPECT_EQ(f.drops_per_s[0], (std::pair<std::string, double>{"no_vip", 5.0}));
  ASSERT_EQ(f.workers.size(), 1u);
  EXPECT_EQ(f.workers[0].busy_ratio, 0.5);
  EXPECT_EQ(f.workers[0].rx_packets_per_s, 2005.0);
  EXPECT_EQ(f.workers[0].tx_packets_per_s, 1000.0);
}

TEST(CtlTop, CounterThatWentBackwardsGivesZeroAndNewEntriesCountFromZero) {
  json b = before(), a = after();
  a["vips"][0]["packets"] = 10;  // the daemon restarted between the samples
  a["backends"].push_back(backend("web", "198.18.2.13:0", "healthy", 50, 3200, 1, 1));  // added by a reload
  const TopFrame f = computeTop(b, a, 0.5);
  EXPECT_EQ(f.vips[0].rates.packets_per_s, 0.0);
  EXPECT_EQ(f.vips[0].rates.bytes_per_s, 256000.0);
  ASSERT_EQ(f.backends.size(), 3u);
  EXPECT_EQ(f.backends[2].rates.packets_per_s, 100.0);
  EXPECT_EQ(f.backends[2].rates.bytes_per_s, 6400.0);
  EXPECT_EQ(f.backends[2].health, "-");  // no backends reply given
  EXPECT_EQ(computeTop(b, a, 0).vips[0].rates.bytes_per_s, 0.0);
}

TEST(CtlTop, ShortRates) {
  EXPECT_EQ(shortRate(0), "0");
  EXPECT_EQ(shortRate(0.5), "0.5");
  EXPECT_EQ(shortRate(999.94), "999.9");
  EXPECT_EQ(shortRate(64000), "64.0k");
  EXPECT_EQ(shortRate(3.45e6), "3.5M");
  EXPECT_EQ(shortRate(1.2e9), "1.2G");
}

TEST(CtlTop, FrameText) {
  const TopFrame f = computeTop(before(), after(), 2.0, health());
  EXPECT_EQ(renderTop(f, 0),
            "l4lb top: rates over 2.00s\n"
            "VIP  PKTS/S  BYTES/S  NEW_FLOWS/S  ACTIVE_FLOWS\n"
            "web  1.0k    64.0k    10.0         25\n"
            "\n"
            "VIP  BACKEND        STATE    HEALTH       PKTS/S  BYTES/S  NEW_FLOWS/S  ACTIVE_FLOWS\n"
            "web  198.18.2.11:0  healthy  healthy      1.0k    64.0k    10.0         23\n"
            "web  198.18.2.12:0  drained  not checked  0       0        0            2\n"
            "\n"
            "WORKER  BUSY   RX_PKTS/S  TX_PKTS/S\n"
            "0       50.0%  2.0k       1.0k\n"
            "\n"
            "DROP_REASON  PKTS/S\n"
            "no_vip       5.0\n");
}

TEST(CtlTop, FrameCutToWidthAndNoDrops) {
  json a = after();
  a["drops"]["no_vip"] = 10;
  const std::string text = renderTop(computeTop(before(), a, 1.0, health()), 12);
  EXPECT_EQ(text,
            "l4lb top: ra\n"
            "VIP  PKTS/S \n"
            "web  2.0k   \n"
            "\n"
            "VIP  BACKEND\n"
            "web  198.18.\n"
            "web  198.18.\n"
            "\n"
            "WORKER  BUSY\n"
            "0       50.0\n"
            "\n"
            "drops/s: non\n");
}

TEST(CtlTop, Json) {
  const json j = topJson(computeTop(before(), after(), 2.0, health()));
  EXPECT_EQ(j, json::parse(R"({
    "interval_s": 2.0,
    "vips": [{"vip": "web", "packets_per_s": 1000.0, "bytes_per_s": 64000.0, "flows_new_per_s": 10.0, "active_flows": 25}],
    "backends": [
      {"vip": "web", "backend": "198.18.2.11:0", "state": "healthy", "health": "healthy",
       "packets_per_s": 1000.0, "bytes_per_s": 64000.0, "flows_new_per_s": 10.0, "active_flows": 23},
      {"vip": "web", "backend": "198.18.2.12:0", "state": "drained", "health": "not checked",
       "packets_per_s": 0.0, "bytes_per_s": 0.0, "flows_new_per_s": 0.0, "active_flows": 2}],
    "workers": [{"worker": 0, "busy_ratio": 0.5, "rx_packets_per_s": 2005.0, "tx_packets_per_s": 1000.0}],
    "drops_per_s": {"no_vip": 5.0}})"));
}

TEST(CtlTop, ListedInHelpAndCommandNames) {
  EXPECT_NE(usageText("/s").find("  top [--once] [--interval S]  live rates per VIP, backend and worker, drops/s (from stats)\n"),
            std::string::npos);
  EXPECT_EQ(commandNames(), (std::vector<std::string>{"status", "vips", "backends", "list", "stats", "drain", "undrain",
                                                      "weight", "reload", "explain", "diff", "config", "cluster",
                                                      "drain-balancer", "undrain-balancer", "top"}));
  std::string err;
  EXPECT_EQ(checkCommand("top", 0, err), kExitOk);
  EXPECT_EQ(checkCommand("top", 3, err), kExitOk);
}

}  // namespace
}  // namespace l4lb::ctl
