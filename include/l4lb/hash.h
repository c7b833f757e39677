// CRC32-C hashing of small keys (SSE4.2 crc32 instructions through DPDK's rte_hash_crc_*).
// Same result as rte_hash_crc() (8-byte words, then 4, 2, 1), but reads the key with memcpy:
// rte_hash_crc() dereferences `const uint64_t*`, which is undefined on keys that are not 8-byte
// aligned (packet fields) and breaks strict aliasing when inlined over a struct.
#pragma once

#include <cstdint>
#include <cstring>

#include <rte_hash_crc.h>
#ifdef __SSE4_2__
#include <nmmintrin.h>
#endif

namespace l4lb {

// One CRC32-C step over an 8-byte word (as loaded from memory, little-endian). With SSE4.2
// (always, under DPDK's -march=corei7) the instruction itself: rte_hash_crc_8byte() reloads
// and tests the global `crc32_alg` on every call. Same value either way (CRC32-C is CRC32-C).
inline uint32_t crcWord(uint64_t w, uint32_t h) {
#ifdef __SSE4_2__
  return uint32_t(_mm_crc32_u64(h, w));
#else
  return rte_hash_crc_8byte(w, h);
#endif
}

inline uint32_t crcHash(const void* data, uint32_t len, uint32_t seed) {
  const auto* p = static_cast<const uint8_t*>(data);
  uint32_t h = seed;
  for (uint32_t i = 0; i < len / 8; i++, p += 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    h = crcWord(w, h);
  }
  if (len & 4) {
    uint32_t w;
    std::memcpy(&w, p, 4);
    h = rte_hash_crc_4byte(w, h);
    p += 4;
  }
  if (len & 2) {
    uint16_t w;
    std::memcpy(&w, p, 2);
    h = rte_hash_crc_2byte(w, h);
    p += 2;
  }
  if (len & 1) h = rte_hash_crc_1byte(*p, h);
  return h;
}

}  // namespace l4lb
