// SystemdNotifier against a real datagram socket as NOTIFY_SOCKET: the protocol systemd reads,
// not a mock of our code.
#include "control/systemd_notify.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

namespace l4lb::control {
namespace {

class NotifySocket : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = "/tmp/l4lb_notify_test_" + std::to_string(getpid()) + ".sock";
    unlink(path_.c_str());
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    ASSERT_GE(fd_, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::snprintf(a.sun_path, sizeof(a.sun_path), "%s", path_.c_str());
    ASSERT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    setenv("NOTIFY_SOCKET", path_.c_str(), 1);
  }
  void TearDown() override {
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
    close(fd_);
    unlink(path_.c_str());
  }
  // Every datagram waiting on the socket.
  std::vector<std::string> received() {
    std::vector<std::string> out;
    char buf[4096];
    for (;;) {
      const ssize_t n = recv(fd_, buf, sizeof(buf), 0);
      if (n < 0) break;
      out.emplace_back(buf, size_t(n));
    }
    return out;
  }
  std::string path_;
  int fd_ = -1;
};

TEST_F(NotifySocket, ReadyReloadingStatusAndStoppingAreSentAsSystemdReadsThem) {
  SystemdNotifier n;
  EXPECT_TRUE(n.enabled());
  EXPECT_EQ(n.watchdogIntervalMs(), 0u);  // WATCHDOG_USEC unset
  n.ready("2 VIPs, 3/4 backends healthy");
  n.reloading();
  n.ready("2 VIPs, 4/4 backends healthy");
  n.status("x");
  n.stopping();
  EXPECT_EQ(received(), (std::vector<std::string>{"READY=1\nSTATUS=2 VIPs, 3/4 backends healthy",
                                                  "RELOADING=1\nSTATUS=reloading",
                                                  "READY=1\nSTATUS=2 VIPs, 4/4 backends healthy", "STATUS=x",
                                                  "STOPPING=1\nSTATUS=stopping"}));
  EXPECT_FALSE(n.watchdog(1000, {1})) << "no WATCHDOG_USEC: no pings";
  EXPECT_TRUE(received().empty());
}

TEST_F(NotifySocket, WatchdogPingsOnlyWhileEveryWorkerLoops) {
  setenv("WATCHDOG_USEC", "2000000", 1);  // WatchdogSec=2: ping every second
  SystemdNotifier n;
  ASSERT_EQ(n.watchdogIntervalMs(), 1000u);
  EXPECT_TRUE(n.watchdog(10'000, {5, 7}));
  EXPECT_FALSE(n.watchdog(10'500, {9, 9})) << "within the interval";
  EXPECT_TRUE(n.watchdog(11'000, {9, 9}));
  EXPECT_FALSE(n.watchdog(12'000, {9, 12})) << "worker 0 stood still";
  EXPECT_FALSE(n.watchdog(13'000, {9, 15})) << "still stuck";
  EXPECT_TRUE(n.watchdog(14'000, {10, 16})) << "moving again";
  EXPECT_EQ(received(), (std::vector<std::string>{"WATCHDOG=1", "WATCHDOG=1", "WATCHDOG=1"}));
}

TEST_F(NotifySocket, WatchdogForAnotherPidIsOff) {
  setenv("WATCHDOG_USEC", "2000000", 1);
  setenv("WATCHDOG_PID", std::to_string(getpid() + 1).c_str(), 1);
  SystemdNotifier n;
  EXPECT_EQ(n.watchdogIntervalMs(), 0u);
  EXPECT_FALSE(n.watchdog(10'000, {1}));
}

TEST(SystemdNotifier, WithoutNotifySocketEveryCallIsANoOp) {
  unsetenv("NOTIFY_SOCKET");
  setenv("WATCHDOG_USEC", "2000000", 1);
  SystemdNotifier n;
  EXPECT_FALSE(n.enabled());
  EXPECT_EQ(n.watchdogIntervalMs(), 0u);
  n.ready("x");
  EXPECT_FALSE(n.watchdog(10'000, {1}));
  unsetenv("WATCHDOG_USEC");
}

}  // namespace
}  // namespace l4lb::control
