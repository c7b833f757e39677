// type http: GET http_path (RFC 9112 §3), then the status line of the reply decides: a status
// in http_expect (default 200..299) passes, anything else fails with "status N". Behind a VIP
// that sends PROXY v2 headers, the LOCAL header goes in front of the request.
#include <sys/socket.h>

#include <cerrno>
#include <string_view>

#include "control/health/socket_check.h"

namespace l4lb::control {

namespace {

constexpr size_t kMaxStatusLine = 1024;

bool inExpected(const HealthCheckConfig& cfg, int status) {
  if (cfg.http_expect.empty()) return status >= 200 && status <= 299;
  for (auto [lo, hi] : cfg.http_expect) {
    if (status >= lo && status <= hi) return true;
  }
  return false;
}

// "HTTP/1.1 503 Service Unavailable" -> 503 (RFC 9112 §4: status-line = HTTP-version SP
// status-code SP [reason-phrase]); -1 if the line is not one.
int parseStatusLine(std::string_view line) {
  if (line.size() < 12 || line.substr(0, 5) != "HTTP/") return -1;
  auto digit = [](char c) { return c >= '0' && c <= '9'; };
  if (!digit(line[5]) || line[6] != '.' || !digit(line[7]) || line[8] != ' ') return -1;
  if (!digit(line[9]) || !digit(line[10]) || !digit(line[11])) return -1;
  if (line.size() > 12 && line[12] != ' ') return -1;
  return (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
}

class HttpCheck final : public SocketCheck {
 public:
  explicit HttpCheck(const HealthTarget& t) : SocketCheck(t, Transport::Stream) {}

 private:
  std::optional<ProbeResult> onConnected(uint64_t now_us) override { return sendRequest(proxyPrefix() + request(), now_us); }

  // RFC 9112 §3: origin-form request; Connection: close so the backend ends the exchange.
  std::string request() const {
    const HealthTarget& t = target();
    std::string host = t.cfg.http_host;
    if (host.empty()) {
      // RFC 9110 §7.2: Host is uri-host [":" port]; IPv6 literals in brackets (RFC 3986 §3.2.2).
      host = t.addr.isV4() ? t.addr.str() : "[" + t.addr.str() + "]";
      if (t.port != 80) host += ":" + std::to_string(t.port);
    }
    return "GET " + t.cfg.http_path + " HTTP/1.1\r\nHost: " + host +
           "\r\nUser-Agent: l4lb-health\r\nAccept: */*\r\nConnection: close\r\n\r\n";
  }

  // Reads until the first line end, then judges the status line.
  std::optional<ProbeResult> onReadable(uint64_t now_us) override {
    char buf[512];
    for (;;) {
      ssize_t n = ::recv(socketFd(), buf, sizeof(buf), 0);
      if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) return std::nullopt;
        return fail(errnoReason(errno), now_us);
      }
      size_t eol = reply_.size();
      reply_.append(buf, static_cast<size_t>(n));
      size_t nl = reply_.find('\n', eol);
      if (nl == std::string::npos) {
        if (n == 0) {
          return fail(reply_.empty() ? "connection closed before a reply" : "bad status line (no line end)", now_us);
        }
        if (reply_.size() > kMaxStatusLine) return fail("bad status line (too long)", now_us);
        continue;
      }
      std::string_view line(reply_.data(), nl);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      int status = parseStatusLine(line);
      if (status < 0) return fail("bad status line", now_us);
      std::string reason = "status " + std::to_string(status);
      return inExpected(target().cfg, status) ? succeed(reason, now_us) : fail(reason, now_us);
    }
  }

  std::string reply_;
};

}  // namespace

std::unique_ptr<Probe> makeHttpCheck(const HealthTarget& target) { return std::make_unique<HttpCheck>(target); }

}  // namespace l4lb::control
