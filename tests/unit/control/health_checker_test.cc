// HealthChecker with a fake clock and scripted probes: scheduling, jitter, timeouts, the
// max_latency rule, transitions with their reasons, and setTargets keeping or resetting state.
#include "control/health/health_checker.h"

#include <gtest/gtest.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace l4lb::control {
namespace {

// What a scripted probe does when started.
struct Step {
  enum Kind { Succeed, Fail, Hang, Event } kind;
  std::string reason;   // Succeed/Fail
  double latency_ms;    // Succeed/Fail
};
Step ok(double latency = 1.0) { return {Step::Succeed, "connected", latency}; }
Step bad(std::string reason) { return {Step::Fail, std::move(reason), 2.0}; }
Step hang() { return {Step::Hang, "", 0}; }
// Waits on an eventfd the test writes to; succeeds with the fake clock's elapsed time.
Step event() { return {Step::Event, "", 0}; }

struct Harness {
  uint64_t now_us = 1'000'000;
  std::map<std::string, std::deque<Step>> script;  // per key; empty: ok()
  std::map<std::string, int> started;               // probes created, per key
  int live = 0;                                     // probes not yet destroyed
  int max_live_per_key = 0;
  std::map<std::string, int> live_per_key;
  std::map<std::string, int> event_fd;              // the eventfd of a key's waiting probe
  std::vector<HealthChecker::Clock::result_type> dues, starts;
  std::map<std::string, std::vector<uint64_t>> due_by_key;
  std::unique_ptr<HealthChecker> checker;

  class FakeProbe : public Probe {
   public:
    FakeProbe(Harness& h, std::string key, Step step) : h_(h), key_(std::move(key)), step_(step) {
      h_.live++;
      int& n = h_.live_per_key[key_];
      n++;
      h_.max_live_per_key = std::max(h_.max_live_per_key, n);
    }
    ~FakeProbe() override {
      h_.live--;
      h_.live_per_key[key_]--;
      if (efd_ >= 0) {
        h_.event_fd.erase(key_);
        ::close(efd_);
      }
    }
    std::optional<ProbeResult> start(uint64_t now_us) override {
      start_us_ = now_us;
      switch (step_.kind) {
        case Step::Succeed: return ProbeResult{true, step_.reason, step_.latency_ms};
        case Step::Fail: return ProbeResult{false, step_.reason, step_.latency_ms};
        case Step::Hang: return std::nullopt;
        case Step::Event:
          efd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
          h_.event_fd[key_] = efd_;
          return std::nullopt;
      }
      return std::nullopt;
    }
    int fd() const override { return efd_; }
    uint32_t events() const override { return EPOLLIN; }
    std::optional<ProbeResult> onReady(uint32_t, uint64_t now_us) override {
      return ProbeResult{true, "status 200", static_cast<double>(now_us - start_us_) / 1000.0};
    }

   private:
    Harness& h_;
    std::string key_;
    Step step_;
    int efd_ = -1;
    uint64_t start_us_ = 0;
  };

  explicit Harness(uint64_t seed = 1) {
    checker = std::make_unique<HealthChecker>(
        [this] { return now_us; },
        [this](const HealthTarget& t) -> std::unique_ptr<Probe> {
          started[t.key]++;
          auto& q = script[t.key];
          Step s = ok();
          if (!q.empty()) {
            s = q.front();
            q.pop_front();
          }
          return std::make_unique<FakeProbe>(*this, t.key, s);
        },
        seed);
    checker->setCheckObserver([this](const CheckRecord& r) {
      dues.push_back(r.due_us);
      starts.push_back(r.start_us);
      due_by_key[r.key].push_back(r.due_us);
    });
  }

  void advanceMs(uint64_t ms) { now_us += ms * 1000; }
  // Advances to the checker's next timer and polls.
  std::vector<HealthTransition> step() {
    int t = checker->timeoutMs();
    EXPECT_GE(t, 0);
    now_us += static_cast<uint64_t>(t) * 1000;
    return checker->poll();
  }
  void fire(const std::string& key) {
    ASSERT_EQ(event_fd.count(key), 1u) << key;
    ASSERT_EQ(::eventfd_write(event_fd[key], 1), 0);
  }
};

HealthCheckConfig tcp(uint32_t interval, uint32_t timeout, uint32_t rise, uint32_t fall,
                      uint32_t jitter = 0) {
  HealthCheckConfig c;
  c.type = HealthType::Tcp;
  c.interval_ms = interval;
  c.timeout_ms = timeout;
  c.rise = rise;
  c.fall = fall;
  c.jitter_pct = jitter;
  return c;
}

HealthTarget target(std::string key, HealthCheckConfig cfg, std::string addr = "198.18.2.11") {
  HealthTarget t;
  t.key = std::move(key);
  t.addr = IpAddr::parse(addr).value();
  t.port = 80;
  t.cfg = cfg;
  return t;
}

TEST(HealthChecker, NothingScheduledWithoutTargets) {
  Harness h;
  EXPECT_EQ(h.checker->timeoutMs(), -1);
  EXPECT_TRUE(h.checker->poll().empty());
  EXPECT_EQ(h.checker->status("x"), nullptr);
  EXPECT_GE(h.checker->fd(), 0);
}

TEST(HealthChecker, FirstResultDecidesThenFallAndRise) {
  Harness h;
  h.script["a"] = {ok(3), bad("connection refused"), bad("connection refused"),
                   bad("status 503"), ok(), ok(), ok()};
  h.checker->setTargets({target("a", tcp(1000, 500, 3, 3))});
  const HealthChecker::Status* s = h.checker->status("a");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->state, Health::Unknown);
  // jitter 0: the first check is due at once.
  EXPECT_EQ(h.checker->timeoutMs(), 0);
  auto tr = h.checker->poll();
  ASSERT_EQ(tr.size(), 1u);
  EXPECT_EQ(tr[0].key, "a");
  EXPECT_EQ(tr[0].from, Health::Unknown);
  EXPECT_EQ(tr[0].to, Health::Up);
  EXPECT_EQ(tr[0].reason, "connected");
  EXPECT_EQ(tr[0].at_ms, 1000u);
  EXPECT_DOUBLE_EQ(tr[0].latency_ms, 3.0);
  EXPECT_EQ(describe(tr[0]), "a: unknown -> up (connected)");

  EXPECT_EQ(h.checker->timeoutMs(), 1000);
  EXPECT_TRUE(h.step().empty());  // failure 1 of 3
  EXPECT_TRUE(h.step().empty());  // failure 2 of 3
  EXPECT_EQ(s->failures, 2u);
  EXPECT_EQ(s->last_reason, "connection refused");
  tr = h.step();
  ASSERT_EQ(tr.size(), 1u);
  EXPECT_EQ(tr[0].from, Health::Up);
  EXPECT_EQ(tr[0].to, Health::Down);
  EXPECT_EQ(tr[0].reason, "status 503");
  EXPECT_EQ(tr[0].at_ms, 4000u);
  EXPECT_TRUE(h.step().empty());
  EXPECT_TRUE(h.step().empty());
  tr = h.step();
  ASSERT_EQ(tr.size(), 1u);
  EXPECT_EQ(describe(tr[0]), "a: down -> up (connected)");
  EXPECT_EQ(tr[0].at_ms, 7000u);
  EXPECT_EQ(s->state, Health::Up);
  EXPECT_EQ(s->checks, 7u);
  EXPECT_EQ(s->successes, 3u);
  EXPECT_EQ(s->last_change_ms, 7000u);
  EXPECT_EQ(s->last_change_reason, "connected");
  EXPECT_EQ(h.started["a"], 7);
}

TEST(HealthChecker, FirstFailureIsDownAtOnce) {
  Harness h;
  h.script["a"] = {bad("no route to host")};
  h.checker->setTargets({target("a", tcp(1000, 500, 2, 5))});
  auto tr = h.checker->poll();
  ASSERT_EQ(tr.size(), 1u);
  EXPECT_EQ(describe(tr[0]), "a: unknown -> down (no route to host)");
}

TEST(HealthChecker, AHangingProbeTimesOutAtItsDeadline) {
  Harness h;
  h.script["a"] = {hang()};
  h.checker->setTargets({target("a", tcp(1000, 300, 1, 1))});
  EXPECT_TRUE(h.checker->poll().empty());
  EXPECT_EQ(h.live, 1);
  EXPECT_EQ(h.checker->timeoutMs(), 300);
  h.advanceMs(299);
  EXPECT_TRUE(h.checker->poll().empty());
  EXPECT_EQ(h.checker->timeoutMs(), 1);
  h.advanceMs(1);
  auto tr = h.checker->poll();
  ASSERT_EQ(tr.size(), 1u);
  EXPECT_EQ(describe(tr[0]), "a: unknown -> down (timeout after 300 ms)");
  EXPECT_DOUBLE_EQ(tr[0].latency_ms, 300.0);
  EXPECT_EQ(tr[0].at_ms, 1300u);
  EXPECT_EQ(h.live, 0);  // the probe (its socket) is gone
  EXPECT_EQ(h.checker->timeoutMs(), 700);
}

TEST(HealthChecker, ReadyProbesCompleteThroughTheEpollSet) {
  Harness h;
  h.script["a"] = {event()};
  h.checker->setTargets({target("a", tcp(1000, 500, 1, 1))});
  EXPECT_TRUE(h.checker->poll().empty());
  // The checker's fd is what a daemon waits on: readable once a probe is.
  int outer = ::epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ASSERT_EQ(::epoll_ctl(outer, EPOLL_CTL_ADD, h.checker->fd(), &ev), 0);
  EXPECT_EQ(::epoll_wait(outer, &ev, 1, 0), 0);
  h.advanceMs(42);
  h.fire("a");
  EXPECT_EQ(::epoll_wait(outer, &ev, 1, 0), 1);
  ::close(outer);
  auto tr = h.checker->poll();
  ASSERT_EQ(tr.size(), 1u);
  EXPECT_EQ(describe(tr[0]), "a: unknown -> up (status 200)");
  EXPECT_DOUBLE_EQ(tr[0].latency_ms, 42.0);
  EXPECT_EQ(h.live, 0);
}

TEST(HealthChecker, SlowRepliesFailOnMaxLatency) {
  Harness h;
  HealthCheckConfig c = tcp(1000, 500, 1, 1);
  c.max_latency_ms = 200;
  h.script["a"] = {event(), event(), event()};
  h.checker->setTargets({target("a", c)});
  h.checker->poll();
  h.advanceMs(200);  // exactly the limit: still fine
  h.fire("a");
  auto tr = h.checker->poll();
  ASSERT_EQ(tr.size(), 1u);
  EXPECT_EQ(describe(tr[0]), "a: unknown -> up (status 200)");

  h.advanceMs(800);
  EXPECT_TRUE(h.checker->poll().empty());  // second check started
  h.advanceMs(340);
  h.fire("a");
  tr = h.checker->poll();
  ASSERT_EQ(tr.size(), 1u);
  EXPECT_EQ(describe(tr[0]), "a: up -> down (latency 340 ms > 200 ms)");
  EXPECT_DOUBLE_EQ(tr[0].latency_ms, 340.0);
  EXPECT_EQ(h.checker->status("a")->last_reason, "latency 340 ms > 200 ms");

  // Fractions round up, so the message never reads "200 ms > 200 ms".
  h.advanceMs(660);
  h.checker->poll();
  h.now_us += 200'100;
  h.fire("a");
  h.checker->poll();
  EXPECT_EQ(h.checker->status("a")->last_reason, "latency 201 ms > 200 ms");
}

TEST(HealthChecker, JitterStaysInsideItsBounds) {
  Harness h(12345);
  HealthCheckConfig c = tcp(1000, 100, 1, 1, 20);
  std::vector<HealthTarget> ts;
  for (int i = 0; i < 20; i++) ts.push_back(target("t" + std::to_string(i), c));
  const uint64_t t0 = h.now_us;
  h.checker->setTargets(ts);
  while (h.dues.size() < 4000) h.step();

  for (auto& [key, dues] : h.due_by_key) {
    ASSERT_GE(dues.size(), 150u) << key;
    // First check within interval * jitter of setTargets.
    EXPECT_GE(dues[0], t0) << key;
    EXPECT_LE(dues[0], t0 + 200'000) << key;
  }
  uint64_t lo = UINT64_MAX, hi = 0;
  double sum = 0;
  size_t n = 0;
  for (auto& [key, dues] : h.due_by_key) {
    for (size_t i = 1; i < dues.size(); i++) {
      uint64_t gap = dues[i] - dues[i - 1];
      lo = std::min(lo, gap);
      hi = std::max(hi, gap);
      sum += static_cast<double>(gap);
      n++;
    }
  }
  EXPECT_GE(lo, 800'000u);
  EXPECT_LE(hi, 1'200'000u);
  // Spread over the whole window (uniform: 4000 draws land this close to both ends), mean
  // near the interval.
  EXPECT_LT(lo, 805'000u);
  EXPECT_GT(hi, 1'195'000u);
  EXPECT_NEAR(sum / static_cast<double>(n), 1'000'000.0, 15'000.0);
  // Checks start when due: the fake clock jumps straight to each timer, so lateness is only the
  // rounding of timeoutMs() up to a whole millisecond.
  for (size_t i = 0; i < h.dues.size(); i++) {
    EXPECT_GE(h.starts[i], h.dues[i]);
    EXPECT_LT(h.starts[i] - h.dues[i], 1000u);
  }
}

TEST(HealthChecker, ZeroJitterIsExact) {
  Harness h;
  h.checker->setTargets({target("a", tcp(250, 100, 1, 1))});
  for (int i = 0; i < 10; i++) h.step();
  ASSERT_EQ(h.due_by_key["a"].size(), 10u);
  for (size_t i = 0; i < 10; i++) EXPECT_EQ(h.due_by_key["a"][i], 1'000'000u + i * 250'000u);
}

TEST(HealthChecker, ACheckDueWhileOneRunsStartsWhenItEnds) {
  Harness h(7);
  // interval 100 +- 50%, timeout 100: draws below 100 ms come due while the probe hangs.
  HealthCheckConfig c = tcp(100, 100, 1, 1, 50);
  h.script["a"] = std::deque<Step>(60, hang());
  h.checker->setTargets({target("a", c)});
  while (h.started["a"] < 50) h.step();
  EXPECT_EQ(h.max_live_per_key, 1);
  size_t late = 0;
  for (size_t i = 0; i < h.dues.size(); i++) {
    EXPECT_GE(h.starts[i], h.dues[i]);
    if (h.starts[i] > h.dues[i] + 1000) late++;
  }
  EXPECT_GT(late, 0u);
  // Each start follows the previous check's deadline or its own due time, never both late.
  for (size_t i = 1; i < h.starts.size(); i++) EXPECT_GE(h.starts[i], h.starts[i - 1] + 100'000);
}

TEST(HealthChecker, TypeNoneIsUpWithoutAProbe) {
  Harness h;
  HealthCheckConfig none;
  h.checker->setTargets({target("n", none)});
  const HealthChecker::Status* s = h.checker->status("n");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->state, Health::Up);
  EXPECT_EQ(h.checker->timeoutMs(), 0);
  auto tr = h.checker->poll();
  ASSERT_EQ(tr.size(), 1u);
  EXPECT_EQ(describe(tr[0]), "n: unknown -> up (no health check)");
  EXPECT_EQ(h.checker->timeoutMs(), -1);
  h.advanceMs(100'000);
  EXPECT_TRUE(h.checker->poll().empty());
  EXPECT_EQ(h.started.count("n"), 0u);
  EXPECT_EQ(s->checks, 0u);
}

TEST(HealthChecker, SetTargetsKeepsUnchangedResetsChangedForgetsRemoved) {
  Harness h;
  HealthCheckConfig c = tcp(1000, 500, 2, 2);
  h.script["changed"] = {ok(), hang()};
  h.script["removed"] = {ok(), hang()};
  h.script["same"] = {bad("connection refused"), ok()};
  h.checker->setTargets({target("same", c), target("changed", c), target("removed", c),
                         target("cfg", c)});
  EXPECT_EQ(h.checker->poll().size(), 4u);
  h.advanceMs(1000);
  h.checker->poll();  // "changed" and "removed" now have probes in flight
  EXPECT_EQ(h.live, 2);
  const HealthChecker::Status* same = h.checker->status("same");
  ASSERT_NE(same, nullptr);
  EXPECT_EQ(same->state, Health::Down);  // refused, then one success of the two rise needs
  EXPECT_EQ(same->successes, 1u);
  EXPECT_EQ(same->checks, 2u);
  EXPECT_EQ(h.checker->status("cfg")->state, Health::Up);

  HealthCheckConfig c2 = c;
  c2.http_path = "/other";  // any field counts as a change
  h.checker->setTargets({target("same", c), target("changed", c, "198.18.2.99"),
                         target("cfg", c2), target("new", c)});
  EXPECT_EQ(h.live, 0);  // the removed and the reset target's probes are closed
  EXPECT_EQ(h.checker->status("removed"), nullptr);
  EXPECT_EQ(h.checker->size(), 4u);
  // Kept: same object, same counts, no new check before its own schedule.
  EXPECT_EQ(h.checker->status("same"), same);
  EXPECT_EQ(same->checks, 2u);
  EXPECT_EQ(same->state, Health::Down);
  EXPECT_EQ(same->successes, 1u);
  for (const char* k : {"changed", "cfg", "new"}) {
    const HealthChecker::Status* s = h.checker->status(k);
    ASSERT_NE(s, nullptr) << k;
    EXPECT_EQ(s->state, Health::Unknown) << k;
    EXPECT_EQ(s->checks, 0u) << k;
  }
  auto tr = h.checker->poll();  // the reset and new ones start at once (jitter 0)
  ASSERT_EQ(tr.size(), 3u);
  for (auto& t : tr) EXPECT_EQ(t.from, Health::Unknown) << t.key;
  EXPECT_EQ(same->checks, 2u);
  EXPECT_EQ(h.checker->timeoutMs(), 1000);
  h.advanceMs(1000);
  tr = h.checker->poll();
  EXPECT_EQ(same->checks, 3u);
  // The kept count carries on: this second consecutive success reaches rise.
  ASSERT_EQ(tr.size(), 1u);
  EXPECT_EQ(describe(tr[0]), "same: down -> up (connected)");
  EXPECT_EQ(h.checker->status("new")->checks, 2u);

  h.checker->setTargets({});
  EXPECT_EQ(h.checker->size(), 0u);
  EXPECT_EQ(h.checker->timeoutMs(), -1);
  EXPECT_EQ(h.live, 0);
}

TEST(HealthChecker, RepeatedKeysKeepTheFirst) {
  Harness h;
  h.checker->setTargets({target("a", tcp(1000, 500, 1, 1)), target("a", tcp(2000, 500, 1, 1))});
  EXPECT_EQ(h.checker->size(), 1u);
  h.checker->poll();
  EXPECT_EQ(h.checker->timeoutMs(), 1000);
}

TEST(HealthChecker, AResetDropsTheOldEntrysUncollectedTransition) {
  Harness h;
  HealthCheckConfig none;
  h.checker->setTargets({target("n", none)});
  // Reset before the pending Unknown -> Up was collected: only the new entry's transition.
  h.checker->setTargets({target("n", none, "198.18.2.12")});
  auto tr = h.checker->poll();
  ASSERT_EQ(tr.size(), 1u);
  EXPECT_EQ(tr[0].key, "n");
  h.checker->setTargets({});
  EXPECT_TRUE(h.checker->poll().empty());
}

TEST(HealthTarget, ResolveCheckPort) {
  HealthCheckConfig c;
  EXPECT_EQ(resolveCheckPort(c, 0, 80), 80);
  EXPECT_EQ(resolveCheckPort(c, 8080, 80), 8080);
  c.port = 22;
  EXPECT_EQ(resolveCheckPort(c, 8080, 80), 22);
  EXPECT_EQ(resolveCheckPort(HealthCheckConfig{}, 0, 0), 0);
}

}  // namespace
}  // namespace l4lb::control
