// libFuzzer target: the worker's burst (processBurst, src/dataplane/worker.h) with small flow
// tables, over a few snapshots built by the real loader and SnapshotBuilder. The input is a
// sequence of operations (format below, written by tests/fuzz/make_seeds.py):
//   0x00 PKT   flags:u8 len:u16le frame[len]   a frame on ingress port (flags & 3) % ports;
//              flags & 0x80: ol_flags has RTE_MBUF_F_RX_IP_CKSUM_GOOD, 0x40: IP_CKSUM_BAD;
//              flags & 0x20: the frame starts at the beginning of its buffer (no headroom).
//              Frames are queued; the queue is one burst, run when it holds kBurst frames, when
//              the next frame is on another port, or before any other operation.
//   0x01 CLOCK step:u16le                      the worker clock advances step ms (step & 0x8000:
//              (step & 0x7fff) seconds); the flow tables' sweep runs as the worker loop does.
//   0x02 SWAP  index:u8                        the worker now sees snapshot index % kSnapshots.
//   other      ignored (one byte).
// After every step, checkInvariants(): flow tables within capacity, no mbuf leaked (the pool's
// in-use count is back to its start once the sent frames are freed). Every sent frame goes to
// a backend, a gateway, a neighbour, back to the sender (ARP/ND/echo replies), to the kernel
// path, or (full NAT's replies) to the unicast MAC a live session's first packet came from;
// one the balancer made or rewrote (not relayed to or from the kernel) leaves from its port's
// MAC, in one segment, and within the egress MTU when the burst's frames were within
// the ingress MTU, with a correct IPv4 header checksum unless the NIC vouched for an input's.
// Full NAT (every snapshot has fullnat VIPs with the same source addresses, PROXY v2 on in some):
// no frame leaves toward the clients (wan) with a source address as its source or destination,
// outer or quoted in an ICMP error, and none leaves toward a full-NAT backend (lan) from a
// client's address (anything outside the VIPs' and lan's prefixes); the worker's session index
// holds exactly one entry per pair in use.
// Any violation aborts (libFuzzer reports it as a crash).
#include <rte_eal.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "control/config.h"
#include "control/snapshot_builder.h"
#include "dataplane/flow_index.h"
#include "dataplane/flow_table.h"
#include "dataplane/frag_table.h"
#include "dataplane/fullnat/fullnat_path.h"
#include "dataplane/fullnat/fullnat_state.h"
#include "dataplane/worker.h"
#include "l4lb/snapshot.h"
#include "test_configs.h"
#include "test_eal.h"

using namespace l4lb;
using namespace l4lb::dataplane;

namespace {

// Two ports: wan (clients through gateways) and lan (backends); some snapshots add wan's tap
// (exception_path = "tap"), which becomes port 2. The VIP addresses stay, the modes and backend
// sets change, so swaps leave flow entries that point at backends in another state or gone.
const std::string kTopology = l4lb::test::configText("burst_topology.toml");

struct SnapSpec {
  bool tap;
  const char* vips;  // a file in tests/common/configs/
};

const SnapSpec kSpecs[] = {
    // 0: DSR, Maglev over three backends; IPv6 UDP round robin; an all-ports VIP.
    {false, "burst_snap0.toml"},
    // 1: IPIP and GUE; the backend set changed (one gone, one new, one draining), an IPv6
    // backend behind an IPv4 VIP; full NAT with an IPv4 backend behind its IPv6 VIP (the
    // family translated, fullnat/family_xlate.h).
    {false, "burst_snap1.toml"},
    // 2: NAT (a backend port, UDP round robin, IPv6), with wan's tap: the exception path.
    {true, "burst_snap2.toml"},
    // 3: GUE on the TCP VIP, IPIP on the IPv6 one, a round-robin NAT VIP, with the tap.
    {true, "burst_snap3.toml"},
};
constexpr size_t kSnapshots = sizeof(kSpecs) / sizeof(kSpecs[0]);

constexpr uint32_t kCap4 = 16, kCap6 = 8;  // small: full tables and displacement are reachable
constexpr unsigned kPoolSize = 255;

rte_mempool* g_pool;
std::vector<std::unique_ptr<Snapshot>> g_snaps;
std::vector<IpAddr> g_fullnat_backends;  // every snapshot's fullnat backends (sessions outlive a swap)
uint64_t g_packets;  // frames given to processBurst, over the whole run
unsigned g_base_in_use;

[[noreturn]] void fail(const char* what) {
  fprintf(stderr, "fuzz_burst: invariant violated: %s\n", what);
  abort();
}

std::unique_ptr<Snapshot> buildSnapshot(const SnapSpec& spec) {
  std::string toml = kTopology;
  const std::string extra = spec.tap ? "exception_path = \"tap\"\nkernel_iface = \"fz-wan\"" : "";
  toml.replace(toml.find("%WANEXTRA%"), 10, extra);
  toml += l4lb::test::configText(spec.vips);
  control::ConfigResult r = control::loadConfigString(toml, "fuzz_burst.toml");
  if (!r.ok()) {
    fprintf(stderr, "fuzz_burst: config: %s\n", r.error.str().c_str());
    abort();
  }
  std::vector<control::PortRuntime> rt(2);
  rt[0].port_id = 0;
  rt[0].mac.bytes = {0x02, 0, 0, 0, 0, 0x10};
  rt[1].port_id = 1;
  rt[1].mac.bytes = {0x02, 0, 0, 0, 0, 0x20};
  if (spec.tap) rt[0].tap_port_id = 2;
  control::SnapshotBuilder b;
  control::BuildResult built = b.build(*r.config, rt);
  if (!built) {
    fprintf(stderr, "fuzz_burst: snapshot: %s\n", built.joined().c_str());
    abort();
  }
  return std::move(built.snapshot);
}

// Full NAT sends a backend's reply out of the port the flow's first packet came in on, to the MAC
// it came from (fullnat_path.h): a sender of an earlier burst. Never a group address.
bool fullNatClient(WorkerState& w, uint16_t port, const uint8_t* dst) {
  if (w.fullnat == nullptr) return false;
  for (uint64_t i = 0; i < w.fullnat->totalSlots(); i++) {
    SnatPair pair;
    const FullNatSession& ss = w.fullnat->slot(i, pair);
    if (ss.used && ss.client_port == port && std::memcmp(ss.client_mac, dst, 6) == 0) {
      if (dst[0] & 1) fail("a full-NAT reply sent to a group MAC address");
      return true;
    }
  }
  return false;
}

// Every frame sent on `port` must go where the snapshot allows. `senders` are the source MACs of
// the burst's input frames (replies go back to their sender, out of the ingress port).
bool allowedDestination(WorkerState& w, const Snapshot& s, uint16_t port, uint16_t ingress, const uint8_t* dst,
                        const std::vector<MacAddr>& senders) {
  if (port >= s.ports.size()) return false;
  const SnapPort& in = s.ports[ingress];
  if (in.kernel_port >= 0 && port == uint16_t(in.kernel_port)) return true;  // the kernel path
  MacAddr d;
  std::memcpy(d.bytes.data(), dst, 6);
  const SnapPort& p = s.ports[port];
  if (p.is_kernel) return false;  // only the kernel path above leads to a tap
  if ((p.has_gw4 && d == p.gw4_mac) || (p.has_gw6 && d == p.gw6_mac)) return true;
  for (const SnapBackend& b : s.backends)
    if (b.id != kNoBackend && b.egress == port && d == b.next_hop_mac) return true;
  bool neighbour = false;
  s.neighbours.forEach([&](const AddrKey&, const MacAddr& m) { neighbour |= m == d; });
  if (neighbour) return true;
  if (port == ingress)
    for (const MacAddr& m : senders)
      if (m == d) return true;
  return fullNatClient(w, port, dst);
}

bool sameAddr(const IpAddr& a, const uint8_t* p, bool v6) {
  return (a.family == Family::V6) == v6 && std::memcmp(a.bytes.data(), p, v6 ? 16 : 4) == 0;
}

bool isSnatAddr(const Snapshot& s, const uint8_t* p, bool v6) {
  for (const SnapSnatAddr& a : s.snat_addrs)
    if (sameAddr(a.addr, p, v6)) return true;
  return false;
}

// A client's address: none of the VIPs' prefixes (198.18.1.0/24, 2001:db8:1::/64) nor lan's
// (198.18.2.0/24, 2001:db8:2::/64), where the source addresses and the backends live.
bool clientAddr(const uint8_t* p, bool v6) {
  static const uint8_t k6[5] = {0x20, 0x01, 0x0d, 0xb8, 0};
  if (!v6) return !(p[0] == 198 && p[1] == 18 && (p[2] == 1 || p[2] == 2));
  return !(std::memcmp(p, k6, 5) == 0 && (p[5] == 1 || p[5] == 2) && p[6] == 0 && p[7] == 0);
}

// Full NAT's invariant for a frame the balancer sends on `port` (fuzz topology: 0 wan, the
// clients' side; 1 lan, the backends'). Returns what is violated, or nullptr.
const char* fullNatLeak(const Snapshot& s, uint16_t port, const uint8_t* f, uint32_t len) {
  uint32_t l3 = 14;
  uint16_t type = uint16_t(f[12] << 8 | f[13]);
  if (type == 0x8100 && len >= 18) {
    type = uint16_t(f[16] << 8 | f[17]);
    l3 = 18;
  }
  const bool v6 = type == 0x86dd;
  if ((type != 0x0800 && !v6) || len < l3 + (v6 ? 40u : 20u)) return nullptr;
  const uint8_t* ip = f + l3;
  const uint8_t* src = ip + (v6 ? 8 : 12);
  const uint8_t* dst = src + (v6 ? 16 : 4);
  if (port == 0) {
    if (isSnatAddr(s, src, v6) || isSnatAddr(s, dst, v6)) return "a frame toward the clients has a full-NAT source address";
    // An ICMP error's quoted header (RFC 792, RFC 4443 §3): no source address there either.
    const uint32_t hl = v6 ? 40 : (ip[0] & 0x0fu) * 4;
    const uint8_t proto = v6 ? ip[6] : ip[9];
    const uint32_t icmp = l3 + hl;
    if (len < icmp + 8) return nullptr;
    const uint8_t t = f[icmp];
    const bool error = v6 ? (proto == 58 && t >= 1 && t <= 4) : (proto == 1 && (t == 3 || t == 4 || t == 5 || t == 11 || t == 12));
    if (!error) return nullptr;
    const uint8_t* q = f + icmp + 8;
    const bool qv6 = len >= icmp + 8 + 40 && (q[0] >> 4) == 6;
    if (!qv6 && !(len >= icmp + 8 + 20 && (q[0] >> 4) == 4)) return nullptr;
    const uint8_t* qs = q + (qv6 ? 8 : 12);
    if (isSnatAddr(s, qs, qv6) || isSnatAddr(s, qs + (qv6 ? 16 : 4), qv6))
      return "an ICMP error toward the clients quotes a full-NAT source address";
    return nullptr;
  }
  if (port == 1) {
    for (const IpAddr& b : g_fullnat_backends)
      if (sameAddr(b, dst, v6) && clientAddr(src, v6)) return "a frame toward a full-NAT backend has a client's source address";
  }
  return nullptr;
}

// Sessions in use, by the pools' count, and the entries of the index that finds them.
void checkFullNat(const WorkerState& w, uint32_t now) {
  if (w.fullnat == nullptr) return;
  uint64_t in_use = 0;
  for (uint32_t a = 0; a < w.fullnat->naddrs(); a++) in_use += w.fullnat->usage(a, now).in_use;
  if (in_use != w.fullnat->index(false).size() + w.fullnat->index(true).size())
    fail("full NAT: pairs in use differ from the session index's entries");
}

// Mbufs the worker legitimately keeps between steps: fragments held in its fragment table and
// fragments waiting in hand-off rings (none with this single worker, counted all the same).
unsigned heldMbufs(const WorkerState& w) {
  unsigned n = w.frags ? w.frags->held() : 0;
  for (rte_ring* r : w.handoff_rings) n += rte_ring_count(r);
  return n;
}

// The invariants, checked after every step. Admission is on with the same embryonic_share in
// every snapshot (a reload that lowered the quota would not evict, so the bound holds only for
// one quota), so each table's embryonic entries are within the current snapshot's limit.
bool g_inject_embryonic = false;  // negative control: the tables get a larger quota than checked
void checkInvariants(const WorkerState& w, const Snapshot& s) {
  if (w.flows4->size() > w.flows4->capacity()) fail("IPv4 flow table above capacity");
  if (w.flows6->size() > w.flows6->capacity()) fail("IPv6 flow table above capacity");
  if (!s.admission.enabled) fail("admission disabled in a snapshot");
  for (const FlowTable* ft : {w.flows4.get(), w.flows6.get()})
    if (ft->embryonic() > s.admission.embryonicLimit(ft->capacity())) fail("embryonic entries above their quota");
  if (w.frags->held() > w.frags->maxHeld()) fail("fragments held above max_held");
  if (w.frags->size() > w.frags->capacity()) fail("fragment table above capacity");
  if (rte_mempool_in_use_count(g_pool) != g_base_in_use + heldMbufs(w))
    fail("mbuf leaked (pool in-use count is not its start plus the held fragments)");
}

constexpr uint32_t kL2Max = 18;  // Ethernet header with one 802.1Q tag

// An IPv4 header (untagged or one 802.1Q tag) whose RFC 1071 checksum is wrong; computed here
// byte by byte, independently of the data plane's checksum code. Frames too short to hold the
// header are not judged.
bool badIpv4Checksum(const uint8_t* f, uint32_t len) {
  uint32_t l3 = 14;
  uint16_t type = uint16_t(f[12] << 8 | f[13]);
  if (type == 0x8100 && len >= 18) {
    type = uint16_t(f[16] << 8 | f[17]);
    l3 = 18;
  }
  if (type != 0x0800 || len < l3 + 20) return false;
  const uint32_t ihl = (f[l3] & 0x0fu) * 4;
  if ((f[l3] >> 4) != 4 || ihl < 20 || l3 + ihl > len) return false;
  uint32_t sum = 0;
  for (uint32_t i = 0; i < ihl; i += 2) sum += uint32_t(f[l3 + i] << 8 | f[l3 + i + 1]);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return sum != 0xffff;
}

struct Burst {
  rte_mbuf* pkts[kBurst];
  std::vector<MacAddr> senders;
  uint32_t max_in_len = 0;  // the longest frame received in the burst
  bool nic_cksum = false;   // a frame came with RTE_MBUF_F_RX_IP_CKSUM_GOOD (not verified in software)
  uint16_t n = 0;
  uint16_t ingress = 0;
};

// Negative controls (tests/fuzz/run.sh --replay): L4LB_FUZZ_INJECT=leak keeps one sent mbuf,
// =misroute sends the first frame to a MAC nobody has, =bigframe pads it past the egress MTU,
// =badcksum flips a bit of its IPv4 TTL; =snatleak gives the first IPv4 frame sent toward the
// clients (port 0) the first full-NAT source address as its source, with a correct checksum;
// each must make the checks above fail.
// =embryonic runs the burst with a copy of the snapshot whose embryonic quota is the whole table,
// while the check keeps the configured one (syn_flood must then break it).
enum class Inject { None, Leak, Misroute, BigFrame, BadCksum, SnatLeak } g_inject = Inject::None;

void inject(TxBatch& tx, const Snapshot& s) {
  if (g_inject == Inject::SnatLeak) {
    for (uint16_t k = 0; k < tx.n[0]; k++) {
      uint8_t* f = rte_pktmbuf_mtod(tx.pkts[0][k], uint8_t*);
      if (rte_pktmbuf_data_len(tx.pkts[0][k]) < 34 || f[12] != 0x08 || f[13] != 0x00) continue;
      std::memcpy(f + 14 + 12, s.snat_addrs[0].addr.bytes.data(), 4);
      f[24] = f[25] = 0;
      uint32_t sum = 0;
      for (uint32_t i = 0; i < (f[14] & 0x0fu) * 4; i += 2) sum += uint32_t(f[14 + i] << 8 | f[15 + i]);
      while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
      f[24] = uint8_t(~sum >> 8);
      f[25] = uint8_t(~sum);
      g_inject = Inject::None;
      return;
    }
    return;
  }
  for (uint16_t p = 0; p < kMaxPorts; p++) {
    if (tx.n[p] == 0) continue;
    rte_mbuf* m = tx.pkts[p][0];
    if (g_inject == Inject::Leak) {
      tx.pkts[p][0] = tx.pkts[p][--tx.n[p]];  // dropped from the batch, never freed
    } else if (g_inject == Inject::Misroute) {
      static const uint8_t nobody[6] = {0x02, 0, 0, 0, 0x99, 0x99};
      std::memcpy(rte_pktmbuf_mtod(m, uint8_t*), nobody, 6);
    } else if (g_inject == Inject::BadCksum) {
      rte_pktmbuf_mtod(m, uint8_t*)[14 + 8] ^= 1;  // untagged IPv4 in the control's seed
    } else if (g_inject == Inject::BigFrame) {
      const uint16_t pad = uint16_t(std::min<uint32_t>(rte_pktmbuf_tailroom(m), 1600));
      if (rte_pktmbuf_append(m, pad) != nullptr && rte_pktmbuf_data_len(m) > 1518) g_inject = Inject::None;
      else continue;
    }
    return;
  }
}

void runBurst(WorkerState& w, const Snapshot& s, Burst& b, uint32_t now) {
  if (b.n == 0) return;
  TxBatch tx;
  tx.clear();
  g_packets += b.n;
  if (g_inject_embryonic) {
    static Snapshot loose;  // the burst's snapshot with every entry allowed to be embryonic
    loose = s;
    loose.admission.embryonic_ppm = 1'000'000;
    processBurst(w, loose, b.pkts, b.n, b.ingress, now, tx);
  } else {
    processBurst(w, s, b.pkts, b.n, b.ingress, now, tx);
  }
  if (g_inject != Inject::None) inject(tx, s);
  for (uint16_t p = 0; p < kMaxPorts; p++) {
    if (tx.n[p] > kBurst) fail("more frames sent than received");
    for (uint16_t k = 0; k < tx.n[p]; k++) {
      rte_mbuf* m = tx.pkts[p][k];
      if (s.ports[b.ingress].is_kernel) {
        // From the tap: the kernel's own frames, relayed unchanged (whatever their length) and
        // only to the tap's port.
        if (p != uint16_t(s.ports[b.ingress].kernel_port)) fail("frame from the tap sent elsewhere than its port");
        rte_pktmbuf_free(m);
        continue;
      }
      const uint32_t len = rte_pktmbuf_data_len(m);
      const auto* frame = rte_pktmbuf_mtod(m, const uint8_t*);
      if (len < 14) fail("sent frame shorter than an Ethernet header");
      if (!allowedDestination(w, s, p, b.ingress, frame, b.senders))
        fail("frame sent to neither a backend, a gateway, a neighbour, the sender nor the kernel path");
      const SnapPort& out = s.ports[p];
      if (p != uint16_t(s.ports[b.ingress].kernel_port)) {
        // Made or rewritten by the balancer: from the egress port's own MAC, and within the
        // egress MTU whenever everything received was within the ingress MTU.
        if (std::memcmp(frame + 6, out.mac.bytes.data(), 6) != 0) fail("sent frame's source MAC is not its port's");
        if (rte_pktmbuf_pkt_len(m) != len || m->nb_segs != 1) fail("sent frame is not one segment");
        if (b.max_in_len <= s.ports[b.ingress].mtu + kL2Max && len > out.mtu + kL2Max)
          fail("sent frame exceeds the egress MTU");
        // The parser checked every IPv4 header checksum it forwards (unless the NIC said it had):
        // what the balancer rewrote, encapsulated or answered must carry a correct one.
        if (!b.nic_cksum && badIpv4Checksum(frame, len)) fail("sent IPv4 header checksum is wrong");
        if (const char* leak = fullNatLeak(s, p, frame, len)) fail(leak);
      }
      rte_pktmbuf_free(m);
    }
  }
  b.n = 0;
  b.max_in_len = 0;
  b.nic_cksum = false;
  b.senders.clear();
  sweepFlows(w, now, s);
  sweepFrags(w, now);
  checkInvariants(w, s);
  checkFullNat(w, now);
}

uint16_t load16le(const uint8_t* p) { return uint16_t(p[0] | p[1] << 8); }

// At exit (libFuzzer exits through exit() after -runs or -max_total_time): the packet count
// tests/fuzz/run.sh reports.
void atExit() { fprintf(stderr, "fuzz_burst: %llu packets\n", static_cast<unsigned long long>(g_packets)); }

// The worker, made once (its per-backend counters are megabytes, its tables live in DPDK memory:
// building them per input would cost more than the input) and put back to its first state
// after every input: entries swept out (a full pass 2^31 - 1 ms after the input's last clock,
// when every entry is past any timeout), round-robin cursors, IP ID and sweep pacing reset.
// Counters only count, so they are left.
WorkerState* g_worker;

void resetWorker(WorkerState& w, const Snapshot& s, uint32_t now) {
  for (FlowTable* ft : {w.flows4.get(), w.flows6.get()}) {
    for (int pass = 0; ft->size() != 0; pass++) {
      if (pass == 4) fail("a flow table still holds entries after full sweeps past every timeout");
      ft->sweep(now + 0x7fffffffu, s.timeouts, ft->capacity());
    }
  }
  // Held fragments: freed (counted frag_timeout) by sweeps past their timeout.
  for (int pass = 0; w.frags->size() != 0; pass++) {
    if (pass == 4) fail("the fragment table still holds entries after full sweeps past every timeout");
    w.frags->sweep(now + 0x7fffffffu, w.frags->capacity(),
                   [&w](void* p) { dropPkt(w, static_cast<rte_mbuf*>(p), Drop::FragTimeout); });
  }
  if (w.frags->held() != 0) fail("fragments still held after the reset sweep");
  if (rte_mempool_in_use_count(g_pool) != g_base_in_use) fail("mbuf leaked (pool in-use count changed after reset)");
  w.rr_cursor.fill(0);
  w.ip_id = 0;
  w.sweep_last_ms = 0;
  w.sweep_debt4 = w.sweep_debt6 = 0;
  // Full NAT: one pass past every timeout ends every session; then a fresh state, so the pools'
  // FIFO order does not carry over to the next input (a crash reproduces from its input alone).
  sweepFullNat(w, now + 0x7fffffffu, s.timeouts, uint32_t(w.fullnat->totalSlots()));
  checkFullNat(w, now);
  if (w.fullnat->index(false).size() + w.fullnat->index(true).size() != 0)
    fail("full NAT sessions left after a sweep past every timeout");
  w.fullnat.reset();
  std::string err;
  w.fullnat = FullNatState::create(s.snat_addrs, 0, 1, SOCKET_ID_ANY, err);
  if (!w.fullnat) {
    fprintf(stderr, "fuzz_burst: full NAT state: %s\n", err.c_str());
    abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (!l4lb::test::initTestEal("l4lb_fuzz", {.workers = 0, .memory_mb = 256})) abort();  // tests/common/test_eal.h
  g_pool = rte_pktmbuf_pool_create("fuzz_burst_pool", kPoolSize, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
  if (g_pool == nullptr) abort();
  for (const SnapSpec& spec : kSpecs) g_snaps.push_back(buildSnapshot(spec));
  g_base_in_use = rte_mempool_in_use_count(g_pool);
  // The flow-table index key is random per process: fixed here, so an input lands in the same
  // buckets in every run and a crash reproduces.
  setFlowIndexKey(FlowIndexKey{{0x243f6a8885a308d3, 0x13198a2e03707344, 0xa4093822299f31d0, 0x082efa98ec4e6c89,
                                0x452821e638d01377, 0xbe5466cf34e90c6c}});
  g_worker = new WorkerState();
  std::string err;
  g_worker->flows4 = FlowTable::create("fuzz4", kCap4, sizeof(FlowKey4), SOCKET_ID_ANY, err);
  if (g_worker->flows4) g_worker->flows6 = FlowTable::create("fuzz6", kCap6, sizeof(FlowKey6), SOCKET_ID_ANY, err);
  if (!g_worker->flows6) {
    fprintf(stderr, "fuzz_burst: flow table: %s\n", err.c_str());
    abort();
  }
  // Full NAT: the worker's state is sized once by the source addresses, as the daemon does
  // (control/daemon.cc), so every snapshot must list the same ones.
  for (const auto& snap : g_snaps) {
    if (!(snap->snat_addrs == g_snaps[0]->snat_addrs) || snap->snat_addrs.empty()) {
      fprintf(stderr, "fuzz_burst: every snapshot needs the same, non-empty, full-NAT source addresses\n");
      abort();
    }
    for (const SnapVip& v : snap->vips)
      if (v.mode == FwdMode::FullNat)
        for (uint32_t id : v.backends)
          if (const SnapBackend* b = snap->backend(id)) g_fullnat_backends.push_back(b->addr);
  }
  g_worker->fullnat = FullNatState::create(g_snaps[0]->snat_addrs, 0, 1, SOCKET_ID_ANY, err);
  if (!g_worker->fullnat) {
    fprintf(stderr, "fuzz_burst: full NAT state: %s\n", err.c_str());
    abort();
  }
  {
    const control::ConfigResult r = control::loadConfigString(
        std::string(kTopology).replace(std::string(kTopology).find("%WANEXTRA%"), 10, "") +
            l4lb::test::configText(kSpecs[0].vips),
        "fuzz_burst.toml");
    if (!r.ok()) {
      fprintf(stderr, "fuzz_burst: config: %s\n", r.error.str().c_str());
      abort();
    }
    g_worker->frags = std::make_unique<FragTable>(r.config->fragments.table_size, r.config->fragments.max_held,
                                                  r.config->fragments.max_held_per_datagram);
  }
  if (const char* e = getenv("L4LB_FUZZ_INJECT")) {
    const std::string v = e;
    g_inject_embryonic = v == "embryonic";
    g_inject = g_inject_embryonic ? Inject::None : v == "leak" ? Inject::Leak : v == "misroute" ? Inject::Misroute : v == "bigframe" ? Inject::BigFrame
                 : v == "badcksum" ? Inject::BadCksum : v == "snatleak" ? Inject::SnatLeak : Inject::None;
    if (g_inject == Inject::None && !g_inject_embryonic) {
      fprintf(stderr, "fuzz_burst: unknown L4LB_FUZZ_INJECT=%s\n", e);
      abort();
    }
  }
  atexit(atExit);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  WorkerState* w = g_worker;
  const Snapshot* s = g_snaps[0].get();
  uint32_t now = 1000;
  Burst b;
  size_t i = 0;
  while (i < size) {
    const uint8_t op = data[i++];
    if (op == 0x00) {  // PKT
      if (size - i < 3) break;
      const uint8_t flags = data[i];
      size_t len = load16le(data + i + 1);
      i += 3;
      len = std::min(len, size - i);
      const uint16_t ingress = uint16_t((flags & 3) % s->ports.size());
      if (b.n == kBurst || (b.n > 0 && ingress != b.ingress)) runBurst(*w, *s, b, now);
      rte_mbuf* m = rte_pktmbuf_alloc(g_pool);
      if (m == nullptr) fail("mbuf pool exhausted");
      m->data_off = (flags & 0x20) ? 0 : RTE_PKTMBUF_HEADROOM;
      len = std::min<size_t>(len, rte_pktmbuf_tailroom(m));
      uint8_t* p = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(m, uint16_t(len)));
      if (len) std::memcpy(p, data + i, len);
      i += len;
      m->ol_flags = 0;
      if (flags & 0x80) m->ol_flags |= RTE_MBUF_F_RX_IP_CKSUM_GOOD;
      if (flags & 0x40) m->ol_flags |= RTE_MBUF_F_RX_IP_CKSUM_BAD;
      m->port = s->ports[ingress].port_id;
      if (len >= 12) {
        MacAddr src;
        std::memcpy(src.bytes.data(), p + 6, 6);
        b.senders.push_back(src);
      }
      b.ingress = ingress;
      b.max_in_len = std::max(b.max_in_len, uint32_t(len));
      b.nic_cksum |= (flags & 0x80) != 0;
      b.pkts[b.n++] = m;
      continue;
    }
    runBurst(*w, *s, b, now);
    if (op == 0x01) {  // CLOCK
      if (size - i < 2) break;
      const uint16_t step = load16le(data + i);
      i += 2;
      now += (step & 0x8000) ? uint32_t(step & 0x7fff) * 1000 : step;
      // The worker loop sweeps once per loop: a few loops' worth per clock step.
      for (int k = 0; k < 4; k++) {
        sweepFlows(*w, now, *s);
        sweepFrags(*w, now);
      }
      checkInvariants(*w, *s);
      checkFullNat(*w, now);
    } else if (op == 0x02) {  // SWAP
      if (size - i < 1) break;
      s = g_snaps[data[i++] % kSnapshots].get();
      checkInvariants(*w, *s);
    }
  }
  runBurst(*w, *s, b, now);
  checkInvariants(*w, *s);
  resetWorker(*w, *s, now);
  return 0;
}
