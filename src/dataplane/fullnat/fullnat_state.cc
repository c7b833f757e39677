#include "dataplane/fullnat/fullnat_state.h"

#include <algorithm>
#include <cstring>

namespace l4lb::dataplane {

std::unique_ptr<FullNatState> FullNatState::create(const std::vector<SnapSnatAddr>& addrs, uint16_t worker,
                                                   uint16_t nworkers, int socket, std::string& err, const SnatRss& rss) {
  auto st = std::unique_ptr<FullNatState>(new FullNatState());
  st->worker_ = worker;
  st->nworkers_ = std::max<uint16_t>(nworkers, 1);
  if (addrs.size() > kMaxSnatAddrs) {
    err = "full NAT: " + std::to_string(addrs.size()) + " source addresses, at most " + std::to_string(kMaxSnatAddrs);
    return nullptr;
  }
  // Steering needs several workers, a key and a power-of-two bucket count (RETA sizes are).
  if (st->nworkers_ > 1 && rss.key.size() >= 40 && rss.buckets > 1 && rss.buckets <= kMaxSnatBuckets &&
      (rss.buckets & (rss.buckets - 1)) == 0) {
    st->rss_ = rss;
    st->mask_ = rss.buckets - 1;
  }
  const uint32_t nb = st->mask_ + 1;
  // The port term is linear too: the XOR of its set bits' terms, 16 per family, computed once.
  uint32_t bit_term[2][16] = {};
  if (nb > 1)
    for (int v6 = 0; v6 < 2; v6++)
      for (int b = 0; b < 16; b++) bit_term[v6][b] = rssPortTerm(st->rss_.key.data(), v6 != 0, uint16_t(1u << b));
  auto portBucket = [&](bool v6, uint32_t p) {
    uint32_t t = 0;
    for (int b = 0; b < 16; b++)
      if (p >> b & 1) t ^= bit_term[v6][b];
    return uint16_t(t & st->mask_);
  };
  uint32_t base = 0;
  for (const SnapSnatAddr& a : addrs) {
    Addr x;
    x.lo = a.port_lo;
    x.hi = a.port_hi;
    x.quiet_ms = a.quiet_ms;
    x.v6 = !a.addr.isV4();
    std::memcpy(x.bytes, a.addr.bytes.data(), x.v6 ? 16 : 4);
    // Indexed by (port - lo) / nworkers: owned ports only.
    x.sessions.assign((uint32_t(a.port_hi) - a.port_lo) / st->nworkers_ + 1, FullNatSession{});
    // This worker's ports: lo + worker, lo + worker + nworkers, ..., each in its bucket (the low
    // bits of its hash term), in port order within a bucket.
    std::vector<uint16_t> ports, bucket;
    for (uint32_t p = uint32_t(a.port_lo) + worker; p <= a.port_hi; p += st->nworkers_) {
      ports.push_back(uint16_t(p));
      bucket.push_back(nb == 1 ? 0 : portBucket(x.v6, p));
    }
    x.fifo.resize(nb);
    for (uint16_t b : bucket) x.fifo[b].size++;
    for (uint32_t b = 1; b < nb; b++) x.fifo[b].start = x.fifo[b - 1].start + x.fifo[b - 1].size;
    x.ring.resize(ports.size());
    if (nb > 1) x.bucket_of.assign(x.sessions.size(), 0);
    for (size_t i = 0; i < ports.size(); i++) {
      Fifo& f = x.fifo[bucket[i]];
      x.ring[f.start + f.count++] = {ports[i], 0};
      if (nb > 1) x.bucket_of[(ports[i] - x.lo) / st->nworkers_] = bucket[i];
    }
    x.free = uint32_t(ports.size());
    x.released.assign(std::max<size_t>(ports.size(), 1), 0);
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

uint64_t FullNatState::sessionBytes(uint64_t slots) {
  return slots * (sizeof(FullNatSession) + sizeof(Queued) + sizeof(uint16_t));  // bucket_of: one per owned port
}

bool FullNatState::takeAny(Addr& a, uint32_t addr, uint32_t now_ms, SnatPair& out) {
  for (uint32_t k = 0; k <= mask_; k++) {
    const uint32_t b = (a.next + k) & mask_;
    if (take(a, addr, b, now_ms, out)) {
      a.next = (b + 1) & mask_;
      return true;
    }
  }
  return false;
}

bool FullNatState::allocSteered(uint32_t addr, uint32_t now_ms, const ReplyFrom& r, SnatPair& out, bool& steered) {
  Addr& a = addrs_[addr];
  steered = false;
  if (a.free == 0) return false;
  if (r.port < rss_.ports.size()) {
    const SnatRssPort& p = rss_.ports[r.port];
    const uint32_t n = uint32_t(p.mine.size());
    if (n != 0 && rssHashesPorts(p.hash_types, a.v6, r.proto)) {
      // The reply's RETA index is (fixed ^ term) mod RETA size: a port of bucket i ^ fixed lands
      // on entry i, one of this worker's.
      const uint32_t fixed = rssFixedTerm(rss_.key.data(), a.v6, r.backend, r.backend_port_be, a.bytes);
      for (uint32_t k = 0, i = r.spread % n; k < n; k++, i = i + 1 == n ? 0 : i + 1) {
        if (take(a, addr, (p.mine[i] ^ fixed) & mask_, now_ms, out)) {
          steered = true;
          return true;
        }
      }
    }
  }
  return takeAny(a, addr, now_ms, out);
}

bool FullNatState::alloc(uint32_t addr, uint32_t now_ms, SnatPair& out) {
  Addr& a = addrs_[addr];
  if (mask_ == 0) return take(a, addr, 0, now_ms, out);
  return a.free != 0 && takeAny(a, addr, now_ms, out);
}

void FullNatState::release(SnatPair p, uint32_t now_ms) {
  Addr& a = addrs_[p.addr];
  Fifo& f = a.fifo[a.bucket_of.empty() ? 0 : a.bucket_of[uint32_t(p.port - a.lo) / nworkers_]];
  const uint32_t tail = f.head + f.count >= f.size ? f.head + f.count - f.size : f.head + f.count;
  const uint32_t since = now_ms == 0 ? 1u : now_ms;  // 0 means "never used"
  a.ring[f.start + tail] = {p.port, since};
  f.count++;
  a.free++;
  const uint32_t n = uint32_t(a.released.size());
  if (a.rel_count == n) a.rel_head = a.rel_head + 1 == n ? 0 : a.rel_head + 1;  // the oldest is past its quiet time
  else a.rel_count++;
  const uint32_t last = a.rel_head + a.rel_count - 1;
  a.released[last >= n ? last - n : last] = since;
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
  u.waiting = a.free;
  u.in_use = uint32_t(a.ring.size()) - a.free;
  // The releases are in time order: the ones still in their quiet time are the back part, found
  // by a binary search, so the worker can publish the counts (publishSnatUsage) without walking
  // every free pair or every bucket.
  const uint32_t n = uint32_t(a.released.size());
  auto quiet = [&](uint32_t i) {
    const uint32_t j = a.rel_head + i >= n ? a.rel_head + i - n : a.rel_head + i;
    return uint32_t(now_ms - a.released[j]) < a.quiet_ms;
  };
  uint32_t lo = 0, hi = a.rel_count;
  while (lo < hi) {
    const uint32_t mid = lo + (hi - lo) / 2;
    if (quiet(mid)) hi = mid;
    else lo = mid + 1;
  }
  u.quiet = a.rel_count - lo;
  return u;
}

}  // namespace l4lb::dataplane
