// One health-check attempt, as a non-blocking state machine on one socket, so a single epoll
// loop can run a thousand of them at once (HealthChecker). Probes know nothing of schedules,
// rise/fall or max_latency (the checker owns those): they report what happened and how long it
// took. The socket part is shared (socket_check.h); a type implements its callbacks in its own
// file. ProbeFactory is the test seam: HealthChecker's tests pass fakes.
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

// One factory per health type (config.h, L4LB_HEALTH_TYPES), make<Id>Check, each defined in
// its type's file: tcp_check.cc (connect), http_check.cc (GET, status line), udp_check.cc
// (datagram and reply). makeNoneCheck gives nullptr: type none has no probe.
#define L4LB_DECLARE_CHECK(Id, name) std::unique_ptr<Probe> make##Id##Check(const HealthTarget& target);
L4LB_HEALTH_TYPES(L4LB_DECLARE_CHECK)
#undef L4LB_DECLARE_CHECK

// The real probe for target.cfg.type: the HealthChecker's default ProbeFactory.
std::unique_ptr<Probe> makeSocketProbe(const HealthTarget& target);

// "connection refused", "no route to host", ...: the words a reason uses for an errno.
std::string errnoReason(int err);

}  // namespace l4lb::control
