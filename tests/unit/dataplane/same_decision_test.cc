// "Same decision on every instance": two balancers with the same config and
// the same backend states pick the same backend for every 5-tuple, so a flow that ECMP moves to
// another instance keeps its backend (Maglev NSDI'16 §3.3).
//  (a) The Maglev table, read as backend identities (address, port) per slot, depends only on
//      the backends' identities and weights: not on the order of VIPs or backends in the config,
//      nor on the internal backend ids the builder allocated (which differ after a different
//      reload history: asserted, so the comparison is not between equal ids).
//  (b) Two WorkerStates ("instances") with different flow-index keys (setFlowIndexKey: the
//      flow table's per-process bucket key) and snapshots from the two differently ordered
//      configs send thousands of 5-tuples (IPv4 and IPv6, TCP and UDP, DSR and NAT) to the same
//      backend identity. The slot hash (makeFlowKey's CRC) does not depend on the flow-index key,
//      while the bucket index does.
//  Negative control: the same comparisons over a test-only order-dependent table (the Maglev
//  permutation seeded with the backend's position in its VIP's list instead of its identity)
//  find differences; the test asserts that, so it can fail.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "burst_harness.h"
#include "control/snapshot_builder.h"
#include "dataplane/flow_index.h"
#include "dataplane/lookup.h"
#include "dataplane/worker.h"
#include "l4lb/maglev.h"
#include "packet_builder.h"
#include "topology.h"

namespace l4lb::dataplane {
namespace {

using namespace test::topo;  // NOLINT(google-build-using-namespace): tests/common/topology.h

struct BackendSpec {
  std::string addr;
  uint16_t port;
  uint32_t weight;
};

struct VipSpec {
  std::string addr;
  uint16_t port;
  Proto proto;
  FwdMode mode;
  std::vector<BackendSpec> backends;
};

// Every backend gets a MAC of its own, so a DSR frame (which keeps the VIP as destination) tells
// which backend it went to; identities are (address, port).
MacAddr macFor(size_t vip, size_t backend) {
  return MacAddr{{0x02, 0x00, 0x00, 0x0d, uint8_t(0x10 + vip), uint8_t(backend)}};
}

const std::vector<VipSpec> kVips = {
    {"198.18.1.1",
     80,
     Proto::Tcp,
     FwdMode::Dsr,
     {{"198.19.0.10", 0, 1}, {"198.19.0.11", 0, 3}, {"198.19.0.12", 0, 2}, {"198.19.0.13", 0, 1},
      {"198.19.0.14", 0, 5}, {"198.19.0.15", 0, 1}, {"198.19.0.16", 0, 2}}},
    {"2001:db8:1::1",
     53,
     Proto::Udp,
     FwdMode::Dsr,
     {{"2001:db8:2::10", 0, 1}, {"2001:db8:2::11", 0, 1}, {"2001:db8:2::12", 0, 4}, {"2001:db8:2::13", 0, 1},
      {"2001:db8:2::14", 0, 2}, {"2001:db8:2::15", 0, 1}}},
    // Identity includes the port: three backends share an address.
    {"198.18.1.2",
     8080,
     Proto::Tcp,
     FwdMode::Nat,
     {{"198.19.0.20", 9001, 1}, {"198.19.0.20", 9002, 1}, {"198.19.0.20", 9003, 2}, {"198.19.0.21", 9001, 1}}},
    {"2001:db8:1::2",
     443,
     Proto::Tcp,
     FwdMode::Dsr,
     {{"2001:db8:2::20", 0, 1}, {"2001:db8:2::21", 0, 1}, {"2001:db8:2::22", 0, 1}, {"2001:db8:2::23", 0, 1},
      {"2001:db8:2::24", 0, 1}}},
    {"198.18.1.3",
     53,
     Proto::Udp,
     FwdMode::Dsr,
     {{"198.19.0.30", 0, 2}, {"198.19.0.31", 0, 1}, {"198.19.0.32", 0, 1}, {"198.19.0.33", 0, 3}}},
};

std::string identity(const std::string& addr, uint16_t port) { return addr + "|" + std::to_string(port); }

// The config with VIPs in `vip_order` and each VIP's backends in the order `backend_order(vi)`
// gives (indices into kVips / its backends). `extra`: backends that are not in kVips, first in
// VIP 0's list (a history that allocates ids to other backends first).
Config makeConfig(const std::vector<size_t>& vip_order, const std::function<std::vector<size_t>(size_t)>& backend_order,
                  size_t extra = 0) {
  Config c = test::topo::topology({.gw4 = "", .gw6 = ""});
  for (size_t vi : vip_order) {
    const VipSpec& vs = kVips[vi];
    VipConfig v;
    v.address = ipAddr(vs.addr);
    v.port = vs.port;
    v.protocol = vs.proto;
    v.forwarding = vs.mode;
    v.scheduler = Scheduler::Maglev;
    v.maglev_table_size = 1021;  // prime
    for (size_t e = 0; vi == 0 && e < extra; e++) {
      BackendConfig b;
      b.address = ipAddr("198.19.0." + std::to_string(100 + e));
      b.mac = macAddr("02:00:00:0d:ee:" + std::to_string(10 + e));
      v.backends.push_back(b);
    }
    for (size_t bi : backend_order(vi)) {
      const BackendSpec& bs = vs.backends[bi];
      BackendConfig b;
      b.address = ipAddr(bs.addr);
      b.port = bs.port;
      b.weight = bs.weight;
      b.mac = macFor(vi, bi);
      v.backends.push_back(b);
    }
    c.vips.push_back(v);
  }
  return c;
}

std::vector<size_t> inOrder(size_t vi) {
  std::vector<size_t> o(kVips[vi].backends.size());
  for (size_t i = 0; i < o.size(); i++) o[i] = i;
  return o;
}

std::vector<size_t> shuffled(size_t vi) {
  std::vector<size_t> o = inOrder(vi);
  std::mt19937 rng(uint32_t(97 + vi));
  std::shuffle(o.begin(), o.end(), rng);
  if (o == inOrder(vi)) std::reverse(o.begin(), o.end());
  return o;
}

// The VIP of `s` for kVips[vi] (VIP order differs between the configs).
const SnapVip& vipOf(const Snapshot& s, size_t vi) {
  const IpAddr a = ipAddr(kVips[vi].addr);
  for (const SnapVip& v : s.vips)
    if (v.addr == a && v.port_be == rte_cpu_to_be_16(kVips[vi].port)) return v;
  ADD_FAILURE() << "no VIP " << kVips[vi].addr;
  return s.vips.at(0);
}

// A VIP's Maglev table as the identity each slot sends to.
std::vector<std::string> identityTable(const Snapshot& s, size_t vi) {
  std::vector<std::string> t;
  for (uint32_t id : vipOf(s, vi).maglev) {
    const SnapBackend& b = s.backends.at(id);
    t.push_back(identity(b.addr.str(), rte_be_to_cpu_16(b.port_be)));
  }
  return t;
}

// Test-only, the negative control: every VIP's table rebuilt with the permutation seeded by the
// backend's position in the VIP's list (config order) instead of its identity.
void makeOrderDependent(Snapshot& s) {
  for (SnapVip& v : s.vips) {
    std::vector<MaglevEndpoint> eps;
    for (size_t i = 0; i < v.backends.size(); i++) {
      const SnapBackend& b = s.backends.at(v.backends[i]);
      eps.push_back({b.id, uint64_t(i) * 0x9e3779b97f4a7c15ull + 1, b.weight});
    }
    v.maglev = buildMaglevTable(eps, uint32_t(v.maglev.size()));
  }
}

// Slots whose identity differs between two snapshots, over all VIPs.
size_t tableDifferences(const Snapshot& a, const Snapshot& b) {
  size_t d = 0;
  for (size_t vi = 0; vi < kVips.size(); vi++) {
    const auto ta = identityTable(a, vi), tb = identityTable(b, vi);
    EXPECT_EQ(ta.size(), tb.size());
    for (size_t i = 0; i < std::min(ta.size(), tb.size()); i++) d += ta[i] != tb[i];
  }
  return d;
}

const FlowIndexKey kKeyA{{0x243f6a8885a308d3, 0x13198a2e03707344, 0xa4093822299f31d0, 0x082efa98ec4e6c89,
                          0x452821e638d01377, 0xbe5466cf34e90c6c}};
const FlowIndexKey kKeyB{{0xc0ac29b7c97c50dd, 0x3f84d5b5b5470917, 0x9216d5d98979fb1b, 0xd1310ba698dfb5ac,
                          0x2ffd72dbd01adfb7, 0xb8e1afed6a267e96}};

struct KeyGuard {
  FlowIndexKey saved = g_flow_index_key;
  ~KeyGuard() { setFlowIndexKey(saved); }
};

// The two instances' builds: A from the config in order with a fresh builder; B from the
// reordered config, by a builder whose earlier build (a reload history) allocated ids to other
// backends first, in another order.
struct Instances {
  SnapshotBuilder sb_a, sb_b, sb_c;
  std::unique_ptr<Snapshot> a, b, c;  // c: the reordered config on a fresh builder
  Instances() {
    a = build(sb_a, makeConfig({0, 1, 2, 3, 4}, inOrder));
    build(sb_b, makeConfig({4, 2, 0, 3, 1}, [](size_t vi) { return vi % 2 ? inOrder(vi) : shuffled(vi); }, 6));
    b = build(sb_b, makeConfig({3, 1, 4, 0, 2}, shuffled));
    c = build(sb_c, makeConfig({3, 1, 4, 0, 2}, shuffled));
  }
};

TEST(SameDecision, MaglevTablesAreTheSameIdentitiesWhateverTheOrderAndIds) {
  Instances in;
  ASSERT_TRUE(in.a && in.b && in.c);
  // The ids really differ (else comparing identities would prove nothing beyond comparing ids).
  size_t id_differs = 0;
  for (size_t vi = 0; vi < kVips.size(); vi++) {
    const SnapVip& va = vipOf(*in.a, vi);
    const SnapVip& vb = vipOf(*in.b, vi);
    for (uint32_t ida : va.backends)
      for (uint32_t idb : vb.backends) {
        const SnapBackend &ba = in.a->backends[ida], &bb = in.b->backends[idb];
        if (ba.addr == bb.addr && ba.port_be == bb.port_be) id_differs += ida != idb;
      }
  }
  EXPECT_GT(id_differs, 10u);
  for (size_t vi = 0; vi < kVips.size(); vi++) {
    SCOPED_TRACE("vip " + kVips[vi].addr);
    const auto ta = identityTable(*in.a, vi);
    ASSERT_EQ(ta.size(), 1021u);
    EXPECT_EQ(ta, identityTable(*in.b, vi));
    EXPECT_EQ(ta, identityTable(*in.c, vi));
    // Every backend has slots, in proportion to its weight (within one slot per backend).
    std::map<std::string, uint32_t> slots;
    for (const auto& id : ta) slots[id]++;
    uint32_t total_weight = 0;
    for (const BackendSpec& b : kVips[vi].backends) total_weight += b.weight;
    ASSERT_EQ(slots.size(), kVips[vi].backends.size());
    for (const BackendSpec& b : kVips[vi].backends) {
      const double want = 1021.0 * b.weight / total_weight;
      EXPECT_NEAR(double(slots[identity(b.addr, b.port)]), want, double(kVips[vi].backends.size()) + 1);
    }
  }
  EXPECT_EQ(tableDifferences(*in.a, *in.b), 0u);

  // Negative control: the order-dependent variant differs between the same two builds.
  Snapshot oa = *in.a, ob = *in.b;
  makeOrderDependent(oa);
  makeOrderDependent(ob);
  const size_t neg = tableDifferences(oa, ob);
  printf("[ same ] backend ids that differ between the instances: %zu; slots that differ: %zu of %zu "
         "(order-dependent control: %zu)\n",
         id_differs, tableDifferences(*in.a, *in.b), kVips.size() * 1021, neg);
  EXPECT_GT(neg, 1021u);
}

// The flow hash that picks the Maglev slot (makeFlowKey's CRC32-C) is one function on every
// instance; only the flow table's bucket index is keyed per process.
TEST(SameDecision, SlotHashDoesNotDependOnTheFlowIndexKey) {
  KeyGuard guard;
  std::mt19937 rng(7);
  size_t idx_differs = 0;
  for (int i = 0; i < 2000; i++) {
    uint8_t s6[16] = {0x20, 0x01, 0x0d, 0xb8, 0xc0}, d6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 1};
    for (int k = 6; k < 16; k++) s6[k] = uint8_t(rng());
    d6[15] = 1;
    const uint32_t s4 = rte_cpu_to_be_32(0xc6128000u | (rng() & 0x7fff)), d4 = rte_cpu_to_be_32(0xc6120101u);
    const uint16_t sp = uint16_t(rng()), dp = rte_cpu_to_be_16(80);
    const uint8_t proto = i % 2 ? uint8_t(Proto::Tcp) : uint8_t(Proto::Udp);
    hash_sig_t sig[2][2], idx[2][2];
    int n = 0;
    for (const FlowIndexKey& key : {kKeyA, kKeyB}) {
      setFlowIndexKey(key);
      FlowKey4 k4;
      FlowKey6 k6;
      sig[n][0] = makeFlowKey(k4, reinterpret_cast<const uint8_t*>(&s4), reinterpret_cast<const uint8_t*>(&d4), sp, dp,
                              proto, &idx[n][0]);
      sig[n][1] = makeFlowKey(k6, s6, d6, sp, dp, proto, &idx[n][1]);
      n++;
    }
    for (int f = 0; f < 2; f++) {
      ASSERT_EQ(sig[0][f], sig[1][f]);
      EXPECT_EQ(maglevSlot(sig[0][f], 65537), maglevSlot(sig[1][f], 65537));
      idx_differs += idx[0][f] != idx[1][f];
    }
  }
  EXPECT_GT(idx_differs, 3900u);  // the bucket index does change with the key
}

struct Flow {
  size_t vip;
  Frame frame;
};

// Thousands of 5-tuples toward every VIP: clients in 198.18.128.0/17 and 2001:db8:c::/48.
std::vector<Flow> makeFlows(uint32_t per_vip) {
  std::mt19937 rng(2024);
  std::vector<Flow> f;
  for (size_t vi = 0; vi < kVips.size(); vi++) {
    const VipSpec& vs = kVips[vi];
    const IpAddr vip = ipAddr(vs.addr);
    for (uint32_t i = 0; i < per_vip; i++) {
      PacketBuilder b;
      b.eth(kClientMac, kWanMac);
      if (vip.isV4()) {
        b.ipv4(IpAddr::v4(rte_cpu_to_be_32(0xc6128000u | (rng() & 0x7fff))), vip);
      } else {
        uint8_t a[16] = {0x20, 0x01, 0x0d, 0xb8, 0x00, 0x0c};
        for (int k = 6; k < 16; k++) a[k] = uint8_t(rng());
        b.ipv6(IpAddr::v6(a), vip);
      }
      const uint16_t sport = uint16_t(1024 + rng() % 60000);
      if (vs.proto == Proto::Tcp) b.tcp(sport, vs.port, 0x02);
      else b.udp(sport, vs.port);
      f.push_back({vi, b.payload(8).build()});
    }
  }
  return f;
}

// The backend identity each flow's frame went to (by its MAC; NAT frames must also carry the
// identity's port as destination port), "" when it was not forwarded on the lan port.
std::vector<std::string> decisions(WorkerState& w, const Snapshot& s, const std::vector<Flow>& flows) {
  std::vector<Frame> frames;
  for (const Flow& f : flows) frames.push_back(f.frame);
  const auto out = test::runBursts(w, s, frames, kWan, 1000);
  EXPECT_EQ(out.size(), flows.size());
  std::vector<std::string> r;
  for (size_t i = 0; i < out.size() && i < flows.size(); i++) {
    const size_t vi = flows[i].vip;
    std::string id;
    for (size_t bi = 0; out[i].port == kLan && bi < kVips[vi].backends.size(); bi++)
      if (std::memcmp(out[i].bytes.data(), macFor(vi, bi).bytes.data(), 6) == 0) {
        const BackendSpec& b = kVips[vi].backends[bi];
        id = identity(b.addr, b.port);
        if (kVips[vi].mode == FwdMode::Nat) {  // IPv4 + TCP: destination port at 14 + 20 + 2
          EXPECT_EQ(test::get16(out[i].bytes, 36), b.port);
        }
      }
    r.push_back(id);
  }
  return r;
}

size_t flowDifferences(const Snapshot& a, const Snapshot& b, const std::vector<Flow>& flows) {
  KeyGuard guard;
  setFlowIndexKey(kKeyA);
  auto wa = test::makeBurstWorker("same_a", 1u << 14, 1u << 14);
  const auto da = decisions(*wa, a, flows);
  setFlowIndexKey(kKeyB);
  auto wb = test::makeBurstWorker("same_b", 1u << 14, 1u << 14);
  const auto db = decisions(*wb, b, flows);
  EXPECT_EQ(da.size(), flows.size());
  EXPECT_EQ(db.size(), flows.size());
  size_t d = 0;
  for (size_t i = 0; i < std::min(da.size(), db.size()); i++) {
    EXPECT_NE(da[i], "") << "flow " << i << " not forwarded to a backend of its VIP";
    d += da[i] != db[i];
  }
  return d;
}

TEST(SameDecision, TwoInstancesPickTheSameBackendForEveryFlow) {
  Instances in;
  ASSERT_TRUE(in.a && in.b);
  const std::vector<Flow> flows = makeFlows(1500);  // 7500 flows: v4/v6, TCP/UDP, DSR/NAT
  const size_t same = flowDifferences(*in.a, *in.b, flows);
  EXPECT_EQ(same, 0u);

  // Negative control: with order-dependent tables the same instances disagree on many flows.
  Snapshot oa = *in.a, ob = *in.b;
  makeOrderDependent(oa);
  makeOrderDependent(ob);
  const size_t neg = flowDifferences(oa, ob, flows);
  printf("[ same ] %zu flows: %zu decided differently by the two instances (order-dependent control: %zu)\n",
         flows.size(), same, neg);
  EXPECT_GT(neg, flows.size() / 4);
}

}  // namespace
}  // namespace l4lb::dataplane
