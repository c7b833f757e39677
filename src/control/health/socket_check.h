// What every socket-based health check shares: one non-blocking socket (stream or datagram),
// the optional source address, connect (RFC 9293 §3.5 for TCP; for UDP it only fixes the peer),
// sending a request in as many writes as the socket takes, and the result's latency. A type
// (tcp_check.cc, http_check.cc, udp_check.cc) derives from it and implements the callbacks:
// onConnected, then onReadable if it waits for a reply.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "control/health/probe.h"

namespace l4lb::control {

class SocketCheck : public Probe {
 public:
  enum class Transport : uint8_t { Stream, Datagram };

  SocketCheck(const HealthTarget& target, Transport transport) : target_(target), transport_(transport) {}
  ~SocketCheck() override;
  SocketCheck(const SocketCheck&) = delete;
  SocketCheck& operator=(const SocketCheck&) = delete;

  std::optional<ProbeResult> start(uint64_t now_us) final;
  int fd() const final { return fd_; }
  uint32_t events() const final;
  std::optional<ProbeResult> onReady(uint32_t ready, uint64_t now_us) final;

 protected:
  // The connection is up (for UDP: the socket is connected). A result ends the check; nullopt
  // waits, after sendRequest() or awaitReply(), for onReadable().
  virtual std::optional<ProbeResult> onConnected(uint64_t now_us) = 0;
  // The socket is readable (a reply, or a queued error). Only after awaitReply() or a
  // completed sendRequest().
  virtual std::optional<ProbeResult> onReadable(uint64_t now_us) = 0;

  // Sends `request` whole (on as many writable events as it takes), then waits for the reply.
  std::optional<ProbeResult> sendRequest(std::string request, uint64_t now_us);
  // Waits for the socket to become readable.
  void awaitReply() { phase_ = Phase::Receiving; }

  ProbeResult fail(std::string reason, uint64_t now_us) const;
  ProbeResult succeed(std::string reason, uint64_t now_us) const;

  // The PROXY v2 LOCAL header (HAProxy's "The PROXY protocol" §2.2, 16 bytes) when the check's
  // VIP sends PROXY headers (HealthCheckConfig::proxy_v2_local), else empty: a backend behind
  // such a VIP expects one first on every connection, and LOCAL says "use the real addresses".
  std::string proxyPrefix() const;

  const HealthTarget& target() const { return target_; }
  int socketFd() const { return fd_; }

 private:
  enum class Phase : uint8_t { Connecting, Sending, Receiving };

  std::optional<ProbeResult> sendPending(uint64_t now_us);

  HealthTarget target_;
  Transport transport_;
  int fd_ = -1;
  Phase phase_ = Phase::Connecting;
  uint64_t start_us_ = 0;
  std::string request_;
  size_t sent_ = 0;
};

}  // namespace l4lb::control
