// Which received datagrams are fresh: per configured peer, an anti-replay state in the manner
// of IPsec's (RFC 4303 §3.4.3), keyed by the sender's boot id.
//
// A datagram is accepted only from a peer's configured address and port (the peer sends from
// the socket it listens on), and only once:
//  - same boot id as the last accepted one: a sequence above the highest seen, or within the
//    kReplayWindow below it and not seen yet (reordering); anything else is a replay;
//  - another boot id (the peer restarted, or this is the first datagram from it): only if its
//    send time is newer than the last accepted datagram's from that peer and within
//    kMaxSyncSkewMs of our clock, so a captured datagram of an earlier boot can never be played
//    back (stale). The new boot id then replaces the old one, which is retired: the last
//    kRetiredBoots retired ids are refused whatever their send time (a genuine datagram of an
//    earlier boot was sent before the new boot's first one, so it can only be a replay).
// Call admit() only for datagrams whose MAC verified (sync_codec.h): unauthenticated input must
// never move the state. Single-threaded (the sync thread).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <vector>

#include "control/config.h"
#include "control/sync/sync_codec.h"
#include "control/sync/sync_reject.h"

namespace l4lb::control::sync {

inline constexpr uint64_t kReplayWindow = 64;
// A peer's and our wall clocks may differ by this much (NTP keeps them far closer); a sender
// whose clock is further off is refused at each new boot (counted stale).
inline constexpr uint64_t kMaxSyncSkewMs = 10'000;
inline constexpr size_t kRetiredBoots = 8;

class SyncPeers {
 public:
  explicit SyncPeers(std::vector<SyncEndpoint> peers) : peers_(peers.size()) {
    for (size_t i = 0; i < peers.size(); i++) peers_[i].endpoint = peers[i];
  }

  // The index of the peer with this source address and port; nullopt: unknown_peer.
  std::optional<size_t> find(const IpAddr& addr, uint16_t port) const;
  // Accepts (nullopt, and records the datagram as seen) or refuses (Replay / Stale) a datagram
  // from peer `i` whose MAC verified, at our wall clock `now_ms`.
  std::optional<SyncReject> admit(size_t i, const SyncHeader& h, uint64_t now_ms);

  size_t size() const { return peers_.size(); }
  const SyncEndpoint& endpoint(size_t i) const { return peers_[i].endpoint; }

 private:
  struct Peer {
    SyncEndpoint endpoint;
    bool seen = false;       // some datagram was accepted
    uint64_t boot_id = 0;    // of the last accepted datagram
    uint64_t top = 0;        // highest sequence accepted for boot_id
    uint64_t window = 0;     // bit k: sequence top - k accepted
    uint64_t last_send_ms = 0;  // send time of the last accepted datagram (any boot)
    std::array<uint64_t, kRetiredBoots> retired{};  // earlier boot ids, newest at retired_next - 1
    size_t retired_next = 0, retired_count = 0;
  };
  std::vector<Peer> peers_;
};

}  // namespace l4lb::control::sync
