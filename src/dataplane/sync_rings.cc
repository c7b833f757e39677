// STAND-IN for A2's sync_rings.cc (see sync_rings.h): createSyncRings as A2 wrote it.
#include "dataplane/sync_rings.h"

#include <atomic>

#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>

#include "l4lb/sync_record.h"

namespace l4lb::dataplane {

namespace {

constexpr uint32_t kMaxSyncRingSize = 1u << 24;

rte_ring* makeRing(const char* what, uint16_t worker, uint32_t size, std::string& err) {
  static std::atomic<uint32_t> seq{0};
  const std::string name = std::string(what) + std::to_string(worker) + "_" + std::to_string(seq++);
  const int socket = rte_socket_id() == unsigned(SOCKET_ID_ANY) ? SOCKET_ID_ANY : int(rte_socket_id());
  rte_ring* r = rte_ring_create_elem(name.c_str(), sizeof(SyncFlow), size, socket,
                                     RING_F_SP_ENQ | RING_F_SC_DEQ | RING_F_EXACT_SZ);
  if (r == nullptr)
    err = "worker " + std::to_string(worker) + ": sync ring " + name + " (" + std::to_string(size) +
          " records): " + rte_strerror(rte_errno);
  return r;
}

}  // namespace

bool createSyncRings(WorkerState& w, uint32_t size, std::string& err) {
  if (w.sync_out != nullptr || w.sync_in != nullptr) {
    err = "worker " + std::to_string(w.index) + ": sync rings exist already";
    return false;
  }
  if (size < 1 || size > kMaxSyncRingSize) {
    err = "worker " + std::to_string(w.index) + ": sync ring size " + std::to_string(size) + " must be 1.." +
          std::to_string(kMaxSyncRingSize);
    return false;
  }
  rte_ring* out = makeRing("sync_out", w.index, size, err);
  if (out == nullptr) return false;
  rte_ring* in = makeRing("sync_in", w.index, size, err);
  if (in == nullptr) {
    rte_ring_free(out);
    return false;
  }
  w.sync_out = out;
  w.sync_in = in;
  return true;
}

}  // namespace l4lb::dataplane
