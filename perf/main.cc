// l4lb-bench COMMAND [--option value ...]: one JSON line per measured run on stdout, progress on
// stderr. perf/run.sh runs every benchmark and aggregates the lines into perf/results.json.
#include <cstdio>
#include <cstring>

#include "benches.h"

int main(int argc, char** argv) {
  using namespace l4lb::perf;
  if (argc < 2) {
    std::fprintf(stderr, "usage: l4lb-bench fwd|pcap|maglev|publish|flowmem|flood|idle|ports [--option value ...]\n");
    return 2;
  }
  const Options o(argc - 1, argv + 1);
  const char* cmd = argv[1];
  if (!std::strcmp(cmd, "fwd")) return fwdMain(o);
  if (!std::strcmp(cmd, "pcap")) return pcapMain(o);
  if (!std::strcmp(cmd, "maglev")) return maglevMain(o);
  if (!std::strcmp(cmd, "publish")) return publishMain(o);
  if (!std::strcmp(cmd, "flowmem")) return flowMemMain(o);
  if (!std::strcmp(cmd, "flood")) return floodMain(o);
  if (!std::strcmp(cmd, "idle")) return idleMain(o);
  if (!std::strcmp(cmd, "ports")) return portsMain(o);
  std::fprintf(stderr, "l4lb-bench: unknown command '%s'\n", cmd);
  return 2;
}
