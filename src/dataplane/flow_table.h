// Per-worker flow table: 5-tuple -> backend, so established flows keep their backend when tables
// change. One table per address family. Owned by one worker: single writer, no locks.
//
// Layout (after VPP's lb plugin / bihash and folly's F14): a power-of-two array of cache-line
// aligned buckets, each holding the keys and values of several entries in place, so a lookup
// costs one cache miss (rte_hash, which this replaces, reads a signature bucket and then a
// separate key store: two). A bucket, structure-of-arrays so every field is a plain load:
//   [0, 5*S)          per slot: sport, dport, proto (the key's last word, low 5 bytes);
//                     proto == 0 marks a free slot (a flow key is always TCP or UDP)
//   [5*S]             overflow count: entries whose probe passed this bucket (F14's "outbound
//                     overflow count"); a lookup stops at the first bucket where it is 0
//   [8-aligned ...)   per slot, together: the address words (saddr | daddr for IPv4, 4 words
//                     for IPv6), then the 64-bit value (FlowValue::pack)
// IPv4: 3 slots in one 64-byte line; IPv6: 4 slots in 192 bytes (3 lines). Collisions probe
// linearly to the next bucket.
// A slot's address words and value sit together so that an IPv6 hit in slot 0 (the slot a
// lightly loaded table fills first) reads one cache line, as an IPv4 hit does: bytes 0..63
// hold the tails, the overflow count and all of slot 0 (24 + 40). With the values in an array
// of their own at the bucket's end, every IPv6 hit read two lines of three, and the table's
// working set in the caches was twice IPv4's per flow. The array is sized so the table is at most ~80 % full
// (kMaxLoadPercent) at `capacity` entries; exactly `capacity` entries fit whatever the hashes.
//
// Flood admission: the table counts its entries per class (flow.h: embryonic = SYN
// only / first UDP packet, confirmed = the rest) and store() admits a new entry by class:
// - a confirmed entry takes any free capacity; a confirmed entry is never displaced;
// - an embryonic entry needs the class below its quota (FlowAdmission::embryonicLimit) and a
//   free slot; otherwise it may displace the oldest embryonic entry found within
//   kDisplaceBuckets buckets from its home bucket, unless that entry is pinned (its backend
//   came from a round-robin cursor: the flow could not find it again statelessly);
// - any new entry may take the place of an expired one found there (it is dead already).
// Nothing found: the store is refused (EmbryonicFull / TableFull) and the caller forwards the
// packet statelessly. The counts are exact after every insert, overwrite, erase and sweep.
//
// Keys, values and their rules (FlowKey4/6, FlowValue, FlowState) are in flow.h; what a packet
// does with an entry is decided in decide.h.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <type_traits>

#include <rte_hash.h>  // hash_sig_t
#include <rte_debug.h>
#include <rte_prefetch.h>

#include "dataplane/flow.h"
#include "dataplane/flow_index.h"
#include "dataplane/parser.h"
#include "l4lb/counters.h"
#include "l4lb/hash.h"
#include "l4lb/snapshot.h"

namespace l4lb::dataplane {

namespace flow_table_detail {

inline uint64_t load64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}
inline void store64(uint8_t* p, uint64_t v) { std::memcpy(p, &v, 8); }

// A key's last word: sport | dport << 16 | proto << 32 (FlowKey4/6 padding above it is zero).
constexpr uint64_t kTailMask = 0xff'ffff'ffffull;
// An overflow count that reached this stays there (F14): lookups then probe on past the bucket,
// which is slower but never wrong, and the count needs only one byte.
constexpr uint8_t kOverflowSticky = 255;

template <unsigned AddrWords, unsigned Slots, unsigned Bytes>
struct Layout {
  static constexpr unsigned kAddrWords = AddrWords;
  static constexpr unsigned kSlots = Slots;
  static constexpr unsigned kBytes = Bytes;
  static constexpr unsigned kKeyLen = 8 * (AddrWords + 1);
  static constexpr unsigned kOverflowOff = 5 * Slots;
  static constexpr unsigned kAddrOff = (kOverflowOff + 1 + 7) / 8 * 8;
  static constexpr unsigned kEntryBytes = 8 * AddrWords + 8;  // address words, then the value
  static_assert(kAddrOff + kEntryBytes * Slots <= Bytes && Bytes % 64 == 0);
  // The last slot's tail is read as 8 bytes: it must not run past the bucket.
  static_assert(5 * (Slots - 1) + 8 <= Bytes);

  // The 8-byte load also reads the next slot's (or the overflow count's and address words')
  // bytes; the mask drops them. One load instead of a 4- and a 1-byte one.
  static uint64_t tail(const uint8_t* b, unsigned i) { return load64(b + 5 * i) & kTailMask; }
  static bool used(const uint8_t* b, unsigned i) { return b[5 * i + 4] != 0; }
  static const uint8_t* addr(const uint8_t* b, unsigned i) { return b + kAddrOff + kEntryBytes * i; }
  static uint8_t* addr(uint8_t* b, unsigned i) { return b + kAddrOff + kEntryBytes * i; }
  static uint8_t* value(uint8_t* b, unsigned i) { return b + kAddrOff + kEntryBytes * i + 8 * AddrWords; }
  static const uint8_t* value(const uint8_t* b, unsigned i) { return b + kAddrOff + kEntryBytes * i + 8 * AddrWords; }
};

using Layout4 = Layout<1, 3, 64>;   // FlowKey4: 16 bytes, 3 slots x (5 + 8 + 8) + 1 in one line
using Layout6 = Layout<4, 4, 192>;  // FlowKey6: 40 bytes, 4 slots x (5 + 32 + 8) + 1 in three lines
static_assert(Layout4::kKeyLen == 16 && Layout6::kKeyLen == 40);
// Slot 0 whole in the bucket's first line (tails, overflow count, address words, value).
static_assert(Layout4::kAddrOff + Layout4::kEntryBytes <= 64 && Layout6::kAddrOff + Layout6::kEntryBytes <= 64);

// A key as loaded from FlowKey4/6 (whole aligned words, so a key just written by makeFlowKey is
// forwarded from the store buffer).
template <class L>
struct Needle {
  uint64_t a[L::kAddrWords];
  uint64_t tail;
  explicit Needle(const void* key) {
    const auto* p = static_cast<const uint8_t*>(key);
    for (unsigned w = 0; w < L::kAddrWords; w++) a[w] = load64(p + 8 * w);
    tail = load64(p + 8 * L::kAddrWords) & kTailMask;
  }
  bool validProto() const { return (tail >> 32) != 0; }
  bool matches(const uint8_t* b, unsigned i) const {
    if (L::tail(b, i) != tail) return false;
    const uint8_t* ap = L::addr(b, i);
    uint64_t diff = 0;
    for (unsigned w = 0; w < L::kAddrWords; w++) diff |= load64(ap + 8 * w) ^ a[w];
    return diff == 0;
  }
};

}  // namespace flow_table_detail

// What store() did (or canStore() would do).
enum class StoreResult : uint8_t {
  Stored,         // inserted in a free slot, or the key's entry overwritten
  Displaced,      // stored in the place of another entry (embryonic, or expired): `victim`
  TableFull,      // refused: no free slot, nothing displaceable
  EmbryonicFull,  // refused: embryonic quota reached, nothing displaceable
};

// How store() may admit (decide.h fills it from the snapshot's FlowAdmission).
struct AdmitParams {
  bool enabled;             // false: the original table (no quota, no displacement)
  uint32_t embryonic_limit; // FlowAdmission::embryonicLimit(capacity())
  uint32_t now_ms;          // for the victims' age and expiry
  const FlowTimeouts* timeouts;
};

class FlowTable {
 public:
  // How far from a key's home bucket store() looks for a victim: the home bucket and the next
  // (6 IPv4 / 8 IPv6 slots, on lines a probe reads anyway). A bounded look, not a search.
  static constexpr uint32_t kDisplaceBuckets = 2;
  // The seed of the flow key's CRC32-C (lookup.h makeFlowKey): the Maglev slot's hash, the same
  // on every instance. It does not pick buckets: see indexHash.
  static constexpr uint32_t kHashSeed = 0xf10c4a5e;
  // Linear probing over multi-slot buckets stays short up to ~80 % (F14 uses 7/8 with 14-slot
  // chunks; fewer slots per bucket want more room).
  static constexpr uint32_t kMaxLoadPercent = 80;
  static constexpr uint32_t kMaxCapacity = 1u << 28;

  // Returns nullptr and sets `err` for a key length other than FlowKey4's or FlowKey6's, a
  // capacity of 0 or above kMaxCapacity, or no memory on `socket` (rte_zmalloc_socket: hugepages
  // when EAL has them).
  static std::unique_ptr<FlowTable> create(const std::string& name, uint32_t capacity, uint32_t key_len,
                                           int socket, std::string& err);
  // The bucket array create() allocates for `capacity` entries: the power-of-two number of
  // buckets that keeps the load under kMaxLoadPercent (control/memory_estimate.h adds these up).
  static constexpr uint64_t bytesFor(uint32_t capacity, bool v6) {
    const uint64_t per_bucket = v6 ? flow_table_detail::Layout6::kSlots : flow_table_detail::Layout4::kSlots;
    const uint64_t min_slots = (uint64_t(capacity) * 100 + kMaxLoadPercent - 1) / kMaxLoadPercent;
    uint64_t buckets = 1;
    while (buckets * per_bucket < min_slots) buckets <<= 1;
    return buckets * (v6 ? flow_table_detail::Layout6::kBytes : flow_table_detail::Layout4::kBytes);
  }
  ~FlowTable();
  FlowTable(const FlowTable&) = delete;
  FlowTable& operator=(const FlowTable&) = delete;

  // The bucket index hash every `idx` argument below must be: keyed with the process's secret
  // (flow_index.h), so a sender cannot aim at a bucket. Its low bits pick the home bucket.
  static hash_sig_t indexHash(const void* key, uint32_t key_len) { return flowIndexHash(key, key_len); }
  static hash_sig_t indexHash(const FlowKey4& k) { return flowIndexHash(&k, sizeof(k)); }
  static hash_sig_t indexHash(const FlowKey6& k) { return flowIndexHash(&k, sizeof(k)); }

  // Looks a key up. Any key: one with protocol byte 0 (which would match a free slot) is a miss.
  bool lookup(const void* key, hash_sig_t idx, uint64_t& value) const {
    return v6_ ? lookupFamily<true, true>(key, idx, value) : lookupFamily<false, true>(key, idx, value);
  }

  // For a caller that knows the table's family at compile time (the worker, which picks flows4
  // or flows6 by the packet's family): no dispatch on the table's layout per packet. The key's
  // protocol must be TCP or UDP (the worker's always is).
  // prefetchFamily starts loading the home bucket of `idx` into the cache: call it as soon as a
  // packet's hash is known and look the key up a few packets later (VPP lb: hash the next
  // packet, prefetch its bucket).
  // IPv6: line 0 holds slot 0 whole (layout above), the slot a bucket fills first. While the
  // table holds at most a quarter of an entry per bucket, at least 88 % of the entries sit in
  // slot 0 (Poisson: (1 - e^-a) / a for a entries per bucket), and prefetching lines 1 and 2 as
  // well would only triple the table's footprint in L1/L2 (10k IPv6 flows: 1.9 MB instead of
  // 0.64 MB, about this CPU's whole L2). Above that, hits in slots 1..3 get common and the whole
  // bucket is prefetched. One well-predicted branch on a count in this object's hot line.
  template <bool V6>
  void prefetchFamily(hash_sig_t idx) const {
    const uint8_t* b = mem_ + size_t(idx & mask_) * (V6 ? flow_table_detail::Layout6::kBytes : flow_table_detail::Layout4::kBytes);
    rte_prefetch0(b);
    if constexpr (V6) {
      if (size() > sparse_max_) {
        rte_prefetch0(b + 64);
        rte_prefetch0(b + 128);
      }
    }
  }
  // kAnyKey: check the protocol byte first (lookup()).
  template <bool V6, bool kAnyKey = false>
  bool lookupFamily(const void* key, hash_sig_t idx, uint64_t& value) const {
    using L = std::conditional_t<V6, flow_table_detail::Layout6, flow_table_detail::Layout4>;
    RTE_ASSERT(v6_ == V6);
    const flow_table_detail::Needle<L> k(key);
    if constexpr (kAnyKey) {
      if (!k.validProto()) return false;  // would match a free slot's zero tail
    }
    // find()'s walk, with the value loaded where the slot is a constant of the unrolled loop
    // (one load at a fixed offset, not a slot index scaled again after the loop).
    uint32_t bi = idx & mask_;
    for (uint32_t probes = 0; probes <= mask_; probes++) {
      const uint8_t* b = bucketAt<L>(bi);
      for (unsigned i = 0; i < L::kSlots; i++) {
        if (k.matches(b, i)) {
          value = flow_table_detail::load64(L::value(b, i));
          return true;
        }
      }
      if (b[L::kOverflowOff] == 0) return false;
      bi = (bi + 1) & mask_;
    }
    return false;
  }

  // Inserts or overwrites, with no admission rule. False when the key is new and the table
  // holds capacity() entries (the caller falls back to stateless), or the key's protocol byte
  // is 0 (not a flow). The class counts follow.
  bool upsert(const void* key, hash_sig_t idx, const FlowValue& v) { return upsert(key, idx, v.pack()); }
  // The same with a packed value (flow sync's bits 28, 29 included, flow.h).
  bool upsert(const void* key, hash_sig_t idx, uint64_t packed) {
    return v6_ ? upsertIn<flow_table_detail::Layout6>(key, idx, packed)
               : upsertIn<flow_table_detail::Layout4>(key, idx, packed);
  }

  // upsert() for a key the caller knows is absent: a lookup of it has just missed and nothing
  // was stored since (the worker's new flow). Skips upsert's search for the key; inserts in the
  // first free slot from the home bucket as upsert would. False, storing nothing, when the
  // table holds capacity() entries or the key's protocol byte is 0. Storing a key that is
  // present would leave two entries for it: callers must know.
  bool insertAbsent(const void* key, hash_sig_t idx, uint64_t packed) {
    return v6_ ? insertAbsentIn<flow_table_detail::Layout6>(key, idx, packed)
               : insertAbsentIn<flow_table_detail::Layout4>(key, idx, packed);
  }

  // Stores `v` under the key by the admission rules (top of file). On Displaced, `victim` is
  // the entry removed (the caller counts its end). A key with protocol byte 0 is TableFull.
  StoreResult store(const void* key, hash_sig_t idx, const FlowValue& v, const AdmitParams& a, FlowValue& victim) {
    return store(key, idx, v.pack(), a, victim);
  }
  StoreResult store(const void* key, hash_sig_t idx, uint64_t packed, const AdmitParams& a, FlowValue& victim) {
    return v6_ ? storeIn<flow_table_detail::Layout6>(key, idx, packed, a, &victim)
               : storeIn<flow_table_detail::Layout4>(key, idx, packed, a, &victim);
  }
  // What store() would return, changing nothing (decide.h asks before choosing a backend).
  StoreResult canStore(const void* key, hash_sig_t idx, bool embryonic, const AdmitParams& a) const {
    return v6_ ? planIn<flow_table_detail::Layout6>(key, idx, embryonic, a).result
               : planIn<flow_table_detail::Layout4>(key, idx, embryonic, a).result;
  }

  bool erase(const void* key, hash_sig_t idx) {
    return v6_ ? eraseIn<flow_table_detail::Layout6>(key, idx) : eraseIn<flow_table_detail::Layout4>(key, idx);
  }

  // Visits exactly `budget` table positions (occupied or free) from where the previous call
  // stopped, wrapping at capacity(), and removes the expired entries among them. Returns how
  // many were removed. Bounded work per call, whatever the table's fill. With `ended`, the
  // removed entries' backends get flows_ended counted (indexed by backend id).
  // Position p covers slots [p * slots() / capacity(), (p + 1) * slots() / capacity()): at most
  // ceil(slots() / capacity()) slots (3 once the table has a few buckets: slots() < 2.5 x
  // capacity() + one bucket), and one pass of capacity() positions covers them all.
  // With `visit`, the live entries among them whose value has none of visit->skip's bits set
  // are also handed to visit->fn (flow sync's re-announce, sync_rings.h) with their key
  // (FlowKey4/6 bytes) and value; the value it returns replaces the entry's when it differs (it
  // must keep the entry's state).
  struct LiveVisit {
    uint64_t skip;
    uint64_t (*fn)(void* ctx, const void* key, uint64_t value);
    void* ctx;
  };
  uint32_t sweep(uint32_t now_ms, const FlowTimeouts& t, uint32_t budget, BackendCounters* ended = nullptr,
                 const LiveVisit* visit = nullptr);
  uint32_t sweepCursor() const { return sweep_next_; }

  // Also read by the control thread (operator API): a relaxed atomic, so the count it sees is at
  // worst a burst old, never a torn read. Only this table's worker writes it.
  uint32_t size() const { return size_.load(std::memory_order_relaxed); }
  // Entries by class (flow.h isEmbryonic); same atomicity as size(). confirmed() may read one
  // burst apart from embryonic() on the control thread (two loads).
  uint32_t embryonic() const { return embryonic_.load(std::memory_order_relaxed); }
  uint32_t confirmed() const { return size() - embryonic(); }
  uint32_t capacity() const { return capacity_; }
  // Slots in the bucket array (>= capacity() * 100 / kMaxLoadPercent) and its bytes.
  uint64_t slots() const { return uint64_t(mask_ + 1) * slots_per_bucket_; }
  uint64_t memoryBytes() const { return uint64_t(mask_ + 1) * bucket_bytes_; }

  // For tests: every bucket's overflow count summed (0 once every entry that probed past its
  // home bucket is gone, unless a count stuck at 255).
  uint64_t overflowSum() const;

 private:
  FlowTable(uint8_t* mem, uint32_t capacity, uint32_t mask, bool v6);

  template <class L>
  uint8_t* bucketAt(uint32_t i) const {
    return mem_ + size_t(i) * L::kBytes;
  }

  // The bucket and slot holding the key, or nullptr.
  template <class L>
  uint8_t* find(const flow_table_detail::Needle<L>& k, hash_sig_t idx, unsigned& slot) const {
    uint32_t bi = idx & mask_;
    for (uint32_t probes = 0; probes <= mask_; probes++) {
      uint8_t* b = bucketAt<L>(bi);
      for (unsigned i = 0; i < L::kSlots; i++) {
        if (k.matches(b, i)) {
          slot = i;
          return b;
        }
      }
      if (b[L::kOverflowOff] == 0) return nullptr;
      bi = (bi + 1) & mask_;
    }
    return nullptr;
  }

  // A store's plan: the key's slot when present, the victim's when one is to go.
  struct Plan {
    StoreResult result;
    uint8_t* found = nullptr;
    unsigned found_slot = 0;
    uint8_t* victim = nullptr;
    unsigned victim_slot = 0;
  };
  template <class L>
  Plan planIn(const void* key, hash_sig_t sig, bool embryonic, const AdmitParams& a) const;
  // A victim within kDisplaceBuckets of `home` other than `keep`: an expired entry first, else
  // (with `embryonic_ok`) the least recently seen embryonic one; with `embryonic_only`, only
  // embryonic entries qualify at all.
  template <class L>
  bool findVictim(uint32_t home, bool embryonic_ok, bool embryonic_only, const AdmitParams& a, const uint8_t* keep,
                  unsigned keep_slot, Plan& p) const;
  template <class L>
  StoreResult storeIn(const void* key, hash_sig_t sig, uint64_t value, const AdmitParams& a, FlowValue* victim);
  template <class L>
  void insertNew(const flow_table_detail::Needle<L>& k, hash_sig_t sig, uint64_t value);
  // Overwrites slot's value, keeping the class count right.
  template <class L>
  void overwrite(uint8_t* b, unsigned slot, uint64_t value);
  // The home bucket of the entry in slot i of b (its key's hash, from the stored words).
  template <class L>
  uint32_t homeOf(const uint8_t* b, unsigned i) const;
  template <class L>
  bool upsertIn(const void* key, hash_sig_t idx, uint64_t value);
  template <class L>
  bool insertAbsentIn(const void* key, hash_sig_t idx, uint64_t value);
  template <class L>
  bool eraseIn(const void* key, hash_sig_t idx);
  // Frees `slot` of bucket `b` (index bi), whose entry's home bucket is `home`.
  template <class L>
  void removeAt(uint8_t* b, uint32_t bi, unsigned slot, uint32_t home);
  template <class L>
  uint32_t sweepIn(uint32_t now_ms, const FlowTimeouts& t, uint32_t budget, BackendCounters* ended,
                   const LiveVisit* visit);

  uint8_t* mem_;
  uint32_t mask_;  // buckets - 1
  uint32_t bucket_bytes_;
  uint32_t slots_per_bucket_;
  bool v6_;
  uint32_t capacity_;
  std::atomic<uint32_t> size_{0};  // single writer: load + store, no locked RMW
  std::atomic<uint32_t> embryonic_{0};  // entries whose state isEmbryonic; same writer
  uint32_t sweep_next_ = 0;
  uint32_t sparse_max_;  // (mask_ + 1) / 4: up to this many entries, IPv6 prefetches line 0 only
};

}  // namespace l4lb::dataplane
