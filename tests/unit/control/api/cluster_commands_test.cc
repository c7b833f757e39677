// cluster, drain-balancer, undrain-balancer (api/cluster_commands.cc) over the in-memory view,
// with and without [bgp], their /metrics lines, and l4lbctl's rendering of `cluster`.
#include <unistd.h>

#include <filesystem>

#include "control/bgp/announcer.h"
#include "ctl/render.h"
#include "fake_view.h"

namespace l4lb::control::api::test {
namespace {

using nlohmann::json;

// A FakeView whose [bgp] points at a BIRD socket that does not exist: every exchange fails,
// which is what the commands must report rather than hide.
class BgpView : public FakeView {
 public:
  BgpView() {
    char tmpl[] = "/tmp/l4lb_cluster_test.XXXXXX";
    dir = ::mkdtemp(tmpl);
    cfg.cluster.name = "lb7";
    cfg.bgp.enabled = true;
    cfg.bgp.bird_socket = dir + "/no-bird.ctl";
    cfg.bgp.include_file = dir + "/bird-vips.conf";
    a = std::make_unique<bgp::Announcer>(cfg.bgp, cfg.cluster.name);
    update();
  }
  ~BgpView() override { std::filesystem::remove_all(dir); }
  void update() {
    std::vector<bgp::VipState> vips;
    for (const SnapVip& v : snap->vips) {
      bgp::VipState s{v.name, v.addr, 0};
      for (uint32_t id : v.backends) s.healthy_backends += snap->backend(id)->state == BackendState::Healthy;
      vips.push_back(s);
    }
    a->update(now, true, vips);
  }
  const bgp::Announcer* announcer() const override { return a.get(); }
  uint64_t monoMs() const override { return now; }
  bool setBalancerDrained(bool d) override {
    a->setDrained(d);
    update();
    return true;
  }
  std::string dir;
  std::unique_ptr<bgp::Announcer> a;
  uint64_t now = 5000;
};

TEST(ClusterCommand, WithoutBgp) {
  FakeView v;
  json r = call(v, "cluster");
  ASSERT_TRUE(r["ok"]) << r.dump();
  char host[256] = {};
  ASSERT_EQ(gethostname(host, sizeof(host) - 1), 0);
  EXPECT_EQ(r["name"], std::string(host));
  EXPECT_TRUE(r["bgp"].is_null());
  EXPECT_EQ(r["announcements"], json::array());
  EXPECT_EQ(r["balancer_drained"], false);
  EXPECT_TRUE(r.contains("sync") && r["sync"].is_null());
  json d = call(v, "drain-balancer");
  EXPECT_EQ(d["ok"], false);
  EXPECT_EQ(d["error"], "no [bgp] in the configuration: this balancer announces nothing to withdraw");
  EXPECT_EQ(call(v, "cluster", {"x"})["error"], "usage: cluster");
  // No [bgp]: no bgp metrics at all.
  EXPECT_EQ(renderMetrics(observe(v)).find("l4lb_vip_announced"), std::string::npos);
}

TEST(ClusterCommand, BirdUnreachableIsShown) {
  BgpView v;
  json r = call(v, "cluster");
  ASSERT_TRUE(r["ok"]) << r.dump();
  EXPECT_EQ(r["name"], "lb7");
  EXPECT_EQ(r["bgp"]["bird_reachable"], false);
  EXPECT_EQ(r["bgp"]["in_sync"], false);
  EXPECT_EQ(r["bgp"]["bird_errors"], 1);
  EXPECT_NE(r["bgp"]["last_error"].get<std::string>().find("no-bird.ctl"), std::string::npos);
  ASSERT_EQ(r["announcements"].size(), 2u);
  EXPECT_EQ(r["announcements"][0]["vip"], "web");
  EXPECT_EQ(r["announcements"][0]["prefix"], "198.18.0.10/32");
  EXPECT_EQ(r["announcements"][0]["announced"], false);
  EXPECT_EQ(r["announcements"][0]["wanted"], true);
  EXPECT_EQ(r["announcements"][0]["healthy_backends"], 2);
  const std::string text = ctl::renderReply("cluster", r, 0);
  EXPECT_NE(text.find("balancer:  lb7\n"), std::string::npos) << text;
  EXPECT_NE(text.find("NOT reachable"), std::string::npos) << text;
  EXPECT_NE(text.find("sessions:  none reported by BIRD"), std::string::npos) << text;
  EXPECT_NE(text.find("web  198.18.0.10/32  no         forwarding, 2 healthy backends; not in BIRD yet"), std::string::npos)
      << text;
}

TEST(ClusterCommand, DrainAndUndrainBalancer) {
  BgpView v;
  json d = call(v, "drain-balancer");
  ASSERT_TRUE(d["ok"]) << d.dump();
  EXPECT_EQ(d["balancer_drained"], true);
  EXPECT_EQ(d["changed"], true);
  EXPECT_TRUE(v.a->drained());
  json r = call(v, "cluster");
  EXPECT_EQ(r["balancer_drained"], true);
  EXPECT_EQ(r["announcements"][1]["reason"], "withdrawn: balancer drained (l4lbctl drain-balancer)");
  EXPECT_NE(ctl::renderReply("cluster", r, 0).find("(DRAINED: every VIP withdrawn)"), std::string::npos);
  EXPECT_EQ(call(v, "drain-balancer")["changed"], false);
  const std::string m = renderMetrics(observe(v));
  EXPECT_NE(m.find("l4lb_balancer_drained 1\n"), std::string::npos) << m;
  EXPECT_NE(m.find("l4lb_vip_announced{vip=\"web\"} 0\n"), std::string::npos) << m;
  EXPECT_NE(m.find("l4lb_bird_errors_total 2\n"), std::string::npos) << m;  // the drained set was tried at once
  json u = call(v, "undrain-balancer");
  EXPECT_EQ(u["balancer_drained"], false);
  EXPECT_FALSE(v.a->drained());
  EXPECT_NE(ctl::renderReply("undrain-balancer", u, 0).find("balancer undrained"), std::string::npos);
  EXPECT_NE(ctl::renderReply("undrain-balancer", u, 0).find("warning: BIRD has not confirmed it yet"), std::string::npos);
}


// With [sync]: the cluster reply carries syncStatusJson, and l4lbctl shows peers and rejections.
class SyncView : public FakeView {
 public:
  std::optional<sync::SyncStatus> syncStatus() const override {
    sync::SyncStatus s;
    s.listen = "198.18.40.11:7400";
    sync::SyncPeerStatus heard, silent;
    heard.address = "198.18.40.12:7400";
    heard.last_heard_ms_ago = 420;
    heard.records_in_per_s = 2.5;
    heard.records_in = 10;
    heard.rejected[size_t(sync::SyncReject::Replay)] = 3;
    silent.address = "198.18.40.13:7400";
    s.peers = {heard, silent};
    s.records_in = 10;
    s.delivered = 10;
    s.rejected[size_t(sync::SyncReject::Replay)] = 3;
    s.rejected[size_t(sync::SyncReject::UnknownPeer)] = 1;
    return s;
  }
};

TEST(ClusterCommand, WithSync) {
  SyncView v;
  json r = call(v, "cluster");
  ASSERT_TRUE(r["ok"]) << r.dump();
  ASSERT_TRUE(r["sync"].is_object());
  EXPECT_EQ(r["sync"]["listen"], "198.18.40.11:7400");
  EXPECT_EQ(r["sync"]["peers"][0]["last_heard_ms_ago"], 420);
  EXPECT_TRUE(r["sync"]["peers"][1]["last_heard_ms_ago"].is_null());
  EXPECT_EQ(r["sync"]["totals"]["rejected"]["replay"], 3);
  const std::string text = ctl::renderReply("cluster", r, 0);
  EXPECT_NE(text.find("sync:      198.18.40.11:7400; records out 0, in 10 (to workers 10, ring full 0)"), std::string::npos)
      << text;
  EXPECT_NE(text.find("rejected:  replay=3 unknown_peer=1"), std::string::npos) << text;
  EXPECT_NE(text.find("198.18.40.12:7400"), std::string::npos) << text;
  EXPECT_NE(text.find("420 ms ago"), std::string::npos) << text;
  EXPECT_NE(text.find("never"), std::string::npos) << text;
  EXPECT_NE(renderMetrics(observe(v)).find("l4lb_sync_rejected_total{reason=\"replay\"} 3"), std::string::npos);
}
}  // namespace
}  // namespace l4lb::control::api::test
