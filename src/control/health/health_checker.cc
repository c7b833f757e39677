#include "control/health/health_checker.h"

#include <sys/epoll.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <stdexcept>

namespace l4lb::control {

namespace {

// Events taken per epoll_wait; poll() repeats until fewer come back.
constexpr int kEventBatch = 256;
// Descriptors kept free for everything else the process does (ports, logs, control socket).
constexpr rlim_t kSpareFds = 256;

uint64_t monotonicUs() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000u + static_cast<uint64_t>(ts.tv_nsec) / 1000u;
}

bool sameTarget(const HealthTarget& a, const HealthTarget& b) {
  return a.addr == b.addr && a.port == b.port && a.source == b.source && sameCheck(a.cfg, b.cfg);
}

}  // namespace

std::string describe(const HealthTransition& t) {
  return t.key + ": " + std::string(toString(t.from)) + " -> " + std::string(toString(t.to)) +
         " (" + t.reason + ")";
}

HealthChecker::HealthChecker()
    : HealthChecker(monotonicUs, makeSocketProbe, std::random_device{}()) {}

HealthChecker::HealthChecker(Clock clock, ProbeFactory factory, uint64_t seed)
    : clock_(std::move(clock)), factory_(std::move(factory)), rng_(seed) {
  epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0)
    throw std::runtime_error(std::string("health checker: epoll_create1: ") + std::strerror(errno));
}

HealthChecker::~HealthChecker() {
  entries_.clear();  // closes the probes' sockets before their epoll set
  if (epoll_fd_ >= 0) ::close(epoll_fd_);
}

void HealthChecker::raiseFileLimit(size_t targets) {
  // One socket per check in flight; at most one check per target is in flight.
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
  const rlim_t need = static_cast<rlim_t>(targets) + kSpareFds;
  if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= need) return;
  rl.rlim_cur = rl.rlim_max;  // as far as an unprivileged raise goes; the hard limit is policy
  ::setrlimit(RLIMIT_NOFILE, &rl);
}

void HealthChecker::setTargets(std::vector<HealthTarget> targets) {
  const uint64_t now = clock_();
  raiseFileLimit(targets.size());
  std::map<std::string, uint64_t> keep;
  std::vector<HealthTarget> fresh;
  for (auto& t : targets) {
    if (keep.count(t.key) != 0) continue;
    auto it = by_key_.find(t.key);
    if (it != by_key_.end() && sameTarget(entries_.at(it->second).target, t)) {
      keep.emplace(t.key, it->second);
      continue;
    }
    keep.emplace(t.key, 0);  // placeholder: added below, after the old entry is gone
    fresh.push_back(std::move(t));
  }
  for (auto it = by_key_.begin(); it != by_key_.end();) {
    auto k = keep.find(it->first);
    if (k == keep.end() || k->second != it->second) {
      erase(it->second);
      it = by_key_.erase(it);
    } else {
      ++it;
    }
  }
  // Transitions already queued for keys that are gone or reset would describe a target that
  // no longer exists.
  std::erase_if(pending_, [&](const HealthTransition& p) { return by_key_.count(p.key) == 0; });
  for (auto& t : fresh) add(std::move(t), now);
}

void HealthChecker::add(HealthTarget target, uint64_t now_us) {
  const uint64_t id = next_id_++;
  Entry& e = entries_[id];
  e.target = std::move(target);
  e.status.state = Health::Unknown;
  by_key_[e.target.key] = id;
  if (e.target.cfg.type == HealthType::None) {
    e.state.force(Health::Up);
    e.status.state = Health::Up;
    e.status.last_change_ms = now_us / 1000;
    e.status.last_change_reason = "no health check";
    pending_.push_back({e.target.key, Health::Unknown, Health::Up, "no health check",
                        now_us / 1000, 0.0});
    return;
  }
  // Spread the first checks over the jitter window, so a thousand new targets do not all
  // connect in the same millisecond.
  const uint64_t window =
      static_cast<uint64_t>(e.target.cfg.interval_ms) * e.target.cfg.jitter_pct * 10;  // us
  const uint64_t first = window == 0 ? 0 : std::uniform_int_distribution<uint64_t>(0, window)(rng_);
  timers_.push({now_us + first, TimerKind::Start, id, 0});
}

void HealthChecker::erase(uint64_t id) {
  auto it = entries_.find(id);
  if (it == entries_.end()) return;
  unregister(it->second);
  entries_.erase(it);
}

uint64_t HealthChecker::drawInterval(const HealthCheckConfig& cfg) {
  const uint64_t base = static_cast<uint64_t>(cfg.interval_ms) * 1000;
  const uint64_t delta = base * cfg.jitter_pct / 100;
  if (delta == 0) return base;
  return std::uniform_int_distribution<uint64_t>(base - delta, base + delta)(rng_);
}

void HealthChecker::unregister(Entry& e) {
  if (e.probe && e.registered != 0 && e.probe->fd() >= 0)
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, e.probe->fd(), nullptr);
  e.registered = 0;
  e.probe.reset();
}

// Keeps the epoll registration in step with what the probe waits for now.
void HealthChecker::syncEvents(uint64_t id, Entry& e) {
  const int fd = e.probe->fd();
  if (fd < 0) return;
  const uint32_t want = e.probe->events();
  if (want == e.registered) return;
  epoll_event ev{};
  ev.events = want;
  ev.data.u64 = id;
  int rc = ::epoll_ctl(epoll_fd_, e.registered == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd, &ev);
  if (rc == 0) e.registered = want;
  // A failed registration leaves the probe to its deadline: it ends as a timeout, not a hang.
}

void HealthChecker::startCheck(uint64_t id, Entry& e, uint64_t due_us, uint64_t now_us) {
  e.due_us = due_us;
  e.start_us = now_us;
  e.attempt++;
  e.probe = factory_(e.target);
  if (!e.probe) {
    finish(e, {false, "no probe for type " + std::string(toString(e.target.cfg.type)), 0.0}, now_us);
    return;
  }
  if (auto r = e.probe->start(now_us)) {
    finish(e, std::move(*r), now_us);
    return;
  }
  syncEvents(id, e);
  timers_.push({now_us + static_cast<uint64_t>(e.target.cfg.timeout_ms) * 1000,
                TimerKind::Deadline, id, e.attempt});
}

void HealthChecker::finish(Entry& e, ProbeResult r, uint64_t now_us) {
  unregister(e);
  const HealthCheckConfig& cfg = e.target.cfg;
  // "Slow counts as well as unresponsive": a reply later than max_latency is a failure.
  if (r.ok && cfg.max_latency_ms != 0 && r.latency_ms > cfg.max_latency_ms) {
    r.ok = false;
    r.reason = "latency " + std::to_string(static_cast<uint64_t>(std::ceil(r.latency_ms))) +
               " ms > " + std::to_string(cfg.max_latency_ms) + " ms";
  }
  HealthState::Step step = e.state.record(r.ok, cfg.rise, cfg.fall);
  Status& s = e.status;
  s.state = e.state.state();
  s.successes = e.state.successes();
  s.failures = e.state.failures();
  s.checks++;
  s.last_reason = r.reason;
  s.last_latency_ms = r.latency_ms;
  if (step.changed) {
    s.last_change_ms = now_us / 1000;
    s.last_change_reason = r.reason;
    pending_.push_back({e.target.key, step.from, step.to, r.reason, now_us / 1000, r.latency_ms});
  }
  if (observer_)
    observer_({e.target.key, e.due_us, e.start_us, now_us, r.ok, r.reason, r.latency_ms});
}

bool HealthChecker::timerValid(const Timer& t) const {
  auto it = entries_.find(t.id);
  if (it == entries_.end()) return false;
  if (t.kind == TimerKind::Deadline) return it->second.probe && it->second.attempt == t.attempt;
  return true;  // one start timer per entry is outstanding at any time
}

int HealthChecker::timeoutMs() const {
  if (!pending_.empty()) return 0;
  while (!timers_.empty() && !timerValid(timers_.top())) timers_.pop();
  if (timers_.empty()) return -1;
  const uint64_t now = clock_();
  const uint64_t at = timers_.top().at_us;
  if (at <= now) return 0;
  // Round up: waking a millisecond early would only spin through an empty poll().
  const uint64_t ms = (at - now + 999) / 1000;
  return ms > INT32_MAX ? INT32_MAX : static_cast<int>(ms);
}

std::vector<HealthTransition> HealthChecker::poll() {
  epoll_event events[kEventBatch];
  for (;;) {
    int n = ::epoll_wait(epoll_fd_, events, kEventBatch, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    const uint64_t now = clock_();
    for (int i = 0; i < n; i++) {
      const uint64_t id = events[i].data.u64;
      auto it = entries_.find(id);
      if (it == entries_.end() || !it->second.probe) continue;
      Entry& e = it->second;
      if (auto r = e.probe->onReady(events[i].events, now)) {
        finish(e, std::move(*r), now);
        if (e.start_pending) {
          e.start_pending = false;
          startCheck(id, e, e.pending_due_us, now);
        }
      } else {
        syncEvents(id, e);
      }
    }
    if (n < kEventBatch) break;
  }

  const uint64_t now = clock_();
  while (!timers_.empty() && timers_.top().at_us <= now) {
    const Timer t = timers_.top();
    timers_.pop();
    if (!timerValid(t)) continue;
    Entry& e = entries_.at(t.id);
    if (t.kind == TimerKind::Deadline) {
      finish(e, {false, "timeout after " + std::to_string(e.target.cfg.timeout_ms) + " ms",
                 static_cast<double>(now - e.start_us) / 1000.0},
             now);
      if (e.start_pending) {
        e.start_pending = false;
        startCheck(t.id, e, e.pending_due_us, now);
      }
      continue;
    }
    uint64_t next = t.at_us + drawInterval(e.target.cfg);
    // After a stall longer than an interval (a stopped process, a suspended VM), skip the
    // checks that were missed rather than run them all at once.
    if (next <= now) next = now + drawInterval(e.target.cfg);
    timers_.push({next, TimerKind::Start, t.id, 0});
    if (e.probe) {
      // The previous check still runs; this one starts when it ends (and is late by that much).
      if (!e.start_pending) e.pending_due_us = t.at_us;
      e.start_pending = true;
      continue;
    }
    startCheck(t.id, e, t.at_us, now);
  }
  std::vector<HealthTransition> out;
  out.swap(pending_);
  return out;
}

const HealthChecker::Status* HealthChecker::status(const std::string& key) const {
  auto it = by_key_.find(key);
  if (it == by_key_.end()) return nullptr;
  return &entries_.at(it->second).status;
}

}  // namespace l4lb::control
