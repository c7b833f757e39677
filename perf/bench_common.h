// Shared plumbing for the benchmarks: command-line options, EAL start-up without hugepages,
// one JSON line per measured run (perf/run.sh aggregates them), percentiles.
// Benchmark code, not data-plane code: it allocates and may exit on misuse.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace l4lb::perf {

// "--key value" and bare "--flag" options after the command name.
class Options {
 public:
  Options(int argc, char** argv);  // argv[0] is the command name
  std::string str(const std::string& key, const std::string& def) const;
  uint64_t u64(const std::string& key, uint64_t def) const;
  double dbl(const std::string& key, double def) const;
  bool flag(const std::string& key) const {
    used_[key] = true;
    return values_.count(key) != 0;
  }
  // Exits with a message naming any option that no str/u64/dbl/flag call asked about.
  void rejectUnknown() const;

 private:
  std::map<std::string, std::string> values_;
  mutable std::map<std::string, bool> used_;
};

[[noreturn]] void die(const std::string& msg);

// rte_eal_init with --no-huge, --no-pci, a per-process --file-prefix and the given lcores
// (the first is the main lcore: EAL pins the calling thread to it). Exits on failure.
// `huge`: on hugepages instead (--in-memory: no hugetlbfs files; pages reserved beforehand, e.g.
// scripts/setup-hugepages.sh --no-mount), allocated on demand, so `memory_mb` is not used.
void startEal(const std::string& lcores, uint32_t memory_mb, bool huge = false);
// rte_eal_cleanup and removal of /var/run/dpdk/<prefix> (--no-huge leaves it behind).
void stopEal();

// One measured run: {"bench":..., "label":..., "run":..., fields...} on stdout.
struct Record {
  std::string bench, label;
  int run = 0;
  std::vector<std::pair<std::string, double>> fields;
  std::vector<std::pair<std::string, std::string>> tags;
  Record& add(const std::string& k, double v) {
    fields.emplace_back(k, v);
    return *this;
  }
  Record& tag(const std::string& k, const std::string& v) {
    tags.emplace_back(k, v);
    return *this;
  }
  void print() const;
};

// p in [0, 100], nearest-rank on a copy.
double percentile(std::vector<double> v, double p);

// Pins the calling thread to `core` (benchmarks that start their own threads).
void pinThread(unsigned core);

}  // namespace l4lb::perf
