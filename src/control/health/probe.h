// One health-check attempt, as a non-blocking state machine on one socket, so a single epoll
// loop can run a thousand of them at once (HealthChecker). Probes know nothing of schedules,
// rise/fall or max_latency: they report what happened and how long it took.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "control/health/health_target.h"

namespace l4lb::control {

struct ProbeResult {
  bool ok = false;
  std::string reason;       // "connected", "status 200", "connection refused", ...
  double latency_ms = 0;    // from the start of connect to the reply (or the failure)
};

class Probe {
 public:
  virtual ~Probe() = default;
  // Begins the attempt at `now_us` (the checker's clock). A result means it is already over
  // (bind failed, connect refused at once); otherwise it waits for events() on fd().
  virtual std::optional<ProbeResult> start(uint64_t now_us) = 0;
  // -1: no descriptor (test fakes); only the checker's deadline ends such a probe.
  virtual int fd() const = 0;
  // The epoll events the probe waits for now (EPOLLOUT while connecting, EPOLLIN after).
  virtual uint32_t events() const = 0;
  // fd() reported `ready` (epoll event bits); a result when the attempt is over.
  virtual std::optional<ProbeResult> onReady(uint32_t ready, uint64_t now_us) = 0;
};

using ProbeFactory = std::function<std::unique_ptr<Probe>(const HealthTarget&)>;

// The real probes: tcp (connect), http (GET, status line), udp (datagram and reply).
// type none has no probe (nullptr).
std::unique_ptr<Probe> makeSocketProbe(const HealthTarget& target);

// "connection refused", "no route to host", ...: the words a reason uses for an errno.
std::string errnoReason(int err);

}  // namespace l4lb::control
