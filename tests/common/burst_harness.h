// Test plumbing for driving the worker's processBurst on mbufs without ports (worker_test,
// slow_path_test): frames into mbufs, a worker with its flow tables, and the frames it sent.
// Needs the EAL (tests/common/eal_main.cc).
#pragma once

#include <gtest/gtest.h>

#include <rte_byteorder.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "dataplane/flow_table.h"
#include "dataplane/flow.h"
#include "l4lb/hash.h"
#include "dataplane/worker.h"

namespace l4lb::test {

using Frame = std::vector<uint8_t>;

// One pool per test program (each is its own process).
inline rte_mempool* burstPool() {
  static rte_mempool* p =
      rte_pktmbuf_pool_create("burst_test_pool", 4095, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
  return p;
}

// `f` in one mbuf, with `headroom` bytes before it. nullptr when the pool is empty.
inline rte_mbuf* frameToMbuf(const Frame& f, uint16_t headroom = RTE_PKTMBUF_HEADROOM) {
  rte_mbuf* m = rte_pktmbuf_alloc(burstPool());
  if (m == nullptr) return nullptr;
  m->data_off = headroom;
  auto* p = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(m, uint16_t(f.size())));
  if (p == nullptr) {
    rte_pktmbuf_free(m);
    return nullptr;
  }
  std::memcpy(p, f.data(), f.size());
  return m;
}

// A worker with flow tables of the given capacities; `prefix` keeps table names unique.
// The outer-fragment pools (dataplane/outer_frag.h) test workers get, as the daemon's do.
inline dataplane::OuterFragPools outerFragPools() {
  static dataplane::OuterFragPools p{
      rte_pktmbuf_pool_create("burst_frag_direct", 1023, 0, 0, RTE_PKTMBUF_HEADROOM + 64, SOCKET_ID_ANY),
      rte_pktmbuf_pool_create("burst_frag_indirect", 1023, 0, 0, 0, SOCKET_ID_ANY)};
  return p;
}

inline std::unique_ptr<dataplane::WorkerState> makeBurstWorker(const std::string& prefix, uint32_t cap4,
                                                               uint32_t cap6) {
  static int n = 0;
  auto w = std::make_unique<dataplane::WorkerState>();
  std::string err;
  const std::string id = std::to_string(n++);
  w->flows4 = dataplane::FlowTable::create(prefix + "4_" + id, cap4, sizeof(dataplane::FlowKey4), SOCKET_ID_ANY, err);
  EXPECT_TRUE(w->flows4) << err;
  w->flows6 = dataplane::FlowTable::create(prefix + "6_" + id, cap6, sizeof(dataplane::FlowKey6), SOCKET_ID_ANY, err);
  EXPECT_TRUE(w->flows6) << err;
  w->outer_frag = outerFragPools();
  return w;
}

// A copy of `s` in which backend `out` of VIP `vip` is in state `st` and its Maglev slots went to
// backend `into`: what the builder publishes once a backend drains or fails.
inline Snapshot withBackendOut(const Snapshot& s, uint32_t vip, uint32_t out, uint32_t into, BackendState st) {
  Snapshot c = s;
  c.backends[out].state = st;
  for (uint32_t& slot : c.vips[vip].maglev)
    if (slot == out) slot = into;
  return c;
}

struct SentFrame {
  uint16_t port;  // Snapshot::ports index it was sent on
  Frame bytes;
};

// Runs `frames` through processBurst in bursts of kBurst; returns what was sent, per burst in
// port order then arrival order, and frees it. Every frame sent must be one segment.
inline std::vector<SentFrame> runBursts(dataplane::WorkerState& w, const Snapshot& s, const std::vector<Frame>& frames,
                                        uint16_t ingress, uint32_t now, uint16_t headroom = RTE_PKTMBUF_HEADROOM) {
  std::vector<SentFrame> out;
  for (size_t i = 0; i < frames.size(); i += dataplane::kBurst) {
    rte_mbuf* pkts[dataplane::kBurst];
    uint16_t n = 0;
    for (size_t j = i; j < frames.size() && n < dataplane::kBurst; j++) {
      pkts[n] = frameToMbuf(frames[j], headroom);
      EXPECT_NE(pkts[n], nullptr) << "mbuf pool exhausted";
      if (pkts[n] == nullptr) return out;
      n++;
    }
    dataplane::TxBatch tx;
    tx.clear();
    dataplane::processBurst(w, s, pkts, n, ingress, now, tx);
    for (uint16_t p = 0; p < kMaxPorts; p++) {
      for (uint16_t k = 0; k < tx.n[p]; k++) {
        rte_mbuf* m = tx.pkts[p][k];
        // One segment, except outer fragments: headers (their own pool) + a reference.
        if (m->pool == burstPool()) {
          EXPECT_EQ(m->nb_segs, 1);
          EXPECT_EQ(rte_pktmbuf_pkt_len(m), rte_pktmbuf_data_len(m));
        }
        Frame f(rte_pktmbuf_pkt_len(m));
        const void* d = rte_pktmbuf_read(m, 0, uint32_t(f.size()), f.data());
        if (d != f.data()) std::memcpy(f.data(), d, f.size());
        out.push_back({p, std::move(f)});
        rte_pktmbuf_free(m);
      }
    }
  }
  return out;
}

inline uint64_t ctr(const dataplane::WorkerState& w, Ctr c) { return w.counters.get(c); }

// Only drop reason `d` moved, by `n`.
inline void expectOnlyDrop(const dataplane::WorkerState& w, Drop d, uint64_t n = 1) {
  for (size_t i = 1; i < size_t(Drop::Count); i++) {
    const uint64_t want = i == size_t(d) ? n : 0;
    EXPECT_EQ(w.counters.drops[i], want) << "drop counter " << toString(Drop(i));
  }
}

// Byte-for-byte equality, reporting the first differing byte.
inline void expectFrame(const Frame& got, const Frame& want, const std::string& what) {
  EXPECT_EQ(got.size(), want.size()) << what;
  if (got == want) return;
  for (size_t i = 0; i < std::min(got.size(), want.size()); i++) {
    if (got[i] != want[i]) {
      ADD_FAILURE() << what << ": first difference at byte " << i << ": got 0x" << std::hex << int(got[i])
                    << " want 0x" << int(want[i]);
      return;
    }
  }
}

// Expected outer headers (test::wire, tests/common/packet_builder.h) need the worker's flow hash
// (the scheduler input and the tunnels' entropy source).
namespace wire {

// The worker's flow hash, as makeFlowKey computes it. rte_hash_crc
// reads the key through uint64_t pointers, so hashing a freshly written FlowKey4 local breaks
// strict aliasing: at -O2 GCC hashed stack garbage here. Copy the key into uint64_t words first.
template <typename Key>
inline uint32_t hashOfKey(const Key& k) {
  static_assert(sizeof(Key) % 8 == 0);
  uint64_t words[sizeof(Key) / 8];
  std::memcpy(words, &k, sizeof(Key));
  return crcHash(words, sizeof(Key), dataplane::FlowTable::kHashSeed);  // makeFlowKey's flow hash, not the bucket index
}
inline uint32_t flowHash4(const IpAddr& s, const IpAddr& d, uint16_t sp, uint16_t dp, uint8_t proto) {
  dataplane::FlowKey4 k;
  k.saddr = s.v4be();
  k.daddr = d.v4be();
  k.sport = rte_cpu_to_be_16(sp);
  k.dport = rte_cpu_to_be_16(dp);
  k.proto = proto;
  return hashOfKey(k);
}
inline uint32_t flowHash6(const IpAddr& s, const IpAddr& d, uint16_t sp, uint16_t dp, uint8_t proto) {
  dataplane::FlowKey6 k;
  std::memcpy(k.saddr, s.bytes.data(), 16);
  std::memcpy(k.daddr, d.bytes.data(), 16);
  k.sport = rte_cpu_to_be_16(sp);
  k.dport = rte_cpu_to_be_16(dp);
  k.proto = proto;
  return hashOfKey(k);
}
inline uint32_t flowHash(const IpAddr& c, const IpAddr& v, uint16_t cp, uint16_t vp, uint8_t proto) {
  return c.isV4() ? flowHash4(c, v, cp, vp, proto) : flowHash6(c, v, cp, vp, proto);
}

}  // namespace wire

}  // namespace l4lb::test
