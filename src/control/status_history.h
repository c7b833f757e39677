// The status page's short memory, kept by the control thread: one sample per control tick (about
// a second) for the last kSamples ticks (10 minutes) of packets/s and new flows/s per VIP and per
// backend, the drops per second, and each worker's busy ratio; and the backends' state changes of
// the last hour. Bounded: every series is a fixed ring, only the running snapshot's VIPs and
// backends have one (a reload drops the others), and at most kMaxTransitions changes are kept.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "l4lb/counters.h"

namespace l4lb {
struct Snapshot;
}

namespace l4lb::control {

class StatusHistory {
 public:
  static constexpr size_t kSamples = 600;
  static constexpr int64_t kTransitionWindowS = 3600;
  static constexpr size_t kMaxTransitions = 1000;

  // A fixed ring of samples; values() gives them oldest first.
  class Ring {
   public:
    void push(float v);
    std::vector<float> values() const;
    size_t size() const { return count_; }

   private:
    std::vector<float> buf_ = std::vector<float>(kSamples);
    size_t head_ = 0, count_ = 0;
  };
  struct Pair {
    Ring packets_per_s, new_flows_per_s;
  };
  // A backend's rates over one control tick (api::RunFacts::Rate).
  struct Rate {
    double packets_per_s = 0, bytes_per_s = 0, new_flows_per_s = 0;
  };
  // A backend's state change, as publish() logs it.
  struct Change {
    int64_t unix_time = 0;
    std::string from, to, why;
  };
  struct Transition {
    Change change;
    std::string vip, backend;
  };

  // One control tick: each backend's rates by id (an id without a rate this tick records 0),
  // each VIP's as the sum of its backends', the drops per second (the workers' summed drop
  // counters against the previous tick's, over `dt_s`), the workers' busy ratios.
  void record(const Snapshot& snap, const std::map<uint32_t, Rate>& backends, const WorkerCounters& totals,
              double dt_s, const std::vector<double>& busy);
  void transition(Transition t);

  const Pair* backend(uint32_t id) const;
  const Pair* vip(const std::string& name) const;
  const Ring& drops() const { return drops_; }
  const std::vector<Ring>& workers() const { return workers_; }
  // Newest first, those since now - kTransitionWindowS.
  std::vector<Transition> transitionsSince(int64_t now) const;

 private:
  std::map<uint32_t, Pair> backends_;
  std::map<std::string, Pair> vips_;
  Ring drops_;
  std::vector<Ring> workers_;
  uint64_t prev_drops_ = 0;
  bool have_prev_ = false;
  std::deque<Transition> transitions_;
};

}  // namespace l4lb::control
