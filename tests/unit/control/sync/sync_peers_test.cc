// Anti-replay (control/sync/sync_peers.h): only configured peers, each (boot id, sequence) at
// most once, and an earlier boot's datagrams never again.
#include "control/sync/sync_peers.h"

#include <gtest/gtest.h>

namespace l4lb::control::sync {
namespace {

IpAddr ip(const char* s) { return IpAddr::parse(s).value(); }

constexpr uint64_t kNow = 1764780000000ull;

SyncPeers twoPeers() { return SyncPeers({{ip("198.18.40.12"), 7400}, {ip("2001:db8:40::13"), 7400}}); }

SyncHeader hdr(uint64_t boot, uint64_t seq, uint64_t send_ms = kNow) {
  SyncHeader h;
  h.boot_id = boot;
  h.sequence = seq;
  h.send_ms = send_ms;
  return h;
}

TEST(SyncPeers, OnlyConfiguredAddressAndPort) {
  SyncPeers p = twoPeers();
  EXPECT_EQ(p.find(ip("198.18.40.12"), 7400), 0u);
  EXPECT_EQ(p.find(ip("2001:db8:40::13"), 7400), 1u);
  EXPECT_FALSE(p.find(ip("198.18.40.12"), 7401));
  EXPECT_FALSE(p.find(ip("198.18.40.14"), 7400));
  EXPECT_FALSE(p.find(ip("198.18.40.13"), 7400));  // the v6 peer's port, another address
}

TEST(SyncPeers, SameDatagramTwiceIsAReplay) {
  SyncPeers p = twoPeers();
  EXPECT_FALSE(p.admit(0, hdr(7, 1), kNow));
  EXPECT_EQ(p.admit(0, hdr(7, 1), kNow), SyncReject::Replay);
  // Negative control: the same datagram at a peer state that never saw it is accepted, so the
  // refusal above comes from the replay state alone.
  SyncPeers fresh = twoPeers();
  EXPECT_FALSE(fresh.admit(0, hdr(7, 1), kNow));
  // Peers have separate states.
  EXPECT_FALSE(p.admit(1, hdr(7, 1), kNow));
}

TEST(SyncPeers, SequenceWindow) {
  SyncPeers p = twoPeers();
  EXPECT_FALSE(p.admit(0, hdr(7, 10), kNow));
  EXPECT_FALSE(p.admit(0, hdr(7, 12), kNow));
  EXPECT_FALSE(p.admit(0, hdr(7, 11), kNow));  // reordered, inside the window: once
  EXPECT_EQ(p.admit(0, hdr(7, 11), kNow), SyncReject::Replay);
  EXPECT_EQ(p.admit(0, hdr(7, 10), kNow), SyncReject::Replay);
  EXPECT_EQ(p.admit(0, hdr(7, 12), kNow), SyncReject::Replay);
  EXPECT_FALSE(p.admit(0, hdr(7, 12 + 63), kNow));
  EXPECT_EQ(p.admit(0, hdr(7, 12), kNow), SyncReject::Replay);  // now outside the window
  EXPECT_FALSE(p.admit(0, hdr(7, 13), kNow));                   // inside, never seen
  EXPECT_FALSE(p.admit(0, hdr(7, 1000), kNow));                 // a jump clears the window
  EXPECT_EQ(p.admit(0, hdr(7, 1000 - 64), kNow), SyncReject::Replay);
  EXPECT_FALSE(p.admit(0, hdr(7, 1000 - 63), kNow));
  EXPECT_EQ(p.admit(0, hdr(7, 1000 - 63), kNow), SyncReject::Replay);
}

TEST(SyncPeers, NewBootOnlyIfNewerAndNearOurClock) {
  SyncPeers p = twoPeers();
  // The first datagram from a peer: accepted within the skew, either side of our clock.
  EXPECT_EQ(p.admit(0, hdr(1, 5, kNow - kMaxSyncSkewMs - 1), kNow), SyncReject::Stale);
  EXPECT_EQ(p.admit(0, hdr(1, 5, kNow + kMaxSyncSkewMs + 1), kNow), SyncReject::Stale);
  EXPECT_FALSE(p.admit(0, hdr(1, 5, kNow - 1000), kNow));
  EXPECT_FALSE(p.admit(0, hdr(1, 6, kNow), kNow));
  // The peer restarts: a new boot id, sequences from 1, a later send time.
  EXPECT_FALSE(p.admit(0, hdr(2, 1, kNow + 500), kNow + 600));
  EXPECT_FALSE(p.admit(0, hdr(2, 2, kNow + 700), kNow + 800));
  // A captured datagram of the old boot, even with a sequence never seen: stale.
  EXPECT_EQ(p.admit(0, hdr(1, 7, kNow + 100), kNow + 900), SyncReject::Stale);
  EXPECT_EQ(p.admit(0, hdr(1, 6, kNow), kNow + 900), SyncReject::Stale);
  // A new boot id with a send time not after the last accepted one: stale.
  EXPECT_EQ(p.admit(0, hdr(3, 1, kNow + 700), kNow + 900), SyncReject::Stale);
  // ... and with a later one: accepted; boot 2 is then the old one.
  EXPECT_FALSE(p.admit(0, hdr(3, 1, kNow + 701), kNow + 900));
  EXPECT_EQ(p.admit(0, hdr(2, 3, kNow + 702), kNow + 900), SyncReject::Stale);
  // Boot 1 is retired too, even with a send time after everything seen.
  EXPECT_EQ(p.admit(0, hdr(1, 100, kNow + 800), kNow + 900), SyncReject::Stale);
  // Refusals did not move the state: boot 3 continues.
  EXPECT_FALSE(p.admit(0, hdr(3, 2, kNow + 703), kNow + 900));
}

}  // namespace
}  // namespace l4lb::control::sync
