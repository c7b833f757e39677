// Why a received sync datagram was refused: one list (X-macro), giving the enum, the names the
// metrics (l4lb_sync_rejected_total{reason}) and the status JSON use, and through the enum the
// counter arrays. A refused datagram delivers none of its records. Append only.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

namespace l4lb::control::sync {

#define L4LB_FOREACH_SYNC_REJECT(X)                                                                 \
  /* shorter than a header and a MAC, or than its record count says */                            \
  X(Truncated, "truncated")                                                                        \
  /* not our magic: not a sync datagram at all */                                                  \
  X(BadMagic, "bad_magic")                                                                         \
  /* a format version this build does not speak */                                                \
  X(BadVersion, "bad_version")                                                                     \
  /* longer than its record count says, or a count above what a datagram may hold */               \
  X(BadCount, "bad_count")                                                                         \
  /* the MAC does not verify: another key, or altered in transit */                                \
  X(BadMac, "bad_mac")                                                                             \
  /* authenticated, but a record holds values no sender produces (family, protocol, state) */      \
  X(BadRecord, "bad_record")                                                                       \
  /* from a source address:port that is not a configured peer */                                   \
  X(UnknownPeer, "unknown_peer")                                                                   \
  /* a (boot id, sequence) already accepted, or too old for the reordering window */               \
  X(Replay, "replay")                                                                              \
  /* a new boot id whose send time is not newer than the peer's last accepted one, or too far     \
     from our clock */                                                                             \
  X(Stale, "stale")

enum class SyncReject : uint8_t {
#define L4LB_X(e, n) e,
  L4LB_FOREACH_SYNC_REJECT(L4LB_X)
#undef L4LB_X
      Count
};

inline constexpr std::array<std::string_view, size_t(SyncReject::Count)> kSyncRejectNames{
#define L4LB_X(e, n) n,
    L4LB_FOREACH_SYNC_REJECT(L4LB_X)
#undef L4LB_X
};

constexpr std::string_view toString(SyncReject r) { return kSyncRejectNames[size_t(r)]; }

}  // namespace l4lb::control::sync
