#include "control/xdp_reclaim.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <vector>

#include "control/log.h"
#include "control/xdp_map.h"
#include "dataplane/xdp/l4lb_xdp.h"

namespace l4lb::control {
namespace {

std::string errnoText(int e) { return std::strerror(e < 0 ? -e : e); }

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

struct ProgInfo {
  std::string name;
  bool has_addrs_map = false;
};

// The program's name and whether one of its maps is l4lb_addrs.
bool progInfo(int fd, ProgInfo& out, std::string& err) {
  std::vector<uint32_t> ids;
  if (!bpfProgMapIds(fd, ids, err, &out.name)) return false;
  for (uint32_t id : ids) {
    Fd m(bpf_map_get_fd_by_id(id));
    if (m.get() < 0) continue;
    bpf_map_info mi{};
    uint32_t mlen = sizeof(mi);
    if (bpf_obj_get_info_by_fd(m.get(), &mi, &mlen) == 0 && std::strcmp(mi.name, "l4lb_addrs") == 0)
      out.has_addrs_map = true;
  }
  return true;
}

// A process (other than this one) with a descriptor of program `id` open, as "pid N (comm)":
// the l4lb that attached it is still alive (the PMD keeps the program's object open).
std::optional<std::string> holderOf(uint32_t id) {
  namespace fs = std::filesystem;
  const std::string self = std::to_string(getpid());
  const std::string want = "prog_id:\t" + std::to_string(id);
  std::error_code ec;
  for (fs::directory_iterator p("/proc", ec), end; !ec && p != end; p.increment(ec)) {
    const std::string pid = p->path().filename();
    if (pid.empty() || pid.find_first_not_of("0123456789") != std::string::npos || pid == self) continue;
    std::error_code ec2;
    for (fs::directory_iterator f(p->path() / "fd", ec2), fend; !ec2 && f != fend; f.increment(ec2)) {
      std::error_code ec3;
      if (fs::read_symlink(f->path(), ec3) != "anon_inode:bpf-prog") continue;
      std::ifstream info(p->path() / "fdinfo" / f->path().filename());
      for (std::string line; std::getline(info, line);) {
        if (line != want) continue;
        std::ifstream commf(p->path() / "comm");
        std::string comm;
        std::getline(commf, comm);
        return "pid " + pid + " (" + comm + ")";
      }
    }
  }
  return std::nullopt;
}

}  // namespace

bool reclaimStaleXdp(const std::string& ifname, std::string& err) {
  unsigned ifindex = if_nametoindex(ifname.c_str());
  if (ifindex == 0) return true;  // the PMD names the missing interface
  bpf_xdp_query_opts q{};
  q.sz = sizeof(q);
  if (int rc = bpf_xdp_query(int(ifindex), 0, &q); rc != 0) {
    err = "querying the XDP program on " + ifname + ": " + errnoText(rc);
    return false;
  }
  const struct {
    uint32_t id;
    uint32_t mode;
  } attached[] = {{q.skb_prog_id, XDP_FLAGS_SKB_MODE},
                  {q.drv_prog_id, XDP_FLAGS_DRV_MODE},
                  {q.hw_prog_id, XDP_FLAGS_HW_MODE}};
  for (const auto& a : attached) {
    if (a.id == 0) continue;
    const std::string what = "XDP program id " + std::to_string(a.id);
    Fd prog(bpf_prog_get_fd_by_id(a.id));
    if (prog.get() < 0) {
      if (errno == ENOENT) continue;  // detached meanwhile
      err = "opening the " + what + " attached to " + ifname + ": " + errnoText(errno);
      return false;
    }
    ProgInfo pi;
    if (!progInfo(prog.get(), pi, err)) {
      err = "reading the " + what + " attached to " + ifname + ": " + err;
      return false;
    }
    if (pi.name != L4LB_XDP_PROG_NAME || !pi.has_addrs_map) {
      err = "interface " + ifname + " has a foreign XDP program attached: id " + std::to_string(a.id) +
            ", name \"" + pi.name + "\"; l4lb does not remove other programs: detach it (ip link set dev " +
            ifname + " xdp off) or give l4lb another interface";
      return false;
    }
    if (auto holder = holderOf(a.id)) {
      err = "interface " + ifname + " has l4lb's " + what + " attached and in use by " + *holder +
            ": another l4lb on this port?";
      return false;
    }
    bpf_xdp_attach_opts o{};
    o.sz = sizeof(o);
    o.old_prog_fd = prog.get();  // XDP_FLAGS_REPLACE: only if still this program
    if (int rc = bpf_xdp_detach(int(ifindex), a.mode, &o); rc != 0) {
      err = "detaching the stale l4lb " + what + " from " + ifname + ": " + errnoText(rc);
      return false;
    }
    logWarn("interface " + ifname + ": detached l4lb's stale " + what +
            " (left attached by an l4lb that did not stop cleanly)");
  }
  return true;
}

}  // namespace l4lb::control
