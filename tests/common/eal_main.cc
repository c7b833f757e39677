// GoogleTest main for tests that need DPDK (mempools, rte_hash): EAL without hugepages, in memory,
// with a per-process file prefix, so nothing is left in /dev/hugepages or /var/run/dpdk.
#include <gtest/gtest.h>
#include <rte_eal.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  std::string prefix = "l4lb_ut_" + std::to_string(getpid());
  std::vector<std::string> args = {"test", "-l", "0", "--no-huge", "-m", "512", "--no-shconf", "--no-pci",
                                   "--file-prefix", prefix, "--log-level", "*:error"};
  std::vector<char*> av;
  for (auto& a : args) av.push_back(a.data());
  if (rte_eal_init(int(av.size()), av.data()) < 0) {
    fprintf(stderr, "EAL init failed\n");
    return 1;
  }
  int rc = RUN_ALL_TESTS();
  rte_eal_cleanup();
  std::error_code ec;  // --no-huge forbids --in-memory, so EAL leaves its runtime dir
  std::filesystem::remove_all("/var/run/dpdk/" + prefix, ec);
  return rc;
}
