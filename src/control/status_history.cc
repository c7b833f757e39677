#include "control/status_history.h"

#include "l4lb/snapshot.h"

namespace l4lb::control {

void StatusHistory::Ring::push(float v) {
  buf_[head_] = v;
  head_ = (head_ + 1) % kSamples;
  if (count_ < kSamples) count_++;
}

std::vector<float> StatusHistory::Ring::values() const {
  std::vector<float> out;
  out.reserve(count_);
  for (size_t i = 0; i < count_; i++) out.push_back(buf_[(head_ + kSamples - count_ + i) % kSamples]);
  return out;
}

void StatusHistory::record(const Snapshot& snap, const std::map<uint32_t, Rate>& backends, const WorkerCounters& totals,
                           double dt_s, const std::vector<double>& busy) {
  uint64_t drops_total = 0;
  for (size_t r = 1; r < size_t(Drop::Count); r++) drops_total += totals.drops[r];
  std::map<uint32_t, Pair> keep_b;
  std::map<std::string, Pair> keep_v;
  for (const SnapVip& v : snap.vips) {
    Rate sum;
    for (uint32_t id : v.backends) {
      auto r = backends.find(id);
      const Rate rate = r == backends.end() ? Rate{} : r->second;
      sum.packets_per_s += rate.packets_per_s;
      sum.new_flows_per_s += rate.new_flows_per_s;
      auto old = backends_.find(id);
      Pair& p = keep_b[id];
      if (old != backends_.end()) p = std::move(old->second);
      p.packets_per_s.push(float(rate.packets_per_s));
      p.new_flows_per_s.push(float(rate.new_flows_per_s));
    }
    auto old = vips_.find(v.name);
    Pair& p = keep_v[v.name];
    if (old != vips_.end()) p = std::move(old->second);
    p.packets_per_s.push(float(sum.packets_per_s));
    p.new_flows_per_s.push(float(sum.new_flows_per_s));
  }
  backends_ = std::move(keep_b);
  vips_ = std::move(keep_v);
  drops_.push(have_prev_ && dt_s > 0 && drops_total >= prev_drops_ ? float(double(drops_total - prev_drops_) / dt_s) : 0);
  prev_drops_ = drops_total;
  have_prev_ = true;
  workers_.resize(busy.size());
  for (size_t i = 0; i < busy.size(); i++) workers_[i].push(float(busy[i]));
}

void StatusHistory::transition(Transition t) {
  transitions_.push_back(std::move(t));
  while (transitions_.size() > kMaxTransitions ||
         transitions_.front().change.unix_time < transitions_.back().change.unix_time - kTransitionWindowS)
    transitions_.pop_front();
}

const StatusHistory::Pair* StatusHistory::backend(uint32_t id) const {
  auto it = backends_.find(id);
  return it == backends_.end() ? nullptr : &it->second;
}

const StatusHistory::Pair* StatusHistory::vip(const std::string& name) const {
  auto it = vips_.find(name);
  return it == vips_.end() ? nullptr : &it->second;
}

std::vector<StatusHistory::Transition> StatusHistory::transitionsSince(int64_t now) const {
  std::vector<Transition> out;
  for (auto it = transitions_.rbegin(); it != transitions_.rend() && it->change.unix_time >= now - kTransitionWindowS;
       ++it)
    out.push_back(*it);
  return out;
}

}  // namespace l4lb::control
