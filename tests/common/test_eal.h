// EAL for the test programs (tests/common/eal_main.cc, the fuzzers): no hugepages, no PCI, no
// telemetry, a per-process file prefix; main lcore 0 plus as many worker lcores as the test asks.
#pragma once

#include <rte_eal.h>
#include <sched.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace l4lb::test {

struct EalShape {
  unsigned workers = 0;  // worker lcores besides the main one
  unsigned memory_mb = 512;
};

// What eal_main.cc's main asks for. It defines the default (no workers, 512 MB) as a weak
// symbol; a test file that needs worker lcores of its own or another amount of memory defines
// this function itself.
EalShape testEalShape();

// --lcores: main lcore 0 alone on the first CPU of the affinity mask, worker l on the other CPUs
// in turn (on the first one when it is the only CPU). L4LB_TEST_LCORES overrides it.
inline std::string testLcores(unsigned workers) {
  if (const char* e = getenv("L4LB_TEST_LCORES")) return e;
  cpu_set_t cpus;
  std::vector<int> ids;
  if (sched_getaffinity(0, sizeof(cpus), &cpus) == 0)
    for (int c = 0; c < CPU_SETSIZE; c++)
      if (CPU_ISSET(c, &cpus)) ids.push_back(c);
  if (ids.empty()) ids.push_back(0);
  std::string lcores = "0@" + std::to_string(ids[0]);
  for (size_t l = 1; l <= workers; l++) {
    const int cpu = ids.size() > 1 ? ids[1 + (l - 1) % (ids.size() - 1)] : ids[0];
    lcores += "," + std::to_string(l) + "@" + std::to_string(cpu);
  }
  return lcores;
}

// rte_eal_init with file prefix "<name>_<pid>"; the runtime directory on success, nullopt on
// failure. --no-huge forbids --in-memory, so EAL makes a runtime directory; with --no-shconf and
// no telemetry nothing uses it after init: it is removed at once, so even an abort (a sanitizer,
// a fuzzer's crash) that skips every exit path leaves nothing behind.
inline std::optional<std::string> initTestEal(const std::string& name, const EalShape& shape) {
  const std::string lcores = testLcores(shape.workers);
  const std::string prefix = name + "_" + std::to_string(getpid());
  std::vector<std::string> args = {name,          "--lcores",  lcores,     "--no-huge",
                                   "-m",          std::to_string(shape.memory_mb),
                                   "--no-shconf", "--no-pci",  "--no-telemetry",
                                   "--file-prefix", prefix,    "--log-level", "*:error"};
  std::vector<char*> av;
  for (auto& a : args) av.push_back(a.data());
  const std::string run_dir = "/var/run/dpdk/" + prefix;
  std::error_code ec;
  const bool ok = rte_eal_init(int(av.size()), av.data()) >= 0;
  std::filesystem::remove_all(run_dir, ec);
  if (!ok) {
    fprintf(stderr, "%s: EAL init failed (--lcores %s)\n", name.c_str(), lcores.c_str());
    return std::nullopt;
  }
  return run_dir;
}

}  // namespace l4lb::test
