// Two real sync services in one process on 127.0.0.1 UDP sockets, with fake worker rings
// (rte_ring element rings of SyncFlow, as createSyncRings makes them): what a worker of A puts
// in its sync_out ring comes out of the owning worker's sync_in ring at B, and nothing from a
// forged, replayed or stranger's datagram ever does. Each refusal has a negative control: the
// same datagram with the right key, to a receiver that has not seen it, or from the peer's
// address, does come through.
#include "control/sync/sync_service.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <rte_ethdev.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <thread>
#include <vector>

#include "control/sync/sync_status.h"

namespace l4lb::control::sync {
namespace {

using namespace std::chrono_literals;

const IpAddr kLo = IpAddr::parse("127.0.0.1").value();

SyncKey keyOf(uint8_t seed) {
  SyncKey k;
  for (size_t i = 0; i < k.size(); i++) k[i] = uint8_t(seed ^ (i * 13));
  return k;
}

rte_ring* makeRing() {
  static int seq = 0;
  const std::string name = "sync_svc_test_" + std::to_string(seq++);
  rte_ring* r = rte_ring_create_elem(name.c_str(), sizeof(SyncFlow), 1024, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
  EXPECT_NE(r, nullptr);
  return r;
}

// A UDP socket on 127.0.0.1 (port 0: any free one).
struct Udp {
  int fd = -1;
  uint16_t port = 0;
  explicit Udp(uint16_t p = 0) {
    fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(p);
    EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0) << std::strerror(errno);
    socklen_t l = sizeof(a);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &l);
    port = ntohs(a.sin_port);
  }
  ~Udp() { close(); }
  void close() {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
  void sendTo(uint16_t p, const std::vector<uint8_t>& d) const {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(p);
    ASSERT_EQ(::sendto(fd, d.data(), d.size(), 0, reinterpret_cast<sockaddr*>(&a), sizeof(a)), ssize_t(d.size()));
  }
  // One datagram, waiting up to 3 s.
  std::vector<uint8_t> receive() const {
    timeval tv{3, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    std::vector<uint8_t> b(2048);
    const ssize_t n = ::recv(fd, b.data(), b.size(), 0);
    b.resize(n > 0 ? size_t(n) : 0);
    return b;
  }
};

// A free port: bound, then released for a service to take.
uint16_t freePort() { return Udp().port; }

SyncFlow flow(const char* src, uint16_t sport, const char* dst, uint16_t dport, uint8_t proto, const char* backend) {
  SyncFlow f;
  IpAddr s = IpAddr::parse(src).value(), d = IpAddr::parse(dst).value(), b = IpAddr::parse(backend).value();
  f.v6 = !s.isV4();
  f.backend_v6 = !b.isV4();
  f.proto = proto;
  f.state = proto == IPPROTO_TCP ? 1 : 3;
  f.sport_be = htons(sport);
  f.dport_be = htons(dport);
  std::memcpy(f.src, s.bytes.data(), 16);
  std::memcpy(f.dst, d.bytes.data(), 16);
  std::memcpy(f.backend, b.bytes.data(), 16);
  f.generation = 5;
  return f;
}

// Two workers whose one port's RETA sends every flow to queue 1: worker 1 owns everything.
FlowOwner worker1Owns() {
  PortRss p;
  p.rx_queues = 2;
  p.rss = true;
  p.key.assign(40, 0x6d);
  p.hash_types = RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP;
  p.reta.assign(128, 1);
  return FlowOwner(2, {p});
}

// A service on 127.0.0.1:port with `workers` fake workers.
struct Node {
  std::vector<rte_ring*> out, in;
  std::unique_ptr<SyncService> svc;
  Node(uint16_t port, std::vector<uint16_t> peer_ports, const SyncKey& key, FlowOwner owner) {
    SyncServiceOptions o;
    o.listen = {kLo, port};
    for (uint16_t p : peer_ports) o.peers.push_back({kLo, p});
    o.key = key;
    for (unsigned w = 0; w < owner.workers(); w++) {
      out.push_back(makeRing());
      in.push_back(makeRing());
    }
    o.out_rings = out;
    o.in_rings = in;
    o.owner = std::move(owner);
    svc = std::make_unique<SyncService>(std::move(o));
    std::string err;
    EXPECT_TRUE(svc->start(err)) << err;
  }
  ~Node() {
    svc->stop();
    for (rte_ring* r : out) rte_ring_free(r);
    for (rte_ring* r : in) rte_ring_free(r);
  }
  std::vector<SyncFlow> take(size_t w) {
    std::vector<SyncFlow> got(1024);
    got.resize(rte_ring_sc_dequeue_burst_elem(in[w], got.data(), sizeof(SyncFlow), 1024, nullptr));
    return got;
  }
};

// Waits up to 3 s for `done`.
bool eventually(const std::function<bool()>& done) {
  for (auto end = std::chrono::steady_clock::now() + 3s; std::chrono::steady_clock::now() < end;) {
    if (done()) return true;
    std::this_thread::sleep_for(2ms);
  }
  return done();
}

uint64_t rejected(const SyncStatus& s, SyncReject r) { return s.rejected[size_t(r)]; }

bool sameFlow(const SyncFlow& a, const SyncFlow& b) {
  return a.v6 == b.v6 && a.proto == b.proto && a.state == b.state && a.backend_v6 == b.backend_v6 &&
         a.sport_be == b.sport_be && a.dport_be == b.dport_be && a.backend_port_be == b.backend_port_be &&
         std::memcmp(a.src, b.src, 16) == 0 && std::memcmp(a.dst, b.dst, 16) == 0 &&
         std::memcmp(a.backend, b.backend, 16) == 0 && a.idle_ms == b.idle_ms && a.generation == b.generation;
}

uint64_t wallMs() {
  return uint64_t(std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count());
}

std::vector<uint8_t> datagram(const std::vector<SyncFlow>& fs, const SyncKey& key, uint64_t boot, uint64_t seq,
                              uint64_t send_ms = wallMs()) {
  SyncHeader h;
  h.boot_id = boot;
  h.sequence = seq;
  h.send_ms = send_ms;
  std::vector<uint8_t> d(kMaxSyncDatagramBytes);
  d.resize(encodeSyncDatagram(h, fs, key, d));
  return d;
}

TEST(SyncService, RecordsFromASyncOutArriveInTheOwnersSyncIn) {
  const SyncKey key = keyOf(1);
  const uint16_t pa = freePort(), pb = freePort();
  Node a(pa, {pb}, key, FlowOwner(1, {}));
  Node b(pb, {pa}, key, worker1Owns());
  std::vector<SyncFlow> sent = {flow("198.18.41.5", 40000, "198.18.42.100", 80, IPPROTO_TCP, "198.18.40.21"),
                                flow("198.18.41.6", 5353, "198.18.42.100", 53, IPPROTO_UDP, "198.18.40.22"),
                                flow("2001:db8:41::5", 50000, "2001:db8:42::100", 443, IPPROTO_TCP, "2001:db8:40::21"),
                                flow("2001:db8:41::6", 1234, "2001:db8:42::100", 53, IPPROTO_UDP, "2001:db8:40::22")};
  for (uint16_t i = 0; i < 40; i++)  // 44 in all: three datagrams or more
    sent.push_back(flow("198.18.41.9", uint16_t(10000 + i), "198.18.42.100", 80, IPPROTO_TCP, "198.18.40.21"));
  ASSERT_EQ(rte_ring_sp_enqueue_bulk_elem(a.out[0], sent.data(), sizeof(SyncFlow), unsigned(sent.size()), nullptr),
            sent.size());
  std::vector<SyncFlow> got;
  ASSERT_TRUE(eventually([&] {
    for (const SyncFlow& f : b.take(1)) got.push_back(f);
    return got.size() >= sent.size();
  })) << got.size();
  ASSERT_EQ(got.size(), sent.size());
  for (size_t i = 0; i < sent.size(); i++) EXPECT_TRUE(sameFlow(got[i], sent[i])) << i;
  EXPECT_TRUE(b.take(0).empty());  // worker 0 owns none of them
  const SyncStatus sa = a.svc->status(), sb = b.svc->status();
  EXPECT_EQ(sa.records_out, sent.size());
  EXPECT_GE(sa.datagrams_out, 3u);
  EXPECT_EQ(sa.peers.at(0).records_out, sent.size());
  EXPECT_EQ(sb.records_in, sent.size());
  EXPECT_EQ(sb.delivered, sent.size());
  EXPECT_EQ(sb.ring_full, 0u);
  EXPECT_GE(sb.peers.at(0).last_heard_ms_ago, 0);
  EXPECT_GE(sb.lag_count, 3u);
  for (size_t r = 0; r < size_t(SyncReject::Count); r++) EXPECT_EQ(sb.rejected[r], 0u) << kSyncRejectNames[r];
  const nlohmann::json j = syncStatusJson(sb);
  EXPECT_EQ(j["peers"][0]["address"], "127.0.0.1:" + std::to_string(pa));
  EXPECT_EQ(j["totals"]["records_in"], sent.size());
  EXPECT_EQ(j["totals"]["rejected"]["bad_mac"], 0);
  // And the other way, B -> A (A's one worker owns everything).
  SyncFlow back = sent[2];
  ASSERT_EQ(rte_ring_sp_enqueue_elem(b.out[1], &back, sizeof(SyncFlow)), 0);
  std::vector<SyncFlow> atA;
  ASSERT_TRUE(eventually([&] {
    atA = a.take(0);
    return !atA.empty();
  }));
  EXPECT_TRUE(sameFlow(atA.at(0), back));
}

TEST(SyncService, ForgedDatagramDeliversNothing) {
  const SyncKey key = keyOf(2);
  Udp peer;  // plays the configured peer
  const uint16_t pb = freePort();
  Node b(pb, {peer.port}, key, worker1Owns());
  const std::vector<SyncFlow> fs = {flow("198.18.41.5", 40000, "198.18.42.100", 80, IPPROTO_TCP, "198.18.40.66")};
  const uint64_t boot = 77, now = wallMs();
  peer.sendTo(pb, datagram(fs, keyOf(3), boot, 1, now));  // another key
  ASSERT_TRUE(eventually([&] { return rejected(b.svc->status(), SyncReject::BadMac) == 1; }));
  EXPECT_EQ(b.svc->status().peers[0].rejected[size_t(SyncReject::BadMac)], 1u);
  // One flipped bit of a datagram made with the right key.
  auto flipped = datagram(fs, key, boot, 1, now);
  flipped[32 + 44] ^= 1;  // the backend's first byte: a redirect attempt
  peer.sendTo(pb, flipped);
  ASSERT_TRUE(eventually([&] { return rejected(b.svc->status(), SyncReject::BadMac) == 2; }));
  EXPECT_TRUE(b.take(1).empty());
  EXPECT_TRUE(b.take(0).empty());
  EXPECT_EQ(b.svc->status().records_in, 0u);
  // Negative control: the same records, header and source with the right key come through.
  peer.sendTo(pb, datagram(fs, key, boot, 1, now));
  std::vector<SyncFlow> got;
  ASSERT_TRUE(eventually([&] {
    got = b.take(1);
    return !got.empty();
  }));
  EXPECT_TRUE(sameFlow(got.at(0), fs[0]));
}

TEST(SyncService, ReplayedCapturedDatagramDeliversNothing) {
  const SyncKey key = keyOf(4);
  // A real sender A, whose datagrams a capture socket also receives (a second peer of A).
  Udp capture;
  const uint16_t pa = freePort(), pb = freePort();
  auto a = std::make_unique<Node>(pa, std::vector<uint16_t>{pb, capture.port}, key, FlowOwner(1, {}));
  Node b(pb, {pa}, key, worker1Owns());
  SyncFlow f = flow("2001:db8:41::7", 40000, "2001:db8:42::100", 443, IPPROTO_TCP, "2001:db8:40::21");
  ASSERT_EQ(rte_ring_sp_enqueue_elem(a->out[0], &f, sizeof(SyncFlow)), 0);
  ASSERT_TRUE(eventually([&] { return b.svc->status().records_in == 1; }));
  ASSERT_EQ(b.take(1).size(), 1u);
  // The captured copy: A's datagram with the record (skip heartbeats, which have no records).
  std::vector<uint8_t> captured;
  for (int i = 0; i < 10 && captured.size() != syncDatagramBytes(1); i++) captured = capture.receive();
  ASSERT_EQ(captured.size(), syncDatagramBytes(1));
  // A goes away; the attacker sends the capture from A's own address and port.
  a.reset();
  Udp spoof(pa);
  const uint64_t before = rejected(b.svc->status(), SyncReject::Replay);
  spoof.sendTo(pb, captured);
  ASSERT_TRUE(eventually([&] { return rejected(b.svc->status(), SyncReject::Replay) == before + 1; }));
  EXPECT_TRUE(b.take(1).empty());
  EXPECT_EQ(b.svc->status().records_in, 1u);
  // Negative control: a receiver that never saw it accepts the very same bytes.
  const uint16_t pc = freePort();
  Node c(pc, {pa}, key, worker1Owns());
  spoof.sendTo(pc, captured);
  std::vector<SyncFlow> got;
  ASSERT_TRUE(eventually([&] {
    got = c.take(1);
    return !got.empty();
  }));
  EXPECT_TRUE(sameFlow(got.at(0), f));
}

TEST(SyncService, UnknownSourceAndOldBoot) {
  const SyncKey key = keyOf(5);
  Udp peer, stranger;
  const uint16_t pb = freePort();
  Node b(pb, {peer.port}, key, worker1Owns());
  const std::vector<SyncFlow> fs = {flow("198.18.41.5", 1, "198.18.42.100", 80, IPPROTO_TCP, "198.18.40.21")};
  const uint64_t t0 = wallMs();
  const auto d = datagram(fs, key, 100, 1, t0);
  stranger.sendTo(pb, d);  // right key, fresh, but not from a peer's address:port
  ASSERT_TRUE(eventually([&] { return rejected(b.svc->status(), SyncReject::UnknownPeer) == 1; }));
  EXPECT_TRUE(b.take(1).empty());
  peer.sendTo(pb, d);  // negative control: the same bytes from the peer
  ASSERT_TRUE(eventually([&] { return b.take(1).size() == 1; }));
  // The peer restarts (boot 101, later send time): accepted; then boot 100's next datagram,
  // genuine but from before the restart, is stale.
  peer.sendTo(pb, datagram(fs, key, 101, 1, t0 + 5));
  ASSERT_TRUE(eventually([&] { return b.take(1).size() == 1; }));
  peer.sendTo(pb, datagram(fs, key, 100, 2, t0 + 1));
  ASSERT_TRUE(eventually([&] { return rejected(b.svc->status(), SyncReject::Stale) == 1; }));
  EXPECT_TRUE(b.take(1).empty());
  // Truncated and oversize datagrams are refused by length.
  auto cut = datagram(fs, key, 101, 2, t0 + 6);
  cut.pop_back();
  peer.sendTo(pb, cut);
  std::vector<uint8_t> big(3000, 0);
  peer.sendTo(pb, big);
  ASSERT_TRUE(eventually([&] {
    const SyncStatus s = b.svc->status();
    return rejected(s, SyncReject::Truncated) == 1 && rejected(s, SyncReject::BadMagic) == 1;
  }));
  EXPECT_EQ(b.svc->status().records_in, 2u);
}

TEST(SyncService, FullRingIsCountedNotBlocking) {
  const SyncKey key = keyOf(6);
  Udp peer;
  const uint16_t pb = freePort();
  Node b(pb, {peer.port}, key, FlowOwner(1, {}));
  // Fill the worker's ring (1023 usable slots) so that the next records find it full.
  std::vector<SyncFlow> filler(1023, flow("198.18.41.5", 1, "198.18.42.100", 80, IPPROTO_TCP, "198.18.40.21"));
  ASSERT_EQ(rte_ring_sp_enqueue_bulk_elem(b.in[0], filler.data(), sizeof(SyncFlow), 1023, nullptr), 1023u);
  const std::vector<SyncFlow> fs(3, flow("198.18.41.5", 2, "198.18.42.100", 80, IPPROTO_TCP, "198.18.40.21"));
  peer.sendTo(pb, datagram(fs, key, 9, 1));
  ASSERT_TRUE(eventually([&] { return b.svc->status().ring_full == 3; }));
  EXPECT_EQ(b.svc->status().records_in, 3u);
  EXPECT_EQ(b.svc->status().delivered, 0u);
}

TEST(SyncService, BindFailureIsAClearError) {
  Udp taken;
  SyncServiceOptions o;
  o.listen = {kLo, taken.port};
  o.peers = {{kLo, 9}};
  SyncService s(std::move(o));
  std::string err;
  EXPECT_FALSE(s.start(err));
  EXPECT_EQ(err, "sync.listen 127.0.0.1:" + std::to_string(taken.port) + ": bind: Address already in use");
}

}  // namespace
}  // namespace l4lb::control::sync
