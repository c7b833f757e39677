// Flow sync's counters: written by the sync thread only (relaxed atomics, one writer), read by
// the control thread for /metrics, l4lbctl cluster and the stats file (SyncStatus: a copy of
// plain values, taken with status()).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "control/sync/sync_reject.h"

namespace l4lb::control::sync {

// Sync lag (receive wall time - the datagram's send time), in Prometheus' cumulative buckets.
inline constexpr std::array<double, 10> kSyncLagBounds = {0.001, 0.0025, 0.005, 0.01, 0.025,
                                                          0.05,  0.1,    0.25,  0.5,  1};

using RejectCounts = std::array<uint64_t, size_t(SyncReject::Count)>;

// What each peer and the totals both count. For a peer: accepted from it, sent to it, sendto
// failures (no route, buffer full), datagrams from its address refused by reason. For the
// totals: records taken from the workers' sync_out rings, datagrams built (each goes to every
// peer), accepted from all peers; unknown_peer refusals only there.
struct SyncTraffic {
  uint64_t records_in = 0, datagrams_in = 0;
  uint64_t records_out = 0, datagrams_out = 0;
  uint64_t send_errors = 0;
  RejectCounts rejected{};
};

struct SyncPeerStatus : SyncTraffic {
  std::string address;             // "ADDR:PORT"
  int64_t last_heard_ms_ago = -1;  // since the last accepted datagram; -1: never
  double records_in_per_s = 0, records_out_per_s = 0;  // over the last second
};

struct SyncStatus : SyncTraffic {
  std::string listen;
  std::vector<SyncPeerStatus> peers;
  uint64_t delivered = 0;      // record copies put into a worker's sync_in ring
  uint64_t ring_full = 0;      // record copies a full sync_in ring refused
  // Lag of accepted datagrams: cumulative buckets over kSyncLagBounds, count, sum (s), last, max.
  std::array<uint64_t, kSyncLagBounds.size()> lag_buckets{};
  uint64_t lag_count = 0;
  double lag_sum_s = 0;
  uint64_t lag_last_ms = 0, lag_max_ms = 0;
};

// SyncTraffic as the sync thread counts it.
struct SyncTrafficCounters {
  std::atomic<uint64_t> records_in{0}, datagrams_in{0}, records_out{0}, datagrams_out{0}, send_errors{0};
  std::array<std::atomic<uint64_t>, size_t(SyncReject::Count)> rejected{};

  // A copy (relaxed loads: one writer, and a reader wants no more than each count's value).
  SyncTraffic read() const {
    auto get = [](const std::atomic<uint64_t>& c) { return c.load(std::memory_order_relaxed); };
    SyncTraffic t;
    t.records_in = get(records_in);
    t.datagrams_in = get(datagrams_in);
    t.records_out = get(records_out);
    t.datagrams_out = get(datagrams_out);
    t.send_errors = get(send_errors);
    for (size_t r = 0; r < t.rejected.size(); r++) t.rejected[r] = get(rejected[r]);
    return t;
  }
};

// The sync thread's live counters.
struct SyncCounters : SyncTrafficCounters {
  struct Peer : SyncTrafficCounters {
    std::atomic<uint64_t> last_heard_mono_ms{0};  // 0: never
    std::atomic<double> records_in_per_s{0}, records_out_per_s{0};
    uint64_t prev_in = 0, prev_out = 0;  // sync thread only: the rate's last sample
  };
  explicit SyncCounters(size_t peers) : peer(new Peer[peers]), npeers(peers) {}

  std::unique_ptr<Peer[]> peer;
  size_t npeers;
  std::atomic<uint64_t> delivered{0}, ring_full{0};
  std::array<std::atomic<uint64_t>, kSyncLagBounds.size()> lag_buckets{};
  std::atomic<uint64_t> lag_count{0}, lag_sum_us{0}, lag_last_ms{0}, lag_max_ms{0};

  static void bump(std::atomic<uint64_t>& c, uint64_t n = 1) { c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
};

}  // namespace l4lb::control::sync
