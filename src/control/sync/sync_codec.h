// The flow-sync wire format: what one balancer sends another in a UDP datagram. Everything is
// in network byte order at fixed offsets (no padding from the compiler, no host layout on the
// wire), and the whole datagram is authenticated with the cluster's shared key.
//
//   offset  size  header
//        0     4  magic "L4SY"
//        4     1  version (kSyncVersion)
//        5     1  reserved, 0
//        6     2  record count
//        8     8  sender boot id (random per sender process)
//       16     8  sequence number (per boot id, strictly increasing from 1)
//       24     8  send time, wall clock ms since the Unix epoch
//       32  72*n  records (below)
//   32+72n    32  MAC: crypto_auth (HMAC-SHA-512-256, libsodium) over bytes [0, 32+72n)
//
//   offset  size  record (l4lb::SyncFlow, include/l4lb/sync_record.h)
//        0     1  family of client and VIP: 4 or 6
//        1     1  protocol: 6 (TCP) or 17 (UDP)
//        2     1  flow state (dataplane::FlowState, 0..7)
//        3     1  family of the backend: 4 or 6
//        4     2  client port
//        6     2  VIP port
//        8     2  backend port (0: the client's port is kept)
//       10     2  reserved, 0
//       12    16  client address (IPv4: the first 4 bytes, then zeros)
//       28    16  VIP address
//       44    16  backend address
//       60     4  idle ms (since the sender last saw a packet of the flow)
//       64     8  the sender's snapshot generation when it chose the backend
//
// At most kMaxSyncDatagramBytes (1400: fits a 1500-byte MTU under IPv6 + UDP, no
// fragmentation), so 18 records per datagram (1360 bytes).
//
// Decoding refuses, with a named reason (sync_reject.h), in this order: too short for a header
// and MAC (truncated), wrong magic, unknown version, a length that is not exactly what the count
// says (truncated / bad_count), a MAC that does not verify (constant-time compare), a record
// with values no sender produces. Only then are records handed out: nothing of an
// unauthenticated datagram is ever used. Freshness (replay) is sync_peers.h's job.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "control/sync/sync_key.h"
#include "control/sync/sync_reject.h"
#include "l4lb/sync_record.h"

namespace l4lb::control::sync {

inline constexpr uint32_t kSyncMagic = 0x4c345359;  // "L4SY"
inline constexpr uint8_t kSyncVersion = 1;
inline constexpr size_t kSyncHeaderBytes = 32;
inline constexpr size_t kSyncRecordBytes = 72;
inline constexpr size_t kSyncMacBytes = 32;  // crypto_auth_BYTES
inline constexpr size_t kMaxSyncDatagramBytes = 1400;
inline constexpr size_t kMaxSyncRecords = (kMaxSyncDatagramBytes - kSyncHeaderBytes - kSyncMacBytes) / kSyncRecordBytes;
static_assert(kMaxSyncRecords == 18);

constexpr size_t syncDatagramBytes(size_t records) { return kSyncHeaderBytes + records * kSyncRecordBytes + kSyncMacBytes; }

struct SyncHeader {
  uint8_t version = kSyncVersion;
  uint16_t count = 0;
  uint64_t boot_id = 0;
  uint64_t sequence = 0;
  uint64_t send_ms = 0;
};

// Writes a datagram of `records` (0..kMaxSyncRecords; 0: a heartbeat) into `out` (at least
// syncDatagramBytes(records.size()) bytes); h.count is taken from records.size(). Returns the
// length, or 0 when the records do not fit.
size_t encodeSyncDatagram(const SyncHeader& h, std::span<const SyncFlow> records, const SyncKey& key,
                          std::span<uint8_t> out);

struct SyncDecoded {
  std::optional<SyncReject> reject;  // nullopt: accepted
  SyncHeader header;                 // valid when accepted
  size_t count = 0;                  // records[0, count)
  std::array<SyncFlow, kMaxSyncRecords> records;
};

// Checks and decodes one received datagram (see the order above).
void decodeSyncDatagram(std::span<const uint8_t> in, const SyncKey& key, SyncDecoded& out);

// Byte layout of one record (exposed for tests that build a datagram by hand).
void encodeSyncRecord(const SyncFlow& f, uint8_t* out);
bool decodeSyncRecord(const uint8_t* in, SyncFlow& f);

}  // namespace l4lb::control::sync
