// drain, undrain, weight and reload over the in-memory view: what changes in DynamicState, the
// rebuild that publishes it, the replies, l4lbctl's text, and the refusals.
#include "ctl/render.h"
#include "fake_view.h"

namespace l4lb::control::api::test {
namespace {

using nlohmann::json;

std::string key(const FakeView& v, size_t vip, size_t b) {
  return backendIdentity(v.cfg.vips[vip], v.cfg.vips[vip].backends[b]);
}

TEST(ApiDrain, DrainsRebuildsAndReportsOnce) {
  FakeView v;
  json r = call(v, "drain", {"198.18.0.11"});
  EXPECT_EQ(r, (json{{"ok", true}, {"changed", json::array({{{"vip", "web"}, {"backend", "198.18.0.11:0"}}})}}));
  EXPECT_TRUE(v.dyn.backends.at(key(v, 0, 0)).drained);
  EXPECT_EQ(v.rebuilds, (std::vector<std::string>{"drained by l4lbctl"}));
  EXPECT_EQ(v.snap->backend(v.idOf(0, 0))->state, BackendState::Draining);
  EXPECT_EQ(ctl::renderReply("drain", r, 0), "drained 198.18.0.11:0 in web\n");
  // Again: nothing changes, no rebuild.
  r = call(v, "drain", {"web/198.18.0.11:0"});
  EXPECT_EQ(r, (json{{"ok", true}, {"changed", json::array()}}));
  EXPECT_EQ(v.rebuilds.size(), 1u);
  EXPECT_EQ(ctl::renderReply("drain", r, 0), "no change\n");
  r = call(v, "undrain", {"198.18.0.11:0"});
  EXPECT_EQ(r["changed"], (json::array({{{"vip", "web"}, {"backend", "198.18.0.11:0"}}})));
  EXPECT_FALSE(v.dyn.backends.at(key(v, 0, 0)).drained);
  EXPECT_EQ(v.rebuilds.back(), "undrained by l4lbctl");
  EXPECT_EQ(v.snap->backend(v.idOf(0, 0))->state, BackendState::Healthy);
  EXPECT_EQ(ctl::renderReply("undrain", r, 0), "undrained 198.18.0.11:0 in web\n");
}

TEST(ApiDrain, Refusals) {
  FakeView v;
  EXPECT_EQ(call(v, "drain", {"198.18.0.99"}),
            (json{{"ok", false}, {"error", "no backend 198.18.0.99 in the running configuration (see l4lbctl backends)"}}));
  EXPECT_EQ(call(v, "drain", {"198.18.0.11:8080"})["error"],
            "no backend 198.18.0.11:8080 in the running configuration (see l4lbctl backends)");
  EXPECT_EQ(call(v, "drain", {"mail/198.18.0.11"}), (json{{"ok", false}, {"error", "no VIP named 'mail' (see l4lbctl vips)"}}));
  EXPECT_EQ(call(v, "undrain", {"nonsense"}),
            (json{{"ok", false},
                  {"error", "bad backend 'nonsense': expected ADDR, ADDR:PORT or [ADDR6]:PORT (optionally VIP/...)"}}));
  // The backend of another VIP is not this VIP's.
  EXPECT_EQ(call(v, "drain", {"dns/198.18.0.11"})["error"],
            "no backend dns/198.18.0.11 in the running configuration (see l4lbctl backends)");
  EXPECT_TRUE(v.rebuilds.empty());
  EXPECT_TRUE(v.dyn.backends.empty());
}

TEST(ApiWeight, SetsOverridesAndTheFileWeightEndsIt) {
  FakeView v;
  json r = call(v, "weight", {"198.18.0.12", "7"});
  EXPECT_EQ(r, (json{{"ok", true},
                     {"changed", json::array({{{"vip", "web"}, {"backend", "198.18.0.12:0"}, {"from", 2}, {"to", 7}}})}}));
  EXPECT_EQ(v.dyn.backends.at(key(v, 0, 1)).weight, 7u);
  EXPECT_EQ(v.snap->backend(v.idOf(0, 1))->weight, 7u);
  EXPECT_EQ(v.rebuilds, (std::vector<std::string>{"weight set by l4lbctl"}));
  EXPECT_EQ(ctl::renderReply("weight", r, 0), "weight 198.18.0.12:0 in web (2 -> 7)\n");
  // Same weight: no change. The file's weight: the override ends.
  EXPECT_EQ(call(v, "weight", {"198.18.0.12", "7"})["changed"], json::array());
  EXPECT_EQ(v.rebuilds.size(), 1u);
  r = call(v, "weight", {"198.18.0.12", "2"});
  EXPECT_EQ(r["changed"][0]["from"], 7);
  EXPECT_EQ(r["changed"][0]["to"], 2);
  EXPECT_FALSE(v.dyn.backends.at(key(v, 0, 1)).weight.has_value());
  EXPECT_EQ(call(v, "weight", {"198.18.0.11", "0"})["changed"][0]["to"], 0);
  EXPECT_EQ(call(v, "weight", {"198.18.0.11", "65535"})["changed"][0]["to"], 65535);
}

TEST(ApiWeight, BadWeightsAreRefused) {
  FakeView v;
  for (const char* w : {"", "-1", "65536", "100000", "1x", "0x10", "999999"})
    EXPECT_EQ(call(v, "weight", {"198.18.0.11", w}),
              (json{{"ok", false}, {"error", "bad weight '" + std::string(w) + "': must be 0..65535"}}))
        << w;
  EXPECT_EQ(call(v, "weight", {"198.18.0.99", "3"})["error"],
            "no backend 198.18.0.99 in the running configuration (see l4lbctl backends)");
  EXPECT_TRUE(v.rebuilds.empty());
}

TEST(ApiReload, PassesTheOutcomeAndMessages) {
  FakeView v;
  v.reload_outcome = {true, {"reload applied: vips +0 -0 ~0, backends +0 -0 ~0"}};
  json r = call(v, "reload");
  EXPECT_EQ(r, (json{{"ok", true}, {"messages", {"reload applied: vips +0 -0 ~0, backends +0 -0 ~0"}}}));
  EXPECT_EQ(ctl::renderReply("reload", r, 0), "reload applied: vips +0 -0 ~0, backends +0 -0 ~0\n");
  v.reload_outcome = {false, {"reload refused: t.toml: eal.main_core changed (0 -> 1): needs a restart",
                              "reload refused: the running configuration is unchanged"}};
  r = call(v, "reload");
  EXPECT_EQ(r, (json{{"ok", false},
                     {"error", "reload failed: the running configuration is unchanged"},
                     {"messages", {"reload refused: t.toml: eal.main_core changed (0 -> 1): needs a restart",
                                   "reload refused: the running configuration is unchanged"}}}));
  EXPECT_EQ(ctl::renderError("reload", r),
            "l4lbctl: reload: reload failed: the running configuration is unchanged\n"
            "  reload refused: t.toml: eal.main_core changed (0 -> 1): needs a restart\n"
            "  reload refused: the running configuration is unchanged\n");
  EXPECT_EQ(v.reloads, 2);
}

}  // namespace
}  // namespace l4lb::control::api::test
