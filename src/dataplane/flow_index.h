// The flow table's bucket index: a keyed hash of the flow key with a per-process random key, so
// a remote sender cannot aim packets at one bucket chain (hash flooding). The flow key's
// CRC32-C (lookup.h makeFlowKey) is linear: anyone can compute 5-tuples with equal CRCs, so it
// must not pick the bucket. It still picks the Maglev slot and the tunnels' entropy, and must:
// every balancer instance has to pick the same backend for a flow, which a per-process key
// would break. Two hashes, two jobs:
//   makeFlowKey()      CRC32-C, unkeyed, the same on every instance: Maglev slot, tunnel entropy;
//   flowIndexHash()    keyed (this file), different per process: flow-table bucket only.
//
// The mix (wyhash's "mum"): the key words XORed with secret words, multiplied as 64 x 64 -> 128
// bits, the two halves folded by XOR. An IPv4 key (two words) is one multiply; an IPv6 key (five
// words) three. Not a cryptographic MAC, but without the secret a sender cannot predict which
// keys share a bucket, which is what flooding needs; a few instructions per packet (one
// fast keyed mix). The secret comes from getrandom() when the process starts.
#pragma once

#include <cstdint>
#include <cstring>

namespace l4lb::dataplane {

struct FlowIndexKey {
  uint64_t k[6];
};

// The process's secret. Set once before any flow table exists (a static initializer fills it
// from getrandom()); setFlowIndexKey is for tests and benchmarks that need the same buckets in
// every run. Changing it while a flow table holds entries loses them (their buckets move).
extern FlowIndexKey g_flow_index_key;
void setFlowIndexKey(const FlowIndexKey& k);

inline uint64_t mum(uint64_t a, uint64_t b) {
  const unsigned __int128 r = static_cast<unsigned __int128>(a) * b;
  return uint64_t(r) ^ uint64_t(r >> 64);
}

// FlowKey4 as its two 8-byte words (saddr | daddr, ports | proto).
inline uint32_t flowIndexHash4(uint64_t w0, uint64_t w1) {
  const uint64_t* k = g_flow_index_key.k;
  return uint32_t(mum(w0 ^ k[0], w1 ^ k[1]));
}

// FlowKey6 as its five words (saddr, daddr, ports | proto).
inline uint32_t flowIndexHash6(const uint64_t* w) {
  const uint64_t* k = g_flow_index_key.k;
  const uint64_t h = mum(w[0] ^ k[0], w[1] ^ k[1]) ^ mum(w[2] ^ k[2], w[3] ^ k[3]);
  return uint32_t(mum(h ^ k[4], w[4] ^ k[5]));
}

// Any flow key by its length (16: FlowKey4, 40: FlowKey6), read as whole words.
inline uint32_t flowIndexHash(const void* key, uint32_t key_len) {
  uint64_t w[5];
  std::memcpy(w, key, key_len == 16 ? 16 : 40);
  return key_len == 16 ? flowIndexHash4(w[0], w[1]) : flowIndexHash6(w);
}

}  // namespace l4lb::dataplane
