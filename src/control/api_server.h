// One-request-per-connection servers for the control thread's epoll loop: the operator API on
// a Unix socket (l4lbctl) and the Prometheus scrape endpoint on TCP. Everything is
// non-blocking: poll() accepts, reads and writes only what is ready and returns, so a slow or
// stuck client can never stall health checks, reloads or snapshot publication. The server's
// own epoll fd goes into the control loop (as HealthChecker's does).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>

#include "l4lb/addr.h"

namespace l4lb::control {

class OneShotServer {
 public:
  // Called with everything read so far (and whether the peer closed its side): the reply once
  // the request is complete, nullopt while more is needed. Runs on the control thread.
  using Handler = std::function<std::optional<std::string>(const std::string& in, bool eof)>;

  static constexpr size_t kMaxRequest = 64 * 1024;  // longer requests get `overflow_reply`
  static constexpr size_t kMaxConnections = 64;     // more are accepted and closed at once
  static constexpr uint64_t kIdleMs = 5000;         // a connection is closed after this long

  OneShotServer() = default;
  ~OneShotServer();
  OneShotServer(const OneShotServer&) = delete;
  OneShotServer& operator=(const OneShotServer&) = delete;

  // Unix socket at `path` (parent directory created 0755 if missing), file mode `mode`. A stale
  // socket file (nobody accepting) is replaced; a live one is an error: another daemon owns it.
  bool listenUnix(const std::string& path, uint32_t mode, std::string& err);
  // TCP; port 0 picks a free port (tests), see port().
  bool listenTcp(const IpAddr& addr, uint16_t port, std::string& err);

  void setHandler(Handler h, std::string overflow_reply) {
    handler_ = std::move(h);
    overflow_reply_ = std::move(overflow_reply);
  }

  int fd() const { return epoll_fd_; }
  uint16_t port() const { return port_; }
  bool listening() const { return listen_fd_ >= 0; }
  size_t connections() const { return conns_.size(); }
  // Never blocks: accepts, reads, replies, writes and closes what is ready; drops idle clients.
  void poll();
  void close();

 private:
  struct Conn {
    std::string in, out;
    size_t sent = 0;
    bool replied = false;
    uint64_t since_ms = 0;
  };
  bool setupEpoll(std::string& err);
  void acceptAll();
  void onReadable(int fd, Conn& c);
  void onWritable(int fd, Conn& c);
  void drop(int fd);
  void reply(int fd, Conn& c, std::string r);

  int listen_fd_ = -1;
  int epoll_fd_ = -1;
  uint16_t port_ = 0;
  std::string unix_path_;  // removed on close
  Handler handler_;
  std::string overflow_reply_;
  std::map<int, Conn> conns_;
};

}  // namespace l4lb::control
