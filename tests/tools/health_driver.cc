// health_driver: runs HealthChecker (real clock, real probes) on targets given as JSON and
// prints one JSON line per event, for tests/integration/test_health.py and for trying checks
// by hand.
//
//   health_driver [--targets FILE] [--target JSON]... [--duration-ms N] [--checks]
//
// A target is an object: {"key", "addr", "port", "source"?, "type", and any HealthCheckConfig
// field: "interval_ms", "timeout_ms", "rise", "fall", "max_latency_ms", "jitter_pct",
// "http_path", "http_host", "http_expect" (codes and "lo-hi" strings), "udp_payload",
// "udp_expect"}. FILE holds an array of them. SIGHUP re-reads FILE (setTargets); SIGINT or
// SIGTERM, or --duration-ms, ends the run.
//
// Output, one object per line, flushed at once:
//   {"event":"start","mono_ms":..,"set_us":..,"targets":N}   (set_us: when setTargets ran)
//   {"event":"transition","key","from","to","reason","at_ms","latency_ms","time"}
//   {"event":"check","key","due_us","start_us","end_us","ok","reason","latency_ms"}  (--checks)
//   {"event":"status","key","state","checks","successes","failures","last_reason"}   (at exit)
//   {"event":"end","mono_ms":..}
// at_ms and mono_ms are CLOCK_MONOTONIC milliseconds (Python's time.monotonic() * 1000).
#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "control/health/health_checker.h"

using l4lb::IpAddr;
using namespace l4lb::control;
using nlohmann::json;

namespace {

uint64_t monoUs() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000 + static_cast<uint64_t>(ts.tv_nsec) / 1000;
}

uint64_t monoMs() { return monoUs() / 1000; }

std::string wallTime() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  tm t{};
  ::gmtime_r(&ts.tv_sec, &t);
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", t.tm_year + 1900,
                t.tm_mon + 1, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec, ts.tv_nsec / 1'000'000);
  return buf;
}

void emit(const json& j) {
  std::fputs((j.dump() + "\n").c_str(), stdout);
  std::fflush(stdout);
}

IpAddr parseAddr(const json& j, const char* what) {
  auto a = IpAddr::parse(j.get<std::string>());
  if (!a) throw std::runtime_error(std::string(what) + ": not an IP address: " + j.dump());
  return *a;
}

std::pair<uint16_t, uint16_t> parseRange(const json& j) {
  if (j.is_number_unsigned()) return {j.get<uint16_t>(), j.get<uint16_t>()};
  std::string s = j.get<std::string>();
  size_t dash = s.find('-');
  if (dash == std::string::npos) return {uint16_t(std::stoi(s)), uint16_t(std::stoi(s))};
  return {uint16_t(std::stoi(s.substr(0, dash))), uint16_t(std::stoi(s.substr(dash + 1)))};
}

HealthTarget parseTarget(const json& j) {
  static const char* kKnown[] = {"key", "addr", "port", "source", "type", "interval_ms",
                                 "timeout_ms", "rise", "fall", "max_latency_ms", "jitter_pct",
                                 "http_path", "http_host", "http_expect", "udp_payload",
                                 "udp_expect"};
  for (auto& [k, v] : j.items()) {
    bool known = false;
    for (const char* n : kKnown) known = known || k == n;
    if (!known) throw std::runtime_error("unknown target key \"" + k + "\"");
  }
  HealthTarget t;
  t.key = j.at("key").get<std::string>();
  t.addr = parseAddr(j.at("addr"), "addr");
  t.port = j.at("port").get<uint16_t>();
  if (j.contains("source")) t.source = parseAddr(j["source"], "source");
  const std::string type = j.value("type", "tcp");
  if (type == "tcp") t.cfg.type = HealthType::Tcp;
  else if (type == "http") t.cfg.type = HealthType::Http;
  else if (type == "udp") t.cfg.type = HealthType::Udp;
  else if (type == "none") t.cfg.type = HealthType::None;
  else throw std::runtime_error("unknown type \"" + type + "\"");
  HealthCheckConfig& c = t.cfg;
  c.interval_ms = j.value("interval_ms", c.interval_ms);
  c.timeout_ms = j.value("timeout_ms", std::min(c.timeout_ms, c.interval_ms));
  c.rise = j.value("rise", c.rise);
  c.fall = j.value("fall", c.fall);
  c.max_latency_ms = j.value("max_latency_ms", c.max_latency_ms);
  c.jitter_pct = j.value("jitter_pct", c.jitter_pct);
  c.http_path = j.value("http_path", c.http_path);
  c.http_host = j.value("http_host", c.http_host);
  if (j.contains("http_expect")) {
    for (auto& e : j["http_expect"]) c.http_expect.push_back(parseRange(e));
  }
  c.udp_payload = j.value("udp_payload", c.udp_payload);
  if (j.contains("udp_expect")) c.udp_expect = j["udp_expect"].get<std::string>();
  // The same bounds the config loader enforces: the checker trusts them.
  if (c.interval_ms < 10 || c.timeout_ms < 1 || c.timeout_ms > c.interval_ms || c.rise < 1 ||
      c.fall < 1 || c.jitter_pct > 50 || c.max_latency_ms > c.timeout_ms)
    throw std::runtime_error("target \"" + t.key + "\": values out of range");
  return t;
}

std::vector<HealthTarget> readTargets(const std::string& file, const std::vector<std::string>& inline_) {
  std::vector<HealthTarget> out;
  if (!file.empty()) {
    std::ifstream in(file);
    if (!in) throw std::runtime_error("cannot read " + file);
    json arr = json::parse(in);
    if (!arr.is_array()) throw std::runtime_error(file + ": must hold a JSON array of targets");
    for (auto& j : arr) out.push_back(parseTarget(j));
  }
  for (auto& s : inline_) out.push_back(parseTarget(json::parse(s)));
  return out;
}

int usage() {
  std::fprintf(stderr,
               "usage: health_driver [--targets FILE] [--target JSON]... [--duration-ms N] "
               "[--checks]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string file;
  std::vector<std::string> inline_;
  int64_t duration_ms = -1;
  bool checks = false;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    auto next = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    const char* v = nullptr;
    if (a == "--targets" && (v = next())) file = v;
    else if (a == "--target" && (v = next())) inline_.push_back(v);
    else if (a == "--duration-ms" && (v = next())) duration_ms = std::stoll(v);
    else if (a == "--checks") checks = true;
    else return usage();
  }

  std::vector<HealthTarget> targets;
  try {
    targets = readTargets(file, inline_);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "health_driver: %s\n", e.what());
    return 2;
  }

  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGHUP);
  ::sigprocmask(SIG_BLOCK, &mask, nullptr);
  int sfd = ::signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
  int ep = ::epoll_create1(EPOLL_CLOEXEC);

  HealthChecker checker;
  if (checks) {
    checker.setCheckObserver([](const CheckRecord& r) {
      emit({{"event", "check"}, {"key", r.key}, {"due_us", r.due_us}, {"start_us", r.start_us},
            {"end_us", r.end_us}, {"ok", r.ok}, {"reason", r.reason},
            {"latency_ms", r.latency_ms}});
    });
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = checker.fd();
  ::epoll_ctl(ep, EPOLL_CTL_ADD, checker.fd(), &ev);
  ev.data.fd = sfd;
  ::epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev);

  std::vector<std::string> keys;
  for (auto& t : targets) keys.push_back(t.key);
  const size_t count = targets.size();
  // First checks are due within the jitter window after this instant (setTargets reads the
  // clock first thing).
  const uint64_t set_us = monoUs();
  checker.setTargets(std::move(targets));
  const uint64_t t0 = set_us / 1000;
  emit({{"event", "start"}, {"mono_ms", t0}, {"set_us", set_us}, {"targets", count}});

  bool running = true;
  while (running) {
    int wait = checker.timeoutMs();
    if (duration_ms >= 0) {
      int64_t left = static_cast<int64_t>(t0) + duration_ms - static_cast<int64_t>(monoMs());
      if (left <= 0) break;
      wait = wait < 0 ? static_cast<int>(left) : std::min<int64_t>(wait, left);
    }
    epoll_event events[4];
    int n = ::epoll_wait(ep, events, 4, wait);
    for (int i = 0; i < n; i++) {
      if (events[i].data.fd != sfd) continue;
      signalfd_siginfo si{};
      while (::read(sfd, &si, sizeof(si)) == sizeof(si)) {
        if (si.ssi_signo != SIGHUP) {
          running = false;
        } else if (!file.empty()) {
          try {
            auto fresh = readTargets(file, inline_);
            keys.clear();
            for (auto& t : fresh) keys.push_back(t.key);
            checker.setTargets(std::move(fresh));
            emit({{"event", "reload"}, {"mono_ms", monoMs()}, {"targets", keys.size()}});
          } catch (const std::exception& e) {
            std::fprintf(stderr, "health_driver: reload: %s\n", e.what());
          }
        }
      }
    }
    for (auto& t : checker.poll()) {
      emit({{"event", "transition"}, {"key", t.key}, {"from", toString(t.from)},
            {"to", toString(t.to)}, {"reason", t.reason}, {"at_ms", t.at_ms},
            {"latency_ms", t.latency_ms}, {"time", wallTime()}});
    }
  }
  for (auto& k : keys) {
    if (const HealthChecker::Status* s = checker.status(k)) {
      emit({{"event", "status"}, {"key", k}, {"state", toString(s->state)}, {"checks", s->checks},
            {"successes", s->successes}, {"failures", s->failures},
            {"last_reason", s->last_reason}});
    }
  }
  emit({{"event", "end"}, {"mono_ms", monoMs()}});
  ::close(ep);
  ::close(sfd);
  return 0;
}
