#include "bench_common.h"

#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include <rte_eal.h>

namespace l4lb::perf {

namespace {
std::string g_prefix;
}

Options::Options(int argc, char** argv) {
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    if (a.rfind("--", 0) != 0) die("unexpected argument '" + a + "' (options are --key value)");
    a = a.substr(2);
    if (i + 1 < argc && std::string(argv[i + 1]).rfind("--", 0) != 0) {
      values_[a] = argv[++i];
    } else {
      values_[a] = "";
    }
  }
}

std::string Options::str(const std::string& key, const std::string& def) const {
  used_[key] = true;
  auto it = values_.find(key);
  return it == values_.end() ? def : it->second;
}

uint64_t Options::u64(const std::string& key, uint64_t def) const {
  used_[key] = true;
  auto it = values_.find(key);
  if (it == values_.end()) return def;
  char* end = nullptr;
  double v = std::strtod(it->second.c_str(), &end);  // accepts 1e6
  if (end == it->second.c_str() || *end != '\0' || v < 0) die("--" + key + ": not a non-negative number: '" + it->second + "'");
  return uint64_t(std::llround(v));
}

double Options::dbl(const std::string& key, double def) const {
  used_[key] = true;
  auto it = values_.find(key);
  if (it == values_.end()) return def;
  char* end = nullptr;
  double v = std::strtod(it->second.c_str(), &end);
  if (end == it->second.c_str() || *end != '\0') die("--" + key + ": not a number: '" + it->second + "'");
  return v;
}

void Options::rejectUnknown() const {
  for (const auto& [k, v] : values_)
    if (!used_.count(k)) die("unknown option --" + k);
}

void die(const std::string& msg) {
  std::fprintf(stderr, "l4lb-bench: %s\n", msg.c_str());
  if (!g_prefix.empty()) {  // no rte_eal_cleanup here: we may be anywhere, even on a worker lcore
    std::error_code ec;
    std::filesystem::remove_all("/var/run/dpdk/" + g_prefix, ec);
  }
  std::exit(2);
}

void startEal(const std::string& lcores, uint32_t memory_mb, bool huge) {
  g_prefix = "l4lb_perf_" + std::to_string(getpid());
  std::vector<std::string> args = {"l4lb-bench", "-l", lcores, "--no-shconf", "--no-pci",
                                   "--file-prefix", g_prefix, "--log-level", "*:error"};
  if (huge) {
    args.insert(args.end(), {"--in-memory"});
  } else {
    args.insert(args.end(), {"--no-huge", "-m", std::to_string(memory_mb)});
  }
  std::vector<char*> av;
  for (auto& a : args) av.push_back(a.data());
  if (rte_eal_init(int(av.size()), av.data()) < 0) die("EAL init failed (" + lcores + (huge ? ", hugepages" : ", " + std::to_string(memory_mb) + " MB") + ")");
}

void stopEal() {
  rte_eal_cleanup();
  std::error_code ec;
  std::filesystem::remove_all("/var/run/dpdk/" + g_prefix, ec);
}

void Record::print() const {
  std::printf("{\"bench\": \"%s\", \"label\": \"%s\", \"run\": %d", bench.c_str(), label.c_str(), run);
  for (const auto& [k, v] : tags) std::printf(", \"%s\": \"%s\"", k.c_str(), v.c_str());
  for (const auto& [k, v] : fields) {
    if (std::isfinite(v)) {
      std::printf(", \"%s\": %.6g", k.c_str(), v);
    } else {
      std::printf(", \"%s\": null", k.c_str());
    }
  }
  std::printf("}\n");
  std::fflush(stdout);
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  size_t rank = size_t(std::ceil(p / 100.0 * double(v.size())));
  if (rank == 0) rank = 1;
  return v[std::min(rank, v.size()) - 1];
}

void pinThread(unsigned core) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(core, &set);
  if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set) != 0) die("cannot pin thread to core " + std::to_string(core));
}

}  // namespace l4lb::perf
