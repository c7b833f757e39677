// TCP sequence translation (src/dataplane/fullnat/tcp_seq.h). Each case builds the segment
// before and the segment it must become with the test PacketBuilder (its own checksum code), so
// an exact byte comparison checks the translated fields, the untouched ones and the RFC 1624
// checksum update at once. Headers that must not be read past their end sit against a
// PROT_NONE page.
#include "dataplane/fullnat/tcp_seq.h"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <random>
#include <stdexcept>
#include <vector>

#include "l4lb/net.h"
#include "packet_builder.h"

namespace l4lb::dataplane::fullnat {
namespace {

using test::ipAddr;
using test::PacketBuilder;
using Frame = std::vector<uint8_t>;
using Opts = std::vector<uint8_t>;

constexpr uint8_t kSyn = 0x02;
constexpr uint8_t kAck = 0x10;
constexpr uint8_t kPsh = 0x08;
constexpr uint8_t kNop = 1;

void push32(Opts& o, uint32_t v) {
  for (int i = 3; i >= 0; i--) o.push_back(uint8_t(v >> (8 * i)));
}

// RFC 2018 §3: kind 5, length, then (left, right) edges.
Opts sack(std::initializer_list<std::pair<uint32_t, uint32_t>> blocks) {
  Opts o = {5, uint8_t(2 + 8 * blocks.size())};
  for (auto [l, r] : blocks) {
    push32(o, l);
    push32(o, r);
  }
  return o;
}

Opts timestamps(uint32_t val, uint32_t ecr) {
  Opts o = {8, 10};
  push32(o, val);
  push32(o, ecr);
  return o;
}

Opts mss(uint16_t v) { return {2, 4, uint8_t(v >> 8), uint8_t(v)}; }

Opts cat(std::initializer_list<Opts> parts) {
  Opts o;
  for (const auto& p : parts) o.insert(o.end(), p.begin(), p.end());
  return o;
}

struct Seg {
  uint32_t seq = 0;
  uint32_t ack = 0;
  uint8_t flags = kAck;
  Opts opts;
  size_t payload = 0;
  bool v6 = false;
};

Frame build(const Seg& s) {
  PacketBuilder b;
  if (s.v6) b.ipv6(ipAddr("2001:db8::7"), ipAddr("2001:db8:1::11"));
  else b.ipv4(ipAddr("198.18.100.7"), ipAddr("198.19.0.11"));
  return b.tcp(40000, 80, s.flags).tcpSeq(s.seq, s.ack).tcpWindow(501).tcpOptions(s.opts).payload(s.payload).build();
}

size_t l4Off(const Frame& f) { return *test::locate(f)->l4_off; }
uint32_t hdrLen(const Frame& f) { return uint32_t(f[l4Off(f) + 12] >> 4) * 4; }
uint8_t* tcpOf(Frame& f) { return f.data() + l4Off(f); }

SeqResult toBackend(Frame& f, const SeqDelta& d) { return seqToBackend(tcpOf(f), hdrLen(f), d); }
SeqResult toClient(Frame& f, const SeqDelta& d, uint32_t isn) { return seqToClient(tcpOf(f), hdrLen(f), d, isn); }

// ---------------------------------------------------------------------------------------------

TEST(SeqDelta, ZeroAndOrder) {
  static_assert(SeqDelta{}.isZero());
  static_assert(!SeqDelta{1, 0}.isZero() && !SeqDelta{0, 1}.isZero());
  static_assert(seqBefore(0xfffffff0u, 0x10u) && !seqBefore(0x10u, 0xfffffff0u));
  static_assert(seqBefore(1, 2) && !seqBefore(2, 2) && !seqBefore(3, 2));
  static_assert(seqBefore(0x80000002u, 1u) && !seqBefore(1u, 0x80000002u));  // 1 is 2^31 - 1 after
}

TEST(SeqToBackend, SeqPlusClientAckMinusServer) {
  for (bool v6 : {false, true}) {
    Frame f = build({.seq = 1000, .ack = 5000, .opts = timestamps(7, 9), .payload = 33, .v6 = v6});
    EXPECT_EQ(toBackend(f, {100, 7}), SeqResult::Done);
    EXPECT_EQ(f, build({.seq = 1100, .ack = 4993, .opts = timestamps(7, 9), .payload = 33, .v6 = v6}));
    EXPECT_TRUE(test::l4ChecksumOk(f));
  }
}

TEST(SeqToBackend, AckLeftAloneWithoutTheAckFlag) {
  Frame f = build({.seq = 1000, .ack = 777, .flags = kSyn, .opts = mss(1460)});
  EXPECT_EQ(toBackend(f, {100, 7}), SeqResult::Done);
  EXPECT_EQ(f, build({.seq = 1100, .ack = 777, .flags = kSyn, .opts = mss(1460)}));
}

TEST(SeqToBackend, WrapsAround) {
  Frame f = build({.seq = 0xfffffff0u, .ack = 5, .payload = 1});
  toBackend(f, {0x20, 0x10});
  EXPECT_EQ(f, build({.seq = 0x10, .ack = 0xfffffff5u, .payload = 1}));
  // A negative delta (mod 2^32) crosses the wrap the other way.
  Frame g = build({.seq = 3, .ack = 0xfffffffeu});
  toBackend(g, {0u - 28, 0u - 4});
  EXPECT_EQ(g, build({.seq = 0xffffffe7u, .ack = 2}));
}

TEST(SeqToBackend, SackBlocksMinusServerAtAnyAlignment) {
  // Two NOPs (blocks 32-bit aligned), one NOP (16-bit misaligned), none after timestamps.
  const std::vector<Opts> before = {
      cat({{kNop, kNop}, sack({{100, 200}, {0xfffffff8u, 4}})}),
      cat({{kNop}, sack({{100, 200}, {0xfffffff8u, 4}}), {kNop}}),
      cat({timestamps(1, 2), sack({{100, 200}, {0xfffffff8u, 4}})}),
  };
  const std::vector<Opts> after = {
      cat({{kNop, kNop}, sack({{90, 190}, {0xffffffeeu, 0xfffffffau}})}),
      cat({{kNop}, sack({{90, 190}, {0xffffffeeu, 0xfffffffau}}), {kNop}}),
      cat({timestamps(1, 2), sack({{90, 190}, {0xffffffeeu, 0xfffffffau}})}),
  };
  for (size_t i = 0; i < before.size(); i++) {
    Frame f = build({.seq = 1, .ack = 50, .opts = before[i], .payload = 3});
    EXPECT_EQ(toBackend(f, {0, 10}), SeqResult::Done) << i;
    EXPECT_EQ(f, build({.seq = 1, .ack = 40, .opts = after[i], .payload = 3})) << i;
    EXPECT_TRUE(test::l4ChecksumOk(f)) << i;
  }
}

TEST(SeqToBackend, ClientDeltaAloneLeavesAckAndSack) {
  const Opts o = cat({{kNop, kNop}, sack({{100, 200}})});
  Frame f = build({.seq = 1, .ack = 50, .opts = o});
  toBackend(f, {5, 0});
  EXPECT_EQ(f, build({.seq = 6, .ack = 50, .opts = o}));
}

TEST(SeqToBackend, ZeroDeltaLeavesEveryByte) {
  const Frame orig = build({.seq = 1, .ack = 50, .opts = cat({{kNop, kNop}, sack({{100, 200}})}), .payload = 9});
  Frame f = orig;
  EXPECT_EQ(toBackend(f, {}), SeqResult::Done);
  EXPECT_EQ(f, orig);
}

// ---------------------------------------------------------------------------------------------

TEST(SeqToClient, SeqPlusServerAckMinusClient) {
  for (bool v6 : {false, true}) {
    Frame f = build({.seq = 7000, .ack = 1228, .opts = timestamps(3, 4), .payload = 100, .v6 = v6});
    EXPECT_EQ(toClient(f, {28, 0u - 5}, 1000), SeqResult::Done);
    EXPECT_EQ(f, build({.seq = 6995, .ack = 1200, .opts = timestamps(3, 4), .payload = 100, .v6 = v6}));
    EXPECT_TRUE(test::l4ChecksumOk(f));
  }
}

// The backend acknowledges bytes the client never sent (a PROXY header before the client's first
// byte): the client sees at most an ack of its ISN + 1, never an ack below it.
TEST(SeqToClient, AckClampedToTheFloorAcrossTheWrap) {
  const uint32_t isn = 0xfffffffeu;  // floor isn + 1 = 0xffffffff; the client's 2nd byte is 0
  const SeqDelta d{28, 0};
  struct {
    uint32_t in, out;
  } cases[] = {
      {isn + 1 + 28, isn + 1},        // all of the header, nothing of the client's: the floor
      {isn + 1 + 10, isn + 1},        // part of the header: the floor
      {isn + 1, isn + 1},             // the backend's ISN + 1 (SYN-ACK): the floor
      {isn - 500, isn + 1},           // far below: the floor
      {isn + 1 + 28 + 5, 4},          // 5 of the client's bytes, across 2^32
      {isn + 1 + 28 + 0x10000, 0xffff},
  };
  for (auto c : cases) {
    Frame f = build({.seq = 9, .ack = c.in});
    toClient(f, d, isn);
    EXPECT_EQ(f, build({.seq = 9, .ack = c.out})) << std::hex << c.in;
    EXPECT_TRUE(test::l4ChecksumOk(f));
  }
}

TEST(SeqToClient, FloorHoldsWithAZeroDelta) {
  // A header in sequence space the client never saw (the SYN to the backend was moved down):
  // the delta is zero, the floor still applies.
  Frame f = build({.seq = 9, .ack = 990});
  toClient(f, {}, 1000);
  EXPECT_EQ(f, build({.seq = 9, .ack = 1001}));
  const Frame orig = build({.seq = 9, .ack = 1500, .opts = cat({{kNop, kNop}, sack({{1600, 1700}})}), .payload = 5});
  Frame g = orig;
  EXPECT_EQ(toClient(g, {}, 1000), SeqResult::Done);
  EXPECT_EQ(g, orig);
}

TEST(SeqToClient, AckLeftAloneWithoutTheAckFlag) {
  Frame f = build({.seq = 9, .ack = 3, .flags = kSyn});
  toClient(f, {28, 1}, 1000);
  EXPECT_EQ(f, build({.seq = 10, .ack = 3, .flags = kSyn}));
}

TEST(SeqToClient, SackBlocksTranslatedAndClampedAtTheFloor) {
  const uint32_t isn = 0xfffffff0u, fl = isn + 1;  // floor
  const SeqDelta d{28, 0};
  // In the backend's space (client byte x is x + 28): a block inside the header (removed), one
  // straddling the floor (left edge raised), one past the wrap (moved).
  Frame f = build({.seq = 9, .ack = fl + 28,
                   .opts = cat({{kNop, kNop}, sack({{fl + 3, fl + 20}, {fl + 10, fl + 40}, {fl + 50, fl + 80}})})});
  EXPECT_EQ(toClient(f, d, isn), SeqResult::Done);
  const Opts want = cat({{kNop, kNop}, sack({{fl, fl + 12}, {fl + 22, fl + 52}}), Opts(8, kNop)});
  EXPECT_EQ(f, build({.seq = 9, .ack = fl, .opts = want}));
  EXPECT_TRUE(test::l4ChecksumOk(f));
}

TEST(SeqToClient, BlockEndingAtTheFloorIsRemovedKeptOrderOtherwise) {
  const uint32_t isn = 5000, fl = isn + 1;
  const SeqDelta d{28, 0};
  // D-SACK style first block ending exactly at the floor (in client space), then two real ones.
  Frame f = build({.seq = 9, .ack = fl + 100,
                   .opts = cat({{kNop}, sack({{fl + 10, fl + 28}, {fl + 200, fl + 300}, {fl + 400, fl + 500}}), {kNop}})});
  toClient(f, d, isn);
  const Opts want = cat({{kNop}, sack({{fl + 172, fl + 272}, {fl + 372, fl + 472}}), Opts(8, kNop), {kNop}});
  EXPECT_EQ(f, build({.seq = 9, .ack = fl + 72, .opts = want}));
  EXPECT_TRUE(test::l4ChecksumOk(f));
}

TEST(SeqToClient, SackOptionWithNoBlockLeftBecomesNops) {
  const uint32_t isn = 100, fl = isn + 1;
  Frame f = build({.seq = 9, .ack = fl + 28, .opts = cat({timestamps(5, 6), {kNop}, sack({{fl, fl + 28}}), {kNop}})});
  toClient(f, {28, 0}, isn);
  EXPECT_EQ(f, build({.seq = 9, .ack = fl, .opts = cat({timestamps(5, 6), {kNop}, Opts(10, kNop), {kNop}})}));
  EXPECT_TRUE(test::l4ChecksumOk(f));
}

TEST(SeqToClient, NoSackBlockEverCoversBytesBelowTheFloor) {
  // Every block edge around the floor, both wraps: after translation each kept block lies at or
  // above the floor and the option still parses.
  std::mt19937 rng(7);
  for (int i = 0; i < 2000; i++) {
    const uint32_t isn = rng();
    const uint32_t fl = isn + 1;
    const uint32_t delta = rng() % 64;
    const uint32_t left = fl + delta - 40 + rng() % 80;
    const uint32_t right = left + 1 + rng() % 60;
    Frame f = build({.seq = 9, .ack = fl + delta, .opts = cat({{kNop, kNop}, sack({{left, right}})})});
    toClient(f, {delta, 0}, isn);
    const uint8_t* o = tcpOf(f) + 20;
    if (o[2] == 5) {
      ASSERT_EQ(o[3], 10);
      const uint32_t l = net::load32be(o + 4), r = net::load32be(o + 8);
      EXPECT_FALSE(seqBefore(l, fl)) << i;
      EXPECT_TRUE(seqBefore(l, r)) << i;
      EXPECT_EQ(r, right - delta);
    } else {
      EXPECT_FALSE(seqBefore(fl, right - delta)) << i;  // removed only when wholly below
      for (int k = 2; k < 12; k++) EXPECT_EQ(o[k], kNop);
    }
    EXPECT_TRUE(test::l4ChecksumOk(f)) << i;
  }
}

// ---------------------------------------------------------------------------------------------
// Checksums over random segments: both directions, both families, odd payloads, SACK options at
// every alignment, ACK on and off.

TEST(SeqTranslation, ChecksumStaysCorrectOverRandomSegments) {
  std::mt19937 rng(42);
  for (int i = 0; i < 3000; i++) {
    const uint32_t nops = rng() % 4;
    const uint32_t blocks = 1 + rng() % 3;
    Opts o(nops, kNop);
    Opts s = {5, uint8_t(2 + 8 * blocks)};
    for (uint32_t b = 0; b < 2 * blocks; b++) push32(s, rng());
    o = cat({o, s});
    Seg seg{.seq = uint32_t(rng()), .ack = uint32_t(rng()), .flags = uint8_t(rng() % 2 ? kAck | kPsh : kPsh), .opts = o,
            .payload = rng() % 200, .v6 = rng() % 2 == 0};
    Frame f = build(seg);
    const SeqDelta d{uint32_t(rng()), uint32_t(rng())};
    if (i % 2 == 0) {
      ASSERT_EQ(toBackend(f, d), SeqResult::Done);
      const uint8_t* t = tcpOf(f);
      EXPECT_EQ(net::load32be(t + 4), seg.seq + d.client);
      EXPECT_EQ(net::load32be(t + 8), seg.flags & kAck ? seg.ack - d.server : seg.ack);
    } else {
      ASSERT_EQ(toClient(f, d, rng()), SeqResult::Done);
      EXPECT_EQ(net::load32be(tcpOf(f) + 4), seg.seq + d.server);
    }
    ASSERT_TRUE(test::l4ChecksumOk(f)) << i;
  }
}

// ---------------------------------------------------------------------------------------------
// Malformed options: seq and ack translated, options as they were, nothing read past the header.

// Maps two pages, the second PROT_NONE, and places `hdr` so that it ends at the boundary.
class GuardedHeader {
 public:
  explicit GuardedHeader(const std::vector<uint8_t>& hdr) {
    page_ = size_t(sysconf(_SC_PAGESIZE));
    base_ = static_cast<uint8_t*>(mmap(nullptr, 2 * page_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    if (base_ == MAP_FAILED) throw std::runtime_error("mmap");
    mprotect(base_ + page_, page_, PROT_NONE);
    p_ = base_ + page_ - hdr.size();
    std::memcpy(p_, hdr.data(), hdr.size());
  }
  ~GuardedHeader() { munmap(base_, 2 * page_); }
  GuardedHeader(const GuardedHeader&) = delete;
  GuardedHeader& operator=(const GuardedHeader&) = delete;
  uint8_t* data() { return p_; }

 private:
  size_t page_ = 0;
  uint8_t* base_ = nullptr;
  uint8_t* p_ = nullptr;
};

// The TCP header (no payload) of a segment, with its checksum.
std::vector<uint8_t> headerOf(const Frame& f) {
  return {f.begin() + ptrdiff_t(l4Off(f)), f.begin() + ptrdiff_t(l4Off(f) + hdrLen(f))};
}

TEST(SeqTranslation, MalformedOptionsAreLeftAsTheyWere) {
  const std::vector<Opts> bad = {
      cat({{kNop, kNop}, sack({{100, 200}}), {5, 34}}),                  // a SACK past the end
      cat({{kNop, kNop}, sack({{100, 200}}), {8, 1, 0, 0}}),             // a length below 2
      cat({{kNop, kNop}, sack({{100, 200}}), {kNop, kNop, kNop, 8}}),    // no room for the length
      cat({{kNop, kNop}, {5, 12}, Opts(10, 0x11)}),                       // SACK length not 2 + 8n
      cat({{kNop, kNop}, {5, 2}, {kNop, kNop}}),                          // SACK with no block
      cat({mss(1460), {2, 3, 0}, {kNop}}),                                // MSS of length 3
  };
  for (size_t i = 0; i < bad.size(); i++) {
    for (bool client : {false, true}) {
      Frame f = build({.seq = 1000, .ack = 2000, .opts = bad[i], .payload = 4});
      GuardedHeader g(headerOf(f));
      const uint32_t len = hdrLen(f);
      const SeqResult r = client ? seqToClient(g.data(), len, {3, 4}, 100) : seqToBackend(g.data(), len, {3, 4});
      EXPECT_EQ(r, SeqResult::OptionsKept) << i;
      const Frame want = client ? build({.seq = 1004, .ack = 1997, .opts = bad[i], .payload = 4})
                                : build({.seq = 1003, .ack = 1996, .opts = bad[i], .payload = 4});
      EXPECT_EQ(std::vector<uint8_t>(g.data(), g.data() + len), headerOf(want)) << i << " client " << client;
    }
  }
}

TEST(SeqTranslation, DataOffsetBeyondTheGivenLengthIsNotFollowed) {
  // The data offset says 60 bytes; the caller says 24. Nothing past byte 24 is read.
  Frame f = build({.seq = 1000, .ack = 2000, .flags = kSyn | kAck,
                   .opts = cat({{kNop, kNop}, sack({{100, 200}, {300, 400}}), mss(1460)})});
  std::vector<uint8_t> hdr = headerOf(f);
  hdr[12] = uint8_t(15 << 4);
  hdr.resize(24);
  GuardedHeader g(hdr);
  EXPECT_EQ(seqToBackend(g.data(), 24, {1, 2}), SeqResult::OptionsKept);
  EXPECT_EQ(net::load32be(g.data() + 4), 1001u);
  EXPECT_EQ(net::load32be(g.data() + 8), 1998u);
  EXPECT_EQ(seqToClient(g.data(), 24, {1, 2}, 0), SeqResult::OptionsKept);
  EXPECT_FALSE(lowerMss(g.data(), 24, 28, kMinMss4));
  EXPECT_EQ(std::vector<uint8_t>(g.data() + 20, g.data() + 24), std::vector<uint8_t>(hdr.begin() + 20, hdr.end()));
}

TEST(SeqTranslation, TooShortTouchesNothing) {
  std::vector<uint8_t> hdr(19, 0xab);
  GuardedHeader g(hdr);
  EXPECT_EQ(seqToBackend(g.data(), 19, {1, 2}), SeqResult::TooShort);
  EXPECT_EQ(seqToClient(g.data(), 19, {1, 2}, 0), SeqResult::TooShort);
  EXPECT_FALSE(lowerMss(g.data(), 19, 28, kMinMss4));
  EXPECT_EQ(std::vector<uint8_t>(g.data(), g.data() + 19), hdr);
}

TEST(SeqTranslation, OptionsEndingAtTheHeaderEndAreRead) {
  // The last option ends exactly at the header's end, against the guard page: translated.
  Frame f = build({.seq = 1000, .ack = 2000, .opts = cat({{kNop, kNop}, sack({{100, 200}, {300, 400}})})});
  GuardedHeader g(headerOf(f));
  EXPECT_EQ(seqToBackend(g.data(), hdrLen(f), {0, 50}), SeqResult::Done);
  const Frame want = build({.seq = 1000, .ack = 1950, .opts = cat({{kNop, kNop}, sack({{50, 150}, {250, 350}})})});
  EXPECT_EQ(std::vector<uint8_t>(g.data(), g.data() + hdrLen(f)), headerOf(want));
}

// ---------------------------------------------------------------------------------------------

TEST(LowerMss, LowersTheOptionInASynAndASynAck) {
  for (uint8_t flags : {kSyn, uint8_t(kSyn | kAck)}) {
    for (bool v6 : {false, true}) {
      const Opts before = cat({mss(1460), {kNop, 3, 3, 7}, {kNop, kNop}, timestamps(1, 0)});
      const Opts after = cat({mss(1432), {kNop, 3, 3, 7}, {kNop, kNop}, timestamps(1, 0)});
      Frame f = build({.seq = 1, .ack = 2, .flags = flags, .opts = before, .v6 = v6});
      EXPECT_TRUE(lowerMss(tcpOf(f), hdrLen(f), 28, v6 ? kMinMss6 : kMinMss4));
      EXPECT_EQ(f, build({.seq = 1, .ack = 2, .flags = flags, .opts = after, .v6 = v6}));
    }
  }
}

TEST(LowerMss, MisalignedOptionKeepsTheChecksum) {
  Frame f = build({.seq = 1, .flags = kSyn, .opts = cat({{kNop}, mss(1400), {kNop, 4, 2}})});
  EXPECT_TRUE(lowerMss(tcpOf(f), hdrLen(f), 52, kMinMss4));
  EXPECT_EQ(f, build({.seq = 1, .flags = kSyn, .opts = cat({{kNop}, mss(1348), {kNop, 4, 2}})}));
  EXPECT_TRUE(test::l4ChecksumOk(f));
}

TEST(LowerMss, NeverBelowTheFloor) {
  Frame f = build({.seq = 1, .flags = kSyn, .opts = mss(550)});
  EXPECT_TRUE(lowerMss(tcpOf(f), hdrLen(f), 28, kMinMss4));
  EXPECT_EQ(f, build({.seq = 1, .flags = kSyn, .opts = mss(536)}));
  Frame g = build({.seq = 1, .flags = kSyn, .opts = mss(1240), .v6 = true});
  EXPECT_TRUE(lowerMss(tcpOf(g), hdrLen(g), 52, kMinMss6));
  EXPECT_EQ(g, build({.seq = 1, .flags = kSyn, .opts = mss(1220), .v6 = true}));
  // Already at or below the floor: left as the peer sent it.
  for (uint16_t v : {uint16_t(536), uint16_t(500)}) {
    const Frame orig = build({.seq = 1, .flags = kSyn, .opts = mss(v)});
    Frame h = orig;
    EXPECT_FALSE(lowerMss(tcpOf(h), hdrLen(h), 28, kMinMss4));
    EXPECT_EQ(h, orig);
  }
}

TEST(LowerMss, NoOpWithoutTheOptionOrWithoutSyn) {
  const std::vector<Frame> frames = {
      build({.seq = 1, .flags = kSyn, .opts = cat({{kNop, kNop}, timestamps(1, 0)})}),
      build({.seq = 1, .flags = kSyn}),
      build({.seq = 1, .flags = kAck, .opts = mss(1460)}),
  };
  for (const Frame& orig : frames) {
    Frame f = orig;
    EXPECT_FALSE(lowerMss(tcpOf(f), hdrLen(f), 28, kMinMss4));
    EXPECT_EQ(f, orig);
  }
}

}  // namespace
}  // namespace l4lb::dataplane::fullnat
