#include "control/sync/sync_codec.h"

#include <netinet/in.h>
#include <sodium.h>

#include <algorithm>
#include <cstring>

namespace l4lb::control::sync {

static_assert(kSyncMacBytes == crypto_auth_BYTES);
static_assert(kSyncKeyBytes == crypto_auth_KEYBYTES);

namespace {

void put16(uint8_t* p, uint16_t v) {
  p[0] = uint8_t(v >> 8);
  p[1] = uint8_t(v);
}
void put32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = uint8_t(v >> (24 - 8 * i));
}
void put64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = uint8_t(v >> (56 - 8 * i));
}
uint16_t get16(const uint8_t* p) { return uint16_t(p[0] << 8 | p[1]); }
uint32_t get32(const uint8_t* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; i++) v = v << 8 | p[i];
  return v;
}
uint64_t get64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v = v << 8 | p[i];
  return v;
}
// The SyncFlow's *_be fields hold network order in memory: copied as bytes, not converted.
void putBe16(uint8_t* p, uint16_t be) { std::memcpy(p, &be, 2); }
uint16_t getBe16(const uint8_t* p) {
  uint16_t be;
  std::memcpy(&be, p, 2);
  return be;
}

// IPv4 addresses use the first 4 of 16 bytes; the rest must be zero (sync_record.h).
bool addrOk(bool v6, const uint8_t* a) { return v6 || std::all_of(a + 4, a + 16, [](uint8_t b) { return b == 0; }); }

}  // namespace

void encodeSyncRecord(const SyncFlow& f, uint8_t* p) {
  p[0] = f.v6 ? 6 : 4;
  p[1] = f.proto;
  p[2] = f.state;
  p[3] = f.backend_v6 ? 6 : 4;
  putBe16(p + 4, f.sport_be);
  putBe16(p + 6, f.dport_be);
  putBe16(p + 8, f.backend_port_be);
  put16(p + 10, 0);
  std::memcpy(p + 12, f.src, 16);
  std::memcpy(p + 28, f.dst, 16);
  std::memcpy(p + 44, f.backend, 16);
  put32(p + 60, f.idle_ms);
  put64(p + 64, f.generation);
}

bool decodeSyncRecord(const uint8_t* p, SyncFlow& f) {
  f = SyncFlow{};
  if ((p[0] != 4 && p[0] != 6) || (p[3] != 4 && p[3] != 6)) return false;
  if (p[1] != IPPROTO_TCP && p[1] != IPPROTO_UDP) return false;
  if (p[2] > 7) return false;  // dataplane::kFlowStateMask
  f.v6 = p[0] == 6;
  f.proto = p[1];
  f.state = p[2];
  f.backend_v6 = p[3] == 6;
  f.sport_be = getBe16(p + 4);
  f.dport_be = getBe16(p + 6);
  f.backend_port_be = getBe16(p + 8);
  std::memcpy(f.src, p + 12, 16);
  std::memcpy(f.dst, p + 28, 16);
  std::memcpy(f.backend, p + 44, 16);
  if (!addrOk(f.v6, f.src) || !addrOk(f.v6, f.dst) || !addrOk(f.backend_v6, f.backend)) return false;
  f.idle_ms = get32(p + 60);
  f.generation = get64(p + 64);
  return true;
}

size_t encodeSyncDatagram(const SyncHeader& h, std::span<const SyncFlow> records, const SyncKey& key,
                          std::span<uint8_t> out) {
  const size_t n = records.size();
  if (n > kMaxSyncRecords || out.size() < syncDatagramBytes(n)) return 0;
  uint8_t* p = out.data();
  put32(p, kSyncMagic);
  p[4] = h.version;
  p[5] = 0;
  put16(p + 6, uint16_t(n));
  put64(p + 8, h.boot_id);
  put64(p + 16, h.sequence);
  put64(p + 24, h.send_ms);
  for (size_t i = 0; i < n; i++) encodeSyncRecord(records[i], p + kSyncHeaderBytes + i * kSyncRecordBytes);
  const size_t body = kSyncHeaderBytes + n * kSyncRecordBytes;
  crypto_auth(p + body, p, body, key.data());
  return body + kSyncMacBytes;
}

void decodeSyncDatagram(std::span<const uint8_t> in, const SyncKey& key, SyncDecoded& out) {
  out.reject.reset();
  out.count = 0;
  const uint8_t* p = in.data();
  if (in.size() < syncDatagramBytes(0)) {
    out.reject = SyncReject::Truncated;
    return;
  }
  if (get32(p) != kSyncMagic) {
    out.reject = SyncReject::BadMagic;
    return;
  }
  if (p[4] != kSyncVersion) {
    out.reject = SyncReject::BadVersion;
    return;
  }
  const size_t n = get16(p + 6);
  if (n > kMaxSyncRecords) {
    out.reject = SyncReject::BadCount;
    return;
  }
  if (in.size() != syncDatagramBytes(n)) {
    out.reject = in.size() < syncDatagramBytes(n) ? SyncReject::Truncated : SyncReject::BadCount;
    return;
  }
  const size_t body = kSyncHeaderBytes + n * kSyncRecordBytes;
  // crypto_auth_verify compares in constant time (sodium_memcmp semantics).
  if (crypto_auth_verify(p + body, p, body, key.data()) != 0) {
    out.reject = SyncReject::BadMac;
    return;
  }
  for (size_t i = 0; i < n; i++) {
    if (!decodeSyncRecord(p + kSyncHeaderBytes + i * kSyncRecordBytes, out.records[i])) {
      out.reject = SyncReject::BadRecord;
      return;
    }
  }
  out.header.version = p[4];
  out.header.count = uint16_t(n);
  out.header.boot_id = get64(p + 8);
  out.header.sequence = get64(p + 16);
  out.header.send_ms = get64(p + 24);
  out.count = n;
}

}  // namespace l4lb::control::sync
