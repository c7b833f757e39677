// The announce/withdraw state machine (control/bgp/announcer.h) and the BIRD control-socket
// client against a fake BIRD: a real Unix stream socket served by a thread that speaks BIRD's
// reply format, records every command (and, at each `configure`, the include file as BIRD
// would read it), and can answer with errors or not at all.
#include "control/bgp/announcer.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "poll_loop.h"

namespace l4lb::control::bgp {
namespace {

namespace fs = std::filesystem;

std::string readFile(const std::string& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

IpAddr ip(const char* s) { return IpAddr::parse(s).value(); }

class FakeBird {
 public:
  enum class Mode { Ok, RefuseConfigure, Hang };

  FakeBird(std::string sock, std::string include) : sock_(std::move(sock)), include_(std::move(include)) {}
  ~FakeBird() { stop(); }

  void start() {
    lfd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::strncpy(sa.sun_path, sock_.c_str(), sizeof(sa.sun_path) - 1);
    ::unlink(sock_.c_str());
    ASSERT_EQ(::bind(lfd_, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), 0) << std::strerror(errno);
    ASSERT_EQ(::listen(lfd_, 4), 0);
    loop_.start(lfd_, [this] { serve(); });
  }
  void stop() {
    if (!loop_.running()) return;
    loop_.stop();
    ::close(lfd_);
    ::unlink(sock_.c_str());
  }
  void setMode(Mode m) { mode_ = m; }
  std::vector<std::string> commands() {
    std::lock_guard<std::mutex> g(mu_);
    return commands_;
  }
  size_t configures() {
    size_t n = 0;
    for (const auto& c : commands()) n += c == "configure";
    return n;
  }
  // The include file as it was when the last `configure` arrived.
  std::string lastConfigured() {
    std::lock_guard<std::mutex> g(mu_);
    return last_include_;
  }

 private:
  void serve() {
    int c = ::accept4(lfd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) return;
    session(c);
    ::close(c);
  }
  void send(int c, const std::string& s) { (void)!::write(c, s.data(), s.size()); }
  void session(int c) {
    send(c, "0001 BIRD 2.0.12 ready.\n");
    std::string buf;
    while (!loop_.stopping()) {
      if (!test::readable(c)) continue;
      char tmp[512];
      ssize_t n = ::read(c, tmp, sizeof(tmp));
      if (n <= 0) return;
      buf.append(tmp, size_t(n));
      size_t nl;
      while ((nl = buf.find('\n')) != std::string::npos) {
        const std::string cmd = buf.substr(0, nl);
        buf.erase(0, nl + 1);
        {
          std::lock_guard<std::mutex> g(mu_);
          commands_.push_back(cmd);
          if (cmd == "configure") last_include_ = readFile(include_);
        }
        if (mode_ == Mode::Hang) continue;
        if (cmd == "configure") {
          if (mode_ == Mode::RefuseConfigure)
            send(c, "0002-Reading configuration from /etc/bird/bird.conf\n8002 " + include_ + ":4:3 syntax error\n");
          else
            send(c, "0002-Reading configuration from /etc/bird/bird.conf\n0003 Reconfigured\n");
        } else if (cmd == "show protocols") {
          // As BIRD 2.0.12 prints it: heading, first row 1002-, further rows as continuations.
          send(c,
               "2002-Name       Proto      Table      State  Since         Info\n"
               "1002-device1    Device     ---        up     16:29:47.122  \n"
               " l4lb_vips4 Static     master4    up     16:29:47.116  \n"
               " router     BGP        ---        up     16:29:51.655  Established   \n"
               " router6    BGP        ---        start  16:29:47.122  Active        Socket: Connection refused\n"
               "0000 \n");
        } else {
          send(c, "9001 syntax error, unexpected CF_SYM_UNDEFINED\n");
        }
      }
    }
  }

  std::string sock_, include_;
  int lfd_ = -1;
  test::PollLoop loop_;
  std::atomic<Mode> mode_{Mode::Ok};
  std::mutex mu_;
  std::vector<std::string> commands_;
  std::string last_include_;
};

class AnnouncerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/l4lb_bgp_test.XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    cfg_.enabled = true;
    cfg_.bird_socket = dir_ + "/bird.ctl";
    cfg_.include_file = dir_ + "/bird-vips.conf";
    bird_ = std::make_unique<FakeBird>(cfg_.bird_socket, cfg_.include_file);
    opts_.bird_timeout_ms = 300;
  }
  void TearDown() override {
    bird_.reset();
    fs::remove_all(dir_);
  }
  // web and web6 (one healthy backend each by default), dns on web's address.
  std::vector<VipState> vips(uint32_t web = 1, uint32_t web6 = 1, uint32_t dns = 0) {
    return {{"web", ip("198.18.42.100"), web}, {"web6", ip("2001:db8:42::100"), web6}, {"dns", ip("198.18.42.100"), dns}};
  }
  std::string dir_;
  BgpConfig cfg_;
  AnnouncerOptions opts_;
  std::unique_ptr<FakeBird> bird_;
};

const char* kBoth =
    "# l4lb VIP routes for BIRD 2 (balancer \"lb1\"). Generated by l4lb: do not edit.\n"
    "# 1 IPv4 and 1 IPv6 prefixes announced.\n"
    "protocol static l4lb_vips4 {\n"
    "  ipv4;\n"
    "  route 198.18.42.100/32 blackhole;\n"
    "}\n"
    "protocol static l4lb_vips6 {\n"
    "  ipv6;\n"
    "  route 2001:db8:42::100/128 blackhole;\n"
    "}\n";
const char* kNone =
    "# l4lb VIP routes for BIRD 2 (balancer \"lb1\"). Generated by l4lb: do not edit.\n"
    "# 0 IPv4 and 0 IPv6 prefixes announced.\n"
    "protocol static l4lb_vips4 {\n"
    "  ipv4;\n"
    "}\n"
    "protocol static l4lb_vips6 {\n"
    "  ipv6;\n"
    "}\n";

TEST_F(AnnouncerTest, AnnouncesOnlyOnceForwardingAndOnlyOnChange) {
  bird_->start();
  Announcer a(cfg_, "lb1", opts_);
  a.update(1000, false, vips());  // before the workers run: an empty file (withdraws leftovers)
  EXPECT_EQ(bird_->configures(), 1u);
  EXPECT_EQ(bird_->lastConfigured(), kNone);
  EXPECT_TRUE(a.inSync());
  EXPECT_FALSE(a.announced(ip("198.18.42.100")));
  a.update(1100, true, vips());
  EXPECT_EQ(bird_->configures(), 2u);
  EXPECT_EQ(bird_->lastConfigured(), kBoth);
  EXPECT_EQ(readFile(cfg_.include_file), kBoth);
  EXPECT_TRUE(a.announced(ip("198.18.42.100")));
  EXPECT_TRUE(a.announced(ip("2001:db8:42::100")));
  // Same set: BIRD is not reconfigured (sessions are not disturbed every second).
  for (uint64_t t = 1200; t < 1200 + 20; t++) a.update(t, true, vips());
  EXPECT_EQ(bird_->configures(), 2u);
  // No temporary file left behind.
  size_t files = 0;
  for (const auto& e : fs::directory_iterator(dir_)) files += e.path().filename() != "bird.ctl";
  EXPECT_EQ(files, 1u);
}

TEST_F(AnnouncerTest, WithdrawsWhenAllBackendsDownAndAnnouncesWhenOneRecovers) {
  bird_->start();
  Announcer a(cfg_, "lb1", opts_);
  a.update(0, true, vips());
  ASSERT_TRUE(a.announced(ip("2001:db8:42::100")));
  a.update(10, true, vips(1, 0));
  EXPECT_FALSE(a.announced(ip("2001:db8:42::100")));
  EXPECT_TRUE(a.announced(ip("198.18.42.100")));
  EXPECT_EQ(bird_->lastConfigured().find("2001:db8:42::100"), std::string::npos);
  const nlohmann::json j = a.announcementsJson();
  EXPECT_EQ(j[1]["vip"], "web6");
  EXPECT_EQ(j[1]["announced"], false);
  EXPECT_EQ(j[1]["reason"], "withdrawn: no healthy backend (bgp.withdraw_when_down)");
  EXPECT_EQ(j[0]["reason"], "forwarding, 1 healthy backend");
  a.update(20, true, vips(1, 2));
  EXPECT_TRUE(a.announced(ip("2001:db8:42::100")));
  EXPECT_EQ(bird_->lastConfigured(), kBoth);
  EXPECT_EQ(bird_->configures(), 3u);
}

// Flow sync warm-up: nothing is announced before the hold ends, then everything at once; the
// reason says why. Negative control: the same announcer without a hold announces at once.
TEST_F(AnnouncerTest, SyncWarmUpHoldsTheAnnouncement) {
  bird_->start();
  Announcer a(cfg_, "lb1", opts_);
  a.holdUntil(3000);
  a.update(0, true, vips());
  EXPECT_FALSE(a.announced(ip("198.18.42.100")));
  EXPECT_FALSE(a.announced(ip("2001:db8:42::100")));
  EXPECT_EQ(a.announcementsJson()[0]["reason"], "withdrawn: learning the peers' flows first (sync warm-up, 3000 ms left)");
  a.update(2999, true, vips());
  EXPECT_FALSE(a.announced(ip("198.18.42.100")));
  a.update(3000, true, vips());
  EXPECT_TRUE(a.announced(ip("198.18.42.100")));
  EXPECT_TRUE(a.announced(ip("2001:db8:42::100")));
  EXPECT_EQ(bird_->lastConfigured(), kBoth);
}

TEST_F(AnnouncerTest, SyncWarmUpNegativeControlWithoutHoldAnnouncesAtOnce) {
  bird_->start();
  Announcer a(cfg_, "lb1", opts_);
  a.update(0, true, vips());
  EXPECT_TRUE(a.announced(ip("198.18.42.100")));
}

// Two VIPs on one address: the prefix stays while either has a healthy backend.
TEST_F(AnnouncerTest, SharedAddressStaysWhileOneVipIsUp) {
  bird_->start();
  Announcer a(cfg_, "lb1", opts_);
  a.update(0, true, vips(0, 1, 1));  // web down, dns (same address) up
  EXPECT_TRUE(a.announced(ip("198.18.42.100")));
  const nlohmann::json j = a.announcementsJson();
  EXPECT_EQ(j[0]["wanted"], false);
  EXPECT_EQ(j[0]["announced"], true);
  EXPECT_NE(j[0]["reason"].get<std::string>().find("announced for another VIP"), std::string::npos);
  a.update(1, true, vips(0, 1, 0));
  EXPECT_FALSE(a.announced(ip("198.18.42.100")));
}

// Negative control: with withdraw_when_down = false the same transition withdraws nothing.
TEST_F(AnnouncerTest, WithdrawWhenDownOffKeepsTheRoute) {
  bird_->start();
  cfg_.withdraw_when_down = false;
  Announcer a(cfg_, "lb1", opts_);
  a.update(0, true, vips());
  a.update(10, true, vips(0, 0));
  EXPECT_TRUE(a.announced(ip("2001:db8:42::100")));
  EXPECT_TRUE(a.announced(ip("198.18.42.100")));
  EXPECT_EQ(bird_->configures(), 1u);
}

TEST_F(AnnouncerTest, AnnounceListLimitsWhatIsAnnounced) {
  bird_->start();
  cfg_.announce_all = false;
  cfg_.announce = {"web6"};
  Announcer a(cfg_, "lb1", opts_);
  a.update(0, true, vips(1, 1, 1));
  EXPECT_FALSE(a.announced(ip("198.18.42.100")));
  EXPECT_TRUE(a.announced(ip("2001:db8:42::100")));
  EXPECT_EQ(a.announcementsJson()[0]["reason"], "not in bgp.announce");
}

TEST_F(AnnouncerTest, DrainBalancerWithdrawsEverythingUndrainAnnouncesAgain) {
  bird_->start();
  Announcer a(cfg_, "lb1", opts_);
  a.update(0, true, vips());
  a.setDrained(true);
  a.update(1, true, vips());
  EXPECT_TRUE(a.drained());
  EXPECT_EQ(bird_->lastConfigured(), kNone);
  EXPECT_EQ(a.announcementsJson()[0]["reason"], "withdrawn: balancer drained (l4lbctl drain-balancer)");
  // Backends recovering does not undo a drain.
  a.update(2, true, vips(3, 3));
  EXPECT_FALSE(a.announced(ip("198.18.42.100")));
  a.setDrained(false);
  a.update(3, true, vips());
  EXPECT_EQ(bird_->lastConfigured(), kBoth);
  EXPECT_EQ(bird_->configures(), 3u);
}

TEST_F(AnnouncerTest, StopWithdrawsAndUndrainCannotUndoIt) {
  bird_->start();
  Announcer a(cfg_, "lb1", opts_);
  a.update(0, true, vips());
  a.beginStop();
  a.update(1, true, vips());
  EXPECT_EQ(bird_->lastConfigured(), kNone);
  EXPECT_TRUE(a.inSync());
  a.setDrained(false);
  a.update(2, true, vips());
  EXPECT_EQ(bird_->lastConfigured(), kNone);
  EXPECT_EQ(a.announcementsJson()[1]["reason"], "withdrawn: l4lb is stopping (bgp.drain_time)");
}

TEST_F(AnnouncerTest, BirdDownIsRetriedWithBackoffThenApplied) {
  Announcer a(cfg_, "lb1", opts_);  // no fake BIRD yet: the socket does not exist
  a.update(0, true, vips());
  EXPECT_FALSE(a.inSync());
  EXPECT_EQ(a.birdErrors(), 1u);
  EXPECT_EQ(readFile(cfg_.include_file), kBoth);  // the file is written; BIRD reads it when it starts
  nlohmann::json b = a.bgpJson(0);
  EXPECT_EQ(b["bird_reachable"], false);
  EXPECT_EQ(b["retry_in_ms"], 1000);
  EXPECT_NE(b["last_error"].get<std::string>().find("bird.ctl"), std::string::npos) << b.dump();
  EXPECT_NE(a.announcementsJson()[0]["reason"].get<std::string>().find("not in BIRD yet"), std::string::npos);
  a.update(500, true, vips());  // within the back-off: not retried
  EXPECT_EQ(a.birdErrors(), 1u);
  a.update(1000, true, vips());  // retried, fails: back-off doubles
  EXPECT_EQ(a.birdErrors(), 2u);
  EXPECT_EQ(a.bgpJson(1000)["retry_in_ms"], 2000);
  a.update(2500, true, vips());
  EXPECT_EQ(a.birdErrors(), 2u);
  bird_->start();
  a.update(3000, true, vips());
  EXPECT_TRUE(a.inSync());
  EXPECT_EQ(bird_->configures(), 1u);
  EXPECT_TRUE(a.announced(ip("198.18.42.100")));
  EXPECT_FALSE(a.bgpJson(3000).contains("last_error"));
  EXPECT_EQ(a.bgpJson(3000)["bird_reachable"], true);
}

// A changed set is tried at once even during a back-off: a withdrawal must not wait 30 s.
TEST_F(AnnouncerTest, ChangedSetIsNotHeldBackByBackoff) {
  Announcer a(cfg_, "lb1", opts_);
  a.update(0, true, vips());
  EXPECT_EQ(a.birdErrors(), 1u);
  bird_->start();
  a.setDrained(true);
  a.update(10, true, vips());
  EXPECT_TRUE(a.inSync());
  EXPECT_EQ(bird_->lastConfigured(), kNone);
}

TEST_F(AnnouncerTest, ConfigureRefusedIsAnErrorAndRetried) {
  bird_->start();
  bird_->setMode(FakeBird::Mode::RefuseConfigure);
  Announcer a(cfg_, "lb1", opts_);
  a.update(0, true, vips());
  EXPECT_FALSE(a.inSync());
  EXPECT_FALSE(a.announced(ip("198.18.42.100")));
  EXPECT_EQ(a.birdErrors(), 1u);
  const nlohmann::json b = a.bgpJson(0);
  EXPECT_EQ(b["bird_reachable"], true);
  EXPECT_NE(b["last_error"].get<std::string>().find("syntax error"), std::string::npos) << b.dump();
  bird_->setMode(FakeBird::Mode::Ok);
  a.update(999, true, vips());
  EXPECT_EQ(bird_->configures(), 1u);
  a.update(1000, true, vips());
  EXPECT_EQ(bird_->configures(), 2u);
  EXPECT_TRUE(a.inSync());
}

TEST_F(AnnouncerTest, HangingBirdTimesOutWithinTheBound) {
  bird_->start();
  bird_->setMode(FakeBird::Mode::Hang);
  Announcer a(cfg_, "lb1", opts_);
  const auto t0 = std::chrono::steady_clock::now();
  a.update(0, true, vips());
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_GE(ms, 250);
  EXPECT_LT(ms, 1000);
  EXPECT_FALSE(a.inSync());
  EXPECT_NE(a.bgpJson(0)["last_error"].get<std::string>().find("no reply"), std::string::npos);
  bird_->setMode(FakeBird::Mode::Ok);
  a.update(1000, true, vips());  // the client reconnected: a fresh session
  EXPECT_TRUE(a.inSync());
}

TEST_F(AnnouncerTest, SessionStatesFromShowProtocols) {
  bird_->start();
  opts_.protocols_every_ms = 5000;
  Announcer a(cfg_, "lb1", opts_);
  a.update(0, true, vips());   // configure
  a.update(10, true, vips());  // sessions refreshed soon after a configure
  ASSERT_EQ(a.protocols().size(), 2u);
  EXPECT_EQ(a.protocols()[0].name, "router");
  EXPECT_TRUE(a.protocols()[0].sessionUp());
  EXPECT_EQ(a.protocols()[1].name, "router6");
  EXPECT_EQ(a.protocols()[1].state, "start");
  EXPECT_EQ(a.protocols()[1].info, "Active        Socket: Connection refused");
  EXPECT_FALSE(a.protocols()[1].sessionUp());
  a.update(20, true, vips());
  size_t shows = 0;
  for (const auto& c : bird_->commands()) shows += c == "show protocols";
  EXPECT_EQ(shows, 1u);  // not again before protocols_every_ms
  a.update(5010, true, vips());
  shows = 0;
  for (const auto& c : bird_->commands()) shows += c == "show protocols";
  EXPECT_EQ(shows, 2u);
}

TEST(IncludeText, NextHopsAreRouteAttributes) {
  BgpConfig c;
  c.next_hop4 = IpAddr::parse("198.18.40.11");
  c.next_hop6 = IpAddr::parse("2001:db8:40::11");
  PrefixSet s{ip("2001:db8:42::100"), ip("198.18.42.101"), ip("198.18.42.100")};
  EXPECT_EQ(Announcer::includeText(s, c, "lb2"),
            "# l4lb VIP routes for BIRD 2 (balancer \"lb2\"). Generated by l4lb: do not edit.\n"
            "# 2 IPv4 and 1 IPv6 prefixes announced.\n"
            "protocol static l4lb_vips4 {\n"
            "  ipv4;\n"
            "  route 198.18.42.100/32 blackhole { bgp_next_hop = 198.18.40.11; };\n"
            "  route 198.18.42.101/32 blackhole { bgp_next_hop = 198.18.40.11; };\n"
            "}\n"
            "protocol static l4lb_vips6 {\n"
            "  ipv6;\n"
            "  route 2001:db8:42::100/128 blackhole { bgp_next_hop = 2001:db8:40::11; };\n"
            "}\n");
}

TEST(BirdReplyParsing, ShowProtocolsWithIsoDates) {
  BirdReply r;
  r.ok = true;
  r.lines = {{2002, "Name       Proto      Table      State  Since         Info"},
             {1002, "r1         BGP        ---        up     2026-12-03 16:29:51  Established"},
             {1002, "k1         Kernel     master4    up     2026-12-03 16:29:51"}};
  auto p = parseBgpProtocols(r);
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0].since, "2026-12-03 16:29:51");
  EXPECT_EQ(p[0].info, "Established");
  BirdReply c;
  c.ok = true;
  c.code = 6;  // "Reconfiguration ignored, shutting down"
  EXPECT_FALSE(configureAccepted(c));
  c.code = 3;
  EXPECT_TRUE(configureAccepted(c));
}

}  // namespace
}  // namespace l4lb::control::bgp
