#include "control/bgp/bird_client.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <sstream>

namespace l4lb::control::bgp {

namespace {

// A reply longer than this is not one BIRD sends for our commands: treat as a broken peer.
constexpr size_t kMaxReplyBytes = 1 << 20;

uint64_t nowMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000 + uint64_t(ts.tv_nsec) / 1000000;
}

int remainingMs(uint64_t deadline) {
  const uint64_t now = nowMs();
  return now >= deadline ? 0 : int(deadline - now);
}

// "NNNN-" / "NNNN ": the code, else -1.
int lineCode(const std::string& l) {
  if (l.size() < 5 || (l[4] != ' ' && l[4] != '-')) return -1;
  int c = 0;
  for (int i = 0; i < 4; i++) {
    if (l[size_t(i)] < '0' || l[size_t(i)] > '9') return -1;
    c = c * 10 + (l[size_t(i)] - '0');
  }
  return c;
}

}  // namespace

void BirdClient::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  buf_.clear();
}

bool BirdClient::connectTo(uint64_t deadline, BirdReply& r) {
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (path_.size() >= sizeof(sa.sun_path)) {
    r.error = "connect " + path_ + ": path too long";
    return false;
  }
  std::memcpy(sa.sun_path, path_.data(), path_.size());
  fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0) {
    r.error = std::string("socket: ") + std::strerror(errno);
    return false;
  }
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0 && errno != EINPROGRESS && errno != EAGAIN) {
    r.error = "connect " + path_ + ": " + std::strerror(errno);
    close();
    return false;
  }
  // The greeting ("0001 BIRD 2.0.12 ready.") is a reply of its own.
  BirdReply hello;
  if (!readReply(deadline, hello) || hello.code != 1) {
    r.error = hello.error.empty() ? "unexpected greeting from " + path_ + ": " + hello.last() : hello.error;
    r.timed_out = hello.timed_out;
    close();
    return false;
  }
  return true;
}

bool BirdClient::readReply(uint64_t deadline, BirdReply& r) {
  int last_code = -1;
  for (;;) {
    // Complete lines first: the reply may already be buffered.
    size_t nl;
    while ((nl = buf_.find('\n')) != std::string::npos) {
      std::string line = buf_.substr(0, nl);
      buf_.erase(0, nl + 1);
      if (!line.empty() && line[0] == '+') continue;  // spontaneous printout
      if (!line.empty() && line[0] == ' ') {
        r.lines.emplace_back(last_code, line.substr(1));
        continue;
      }
      const int code = lineCode(line);
      if (code < 0) {
        r.error = "malformed reply line from " + path_ + ": " + line.substr(0, 80);
        return false;
      }
      last_code = code;
      r.lines.emplace_back(code, line.substr(5));
      if (line[4] == ' ') {
        r.code = code;
        r.ok = code < 8000;
        if (!r.ok) r.error = line.substr(5);
        return true;
      }
    }
    if (buf_.size() > kMaxReplyBytes) {
      r.error = "reply from " + path_ + " too long";
      return false;
    }
    const int wait = remainingMs(deadline);
    if (wait == 0) {
      r.error = "no reply from " + path_ + " within " + std::to_string(timeout_ms_) + " ms";
      r.timed_out = true;
      return false;
    }
    pollfd p{fd_, POLLIN, 0};
    int n = ::poll(&p, 1, wait);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      r.error = std::string("poll: ") + std::strerror(errno);
      return false;
    }
    if (n == 0) continue;  // the deadline check above reports it
    char tmp[4096];
    ssize_t got = ::recv(fd_, tmp, sizeof(tmp), 0);
    if (got < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (got < 0) {
      r.error = "read " + path_ + ": " + std::strerror(errno);
      return false;
    }
    if (got == 0) {
      r.error = path_ + ": BIRD closed the connection";
      return false;
    }
    buf_.append(tmp, size_t(got));
  }
}

BirdReply BirdClient::command(const std::string& cmd) {
  BirdReply r;
  const uint64_t deadline = nowMs() + timeout_ms_;
  if (fd_ < 0 && !connectTo(deadline, r)) return r;
  const std::string line = cmd + "\n";
  size_t off = 0;
  while (off < line.size()) {
    ssize_t n = ::send(fd_, line.data() + off, line.size() - off, MSG_NOSIGNAL);
    if (n > 0) {
      off += size_t(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      pollfd p{fd_, POLLOUT, 0};
      const int wait = remainingMs(deadline);
      if (wait > 0 && ::poll(&p, 1, wait) >= 0) continue;
      r.error = "sending to " + path_ + ": timed out";
      r.timed_out = true;
    } else {
      r.error = "sending to " + path_ + ": " + std::strerror(errno);
    }
    close();
    return r;
  }
  if (!readReply(deadline, r)) {
    close();
    r.ok = false;
    r.code = -1;
  }
  return r;
}

bool configureAccepted(const BirdReply& r) {
  return r.ok && (r.code == 3 || r.code == 4 || r.code == 5 || r.code == 19);
}

std::vector<BirdProtocol> parseBgpProtocols(const BirdReply& r) {
  std::vector<BirdProtocol> out;
  for (const auto& [code, text] : r.lines) {
    if (code != 1002) continue;
    std::istringstream in(text);
    BirdProtocol p;
    if (!(in >> p.name >> p.proto >> p.table >> p.state >> p.since)) continue;
    if (p.proto != "BGP") continue;
    // "2026-12-03 16:29:32": a date, then the time (BIRD's iso long timeformat).
    if (p.since.size() == 10 && p.since[4] == '-' && p.since[7] == '-') {
      std::string t;
      if (in >> t) p.since += " " + t;
    }
    std::getline(in, p.info);
    const size_t b = p.info.find_first_not_of(' ');
    p.info = b == std::string::npos ? "" : p.info.substr(b);
    while (!p.info.empty() && p.info.back() == ' ') p.info.pop_back();
    out.push_back(std::move(p));
  }
  return out;
}

}  // namespace l4lb::control::bgp
