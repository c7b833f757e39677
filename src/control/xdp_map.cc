#include "control/xdp_map.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <net/if.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <optional>
#include <utility>

#include "dataplane/xdp/l4lb_xdp.h"

#ifndef L4LB_XDP_OBJ_BUILD
#error "meson defines L4LB_XDP_OBJ_BUILD (the build tree's l4lb_xdp.o)"
#endif
#ifndef L4LB_XDP_OBJ_INSTALL
#error "meson defines L4LB_XDP_OBJ_INSTALL (<libdir>/l4lb/l4lb_xdp.o)"
#endif

namespace l4lb::control {

std::vector<XdpAddr> xdpAddresses(const Snapshot& s, const std::vector<IpAddr>& own) {
  std::vector<XdpAddr> want;
  for (const SnapVip& v : s.vips) {
    want.push_back({v.addr, kXdpVip});
    if (v.mode == FwdMode::Nat)
      for (uint32_t id : v.backends)
        if (const SnapBackend* b = s.backend(id)) want.push_back({b->addr, kXdpNatBackend});
  }
  for (const SnapSnatAddr& a : s.snat_addrs) want.push_back({a.addr, kXdpVip});
  for (const IpAddr& a : own) want.push_back({a, kXdpOwn});
  return want;
}
namespace {

static_assert(kXdpVip == L4LB_XDP_VIP && kXdpOwn == L4LB_XDP_OWN &&
              kXdpNatBackend == L4LB_XDP_NAT_BACKEND);
static_assert(sizeof(l4lb_xdp_addr_key) == 20, "the program's key layout");

constexpr const char* kAddrsMap = "l4lb_addrs";
constexpr const char* kStatsMap = "l4lb_xdp_stats";

#define L4LB_XDP_STAT_NAME(id, name) name,
constexpr const char* kStatNames[] = {L4LB_XDP_STATS(L4LB_XDP_STAT_NAME)};
#undef L4LB_XDP_STAT_NAME
static_assert(std::size(kStatNames) == L4LB_XDP_STAT_COUNT);

std::string errnoText(int e) { return std::strerror(e < 0 ? -e : e); }

l4lb_xdp_addr_key keyOf(const IpAddr& a) {
  l4lb_xdp_addr_key k{};
  k.family = a.isV4() ? 4 : 6;
  std::memcpy(k.addr, a.bytes.data(), a.isV4() ? 4 : 16);
  return k;
}

// nullopt for a key the program would never match (a foreign writer's garbage).
std::optional<IpAddr> addrOf(const l4lb_xdp_addr_key& k) {
  if (k.family == 4) {
    IpAddr a;
    std::memcpy(a.bytes.data(), k.addr, 4);
    if (!std::all_of(k.addr + 4, k.addr + 16, [](uint8_t b) { return b == 0; }))
      return std::nullopt;
    return a;
  }
  if (k.family == 6) return IpAddr::v6(k.addr);
  return std::nullopt;
}

// (family, address bytes): the order dump() promises.
struct KeyLess {
  bool operator()(const l4lb_xdp_addr_key& a, const l4lb_xdp_addr_key& b) const {
    if (a.family != b.family) return a.family < b.family;
    return std::memcmp(a.addr, b.addr, sizeof(a.addr)) < 0;
  }
};
using Entries = std::map<l4lb_xdp_addr_key, uint32_t, KeyLess>;

// BPF_OBJ_GET_INFO_BY_FD answers for any BPF object, filling a program's info into a map's
// struct; the descriptor's anon inode name says what it really is.
bool isBpfMap(int fd) {
  std::error_code ec;
  auto target = std::filesystem::read_symlink("/proc/self/fd/" + std::to_string(fd), ec);
  return !ec && target == "anon_inode:bpf-map";
}

bool mapInfo(int fd, bpf_map_info& info) {
  if (!isBpfMap(fd)) {
    errno = EINVAL;
    return false;
  }
  std::memset(&info, 0, sizeof(info));
  uint32_t len = sizeof(info);
  return bpf_obj_get_info_by_fd(fd, &info, &len) == 0;
}

// Both maps have the shape the program declares; err names what is wrong otherwise.
bool checkShape(int addrs_fd, int stats_fd, uint32_t& max_entries, std::string& err) {
  bpf_map_info a, s;
  if (addrs_fd < 0 || stats_fd < 0) {
    err = std::string(addrs_fd < 0 ? kAddrsMap : kStatsMap) + ": no descriptor";
    return false;
  }
  if (!mapInfo(addrs_fd, a)) {
    err = std::string(kAddrsMap) + ": not a BPF map: " + errnoText(errno);
    return false;
  }
  if (!mapInfo(stats_fd, s)) {
    err = std::string(kStatsMap) + ": not a BPF map: " + errnoText(errno);
    return false;
  }
  if (a.type != BPF_MAP_TYPE_HASH || a.key_size != sizeof(l4lb_xdp_addr_key) ||
      a.value_size != sizeof(uint32_t)) {
    err = std::string(kAddrsMap) + ": type " + std::to_string(a.type) + ", key " +
          std::to_string(a.key_size) + " B, value " + std::to_string(a.value_size) +
          " B; expected a hash with 20 B keys and 4 B values (program from another l4lb version?)";
    return false;
  }
  if (s.type != BPF_MAP_TYPE_PERCPU_ARRAY || s.key_size != 4 || s.value_size != 8 ||
      s.max_entries != L4LB_XDP_STAT_COUNT) {
    err = std::string(kStatsMap) + ": type " + std::to_string(s.type) + ", " +
          std::to_string(s.max_entries) + " entries of " + std::to_string(s.value_size) +
          " B; expected a per-CPU array of " + std::to_string(L4LB_XDP_STAT_COUNT) +
          " u64 (program from another l4lb version?)";
    return false;
  }
  max_entries = a.max_entries;
  return true;
}

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      if (fd_ >= 0) ::close(fd_);
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

Entries readEntries(int fd) {
  Entries out;
  l4lb_xdp_addr_key key{}, next{};
  const void* prev = nullptr;  // nullptr: first key
  // A concurrent delete of `key` restarts the walk at the first key (kernel semantics for a
  // missing key); the map is the control thread's alone, so that does not happen here.
  while (bpf_map_get_next_key(fd, prev, &next) == 0) {
    uint32_t flags = 0;
    if (bpf_map_lookup_elem(fd, &next, &flags) == 0) out[next] = flags;
    key = next;
    prev = &key;
  }
  return out;
}

}  // namespace

XdpAddrMap::XdpAddrMap(int addrs_fd, int stats_fd, uint32_t max_entries)
    : addrs_fd_(addrs_fd), stats_fd_(stats_fd), max_entries_(max_entries) {}

XdpAddrMap::~XdpAddrMap() {
  ::close(addrs_fd_);
  ::close(stats_fd_);
}

std::unique_ptr<XdpAddrMap> XdpAddrMap::fromFds(int addrs_fd, int stats_fd, std::string& err) {
  uint32_t max_entries = 0;
  if (!checkShape(addrs_fd, stats_fd, max_entries, err)) return nullptr;
  Fd a(::fcntl(addrs_fd, F_DUPFD_CLOEXEC, 0));
  Fd s(::fcntl(stats_fd, F_DUPFD_CLOEXEC, 0));
  if (a.get() < 0 || s.get() < 0) {
    err = "duplicating the map descriptors: " + errnoText(errno);
    return nullptr;
  }
  return std::unique_ptr<XdpAddrMap>(new XdpAddrMap(a.release(), s.release(), max_entries));
}

std::unique_ptr<XdpAddrMap> XdpAddrMap::fromFds(int addrs_fd, int stats_fd) {
  std::string ignored;
  return fromFds(addrs_fd, stats_fd, ignored);
}

std::unique_ptr<XdpAddrMap> XdpAddrMap::open(const std::string& ifname, std::string& err) {
  unsigned ifindex = if_nametoindex(ifname.c_str());
  if (ifindex == 0) {
    err = "no interface " + ifname + ": " + errnoText(errno);
    return nullptr;
  }
  uint32_t prog_id = 0;
  if (int rc = bpf_xdp_query_id(int(ifindex), 0, &prog_id); rc != 0) {
    err = "querying the XDP program on " + ifname + ": " + errnoText(rc);
    return nullptr;
  }
  if (prog_id == 0) {
    err = "no XDP program on " + ifname;
    return nullptr;
  }
  Fd prog(bpf_prog_get_fd_by_id(prog_id));
  if (prog.get() < 0) {
    err = "opening the XDP program on " + ifname + " (id " + std::to_string(prog_id) +
          "): " + errnoText(errno);
    return nullptr;
  }
  std::vector<uint32_t> ids;
  if (std::string e; !bpfProgMapIds(prog.get(), ids, e)) {
    err = "reading the XDP program on " + ifname + ": " + e;
    return nullptr;
  }
  Fd addrs, stats;
  for (uint32_t id : ids) {
    Fd m(bpf_map_get_fd_by_id(id));
    bpf_map_info mi;
    if (m.get() < 0 || !mapInfo(m.get(), mi)) continue;  // freed meanwhile: not ours anyway
    if (std::strcmp(mi.name, kAddrsMap) == 0)
      addrs = std::move(m);
    else if (std::strcmp(mi.name, kStatsMap) == 0)
      stats = std::move(m);
  }
  if (addrs.get() < 0) {
    err = "the XDP program on " + ifname + " is not l4lb's (no " + kAddrsMap + " map)";
    return nullptr;
  }
  if (stats.get() < 0) {
    err = "the XDP program on " + ifname + " is not l4lb's (no " + kStatsMap + " map)";
    return nullptr;
  }
  uint32_t max_entries = 0;
  if (!checkShape(addrs.get(), stats.get(), max_entries, err)) {
    err = "the XDP program on " + ifname + ": " + err;
    return nullptr;
  }
  return std::unique_ptr<XdpAddrMap>(new XdpAddrMap(addrs.release(), stats.release(), max_entries));
}

bool XdpAddrMap::sync(const std::vector<XdpAddr>& want, std::string& err) {
  last_ = {};
  Entries target;
  for (const XdpAddr& w : want) {
    if (w.flags == 0 || (w.flags & ~uint32_t(L4LB_XDP_ALL_FLAGS)) != 0) {
      err = "XDP address " + w.addr.str() + ": flags " + std::to_string(w.flags) +
            " (expected a non-empty set of vip=1, own=2, nat_backend=4)";
      return false;
    }
    target[keyOf(w.addr)] |= w.flags;
  }
  if (target.size() > max_entries_) {
    err = "XDP address map: " + std::to_string(target.size()) + " addresses, the program holds " +
          std::to_string(max_entries_);
    return false;
  }
  const Entries current = readEntries(addrs_fd_);
  for (const auto& [key, flags] : current) {
    if (target.count(key)) continue;
    if (bpf_map_delete_elem(addrs_fd_, &key) != 0 && errno != ENOENT) {
      err = "XDP address map: deleting " + addrOf(key).value_or(IpAddr{}).str() + ": " +
            errnoText(errno);
      return false;
    }
    last_.removed++;
  }
  for (const auto& [key, flags] : target) {
    auto it = current.find(key);
    if (it != current.end() && it->second == flags) {
      last_.unchanged++;
      continue;
    }
    if (bpf_map_update_elem(addrs_fd_, &key, &flags, BPF_ANY) != 0) {
      err = "XDP address map: writing " + addrOf(key).value_or(IpAddr{}).str() + ": " +
            errnoText(errno);
      return false;
    }
    (it == current.end() ? last_.added : last_.updated)++;
  }
  return true;
}

std::vector<XdpAddr> XdpAddrMap::dump() const {
  std::vector<XdpAddr> out;
  for (const auto& [key, flags] : readEntries(addrs_fd_)) {
    if (auto a = addrOf(key)) out.push_back({*a, flags});
  }
  return out;  // already sorted: Entries is ordered by (family, bytes)
}

std::map<std::string, uint64_t> XdpAddrMap::stats() const {
  std::map<std::string, uint64_t> out;
  // Indices below L4LB_XDP_STAT_COUNT exist (checkShape); a failed read would count as 0.
  int cpus = libbpf_num_possible_cpus();
  // A per-CPU lookup fills one 8-byte slot per possible CPU.
  std::vector<uint64_t> values(cpus > 0 ? size_t(cpus) : 1);
  for (uint32_t i = 0; i < L4LB_XDP_STAT_COUNT; i++) {
    uint64_t sum = 0;
    if (cpus > 0 && bpf_map_lookup_elem(stats_fd_, &i, values.data()) == 0) {
      for (uint64_t v : values) sum += v;
    }
    out[kStatNames[i]] = sum;
  }
  return out;
}

bool bpfProgMapIds(int prog_fd, std::vector<uint32_t>& ids, std::string& err, std::string* name) {
  // First call: how many maps; second: their ids (the kernel fills at most nr_map_ids).
  bpf_prog_info info{};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(prog_fd, &info, &len) != 0) {
    err = errnoText(errno);
    return false;
  }
  if (name != nullptr) name->assign(info.name, strnlen(info.name, sizeof(info.name)));
  ids.assign(info.nr_map_ids, 0);
  if (!ids.empty()) {
    bpf_prog_info again{};
    again.nr_map_ids = uint32_t(ids.size());
    again.map_ids = reinterpret_cast<uint64_t>(ids.data());
    len = sizeof(again);
    if (bpf_obj_get_info_by_fd(prog_fd, &again, &len) != 0) {
      err = errnoText(errno);
      return false;
    }
    ids.resize(std::min<size_t>(ids.size(), again.nr_map_ids));
  }
  return true;
}

std::string defaultXdpProgram() {
  std::error_code ec;
  // Empty in a package build (-Dxdp_from_build_tree=false): the installed object only.
  if (*L4LB_XDP_OBJ_BUILD != '\0' && std::filesystem::exists(L4LB_XDP_OBJ_BUILD, ec)) return L4LB_XDP_OBJ_BUILD;
  return L4LB_XDP_OBJ_INSTALL;
}

}  // namespace l4lb::control
