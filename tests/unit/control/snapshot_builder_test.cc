// Snapshot builder: stable backend ids, VIP keys, per-VIP Maglev tables, the smooth weighted
// round-robin sequence, egress selection (connected prefix / gateway / via) and the errors that
// need the whole picture, each with its exact message.
#include "control/snapshot_builder.h"

#include <gtest/gtest.h>

#include <rte_byteorder.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "packet_builder.h"

namespace l4lb::control {
namespace {

using test::ipAddr;
using test::macAddr;

PortConfig makePort(const std::string& name, const std::string& v4, const std::string& v6 = "") {
  PortConfig p;
  p.name = name;
  p.device = "net_null_" + name;
  if (!v4.empty()) p.ipv4 = *Prefix::parse(v4);
  if (!v6.empty()) p.ipv6 = *Prefix::parse(v6);
  return p;
}

BackendConfig makeBackend(const std::string& addr, const std::string& mac = "", uint32_t weight = 1,
                          uint16_t port = 0, const std::string& via = "") {
  BackendConfig b;
  b.address = ipAddr(addr);
  b.weight = weight;
  b.port = port;
  b.via = via;
  if (!mac.empty()) b.mac = macAddr(mac);
  return b;
}

VipConfig makeVip(const std::string& addr, uint16_t port, Proto proto, std::vector<BackendConfig> backends,
                  uint32_t table_size = 251) {
  VipConfig v;
  v.address = ipAddr(addr);
  v.port = port;
  v.protocol = proto;
  v.maglev_table_size = table_size;
  v.backends = std::move(backends);
  return v;
}

std::vector<PortRuntime> runtimeFor(const Config& c) {
  std::vector<PortRuntime> rt;
  for (size_t i = 0; i < c.ports.size(); i++)
    rt.push_back({uint16_t(i), macAddr("02:00:00:00:00:1" + std::to_string(i))});
  return rt;
}

// One port "lan" (10.0.0.1/24, fd00::1/64) and one TCP VIP 192.0.2.1:80 with three backends.
Config baseConfig() {
  Config c;
  c.ports.push_back(makePort("lan", "10.0.0.1/24", "fd00::1/64"));
  c.vips.push_back(makeVip("192.0.2.1", 80, Proto::Tcp,
                           {makeBackend("10.0.0.11", "02:00:00:00:01:01"), makeBackend("10.0.0.12", "02:00:00:00:01:02"),
                            makeBackend("10.0.0.13", "02:00:00:00:01:03")}));
  return c;
}

// Backend id by address for one VIP of a snapshot.
std::map<std::string, uint32_t> idsOf(const Snapshot& s, size_t vip) {
  std::map<std::string, uint32_t> m;
  for (uint32_t id : s.vips.at(vip).backends) {
    const SnapBackend* b = s.backend(id);
    EXPECT_NE(b, nullptr) << "id " << id;
    if (b) m[b->addr.str()] = id;
  }
  return m;
}

std::unique_ptr<Snapshot> mustBuild(SnapshotBuilder& sb, const Config& c) {
  BuildResult r = sb.build(c, runtimeFor(c));
  EXPECT_NE(r.snapshot, nullptr) << r.joined();
  EXPECT_EQ(r.errors, std::vector<std::string>{});
  return std::move(r.snapshot);
}

std::string buildError(const Config& c) {
  SnapshotBuilder sb;
  BuildResult r = sb.build(c, runtimeFor(c));
  EXPECT_EQ(r.snapshot, nullptr);
  return r.joined();
}

// ---------------------------------------------------------------------------------------------
// Backend ids

TEST(SnapshotBuilder, BackendIdsStableAcrossBuildsAndEdits) {
  SnapshotBuilder sb;
  Config c = baseConfig();
  auto s1 = mustBuild(sb, c);
  auto s2 = mustBuild(sb, c);
  ASSERT_TRUE(s1 && s2);
  EXPECT_EQ(s2->generation, s1->generation + 1);
  const auto ids = idsOf(*s1, 0);
  ASSERT_EQ(ids.size(), 3u);
  EXPECT_EQ(idsOf(*s2, 0), ids);
  std::set<uint32_t> distinct;
  for (auto& [a, id] : ids) {
    EXPECT_NE(id, kNoBackend);
    distinct.insert(id);
  }
  EXPECT_EQ(distinct.size(), 3u);
  EXPECT_EQ(s1->backends[0].id, kNoBackend);  // slot 0 is "none"
  EXPECT_EQ(s1->backend(kNoBackend), nullptr);

  // A new backend listed first does not renumber the others, and gets an unused id.
  Config added = c;
  added.vips[0].backends.insert(added.vips[0].backends.begin(), makeBackend("10.0.0.14", "02:00:00:00:01:04"));
  auto s3 = mustBuild(sb, added);
  ASSERT_TRUE(s3);
  auto ids3 = idsOf(*s3, 0);
  ASSERT_EQ(ids3.size(), 4u);
  for (auto& [a, id] : ids) EXPECT_EQ(ids3.at(a), id) << a;
  EXPECT_EQ(distinct.count(ids3.at("10.0.0.14")), 0u);

  // Removing one keeps the rest, and the removed id no longer resolves.
  Config removed = c;
  removed.vips[0].backends.erase(removed.vips[0].backends.begin() + 1);  // 10.0.0.12
  auto s4 = mustBuild(sb, removed);
  ASSERT_TRUE(s4);
  auto ids4 = idsOf(*s4, 0);
  ASSERT_EQ(ids4.size(), 2u);
  EXPECT_EQ(ids4.at("10.0.0.11"), ids.at("10.0.0.11"));
  EXPECT_EQ(ids4.at("10.0.0.13"), ids.at("10.0.0.13"));
  EXPECT_EQ(s4->backend(ids.at("10.0.0.12")), nullptr);
  for (uint32_t slot : s4->vips[0].maglev) EXPECT_NE(slot, ids.at("10.0.0.12"));

  // The same backend address under two VIPs is two backends (flows are per VIP).
  Config two = c;
  two.vips.push_back(makeVip("192.0.2.2", 80, Proto::Tcp, {makeBackend("10.0.0.11", "02:00:00:00:01:01")}));
  auto s5 = mustBuild(sb, two);
  ASSERT_TRUE(s5);
  EXPECT_EQ(idsOf(*s5, 0), ids);
  uint32_t other = idsOf(*s5, 1).at("10.0.0.11");
  EXPECT_NE(other, ids.at("10.0.0.11"));
  EXPECT_EQ(s5->backends[other].vip_index, 1u);
  EXPECT_EQ(s5->backends[ids.at("10.0.0.11")].vip_index, 0u);
}

// ---------------------------------------------------------------------------------------------
// VIP keys and per-VIP tables

// [icmp] reaches the workers through the snapshot (so a reload changes it live).
TEST(SnapshotBuilder, IcmpErrorLimitFromConfig) {
  SnapshotBuilder sb;
  Config c = baseConfig();
  auto d = mustBuild(sb, c);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->icmp_errors.per_second, 1000u);
  EXPECT_EQ(d->icmp_errors.burst, 200u);
  c.icmp.errors = {7, 3};
  auto s = mustBuild(sb, c);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->icmp_errors.per_second, 7u);
  EXPECT_EQ(s->icmp_errors.burst, 3u);
}

// [sync] announce_interval reaches the workers through the snapshot; 0 tells them sync is off.
TEST(SnapshotBuilder, SyncAnnounceFromConfig) {
  SnapshotBuilder sb;
  Config c = baseConfig();
  c.sync.announce_interval_ms = 1500;  // set, but sync is not enabled
  auto off = mustBuild(sb, c);
  ASSERT_TRUE(off);
  EXPECT_EQ(off->sync_announce_ms, 0u);
  c.sync.enabled = true;
  auto on = mustBuild(sb, c);
  ASSERT_TRUE(on);
  EXPECT_EQ(on->sync_announce_ms, 1500u);
}

TEST(SnapshotBuilder, VipLookupKeys) {
  SnapshotBuilder sb;
  Config c = baseConfig();
  c.vips.push_back(makeVip("192.0.2.1", 0, Proto::Udp, {makeBackend("10.0.0.21", "02:00:00:00:02:01")}));
  c.vips.push_back(makeVip("2001:db8:1::1", 443, Proto::Tcp, {makeBackend("fd00::21", "02:00:00:00:02:02")}));
  auto s = mustBuild(sb, c);
  ASSERT_TRUE(s);
  ASSERT_EQ(s->vips.size(), 3u);
  EXPECT_EQ(s->vip_by_key.size(), 3u);
  auto find = [&](const char* a, uint16_t port, uint8_t proto) -> int {
    const uint32_t* i = s->vip_by_key.find(ServiceKey::make(ipAddr(a), rte_cpu_to_be_16(port), proto));
    return i ? int(*i) : -1;
  };
  EXPECT_EQ(find("192.0.2.1", 80, 6), 0);
  EXPECT_EQ(find("192.0.2.1", 0, 17), 1);
  EXPECT_EQ(find("2001:db8:1::1", 443, 6), 2);
  EXPECT_EQ(find("192.0.2.1", 81, 6), -1);   // the map itself has no wildcard: the worker retries port 0
  EXPECT_EQ(find("192.0.2.1", 80, 17), -1);  // protocol is part of the key
  EXPECT_EQ(find("192.0.2.1", 0, 6), -1);
  EXPECT_EQ(find("2001:db8:1::1", 80, 6), -1);
  EXPECT_EQ(s->vips[0].port_be, rte_cpu_to_be_16(80));
  EXPECT_EQ(s->vips[0].proto, Proto::Tcp);
  EXPECT_EQ(s->vips[1].port_be, 0);
  EXPECT_EQ(s->vips[2].addr, ipAddr("2001:db8:1::1"));
  // Not NAT: no reverse entries.
  EXPECT_EQ(s->nat_reverse.size(), 0u);
}

TEST(SnapshotBuilder, MaglevTableHoldsOnlyThisVipsBackendsAtConfiguredSize) {
  SnapshotBuilder sb;
  Config c = baseConfig();
  c.vips[0].backends[0].weight = 1;
  c.vips[0].backends[1].weight = 2;
  c.vips[0].backends[2].weight = 3;
  c.vips.push_back(makeVip("192.0.2.2", 80, Proto::Tcp,
                           {makeBackend("10.0.0.21", "02:00:00:00:02:01"), makeBackend("10.0.0.22", "02:00:00:00:02:02")},
                           1009));
  auto s = mustBuild(sb, c);
  ASSERT_TRUE(s);
  ASSERT_EQ(s->vips[0].maglev.size(), 251u);
  ASSERT_EQ(s->vips[1].maglev.size(), 1009u);
  for (size_t v = 0; v < 2; v++) {
    const SnapVip& vip = s->vips[v];
    std::set<uint32_t> own(vip.backends.begin(), vip.backends.end());
    std::map<uint32_t, uint32_t> counts;
    for (uint32_t id : vip.maglev) {
      EXPECT_EQ(own.count(id), 1u) << "vip " << v << " slot holds foreign/empty id " << id;
      counts[id]++;
    }
    EXPECT_EQ(counts.size(), own.size()) << "every healthy backend of vip " << v << " has slots";
    for (uint32_t id : vip.backends) {
      EXPECT_EQ(s->backends[id].vip_index, v);
      EXPECT_EQ(s->backends[id].state, BackendState::Healthy);
    }
  }
  // Weights 1:2:3 over 251 slots: 41.8 / 83.7 / 125.5, each within one slot (maglev.h).
  auto ids = idsOf(*s, 0);
  std::map<uint32_t, uint32_t> counts;
  for (uint32_t id : s->vips[0].maglev) counts[id]++;
  EXPECT_NEAR(double(counts[ids.at("10.0.0.11")]), 251.0 / 6, 1.0);
  EXPECT_NEAR(double(counts[ids.at("10.0.0.12")]), 251.0 * 2 / 6, 1.0);
  EXPECT_NEAR(double(counts[ids.at("10.0.0.13")]), 251.0 * 3 / 6, 1.0);
  // Backend fields.
  const SnapBackend& b = s->backends[ids.at("10.0.0.12")];
  EXPECT_EQ(b.weight, 2);
  EXPECT_EQ(b.next_hop_mac, macAddr("02:00:00:00:01:02"));
  EXPECT_EQ(b.egress, 0);
  // Maglev scheduler: rr sequence still one turn each (unused, but well-formed).
  EXPECT_EQ(s->vips[0].rr.size(), 3u);
}

TEST(SnapshotBuilder, RoundRobinSequencesInSnapshot) {
  SnapshotBuilder sb;
  Config c = baseConfig();
  c.vips[0].scheduler = Scheduler::WeightedRoundRobin;
  c.vips[0].backends[0].weight = 1;
  c.vips[0].backends[1].weight = 2;
  c.vips[0].backends[2].weight = 3;
  Config rr = c;
  rr.vips[0].scheduler = Scheduler::RoundRobin;
  auto s = mustBuild(sb, c);
  auto s2 = mustBuild(sb, rr);
  ASSERT_TRUE(s && s2);
  auto ids = idsOf(*s, 0);
  std::map<uint32_t, int> n;
  for (uint32_t id : s->vips[0].rr) n[id]++;
  EXPECT_EQ(s->vips[0].rr.size(), 6u);
  EXPECT_EQ(n[ids.at("10.0.0.11")], 1);
  EXPECT_EQ(n[ids.at("10.0.0.12")], 2);
  EXPECT_EQ(n[ids.at("10.0.0.13")], 3);
  // Plain round robin ignores weights: one turn each, in configuration order.
  EXPECT_EQ(s2->vips[0].rr,
            (std::vector<uint32_t>{ids.at("10.0.0.11"), ids.at("10.0.0.12"), ids.at("10.0.0.13")}));
}

// ---------------------------------------------------------------------------------------------
// buildWrrSequence

std::map<uint32_t, int> countIds(const std::vector<uint32_t>& seq) {
  std::map<uint32_t, int> m;
  for (uint32_t id : seq) m[id]++;
  return m;
}

size_t longestRun(const std::vector<uint32_t>& seq, uint32_t id) {
  size_t best = 0, cur = 0;
  for (uint32_t x : seq) {
    cur = x == id ? cur + 1 : 0;
    best = std::max(best, cur);
  }
  return best;
}

TEST(WrrSequence, ExactProportions123) {
  auto seq = buildWrrSequence({{10, 1}, {20, 2}, {30, 3}});
  ASSERT_EQ(seq.size(), 6u);
  auto n = countIds(seq);
  EXPECT_EQ(n[10], 1);
  EXPECT_EQ(n[20], 2);
  EXPECT_EQ(n[30], 3);
  // Smooth: the heaviest never runs twice in a row within one cycle, so do the others.
  EXPECT_EQ(longestRun(seq, 30), 1u);
  EXPECT_EQ(longestRun(seq, 20), 1u);
  // nginx's smooth WRR for (1,2,3): c b a c b c.
  EXPECT_EQ(seq, (std::vector<uint32_t>{30, 20, 10, 30, 20, 30}));
  // Weights are reduced by their gcd: 2:4:6 is the same sequence.
  EXPECT_EQ(buildWrrSequence({{10, 2}, {20, 4}, {30, 6}}), seq);
}

TEST(WrrSequence, Smooth511) {
  auto seq = buildWrrSequence({{1, 5}, {2, 1}, {3, 1}});
  ASSERT_EQ(seq.size(), 7u);
  auto n = countIds(seq);
  EXPECT_EQ(n[1], 5);
  EXPECT_EQ(n[2], 1);
  EXPECT_EQ(n[3], 1);
  // The two light ids are separated by a heavy turn, and the heavy one never runs > 2.
  auto p2 = std::find(seq.begin(), seq.end(), 2u) - seq.begin();
  auto p3 = std::find(seq.begin(), seq.end(), 3u) - seq.begin();
  EXPECT_GT(std::abs(p2 - p3), 1) << "low-weight ids adjacent";
  EXPECT_LE(longestRun(seq, 1), 2u);
  EXPECT_EQ(seq, (std::vector<uint32_t>{1, 1, 2, 1, 3, 1, 1}));
}

TEST(WrrSequence, ZeroWeightsAndEmpty) {
  EXPECT_TRUE(buildWrrSequence({}).empty());
  EXPECT_TRUE(buildWrrSequence({{1, 0}, {2, 0}}).empty());
  EXPECT_EQ(buildWrrSequence({{1, 0}, {2, 3}}), (std::vector<uint32_t>{2}));  // gcd reduces 3 -> 1
  EXPECT_EQ(buildWrrSequence({{7, 1}, {8, 1}}), (std::vector<uint32_t>{7, 8}));
}

TEST(WrrSequence, ScaledDownWithinMaxLen) {
  // 301:200:100 (gcd 1, total 601) into at most 60 turns: floor(w*60/601) = 30, 19, 9.
  auto seq = buildWrrSequence({{1, 301}, {2, 200}, {3, 100}}, 60);
  EXPECT_LE(seq.size(), 60u);
  auto n = countIds(seq);
  EXPECT_EQ(n[1], 30);
  EXPECT_EQ(n[2], 19);
  EXPECT_EQ(n[3], 9);
  // Default bound: 65535:1 -> total 65536 fits exactly without scaling.
  auto big = buildWrrSequence({{1, 65535}, {2, 1}});
  EXPECT_EQ(big.size(), 65536u);
  EXPECT_EQ(countIds(big)[2], 1);
}

TEST(WrrSequence, ScaledDownKeepsEveryBackendAndTheBound) {
  // 1000:1:1 into at most 100 turns: the light ones must keep one turn each, and the sequence
  // must still be <= 100 long (so the heavy one gets at most 98).
  auto seq = buildWrrSequence({{1, 1000}, {2, 1}, {3, 1}}, 100);
  auto n = countIds(seq);
  EXPECT_GE(n[2], 1);
  EXPECT_GE(n[3], 1);
  EXPECT_LE(seq.size(), 100u);
}

TEST(WrrSequence, DefaultBoundWithManyLightBackends) {
  // 65535:1:1:1 (total 65538) scales to 65533+1+1+1 = 65536: fits.
  auto fits = buildWrrSequence({{1, 65535}, {2, 1}, {3, 1}, {4, 1}});
  EXPECT_EQ(fits.size(), 65536u);
  EXPECT_EQ(countIds(fits)[4], 1);
  // 65535:65535:1:1:1 (total 65073) scales to 32767+32767+1+1+1 = 65537: one over.
  auto seq = buildWrrSequence({{1, 65535}, {2, 65535}, {3, 1}, {4, 1}, {5, 1}});
  auto n = countIds(seq);
  EXPECT_EQ(n[3], 1);
  EXPECT_EQ(n[4], 1);
  EXPECT_EQ(n[5], 1);
  EXPECT_LE(seq.size(), 65536u);
}

// ---------------------------------------------------------------------------------------------
// Errors

TEST(SnapshotBuilderErrors, BackendWithoutMacOrNeighbour) {
  Config c = baseConfig();
  c.vips[0].backends[1].mac.reset();  // 10.0.0.12, connected on "lan"
  EXPECT_EQ(buildError(c),
            "vips[0].backends[1].mac: no MAC known for 10.0.0.12 (set mac, add a [[neighbours]] entry, or give port lan an exception_path)");
  // A neighbour entry fixes it and is used as the next hop.
  c.neighbours.push_back({ipAddr("10.0.0.12"), macAddr("02:00:00:00:0a:0c")});
  SnapshotBuilder sb;
  auto s = mustBuild(sb, c);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->backends[idsOf(*s, 0).at("10.0.0.12")].next_hop_mac, macAddr("02:00:00:00:0a:0c"));
  // Backend MACs are neighbours too (the NAT reverse path routes by the neighbour table).
  const MacAddr* m = s->neighbours.find(AddrKey::make(ipAddr("10.0.0.11")));
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(*m, macAddr("02:00:00:00:01:01"));
}

TEST(SnapshotBuilderErrors, GatewayWithoutMac) {
  Config c = baseConfig();
  c.ports[0].gateway4 = ipAddr("10.0.0.254");
  EXPECT_EQ(buildError(c), "ports[0].gateway4: no MAC known for 10.0.0.254 (add a [[neighbours]] entry)");
}

TEST(SnapshotBuilderErrors, NatBackendServingTwoVips) {
  Config c = baseConfig();
  c.vips[0].forwarding = FwdMode::Nat;
  c.vips[0].backends[0].port = 8080;
  c.vips.push_back(makeVip("192.0.2.2", 443, Proto::Tcp, {makeBackend("10.0.0.11", "02:00:00:00:01:01", 1, 8080)}));
  c.vips[1].forwarding = FwdMode::Nat;
  EXPECT_EQ(buildError(c),
            "vips[1].backends[0]: NAT backend 10.0.0.11:8080/tcp already serves vips[0]; replies could not be "
            "told apart");
  // A different backend port, or a different protocol, is unambiguous.
  Config ok = c;
  ok.vips[1].backends[0].port = 8443;
  SnapshotBuilder sb;
  auto s = mustBuild(sb, ok);
  ASSERT_TRUE(s);
  const NatReverse* r = s->nat_reverse.find(ServiceKey::make(ipAddr("10.0.0.11"), rte_cpu_to_be_16(8443), 6));
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->vip_index, 1u);
  EXPECT_EQ(r->backend_id, idsOf(*s, 1).at("10.0.0.11"));
  r = s->nat_reverse.find(ServiceKey::make(ipAddr("10.0.0.11"), rte_cpu_to_be_16(8080), 6));
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->vip_index, 0u);
  // Backend port 0 keeps the client's (= the VIP's) port: replies come from the VIP port.
  r = s->nat_reverse.find(ServiceKey::make(ipAddr("10.0.0.12"), rte_cpu_to_be_16(80), 6));
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->vip_index, 0u);
  Config udp = c;
  udp.vips[1].protocol = Proto::Udp;
  SnapshotBuilder sb2;
  EXPECT_TRUE(mustBuild(sb2, udp));
}

TEST(SnapshotBuilderErrors, NatAllPortsVipNeedsBackendPortZero) {
  Config c = baseConfig();
  c.vips[0].port = 0;
  c.vips[0].forwarding = FwdMode::Nat;
  c.vips[0].backends[2].port = 8080;
  EXPECT_EQ(buildError(c),
            "vips[0].backends[2].port: must be 0 when the VIP's port is 0 (replies could not be mapped back)");
}

TEST(SnapshotBuilderErrors, TunnelWithoutSourceAddress) {
  Config c;
  c.ports.push_back(makePort("lan", "", "fd00::1/64"));  // no IPv4 address
  c.vips.push_back(makeVip("192.0.2.1", 80, Proto::Tcp, {makeBackend("10.0.0.11", "02:00:00:00:01:01", 1, 0, "lan")}));
  c.vips[0].forwarding = FwdMode::Ipip;
  EXPECT_EQ(buildError(c), "vips[0]: tunnel_source4: needed for backend 10.0.0.11 (port lan has no address of that family)");
  c.vips[0].forwarding = FwdMode::Gue;
  EXPECT_EQ(buildError(c), "vips[0]: tunnel_source4: needed for backend 10.0.0.11 (port lan has no address of that family)");
  // DSR needs no source.
  c.vips[0].forwarding = FwdMode::Dsr;
  SnapshotBuilder sb;
  EXPECT_TRUE(mustBuild(sb, c));
  // An explicit source fixes it.
  c.vips[0].forwarding = FwdMode::Ipip;
  c.vips[0].tunnel_source4 = ipAddr("192.0.2.250");
  auto s = mustBuild(sb, c);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->backends[s->vips[0].backends[0]].tunnel_src, ipAddr("192.0.2.250"));
}

// Every problem is its own entry, in the order found (reload logs each on its own line).
TEST(SnapshotBuilderErrors, EachErrorIsOneEntry) {
  Config c;
  c.ports.push_back(makePort("lan", "", "fd00::1/64"));  // no IPv4 address
  c.vips.push_back(makeVip("192.0.2.1", 80, Proto::Tcp,
                           {makeBackend("10.0.0.11", "02:00:00:00:01:01", 1, 0, "lan"),
                            makeBackend("10.0.0.12", "02:00:00:00:01:02", 1, 0, "lan")}));
  c.vips[0].forwarding = FwdMode::Ipip;
  SnapshotBuilder sb;
  BuildResult r = sb.build(c, runtimeFor(c));
  EXPECT_FALSE(r);
  EXPECT_EQ(r.snapshot, nullptr);
  EXPECT_EQ(r.errors, (std::vector<std::string>{
                          "vips[0]: tunnel_source4: needed for backend 10.0.0.11 (port lan has no address of that family)",
                          "vips[0]: tunnel_source4: needed for backend 10.0.0.12 (port lan has no address of that family)",
                      }));
  EXPECT_EQ(r.joined(), r.errors[0] + "\n" + r.errors[1]);
}

TEST(SnapshotBuilder, TunnelSourceDefaultsToEgressPortAddress) {
  Config c = baseConfig();
  c.vips[0].forwarding = FwdMode::Gue;
  c.vips[0].gue_port = 9999;
  c.vips[0].backends.push_back(makeBackend("fd00::11", "02:00:00:00:01:06"));
  SnapshotBuilder sb;
  auto s = mustBuild(sb, c);
  ASSERT_TRUE(s);
  for (uint32_t id : s->vips[0].backends) {
    const SnapBackend& b = s->backends[id];
    EXPECT_EQ(b.tunnel_src, b.addr.isV4() ? ipAddr("10.0.0.1") : ipAddr("fd00::1")) << b.addr.str();
  }
  EXPECT_EQ(s->vips[0].gue_port_be, rte_cpu_to_be_16(9999));
}

// Two IPv4 backends behind two ports, no tunnel_source4: each leaves from its own port's
// address (the outer source must be an address of the port the packet goes out of).
TEST(SnapshotBuilder, TunnelSourceIsPerBackendEgressPort) {
  Config c;
  c.ports.push_back(makePort("lan1", "10.0.0.1/24"));
  c.ports.push_back(makePort("lan2", "10.0.1.1/24"));
  c.vips.push_back(makeVip("192.0.2.1", 80, Proto::Tcp,
                           {makeBackend("10.0.0.11", "02:00:00:00:01:01"), makeBackend("10.0.1.12", "02:00:00:00:01:02")}));
  c.vips[0].forwarding = FwdMode::Ipip;
  SnapshotBuilder sb;
  auto s = mustBuild(sb, c);
  ASSERT_TRUE(s);
  std::map<std::string, std::string> src;
  for (uint32_t id : s->vips[0].backends) {
    const SnapBackend& b = s->backends[id];
    src[b.addr.str()] = b.tunnel_src.str();
    // The template's outer source (IPv4 header bytes 12..15 after Ethernet) is the same address.
    EXPECT_EQ(0, std::memcmp(b.rw.hdr.data() + 14 + 12, b.tunnel_src.bytes.data(), 4)) << b.addr.str();
  }
  EXPECT_EQ(src, (std::map<std::string, std::string>{{"10.0.0.11", "10.0.0.1"}, {"10.0.1.12", "10.0.1.1"}}));
}

// ---------------------------------------------------------------------------------------------
// Per-backend rewrite constants (BackendRewrite)

// One port "lan" (198.19.0.1/16, 2001:db8:1::1/64, MTU 1500, MAC 02:00:00:00:00:10).
Config rewriteConfig() {
  Config c;
  c.ports.push_back(makePort("lan", "198.19.0.1/16", "2001:db8:1::1/64"));
  return c;
}

std::vector<uint8_t> hdrOf(const BackendRewrite& rw) { return {rw.hdr.begin(), rw.hdr.begin() + rw.hdr_len}; }

TEST(BackendRewrite, TunnelTemplatesExactBytes) {
  Config c = rewriteConfig();
  c.vips.push_back(makeVip("198.18.200.1", 80, Proto::Tcp,
                           {makeBackend("198.19.0.11", "02:00:00:00:01:01"),
                            makeBackend("2001:db8:1::11", "02:00:00:00:01:02")}));
  c.vips[0].forwarding = FwdMode::Ipip;
  c.vips.push_back(makeVip("2001:db8:200::1", 53, Proto::Udp,
                           {makeBackend("198.19.0.12", "02:00:00:00:01:03"),
                            makeBackend("2001:db8:1::12", "02:00:00:00:01:04")}));
  c.vips[1].forwarding = FwdMode::Gue;
  c.vips[1].gue_port = 6081;
  c.ports[0].mtu = 9000;
  SnapshotBuilder sb;
  auto s = mustBuild(sb, c);
  ASSERT_TRUE(s);
  auto rwOf = [&](size_t vip, size_t i) { return s->backends[s->vips[vip].backends[i]].rw; };
  const std::vector<uint8_t> eth1 = {2, 0, 0, 0, 1, 1, 2, 0, 0, 0, 0, 0x10, 0x08, 0x00};
  // IPIP, IPv4 in IPv4 (RFC 2003): protocol 4, TTL 64, 198.19.0.1 -> 198.19.0.11.
  std::vector<uint8_t> want = eth1;
  for (uint8_t x : {0x45, 0, 0, 0, 0, 0, 0, 0, 64, 4, 0, 0, 198, 19, 0, 1, 198, 19, 0, 11}) want.push_back(x);
  BackendRewrite rw = rwOf(0, 0);
  EXPECT_EQ(hdrOf(rw), want);
  EXPECT_EQ(rw.max_l3_len, 9000 - 20);
  // The constant words' sum, network order, as stored.
  const std::span<const uint8_t> ip4(rw.hdr.data() + 14, 20);
  EXPECT_EQ(rw.outer_sum, rte_cpu_to_be_16(test::foldSum(test::onesSum(ip4))));
  EXPECT_EQ(rw.nat_l4_delta, 0);
  EXPECT_EQ(rw.nat_ip_delta, 0);
  // IPIP, IPv4 in IPv6 (RFC 2473): next header 4, hop limit 64, from the port's IPv6 address.
  rw = rwOf(0, 1);
  want = {2, 0, 0, 0, 1, 2, 2, 0, 0, 0, 0, 0x10, 0x86, 0xdd, 0x60, 0, 0, 0, 0, 0, 4, 64};
  for (const char* a : {"2001:db8:1::1", "2001:db8:1::11"})
    for (uint8_t x : ipAddr(a).bytes) want.push_back(x);
  EXPECT_EQ(hdrOf(rw), want);
  EXPECT_EQ(rw.max_l3_len, 9000 - 40);
  // GUE, IPv6 in IPv4: UDP (17) to port 6081, source port, length and checksum per packet.
  rw = rwOf(1, 0);
  want = {2, 0, 0, 0, 1, 3, 2, 0, 0, 0, 0, 0x10, 0x08, 0x00};
  for (uint8_t x : {0x45, 0, 0, 0, 0, 0, 0, 0, 64, 17, 0, 0, 198, 19, 0, 1, 198, 19, 0, 12}) want.push_back(x);
  for (uint8_t x : {0, 0, 0x17, 0xc1, 0, 0, 0, 0}) want.push_back(x);
  EXPECT_EQ(hdrOf(rw), want);
  EXPECT_EQ(rw.max_l3_len, 9000 - 28);
  EXPECT_EQ(rw.outer_sum, rte_cpu_to_be_16(test::foldSum(test::onesSum({rw.hdr.data() + 14, 20}))));
  // GUE, IPv6 in IPv6.
  rw = rwOf(1, 1);
  want = {2, 0, 0, 0, 1, 4, 2, 0, 0, 0, 0, 0x10, 0x86, 0xdd, 0x60, 0, 0, 0, 0, 0, 17, 64};
  for (const char* a : {"2001:db8:1::1", "2001:db8:1::12"})
    for (uint8_t x : ipAddr(a).bytes) want.push_back(x);
  for (uint8_t x : {0, 0, 0x17, 0xc1, 0, 0, 0, 0}) want.push_back(x);
  EXPECT_EQ(hdrOf(rw), want);
  EXPECT_EQ(rw.max_l3_len, 9000 - 48);
}

// The NAT differences must turn the sum of the old words into the sum of the new ones (mod
// 0xffff, one's complement), computed here in network order from the addresses themselves.
TEST(BackendRewrite, NatDifferencesMatchTheRewrittenWords) {
  Config c = rewriteConfig();
  c.vips.push_back(makeVip("198.18.200.1", 80, Proto::Tcp,
                           {makeBackend("198.19.0.11", "02:00:00:00:01:01", 1, 8080),
                            makeBackend("198.19.255.254", "02:00:00:00:01:02", 1, 0)}));
  c.vips[0].forwarding = FwdMode::Nat;
  c.vips.push_back(makeVip("2001:db8:200::1", 53, Proto::Udp,
                           {makeBackend("2001:db8:1::ffff:12", "02:00:00:00:01:03", 1, 5353)}));
  c.vips[1].forwarding = FwdMode::Nat;
  c.ports[0].mtu = 1400;
  SnapshotBuilder sb;
  auto s = mustBuild(sb, c);
  ASSERT_TRUE(s);
  auto words = [](std::initializer_list<std::vector<uint8_t>> parts) {
    uint64_t sum = 0;
    for (const auto& p : parts) sum += test::onesSum(p);
    return sum;
  };
  auto bytes = [](const char* a) {
    const IpAddr ip = ipAddr(a);
    return std::vector<uint8_t>(ip.bytes.begin(), ip.bytes.begin() + (ip.isV4() ? 4 : 16));
  };
  auto port = [](uint16_t p) { return std::vector<uint8_t>{uint8_t(p >> 8), uint8_t(p)}; };
  auto expectDelta = [](uint16_t delta_stored, uint64_t old_sum, uint64_t new_sum) {
    EXPECT_NE(delta_stored, 0);
    EXPECT_EQ((old_sum + rte_be_to_cpu_16(delta_stored)) % 0xffff, new_sum % 0xffff);
  };
  const std::vector<uint8_t> ttl_proto = {64, 6}, ttl_proto_after = {63, 6};
  struct Want {
    size_t vip, i;
    const char *vip_addr, *backend;
    uint16_t vport, bport;
  };
  for (const Want& w : {Want{0, 0, "198.18.200.1", "198.19.0.11", 80, 8080},
                        Want{0, 1, "198.18.200.1", "198.19.255.254", 80, 0},
                        Want{1, 0, "2001:db8:200::1", "2001:db8:1::ffff:12", 53, 5353}}) {
    SCOPED_TRACE(std::string(w.backend));
    const BackendRewrite& rw = s->backends[s->vips[w.vip].backends[w.i]].rw;
    const uint16_t bport = w.bport ? w.bport : w.vport;
    expectDelta(rw.nat_l4_delta, words({bytes(w.vip_addr), port(w.vport)}), words({bytes(w.backend), port(bport)}));
    if (w.vip == 0) {
      expectDelta(rw.nat_ip_delta, words({bytes(w.vip_addr), ttl_proto}), words({bytes(w.backend), ttl_proto_after}));
    } else {
      EXPECT_EQ(rw.nat_ip_delta, 0);  // no IPv6 header checksum
    }
    EXPECT_EQ(rw.max_l3_len, 1400);
    EXPECT_EQ(rw.hdr_len, 14);
    EXPECT_EQ(rw.hdr[12], w.vip == 0 ? 0x08 : 0x86);
  }
}

// ---------------------------------------------------------------------------------------------
// Egress

TEST(SnapshotBuilder, EgressByConnectedPrefixGatewayAndVia) {
  Config c;
  c.ports.push_back(makePort("a", "10.0.0.1/24"));
  c.ports.push_back(makePort("b", "10.1.0.1/24"));
  c.ports[1].gateway4 = ipAddr("10.1.0.254");
  c.ports.push_back(makePort("c", "10.2.0.1/24", "fd02::1/64"));
  c.neighbours.push_back({ipAddr("10.1.0.254"), macAddr("02:00:00:00:fe:01")});
  c.vips.push_back(makeVip("192.0.2.1", 80, Proto::Tcp,
                           {
                               makeBackend("10.2.0.5", "02:00:00:00:05:01"),               // connected on c
                               makeBackend("198.51.100.9"),                               // via b's gateway
                               makeBackend("10.0.0.7", "02:00:00:00:05:03", 1, 0, "c"),   // via c, own MAC
                               makeBackend("203.0.113.5", "", 1, 0, "b"),                 // via b: gateway MAC
                               makeBackend("10.0.0.8", "02:00:00:00:05:05"),               // connected on a
                               makeBackend("fd02::9", "02:00:00:00:05:06"),                // connected on c (v6)
                           }));
  std::vector<PortRuntime> rt = {{3, macAddr("02:00:00:00:00:a0")}, {1, macAddr("02:00:00:00:00:b0")},
                                 {0, macAddr("02:00:00:00:00:c0")}};
  SnapshotBuilder sb;
  BuildResult built = sb.build(c, rt);
  ASSERT_TRUE(built) << built.joined();
  std::unique_ptr<Snapshot> s = std::move(built.snapshot);
  auto ids = idsOf(*s, 0);
  auto egress = [&](const char* a) { return s->backends[ids.at(a)].egress; };
  auto nh = [&](const char* a) { return s->backends[ids.at(a)].next_hop_mac; };
  EXPECT_EQ(egress("10.2.0.5"), 2);
  EXPECT_EQ(nh("10.2.0.5"), macAddr("02:00:00:00:05:01"));
  EXPECT_EQ(egress("198.51.100.9"), 1);
  EXPECT_EQ(nh("198.51.100.9"), macAddr("02:00:00:00:fe:01"));
  EXPECT_EQ(egress("10.0.0.7"), 2);
  EXPECT_EQ(nh("10.0.0.7"), macAddr("02:00:00:00:05:03"));
  EXPECT_EQ(egress("203.0.113.5"), 1);
  EXPECT_EQ(nh("203.0.113.5"), macAddr("02:00:00:00:fe:01"));
  EXPECT_EQ(egress("10.0.0.8"), 0);
  EXPECT_EQ(egress("fd02::9"), 2);
  // Ports: DPDK ids map to our indexes; MACs from the runtime when not overridden.
  ASSERT_EQ(s->ports.size(), 3u);
  EXPECT_EQ(s->ports[0].port_id, 3);
  EXPECT_EQ(s->ports[2].mac, macAddr("02:00:00:00:00:c0"));
  EXPECT_TRUE(s->ports[1].has_gw4);
  EXPECT_EQ(s->ports[1].gw4_mac, macAddr("02:00:00:00:fe:01"));
  ASSERT_EQ(s->port_index_by_id.size(), 4u);
  EXPECT_EQ(s->port_index_by_id[0], 2);
  EXPECT_EQ(s->port_index_by_id[1], 1);
  EXPECT_EQ(s->port_index_by_id[2], -1);
  EXPECT_EQ(s->port_index_by_id[3], 0);

  // No port reaches an IPv6 backend outside fd02::/64 (no v6 gateway anywhere).
  Config bad = c;
  bad.vips[0].backends.push_back(makeBackend("2001:db8:9::1", "02:00:00:00:05:07"));
  SnapshotBuilder sb2;
  EXPECT_EQ(sb2.build(bad, rt).errors, std::vector<std::string>{"vips[0].backends[6]: no port reaches 2001:db8:9::1 (give a port a connected prefix or gateway "
                  "for it, or set via)"});
  // via naming no port.
  Config badvia = c;
  badvia.vips[0].backends[0].via = "nope";
  SnapshotBuilder sb3;
  EXPECT_EQ(sb3.build(badvia, rt).errors,
            std::vector<std::string>{"vips[0].backends[0]: no port reaches 10.2.0.5 (give a port a connected prefix "
                                     "or gateway for it, or set via)"});
}

TEST(SnapshotBuilderErrors, PortCountMismatch) {
  Config c = baseConfig();
  SnapshotBuilder sb;
  BuildResult r = sb.build(c, {});
  EXPECT_EQ(r.snapshot, nullptr);
  EXPECT_EQ(r.errors, std::vector<std::string>{"ports: 1 configured, at most 8"});
}


// ---------------------------------------------------------------------------------------------
// Dynamic state: health, drains, weights set at run time, resolved neighbours, all-down policy

namespace dyn {

std::set<uint32_t> inMaglev(const Snapshot& s, size_t vip) {
  return std::set<uint32_t>(s.vips.at(vip).maglev.begin(), s.vips.at(vip).maglev.end());
}

std::unique_ptr<Snapshot> build(SnapshotBuilder& sb, const Config& c, const DynamicState& d,
                                std::vector<PortRuntime> rt = {}) {
  if (rt.empty()) rt = runtimeFor(c);
  BuildResult r = sb.build(c, rt, &d);
  EXPECT_NE(r.snapshot, nullptr) << r.joined();
  return std::move(r.snapshot);
}

}  // namespace dyn

TEST(SnapshotBuilderDynamic, DownDrainedAndWeightOverrides) {
  SnapshotBuilder sb;
  Config c = baseConfig();
  c.vips[0].backends[2].weight = 0;  // 10.0.0.13: draining from the file
  DynamicState d;
  const std::string b11 = backendIdentity(c.vips[0], c.vips[0].backends[0]);
  const std::string b12 = backendIdentity(c.vips[0], c.vips[0].backends[1]);
  EXPECT_EQ(b11, "192.0.2.1/80/tcp|10.0.0.11:0");
  d.backends[b11].down = true;
  auto s = dyn::build(sb, c, d);
  ASSERT_TRUE(s);
  auto ids = idsOf(*s, 0);
  EXPECT_EQ(s->backend(ids["10.0.0.11"])->state, BackendState::Unhealthy);
  EXPECT_EQ(s->backend(ids["10.0.0.12"])->state, BackendState::Healthy);
  EXPECT_EQ(s->backend(ids["10.0.0.13"])->state, BackendState::Draining);
  EXPECT_EQ(dyn::inMaglev(*s, 0), std::set<uint32_t>{ids["10.0.0.12"]});

  // Drain by command; weight raised by command on 13 brings it back into service.
  DynamicState d2;
  d2.backends[b12].drained = true;
  d2.backends[backendIdentity(c.vips[0], c.vips[0].backends[2])].weight = 3;
  s = dyn::build(sb, c, d2);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->backend(ids["10.0.0.12"])->state, BackendState::Draining);
  EXPECT_EQ(s->backend(ids["10.0.0.13"])->state, BackendState::Healthy);
  EXPECT_EQ(s->backend(ids["10.0.0.13"])->weight, 3);
  EXPECT_EQ(dyn::inMaglev(*s, 0), (std::set<uint32_t>{ids["10.0.0.11"], ids["10.0.0.13"]}));
  // Weights 1:3 in the table.
  size_t n11 = std::count(s->vips[0].maglev.begin(), s->vips[0].maglev.end(), ids["10.0.0.11"]);
  size_t n13 = std::count(s->vips[0].maglev.begin(), s->vips[0].maglev.end(), ids["10.0.0.13"]);
  EXPECT_NEAR(double(n13) / double(n11), 3.0, 0.3);

  // Down beats drained: a backend that cannot answer loses its flows.
  d2.backends[b12].down = true;
  s = dyn::build(sb, c, d2);
  EXPECT_EQ(s->backend(ids["10.0.0.12"])->state, BackendState::Unhealthy);
}

TEST(SnapshotBuilderDynamic, AllDownDropsOrKeepsTheLastSetInService) {
  for (AllDownPolicy policy : {AllDownPolicy::Drop, AllDownPolicy::Keep}) {
    SnapshotBuilder sb;
    Config c = baseConfig();
    c.vips[0].on_all_down = policy;
    DynamicState d;
    d.backends[backendIdentity(c.vips[0], c.vips[0].backends[0])].down = true;
    auto s = dyn::build(sb, c, d);  // 12 and 13 in service
    ASSERT_TRUE(s);
    auto ids = idsOf(*s, 0);
    for (auto& b : c.vips[0].backends) d.backends[backendIdentity(c.vips[0], b)].down = true;
    s = dyn::build(sb, c, d);
    ASSERT_TRUE(s);
    if (policy == AllDownPolicy::Drop) {
      EXPECT_TRUE(s->vips[0].maglev.empty() ||
                  std::all_of(s->vips[0].maglev.begin(), s->vips[0].maglev.end(), [](uint32_t id) { return id == kNoBackend; }));
      EXPECT_EQ(s->backend(ids["10.0.0.12"])->state, BackendState::Unhealthy);
    } else {
      EXPECT_EQ(dyn::inMaglev(*s, 0), (std::set<uint32_t>{ids["10.0.0.12"], ids["10.0.0.13"]}));
      EXPECT_EQ(s->backend(ids["10.0.0.12"])->state, BackendState::Healthy);
      EXPECT_EQ(s->backend(ids["10.0.0.11"])->state, BackendState::Unhealthy);
      // One comes back: only it is in service again, the fallback ends.
      d.backends[backendIdentity(c.vips[0], c.vips[0].backends[0])].down = false;
      s = dyn::build(sb, c, d);
      EXPECT_EQ(dyn::inMaglev(*s, 0), std::set<uint32_t>{ids["10.0.0.11"]});
      EXPECT_EQ(s->backend(ids["10.0.0.12"])->state, BackendState::Unhealthy);
    }
  }
}

TEST(SnapshotBuilderDynamic, UnresolvedNeighboursAreOutOfServiceUntilLearned) {
  SnapshotBuilder sb;
  Config c = baseConfig();
  c.ports[0].exception_path = ExceptionPath::Tap;
  c.ports[0].kernel_iface = "l4lb-lan";
  c.ports[0].gateway4 = ipAddr("10.0.0.254");
  c.vips[0].backends[1].mac.reset();                            // 10.0.0.12: resolved by the kernel
  c.vips[0].backends.push_back(makeBackend("203.0.113.9", ""));  // behind the gateway
  c.vips[0].backends[2].mac.reset();  // 10.0.0.13: a static [[neighbours]] entry
  c.neighbours.push_back({ipAddr("10.0.0.13"), macAddr("02:00:00:00:01:33")});
  auto want = SnapshotBuilder::neighboursToResolve(c);
  std::vector<std::string> names;
  for (auto& [a, ifn] : want) names.push_back(a.str() + "%" + ifn);
  EXPECT_EQ(names, (std::vector<std::string>{"10.0.0.254%l4lb-lan", "10.0.0.12%l4lb-lan"}));

  DynamicState d;
  auto s = dyn::build(sb, c, d);
  ASSERT_TRUE(s);
  auto ids = idsOf(*s, 0);
  EXPECT_EQ(s->backend(ids["10.0.0.12"])->state, BackendState::Unhealthy);
  EXPECT_EQ(s->backend(ids["203.0.113.9"])->state, BackendState::Unhealthy);
  EXPECT_FALSE(s->ports[0].has_gw4);
  EXPECT_EQ(dyn::inMaglev(*s, 0), (std::set<uint32_t>{ids["10.0.0.11"], ids["10.0.0.13"]}));

  d.resolved["10.0.0.12"] = macAddr("02:00:00:00:01:22");
  d.resolved["10.0.0.254"] = macAddr("02:00:00:00:0f:fe");
  d.resolved["10.0.0.13"] = macAddr("02:00:00:00:99:99");  // static entries win
  s = dyn::build(sb, c, d);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->backend(ids["10.0.0.12"])->state, BackendState::Healthy);
  EXPECT_EQ(s->backend(ids["10.0.0.12"])->next_hop_mac, macAddr("02:00:00:00:01:22"));
  EXPECT_EQ(s->backend(ids["203.0.113.9"])->next_hop_mac, macAddr("02:00:00:00:0f:fe"));
  EXPECT_EQ(s->backend(ids["10.0.0.13"])->next_hop_mac, macAddr("02:00:00:00:01:33"));
  EXPECT_TRUE(s->ports[0].has_gw4);
  EXPECT_EQ(dyn::inMaglev(*s, 0).size(), 4u);
}

TEST(SnapshotBuilderDynamic, TapPortsArePairedWithTheirPort) {
  SnapshotBuilder sb;
  Config c = baseConfig();
  c.ports.push_back(makePort("wan", "198.18.0.1/24"));
  c.ports[1].exception_path = ExceptionPath::Tap;
  auto rt = runtimeFor(c);
  rt[1].tap_port_id = 7;
  auto s = dyn::build(sb, c, DynamicState{}, rt);
  ASSERT_TRUE(s);
  ASSERT_EQ(s->ports.size(), 3u);
  EXPECT_EQ(s->ports[0].kernel_port, -1);
  EXPECT_EQ(s->ports[1].kernel_port, 2);
  EXPECT_TRUE(s->ports[2].is_kernel);
  EXPECT_EQ(s->ports[2].kernel_port, 1);
  EXPECT_EQ(s->ports[2].port_id, 7);
  EXPECT_EQ(s->ports[2].mac, s->ports[1].mac);
  EXPECT_EQ(s->port_index_by_id.at(7), 2);
}

TEST(SnapshotBuilder, VipAddressMap) {
  SnapshotBuilder sb;
  Config c = baseConfig();
  c.vips.push_back(makeVip("192.0.2.1", 443, Proto::Tcp, {makeBackend("10.0.0.21", "02:00:00:00:02:01")}));
  c.vips.push_back(makeVip("192.0.2.2", 53, Proto::Udp, {makeBackend("10.0.0.22", "02:00:00:00:02:02")}));
  auto s = mustBuild(sb, c);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->vip_addrs.size(), 2u);
  const uint32_t* a = s->vip_addrs.find(AddrKey::make(ipAddr("192.0.2.1")));
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(*a, 0u);
  const uint32_t* b = s->vip_addrs.find(AddrKey::make(ipAddr("192.0.2.2")));
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(*b, 2u);
  EXPECT_EQ(s->vip_addrs.find(AddrKey::make(ipAddr("192.0.2.3"))), nullptr);
}

}  // namespace
}  // namespace l4lb::control
