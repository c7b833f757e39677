// The /metrics HTTP endpoint: just enough HTTP/1.1 for a Prometheus scrape. One request per
// connection (OneShotServer), answered with Connection: close.
#pragma once

#include <functional>
#include <optional>
#include <string>

namespace l4lb::control::api {

// The reply OneShotServer sends when a request outgrows its buffer.
inline constexpr const char* kMetricsRequestTooLarge =
    "HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";

// The reply to the bytes received so far (`eof`: the client shut its side), or nullopt while the
// request head is incomplete. GET /metrics (with or without a query) -> 200 with render();
// GET / (or /?query) -> 200 with render_page() as HTML (the status page), when given; another
// method -> 405; another target -> 404. A renderer runs only for its 200.
std::optional<std::string> serveMetricsHttp(const std::string& in, bool eof, const std::function<std::string()>& render,
                                            const std::function<std::string()>& render_page = nullptr);

}  // namespace l4lb::control::api
