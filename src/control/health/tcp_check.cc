// type tcp: the check passes when the TCP handshake completes (RFC 9293 §3.5); the socket is
// then reset, not closed gracefully (socket_check.cc).
#include "control/health/socket_check.h"

namespace l4lb::control {

namespace {

class TcpCheck final : public SocketCheck {
 public:
  explicit TcpCheck(const HealthTarget& t) : SocketCheck(t, Transport::Stream) {}

 private:
  std::optional<ProbeResult> onConnected(uint64_t now_us) override { return succeed("connected", now_us); }
  std::optional<ProbeResult> onReadable(uint64_t) override { return std::nullopt; }  // never waits for one
};

}  // namespace

std::unique_ptr<Probe> makeTcpCheck(const HealthTarget& target) { return std::make_unique<TcpCheck>(target); }

}  // namespace l4lb::control
