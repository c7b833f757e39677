// Active health checks for every backend, in one thread, on one epoll set: each check is a
// non-blocking probe (probe.h), so a thousand targets at a 1 s interval cost a thousand
// connects a second and never wait on one another. The caller owns the loop: it adds fd() to
// its own epoll, and calls poll() when that fd is readable or timeoutMs() has passed.
//
// Thread ownership: one thread (the daemon's control loop) calls every method.
//
// Scheduling: a new target's first check starts within interval * jitter_pct/100 of
// setTargets(); each next check is due one interval, drawn from interval * (1 +- jitter/100),
// after the previous one was due (not after it finished, so checks do not drift late). If the
// previous check is still running when the next is due (timeout_ms close to interval_ms and a
// short draw), the next starts as soon as it ends.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <queue>
#include <random>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "control/health/health_state.h"
#include "control/health/health_target.h"
#include "control/health/probe.h"

namespace l4lb::control {

struct HealthTransition {
  std::string key;
  Health from;
  Health to;
  std::string reason;   // the deciding result: "connection refused", "status 503", ...
  uint64_t at_ms;       // checker clock (CLOCK_MONOTONIC for the real one)
  double latency_ms;    // of the deciding probe
};

// "key: up -> down (status 503)": one log line per transition.
std::string describe(const HealthTransition& t);

// One finished check, for observers (the test driver, metrics).
struct CheckRecord {
  const std::string& key;
  uint64_t due_us;      // when it was scheduled to start
  uint64_t start_us;    // when it started (start - due = lateness)
  uint64_t end_us;
  bool ok;              // after the max_latency rule
  const std::string& reason;
  double latency_ms;
};

class HealthChecker {
 public:
  // Monotonic time in microseconds.
  using Clock = std::function<uint64_t()>;

  struct Status {
    Health state;
    uint32_t successes, failures;  // consecutive
    uint64_t checks;               // finished checks
    std::string last_reason;
    double last_latency_ms;
    uint64_t last_change_ms;
    std::string last_change_reason;
  };

  // Real clock (CLOCK_MONOTONIC), real probes (makeSocketProbe), jitter from random_device.
  HealthChecker();
  // Tests: a fake clock, fake probes and a fixed seed for the jitter draws.
  HealthChecker(Clock clock, ProbeFactory factory, uint64_t seed);
  ~HealthChecker();
  HealthChecker(const HealthChecker&) = delete;
  HealthChecker& operator=(const HealthChecker&) = delete;

  // Keeps the state and counts of keys whose addr, port, source and cfg did not change; new
  // or changed keys start Unknown and are probed within the jitter; removed keys are
  // forgotten (their sockets closed). Keys are unique; a repeated key keeps its first entry.
  void setTargets(std::vector<HealthTarget> targets);

  int fd() const { return epoll_fd_; }
  // ms until the next check start or probe deadline; 0 if poll() has work now; -1: nothing.
  int timeoutMs() const;
  // Never blocks: completes ready probes, fails overdue ones, starts due ones.
  std::vector<HealthTransition> poll();

  const Status* status(const std::string& key) const;
  size_t size() const { return by_key_.size(); }

  void setCheckObserver(std::function<void(const CheckRecord&)> observer) {
    observer_ = std::move(observer);
  }

 private:
  struct Entry {
    HealthTarget target;
    HealthState state;
    Status status{};
    std::unique_ptr<Probe> probe;   // the check in flight, if any
    uint32_t registered = 0;        // epoll events the probe's fd is registered for; 0 = none
    uint64_t attempt = 0;           // matches the deadline timer of the check in flight
    uint64_t due_us = 0;            // of the check in flight
    uint64_t start_us = 0;
    bool start_pending = false;     // a check came due while one was in flight
    uint64_t pending_due_us = 0;
  };
  enum class TimerKind : uint8_t { Deadline, Start };  // deadlines first at equal times
  struct Timer {
    uint64_t at_us;
    TimerKind kind;
    uint64_t id;
    uint64_t attempt;
    bool operator>(const Timer& o) const {
      return std::tie(at_us, kind, id) > std::tie(o.at_us, o.kind, o.id);
    }
  };

  void add(HealthTarget target, uint64_t now_us);
  void erase(uint64_t id);
  uint64_t drawInterval(const HealthCheckConfig& cfg);
  void startCheck(uint64_t id, Entry& e, uint64_t due_us, uint64_t now_us);
  void finish(Entry& e, ProbeResult r, uint64_t now_us);
  void unregister(Entry& e);
  void syncEvents(uint64_t id, Entry& e);
  bool timerValid(const Timer& t) const;
  void raiseFileLimit(size_t targets);

  Clock clock_;
  ProbeFactory factory_;
  std::mt19937_64 rng_;
  int epoll_fd_ = -1;
  uint64_t next_id_ = 1;
  std::map<std::string, uint64_t> by_key_;
  std::unordered_map<uint64_t, Entry> entries_;
  // Stale timers (removed targets, finished checks) are skipped when they surface.
  mutable std::priority_queue<Timer, std::vector<Timer>, std::greater<>> timers_;
  std::vector<HealthTransition> pending_;  // type none: Up without a probe, reported by poll()
  std::function<void(const CheckRecord&)> observer_;
};

}  // namespace l4lb::control
