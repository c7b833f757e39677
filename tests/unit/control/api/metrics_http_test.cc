// The /metrics HTTP handling: complete vs incomplete requests, the target and method checks,
// and the exact bytes of each reply.
#include "control/api/metrics_http.h"

#include <gtest/gtest.h>

namespace l4lb::control::api {
namespace {

int renders = 0;
std::string render() {
  renders++;
  return "l4lb_up 1\n";
}

const std::string kOk =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: 10\r\n"
    "Connection: close\r\n\r\nl4lb_up 1\n";

TEST(MetricsHttp, GetMetrics) {
  renders = 0;
  EXPECT_EQ(serveMetricsHttp("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", false, render), kOk);
  EXPECT_EQ(serveMetricsHttp("GET /metrics?name[]=l4lb_up HTTP/1.1\r\n\r\n", false, render), kOk);
  // Bare newlines (nc, old clients) end the head too.
  EXPECT_EQ(serveMetricsHttp("GET /metrics HTTP/1.0\n\n", false, render), kOk);
  EXPECT_EQ(renders, 3);
}

TEST(MetricsHttp, IncompleteRequestWaits) {
  renders = 0;
  EXPECT_EQ(serveMetricsHttp("", false, render), std::nullopt);
  EXPECT_EQ(serveMetricsHttp("GET /metrics HTTP/1.1\r\n", false, render), std::nullopt);
  EXPECT_EQ(serveMetricsHttp("GET /metrics HTTP/1.1\r\nHost: x\r\n", false, render), std::nullopt);
  // ... unless the client has finished sending: answered as it stands.
  EXPECT_EQ(serveMetricsHttp("GET /metrics HTTP/1.1\r\n", true, render), kOk);
  EXPECT_EQ(renders, 1);
}

TEST(MetricsHttp, OtherTargetIs404) {
  renders = 0;
  const std::string want =
      "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 24\r\nConnection: close\r\n\r\n"
      "metrics are at /metrics\n";
  for (const char* req : {"GET / HTTP/1.1\r\n\r\n", "GET /other HTTP/1.1\r\n\r\n", "GET /metricsx HTTP/1.1\r\n\r\n",
                          "GET /metrics/ HTTP/1.1\r\n\r\n"})
    EXPECT_EQ(serveMetricsHttp(req, false, render), want) << req;
  EXPECT_EQ(renders, 0);
}

TEST(MetricsHttp, RootIsTheStatusPageWhenGiven) {
  renders = 0;
  int pages = 0;
  auto page = [&pages] {
    pages++;
    return std::string("<p>ok</p>");
  };
  const std::string want =
      "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: 9\r\nConnection: close\r\n\r\n"
      "<p>ok</p>";
  EXPECT_EQ(serveMetricsHttp("GET / HTTP/1.1\r\n\r\n", false, render, page), want);
  EXPECT_EQ(serveMetricsHttp("GET /?refresh=1 HTTP/1.1\r\n\r\n", false, render, page), want);
  EXPECT_EQ(serveMetricsHttp("GET /metrics HTTP/1.1\r\n\r\n", false, render, page), kOk);
  EXPECT_EQ(serveMetricsHttp("GET /x HTTP/1.1\r\n\r\n", false, render, page).value().rfind("HTTP/1.1 404", 0), 0u);
  EXPECT_EQ(serveMetricsHttp("POST / HTTP/1.1\r\n\r\n", false, render, page).value().rfind("HTTP/1.1 405", 0), 0u);
  EXPECT_EQ(pages, 2);
  EXPECT_EQ(renders, 1);
}

TEST(MetricsHttp, OtherMethodIs405) {
  renders = 0;
  const std::string want =
      "HTTP/1.1 405 Method Not Allowed\r\nContent-Type: text/plain\r\nContent-Length: 9\r\nConnection: close\r\n\r\n"
      "only GET\n";
  EXPECT_EQ(serveMetricsHttp("POST /metrics HTTP/1.1\r\n\r\n", false, render), want);
  EXPECT_EQ(serveMetricsHttp("HEAD /metrics HTTP/1.1\r\n\r\n", false, render), want);
  // Garbage that ends like a request head.
  EXPECT_EQ(serveMetricsHttp("\r\n\r\n", false, render), want);
  EXPECT_EQ(renders, 0);
}

TEST(MetricsHttp, TooLargeReply) {
  EXPECT_STREQ(kMetricsRequestTooLarge,
               "HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
}

}  // namespace
}  // namespace l4lb::control::api
