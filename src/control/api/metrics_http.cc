#include "control/api/metrics_http.h"

namespace l4lb::control::api {

namespace {

std::string response(const std::string& status, const std::string& ctype, const std::string& body) {
  return "HTTP/1.1 " + status + "\r\nContent-Type: " + ctype + "\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\nConnection: close\r\n\r\n" + body;
}

}  // namespace

std::optional<std::string> serveMetricsHttp(const std::string& in, bool eof, const std::function<std::string()>& render,
                                            const std::function<std::string()>& render_page) {
  size_t end = in.find("\r\n\r\n");
  if (end == std::string::npos) end = in.find("\n\n");
  if (end == std::string::npos && !eof) return std::nullopt;
  const size_t sp1 = in.find(' '), sp2 = in.find(' ', sp1 + 1);
  const std::string method = in.substr(0, sp1);
  const std::string target = sp1 == std::string::npos ? "" : in.substr(sp1 + 1, sp2 - sp1 - 1);
  if (method != "GET") return response("405 Method Not Allowed", "text/plain", "only GET\n");
  if (render_page && (target == "/" || target.rfind("/?", 0) == 0))
    return response("200 OK", "text/html; charset=utf-8", render_page());
  if (target != "/metrics" && target.rfind("/metrics?", 0) != 0)
    return response("404 Not Found", "text/plain", "metrics are at /metrics\n");
  return response("200 OK", "text/plain; version=0.0.4; charset=utf-8", render());
}

}  // namespace l4lb::control::api
