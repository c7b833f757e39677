// SnapshotPublisher (QSBR swap, src/control/publisher.cc) against real readers:
//  - lifetime: a reader that has not reported a quiescent state keeps the old snapshot alive, and
//    publish() blocks until it does; an offline reader blocks nothing;
//  - stress: the real workerMain on net_ring ports forwards while the control thread publishes
//    thousands of snapshots. Every generation's backends (and the egress port's MAC) encode the
//    generation, so each output frame says which table it was forwarded with; it must be a table
//    published between the packet's injection and its output, and one table, not a mix of two.
//    Meanwhile the control thread asks the workers about flows through their FlowQuery slots
//    (what l4lbctl explain does): every question is answered, recurring flows are found.
// Run it under ASan+UBSan (a freed snapshot read by a worker is a use-after-free report) and
// ThreadSanitizer (tests/tsan.sh; DPDK itself is not instrumented, see below). Removing the
// rte_rcu_qsbr_synchronize() call from publish() makes all three configurations fail.
//
// Its own main: the stress test needs several worker lcores (EAL --lcores).
#include "control/publisher.h"

#include <gtest/gtest.h>

#include <rte_eal.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring.h>
#include <sched.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include "control/snapshot_builder.h"
#include "dataplane/lookup.h"
#include "dataplane/worker.h"
#include "packet_builder.h"
#include "test_eal.h"
#include "topology.h"

#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
#endif

// ---------------------------------------------------------------------------------------------
// Test-only observation of frees: the publisher deletes the old Snapshot with plain `delete`, and
// src/ has (and needs) no hook. Replacing the global allocation functions (allowed by the
// standard, [replacement.functions]) lets a test watch one address and see the exact moment it is
// freed, with its size, without changing what src/ does. Allocation goes to malloc/free, which
// ASan and TSan still intercept.

namespace {
std::atomic<const void*> g_watched{nullptr};
std::atomic<int> g_watched_frees{0};
std::atomic<size_t> g_watched_size{0};

void noteFree(void* p, size_t n) noexcept {
  const void* w = g_watched.load(std::memory_order_acquire);
  if (p != nullptr && p == w && g_watched.compare_exchange_strong(w, nullptr)) {
    g_watched_size.store(n, std::memory_order_relaxed);
    g_watched_frees.fetch_add(1, std::memory_order_release);
  }
}

void* allocOrThrow(size_t n) {
  void* p = std::malloc(n == 0 ? 1 : n);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}
}  // namespace

void* operator new(size_t n) { return allocOrThrow(n); }
void* operator new[](size_t n) { return allocOrThrow(n); }
void operator delete(void* p) noexcept {
  noteFree(p, 0);
  std::free(p);
}
void operator delete[](void* p) noexcept {
  noteFree(p, 0);
  std::free(p);
}
void operator delete(void* p, size_t n) noexcept {
  noteFree(p, n);
  std::free(p);
}
void operator delete[](void* p, size_t n) noexcept {
  noteFree(p, n);
  std::free(p);
}

// ---------------------------------------------------------------------------------------------
// ThreadSanitizer: DPDK's libraries are not instrumented, so TSan cannot see the synchronisation
// that happens inside them and reports races that are not there. Three places matter here:
//  1. rte_rcu_qsbr_synchronize() lives in librte_rcu.so: the writer's acquire of the readers'
//     counters is invisible, and every snapshot free would be reported against the workers'
//     reads. The readers' side (rte_rcu_qsbr_quiescent, inline in rte_rcu_qsbr.h) is compiled
//     into worker.cc and is instrumented. This build defines the function itself, from the same
//     inline header API and with DPDK 22.11's body (lib/rcu/rte_rcu_qsbr.c: start, the caller's
//     own quiescent state if it is a reader, check with wait), so the executable's definition
//     is used and TSan sees the acquire. Same semantics; only the instrumentation differs.
//  2. The net_ring PMD moves mbufs through rte_rings inside librte_net_ring.so: RX and TX
//     callbacks (run by rte_eth_rx_burst / rte_eth_tx_burst on the worker, instrumented test
//     code) and the test's own side of each ring annotate the hand-off as acquire/release on
//     the ring, as the ring's own head/tail atomics do.
//  3. EAL's launch/wait handshake is in librte_eal.so: the worker entry wrapper below publishes
//     its finish through a std::atomic, which the main thread acquires after
//     rte_eal_mp_wait_lcore().
#if defined(__SANITIZE_THREAD__)
extern "C" void rte_rcu_qsbr_synchronize(struct rte_rcu_qsbr* v, unsigned int thread_id) {
  const uint64_t t = rte_rcu_qsbr_start(v);
  if (thread_id != RTE_QSBR_THRID_INVALID) rte_rcu_qsbr_quiescent(v, thread_id);
  rte_rcu_qsbr_check(v, t, true);
}
#endif

namespace {
#if defined(__SANITIZE_THREAD__)
void ringRelease(const rte_ring* r) { __tsan_release(const_cast<rte_ring*>(r)); }
void ringAcquire(const rte_ring* r) { __tsan_acquire(const_cast<rte_ring*>(r)); }
#else
void ringRelease(const rte_ring*) {}
void ringAcquire(const rte_ring*) {}
#endif
}  // namespace

namespace l4lb::control {
namespace {

using dataplane::DataplaneShared;
using dataplane::WorkerArgs;
using dataplane::WorkerState;
using test::ipAddr;
using test::macAddr;
using test::PacketBuilder;
using Frame = std::vector<uint8_t>;
using test::topo::kClientMac;  // tests/common/topology.h
using test::topo::kWanMac;

// Watches `s` for its free; returns the raw pointer for later checks.
const Snapshot* watch(const Snapshot* s) {
  g_watched_frees.store(0);
  g_watched_size.store(0);
  g_watched.store(s, std::memory_order_release);
  return s;
}

// Minimal snapshot for the lifetime tests: only the generation matters.
std::unique_ptr<Snapshot> bareSnapshot(uint64_t generation) {
  auto s = std::make_unique<Snapshot>();
  s->generation = generation;
  s->vips.resize(4);  // heap memory a reader touches: ASan reports a read after free
  return s;
}

// QSBR variable for `n` readers, freed with the test.
struct Qsbr {
  explicit Qsbr(uint32_t n) {
    size_t sz = rte_rcu_qsbr_get_memsize(n);
    q = static_cast<rte_rcu_qsbr*>(rte_zmalloc("publisher_test_qsbr", sz, RTE_CACHE_LINE_SIZE));
    if (q != nullptr && rte_rcu_qsbr_init(q, n) != 0) {
      rte_free(q);
      q = nullptr;
    }
  }
  ~Qsbr() { rte_free(q); }
  rte_rcu_qsbr* q = nullptr;
};

bool waitFor(const std::atomic<bool>& flag, std::chrono::milliseconds limit) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (!flag.load(std::memory_order_acquire)) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// Lifetime

TEST(PublisherLifetime, FirstPublishFreesNothingDestructorFreesCurrent) {
  Qsbr qs(1);
  ASSERT_NE(qs.q, nullptr);
  DataplaneShared shared;
  shared.qsbr = qs.q;
  {
    SnapshotPublisher pub(shared);
    auto first = bareSnapshot(1);
    const Snapshot* s1 = watch(first.get());
    pub.publish(std::move(first));
    EXPECT_EQ(g_watched_frees.load(), 0);
    EXPECT_EQ(pub.current(), s1);
    EXPECT_EQ(shared.snapshot.load(), s1);
    EXPECT_EQ(pub.publishes(), 1u);
  }
  EXPECT_EQ(g_watched_frees.load(), 1);
  EXPECT_EQ(g_watched_size.load(), sizeof(Snapshot));
  EXPECT_EQ(shared.snapshot.load(), nullptr);
}

// A reader that loaded the snapshot and has not yet reported a quiescent state keeps it alive:
// publish() of the next one must not return (nor free the old one) until the reader does.
TEST(PublisherLifetime, UnquiescedReaderKeepsOldSnapshotUntilQuiescent) {
  Qsbr qs(1);
  ASSERT_NE(qs.q, nullptr);
  DataplaneShared shared;
  shared.qsbr = qs.q;
  SnapshotPublisher pub(shared);
  pub.publish(bareSnapshot(1));
  watch(pub.current());

  std::atomic<bool> holding{false}, release{false}, reader_done{false};
  std::atomic<uint64_t> reads{0}, bad_reads{0}, after_release_gen{0};
  std::thread reader([&] {
    rte_rcu_qsbr_thread_register(qs.q, 0);
    rte_rcu_qsbr_thread_online(qs.q, 0);
    rte_rcu_qsbr_quiescent(qs.q, 0);
    const Snapshot* s = shared.snapshot.load(std::memory_order_acquire);
    holding.store(true, std::memory_order_release);
    // Keep reading the held snapshot (a freed one would be an ASan use-after-free report).
    while (!release.load(std::memory_order_acquire)) {
      if (s->generation != 1 || s->vips.size() != 4) bad_reads++;
      reads++;
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    rte_rcu_qsbr_quiescent(qs.q, 0);
    after_release_gen = shared.snapshot.load(std::memory_order_acquire)->generation;
    rte_rcu_qsbr_thread_offline(qs.q, 0);
    rte_rcu_qsbr_thread_unregister(qs.q, 0);
    reader_done.store(true, std::memory_order_release);
  });
  ASSERT_TRUE(waitFor(holding, std::chrono::seconds(10)));

  std::atomic<bool> returned{false};
  std::thread writer([&] {
    pub.publish(bareSnapshot(2));
    returned.store(true, std::memory_order_release);
  });
  // The new pointer is visible as soon as the writer runs (waited for: on a loaded machine
  // under TSan the writer thread may start late, which made a fixed 300 ms sleep flaky); the
  // old one stays allocated while the reader holds it, and publish() does not return.
  const auto seen_until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (shared.snapshot.load(std::memory_order_acquire)->generation != 2 &&
         std::chrono::steady_clock::now() < seen_until)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_EQ(shared.snapshot.load()->generation, 2u);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_FALSE(returned.load());
  EXPECT_EQ(g_watched_frees.load(), 0);
  EXPECT_GT(reads.load(), 0u);

  release.store(true, std::memory_order_release);
  writer.join();
  reader.join();
  EXPECT_TRUE(returned.load());
  EXPECT_TRUE(reader_done.load());
  EXPECT_EQ(g_watched_frees.load(), 1);
  EXPECT_EQ(g_watched_size.load(), sizeof(Snapshot));
  EXPECT_EQ(bad_reads.load(), 0u);
  EXPECT_EQ(after_release_gen.load(), 2u);
  EXPECT_EQ(pub.publishes(), 2u);
}

// A reader that went offline (as a worker does before anything that may block) holds nothing:
// publish() returns without waiting for it and frees the old snapshot.
TEST(PublisherLifetime, OfflineReaderDoesNotBlock) {
  Qsbr qs(2);
  ASSERT_NE(qs.q, nullptr);
  DataplaneShared shared;
  shared.qsbr = qs.q;
  SnapshotPublisher pub(shared);
  pub.publish(bareSnapshot(1));
  rte_rcu_qsbr_thread_register(qs.q, 1);
  rte_rcu_qsbr_thread_online(qs.q, 1);
  rte_rcu_qsbr_thread_offline(qs.q, 1);
  watch(pub.current());
  std::atomic<bool> returned{false};
  std::thread writer([&] {
    pub.publish(bareSnapshot(2));
    returned.store(true, std::memory_order_release);
  });
  EXPECT_TRUE(waitFor(returned, std::chrono::seconds(10)));
  writer.join();
  EXPECT_EQ(g_watched_frees.load(), 1);
  EXPECT_EQ(pub.current()->generation, 2u);
  rte_rcu_qsbr_thread_unregister(qs.q, 1);
}

// ---------------------------------------------------------------------------------------------
// Stress: real workers on net_ring ports, thousands of swaps.

constexpr uint32_t kRingSize = 1024;
constexpr uint32_t kInFlightPerWorker = 256;  // < kRingSize: the TX rings never fill
constexpr uint32_t kPoolBackends = 8;         // backend addresses a generation picks from
constexpr uint32_t kRecurringFlows = 64;      // flows that come back across generations
// 5000 swaps take 2-12 s in a plain build on two shared CPUs; sanitizers and a loaded machine
// (other builds) slow the workers' loops, so the run is also capped in time, and fails only
// below a floor that still means hundreds of swaps under traffic.
constexpr uint64_t kTargetSwaps = 5000;
constexpr auto kMaxPublishTime = std::chrono::seconds(30);
constexpr uint64_t kMinSwaps = 500;
constexpr uint64_t kMinChecked = 20000;
constexpr uint16_t kVipPort = 80;
constexpr uint8_t kSyn = 0x02;  // TCP flags (RFC 9293 §3.1)
constexpr size_t kMarkOff = 0, kSeqOff = 8, kLoOff = 16, kPayloadLen = 24;
constexpr uint64_t kMark = 0x52435553'54524553ull;  // "RCUSTRES"

const IpAddr kVip4 = ipAddr("198.18.1.1");
const IpAddr kVip6 = ipAddr("2001:db8:1::1");

// Generation g's MACs: 02:gg:gg:gg:<tag>:<index> (24 bits of g). Backends tag b4/b6, the lan
// port 1a: a frame forwarded with one table carries g in both its destination and source MAC.
constexpr uint8_t kTagB4 = 0xb4, kTagB6 = 0xb6, kTagLan = 0x1a;
MacAddr genMac(uint64_t g, uint8_t tag, uint8_t index) {
  return MacAddr{{0x02, uint8_t(g >> 16), uint8_t(g >> 8), uint8_t(g), tag, index}};
}

// Backend pool indices of generation g for a family: 2..4 consecutive indices (mod 8) whose start
// moves every third generation, so a flow's backend often survives a swap (flow hit through the
// new table) and sometimes does not (rehash); weights change every generation (new Maglev table).
std::vector<uint8_t> backendSet(uint64_t g, bool v6) {
  const uint64_t base = g / 3 + (v6 ? 4 : 0);
  const uint64_t k = 2 + (v6 ? g + 1 : g) % 3;
  std::vector<uint8_t> set;
  for (uint64_t j = 0; j < k; j++) set.push_back(uint8_t((base + j) % kPoolBackends));
  return set;
}

IpAddr backendAddr(uint8_t i, bool v6) {
  return ipAddr((v6 ? "2001:db8:2::" : "198.19.0.") + std::to_string(10 + i));
}

Config generationConfig(uint64_t g) {
  Config c = test::topo::topology({.gw4 = "", .gw6 = "", .device = "net_ring_"});
  // Short timeouts: the sweeper recycles the one-packet flows while the run lasts.
  c.flow_table.tcp_syn_timeout_ms = 200;
  c.flow_table.tcp_established_timeout_ms = 200;
  c.flow_table.tcp_fin_timeout_ms = 200;
  for (bool v6 : {false, true}) {
    VipConfig v;
    v.address = v6 ? kVip6 : kVip4;
    v.port = kVipPort;
    v.protocol = Proto::Tcp;
    v.scheduler = Scheduler::Maglev;
    v.maglev_table_size = 251;  // prime; small, so thousands of builds stay cheap
    for (uint8_t i : backendSet(g, v6)) {
      BackendConfig b;
      b.address = backendAddr(i, v6);
      b.weight = 1 + uint32_t((g + i) % 3);
      b.mac = genMac(g, v6 ? kTagB6 : kTagB4, i);
      v.backends.push_back(b);
    }
    c.vips.push_back(v);
  }
  return c;
}

void put64(uint8_t* p, uint64_t v) { std::memcpy(p, &v, 8); }
uint64_t get64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

// Packet `seq`: even seq IPv4, odd IPv6; half of them from a small set of recurring flows per
// family (flow table entries that outlive generations), the rest a fresh flow each. The payload carries seq and `lo`,
// the last generation whose publish() had returned before injection. A pure function of
// (seq, lo), so the checker rebuilds the exact bytes it expects.
Frame makeFrame(uint64_t seq, uint64_t lo) {
  const bool v6 = seq & 1;
  uint32_t flow = seq % 4 >= 2 ? uint32_t((seq / 4) % kRecurringFlows) : uint32_t(kRecurringFlows + seq);
  const uint16_t sport = uint16_t(1024 + flow % 60000);
  const uint32_t host = flow / 60000;  // < 2^15 for < 2e9 packets
  std::vector<uint8_t> pl(kPayloadLen);
  put64(pl.data() + kMarkOff, kMark);
  put64(pl.data() + kSeqOff, seq);
  put64(pl.data() + kLoOff, lo);
  PacketBuilder b;
  b.eth(kClientMac, kWanMac);
  if (v6) {
    uint8_t a[16] = {0x20, 0x01, 0x0d, 0xb8, 0xc0, 0, 0, 0, 0, 0, 0, 0, 0, 0, uint8_t(host >> 8), uint8_t(host)};
    b.ipv6(IpAddr::v6(a), kVip6);
  } else {
    b.ipv4(IpAddr::v4(rte_cpu_to_be_32(0xc6128000u + host)), kVip4);  // 198.18.128.0/17
  }
  return b.tcp(sport, kVipPort, kSyn).payload(std::move(pl)).build();
}

struct RingPort {
  uint16_t port_id = 0;
  std::vector<rte_ring*> rx, tx;
  std::vector<const rte_eth_rxtx_callback*> rx_cbs, tx_cbs;
};

// An empty poll gives the CPU away, as rte_power_pmd_mgmt's "pause" mode idles a PMD through an
// RX callback. The test runs more busy lcores than CPUs: a worker spinning on an empty ring would
// hold its CPU for a whole scheduler slice while the writer (on the same CPU, or waiting for the
// other worker there) waits for its quiescent state. It yields inside its read-side section
// (holding the snapshot it loaded), which is exactly the preempted reader QSBR must wait for.
// `ring`: the queue's rte_ring (TSan annotation of the hand-off, see the top of the file).
uint16_t yieldWhenIdle(uint16_t, uint16_t, rte_mbuf**, uint16_t nb_rx, uint16_t, void* ring) {
  if (nb_rx == 0) {
    sched_yield();
  } else {
    ringAcquire(static_cast<rte_ring*>(ring));
  }
  return nb_rx;
}

uint16_t releaseOnTx(uint16_t, uint16_t, rte_mbuf**, uint16_t nb_pkts, void* ring) {
  ringRelease(static_cast<rte_ring*>(ring));
  return nb_pkts;
}

struct StressResult {
  uint64_t injected = 0, checked = 0, violations = 0, same_gen = 0, newer_gen = 0;
  uint64_t wrong_port = 0, torn = 0, out_of_window = 0, not_in_table = 0, bad_bytes = 0, duplicate = 0;
  std::vector<std::string> first_errors;
};

class Checker {
 public:
  explicit Checker(StressResult& r) : r_(r) {}

  // `hi`: the newest generation stored before this frame was dequeued.
  void check(const uint8_t* d, uint32_t len, uint64_t hi) {
    r_.checked++;
    const size_t l4 = len >= 14 && d[12] == 0x86 && d[13] == 0xdd ? 14 + 40 : 14 + 20;
    const size_t pl = l4 + 20;
    if (len != pl + kPayloadLen || get64(d + pl + kMarkOff) != kMark) return fail(r_.bad_bytes, "not our frame");
    const uint64_t seq = get64(d + pl + kSeqOff), lo = get64(d + pl + kLoOff);
    if (seq >= seen_.size()) seen_.resize(seq + 1 + 4096, false);
    if (seen_[seq]) return fail(r_.duplicate, "seq " + std::to_string(seq) + " seen twice");
    seen_[seq] = true;
    const bool v6 = seq & 1;
    const Frame want = makeFrame(seq, lo);
    if (want.size() != len || std::memcmp(want.data() + 12, d + 12, len - 12) != 0)
      return fail(r_.bad_bytes, "seq " + std::to_string(seq) + ": bytes after the MACs changed");
    const uint64_t g = uint64_t(d[1]) << 16 | uint64_t(d[2]) << 8 | d[3];
    const uint64_t gsrc = uint64_t(d[7]) << 16 | uint64_t(d[8]) << 8 | d[9];
    if (d[0] != 0x02 || d[4] != (v6 ? kTagB6 : kTagB4) || d[6] != 0x02 || d[10] != kTagLan || d[11] != 0)
      return fail(r_.not_in_table, "seq " + std::to_string(seq) + ": MACs of no generation");
    if (g != gsrc)
      return fail(r_.torn, "seq " + std::to_string(seq) + ": backend of generation " + std::to_string(g) +
                               ", port MAC of generation " + std::to_string(gsrc));
    if (g < lo || g > hi)
      return fail(r_.out_of_window, "seq " + std::to_string(seq) + ": generation " + std::to_string(g) +
                                        " outside [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    bool member = false;
    for (uint8_t i : backendSet(g, v6)) member |= d[5] == i;
    if (!member)
      return fail(r_.not_in_table, "seq " + std::to_string(seq) + ": backend " + std::to_string(d[5]) +
                                       " not in generation " + std::to_string(g));
    (g == lo ? r_.same_gen : r_.newer_gen)++;
  }

  void wrongPort() { fail(r_.wrong_port, "frame sent on the wan port"); }

 private:
  void fail(uint64_t& category, const std::string& what) {
    category++;
    r_.violations++;
    if (r_.first_errors.size() < 10) r_.first_errors.push_back(what);
  }
  StressResult& r_;
  std::vector<bool> seen_;
};

// The real worker loop, plus a finish flag the main thread acquires after rte_eal_mp_wait_lcore()
// (whose own handshake is inside librte_eal, invisible to TSan).
struct WorkerRun {
  WorkerArgs args;
  std::atomic<bool> finished{false};
};

int runWorker(void* arg) {
  auto* run = static_cast<WorkerRun*>(arg);
  int rc = dataplane::workerMain(&run->args);
  run->finished.store(true, std::memory_order_release);
  return rc;
}

class PublisherStress : public ::testing::Test {
 protected:
  void SetUp() override {
    pool_ = rte_pktmbuf_pool_create("rcu_stress_pool", 8191, 128, 0, RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
    ASSERT_NE(pool_, nullptr) << rte_strerror(rte_errno);
    unsigned lcore;
    RTE_LCORE_FOREACH_WORKER(lcore) lcores_.push_back(lcore);
    ASSERT_GE(lcores_.size(), 2u) << "needs EAL --lcores with at least two worker lcores";
    nworkers_ = uint16_t(lcores_.size());
    for (const char* name : {"wan", "lan"}) ASSERT_NO_FATAL_FAILURE(makePort(name));
  }

  void TearDown() override {
    for (RingPort& p : ports_) {
      rte_eth_dev_stop(p.port_id);
      // Workers have stopped: no callback is in flight, so it may be freed at once.
      for (uint16_t q = 0; q < p.rx_cbs.size(); q++) {
        rte_eth_remove_rx_callback(p.port_id, q, p.rx_cbs[q]);
        rte_free(const_cast<rte_eth_rxtx_callback*>(p.rx_cbs[q]));
      }
      for (uint16_t q = 0; q < p.tx_cbs.size(); q++) {
        rte_eth_remove_tx_callback(p.port_id, q, p.tx_cbs[q]);
        rte_free(const_cast<rte_eth_rxtx_callback*>(p.tx_cbs[q]));
      }
      rte_eth_dev_close(p.port_id);
      for (rte_ring* r : p.rx) rte_ring_free(r);
      for (rte_ring* r : p.tx) rte_ring_free(r);
    }
    rte_mempool_free(pool_);
  }

  void makePort(const std::string& name) {
    RingPort p;
    for (uint16_t q = 0; q < nworkers_; q++) {
      for (bool rx : {true, false}) {
        const std::string rn = "rcu_" + name + (rx ? "_rx" : "_tx") + std::to_string(q);
        rte_ring* r = rte_ring_create(rn.c_str(), kRingSize, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
        ASSERT_NE(r, nullptr) << rn << ": " << rte_strerror(rte_errno);
        (rx ? p.rx : p.tx).push_back(r);
      }
    }
    int id = rte_eth_from_rings(("net_ring_rcu_" + name).c_str(), p.rx.data(), nworkers_, p.tx.data(), nworkers_,
                                SOCKET_ID_ANY);
    ASSERT_GE(id, 0) << "rte_eth_from_rings: " << rte_strerror(rte_errno);
    p.port_id = uint16_t(id);
    rte_eth_conf conf{};
    ASSERT_EQ(rte_eth_dev_configure(p.port_id, nworkers_, nworkers_, &conf), 0);
    for (uint16_t q = 0; q < nworkers_; q++) {
      ASSERT_EQ(rte_eth_rx_queue_setup(p.port_id, q, kRingSize, SOCKET_ID_ANY, nullptr, pool_), 0);
      ASSERT_EQ(rte_eth_tx_queue_setup(p.port_id, q, kRingSize, SOCKET_ID_ANY, nullptr), 0);
    }
    ASSERT_EQ(rte_eth_dev_start(p.port_id), 0);
    for (uint16_t q = 0; q < nworkers_; q++) {
      p.rx_cbs.push_back(rte_eth_add_rx_callback(p.port_id, q, yieldWhenIdle, p.rx[q]));
      ASSERT_NE(p.rx_cbs.back(), nullptr) << rte_strerror(rte_errno);
      p.tx_cbs.push_back(rte_eth_add_tx_callback(p.port_id, q, releaseOnTx, p.tx[q]));
      ASSERT_NE(p.tx_cbs.back(), nullptr) << rte_strerror(rte_errno);
    }
    ports_.push_back(p);
  }

  std::unique_ptr<Snapshot> build(SnapshotBuilder& sb, uint64_t g) {
    std::vector<PortRuntime> rt = {{ports_[0].port_id, kWanMac}, {ports_[1].port_id, genMac(g, kTagLan, 0)}};
    BuildResult r = sb.build(generationConfig(g), rt);
    EXPECT_TRUE(r) << r.joined();
    std::unique_ptr<Snapshot> s = std::move(r.snapshot);
    if (s) {
      EXPECT_EQ(s->generation, g);
    }
    return s;
  }

  rte_mempool* pool_ = nullptr;
  std::vector<unsigned> lcores_;
  uint16_t nworkers_ = 0;
  std::vector<RingPort> ports_;
};

TEST_F(PublisherStress, WorkersForwardWhileTablesSwapThousandsOfTimes) {
  Qsbr qs(nworkers_);
  ASSERT_NE(qs.q, nullptr);
  DataplaneShared shared;
  shared.qsbr = qs.q;
  shared.port_ids = {ports_[0].port_id, ports_[1].port_id};

  std::vector<std::unique_ptr<WorkerState>> states;
  std::vector<WorkerRun> runs(nworkers_);
  for (uint16_t w = 0; w < nworkers_; w++) {
    auto st = std::make_unique<WorkerState>();
    st->index = w;
    std::string err;
    st->flows4 = dataplane::FlowTable::create("rcu4_" + std::to_string(w), 1u << 15, sizeof(dataplane::FlowKey4),
                                              SOCKET_ID_ANY, err);
    ASSERT_TRUE(st->flows4) << err;
    st->flows6 = dataplane::FlowTable::create("rcu6_" + std::to_string(w), 1u << 15, sizeof(dataplane::FlowKey6),
                                              SOCKET_ID_ANY, err);
    ASSERT_TRUE(st->flows6) << err;
    runs[w].args = WorkerArgs{st.get(), &shared, {{0, ports_[0].port_id, w}}};
    states.push_back(std::move(st));
  }

  SnapshotBuilder sb;
  SnapshotPublisher pub(shared);
  // `announced` is raised before a generation is stored, `completed` after its publish() returned:
  // a packet injected after reading completed == lo and dequeued before reading announced == hi
  // was forwarded with a table g, lo <= g <= hi (QSBR: after publish(lo) returns, every worker's
  // next load sees lo or newer).
  std::atomic<uint64_t> announced{1}, completed{0};
  pub.publish(build(sb, 1));
  completed.store(1);

  // From here on a failure must not return before the workers are stopped: no ASSERT.
  uint16_t nlaunched = 0;
  while (nlaunched < nworkers_ && rte_eal_remote_launch(runWorker, &runs[nlaunched], lcores_[nlaunched]) == 0)
    nlaunched++;
  EXPECT_EQ(nlaunched, nworkers_) << "rte_eal_remote_launch failed";
  const bool launched = nlaunched == nworkers_;

  StressResult res;
  Checker checker(res);
  std::vector<uint32_t> in_flight(nworkers_, 0);
  uint64_t seq = 0, alloc_failures = 0, ring_full = 0;
  auto trafficRound = [&](bool inject) {
    for (uint16_t w = 0; w < nworkers_; w++) {
      if (inject && in_flight[w] + dataplane::kBurst <= kInFlightPerWorker) {
        rte_mbuf* m[dataplane::kBurst];
        if (rte_pktmbuf_alloc_bulk(pool_, m, dataplane::kBurst) != 0) {
          alloc_failures++;
        } else {
          const uint64_t lo = completed.load(std::memory_order_acquire);
          for (uint16_t k = 0; k < dataplane::kBurst; k++) {
            Frame f = makeFrame(seq + k, lo);
            std::memcpy(rte_pktmbuf_append(m[k], uint16_t(f.size())), f.data(), f.size());
          }
          ringRelease(ports_[0].rx[w]);
          unsigned n = rte_ring_enqueue_burst(ports_[0].rx[w], reinterpret_cast<void**>(m), dataplane::kBurst, nullptr);
          // Unsent frames keep their seq unused: a gap, never a duplicate.
          for (unsigned k = n; k < dataplane::kBurst; k++) rte_pktmbuf_free(m[k]);
          if (n < dataplane::kBurst) ring_full++;
          seq += dataplane::kBurst;
          res.injected += n;
          in_flight[w] += n;
        }
      }
      for (uint16_t p = 0; p < 2; p++) {
        rte_mbuf* out[dataplane::kBurst];
        unsigned n = rte_ring_dequeue_burst(ports_[p].tx[w], reinterpret_cast<void**>(out), dataplane::kBurst, nullptr);
        if (n > 0) ringAcquire(ports_[p].tx[w]);
        const uint64_t hi = announced.load(std::memory_order_acquire);
        for (unsigned k = 0; k < n; k++) {
          if (p == 0) checker.wrongPort();
          else checker.check(rte_pktmbuf_mtod(out[k], const uint8_t*), rte_pktmbuf_data_len(out[k]), hi);
          rte_pktmbuf_free(out[k]);
        }
        in_flight[w] -= std::min<uint32_t>(in_flight[w], n);
      }
    }
  };

  auto inFlight = [&] {
    uint64_t t = 0;
    for (uint32_t f : in_flight) t += f;
    return t;
  };

  // Flow-table questions (the FlowQuery protocol), one every 16 swaps, for an IPv4 recurring
  // flow (makeFrame: host 0, source port 1024 + flow) to one worker in turn.
  uint64_t q_asked = 0, q_answered = 0, q_hits = 0, q_bad = 0;
  auto askWorker = [&](uint64_t round) {
    const uint16_t w = uint16_t(round % nworkers_);
    const uint32_t flow = uint32_t(round / nworkers_ % kRecurringFlows);
    const IpAddr src = IpAddr::v4(rte_cpu_to_be_32(0xc6128000u));
    dataplane::FlowKey4 k{};
    dataplane::makeFlowKey(k, src.bytes.data(), kVip4.bytes.data(), rte_cpu_to_be_16(uint16_t(1024 + flow)),
                           rte_cpu_to_be_16(kVipPort), uint8_t(Proto::Tcp));
    dataplane::FlowQuery& q = states[w]->query;
    if (!dataplane::postFlowQuery(q, false, &k, sizeof(k))) {
      q_bad++;  // the previous question was answered before this one was posted: never busy
      return;
    }
    q_asked++;
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    dataplane::FlowQueryAnswer a;
    while (!dataplane::takeFlowAnswer(q, a)) {
      if (std::chrono::steady_clock::now() > until) return;  // counted as unanswered
      trafficRound(false);
      sched_yield();
    }
    q_answered++;
    if (a.hit) {
      q_hits++;
      if (dataplane::FlowValue::unpack(a.value).backend_id == kNoBackend) q_bad++;
    }
  };

  const auto start = std::chrono::steady_clock::now();
  uint64_t g = 1;
  while (launched && g - 1 < kTargetSwaps && std::chrono::steady_clock::now() - start < kMaxPublishTime) {
    auto next = build(sb, g + 1);
    if (!next) break;  // reported by build()
    // Three kinds of round in turn, so that both outcomes of a swap occur on every run:
    //  0: frames go in and all come out before the publish: forwarded with table g, the one
    //     current at injection;
    //  1: frames go in after publish() returned but before `completed` says so: they carry
    //     lo = g, and every worker already reads g + 1 (a newer table);
    //  2: frames go in right before the publish, with the next snapshot built: either, as the
    //     race between the workers and the swap falls.
    const uint64_t kind = g % 3;
    if (kind == 0) {
      trafficRound(true);
      const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
      while (inFlight() > 0 && std::chrono::steady_clock::now() < until) trafficRound(false);
    } else if (kind == 2) {
      trafficRound(true);
    }
    announced.store(g + 1, std::memory_order_release);
    pub.publish(std::move(next));
    if (kind == 1) trafficRound(true);
    completed.store(++g, std::memory_order_release);
    if (g % 16 == 0) askWorker(g / 16);
  }
  const double publish_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const uint64_t swaps = g - 1;

  // Drain what is still in flight, then stop the workers.
  const auto drain_end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (inFlight() > 0 && std::chrono::steady_clock::now() < drain_end) {
    trafficRound(false);
    sched_yield();
  }
  shared.stop.store(true);
  rte_eal_mp_wait_lcore();
  for (uint16_t w = 0; w < nlaunched; w++) EXPECT_TRUE(runs[w].finished.load(std::memory_order_acquire));

  WorkerCounters sum;
  for (auto& st : states) {
    for (size_t i = 0; i < size_t(Drop::Count); i++) sum.drops[i] += st->counters.drops[i];
    for (size_t i = 0; i < size_t(Ctr::Count); i++) sum.ctrs[i] += st->counters.ctrs[i];
  }
  printf("[ rcu stress ] workers=%u swaps=%llu in %.2fs, packets injected=%llu checked=%llu violations=%llu "
         "(forwarded with the injection-time table %llu, with a newer one %llu), flow hits=%llu rehash=%llu new=%llu "
         "expired=%llu table-full=%llu, ring-full retries=%llu, mbuf alloc failures=%llu\n",
         nworkers_, (unsigned long long)swaps, publish_s, (unsigned long long)res.injected,
         (unsigned long long)res.checked, (unsigned long long)res.violations, (unsigned long long)res.same_gen,
         (unsigned long long)res.newer_gen, (unsigned long long)sum.get(Ctr::FlowHit), (unsigned long long)sum.get(Ctr::FlowRehash),
         (unsigned long long)sum.get(Ctr::FlowNew), (unsigned long long)sum.get(Ctr::FlowExpired),
         (unsigned long long)sum.get(Ctr::FlowTableFull), (unsigned long long)ring_full,
         (unsigned long long)alloc_failures);
  for (const std::string& e : res.first_errors) printf("  violation: %s\n", e.c_str());
  printf("[ rcu stress ] flow queries: asked %llu, answered %llu, hits %llu, bad %llu\n", (unsigned long long)q_asked,
         (unsigned long long)q_answered, (unsigned long long)q_hits, (unsigned long long)q_bad);
  EXPECT_GT(q_asked, 0u);
  EXPECT_EQ(q_answered, q_asked);
  EXPECT_GT(q_hits, 0u);
  EXPECT_EQ(q_bad, 0u);

  EXPECT_EQ(res.violations, 0u);
  EXPECT_EQ(res.torn, 0u);
  EXPECT_EQ(res.out_of_window, 0u);
  EXPECT_EQ(res.not_in_table, 0u);
  EXPECT_EQ(res.bad_bytes, 0u);
  EXPECT_EQ(res.duplicate, 0u);
  EXPECT_EQ(res.wrong_port, 0u);
  EXPECT_EQ(inFlight(), 0u) << "frames never came out";
  EXPECT_EQ(res.checked, res.injected);
  EXPECT_EQ(sum.get(Ctr::RxPackets), res.injected);
  EXPECT_EQ(sum.get(Ctr::TxPackets), res.injected);
  EXPECT_EQ(sum.totalDrops(), 0u);
  EXPECT_EQ(pub.publishes(), swaps + 1);
  EXPECT_EQ(pub.current()->generation, g);
  EXPECT_GE(swaps, kMinSwaps);
  EXPECT_GE(res.checked, kMinChecked);
  // Both sides of the swap were exercised: frames forwarded with the table current at injection
  // and frames overtaken by a newer publish.
  EXPECT_GT(res.same_gen, 0u);
  EXPECT_GT(res.newer_gen, 0u);
}

}  // namespace
}  // namespace l4lb::control

// EAL (tests/common/eal_main.cc) with one main lcore (the control thread, alone on the first
// CPU) and two worker lcores on the other CPUs: `--lcores 0@0,1@1,2@1` on two CPUs. Two busy
// workers sharing one CPU is the point: a worker preempted mid-burst is exactly the reader QSBR
// must wait for. (Putting the main lcore on a worker's CPU makes every publish() spin until the
// scheduler preempts it: about 60 swaps a second instead of thousands.) Overridable with
// L4LB_TEST_LCORES.
l4lb::test::EalShape l4lb::test::testEalShape() { return {.workers = 2, .memory_mb = 512}; }
