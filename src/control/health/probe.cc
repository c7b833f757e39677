// Real probes on non-blocking sockets. Every system call returns at once; the checker's epoll
// loop calls onReady() when the socket is writable (connect finished, RFC 9293 §3.5 handshake)
// or readable (a reply, or a queued ICMP error).
#include "control/health/probe.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <tuple>

namespace l4lb::control {

bool sameCheck(const HealthCheckConfig& a, const HealthCheckConfig& b) {
  auto tie = [](const HealthCheckConfig& c) {
    return std::tie(c.type, c.interval_ms, c.timeout_ms, c.rise, c.fall, c.max_latency_ms,
                    c.jitter_pct, c.port, c.http_path, c.http_host, c.http_expect, c.udp_payload,
                    c.udp_expect);
  };
  return tie(a) == tie(b);
}

std::string errnoReason(int err) {
  switch (err) {
    case ECONNREFUSED: return "connection refused";
    case ECONNRESET: return "connection reset";
    case EHOSTUNREACH: return "no route to host";
    case ENETUNREACH: return "network unreachable";
    case ETIMEDOUT: return "timed out (kernel)";
    case EADDRNOTAVAIL: return "no local address available";
    case EPIPE: return "connection closed";
    default: return std::strerror(err);
  }
}

namespace {

constexpr size_t kMaxStatusLine = 1024;
constexpr size_t kMaxUdpReply = 65536;

// sockaddr for an address and a host-order port.
socklen_t toSockaddr(const IpAddr& a, uint16_t port, sockaddr_storage& ss) {
  std::memset(&ss, 0, sizeof(ss));
  if (a.isV4()) {
    auto* s = reinterpret_cast<sockaddr_in*>(&ss);
    s->sin_family = AF_INET;
    s->sin_port = htons(port);
    std::memcpy(&s->sin_addr, a.bytes.data(), 4);
    return sizeof(sockaddr_in);
  }
  auto* s = reinterpret_cast<sockaddr_in6*>(&ss);
  s->sin6_family = AF_INET6;
  s->sin6_port = htons(port);
  std::memcpy(&s->sin6_addr, a.bytes.data(), 16);
  return sizeof(sockaddr_in6);
}

double msBetween(uint64_t from_us, uint64_t to_us) {
  return to_us > from_us ? static_cast<double>(to_us - from_us) / 1000.0 : 0.0;
}

bool inExpected(const HealthCheckConfig& cfg, int status) {
  if (cfg.http_expect.empty()) return status >= 200 && status <= 299;
  for (auto [lo, hi] : cfg.http_expect) {
    if (status >= lo && status <= hi) return true;
  }
  return false;
}

// "HTTP/1.1 503 Service Unavailable" -> 503 (RFC 9112 §4: status-line = HTTP-version SP
// status-code SP [reason-phrase]); -1 if the line is not one.
int parseStatusLine(std::string_view line) {
  if (line.size() < 12 || line.substr(0, 5) != "HTTP/") return -1;
  auto digit = [](char c) { return c >= '0' && c <= '9'; };
  if (!digit(line[5]) || line[6] != '.' || !digit(line[7]) || line[8] != ' ') return -1;
  if (!digit(line[9]) || !digit(line[10]) || !digit(line[11])) return -1;
  if (line.size() > 12 && line[12] != ' ') return -1;
  return (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
}

class SocketProbe final : public Probe {
 public:
  explicit SocketProbe(const HealthTarget& t) : target_(t) {}
  ~SocketProbe() override {
    if (fd_ >= 0) ::close(fd_);
  }
  SocketProbe(const SocketProbe&) = delete;
  SocketProbe& operator=(const SocketProbe&) = delete;

  std::optional<ProbeResult> start(uint64_t now_us) override {
    start_us_ = now_us;
    const bool udp = target_.cfg.type == HealthType::Udp;
    const int family = target_.addr.isV4() ? AF_INET : AF_INET6;
    fd_ = ::socket(family, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd_ < 0) return fail(std::string("socket: ") + std::strerror(errno), now_us);

    if (target_.source) {
      if (!udp) {
        // Choose the source port at connect(), by the full 4-tuple, rather than reserving one
        // per socket at bind(): a thousand concurrent checks could otherwise run out of ports.
        int one = 1;
        ::setsockopt(fd_, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
      }
      sockaddr_storage src;
      socklen_t len = toSockaddr(*target_.source, 0, src);
      if (::bind(fd_, reinterpret_cast<sockaddr*>(&src), len) != 0)
        return fail("cannot bind source " + target_.source->str() + ": " + std::strerror(errno),
                    now_us);
    }
    if (!udp) {
      // Close with RST rather than leave a TIME_WAIT socket per check (HAProxy does the same
      // for its checks): at 1000 checks a second they would pile up by the ten thousand.
      linger lg{1, 0};
      ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    }

    sockaddr_storage dst;
    socklen_t len = toSockaddr(target_.addr, target_.port, dst);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&dst), len) != 0) {
      if (errno != EINPROGRESS) return fail(errnoReason(errno), now_us);
      phase_ = Phase::Connecting;
      return std::nullopt;
    }
    return connected(now_us);
  }

  int fd() const override { return fd_; }

  uint32_t events() const override {
    return phase_ == Phase::Connecting || phase_ == Phase::Sending ? EPOLLOUT : EPOLLIN;
  }

  std::optional<ProbeResult> onReady(uint32_t ready, uint64_t now_us) override {
    switch (phase_) {
      case Phase::Connecting: {
        int err = 0;
        socklen_t len = sizeof(err);
        if (::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
        if (err != 0) return fail(errnoReason(err), now_us);
        if ((ready & EPOLLOUT) == 0) return std::nullopt;
        return connected(now_us);
      }
      case Phase::Sending:
        return sendRequest(now_us);
      case Phase::Receiving:
        return target_.cfg.type == HealthType::Udp ? receiveDatagram(now_us)
                                                   : receiveStatus(now_us);
    }
    return std::nullopt;
  }

 private:
  enum class Phase : uint8_t { Connecting, Sending, Receiving };

  ProbeResult fail(std::string reason, uint64_t now_us) const {
    return {false, std::move(reason), msBetween(start_us_, now_us)};
  }
  ProbeResult succeed(std::string reason, uint64_t now_us) const {
    return {true, std::move(reason), msBetween(start_us_, now_us)};
  }

  std::optional<ProbeResult> connected(uint64_t now_us) {
    switch (target_.cfg.type) {
      case HealthType::Http:
        request_ = httpRequest();
        phase_ = Phase::Sending;
        return sendRequest(now_us);
      case HealthType::Udp: {
        phase_ = Phase::Receiving;
        const std::string& p = target_.cfg.udp_payload;
        if (::send(fd_, p.data(), p.size(), MSG_NOSIGNAL) < 0 && errno != EAGAIN)
          return fail(errnoReason(errno), now_us);
        return std::nullopt;
      }
      default:
        return succeed("connected", now_us);
    }
  }

  // RFC 9112 §3: origin-form request; Connection: close so the backend ends the exchange.
  std::string httpRequest() const {
    const HealthCheckConfig& c = target_.cfg;
    std::string host = c.http_host;
    if (host.empty()) {
      // RFC 9110 §7.2: Host is uri-host [":" port]; IPv6 literals in brackets (RFC 3986 §3.2.2).
      host = target_.addr.isV4() ? target_.addr.str() : "[" + target_.addr.str() + "]";
      if (target_.port != 80) host += ":" + std::to_string(target_.port);
    }
    return "GET " + c.http_path + " HTTP/1.1\r\nHost: " + host +
           "\r\nUser-Agent: l4lb-health\r\nAccept: */*\r\nConnection: close\r\n\r\n";
  }

  std::optional<ProbeResult> sendRequest(uint64_t now_us) {
    while (sent_ < request_.size()) {
      ssize_t n = ::send(fd_, request_.data() + sent_, request_.size() - sent_, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) return std::nullopt;
        return fail(errnoReason(errno), now_us);
      }
      sent_ += static_cast<size_t>(n);
    }
    phase_ = Phase::Receiving;
    return std::nullopt;
  }

  std::optional<ProbeResult> receiveStatus(uint64_t now_us) {
    char buf[512];
    for (;;) {
      ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
      if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) return std::nullopt;
        return fail(errnoReason(errno), now_us);
      }
      size_t eol = reply_.size();
      reply_.append(buf, static_cast<size_t>(n));
      size_t nl = reply_.find('\n', eol);
      if (nl == std::string::npos) {
        if (n == 0) {
          return fail(reply_.empty() ? "connection closed before a reply"
                                     : "bad status line (no line end)", now_us);
        }
        if (reply_.size() > kMaxStatusLine) return fail("bad status line (too long)", now_us);
        continue;
      }
      std::string_view line(reply_.data(), nl);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      int status = parseStatusLine(line);
      if (status < 0) return fail("bad status line", now_us);
      std::string reason = "status " + std::to_string(status);
      return inExpected(target_.cfg, status) ? succeed(reason, now_us) : fail(reason, now_us);
    }
  }

  std::optional<ProbeResult> receiveDatagram(uint64_t now_us) {
    reply_.resize(kMaxUdpReply);
    ssize_t n = ::recv(fd_, reply_.data(), reply_.size(), MSG_TRUNC);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) return std::nullopt;
      // On a connected UDP socket an ICMP port unreachable comes back as ECONNREFUSED.
      return fail(errnoReason(errno), now_us);
    }
    const auto& expect = target_.cfg.udp_expect;
    if (expect && (static_cast<size_t>(n) != expect->size() ||
                   std::memcmp(reply_.data(), expect->data(), expect->size()) != 0))
      return fail("reply mismatch", now_us);
    return succeed("reply received", now_us);
  }

  HealthTarget target_;
  int fd_ = -1;
  Phase phase_ = Phase::Connecting;
  uint64_t start_us_ = 0;
  std::string request_;
  size_t sent_ = 0;
  std::string reply_;
};

}  // namespace

std::unique_ptr<Probe> makeSocketProbe(const HealthTarget& target) {
  if (target.cfg.type == HealthType::None) return nullptr;
  return std::make_unique<SocketProbe>(target);
}

}  // namespace l4lb::control
