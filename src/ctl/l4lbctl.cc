// l4lbctl: the operator's client for a running l4lb. One JSON request per connection on the
// daemon's Unix socket ([control] socket); prints the reply as tables, or as JSON with --json.
// Exit codes: 0 done, 1 the daemon refused or the command failed, 2 usage, 3 no daemon reachable.
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ctl/render.h"

namespace {

using nlohmann::json;

constexpr const char* kDefaultSocket = "/run/l4lb/l4lb.sock";
using l4lb::ctl::kExitFailed;
using l4lb::ctl::kExitNoDaemon;
using l4lb::ctl::kExitUsage;
constexpr int kTimeoutMs = 60000;  // a reload rebuilds Maglev tables: allow it time

void usage(FILE* f) { std::fputs(l4lb::ctl::usageText(kDefaultSocket).c_str(), f); }

[[noreturn]] void noDaemon(const std::string& msg) {
  std::fprintf(stderr, "l4lbctl: %s\n", msg.c_str());
  std::exit(kExitNoDaemon);
}

std::string talk(const std::string& path, const std::string& request) {
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (path.size() >= sizeof(sa.sun_path)) noDaemon("socket path too long: " + path);
  std::memcpy(sa.sun_path, path.c_str(), path.size() + 1);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) noDaemon(std::string("socket: ") + std::strerror(errno));
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
    const int e = errno;
    std::string why = std::strerror(e);
    if (e == ENOENT) why = "no such socket (l4lb is not running, or [control] socket names another path; see -s)";
    else if (e == ECONNREFUSED) why = "connection refused (l4lb is not running: stale socket file)";
    else if (e == EACCES || e == EPERM)
      why = "permission denied (the socket is owned by root with [control] mode, 0600 by default: run as root)";
    else if (e == ENOTSOCK) why = "not a socket";
    noDaemon("cannot connect to " + path + ": " + why);
  }
  std::string req = request + "\n";
  for (size_t off = 0; off < req.size();) {
    ssize_t n = send(fd, req.data() + off, req.size() - off, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      noDaemon("sending to " + path + ": " + std::strerror(errno));
    }
    off += size_t(n);
  }
  shutdown(fd, SHUT_WR);
  std::string out;
  char buf[65536];
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    int r = poll(&p, 1, kTimeoutMs);
    if (r < 0 && errno == EINTR) continue;
    if (r == 0) noDaemon("no reply from " + path + " within " + std::to_string(kTimeoutMs / 1000) + " s");
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) noDaemon("reading from " + path + ": " + std::strerror(errno));
    if (n == 0) break;
    out.append(buf, size_t(n));
  }
  close(fd);
  if (out.empty()) noDaemon("the daemon closed the connection without a reply");
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::string sock = kDefaultSocket;
  bool as_json = false;
  std::vector<std::string> words;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    if (a == "--json") as_json = true;
    else if (a == "-s" || a == "--socket") {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "l4lbctl: %s needs a value\n", a.c_str());
        return kExitUsage;
      }
      sock = argv[++i];
    } else if (a == "-h" || a == "--help") {
      usage(stdout);
      return 0;
    } else if (a.size() > 1 && a[0] == '-' && words.empty()) {
      std::fprintf(stderr, "l4lbctl: unknown option '%s'\n", a.c_str());
      usage(stderr);
      return kExitUsage;
    } else words.push_back(a);
  }
  if (words.empty()) {
    usage(stderr);
    return kExitUsage;
  }
  const std::string cmd = words[0];
  std::vector<std::string> args(words.begin() + 1, words.end());
  std::string bad;
  if (l4lb::ctl::checkCommand(cmd, args.size(), bad) != l4lb::ctl::kExitOk) {
    std::fputs(bad.c_str(), stderr);
    usage(stderr);
    return kExitUsage;
  }
  // The daemon runs elsewhere in the file system's view of things: send an absolute path.
  if (cmd == "diff") {
    char buf[PATH_MAX];
    if (realpath(args[0].c_str(), buf) == nullptr) {
      std::fprintf(stderr, "l4lbctl: diff: %s: %s\n", args[0].c_str(), std::strerror(errno));
      return kExitFailed;
    }
    args[0] = buf;
  }
  const std::string raw = talk(sock, json{{"cmd", cmd}, {"args", args}}.dump());
  json r = json::parse(raw, nullptr, false);
  if (r.is_discarded() || !r.is_object()) noDaemon("unreadable reply from " + sock + ": " + raw.substr(0, 200));
  const bool ok = r.value("ok", false);
  if (as_json) {
    std::printf("%s\n", r.dump(2).c_str());
    return ok ? 0 : kExitFailed;
  }
  if (!ok) {
    std::fputs(l4lb::ctl::renderError(cmd, r).c_str(), stderr);
    return kExitFailed;
  }
  std::fputs(l4lb::ctl::renderReply(cmd, r, int64_t(time(nullptr))).c_str(), stdout);
  return 0;
}
