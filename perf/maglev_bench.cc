// Maglev table build time (l4lb::buildMaglevTable, NSDI'16 §3.4 with weights): what a reload or a
// health change costs the control plane per VIP. No EAL: a pure function.
#include <time.h>

#include <chrono>
#include <random>
#include <vector>

#include "benches.h"
#include "l4lb/maglev.h"

namespace l4lb::perf {

int maglevMain(const Options& o) {
  const uint32_t size = uint32_t(o.u64("size", 65537));
  const uint32_t backends = uint32_t(o.u64("backends", 1000));
  const bool weighted = o.flag("weighted");
  const int runs = int(o.u64("runs", 5));
  const unsigned core = unsigned(o.u64("core", 1));
  const std::string label = o.str("label", "maglev");
  o.rejectUnknown();
  if (backends == 0 || backends >= size) die("--backends: 1..size-1");
  pinThread(core);
  std::mt19937_64 rng(42);
  std::vector<MaglevEndpoint> eps(backends);
  for (uint32_t i = 0; i < backends; i++) eps[i] = {i + 1, rng(), weighted ? uint32_t(1 + rng() % 100) : 1u};
  for (int run = 0; run < runs; run++) {
    // Wall time, and this thread's CPU time: on a shared machine the wall time also counts the
    // slices other processes got; the CPU time is the build's own cost.
    timespec c0, c1;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
    const auto t0 = std::chrono::steady_clock::now();
    const auto table = buildMaglevTable(eps, size);
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1);
    const double cpu_ms = double(c1.tv_sec - c0.tv_sec) * 1e3 + double(c1.tv_nsec - c0.tv_nsec) / 1e6;
    // A table with an empty slot is a wrong table, not a fast one.
    for (uint32_t v : table)
      if (v == 0) die("maglev table has an empty slot");
    Record{"maglev", label, run}.tag("weights", weighted ? "1..100" : "equal").add("size", size).add("backends", backends).add("ms", ms).add("cpu_ms", cpu_ms).print();
  }
  return 0;
}

}  // namespace l4lb::perf
