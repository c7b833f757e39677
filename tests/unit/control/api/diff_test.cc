// diff FILE over the in-memory view: per VIP added/removed/changed with what changed, backends
// added/removed/re-weighted, Maglev slots moved, restart-only settings, l4lbctl's text, and the
// refusals (invalid file, file that cannot be built).
#include <unistd.h>

#include <fstream>

#include "ctl/render.h"
#include "fake_view.h"

namespace l4lb::control::api::test {
namespace {

using nlohmann::json;

// kToml with `from` replaced by `to`, written to a temporary file.
class TempConfig {
 public:
  explicit TempConfig(const std::string& text) {
    char tmpl[] = "/tmp/l4lb_diff_test_XXXXXX";
    const int fd = mkstemp(tmpl);
    if (fd < 0) throw std::runtime_error("mkstemp");
    close(fd);
    path_ = tmpl;
    std::ofstream(path_) << text;
  }
  ~TempConfig() { unlink(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::string edit(std::string s, const std::string& from, const std::string& to) {
  const size_t at = s.find(from);
  if (at == std::string::npos) throw std::runtime_error("no '" + from + "' in the test config");
  return s.replace(at, from.size(), to);
}

// Slots of VIP 0 that differ between the running snapshot and one built from `next` on a copy
// of the view's builder: the oracle for slots_moved.
size_t movedSlots(const FakeView& v, const std::string& next_toml) {
  ConfigResult r = loadConfigString(next_toml, "n.toml");
  SnapshotBuilder b = v.b;
  auto s = b.build(*r.config, v.rt, &v.dyn).snapshot;
  size_t n = 0;
  for (size_t i = 0; i < s->vips[0].maglev.size(); i++) n += s->vips[0].maglev[i] != v.snap->vips[0].maglev[i];
  return n;
}

TEST(ApiDiff, SameFileChangesNothing) {
  FakeView v;
  TempConfig f(kToml);
  json r = call(v, "diff", {f.path()});
  EXPECT_EQ(r["ok"], true);
  EXPECT_EQ(r["file"], f.path());
  EXPECT_EQ(r["summary"], "vips +0 -0 ~0, backends +0 -0 ~0");
  EXPECT_EQ(r["restart_required"], json::array());
  ASSERT_EQ(r["vips"].size(), 2u);
  EXPECT_EQ(r["vips"][0]["change"], "unchanged");
  EXPECT_EQ(r["vips"][0]["slots_moved"], 0);
  EXPECT_EQ(r["vips"][0]["slots_total"], 7);
  EXPECT_EQ(r["vips"][0]["fields_changed"], json::array());
  EXPECT_EQ(r["vips"][1]["change"], "unchanged");
}

TEST(ApiDiff, BackendsAddedRemovedAndReweighted) {
  FakeView v;
  const std::string next = edit(edit(std::string(kToml), "weight = 2", "weight = 3"),
                                "address = \"198.18.0.21\"", "address = \"198.18.0.22\"");
  TempConfig f(next);
  json r = call(v, "diff", {f.path()});
  ASSERT_EQ(r["ok"], true) << r;
  EXPECT_EQ(r["summary"], "vips +0 -0 ~0, backends +1 -1 ~1");
  const size_t moved = movedSlots(v, next);
  ASSERT_GT(moved, 0u);
  // VIPs are listed by identity ("198.18.0.10 ..." before "198.18.0.20 ...").
  EXPECT_EQ(r["vips"][0], (json{{"vip", "web"},
                                {"change", "changed"},
                                {"fields_changed", json::array()},
                                {"backends_added", json::array()},
                                {"backends_removed", json::array()},
                                {"backends_changed", json::array()},
                                {"weights_changed", json::array({{{"backend", "198.18.0.12:0"}, {"from", 2}, {"to", 3}}})},
                                {"slots_moved", moved},
                                {"slots_total", 7},
                                {"moved_share", double(moved) / 7}}));
  EXPECT_EQ(r["vips"][1]["change"], "changed");
  EXPECT_EQ(r["vips"][1]["backends_added"], json::array({"198.18.0.22:0"}));
  EXPECT_EQ(r["vips"][1]["backends_removed"], json::array({"198.18.0.21:0"}));
  // dns's only backend changed: every slot of its table moves.
  EXPECT_EQ(r["vips"][1]["slots_moved"], 65537);
  char share[32];
  std::snprintf(share, sizeof(share), "%.2f%%", double(moved) / 7 * 100);
  EXPECT_EQ(ctl::renderReply("diff", r, 0),
            f.path() + ": vips +0 -0 ~0, backends +1 -1 ~1\n"
            "VIP  CHANGE   ADDED          REMOVED        WEIGHTS          SLOTS_MOVED            FIELDS\n"
            "web  changed  -              -              198.18.0.12:0=3  " + std::string(share) + " (" +
                std::to_string(moved) + "/7)           -\n"
            "dns  changed  198.18.0.22:0  198.18.0.21:0  -                100.00% (65537/65537)  -\n");
}

// The first disagreement: a VIP whose forwarding mode (or scheduler, gue_port, ...) changed
// moves no Maglev slot, and diff used to call it "unchanged".
TEST(ApiDiff, VipFieldChangeIsChangedAndNamed) {
  FakeView v;
  TempConfig f(edit(std::string(kToml), "maglev_table_size = 7", "maglev_table_size = 7\nforwarding = \"gue\"\ngue_port = 7000"));
  json r = call(v, "diff", {f.path()});
  ASSERT_EQ(r["ok"], true) << r.dump();
  EXPECT_EQ(r["vips"][0]["vip"], "web");
  EXPECT_EQ(r["vips"][0]["slots_moved"], 0);
  EXPECT_EQ(r["vips"][0]["change"], "changed");
  EXPECT_EQ(r["vips"][0]["fields_changed"], json::array({"forwarding (dsr -> gue)", "gue_port (6080 -> 7000)"}));
  EXPECT_EQ(r["summary"], "vips +0 -0 ~1, backends +0 -0 ~0");
  EXPECT_EQ(ctl::renderReply("diff", r, 0),
            f.path() + ": vips +0 -0 ~1, backends +0 -0 ~0\n"
            "VIP  CHANGE     ADDED  REMOVED  WEIGHTS  SLOTS_MOVED      FIELDS\n"
            "web  changed    -      -        -        0.00% (0/7)      forwarding (dsr -> gue), gue_port (6080 -> 7000)\n"
            "dns  unchanged  -      -        -        0.00% (0/65537)  -\n");
}

// A backend's own health check (and mac/via) changes are named per backend and counted.
TEST(ApiDiff, BackendHealthCheckChangeIsNamed) {
  FakeView v;
  TempConfig f(edit(std::string(kToml), "mac = \"02:00:00:00:00:12\"\nweight = 2",
                    "mac = \"02:00:00:00:00:12\"\nweight = 2\n[vips.backends.health_check]\ntype = \"tcp\"\nport = 8080"));
  json r = call(v, "diff", {f.path()});
  ASSERT_EQ(r["ok"], true) << r.dump();
  EXPECT_EQ(r["summary"], "vips +0 -0 ~0, backends +0 -0 ~1");
  EXPECT_EQ(r["vips"][0]["change"], "changed");
  EXPECT_EQ(r["vips"][0]["fields_changed"], json::array());
  EXPECT_EQ(r["vips"][0]["backends_changed"],
            json::array({{{"backend", "198.18.0.12:0"},
                          {"fields", {"health_check.type (none -> tcp)", "health_check.port (0 -> 8080)"}}}}));
  const std::string text = ctl::renderReply("diff", r, 0);
  EXPECT_NE(text.find("  198.18.0.12:0: health_check.type (none -> tcp), 198.18.0.12:0: health_check.port (0 -> 8080)\n"),
            std::string::npos) << text;
}

TEST(ApiDiff, VipsAddedRemovedAndRestartOnlySettings) {
  FakeView v;
  std::string next = edit(std::string(kToml), "name = \"dns\"\naddress = \"198.18.0.20\"", "name = \"dns2\"\naddress = \"198.18.0.30\"");
  next = edit(next, "[eal]\nworker_cores = [1]", "[eal]\nworker_cores = [1, 2]\n[control]\nsocket = \"/tmp/other.sock\"");
  TempConfig f(next);
  json r = call(v, "diff", {f.path()});
  ASSERT_EQ(r["ok"], true) << r;
  EXPECT_EQ(r["restart_required"], json::array({"eal.worker_cores changed ([1] -> [1,2]): needs a restart",
                                                "control.socket: needs a restart"}));
  EXPECT_EQ(r["summary"], "vips +1 -1 ~0, backends +1 -1 ~0");
  ASSERT_EQ(r["vips"].size(), 3u);
  EXPECT_EQ(r["vips"][1], (json{{"vip", "dns"}, {"change", "removed"}}));
  EXPECT_EQ(r["vips"][2], (json{{"vip", "dns2"}, {"change", "added"}}));
  const std::string text = ctl::renderReply("diff", r, 0);
  EXPECT_NE(text.find("needs a restart (reload would be refused): eal.worker_cores changed ([1] -> [1,2]): needs a restart\n"
                      "needs a restart (reload would be refused): control.socket: needs a restart\n"),
            std::string::npos) << text;
  std::cout << text;
}

TEST(ApiDiff, InvalidOrUnbuildableFilesAreRefused) {
  FakeView v;
  TempConfig bad(edit(std::string(kToml), "protocol = \"udp\"", "protocol = \"sctp\""));
  json r = call(v, "diff", {bad.path()});
  EXPECT_EQ(r["ok"], false);
  EXPECT_EQ(r["error"], bad.path() + " is not a valid configuration");
  ASSERT_EQ(r["messages"].size(), 1u);
  EXPECT_NE(r["messages"][0].get<std::string>().find("vips[1].protocol"), std::string::npos) << r;
  r = call(v, "diff", {"/nonexistent/x.toml"});
  EXPECT_EQ(r["error"], "/nonexistent/x.toml is not a valid configuration");
  // Valid on its own, but its backend has no MAC and its port no kernel side to resolve one.
  TempConfig unbuildable(edit(std::string(kToml), "address = \"198.18.0.21\"\nmac = \"02:00:00:00:00:21\"",
                              "address = \"198.18.0.21\""));
  r = call(v, "diff", {unbuildable.path()});
  EXPECT_EQ(r["ok"], false) << r;
  EXPECT_EQ(r["error"], unbuildable.path() + " cannot be built on the running ports");
  ASSERT_EQ(r["messages"].size(), 1u);
  EXPECT_NE(r["messages"][0].get<std::string>().find("198.18.0.21"), std::string::npos) << r;
}

}  // namespace
}  // namespace l4lb::control::api::test
