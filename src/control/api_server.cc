#include "control/api_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cstring>
#include <vector>

namespace l4lb::control {

namespace {

uint64_t monoMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000 + uint64_t(ts.tv_nsec) / 1000000;
}

std::string sysErr(const std::string& what) { return what + ": " + std::strerror(errno); }

}  // namespace

OneShotServer::~OneShotServer() { close(); }

void OneShotServer::close() {
  for (auto& [fd, c] : conns_) ::close(fd);
  conns_.clear();
  if (listen_fd_ >= 0) ::close(listen_fd_);
  if (epoll_fd_ >= 0) ::close(epoll_fd_);
  listen_fd_ = epoll_fd_ = -1;
  if (!unix_path_.empty()) unlink(unix_path_.c_str());
  unix_path_.clear();
}

bool OneShotServer::setupEpoll(std::string& err) {
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) {
    err = sysErr("epoll_create1");
    return false;
  }
  epoll_event e{};
  e.events = EPOLLIN;
  e.data.fd = listen_fd_;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listen_fd_, &e) != 0) {
    err = sysErr("epoll_ctl");
    return false;
  }
  return true;
}

bool OneShotServer::listenUnix(const std::string& path, uint32_t mode, std::string& err) {
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(sa.sun_path)) {
    err = "control socket " + path + ": path empty or too long";
    return false;
  }
  std::memcpy(sa.sun_path, path.c_str(), path.size() + 1);
  if (size_t slash = path.rfind('/'); slash != std::string::npos && slash > 0) {
    const std::string dir = path.substr(0, slash);
    if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
      err = sysErr("control socket directory " + dir);
      return false;
    }
  }
  // A socket file left by a daemon that died: replace it. One that accepts: someone else's.
  struct stat st;
  if (lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      err = "control socket " + path + ": exists and is not a socket";
      return false;
    }
    int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool live = probe >= 0 && connect(probe, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0;
    if (probe >= 0) ::close(probe);
    if (live) {
      err = "control socket " + path + ": another process is listening (is l4lb already running?)";
      return false;
    }
    unlink(path.c_str());
  }
  listen_fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) {
    err = sysErr("control socket");
    return false;
  }
  // No window in which the socket exists with looser permissions than asked for.
  const mode_t old = umask(0777 & ~mode);
  int rc = bind(listen_fd_, reinterpret_cast<sockaddr*>(&sa), sizeof(sa));
  umask(old);
  if (rc != 0) {
    err = sysErr("control socket " + path + ": bind");
    ::close(listen_fd_);
    listen_fd_ = -1;
    return false;
  }
  unix_path_ = path;
  if (chmod(path.c_str(), mode) != 0 || listen(listen_fd_, 16) != 0) {
    err = sysErr("control socket " + path);
    close();
    return false;
  }
  if (!setupEpoll(err)) {
    close();
    return false;
  }
  return true;
}

bool OneShotServer::listenTcp(const IpAddr& addr, uint16_t port, std::string& err) {
  const bool v4 = addr.isV4();
  listen_fd_ = socket(v4 ? AF_INET : AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) {
    err = sysErr("metrics socket");
    return false;
  }
  int one = 1;
  setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_storage ss{};
  socklen_t len;
  if (v4) {
    auto* s4 = reinterpret_cast<sockaddr_in*>(&ss);
    s4->sin_family = AF_INET;
    s4->sin_port = htons(port);
    std::memcpy(&s4->sin_addr, addr.bytes.data(), 4);
    len = sizeof(*s4);
  } else {
    auto* s6 = reinterpret_cast<sockaddr_in6*>(&ss);
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons(port);
    std::memcpy(&s6->sin6_addr, addr.bytes.data(), 16);
    len = sizeof(*s6);
  }
  const std::string where = "metrics listen " + (v4 ? addr.str() : "[" + addr.str() + "]") + ":" + std::to_string(port);
  if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&ss), len) != 0 || listen(listen_fd_, 16) != 0) {
    err = sysErr(where);
    close();
    return false;
  }
  if (getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&ss), &len) == 0)
    port_ = ntohs(v4 ? reinterpret_cast<sockaddr_in*>(&ss)->sin_port : reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  if (!setupEpoll(err)) {
    close();
    return false;
  }
  return true;
}

void OneShotServer::acceptAll() {
  for (;;) {
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;  // EAGAIN, or a transient error (EMFILE ...): try at the next event
    if (conns_.size() >= kMaxConnections) {
      ::close(fd);
      continue;
    }
    epoll_event e{};
    e.events = EPOLLIN | EPOLLRDHUP;
    e.data.fd = fd;
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &e) != 0) {
      ::close(fd);
      continue;
    }
    conns_[fd].since_ms = monoMs();
  }
}

void OneShotServer::drop(int fd) {
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
  ::close(fd);
  conns_.erase(fd);
}

void OneShotServer::reply(int fd, Conn& c, std::string r) {
  c.replied = true;
  c.out = std::move(r);
  c.sent = 0;
  shutdown(fd, SHUT_RD);
  epoll_event e{};
  e.events = EPOLLOUT;
  e.data.fd = fd;
  epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &e);
}

void OneShotServer::onReadable(int fd, Conn& c) {
  char buf[4096];
  bool eof = false;
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n > 0) {
      c.in.append(buf, size_t(n));
      if (c.in.size() > kMaxRequest) {
        reply(fd, c, overflow_reply_);
        return;
      }
      continue;
    }
    if (n == 0) eof = true;
    else if (errno == EINTR) continue;
    else if (errno != EAGAIN && errno != EWOULDBLOCK) {
      drop(fd);
      return;
    }
    break;
  }
  std::optional<std::string> r = handler_ ? handler_(c.in, eof) : std::optional<std::string>();
  if (r) reply(fd, c, std::move(*r));
  else if (eof) drop(fd);  // incomplete request and nothing more will come
}

void OneShotServer::onWritable(int fd, Conn& c) {
  while (c.sent < c.out.size()) {
    ssize_t n = send(fd, c.out.data() + c.sent, c.out.size() - c.sent, MSG_NOSIGNAL);
    if (n > 0) {
      c.sent += size_t(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    break;  // peer gone
  }
  drop(fd);
}

void OneShotServer::poll() {
  if (epoll_fd_ < 0) return;
  epoll_event evs[16];
  int n;
  while ((n = epoll_wait(epoll_fd_, evs, 16, 0)) > 0) {
    for (int i = 0; i < n; i++) {
      const int fd = evs[i].data.fd;
      if (fd == listen_fd_) {
        acceptAll();
        continue;
      }
      auto it = conns_.find(fd);
      if (it == conns_.end()) continue;
      if (it->second.replied) onWritable(fd, it->second);
      else if (evs[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) onReadable(fd, it->second);
    }
    if (n < 16) break;
  }
  const uint64_t now = monoMs();
  std::vector<int> idle;
  for (const auto& [fd, c] : conns_)
    if (now - c.since_ms > kIdleMs) idle.push_back(fd);
  for (int fd : idle) drop(fd);
}

}  // namespace l4lb::control
