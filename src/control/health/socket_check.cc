// The shared socket part of the health checks. Every system call returns at once; the checker's
// epoll loop calls onReady() when the socket is writable (connect finished, RFC 9293 §3.5
// handshake) or readable (a reply, or a queued ICMP error).
#include "control/health/socket_check.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "dataplane/fullnat/proxy_v2.h"

namespace l4lb::control {

namespace {

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

}  // namespace

SocketCheck::~SocketCheck() {
  if (fd_ >= 0) ::close(fd_);
}

std::optional<ProbeResult> SocketCheck::start(uint64_t now_us) {
  start_us_ = now_us;
  const bool stream = transport_ == Transport::Stream;
  const int family = target_.addr.isV4() ? AF_INET : AF_INET6;
  fd_ = ::socket(family, (stream ? SOCK_STREAM : SOCK_DGRAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0) return fail(std::string("socket: ") + std::strerror(errno), now_us);

  if (target_.source) {
    if (stream) {
      // Choose the source port at connect(), by the full 4-tuple, rather than reserving one
      // per socket at bind(): a thousand concurrent checks could otherwise run out of ports.
      int one = 1;
      ::setsockopt(fd_, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
    }
    sockaddr_storage src;
    socklen_t len = toSockaddr(*target_.source, 0, src);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&src), len) != 0)
      return fail("cannot bind source " + target_.source->str() + ": " + std::strerror(errno), now_us);
  }
  if (stream) {
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
  return onConnected(now_us);
}

uint32_t SocketCheck::events() const {
  return phase_ == Phase::Connecting || phase_ == Phase::Sending ? EPOLLOUT : EPOLLIN;
}

std::optional<ProbeResult> SocketCheck::onReady(uint32_t ready, uint64_t now_us) {
  switch (phase_) {
    case Phase::Connecting: {
      int err = 0;
      socklen_t len = sizeof(err);
      if (::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
      if (err != 0) return fail(errnoReason(err), now_us);
      if ((ready & EPOLLOUT) == 0) return std::nullopt;
      return onConnected(now_us);
    }
    case Phase::Sending:
      return sendPending(now_us);
    case Phase::Receiving:
      return onReadable(now_us);
  }
  return std::nullopt;
}

std::optional<ProbeResult> SocketCheck::sendRequest(std::string request, uint64_t now_us) {
  request_ = std::move(request);
  sent_ = 0;
  phase_ = Phase::Sending;
  return sendPending(now_us);
}

std::optional<ProbeResult> SocketCheck::sendPending(uint64_t now_us) {
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

std::string SocketCheck::proxyPrefix() const {
  if (!target_.cfg.proxy_v2_local) return {};
  uint8_t b[dataplane::fullnat::kProxyV2HdrLen];
  const size_t n = dataplane::fullnat::writeProxyV2Local(b);
  return std::string(reinterpret_cast<const char*>(b), n);
}

ProbeResult SocketCheck::fail(std::string reason, uint64_t now_us) const {
  return {false, std::move(reason), msBetween(start_us_, now_us)};
}

ProbeResult SocketCheck::succeed(std::string reason, uint64_t now_us) const {
  return {true, std::move(reason), msBetween(start_us_, now_us)};
}

}  // namespace l4lb::control
