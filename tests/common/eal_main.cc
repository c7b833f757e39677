// GoogleTest main for tests that need DPDK (mempools, rte_hash, worker lcores): the EAL of
// tests/common/test_eal.h, shaped by testEalShape().
#include <gtest/gtest.h>
#include <rte_eal.h>

#include <filesystem>

#include "test_eal.h"

namespace l4lb::test {

__attribute__((weak)) EalShape testEalShape() { return {}; }

}  // namespace l4lb::test

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  const auto run_dir = l4lb::test::initTestEal("l4lb_ut", l4lb::test::testEalShape());
  if (!run_dir) return 1;
  int rc = RUN_ALL_TESTS();
  rte_eal_cleanup();
  std::error_code ec;
  std::filesystem::remove_all(*run_dir, ec);
  return rc;
}
