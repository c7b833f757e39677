// l4lbctl: the operator's client for a running l4lb. One JSON request per connection on the
// daemon's Unix socket ([control] socket); prints the reply as tables, or as JSON with --json.
// Exit codes: 0 done, 1 the daemon refused or the command failed, 2 usage, 3 no daemon reachable.
// With --json every error is also printed on stdout as {"error": "...", "code": N} (a refusal
// is the daemon's reply with "code": 1), so scripts parse one format.
// `top` is client-side: `stats` (and `backends`) requests an interval apart, rates from ctl/top.h.
// Hidden, for the bash completion (dist/bash-completion/l4lbctl): --commands prints the command
// names, --complete vips|backends the running daemon's names (nothing if it is unreachable or
// does not answer within kCompleteTimeoutMs: a completion must never hang the shell).
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cmath>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ctl/render.h"
#include "ctl/top.h"

namespace {

using nlohmann::json;

constexpr const char* kDefaultSocket = "/run/l4lb/l4lb.sock";
using l4lb::ctl::kExitFailed;
using l4lb::ctl::kExitNoDaemon;
using l4lb::ctl::kExitUsage;
constexpr int kTimeoutMs = 60000;  // a reload rebuilds Maglev tables: allow it time
// The whole exchange of --complete, connect included: the shell waits on it at every <Tab>.
constexpr int kCompleteTimeoutMs = 500;

bool g_json = false;  // --json: errors as JSON on stdout too

void usage(FILE* f) { std::fputs(l4lb::ctl::usageText(kDefaultSocket).c_str(), f); }

// "l4lbctl: msg" on stderr and, with --json, {"error": msg, "code": code} on stdout; returns code.
int failWith(int code, const std::string& msg) {
  std::fprintf(stderr, "l4lbctl: %s\n", msg.c_str());
  if (g_json) std::printf("%s\n", json{{"error", msg}, {"code", code}}.dump().c_str());
  return code;
}

// A usage error: the message, then the usage on stderr.
int usageError(const std::string& msg) {
  failWith(kExitUsage, msg);
  usage(stderr);
  return kExitUsage;
}

[[noreturn]] void noDaemon(const std::string& msg) { std::exit(failWith(kExitNoDaemon, msg)); }

double monotonic();

// Why connecting to `path` was refused: a stale socket, or something that is no socket at all.
std::string refusedWhy(const std::string& path) {
  struct stat st{};
  if (stat(path.c_str(), &st) == 0 && !S_ISSOCK(st.st_mode))
    return std::string("not a socket (") + (S_ISDIR(st.st_mode) ? "a directory" : "a regular file") +
           "; -s wants the daemon's control socket, [control] socket in l4lb.toml)";
  return "connection refused (l4lb is not running: stale socket file)";
}

// One request, one reply, all within `timeout_ms`. False with `err` set when there is no daemon
// to talk to (exit 3).
bool tryTalk(const std::string& path, const std::string& request, std::string& out, std::string& err,
             int timeout_ms = kTimeoutMs) {
  const double deadline = monotonic() + timeout_ms / 1000.0;
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (path.size() >= sizeof(sa.sun_path)) {
    err = "socket path too long: " + path;
    return false;
  }
  std::memcpy(sa.sun_path, path.c_str(), path.size() + 1);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    err = std::string("socket: ") + std::strerror(errno);
    return false;
  }
  auto fail = [&](const std::string& m) {
    close(fd);
    err = m;
    return false;
  };
  // A Unix connect blocks while the listener's backlog is full (a daemon that stopped
  // accepting); SO_SNDTIMEO bounds that wait, and the sends.
  timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
    const int e = errno;
    std::string why = std::strerror(e);
    if (e == ENOENT) why = "no such socket (l4lb is not running, or [control] socket names another path; see -s)";
    else if (e == ECONNREFUSED) why = refusedWhy(path);
    else if (e == EAGAIN || e == EINPROGRESS) why = "no answer within " + std::to_string(timeout_ms) + " ms";
    else if (e == EACCES || e == EPERM)
      why = "permission denied (the socket is owned by root with [control] mode, 0600 by default: run as root)";
    else if (e == ENOTSOCK) why = "not a socket";
    return fail("cannot connect to " + path + ": " + why);
  }
  std::string req = request + "\n";
  for (size_t off = 0; off < req.size();) {
    ssize_t n = send(fd, req.data() + off, req.size() - off, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail("sending to " + path + ": " + std::strerror(errno));
    }
    off += size_t(n);
  }
  shutdown(fd, SHUT_WR);
  out.clear();
  char buf[65536];
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    const double left = deadline - monotonic();
    int r = left > 0 ? poll(&p, 1, int(std::ceil(left * 1000))) : 0;
    if (r < 0 && errno == EINTR) continue;
    if (r == 0)
      return fail("no reply from " + path + " within " +
                  (timeout_ms % 1000 ? std::to_string(timeout_ms) + " ms" : std::to_string(timeout_ms / 1000) + " s"));
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail("reading from " + path + ": " + std::strerror(errno));
    if (n == 0) break;
    out.append(buf, size_t(n));
  }
  close(fd);
  if (out.empty()) {
    err = "the daemon closed the connection without a reply";
    return false;
  }
  return true;
}

std::string talk(const std::string& path, const std::string& request) {
  std::string out, err;
  if (!tryTalk(path, request, out, err)) noDaemon(err);
  return out;
}

// The reply to one command, an object; exits 3 when there is none.
json request(const std::string& sock, const std::string& cmd, const std::vector<std::string>& args = {}) {
  const std::string raw = talk(sock, json{{"cmd", cmd}, {"args", args}}.dump());
  json r = json::parse(raw, nullptr, false);
  if (r.is_discarded() || !r.is_object()) noDaemon("unreadable reply from " + sock + ": " + raw.substr(0, 200));
  return r;
}

// --complete vips|backends: names as the commands accept them, one a line; quietly nothing when
// the daemon cannot be asked (a completion must not print errors into the command line).
int complete(const std::string& sock, const std::string& what) {
  std::string raw, err;
  if (what != "vips" && what != "backends") {
    std::fprintf(stderr, "l4lbctl: --complete vips|backends\n");
    return kExitUsage;
  }
  if (!tryTalk(sock, json{{"cmd", what}, {"args", json::array()}}.dump(), raw, err, kCompleteTimeoutMs)) return 0;
  json r = json::parse(raw, nullptr, false);
  if (r.is_discarded() || !r.is_object() || !r.value("ok", false)) return 0;
  if (what == "vips") {
    for (const json& v : r.value("vips", json::array())) std::printf("%s\n", v.value("name", "").c_str());
    return 0;
  }
  // ADDR:PORT once (drains it in every VIP), then VIP/ADDR:PORT for each VIP's own.
  std::set<std::string> seen;
  std::vector<std::string> names;
  for (const json& b : r.value("backends", json::array()))
    if (seen.insert(b.value("backend", "")).second) names.push_back(b.value("backend", ""));
  for (const json& b : r.value("backends", json::array())) names.push_back(b.value("vip", "") + "/" + b.value("backend", ""));
  for (const std::string& n : names) std::printf("%s\n", n.c_str());
  return 0;
}

volatile sig_atomic_t g_stop = 0;
void onSignal(int) { g_stop = 1; }

// Restores the terminal's mode on every way out of top: a static, so exit() (noDaemon, a
// refused sample) runs its destructor too.
struct RawTerminal {
  termios saved{};
  bool active = false;
  void enter() {
    if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &saved) != 0) return;
    termios t = saved;
    t.c_lflag &= ~tcflag_t(ICANON | ECHO);
    t.c_cc[VMIN] = 0;
    t.c_cc[VTIME] = 0;
    active = tcsetattr(STDIN_FILENO, TCSANOW, &t) == 0;
  }
  ~RawTerminal() {
    if (active) tcsetattr(STDIN_FILENO, TCSANOW, &saved);
  }
};

// Waits `seconds`, or less if SIGINT/SIGTERM arrives or 'q' is typed (stdin a terminal).
void waitFor(double seconds, bool read_keys) {
  timespec start{}, now{};
  clock_gettime(CLOCK_MONOTONIC, &start);
  for (;;) {
    clock_gettime(CLOCK_MONOTONIC, &now);
    const double left = seconds - (double(now.tv_sec - start.tv_sec) + double(now.tv_nsec - start.tv_nsec) / 1e9);
    if (g_stop || left <= 0) return;
    pollfd p{STDIN_FILENO, POLLIN, 0};
    const int r = poll(&p, read_keys ? 1 : 0, int(std::ceil(left * 1000)));
    if (r > 0 && read_keys) {
      char c = 0;
      if (read(STDIN_FILENO, &c, 1) == 1 && (c == 'q' || c == 'Q')) g_stop = 1;
      else if (!(p.revents & POLLIN)) read_keys = false;  // stdin closed or in error: stop watching it
    }
  }
}

double monotonic() {
  timespec t{};
  clock_gettime(CLOCK_MONOTONIC, &t);
  return double(t.tv_sec) + double(t.tv_nsec) / 1e9;
}

// l4lbctl top [--once] [--interval S]: two `stats` samples an interval apart, rates client-side.
int top(const std::string& sock, const std::vector<std::string>& args, bool as_json) {
  bool once = false;
  double interval = 1;
  for (size_t i = 0; i < args.size(); i++) {
    if (args[i] == "--once") once = true;
    else if (args[i] == "--interval" && i + 1 < args.size()) {
      char* end = nullptr;
      interval = std::strtod(args[++i].c_str(), &end);
      if (end == args[i].c_str() || *end != '\0' || !(interval >= 0.1 && interval <= 3600))
        return failWith(kExitUsage, "top: --interval wants seconds, 0.1..3600 (got '" + args[i] + "')");
    } else {
      return usageError("top: unknown argument '" + args[i] + "'");
    }
  }
  const bool tty = isatty(STDOUT_FILENO) && !as_json && !once;
  struct sigaction sa{};
  sa.sa_handler = onSignal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  static RawTerminal term;
  if (tty) term.enter();
  auto sample = [&](const char* cmd) {
    json r = request(sock, cmd);
    if (!r.value("ok", false)) {
      std::fputs(l4lb::ctl::renderError(cmd, r).c_str(), stderr);
      if (g_json) std::printf("%s\n", json{{"error", r.value("error", "failed")}, {"code", kExitFailed}}.dump().c_str());
      std::exit(kExitFailed);
    }
    return r;
  };
  json before = sample("stats");
  double t0 = monotonic();
  while (!g_stop) {
    waitFor(interval, term.active);
    if (g_stop) break;
    json after = sample("stats");
    const double t1 = monotonic();
    const json health = sample("backends");
    const l4lb::ctl::TopFrame f = l4lb::ctl::computeTop(before, after, t1 - t0, health);
    if (as_json) {
      std::printf("%s\n", l4lb::ctl::topJson(f).dump(once ? 2 : -1).c_str());
    } else if (tty) {
      winsize ws{};
      const int width = ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 ? int(ws.ws_col) : 0;
      std::printf("\x1b[H\x1b[2J%s\n%s\n", l4lb::ctl::renderTop(f, width).c_str(),
                  term.active ? "q or Ctrl-C quits" : "Ctrl-C quits");
    } else {
      std::printf("%s\n", l4lb::ctl::renderTop(f, 0).c_str());
    }
    std::fflush(stdout);
    if (once) break;
    before = std::move(after);
    t0 = t1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string sock = kDefaultSocket;
  bool as_json = false;
  std::vector<std::string> words;
  // --json anywhere on the line makes every error JSON, those found before it too.
  for (int i = 1; i < argc; i++) g_json = g_json || std::string(argv[i]) == "--json";
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    if (a == "--json") as_json = true;
    else if (a == "-s" || a == "--socket") {
      if (i + 1 >= argc) return failWith(kExitUsage, a + " needs a value");
      sock = argv[++i];
    } else if (a == "--commands" && words.empty()) {
      for (const std::string& n : l4lb::ctl::commandNames()) std::printf("%s\n", n.c_str());
      return 0;
    } else if (a == "--complete" && words.empty()) {
      if (i + 1 >= argc) return failWith(kExitUsage, "--complete needs vips or backends");
      return complete(sock, argv[++i]);
    } else if (a == "-h" || a == "--help") {
      usage(stdout);
      return 0;
    } else if (a.size() > 1 && a[0] == '-' && words.empty()) {
      return usageError("unknown option '" + a + "'");
    } else words.push_back(a);
  }
  if (words.empty()) return usageError("no command given");
  const std::string cmd = words[0];
  std::vector<std::string> args(words.begin() + 1, words.end());
  std::string bad;
  if (l4lb::ctl::checkCommand(cmd, args, bad) != l4lb::ctl::kExitOk) return usageError(bad);
  if (cmd == "top") return top(sock, args, as_json);
  // The daemon runs elsewhere in the file system's view of things: send an absolute path.
  if (cmd == "diff") {
    char buf[PATH_MAX];
    if (realpath(args[0].c_str(), buf) == nullptr)
      return failWith(kExitFailed, "diff: " + args[0] + ": " + std::strerror(errno));
    args[0] = buf;
  }
  json r = request(sock, cmd, args);
  const bool ok = r.value("ok", false);
  if (as_json) {
    if (!ok) {
      r["code"] = kExitFailed;
      std::fputs(l4lb::ctl::renderError(cmd, r).c_str(), stderr);
    }
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
