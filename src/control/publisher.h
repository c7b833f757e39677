// Publishes snapshots to the workers, RCU-style (DPDK lib/rcu QSBR; grout's swap-synchronize-free):
// the new snapshot is stored with one release store, the writer waits until every worker has
// reported a quiescent state (each worker holds no snapshot pointer across loop iterations), then
// frees the old one. Control thread only; the data path takes no lock.
#pragma once

#include <cstdint>
#include <memory>

#include "dataplane/worker.h"
#include "l4lb/snapshot.h"

namespace l4lb::control {

class SnapshotPublisher {
 public:
  // `shared.qsbr` must be initialised for every worker that will read `shared.snapshot`.
  explicit SnapshotPublisher(dataplane::DataplaneShared& shared) : shared_(shared) {}
  ~SnapshotPublisher();
  SnapshotPublisher(const SnapshotPublisher&) = delete;
  SnapshotPublisher& operator=(const SnapshotPublisher&) = delete;

  // Makes `next` the workers' table. Returns once no worker can still hold the previous one,
  // which has then been freed. Blocks the caller (never a worker) for about one worker loop.
  void publish(std::unique_ptr<Snapshot> next);

  // The published snapshot (control thread: stable until its next publish()).
  const Snapshot* current() const { return shared_.snapshot.load(std::memory_order_acquire); }
  uint64_t publishes() const { return publishes_; }

 private:
  dataplane::DataplaneShared& shared_;
  uint64_t publishes_ = 0;
};

}  // namespace l4lb::control
