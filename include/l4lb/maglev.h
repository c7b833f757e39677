// Weighted Maglev consistent hashing (Eisenbud et al., "Maglev: A Fast and Reliable Software
// Network Load Balancer", NSDI'16, §3.4). A pure function, as in Katran's generateHashRing:
// the same endpoints in any order give the same table.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace l4lb {

struct MaglevEndpoint {
  uint32_t id;      // value stored in the table's slots (a backend id; 0 is reserved for "none")
  uint64_t key;     // stable identity (hash of address:port): decides the permutation
  uint32_t weight;  // relative share of slots; 0 = not in the table
};

// Fills a table of `size` slots (size must be prime and > number of weighted endpoints).
// Weights: every round each endpoint earns `weight` credit and claims one slot per `max_weight`
// of credit, so slot counts follow the weights within one slot per endpoint, and with equal
// weights max - min <= 1. Returns an all-zero table when no endpoint has weight.
std::vector<uint32_t> buildMaglevTable(std::span<const MaglevEndpoint> endpoints, uint32_t size);

// The slot a flow hash selects in a table of `size` slots. Flow hashes are CRC32-C (rte_hash's
// signature), which is linear over GF(2): flows that differ only in their source port, or
// clients in one subnet, hash to an affine subspace, and taken straight modulo a prime table
// size they sample it unevenly (the lab measured 47.0 % for a backend with 50 % of the slots,
// over 10,000 connections from one client). murmur3's fmix32 finalizer breaks the linearity.
inline uint32_t maglevSlot(uint32_t hash, size_t size) {
  hash ^= hash >> 16;
  hash *= 0x85ebca6bu;
  hash ^= hash >> 13;
  hash *= 0xc2b2ae35u;
  hash ^= hash >> 16;
  return uint32_t(hash % size);
}

// Slot counts per endpoint id in `table` (diagnostics and tests).
std::vector<uint32_t> maglevSlotCounts(std::span<const uint32_t> table, uint32_t max_id);

}  // namespace l4lb
