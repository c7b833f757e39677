// The sync thread: flow sync between the balancers of a cluster (docs/SCALE-OUT.md,
// "Flow sync"), control side.
//
//  send:    drains every worker's sync_out ring (the flows it created or re-announces), packs
//           the records into datagrams (at most 18 records, 1400 bytes; sync_codec.h), MACs
//           each once and sends it to every peer; an empty datagram (heartbeat) at least every
//           kSyncHeartbeatMs, so peers see us alive when no flow is new;
//  receive: takes datagrams on the [sync] listen socket, refuses those from an address:port
//           that is no peer, that fail the codec's checks (MAC first of all) or the peer's
//           replay state (sync_peers.h), and hands each record of an accepted one to the
//           owning worker's sync_in ring (sync_owner.h); a full ring drops the record (counted:
//           the sender re-announces an active flow every announce_interval).
// Every refusal is counted by reason (sync_reject.h); nothing of a refused datagram is used.
//
// A plain std::thread, not an EAL lcore: it sleeps in poll() (kSyncPollMs) between rounds and
// never spins (it skips the sleep only while a ring holds more than a round's share). It touches the rings only as their one consumer (sync_out) and one producer
// (sync_in); the workers never wait for it. Its counters are atomics the control thread reads
// (status()).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include <rte_ring.h>

#include "control/config.h"
#include "control/sync/sync_codec.h"
#include "control/sync/sync_owner.h"
#include "control/sync/sync_peers.h"
#include "control/sync/sync_stats.h"

namespace l4lb::control::sync {

inline constexpr int kSyncPollMs = 5;
inline constexpr uint64_t kSyncHeartbeatMs = 1000;
// Per round: records taken from each sync_out ring, and datagrams received, at most; the rest
// waits for the next round (a few ms), so neither direction starves the other.
inline constexpr unsigned kSyncDrainPerRing = 1024;
inline constexpr unsigned kSyncRecvPerRound = 256;
// Records per worker ring (each direction): a second of 1M new flows/s over 16 workers would
// need 64k; short bursts are what a ring absorbs, the re-announce covers what it drops.
inline constexpr uint32_t kSyncRingSize = 16384;

struct SyncServiceOptions {
  SyncEndpoint listen;
  std::vector<SyncEndpoint> peers;
  SyncKey key{};
  std::vector<rte_ring*> out_rings;  // per worker: worker -> sync thread
  std::vector<rte_ring*> in_rings;   // per worker: sync thread -> worker
  FlowOwner owner{1, {}};
};

class SyncService {
 public:
  explicit SyncService(SyncServiceOptions o);
  ~SyncService();
  SyncService(const SyncService&) = delete;
  SyncService& operator=(const SyncService&) = delete;

  // Binds the UDP socket to listen and starts the thread. False with `err` ("sync.listen
  // 198.18.40.11:7400: bind: Cannot assign requested address").
  bool start(std::string& err);
  // Stops and joins the thread, closes the socket. Idempotent.
  void stop();

  SyncStatus status() const;
  uint64_t bootId() const { return boot_id_; }

 private:
  void run();
  void receive(uint64_t now_mono, uint64_t now_wall);
  void handle(std::span<const uint8_t> d, const IpAddr& from, uint16_t port, uint64_t now_mono, uint64_t now_wall);
  // True when some ring still held records after its share (the next round does not wait).
  bool drainAndSend(uint64_t now_mono, uint64_t now_wall);
  void send(std::span<const SyncFlow> records, uint64_t now_mono, uint64_t now_wall);
  void updateRates(uint64_t now_mono);

  SyncServiceOptions o_;
  SyncPeers peers_;
  SyncCounters ctr_;
  uint64_t boot_id_ = 0;
  uint64_t sequence_ = 0;
  uint64_t last_send_mono_ = 0, last_rate_mono_ = 0;
  int fd_ = -1;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  SyncDecoded decoded_;  // sync thread only: one datagram's records
};

}  // namespace l4lb::control::sync
