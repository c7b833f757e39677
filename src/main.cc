// l4lb: the daemon's command line.
#include <cstdio>
#include <cstring>
#include <string>

#include "control/daemon.h"

namespace {
void usage(FILE* f) {
  std::fprintf(f,
               "usage: l4lb [-c FILE] [--stats-file FILE]   run the balancer (default /etc/l4lb/l4lb.toml)\n"
               "       l4lb --check-config FILE               validate FILE: exit 0, or 1 with messages\n"
               "       l4lb --config-keys FILE                the configuration keys the loader knows, one per line\n"
               "                                              (dotted; for the tables FILE has)\n"
               "       l4lb --config-sections FILE            the tables the loader read in FILE, as TOML headers\n"
               "       l4lb --version\n");
}
}  // namespace

int main(int argc, char** argv) {
  l4lb::control::DaemonOptions opts;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "l4lb: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--check-config") return l4lb::control::checkConfig(value());
    if (a == "--config-keys") return l4lb::control::printConfigKeys(value());
    if (a == "--config-sections") return l4lb::control::printConfigSections(value());
    if (a == "-c" || a == "--config") opts.config_path = value();
    else if (a == "--stats-file") opts.stats_file = value();
    else if (a == "--version") {
      std::printf("l4lb %s\n", L4LB_VERSION);
      return 0;
    } else if (a == "-h" || a == "--help") {
      usage(stdout);
      return 0;
    } else {
      std::fprintf(stderr, "l4lb: unknown argument '%s'\n", a.c_str());
      usage(stderr);
      return 2;
    }
  }
  return l4lb::control::runDaemon(opts);
}
