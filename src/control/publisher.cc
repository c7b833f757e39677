#include "control/publisher.h"

#include <rte_rcu_qsbr.h>

namespace l4lb::control {

SnapshotPublisher::~SnapshotPublisher() {
  // Workers have stopped (or never started) by now: nobody can hold the pointer.
  delete shared_.snapshot.exchange(nullptr, std::memory_order_acq_rel);
}

void SnapshotPublisher::publish(std::unique_ptr<Snapshot> next) {
  const Snapshot* old = shared_.snapshot.exchange(next.release(), std::memory_order_acq_rel);
  publishes_++;
  if (old == nullptr) return;
  // Every registered worker must pass a quiescent state after the store; the control thread is
  // not a reader, hence THRID_INVALID. Returns at once when no worker is registered.
  if (shared_.qsbr != nullptr) rte_rcu_qsbr_synchronize(shared_.qsbr, RTE_QSBR_THRID_INVALID);
  delete old;
}

}  // namespace l4lb::control
