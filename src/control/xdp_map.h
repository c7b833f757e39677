// Control-side adapter for l4lb's XDP program (src/dataplane/xdp/l4lb_xdp.bpf.c) on AF_XDP
// ports: keeps its address map (l4lb_addrs) equal to what the control plane wants and reads its
// verdict counters (l4lb_xdp_stats). The program itself is loaded and attached by DPDK's
// net_af_xdp PMD (devarg xdp_prog=defaultXdpProgram()); this class only finds its maps.
// Thread ownership: the control thread; the kernel map is safe to read and write concurrently
// with the program, entry by entry.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "l4lb/addr.h"
#include "l4lb/snapshot.h"

namespace l4lb::control {

enum XdpAddrFlag : uint32_t { kXdpVip = 1, kXdpOwn = 2, kXdpNatBackend = 4 };

struct XdpAddr {
  IpAddr addr;
  uint32_t flags = 0;
  bool operator==(const XdpAddr&) const = default;
};

// What the XDP program must know of a snapshot: VIPs and full NAT's source addresses (their
// traffic goes to the workers), two-arm NAT's backends (their replies too), and the ports' own
// addresses `own` (the kernel's).
std::vector<XdpAddr> xdpAddresses(const Snapshot& s, const std::vector<IpAddr>& own);

// What the last sync() did, so callers and tests can see that unchanged entries were left alone.
struct XdpSyncCounts {
  size_t added = 0;
  size_t updated = 0;  // flags changed
  size_t removed = 0;
  size_t unchanged = 0;
};

class XdpAddrMap {
 public:
  // Our program attached to `ifname` (bpf_xdp_query_id), then its l4lb_addrs and l4lb_xdp_stats
  // maps through the program's map ids. nullptr with `err` ("no XDP program on IF", "the XDP
  // program on IF is not l4lb's (no l4lb_addrs map)", a map of the wrong shape, ...).
  static std::unique_ptr<XdpAddrMap> open(const std::string& ifname, std::string& err);
  // Takes duplicates of the two map descriptors (the caller keeps its own), checking their
  // shape; nullptr with `err` when they are not l4lb_addrs / l4lb_xdp_stats maps.
  static std::unique_ptr<XdpAddrMap> fromFds(int addrs_fd, int stats_fd, std::string& err);
  static std::unique_ptr<XdpAddrMap> fromFds(int addrs_fd, int stats_fd);

  ~XdpAddrMap();
  XdpAddrMap(const XdpAddrMap&) = delete;
  XdpAddrMap& operator=(const XdpAddrMap&) = delete;

  // Makes the map hold exactly `want`, flags OR-ed per address: deletes stale entries first
  // (room for the new ones in a full map), then adds and updates; an entry whose flags did not
  // change is not rewritten. Each entry changes atomically, and every mix of old and new entries
  // is a valid table, so the program may run throughout. On a kernel error the map is left
  // partly synced and false is returned with `err`; the next sync() finishes the job. Input
  // errors (no flags, unknown flag bits, more addresses than the map holds) change nothing.
  bool sync(const std::vector<XdpAddr>& want, std::string& err);
  const XdpSyncCounts& lastSync() const { return last_; }

  // The map's entries, sorted (IPv4 first, then by address bytes).
  std::vector<XdpAddr> dump() const;
  // Verdict name ("redirect_vip", ...) -> sum over CPUs. Every name is present.
  std::map<std::string, uint64_t> stats() const;

 private:
  XdpAddrMap(int addrs_fd, int stats_fd, uint32_t max_entries);

  int addrs_fd_;
  int stats_fd_;
  uint32_t max_entries_;
  XdpSyncCounts last_;
};

// The ids of the maps a BPF program uses (two bpf_obj_get_info_by_fd calls: how many, then
// which) and, when `name` is given, the program's name. On failure, errno's text in `err`.
bool bpfProgMapIds(int prog_fd, std::vector<uint32_t>& ids, std::string& err, std::string* name = nullptr);

// The XDP object to give the PMD: the build tree's when it exists (running from the build
// directory), else the installed one (<libdir>/l4lb/l4lb_xdp.o).
std::string defaultXdpProgram();

}  // namespace l4lb::control
