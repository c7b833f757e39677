#include "dataplane/fullnat/fullnat_state.h"

#include <algorithm>

namespace l4lb::dataplane {

std::unique_ptr<FullNatState> FullNatState::create(const std::vector<SnapSnatAddr>& addrs, uint16_t worker,
                                                   uint16_t nworkers, int socket, std::string& err) {
  auto st = std::unique_ptr<FullNatState>(new FullNatState());
  st->worker_ = worker;
  st->nworkers_ = std::max<uint16_t>(nworkers, 1);
  if (addrs.size() > kMaxSnatAddrs) {
    err = "full NAT: " + std::to_string(addrs.size()) + " source addresses, at most " + std::to_string(kMaxSnatAddrs);
    return nullptr;
  }
  uint32_t base = 0;
  for (const SnapSnatAddr& a : addrs) {
    Addr x;
    x.lo = a.port_lo;
    x.hi = a.port_hi;
    x.quiet_ms = a.quiet_ms;
    // This worker's ports: lo + worker, lo + worker + nworkers, ...
    for (uint32_t p = uint32_t(a.port_lo) + worker; p <= a.port_hi; p += st->nworkers_)
      x.ring.push_back({uint16_t(p), 0});
    x.count = uint32_t(x.ring.size());
    // Indexed by (port - lo) / nworkers: owned ports only.
    x.sessions.assign((uint32_t(a.port_hi) - a.port_lo) / st->nworkers_ + 1, FullNatSession{});
    st->pair_base_.push_back(base);
    base += uint32_t(x.sessions.size());
    st->total_slots_ += x.sessions.size();
    st->addrs_.push_back(std::move(x));
  }
  // The index holds one entry per session in use: room for every owned pair (at least the
  // table's minimum).
  const uint32_t cap = indexCapacity(st->total_slots_);
  const std::string w = std::to_string(worker);
  st->index4_ = FlowTable::create("fullnat4_w" + w, cap, sizeof(FlowKey4), socket, err);
  if (st->index4_) st->index6_ = FlowTable::create("fullnat6_w" + w, cap, sizeof(FlowKey6), socket, err);
  if (!st->index4_ || !st->index6_) return nullptr;
  return st;
}

uint64_t FullNatState::slotsPerWorker(const std::vector<SnapSnatAddr>& addrs, uint16_t nworkers) {
  uint64_t n = 0;
  for (const SnapSnatAddr& a : addrs) n += (uint32_t(a.port_hi) - a.port_lo) / std::max<uint16_t>(nworkers, 1) + 1;
  return n;
}

uint32_t FullNatState::indexCapacity(uint64_t slots) {
  return std::max<uint32_t>(uint32_t(std::min<uint64_t>(slots, FlowTable::kMaxCapacity)), 1024);
}

uint64_t FullNatState::sessionBytes(uint64_t slots) { return slots * (sizeof(FullNatSession) + sizeof(Queued)); }

bool FullNatState::alloc(uint32_t addr, uint32_t now_ms, SnatPair& out) {
  Addr& a = addrs_[addr];
  if (a.count == 0) return false;
  const Queued& q = a.ring[a.head];
  // Never released (since 0 at start) or quiet long enough. The FIFO is in release order, so
  // if the front is still quiet, every pair behind it is too.
  if (q.since_ms != 0 && uint32_t(now_ms - q.since_ms) < a.quiet_ms) return false;
  out = {addr, q.port};
  a.head = (a.head + 1) % uint32_t(a.ring.size());
  a.count--;
  return true;
}

void FullNatState::release(SnatPair p, uint32_t now_ms) {
  Addr& a = addrs_[p.addr];
  const uint32_t tail = (a.head + a.count) % uint32_t(a.ring.size());
  a.ring[tail] = {p.port, now_ms == 0 ? 1u : now_ms};  // 0 means "never used"
  a.count++;
}

FullNatSession& FullNatState::slot(uint64_t i, SnatPair& p) {
  const auto it = std::upper_bound(pair_base_.begin(), pair_base_.end(), uint32_t(i));
  const uint32_t addr = uint32_t(it - pair_base_.begin()) - 1;
  const uint32_t k = uint32_t(i) - pair_base_[addr];
  p = {addr, uint16_t(addrs_[addr].lo + k * nworkers_ + worker_)};
  return addrs_[addr].sessions[k];
}

FullNatState::Usage FullNatState::usage(uint32_t addr, uint32_t now_ms) const {
  const Addr& a = addrs_[addr];
  Usage u;
  u.waiting = a.count;
  u.in_use = uint32_t(a.ring.size()) - a.count;
  // The FIFO is in release order (never-used pairs, since 0, at the front): the pairs still in
  // their quiet time are its back part, found by a binary search, so the worker can publish the
  // counts (publishSnatUsage) without walking every free pair.
  auto quiet = [&](uint32_t i) {
    const Queued& q = a.ring[(a.head + i) % a.ring.size()];
    return q.since_ms != 0 && uint32_t(now_ms - q.since_ms) < a.quiet_ms;
  };
  uint32_t lo = 0, hi = a.count;
  while (lo < hi) {
    const uint32_t mid = lo + (hi - lo) / 2;
    if (quiet(mid)) hi = mid;
    else lo = mid + 1;
  }
  u.quiet = a.count - lo;
  return u;
}

}  // namespace l4lb::dataplane
