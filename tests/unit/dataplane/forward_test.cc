// Forwarding rewrites from the snapshot's precomputed per-backend constants (BackendRewrite):
// encapFast must give the bytes the generic field-by-field writer (encapsulate) gives, for every
// inner x outer family, ipip and gue, DF on and off, any TOS, and its fallbacks (too big, no
// headroom, chained mbuf) must be the generic path's; forwardNat's checksums, updated by the
// precomputed RFC 1624 differences, must equal checksums recomputed from scratch over random
// packets. Snapshots come from the real SnapshotBuilder; expected NAT frames from the test
// PacketBuilder (its own checksum code).
#include "dataplane/forward.h"

#include <gtest/gtest.h>

#include <rte_byteorder.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include <memory>
#include <random>
#include <string>
#include <vector>

#include "burst_harness.h"
#include "control/snapshot_builder.h"
#include "packet_builder.h"
#include "topology.h"

namespace l4lb::dataplane {
namespace {

using namespace test::topo;  // NOLINT(google-build-using-namespace): tests/common/topology.h

const MacAddr kBackendMac = macAddr("02:00:00:00:01:01");

rte_mempool* pool() { return test::burstPool(); }

struct MbufDeleter {
  void operator()(rte_mbuf* m) const { rte_pktmbuf_free(m); }
};
using Mbuf = std::unique_ptr<rte_mbuf, MbufDeleter>;

// `f` in one mbuf with `headroom` bytes before it; or, with `tail` > 0, its last `tail` bytes in a
// second segment.
Mbuf toMbuf(const Frame& f, uint16_t headroom = RTE_PKTMBUF_HEADROOM, size_t tail = 0) {
  Mbuf m(rte_pktmbuf_alloc(pool()));
  if (!m) return m;
  m->data_off = headroom;
  const size_t first = f.size() - tail;
  auto* p = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(m.get(), uint16_t(first)));
  if (p == nullptr) return nullptr;
  std::memcpy(p, f.data(), first);
  if (tail > 0) {
    rte_mbuf* seg = rte_pktmbuf_alloc(pool());
    if (seg == nullptr) return nullptr;
    std::memcpy(rte_pktmbuf_append(seg, uint16_t(tail)), f.data() + first, tail);
    if (rte_pktmbuf_chain(m.get(), seg) != 0) {
      rte_pktmbuf_free(seg);
      return nullptr;
    }
  }
  return m;
}

// Every byte of the packet, across segments, plus where it starts in the first buffer.
Frame bytesOf(const rte_mbuf* m) {
  Frame f(rte_pktmbuf_pkt_len(m));
  const void* p = rte_pktmbuf_read(m, 0, uint32_t(f.size()), f.data());
  if (p != f.data()) std::memcpy(f.data(), p, f.size());
  return f;
}

// wan (clients, through a gateway) + lan (backends, connected; MTU `lan_mtu`).
Config topology(uint16_t lan_mtu = 1500) {
  Config c = test::topo::topology({.lan4 = "198.19.0.1/16", .lan6 = "2001:db8:1::1/64"});
  c.ports[1].mtu = lan_mtu;
  return c;
}

VipConfig vipOf(const IpAddr& addr, uint16_t port, Proto proto, FwdMode mode, const IpAddr& backend,
                uint16_t backend_port = 0) {
  VipConfig v;
  v.address = addr;
  v.port = port;
  v.protocol = proto;
  v.forwarding = mode;
  v.maglev_table_size = 251;
  BackendConfig b;
  b.address = backend;
  b.mac = kBackendMac;
  b.weight = 1;
  b.port = backend_port;
  v.backends.push_back(b);
  return v;
}

const IpAddr kVip4 = ipAddr("198.18.200.1");
const IpAddr kVip6 = ipAddr("2001:db8:200::1");
const IpAddr kClient4 = ipAddr("198.18.100.7");
const IpAddr kClient6 = ipAddr("2001:db8:c::7");
const IpAddr kB4 = ipAddr("198.19.0.11");
const IpAddr kB6 = ipAddr("2001:db8:1::11");

PacketInfo parse(const Frame& f) {
  PacketInfo pi;
  EXPECT_EQ(parsePacket(f.data(), uint32_t(f.size()), pi).verdict, Parse::Ok);
  return pi;
}

struct Case {
  Family inner, outer;
  FwdMode mode;
  bool df;
  uint8_t tos;
  bool vlan;
  size_t pad_to;  // 0: no Ethernet padding
  uint16_t payload;
};

std::string describe(const Case& c) {
  return std::string(toString(c.mode)) + " inner v" + (c.inner == Family::V4 ? "4" : "6") + " outer v" +
         (c.outer == Family::V4 ? "4" : "6") + (c.df ? " df" : "") + " tos " + std::to_string(c.tos) +
         (c.vlan ? " vlan" : "") + " pad " + std::to_string(c.pad_to) + " payload " + std::to_string(c.payload);
}

Frame clientFrame(const Case& c, uint16_t sport) {
  PacketBuilder b;
  b.eth(kClientMac, kWanMac);
  if (c.vlan) b.vlan(100);
  if (c.inner == Family::V4) {
    b.ipv4(kClient4, kVip4).tos(c.tos).ipId(0x1234).df(c.df).tcp(sport, 80, kTcpAck);
  } else {
    b.ipv6(kClient6, kVip6).tos(c.tos).udp(sport, 53);
  }
  b.payload(c.payload);
  if (c.pad_to) b.padTo(c.pad_to);
  return b.build();
}

Config tunnelConfig(const Case& c, uint16_t lan_mtu = 1500) {
  Config cfg = topology(lan_mtu);
  const IpAddr& backend = c.outer == Family::V4 ? kB4 : kB6;
  cfg.vips.push_back(c.inner == Family::V4 ? vipOf(kVip4, 80, Proto::Tcp, c.mode, backend)
                                           : vipOf(kVip6, 53, Proto::Udp, c.mode, backend));
  return cfg;
}

// Runs one frame through the fast path and through the generic writer; both results and the
// output bytes must be the same.
void expectSameAsGeneric(const Case& c, const Snapshot& s, const Frame& in, uint16_t headroom, size_t tail,
                         uint32_t flow_hash, uint16_t ip_id, FwdResult* fast_result = nullptr,
                         Frame* fast_bytes = nullptr) {
  const SnapVip& v = s.vips[0];
  const SnapBackend& b = s.backends[v.backends[0]];
  const PacketInfo pi = parse(in);
  Mbuf mf = toMbuf(in, headroom, tail), mg = toMbuf(in, headroom, tail);
  ASSERT_TRUE(mf && mg);
  const bool gue = c.mode == FwdMode::Gue;
  const FwdResult rf = gue ? forwardGue(mf.get(), pi, v, b, s, flow_hash, kWan, ip_id)
                           : forwardIpip(mf.get(), pi, v, b, s, flow_hash, kWan, ip_id);
  const FwdResult rg = encapsulate(mg.get(), pi, v, b, s, flow_hash, kWan, ip_id);
  EXPECT_EQ(rf.drop, rg.drop);
  EXPECT_EQ(rf.egress, rg.egress);
  EXPECT_EQ(rf.outcome, rg.outcome);
  EXPECT_EQ(rf.frag_mtu, rg.frag_mtu);
  if (rf.outcome != FwdOutcome::Dropped) {
    EXPECT_EQ(bytesOf(mf.get()), bytesOf(mg.get()));
    EXPECT_EQ(mf->data_off, mg->data_off);
    EXPECT_EQ(rte_pktmbuf_data_len(mf.get()), rte_pktmbuf_data_len(mg.get()));
  }
  if (fast_result) *fast_result = rf;
  if (fast_bytes) *fast_bytes = bytesOf(mf.get());
}

TEST(EncapTemplate, SameBytesAsGenericWriter) {
  int checked = 0;
  for (FwdMode mode : {FwdMode::Ipip, FwdMode::Gue})
    for (Family inner : {Family::V4, Family::V6})
      for (Family outer : {Family::V4, Family::V6})
        for (bool df : {false, true}) {
          if (inner == Family::V6 && !df) continue;  // IPv6 has no DF bit: always "set"
          for (uint8_t tos : {uint8_t(0), uint8_t(0x28), uint8_t(0xff)})
            for (bool vlan : {false, true})
              for (size_t pad_to : {size_t(0), size_t(96)}) {
                const Case c{inner, outer, mode, df, tos, vlan, pad_to, uint16_t(pad_to ? 0 : 333)};
                SCOPED_TRACE(describe(c));
                SnapshotBuilder sb;
                auto s = build(sb, tunnelConfig(c));
                ASSERT_TRUE(s);
                const Frame in = clientFrame(c, 40000);
                const uint32_t hash = 0x9e3779b9u * uint32_t(checked + 1);
                const uint16_t id = uint16_t(0xfff0 + checked);  // wraps through 0xffff
                FwdResult r;
                Frame out;
                expectSameAsGeneric(c, *s, in, RTE_PKTMBUF_HEADROOM, 0, hash, id, &r, &out);
                ASSERT_EQ(r.outcome, FwdOutcome::Sent);
                EXPECT_EQ(r.egress, kLan);
                // The fields that vary per packet, checked against the input directly.
                const size_t ip_len = outer == Family::V4 ? 20 : 40;
                const size_t inner_off = 14 + ip_len + (mode == FwdMode::Gue ? 8 : 0);
                const Frame inner_ip(in.begin() + (vlan ? 18 : 14),
                                     in.begin() + std::ptrdiff_t((vlan ? 18 : 14) + parse(in).l3_len));
                ASSERT_EQ(out.size(), inner_off + inner_ip.size());
                EXPECT_EQ(Frame(out.begin() + std::ptrdiff_t(inner_off), out.end()), inner_ip);
                if (outer == Family::V4) {
                  EXPECT_EQ(out[15], tos);
                  EXPECT_EQ(get16(out, 16), out.size() - 14);
                  EXPECT_EQ(get16(out, 18), id);
                  EXPECT_EQ(get16(out, 20), df ? 0x4000 : 0);
                  EXPECT_TRUE(test::ipv4HeaderChecksumOk(out, 14));
                } else {
                  EXPECT_EQ((get16(out, 14) >> 4) & 0xff, tos);
                  EXPECT_EQ((uint32_t(get16(out, 15)) << 8 | out[17]) & 0xfffff, hash & 0xfffff);
                  EXPECT_EQ(get16(out, 18), out.size() - 54);
                }
                if (mode == FwdMode::Gue) {
                  EXPECT_EQ(get16(out, 14 + ip_len), 0x8000 | (hash & 0x7fff));
                  EXPECT_EQ(get16(out, 14 + ip_len + 2), 6080);
                  if (outer == Family::V6) {
                    EXPECT_TRUE(test::l4ChecksumOk(out));
                  } else {
                    EXPECT_EQ(get16(out, 14 + ip_len + 6), 0);
                  }
                }
                checked++;
              }
        }
  EXPECT_EQ(checked, 2 * (2 + 1) * 2 * 3 * 2 * 2);  // modes x (inner, df) x outer x tos x vlan x pad
}

// What the fast path hands to the generic writer: the results must still be the generic ones.
TEST(EncapTemplate, FallbacksMatchGenericWriter) {
  for (FwdMode mode : {FwdMode::Ipip, FwdMode::Gue})
    for (Family outer : {Family::V4, Family::V6}) {
      const Case c{Family::V4, outer, mode, true, 0x28, false, 0, 100};
      SCOPED_TRACE(describe(c));
      SnapshotBuilder sb;
      auto s = build(sb, tunnelConfig(c));
      ASSERT_TRUE(s);
      const uint16_t overhead = uint16_t((outer == Family::V4 ? 20 : 40) + (mode == FwdMode::Gue ? 8 : 0));
      EXPECT_EQ(s->backends[s->vips[0].backends[0]].rw.max_l3_len, 1500 - overhead);
      FwdResult r;
      // Exactly fits the egress MTU after encapsulation, then one byte more (ICMP too big).
      Case fits = c;
      fits.payload = uint16_t(1500 - overhead - 40);
      expectSameAsGeneric(c, *s, clientFrame(fits, 40000), RTE_PKTMBUF_HEADROOM, 0, 7, 1, &r);
      EXPECT_EQ(r.outcome, FwdOutcome::Sent);
      Case big = c;
      big.payload = uint16_t(fits.payload + 1);
      expectSameAsGeneric(c, *s, clientFrame(big, 40000), RTE_PKTMBUF_HEADROOM, 0, 7, 1, &r);
      EXPECT_EQ(r.outcome, FwdOutcome::IcmpSent);
      EXPECT_EQ(r.egress, kWan);
      Case big_nodf = big;
      big_nodf.df = false;
      Frame out;
      expectSameAsGeneric(c, *s, clientFrame(big_nodf, 40000), RTE_PKTMBUF_HEADROOM, 0, 7, 1, &r, &out);
      if (outer == Family::V4) {
        // Outer IPv4, inner DF clear: encapsulated whole, outer DF clear, marked for outer
        // fragmentation at the egress MTU (RFC 2003 §5.1).
        EXPECT_EQ(r.outcome, FwdOutcome::Fragment);
        EXPECT_EQ(r.drop, Drop::TooBig);  // unless the caller fragments it
        EXPECT_EQ(r.egress, kLan);
        EXPECT_EQ(r.frag_mtu, 1500);
        EXPECT_EQ(out.size(), 14u + 1500 + 1);
        EXPECT_EQ(get16(out, 20), 0);  // outer DF clear
        EXPECT_TRUE(test::ipv4HeaderChecksumOk(out, 14));
      } else {
        EXPECT_EQ(r.outcome, FwdOutcome::Dropped);
        EXPECT_EQ(r.drop, Drop::TooBig);  // IPv6 outer (RFC 2473): not fragmented
        EXPECT_EQ(r.frag_mtu, 0);
      }
      // DF set: never marked for fragmentation (ICMP, above).
      Case big_df = big;
      expectSameAsGeneric(c, *s, clientFrame(big_df, 40000), RTE_PKTMBUF_HEADROOM, 0, 7, 1, &r);
      EXPECT_EQ(r.frag_mtu, 0);
      // Headroom: the old L2 header (14) plus what is there must hold the new headers.
      const uint16_t need = uint16_t(14 + overhead - 14);
      expectSameAsGeneric(c, *s, clientFrame(c, 40000), need, 0, 7, 1, &r);
      EXPECT_EQ(r.outcome, FwdOutcome::Sent);
      expectSameAsGeneric(c, *s, clientFrame(c, 40000), uint16_t(need - 1), 0, 7, 1, &r);
      EXPECT_EQ(r.drop, Drop::NoHeadroom);
      // A chained mbuf: the 26 bytes of Ethernet padding in a second segment, trimmed by the
      // generic writer.
      Case padded = c;
      padded.payload = 0;
      padded.pad_to = 80;
      expectSameAsGeneric(c, *s, clientFrame(padded, 40000), RTE_PKTMBUF_HEADROOM, 26, 7, 1, &r, &out);
      EXPECT_EQ(r.outcome, FwdOutcome::Sent);
      EXPECT_EQ(out.size(), 14u + overhead + 40);
    }
}

// ---------------------------------------------------------------------------------------------
// NAT over random packets: the output must be exactly the packet rebuilt from scratch with the
// backend's address and port and TTL - 1 (so every checksum is the recomputed one).

IpAddr randomIn(std::mt19937& rng, const std::string& prefix, Family f) {
  IpAddr a = ipAddr(prefix);
  if (f == Family::V4) {
    a.bytes[2] = uint8_t(rng());
    a.bytes[3] = uint8_t(2 + rng() % 250);  // not .0, .1 or .255
  } else {
    for (int i = 8; i < 16; i++) a.bytes[size_t(i)] = uint8_t(rng());
    a.bytes[15] |= 2;  // not ::0 or ::1
  }
  return a;
}

TEST(NatRewrite, ChecksumsEqualRecomputedOnRandomPackets) {
  std::mt19937 rng(20261125);
  int forwarded = 0, udp_zero = 0, ports_kept = 0;
  for (int iter = 0; iter < 400; iter++) {
    const Family f = rng() % 2 ? Family::V4 : Family::V6;
    const bool tcp = rng() % 2;
    const uint16_t vport = uint16_t(1 + rng() % 65535);
    const bool keep_port = rng() % 4 == 0;
    const uint16_t bport = keep_port ? 0 : uint16_t(1 + rng() % 65535);
    // VIPs outside the ports' prefixes, backends on lan, clients anywhere.
    const IpAddr vip = randomIn(rng, f == Family::V4 ? "198.18.128.0" : "2001:db8:200::", f);
    const IpAddr backend = randomIn(rng, f == Family::V4 ? "198.19.0.0" : "2001:db8:1::", f);
    const IpAddr client = randomIn(rng, f == Family::V4 ? "198.18.64.0" : "2001:db8:c::", f);
    const uint16_t cport = uint16_t(1024 + rng() % 64000);
    const uint8_t ttl = uint8_t(2 + rng() % 254), tos = uint8_t(rng());
    const uint16_t ip_id = uint16_t(rng());
    const bool df = rng() % 2;
    const bool vlan = rng() % 4 == 0;
    std::vector<uint8_t> payload(rng() % 200);
    for (auto& x : payload) x = uint8_t(rng());
    // IPv4 UDP may carry no checksum (0); it must stay 0.
    const bool no_udp_sum = f == Family::V4 && !tcp && rng() % 4 == 0;
    const uint32_t seq = uint32_t(rng()), ack = uint32_t(rng());
    SCOPED_TRACE("iteration " + std::to_string(iter) + ": " + client.str() + ":" + std::to_string(cport) + " -> " +
                 vip.str() + ":" + std::to_string(vport) + " -> " + backend.str() + ":" + std::to_string(bport) +
                 (tcp ? " tcp" : " udp"));

    Config cfg = topology();
    cfg.vips.push_back(vipOf(vip, vport, tcp ? Proto::Tcp : Proto::Udp, FwdMode::Nat, backend, bport));
    SnapshotBuilder sb;
    auto s = build(sb, cfg);
    ASSERT_TRUE(s);
    const SnapBackend& b = s->backends[s->vips[0].backends[0]];

    auto packet = [&](const MacAddr& src_mac, const MacAddr& dst_mac, const IpAddr& dst, uint16_t dport,
                      uint8_t t, bool tagged) {
      PacketBuilder p;
      p.eth(src_mac, dst_mac);
      if (tagged) p.vlan(7);
      if (f == Family::V4) p.ipv4(client, dst).ipId(ip_id).df(df);
      else p.ipv6(client, dst);
      p.tos(tos).ttl(t);
      if (tcp) p.tcp(cport, dport, kTcpAck).tcpSeq(seq, ack);
      else p.udp(cport, dport);
      p.payload(payload);
      Frame fr = p.build();
      if (no_udp_sum) test::put16(fr, tagged ? 18 + 20 + 6 : 14 + 20 + 6, 0);
      return fr;
    };
    const Frame in = packet(kClientMac, kWanMac, vip, vport, ttl, vlan);
    const Frame want = packet(kLanMac, kBackendMac, backend, bport ? bport : vport, uint8_t(ttl - 1), false);

    Mbuf m = toMbuf(in);
    ASSERT_TRUE(m);
    const FwdResult r = forwardNat(m.get(), parse(in), b, *s, kWan);
    ASSERT_EQ(r.outcome, FwdOutcome::Sent);
    EXPECT_EQ(r.egress, kLan);
    const Frame out = bytesOf(m.get());
    ASSERT_EQ(out.size(), want.size());
    EXPECT_EQ(out, want);
    if (f == Family::V4) {
      EXPECT_TRUE(test::ipv4HeaderChecksumOk(out));
    }
    if (no_udp_sum) {
      EXPECT_EQ(get16(out, 14 + 20 + 6), 0);
      udp_zero++;
    } else {
      EXPECT_TRUE(test::l4ChecksumOk(out));
    }
    if (keep_port) ports_kept++;
    forwarded++;
  }
  EXPECT_EQ(forwarded, 400);
  EXPECT_GT(udp_zero, 10);
  EXPECT_GT(ports_kept, 50);
}

// A UDP checksum that comes out as 0 after the rewrite is sent as 0xffff (RFC 768: 0 is "none").
// The client port is chosen so that the recomputed checksum is 0xffff, i.e. the one's-complement
// sum of the rewritten datagram is 0.
TEST(NatRewrite, UdpChecksumZeroSentAsAllOnes) {
  Config cfg = topology();
  cfg.vips.push_back(vipOf(kVip6, 53, Proto::Udp, FwdMode::Nat, kB6, 5353));
  SnapshotBuilder sb;
  auto s = build(sb, cfg);
  ASSERT_TRUE(s);
  const SnapBackend& b = s->backends[s->vips[0].backends[0]];
  int found = 0;
  // The client port adds to the sum once (no pseudo-header part): 1..65535 meets every class.
  for (uint32_t cport = 1; cport < 65536 && found == 0; cport++) {
    const Frame want = PacketBuilder()
                           .eth(kLanMac, kBackendMac)
                           .ipv6(kClient6, kB6)
                           .ttl(63)
                           .udp(uint16_t(cport), 5353)
                           .payload(8)
                           .build();
    if (get16(want, 14 + 40 + 6) != 0xffff) continue;
    const Frame in = PacketBuilder().eth(kClientMac, kWanMac).ipv6(kClient6, kVip6).ttl(64).udp(uint16_t(cport), 53).payload(8).build();
    Mbuf m = toMbuf(in);
    ASSERT_TRUE(m);
    ASSERT_EQ(forwardNat(m.get(), parse(in), b, *s, kWan).outcome, FwdOutcome::Sent);
    EXPECT_EQ(bytesOf(m.get()), want);
    found++;
  }
  EXPECT_EQ(found, 1);
}

TEST(NatRewrite, TtlOneAndTooBigLeaveThePacket) {
  Config cfg = topology(1400);
  cfg.vips.push_back(vipOf(kVip4, 80, Proto::Tcp, FwdMode::Nat, kB4, 8080));
  SnapshotBuilder sb;
  auto s = build(sb, cfg);
  ASSERT_TRUE(s);
  const SnapBackend& b = s->backends[s->vips[0].backends[0]];
  EXPECT_EQ(b.rw.max_l3_len, 1400);
  const Frame ttl1 = PacketBuilder().eth(kClientMac, kWanMac).ipv4(kClient4, kVip4).ttl(1).tcp(40000, 80, kTcpSyn).build();
  Mbuf m = toMbuf(ttl1);
  EXPECT_EQ(forwardNat(m.get(), parse(ttl1), b, *s, kWan).drop, Drop::TtlExceeded);
  EXPECT_EQ(bytesOf(m.get()), ttl1);
  // 1401 bytes with DF clear: dropped as too big, not fragmented; 1400 fits.
  const Frame big = PacketBuilder().eth(kClientMac, kWanMac).ipv4(kClient4, kVip4).tcp(40000, 80, kTcpAck).payload(1401 - 40).build();
  Mbuf mb = toMbuf(big);
  EXPECT_EQ(forwardNat(mb.get(), parse(big), b, *s, kWan).drop, Drop::TooBig);
  const Frame fits = PacketBuilder().eth(kClientMac, kWanMac).ipv4(kClient4, kVip4).tcp(40000, 80, kTcpAck).payload(1400 - 40).build();
  Mbuf mf = toMbuf(fits);
  EXPECT_EQ(forwardNat(mf.get(), parse(fits), b, *s, kWan).outcome, FwdOutcome::Sent);
  EXPECT_TRUE(test::l4ChecksumOk(bytesOf(mf.get())));
}

}  // namespace
}  // namespace l4lb::dataplane
