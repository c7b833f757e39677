#include "control/sync/sync_peers.h"

#include <algorithm>

namespace l4lb::control::sync {

std::optional<size_t> SyncPeers::find(const IpAddr& addr, uint16_t port) const {
  for (size_t i = 0; i < peers_.size(); i++)
    if (peers_[i].endpoint.addr == addr && peers_[i].endpoint.port == port) return i;
  return std::nullopt;
}

std::optional<SyncReject> SyncPeers::admit(size_t i, const SyncHeader& h, uint64_t now_ms) {
  Peer& p = peers_[i];
  if (!p.seen || h.boot_id != p.boot_id) {
    const uint64_t skew = h.send_ms > now_ms ? h.send_ms - now_ms : now_ms - h.send_ms;
    if ((p.seen && h.send_ms <= p.last_send_ms) || skew > kMaxSyncSkewMs) return SyncReject::Stale;
    for (size_t k = 0; k < p.retired_count; k++)
      if (p.retired[k] == h.boot_id) return SyncReject::Stale;
    if (p.seen) {
      p.retired[p.retired_next] = p.boot_id;
      p.retired_next = (p.retired_next + 1) % kRetiredBoots;
      p.retired_count = std::min(p.retired_count + 1, kRetiredBoots);
    }
    p.seen = true;
    p.boot_id = h.boot_id;
    p.top = h.sequence;
    p.window = 1;
    p.last_send_ms = h.send_ms;
    return std::nullopt;
  }
  if (h.sequence > p.top) {
    const uint64_t shift = h.sequence - p.top;
    p.window = shift >= kReplayWindow ? 1 : (p.window << shift) | 1;
    p.top = h.sequence;
  } else {
    const uint64_t back = p.top - h.sequence;
    if (back >= kReplayWindow || (p.window >> back & 1) != 0) return SyncReject::Replay;
    p.window |= uint64_t{1} << back;
  }
  if (h.send_ms > p.last_send_ms) p.last_send_ms = h.send_ms;
  return std::nullopt;
}

}  // namespace l4lb::control::sync
