// A test suite run once per forwarding mode (TEST_P over FwdMode) on a fresh worker. The suite
// names its configuration and its worker:
//   class Forwarding : public test::PerMode<Forwarding> {
//    public:
//     static control::Config config(FwdMode m) { return fwdConfig(m); }
//     static std::unique_ptr<dataplane::WorkerState> worker() { return makeWorker(); }
//   };
// and each TEST_P body starts with `mode`, the built snapshot `s` and the worker `w` ready.
#pragma once

#include <gtest/gtest.h>

#include <memory>

#include "control/config.h"
#include "control/snapshot_builder.h"
#include "dataplane/worker.h"
#include "l4lb/snapshot.h"
#include "topology.h"

namespace l4lb::test {

template <typename Suite>
class PerMode : public ::testing::TestWithParam<FwdMode> {
 protected:
  void SetUp() override {
    mode = GetParam();
    s = topo::build(sb, Suite::config(mode));
    ASSERT_TRUE(s);
    w = Suite::worker();
  }

  FwdMode mode = FwdMode::Dsr;
  control::SnapshotBuilder sb;  // declared first: outlives the snapshot it built
  std::unique_ptr<Snapshot> s;
  std::unique_ptr<dataplane::WorkerState> w;
};

}  // namespace l4lb::test
