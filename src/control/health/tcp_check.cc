// type tcp: the check passes when the TCP handshake completes (RFC 9293 §3.5); the socket is
// then reset, not closed gracefully (socket_check.cc). Behind a VIP that sends PROXY v2 headers
// the LOCAL header is written first (16 bytes on a fresh connection: the send buffer takes them
// whole, so a short write is a failure, not a wait).
#include <sys/socket.h>

#include <cerrno>

#include "control/health/socket_check.h"

namespace l4lb::control {

namespace {

class TcpCheck final : public SocketCheck {
 public:
  explicit TcpCheck(const HealthTarget& t) : SocketCheck(t, Transport::Stream) {}

 private:
  std::optional<ProbeResult> onConnected(uint64_t now_us) override {
    const std::string prefix = proxyPrefix();
    if (!prefix.empty()) {
      const ssize_t n = ::send(socketFd(), prefix.data(), prefix.size(), MSG_NOSIGNAL);
      if (n < 0) return fail(errnoReason(errno), now_us);
      if (size_t(n) != prefix.size()) return fail("PROXY v2 header: short write", now_us);
    }
    return succeed("connected", now_us);
  }
  std::optional<ProbeResult> onReadable(uint64_t) override { return std::nullopt; }  // never waits for one
};

}  // namespace

std::unique_ptr<Probe> makeTcpCheck(const HealthTarget& target) { return std::make_unique<TcpCheck>(target); }

}  // namespace l4lb::control
