// Per-worker fragment table: which backend the fragments of one IP datagram go to.
//
// A first fragment carries the L4 header, so it is scheduled as an unfragmented packet of its
// 5-tuple (worker.cc: the flow table, decide.h); its decision is recorded here under the
// datagram's key (source, destination, identification, protocol, family). Later fragments have
// no ports: they look the key up and go where the first went. A later fragment that arrives
// before its first is held (its mbuf kept, in arrival order) until the first arrives (the held
// ones are then released to the caller, in order, to follow it) or the entry times out (they
// are handed back to be dropped).
//
// Bounds (every hit is reported so the worker counts it):
//  - `capacity` entries in buckets of kWays: a new key takes a free or expired way of its
//    bucket, else the oldest *held-only* way (a datagram whose first never came: the shape of a
//    flood of random later fragments), never a way holding a decision that has not expired;
//    with none, the insert fails (table full).
//  - `max_held` mbufs held per worker (a fixed pool of slots, far below the mbuf pool), and
//    `max_held_per_datagram` per datagram.
//  - Entries live `timeout_ms` from their creation (a decision's entry is refreshed by a
//    duplicate first fragment); expired entries are reclaimed by sweep() in bounded steps, and
//    an expired entry is a miss whatever the sweep's progress.
//
// Single writer (its worker), no locks, no allocation after construction. The table stores
// opaque packet pointers (void*): it never frees one; every packet it gives up goes through the
// callback the caller passes. Pure C++ so unit tests need no EAL.
//
// lookup() is the clean read-only question other code may ask (e.g. an ICMP error quoting a
// fragment): the decision recorded for a datagram, if any.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>

#include "l4lb/addr.h"
#include "l4lb/hash.h"

namespace l4lb::dataplane {

// A datagram's identity. IPv4 addresses sit in the first 4 bytes of each array, the rest zero.
struct FragKey {
  uint8_t saddr[16];
  uint8_t daddr[16];
  uint32_t id;     // IPv4 ID (zero-extended) or IPv6 fragment identification
  uint8_t proto;   // PacketInfo::frag_proto
  uint8_t family;  // Family
  uint16_t pad;
  bool operator==(const FragKey& o) const { return std::memcmp(this, &o, sizeof(FragKey)) == 0; }
};
static_assert(sizeof(FragKey) == 40);

// Builds the key from a parsed fragment's fields.
inline FragKey makeFragKey(const uint8_t* saddr, const uint8_t* daddr, Family f, uint32_t id, uint8_t proto) {
  FragKey k;
  std::memset(&k, 0, sizeof(k));
  const size_t n = f == Family::V4 ? 4 : 16;
  std::memcpy(k.saddr, saddr, n);
  std::memcpy(k.daddr, daddr, n);
  k.id = id;
  k.proto = proto;
  k.family = uint8_t(f);
  return k;
}

// The worker that owns a datagram's fragments when there are `nworkers`: a hash of (source,
// destination) only, the two fields every fragment carries, so all fragments of a datagram (and
// their first, whatever queue RSS put each on) meet at one worker whatever the NIC's RSS.
inline uint32_t fragOwner(const uint8_t* saddr, const uint8_t* daddr, Family f, uint32_t nworkers) {
  const uint32_t n = f == Family::V4 ? 4 : 16;
  const uint32_t h = crcHash(daddr, n, crcHash(saddr, n, 0x0f4a));
  return uint32_t((uint64_t(h) * nworkers) >> 32);
}

// What the first fragment's scheduling decided. drop: the VIP drops fragments (or the first
// found no backend): the later ones are dropped too.
struct FragDecision {
  uint32_t vip_index = 0;
  uint32_t backend = 0;
  uint32_t slot_hash = 0;  // the 5-tuple's hash: the tunnels' entropy (GUE source port, flow label)
  bool drop = false;
};

enum class FragHold : uint8_t {
  Held,           // kept until its first fragment arrives or the entry times out
  TableFull,      // no way for a new key (every way of its bucket holds a live decision)
  HeldFull,       // the worker's held pool is full
  DatagramFull,   // this datagram already holds max_held_per_datagram fragments
  Decided,        // its first has been seen: lookup() answers (not held)
};

class FragTable {
 public:
  static constexpr uint32_t kWays = 8;
  static constexpr uint32_t kMaxHeldPerDatagram = 64;

  // capacity: rounded up to a power of two, at least kWays.
  FragTable(uint32_t capacity, uint32_t max_held, uint32_t max_held_per_datagram);

  uint32_t capacity() const { return nbuckets_ * kWays; }
  uint32_t size() const { return size_; }
  uint32_t held() const { return held_; }
  uint32_t maxHeld() const { return max_held_; }

  // The decision recorded for `k`, or nullptr (unknown, only held fragments, or expired).
  const FragDecision* lookup(const FragKey& k, uint32_t now_ms) const;

  // Records the first fragment's decision, valid until now + timeout. The fragments held for
  // it are passed, in arrival order, to `release(void* pkt)` (to be sent like the first). A
  // key that needs a new entry may evict a held-only one, and an expired entry of the same key
  // is emptied: their fragments go to `evict(void* pkt)`. Returns false when no way was free (table full): nothing recorded.
  template <class Release, class Evict>
  bool record(const FragKey& k, const FragDecision& d, uint32_t now_ms, uint32_t timeout_ms, Release&& release,
              Evict&& evict);

  // Holds a later fragment whose first has not been seen. Anything but Held leaves `pkt` to the
  // caller. A new entry may evict a held-only one, and an expired entry of the same key is
  // emptied: their fragments go to `evict`.
  template <class Evict>
  FragHold hold(const FragKey& k, void* pkt, uint32_t now_ms, uint32_t timeout_ms, Evict&& evict);

  // Reclaims expired entries among the next `budget` ways (a cursor walks the table); their
  // held fragments go to `expire(void* pkt)`. Returns the number of entries removed.
  template <class Expire>
  uint32_t sweep(uint32_t now_ms, uint32_t budget, Expire&& expire);

 private:
  static constexpr uint32_t kNil = UINT32_MAX;
  struct Entry {
    FragKey key;
    FragDecision d;
    uint32_t created_ms = 0;
    uint32_t deadline_ms = 0;  // expired when (int32_t)(now - deadline) >= 0
    uint32_t head = kNil, tail = kNil;  // held fragments, oldest first (slot indexes)
    uint8_t nheld = 0;
    bool used = false;
    bool decided = false;
  };
  struct Slot {
    void* pkt = nullptr;
    uint32_t next = kNil;
  };

  static bool expired(const Entry& e, uint32_t now_ms) { return int32_t(now_ms - e.deadline_ms) >= 0; }
  uint32_t bucketOf(const FragKey& k) const;
  // The way holding `k`, expired or not (a key is in at most one way).
  Entry* find(const FragKey& k);
  // find(), with an expired entry emptied (its fragments to `expire`) and reset for reuse as new.
  template <class Expire>
  Entry* findLive(const FragKey& k, uint32_t now_ms, Expire&& expire);
  // A way for a new key in k's bucket: free, expired or the oldest held-only (its fragments
  // to `evict`); nullptr when every way holds a live decision.
  template <class Evict>
  Entry* claim(const FragKey& k, uint32_t now_ms, Evict&& evict);
  template <class F>
  void drain(Entry& e, F&& f);  // hands every held fragment to f, oldest first, frees the slots
  void release(Entry& e) {
    e.used = false;
    size_--;
  }

  uint32_t nbuckets_;
  uint32_t mask_;
  uint32_t max_held_;
  uint32_t max_per_dgram_;
  uint32_t size_ = 0;
  uint32_t held_ = 0;
  uint32_t free_slot_ = kNil;
  uint32_t cursor_ = 0;
  std::unique_ptr<Entry[]> entries_;
  std::unique_ptr<Slot[]> slots_;
};

template <class F>
void FragTable::drain(Entry& e, F&& f) {
  uint32_t i = e.head;
  while (i != kNil) {
    Slot& s = slots_[i];
    const uint32_t next = s.next;
    void* pkt = s.pkt;
    s.pkt = nullptr;
    s.next = free_slot_;
    free_slot_ = i;
    held_--;
    f(pkt);
    i = next;
  }
  e.head = e.tail = kNil;
  e.nheld = 0;
}

template <class Expire>
FragTable::Entry* FragTable::findLive(const FragKey& k, uint32_t now_ms, Expire&& expire) {
  Entry* e = find(k);
  if (e != nullptr && expired(*e, now_ms)) {
    drain(*e, expire);
    release(*e);
    return nullptr;
  }
  return e;
}

template <class Evict>
FragTable::Entry* FragTable::claim(const FragKey& k, uint32_t now_ms, Evict&& evict) {
  Entry* b = &entries_[size_t(bucketOf(k)) * kWays];
  Entry* victim = nullptr;
  for (uint32_t w = 0; w < kWays; w++) {
    Entry& e = b[w];
    if (!e.used) return &e;
    if (expired(e, now_ms)) {
      drain(e, evict);
      release(e);
      return &e;
    }
    if (!e.decided && (victim == nullptr || int32_t(e.created_ms - victim->created_ms) < 0)) victim = &e;
  }
  if (victim != nullptr) {
    drain(*victim, evict);
    release(*victim);
  }
  return victim;
}

template <class Release, class Evict>
bool FragTable::record(const FragKey& k, const FragDecision& d, uint32_t now_ms, uint32_t timeout_ms,
                       Release&& rel, Evict&& evict) {
  Entry* e = findLive(k, now_ms, evict);
  if (e == nullptr) {
    e = claim(k, now_ms, evict);
    if (e == nullptr) return false;
    e->key = k;
    e->used = true;
    e->head = e->tail = kNil;
    e->nheld = 0;
    size_++;
  }
  e->d = d;
  e->decided = true;
  e->created_ms = now_ms;
  e->deadline_ms = now_ms + timeout_ms;
  drain(*e, rel);
  return true;
}

template <class Evict>
FragHold FragTable::hold(const FragKey& k, void* pkt, uint32_t now_ms, uint32_t timeout_ms, Evict&& evict) {
  Entry* e = findLive(k, now_ms, evict);
  if (e != nullptr && e->decided) return FragHold::Decided;
  if (e != nullptr && e->nheld >= max_per_dgram_) return FragHold::DatagramFull;
  if (free_slot_ == kNil) return FragHold::HeldFull;
  if (e == nullptr) {
    e = claim(k, now_ms, evict);
    if (e == nullptr) return FragHold::TableFull;
    e->key = k;
    e->used = true;
    e->decided = false;
    e->d = {};
    e->head = e->tail = kNil;
    e->nheld = 0;
    e->created_ms = now_ms;
    e->deadline_ms = now_ms + timeout_ms;
    size_++;
    if (free_slot_ == kNil) return FragHold::HeldFull;  // the eviction cannot empty the pool, but be exact
  }
  const uint32_t i = free_slot_;
  Slot& s = slots_[i];
  free_slot_ = s.next;
  s.pkt = pkt;
  s.next = kNil;
  if (e->tail == kNil) e->head = i;
  else slots_[e->tail].next = i;
  e->tail = i;
  e->nheld++;
  held_++;
  return FragHold::Held;
}

template <class Expire>
uint32_t FragTable::sweep(uint32_t now_ms, uint32_t budget, Expire&& expire) {
  const uint32_t total = nbuckets_ * kWays;
  uint32_t removed = 0;
  for (uint32_t n = 0; n < budget && n < total; n++) {
    Entry& e = entries_[cursor_];
    cursor_ = cursor_ + 1 == total ? 0 : cursor_ + 1;
    if (e.used && expired(e, now_ms)) {
      drain(e, expire);
      release(e);
      removed++;
    }
  }
  return removed;
}

}  // namespace l4lb::dataplane
