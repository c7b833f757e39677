// type udp: one datagram (udp_payload) to the backend; any reply passes, or only udp_expect when
// set. An ICMP port unreachable fails the check at once ("connection refused"); silence ends
// at the checker's timeout.
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "control/health/socket_check.h"

namespace l4lb::control {

namespace {

constexpr size_t kMaxUdpReply = 65536;

class UdpCheck final : public SocketCheck {
 public:
  explicit UdpCheck(const HealthTarget& t) : SocketCheck(t, Transport::Datagram) {}

 private:
  std::optional<ProbeResult> onConnected(uint64_t now_us) override {
    awaitReply();
    const std::string& p = target().cfg.udp_payload;
    if (::send(socketFd(), p.data(), p.size(), MSG_NOSIGNAL) < 0 && errno != EAGAIN)
      return fail(errnoReason(errno), now_us);
    return std::nullopt;
  }

  std::optional<ProbeResult> onReadable(uint64_t now_us) override {
    reply_.resize(kMaxUdpReply);
    ssize_t n = ::recv(socketFd(), reply_.data(), reply_.size(), MSG_TRUNC);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) return std::nullopt;
      // On a connected UDP socket an ICMP port unreachable comes back as ECONNREFUSED.
      return fail(errnoReason(errno), now_us);
    }
    const auto& expect = target().cfg.udp_expect;
    if (expect && (static_cast<size_t>(n) != expect->size() || std::memcmp(reply_.data(), expect->data(), expect->size()) != 0))
      return fail("reply mismatch", now_us);
    return succeed("reply received", now_us);
  }

  std::string reply_;
};

}  // namespace

std::unique_ptr<Probe> makeUdpCheck(const HealthTarget& target) { return std::make_unique<UdpCheck>(target); }

}  // namespace l4lb::control
