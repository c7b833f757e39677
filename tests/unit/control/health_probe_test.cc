// The real probes, run by a real HealthChecker against servers on 127.0.0.1 (threads in this
// process): each outcome's reason is asserted exactly, and latency against the clock.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "control/health/health_checker.h"
#include "control/health/health_target.h"
#include "poll_loop.h"

namespace l4lb::control {
namespace {

using namespace std::chrono_literals;

sockaddr_in loopback(uint16_t port, const char* addr = "127.0.0.1") {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  ::inet_pton(AF_INET, addr, &a.sin_addr);
  return a;
}

uint16_t portOf(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof(a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  return ntohs(a.sin_port);
}

// A TCP server on 127.0.0.1 whose thread hands each accepted connection to `handler`, one at
// a time. The handler owns the descriptor (it may keep it open to play dead).
class TcpServer {
 public:
  explicit TcpServer(std::function<void(int fd)> handler) : handler_(std::move(handler)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a = loopback(0);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    EXPECT_EQ(::listen(fd_, 64), 0);
    port_ = portOf(fd_);
    loop_.start(fd_, [this] { acceptOne(); });
  }
  ~TcpServer() {
    loop_.stop();
    ::close(fd_);
    for (int c : kept_) ::close(c);
  }
  uint16_t port() const { return port_; }
  void keep(int fd) {
    std::lock_guard<std::mutex> g(mu_);
    kept_.push_back(fd);
  }
  std::string peer() {
    std::lock_guard<std::mutex> g(mu_);
    return peer_;
  }

 private:
  void acceptOne() {
    sockaddr_in from{};
    socklen_t len = sizeof(from);
    int c = ::accept4(fd_, reinterpret_cast<sockaddr*>(&from), &len, SOCK_CLOEXEC);
    if (c < 0) return;
    char buf[INET_ADDRSTRLEN] = {};
    ::inet_ntop(AF_INET, &from.sin_addr, buf, sizeof(buf));
    {
      std::lock_guard<std::mutex> g(mu_);
      peer_ = buf;
    }
    handler_(c);
  }

  std::function<void(int)> handler_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::mutex mu_;
  std::vector<int> kept_;
  std::string peer_;
  test::PollLoop loop_;  // last: its thread reads the members above
};

// Reads an HTTP request head (up to the blank line).
std::string readRequest(int fd) {
  std::string req;
  char buf[1024];
  while (req.find("\r\n\r\n") == std::string::npos) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 2000) <= 0) break;
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    req.append(buf, static_cast<size_t>(n));
  }
  return req;
}

void sendAll(int fd, const std::string& s) {
  ::send(fd, s.data(), s.size(), MSG_NOSIGNAL);
}

// A UDP server on 127.0.0.1: replies with `reply(request)`, or not at all when it returns
// nullopt.
class UdpServer {
 public:
  explicit UdpServer(std::function<std::optional<std::string>(const std::string&)> reply)
      : reply_(std::move(reply)) {
    fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in a = loopback(0);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    port_ = portOf(fd_);
    loop_.start(fd_, [this] { answerOne(); });
  }
  ~UdpServer() {
    loop_.stop();
    ::close(fd_);
  }
  uint16_t port() const { return port_; }
  int received() const { return received_; }

 private:
  void answerOne() {
    char buf[2048];
    sockaddr_in from{};
    socklen_t len = sizeof(from);
    ssize_t n = ::recvfrom(fd_, buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&from), &len);
    if (n < 0) return;
    received_++;
    if (auto r = reply_(std::string(buf, static_cast<size_t>(n))))
      ::sendto(fd_, r->data(), r->size(), 0, reinterpret_cast<sockaddr*>(&from), len);
  }

  std::function<std::optional<std::string>(const std::string&)> reply_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<int> received_{0};
  test::PollLoop loop_;  // last: its thread reads the members above
};

// A port with nothing listening: bound to reserve a number, then closed.
uint16_t closedPort(int type) {
  int fd = ::socket(AF_INET, type | SOCK_CLOEXEC, 0);
  sockaddr_in a = loopback(0);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  uint16_t port = portOf(fd);
  ::close(fd);
  return port;
}

HealthTarget target(HealthType type, uint16_t port, uint32_t timeout_ms = 300) {
  HealthTarget t;
  t.key = "k";
  t.addr = IpAddr::parse("127.0.0.1").value();
  t.port = port;
  t.cfg.type = type;
  t.cfg.interval_ms = timeout_ms + 100;
  t.cfg.timeout_ms = timeout_ms;
  t.cfg.rise = 1;
  t.cfg.fall = 1;
  t.cfg.jitter_pct = 0;
  return t;
}

// Runs a real checker the way the daemon does (epoll on fd(), timeoutMs()) until `want`
// transitions were reported or `limit` passed.
std::vector<HealthTransition> runUntil(HealthChecker& c, size_t want,
                                       std::chrono::milliseconds limit = 3000ms) {
  std::vector<HealthTransition> out;
  int ep = ::epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ::epoll_ctl(ep, EPOLL_CTL_ADD, c.fd(), &ev);
  auto end = std::chrono::steady_clock::now() + limit;
  while (out.size() < want && std::chrono::steady_clock::now() < end) {
    int t = c.timeoutMs();
    int left = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                    end - std::chrono::steady_clock::now())
                                    .count());
    ::epoll_wait(ep, &ev, 1, t < 0 ? left : std::min(t, std::max(left, 0)));
    for (auto& tr : c.poll()) out.push_back(std::move(tr));
  }
  ::close(ep);
  return out;
}

// The reason of the first result for one target.
std::string firstReason(const HealthTarget& t, Health* state = nullptr, double* latency = nullptr) {
  HealthChecker c;
  c.setTargets({t});
  auto tr = runUntil(c, 1);
  if (tr.empty()) return "(no transition)";
  if (state != nullptr) *state = tr[0].to;
  if (latency != nullptr) *latency = tr[0].latency_ms;
  return tr[0].reason;
}

TEST(HealthProbeTcp, ConnectsToAListener) {
  TcpServer srv([](int fd) { ::close(fd); });
  Health st = Health::Unknown;
  double lat = -1;
  EXPECT_EQ(firstReason(target(HealthType::Tcp, srv.port()), &st, &lat), "connected");
  EXPECT_EQ(st, Health::Up);
  EXPECT_GE(lat, 0.0);
  EXPECT_LT(lat, 100.0);
}

TEST(HealthProbeTcp, ClosedPortIsRefused) {
  Health st = Health::Unknown;
  EXPECT_EQ(firstReason(target(HealthType::Tcp, closedPort(SOCK_STREAM)), &st),
            "connection refused");
  EXPECT_EQ(st, Health::Down);
}

TEST(HealthProbeTcp, BindsTheSourceAddress) {
  TcpServer srv([](int fd) { ::close(fd); });
  HealthTarget t = target(HealthType::Tcp, srv.port());
  t.source = IpAddr::parse("127.0.0.2");
  EXPECT_EQ(firstReason(t), "connected");
  // The handshake completes in the kernel; the server thread accepts a little later.
  for (int i = 0; i < 200 && srv.peer().empty(); i++) std::this_thread::sleep_for(5ms);
  EXPECT_EQ(srv.peer(), "127.0.0.2");
}

TEST(HealthProbeTcp, UnusableSourceIsReportedWithTheAddress) {
  HealthTarget t = target(HealthType::Tcp, 80);
  t.source = IpAddr::parse("198.18.0.1");  // not an address of this host
  Health st = Health::Unknown;
  EXPECT_EQ(firstReason(t, &st), "cannot bind source 198.18.0.1: Cannot assign requested address");
  EXPECT_EQ(st, Health::Down);
}

TEST(HealthProbeHttp, StatusDecidesAndTheRequestIsExact) {
  std::mutex mu;
  std::vector<std::string> requests;
  std::atomic<int> n{0};
  TcpServer srv([&](int fd) {
    std::string req = readRequest(fd);
    {
      std::lock_guard<std::mutex> g(mu);
      requests.push_back(req);
    }
    // 200 twice, then 503 from the third request on.
    sendAll(fd, n++ < 2 ? "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
                        : "HTTP/1.0 503 Service Unavailable\r\n\r\n");
    ::close(fd);
  });
  HealthTarget t = target(HealthType::Http, srv.port());
  t.cfg.http_path = "/healthz?x=1";
  HealthChecker c;
  c.setTargets({t});
  auto tr = runUntil(c, 2);
  ASSERT_EQ(tr.size(), 2u);
  EXPECT_EQ(describe(tr[0]), "k: unknown -> up (status 200)");
  EXPECT_EQ(describe(tr[1]), "k: up -> down (status 503)");
  EXPECT_EQ(c.status("k")->checks, 3u);
  std::lock_guard<std::mutex> g(mu);
  ASSERT_GE(requests.size(), 1u);
  EXPECT_EQ(requests[0], "GET /healthz?x=1 HTTP/1.1\r\nHost: 127.0.0.1:" +
                             std::to_string(srv.port()) +
                             "\r\nUser-Agent: l4lb-health\r\nAccept: */*\r\nConnection: close\r\n\r\n");
}

TEST(HealthProbeHttp, HostHeaderAndExpectedRanges) {
  std::mutex mu;
  std::string request;
  TcpServer srv([&](int fd) {
    std::string req = readRequest(fd);
    {
      std::lock_guard<std::mutex> g(mu);
      request = req;
    }
    sendAll(fd, "HTTP/1.1 302 Found\r\nLocation: /x\r\n\r\n");
    ::close(fd);
  });
  HealthTarget t = target(HealthType::Http, srv.port());
  t.cfg.http_host = "www.example.test";
  Health st = Health::Unknown;
  EXPECT_EQ(firstReason(t, &st), "status 302");  // default 200..299: a failure
  EXPECT_EQ(st, Health::Down);
  std::lock_guard<std::mutex> g(mu);
  EXPECT_NE(request.find("\r\nHost: www.example.test\r\n"), std::string::npos) << request;
}

TEST(HealthProbeHttp, ExpectedRangesAccept) {
  TcpServer srv([&](int fd) {
    readRequest(fd);
    sendAll(fd, "HTTP/1.1 302 Found\r\nLocation: /x\r\n\r\n");
    ::close(fd);
  });
  HealthTarget t = target(HealthType::Http, srv.port());
  Health st = Health::Unknown;
  t.cfg.http_expect = {{200, 200}, {300, 399}};
  EXPECT_EQ(firstReason(t, &st), "status 302");
  EXPECT_EQ(st, Health::Up);
}

TEST(HealthProbeHttp, MalformedRepliesFail) {
  std::atomic<int> mode{0};
  TcpServer srv([&](int fd) {
    readRequest(fd);
    if (mode == 0) sendAll(fd, "SSH-2.0-OpenSSH_9.2\r\n");
    if (mode == 1) sendAll(fd, "HTTP/1.1 20");  // then EOF without a line end
    ::close(fd);                                // mode 2: nothing at all
  });
  HealthTarget t = target(HealthType::Http, srv.port());
  EXPECT_EQ(firstReason(t), "bad status line");
  mode = 1;
  EXPECT_EQ(firstReason(t), "bad status line (no line end)");
  mode = 2;
  EXPECT_EQ(firstReason(t), "connection closed before a reply");
}

TEST(HealthProbeHttp, SilentServerTimesOut) {
  TcpServer* self = nullptr;
  TcpServer srv([&](int fd) { self->keep(fd); });  // accepts, reads nothing, says nothing
  self = &srv;
  Health st = Health::Unknown;
  double lat = 0;
  EXPECT_EQ(firstReason(target(HealthType::Http, srv.port(), 200), &st, &lat),
            "timeout after 200 ms");
  EXPECT_EQ(st, Health::Down);
  EXPECT_GE(lat, 200.0);
  EXPECT_LT(lat, 400.0);
}

TEST(HealthProbeHttp, SlowReplyFailsOnMaxLatency) {
  TcpServer srv([](int fd) {
    readRequest(fd);
    std::this_thread::sleep_for(250ms);
    sendAll(fd, "HTTP/1.1 200 OK\r\n\r\n");
    ::close(fd);
  });
  HealthTarget t = target(HealthType::Http, srv.port(), 500);
  t.cfg.max_latency_ms = 100;
  Health st = Health::Unknown;
  double lat = 0;
  std::string reason = firstReason(t, &st, &lat);
  EXPECT_EQ(st, Health::Down);
  ASSERT_GE(lat, 250.0);
  ASSERT_LT(lat, 500.0);
  // The message carries the measured latency, rounded up.
  EXPECT_EQ(reason, "latency " + std::to_string(static_cast<int>(std::ceil(lat))) + " ms > 100 ms");
}

TEST(HealthProbeUdp, AnyReplyOrTheExpectedOne) {
  UdpServer echo([](const std::string& req) { return req; });
  HealthTarget t = target(HealthType::Udp, echo.port());
  t.cfg.udp_payload = "are you there";
  Health st = Health::Unknown;
  EXPECT_EQ(firstReason(t, &st), "reply received");
  EXPECT_EQ(st, Health::Up);
  t.cfg.udp_expect = "are you there";
  EXPECT_EQ(firstReason(t, &st), "reply received");
  EXPECT_EQ(st, Health::Up);
  t.cfg.udp_expect = "pong";
  EXPECT_EQ(firstReason(t, &st), "reply mismatch");
  EXPECT_EQ(st, Health::Down);
}

TEST(HealthProbeUdp, ClosedPortIsRefusedThroughIcmp) {
  Health st = Health::Unknown;
  EXPECT_EQ(firstReason(target(HealthType::Udp, closedPort(SOCK_DGRAM)), &st),
            "connection refused");
  EXPECT_EQ(st, Health::Down);
}

TEST(HealthProbeUdp, SilentServerTimesOut) {
  UdpServer silent([](const std::string&) { return std::nullopt; });
  EXPECT_EQ(firstReason(target(HealthType::Udp, silent.port(), 150)), "timeout after 150 ms");
  EXPECT_GE(silent.received(), 1);
}

TEST(HealthProbeTcp, BackToUpAfterTheListenerReturns) {
  // fall 1, rise 2 on a port that refuses, then listens.
  uint16_t port = closedPort(SOCK_STREAM);
  HealthTarget t = target(HealthType::Tcp, port);
  t.cfg.rise = 2;
  HealthChecker c;
  c.setTargets({t});
  auto tr = runUntil(c, 1);
  ASSERT_EQ(tr.size(), 1u);
  EXPECT_EQ(describe(tr[0]), "k: unknown -> down (connection refused)");
  int l = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in a = loopback(port);
  ASSERT_EQ(::bind(l, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  ASSERT_EQ(::listen(l, 64), 0);  // the kernel completes handshakes without accept()
  tr = runUntil(c, 1);
  ::close(l);
  ASSERT_EQ(tr.size(), 1u);
  EXPECT_EQ(describe(tr[0]), "k: down -> up (connected)");
  EXPECT_EQ(c.status("k")->successes, 2u);
}

// A backend behind a VIP with proxy_protocol = "v2": it reads 16 bytes first and refuses (closes
// without a reply) unless they are the PROXY v2 LOCAL header, as HAProxy's accept-proxy does.
const std::string kLocalHeader("\x0d\x0a\x0d\x0a\x00\x0d\x0a\x51\x55\x49\x54\x0a\x20\x00\x00\x00", 16);

std::string readExactly(int fd, size_t want) {
  std::string got;
  char buf[64];
  while (got.size() < want) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 2000) <= 0) break;
    ssize_t n = ::recv(fd, buf, std::min(sizeof(buf), want - got.size()), 0);
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  return got;
}

TEST(HealthProbeProxyV2, HttpSendsTheLocalHeaderFirst) {
  std::mutex mu;
  std::vector<std::string> heads, requests;
  TcpServer srv([&](int fd) {
    const std::string head = readExactly(fd, kLocalHeader.size());
    std::string req;
    if (head == kLocalHeader) {
      req = readRequest(fd);
      sendAll(fd, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    }
    {
      std::lock_guard<std::mutex> g(mu);
      heads.push_back(head);
      requests.push_back(req);
    }
    ::close(fd);
  });
  HealthTarget t = target(HealthType::Http, srv.port());
  t.cfg.proxy_v2_local = true;
  Health st = Health::Unknown;
  EXPECT_EQ(firstReason(t, &st), "status 200");
  EXPECT_EQ(st, Health::Up);
  {
    std::lock_guard<std::mutex> g(mu);
    ASSERT_GE(heads.size(), 1u);
    EXPECT_EQ(heads[0], kLocalHeader);
    // The request follows the header unchanged.
    EXPECT_EQ(requests[0].rfind("GET / HTTP/1.1\r\nHost: 127.0.0.1:", 0), 0u) << requests[0];
  }

  // Negative control: the same server, a check without the header: the server reads the
  // request's first 16 bytes as a header, refuses, and the backend is down. (It closes with the
  // rest of the request unread, so the kernel resets the connection: RFC 2525 §2.17.)
  t.cfg.proxy_v2_local = false;
  EXPECT_EQ(firstReason(t, &st), "connection reset");
  EXPECT_EQ(st, Health::Down);
  std::lock_guard<std::mutex> g(mu);
  ASSERT_GE(heads.size(), 2u);
  EXPECT_EQ(heads.back(), "GET / HTTP/1.1\r\n");
}

TEST(HealthProbeProxyV2, TcpSendsTheLocalHeaderAndPassesOnConnect) {
  std::mutex mu;
  std::vector<std::string> heads;
  TcpServer srv([&](int fd) {
    // Whatever arrives before the check's reset: 16 bytes, or nothing (a plain tcp check).
    std::string head;
    char buf[64];
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 500) == 1) {
      ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
      if (n > 0) head.assign(buf, static_cast<size_t>(n));
    }
    ::close(fd);
    std::lock_guard<std::mutex> g(mu);
    heads.push_back(head);
  });
  HealthTarget t = target(HealthType::Tcp, srv.port());
  t.cfg.proxy_v2_local = true;
  Health st = Health::Unknown;
  EXPECT_EQ(firstReason(t, &st), "connected");
  EXPECT_EQ(st, Health::Up);
  for (int i = 0; i < 200; i++) {
    {
      std::lock_guard<std::mutex> g(mu);
      if (!heads.empty()) break;
    }
    std::this_thread::sleep_for(5ms);
  }
  std::lock_guard<std::mutex> g(mu);
  ASSERT_GE(heads.size(), 1u);
  EXPECT_EQ(heads[0], kLocalHeader);
}

TEST(HealthProbeProxyV2, AChangedHeaderSettingIsAnotherCheck) {
  HealthCheckConfig a, b;
  b.proxy_v2_local = true;
  EXPECT_TRUE(sameCheck(a, a));
  EXPECT_FALSE(sameCheck(a, b));
}

TEST(HealthProbeIpv6, HttpOverLoopbackWithABracketedHost) {
  int l = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_addr = in6addr_loopback;
  if (::bind(l, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    ::close(l);
    GTEST_SKIP() << "no IPv6 loopback";
  }
  ASSERT_EQ(::listen(l, 8), 0);
  socklen_t len = sizeof(a);
  ::getsockname(l, reinterpret_cast<sockaddr*>(&a), &len);
  const uint16_t port = ntohs(a.sin6_port);
  std::string request;
  std::thread srv([&] {
    pollfd p{l, POLLIN, 0};
    if (::poll(&p, 1, 3000) != 1) return;  // no check came: the assertions below fail
    int c = ::accept4(l, nullptr, nullptr, SOCK_CLOEXEC);
    request = readRequest(c);
    sendAll(c, "HTTP/1.1 204 No Content\r\n\r\n");
    ::close(c);
  });
  HealthTarget t = target(HealthType::Http, port);
  t.addr = IpAddr::parse("::1").value();
  t.source = IpAddr::parse("::1");
  Health st = Health::Unknown;
  EXPECT_EQ(firstReason(t, &st), "status 204");
  EXPECT_EQ(st, Health::Up);
  srv.join();
  ::close(l);
  EXPECT_NE(request.find("\r\nHost: [::1]:" + std::to_string(port) + "\r\n"), std::string::npos)
      << request;

  t.cfg.type = HealthType::Tcp;  // the listener is gone now
  EXPECT_EQ(firstReason(t, &st), "connection refused");
  EXPECT_EQ(st, Health::Down);
}

}  // namespace
}  // namespace l4lb::control
