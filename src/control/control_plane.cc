#include "control/control_plane.h"

#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <time.h>

#include <algorithm>
#include <set>

#include <nlohmann/json.hpp>

#include "control/api/handlers.h"
#include "control/api/metrics_http.h"
#include "control/sync/sync_service.h"
#include "control/change_plan.h"
#include "control/log.h"
#include "control/sha256.h"
#include "control/worker_totals.h"
#include "dataplane/worker.h"

namespace l4lb::control {

namespace {

std::vector<PortRuntime> runtimeOf(const Ports& p) { return p.runtime; }

LogLevel levelOf(const std::string& s) {
  return parseEnum<LogLevel>(s).value_or(LogLevel::Info);
}

}  // namespace

uint64_t monoMsNow() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000 + uint64_t(ts.tv_nsec) / 1000000;
}

ControlPlane::ControlPlane(Config cfg, std::string path, const Ports& ports, dataplane::DataplaneShared& shared)
    : cfg_(std::move(cfg)), path_(std::move(path)), ports_(ports), publisher_(shared), shared_(shared) {}

bool ControlPlane::testHooksEnabled() {
  const char* e = std::getenv("L4LB_TEST_HOOKS");
  return e != nullptr && std::string(e) == "1";
}

std::string ControlPlane::statusLine() const {
  size_t backends = 0, healthy = 0;
  if (const Snapshot* s = publisher_.current())
    for (const SnapVip& v : s->vips)
      for (uint32_t id : v.backends)
        if (const SnapBackend* b = s->backend(id)) backends++, healthy += b->state == BackendState::Healthy;
  return std::to_string(cfg_.vips.size()) + " VIPs, " + std::to_string(healthy) + "/" + std::to_string(backends) +
         " backends healthy, " + std::to_string(workers_.size()) + " workers";
}

uint64_t ControlPlane::monoMs() const { return monoMsNow(); }

void ControlPlane::updateBgp() {
  if (!announcer_) return;
  std::vector<bgp::VipState> vips;
  if (const Snapshot* s = publisher_.current())
    for (const SnapVip& v : s->vips) {
      bgp::VipState st{v.name, v.addr, 0};
      for (uint32_t id : v.backends)
        if (const SnapBackend* b = s->backend(id); b && b->state == BackendState::Healthy && b->weight > 0)
          st.healthy_backends++;
      vips.push_back(std::move(st));
    }
  announcer_->update(monoMsNow(), forwarding_, std::move(vips));
}

bool ControlPlane::setBalancerDrained(bool drained) {
  if (!announcer_) return false;
  announcer_->setDrained(drained);
  updateBgp();
  return true;
}

void ControlPlane::announceReady() {
  forwarding_ = true;
  // With flow sync, hold the announcement one re-announce interval (+1 s for the heartbeat and
  // transfer): the peers' live flows arrive first, so flows ECMP moves here at once keep their
  // backends even if the backend set changed since they began.
  if (announcer_ && cfg_.sync.enabled) {
    const uint64_t hold = uint64_t(cfg_.sync.announce_interval_ms) + 1000;
    announcer_->holdUntil(monoMsNow() + hold);
    logInfo("bgp: announcing after the flow sync warm-up (" + std::to_string(hold) + " ms)");
  }
  updateBgp();
  last_status_ = statusLine();
  notify_.ready(last_status_);
  if (notify_.enabled())
    logInfo("systemd: ready" + (notify_.watchdogIntervalMs() ? ", watchdog every " + std::to_string(notify_.watchdogIntervalMs()) + " ms" : std::string()));
}

bool ControlPlane::start(std::string& err) {
  std::string nerr;
  netlink_ok_ = neighbours_.open(nerr);
  if (!netlink_ok_) logWarn("neighbour resolution disabled: " + nerr);
  neighbours_.setWanted(SnapshotBuilder::neighboursToResolve(cfg_));
  if (netlink_ok_) {
    std::map<std::string, MacAddr> out;
    if (neighbours_.refresh(out, true, nerr)) dyn_.resolved = out;
  }
  BuildResult built = builder_.build(cfg_, runtimeOf(ports_), &dyn_);
  if (!built) {
    err = built.joined();
    return false;
  }
  std::unique_ptr<Snapshot> s = std::move(built.snapshot);
  for (const PortConfig& p : cfg_.ports) {
    if (p.exception_path != ExceptionPath::Xdp) continue;
    std::string xerr;
    auto m = XdpAddrMap::open(p.kernel_iface, xerr);
    if (!m) {
      err = "ports " + p.name + ": " + xerr;
      return false;
    }
    xdp_[p.kernel_iface] = std::move(m);
  }
  if (!cfg_.control.socket.empty()) {
    // A listener that cannot be opened (another daemon owns the socket, the address is not
    // configured in this namespace) disables that interface, never the balancing: logged as
    // an error, and l4lbctl/metrics then say there is no daemon to talk to.
    std::string lerr;
    if (!api_.listenUnix(cfg_.control.socket, cfg_.control.mode, lerr))
      logError(lerr + "; the control API is disabled");
    api_.setHandler(
        [this](const std::string& in, bool eof) -> std::optional<std::string> {
          // One request per connection: a line, or everything up to the client's shutdown.
          size_t nl = in.find('\n');
          if (nl == std::string::npos && !eof) return std::nullopt;
          return handleRequest(in.substr(0, nl)) + "\n";
        },
        R"({"ok":false,"error":"request too long"})" "\n");
    if (api_.listening()) logInfo("control socket " + cfg_.control.socket);
  }
  if (cfg_.metrics.addr) {
    std::string lerr;
    if (!metrics_.listenTcp(*cfg_.metrics.addr, cfg_.metrics.port, lerr))
      logError(lerr + "; metrics are disabled");
    metrics_.setHandler(
        [this](const std::string& in, bool eof) {
          return api::serveMetricsHttp(
              in, eof, [this] { return renderMetrics(observe()); },
              [this] { return api::renderStatusPage(api::statusPage(*this)); });
        },
        api::kMetricsRequestTooLarge);
    if (metrics_.listening())
      logInfo("metrics on http://" + cfg_.metrics.listen + "/metrics, status page on http://" + cfg_.metrics.listen + "/");
  }
  health_.setCheckObserver([this](const CheckRecord& r) {
    (r.ok ? health_ok_ : health_failed_).observe(double(r.end_us - r.start_us) / 1e6);
  });
  setLogLevel(levelOf(cfg_.log.level));
  config_sha256_ = fileSha256Of(path_);
  started_mono_ms_ = prev_tick_ms_ = monoMsNow();
  started_unix_ = int64_t(time(nullptr));
  syncXdp(*s);
  health_.setTargets(healthTargets(cfg_, *s));
  publisher_.publish(std::move(s));
  stats_.publishes++;
  if (cfg_.bgp.enabled) {
    announcer_ = std::make_unique<bgp::Announcer>(cfg_.bgp, cfg_.cluster.name);
    // Not forwarding yet: this writes an include file with nothing announced, which also
    // withdraws what a previous instance that crashed may have left in BIRD.
    updateBgp();
  }
  return true;
}

void ControlPlane::setWorkers(std::vector<const dataplane::WorkerState*> w, uint32_t flow_capacity) {
  workers_ = std::move(w);
  flow_capacity_ = flow_capacity;
  prev_load_.assign(workers_.size(), WorkerLoad{});
  busy_ratio_.assign(workers_.size(), 0.0);
}

// Once a second: rates that need two samples (busy ratio, new flows per second).
void ControlPlane::tick() {
  const uint64_t now = monoMsNow();
  for (size_t i = 0; i < workers_.size(); i++) {
    const WorkerLoad l = workers_[i]->load;
    const uint64_t dt = l.total_cycles - prev_load_[i].total_cycles;
    busy_ratio_[i] = dt == 0 ? 0.0 : double(l.busy_cycles - prev_load_[i].busy_cycles) / double(dt);
    prev_load_[i] = l;
  }
  // Per-backend rates for the status page: this tick's counters against the last tick's.
  std::vector<uint32_t> ids;
  if (const Snapshot* s = publisher_.current())
    for (const SnapVip& v : s->vips) ids.insert(ids.end(), v.backends.begin(), v.backends.end());
  const WorkerTotals totals = sumWorkers(workers_, ids);
  const double dt_s = now > prev_tick_ms_ ? double(now - prev_tick_ms_) / 1000.0 : 0;
  backend_rates_.clear();
  for (const auto& [id, c] : totals.backends) {
    auto p = prev_backends_.find(id);
    if (p == prev_backends_.end() || dt_s <= 0) continue;
    auto rate = [dt_s](uint64_t a, uint64_t b) { return a >= b ? double(a - b) / dt_s : 0.0; };
    backend_rates_[id] = {rate(c.packets, p->second.packets), rate(c.bytes, p->second.bytes),
                          rate(c.flows_new, p->second.flows_new)};
  }
  prev_backends_ = totals.backends;
  if (const Snapshot* s = publisher_.current()) history_.record(*s, backend_rates_, totals.counters, dt_s, busy_ratio_);
  const uint64_t flows_new = totals.counters.get(Ctr::FlowNew);
  if (now > prev_tick_ms_) flows_per_s_ = double(flows_new - prev_flows_new_) * 1000.0 / double(now - prev_tick_ms_);
  prev_flows_new_ = flows_new;
  prev_tick_ms_ = now;
  // The watchdog is fed from here, the control loop's own timer, and only while every worker's
  // loop counter moves: a stuck worker or a stuck control loop both stop the pings.
  std::vector<uint64_t> loops(workers_.size());
  for (size_t i = 0; i < workers_.size(); i++) loops[i] = workers_[i]->load.loops;
  notify_.watchdog(now, loops);
  if (std::string st = statusLine(); st != last_status_) {
    last_status_ = st;
    notify_.status(st);
  }
  api_.poll();  // closes idle connections even when no event arrives
  metrics_.poll();
  updateBgp();
}

std::vector<HealthTarget> ControlPlane::healthTargets(const Config& cfg, const Snapshot& s) const {
  std::vector<HealthTarget> out;
  for (const VipConfig& v : cfg.vips)
    for (const BackendConfig& b : v.backends) {
      if (b.health.type == HealthType::None) continue;
      HealthTarget t;
      t.key = backendIdentity(v, b);
      t.addr = b.address;
      t.port = b.health.port ? b.health.port : b.port ? b.port : v.port;
      t.cfg = b.health;
      // Source: [health] source4/6, else the egress port's own address when the kernel holds it
      // (tap / xdp exception path), so checks leave through the data path's port.
      const auto& global = b.address.isV4() ? cfg.health.source4 : cfg.health.source6;
      if (global) {
        t.source = *global;
      } else if (uint32_t id = builder_.idOf(t.key); const SnapBackend* sb = s.backend(id)) {
        if (sb->egress < cfg.ports.size()) {
          const PortConfig& p = cfg.ports[sb->egress];
          if (p.exception_path != ExceptionPath::None) {
            if (b.address.isV4() && p.ipv4) t.source = p.ipv4->addr;
            if (!b.address.isV4() && p.ipv6) t.source = p.ipv6->addr;
          }
        }
      }
      out.push_back(std::move(t));
    }
  return out;
}

void ControlPlane::pruneDynamic() {
  std::set<std::string> live;
  for (const VipConfig& v : cfg_.vips)
    for (const BackendConfig& b : v.backends) live.insert(backendIdentity(v, b));
  for (auto it = dyn_.backends.begin(); it != dyn_.backends.end();)
    it = live.count(it->first) ? std::next(it) : dyn_.backends.erase(it);
}

bool ControlPlane::rebuild(const std::string& why) {
  BuildResult built = builder_.build(cfg_, runtimeOf(ports_), &dyn_);
  if (!built) {  // cannot happen for a config that built before; keep the running tables
    logError("rebuild after " + why + " failed, tables unchanged: " + built.joined());
    return false;
  }
  publish(std::move(built.snapshot), why);
  return true;
}

void ControlPlane::publish(std::unique_ptr<Snapshot> s, const std::string& why) {
  // Backend state changes are found against the running snapshot (same ids across builds) and
  // logged once the new one is in force: when the line appears, every worker uses it.
  std::vector<std::string> changes;
  if (const Snapshot* old = publisher_.current())
    for (const VipConfig& v : cfg_.vips)
      for (const BackendConfig& bc : v.backends) {
        const std::string key = backendIdentity(v, bc);
        const SnapBackend* b = s->backend(builder_.idOf(key));
        if (b == nullptr) continue;
        const SnapBackend* o = old->backend(b->id);
        if (o != nullptr && o->state != b->state) {
          changes.push_back("backend " + b->addr.str() + " of VIP " + s->vips[b->vip_index].name + ": " +
                            std::string(toString(o->state)) + " -> " + std::string(toString(b->state)) + " (" + why + ")");
          transitions_[key] = {int64_t(time(nullptr)), std::string(toString(o->state)), std::string(toString(b->state)), why};
          history_.transition({transitions_[key], v.name, api::endpoint(bc.address, bc.port)});
        }
      }
  syncXdp(*s);
  publisher_.publish(std::move(s));
  stats_.publishes++;
  for (const std::string& c : changes) logInfo(c);
  updateBgp();  // a VIP that lost (or regained) its last healthy backend: at once
}

void ControlPlane::applyHealth(const std::vector<HealthTransition>& ts) {
  if (ts.empty()) return;
  std::string why;
  for (const HealthTransition& t : ts) {
    stats_.health_transitions++;
    logInfo("health " + t.key + ": " + std::string(toString(t.from)) + " -> " + std::string(toString(t.to)) + " (" +
            t.reason + ")");
    dyn_.backends[t.key].down = t.to == Health::Down;
    why = "health check: " + t.reason;
  }
  rebuild(ts.size() == 1 ? why : std::to_string(ts.size()) + " health transitions");
}

void ControlPlane::refreshNeighbours(bool request) {
  if (!netlink_ok_) return;
  std::map<std::string, MacAddr> out;
  std::string err;
  if (!neighbours_.refresh(out, request, err)) {
    logWarn(err);
    return;
  }
  for (const auto& [k, st] : neighbours_.unresolved())
    if (unresolved_logged_[k] != st) {
      unresolved_logged_[k] = st;
      logWarn("neighbour " + k + " unresolved: " + st);
    }
  for (auto it = unresolved_logged_.begin(); it != unresolved_logged_.end();)
    it = neighbours_.unresolved().count(it->first) ? std::next(it) : unresolved_logged_.erase(it);
  if (out == dyn_.resolved) return;
  for (const auto& [a, m] : out) {
    auto it = dyn_.resolved.find(a);
    if (it == dyn_.resolved.end()) logInfo("neighbour " + a + " resolved: " + m.str());
    else if (!(it->second == m)) logInfo("neighbour " + a + " changed: " + it->second.str() + " -> " + m.str());
  }
  for (const auto& [a, m] : dyn_.resolved)
    if (!out.count(a)) logWarn("neighbour " + a + " lost (was " + m.str() + ")");
  stats_.neighbour_changes++;
  dyn_.resolved = std::move(out);
  rebuild("neighbour table");
}

void ControlPlane::syncXdp(const Snapshot& s) {
  if (xdp_.empty()) return;
  std::vector<IpAddr> own;
  for (const PortConfig& p : cfg_.ports) {
    if (p.ipv4) own.push_back(p.ipv4->addr);
    if (p.ipv6) own.push_back(p.ipv6->addr);
  }
  const std::vector<XdpAddr> want = xdpAddresses(s, own);
  for (auto& [ifname, m] : xdp_) {
    std::string err;
    if (!m->sync(want, err)) logError("XDP map on " + ifname + ": " + err);
  }
}

api::ReloadOutcome ControlPlane::reload() {
  api::ReloadOutcome out;
  std::vector<std::string>& msgs = out.messages;
  // Every message goes to the log and to the API caller (l4lbctl reload).
  auto error = [&](const std::string& m) {
    logError(m);
    msgs.push_back(m);
  };
  // systemd: RELOADING=1 now, READY=1 (with the status) however the reload ends.
  notify_.reloading();
  struct Ready {
    ControlPlane& cp;
    ~Ready() { cp.notify_.ready(cp.last_status_ = cp.statusLine()); }
  } ready{*this};
  logInfo("reload: reading " + path_);
  ConfigResult r = loadConfigFile(path_);
  if (!r.ok()) {
    stats_.reloads_failed++;
    for (const std::string& m : r.error.messages) error("reload rejected: " + m);
    error("reload rejected: the running configuration is unchanged");
    return out;
  }
  Config next = std::move(*r.config);
  ChangePlan plan = planChange(cfg_, next, builder_, ports_.runtime, dyn_, publisher_.current());
  if (!plan.restart.empty()) {
    stats_.reloads_failed++;
    for (const std::string& m : plan.restart) error("reload refused: " + path_ + ": " + m);
    error("reload refused: the running configuration is unchanged");
    return out;
  }
  if (!plan.snapshot) {
    stats_.reloads_failed++;
    for (const std::string& e : placeMessages(path_, plan.build_errors)) error("reload rejected: " + e);
    error("reload rejected: the running configuration is unchanged");
    return out;
  }
  const std::string summary = plan.diff.summary();
  std::unique_ptr<Snapshot> s = std::move(plan.snapshot);
  builder_ = std::move(plan.builder);
  cfg_ = std::move(next);
  setLogLevel(levelOf(cfg_.log.level));
  config_sha256_ = fileSha256Of(path_);
  pruneDynamic();
  if (cfg_.bgp.enabled && !announcer_) {
    announcer_ = std::make_unique<bgp::Announcer>(cfg_.bgp, cfg_.cluster.name);
  } else if (cfg_.bgp.enabled) {
    announcer_->setConfig(cfg_.bgp, cfg_.cluster.name);
  } else if (announcer_) {
    // [bgp] removed: withdraw what this balancer announced, then stop talking to BIRD.
    announcer_->beginStop();
    updateBgp();
    announcer_.reset();
  }
  neighbours_.setWanted(SnapshotBuilder::neighboursToResolve(cfg_));
  health_.setTargets(healthTargets(cfg_, *s));
  publish(std::move(s), "reload");
  stats_.reloads_ok++;
  logInfo("reload applied: " + summary);
  msgs.push_back("reload applied: " + summary);
  refreshNeighbours(true);
  out.ok = true;
  return out;
}

std::string ControlPlane::backendsJson() const {
  nlohmann::json out = nlohmann::json::array();
  const Snapshot* s = publisher_.current();
  for (const VipConfig& v : cfg_.vips)
    for (const BackendConfig& b : v.backends) {
      const std::string key = backendIdentity(v, b);
      nlohmann::json j{{"key", key}, {"vip", v.name}, {"address", b.address.str()}, {"port", b.port},
                       {"weight", b.weight}};
      if (s)
        if (const SnapBackend* sb = s->backend(builder_.idOf(key))) {
          j["state"] = toString(sb->state);
          j["next_hop_mac"] = sb->next_hop_mac.str();
        }
      if (const HealthChecker::Status* st = health_.status(key)) {
        j["health"] = {{"state", std::string(toString(st->state))}, {"checks", st->checks},
                       {"last_reason", st->last_reason}, {"last_latency_ms", st->last_latency_ms},
                       {"last_change_reason", st->last_change_reason}};
      }
      out.push_back(j);
    }
  return out.dump();
}

void ControlPlane::run() {
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGHUP);
  const bool hooks = testHooksEnabled();
  if (hooks) sigaddset(&sigs, SIGUSR2);
  const int sfd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK);
  const int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
  itimerspec its{{1, 0}, {1, 0}};
  timerfd_settime(tfd, 0, &its, nullptr);
  const int ep = epoll_create1(EPOLL_CLOEXEC);
  auto add = [&](int fd) {
    if (fd < 0) return;
    epoll_event e{};
    e.events = EPOLLIN;
    e.data.fd = fd;
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
  };
  add(sfd);
  add(tfd);
  add(health_.fd());
  const int nfd = netlink_ok_ ? neighbours_.eventFd() : -1;
  add(nfd);
  add(api_.fd());
  add(metrics_.fd());

  bool running = true;
  // Clean stop with [bgp]: withdraw every VIP, keep forwarding for bgp.drain_time so the
  // routers move the traffic to the other balancers, then stop. 0: not stopping.
  uint64_t stop_at_ms = 0;
  while (running) {
    epoll_event evs[8];
    int timeout = health_.timeoutMs();
    if (stop_at_ms != 0) {
      const uint64_t now = monoMsNow();
      if (now >= stop_at_ms) {
        logInfo("bgp.drain_time over: stopping");
        break;
      }
      const int left = int(stop_at_ms - now);
      timeout = timeout < 0 ? left : std::min(timeout, left);
    }
    int n = epoll_wait(ep, evs, 8, timeout);
    for (int i = 0; i < n; i++) {
      const int fd = evs[i].data.fd;
      if (fd == sfd) {
        signalfd_siginfo si;
        while (read(sfd, &si, sizeof(si)) == ssize_t(sizeof(si))) {
          if (si.ssi_signo == SIGHUP) {
            reload();
          } else if (si.ssi_signo == SIGUSR2) {
            const bool stall = !shared_.test_stall.load(std::memory_order_relaxed);
            shared_.test_stall.store(stall, std::memory_order_relaxed);
            logWarn(std::string("test hook (SIGUSR2): worker 0 ") + (stall ? "stalled" : "released"));
          } else {
            const std::string sig = si.ssi_signo == SIGINT ? "SIGINT" : "SIGTERM";
            if (announcer_ && stop_at_ms == 0 && cfg_.bgp.drain_time_ms > 0) {
              notify_.stopping();
              announcer_->beginStop();
              updateBgp();
              stop_at_ms = monoMsNow() + cfg_.bgp.drain_time_ms;
              logInfo("signal " + sig + ": VIPs withdrawn" + (announcer_->inSync() ? "" : " (BIRD did not confirm)") +
                      ", forwarding for bgp.drain_time " + std::to_string(cfg_.bgp.drain_time_ms) +
                      " ms, then stopping (a second signal stops at once)");
            } else {
              if (announcer_ && stop_at_ms == 0) {  // drain_time = 0: withdraw, then stop
                announcer_->beginStop();
                updateBgp();
              }
              logInfo("signal " + sig + ": stopping");
              running = false;
            }
          }
        }
      } else if (fd == tfd) {
        uint64_t ticks;
        if (read(tfd, &ticks, sizeof(ticks)) < 0) continue;
        refreshNeighbours(true);
        tick();
      } else if (fd == nfd) {
        neighbours_.drainEvents();
        refreshNeighbours(false);
      } else if (fd == api_.fd()) {
        api_.poll();
      } else if (fd == metrics_.fd()) {
        metrics_.poll();
      }
    }
    // The checker's epoll fd only says "something is ready"; poll() also runs due checks.
    applyHealth(health_.poll());
  }
  notify_.stopping();
  close(ep);
  close(tfd);
  close(sfd);
  api_.close();  // removes the socket file: l4lbctl then says the daemon is not running
  metrics_.close();
}

std::string ControlPlane::handleRequest(const std::string& request) { return api::handleRequest(*this, request); }

Observation ControlPlane::observe() const { return api::observe(*this); }

std::optional<sync::SyncStatus> ControlPlane::syncStatus() const {
  if (sync_ == nullptr) return std::nullopt;
  return sync_->status();
}

const api::Transition* ControlPlane::lastTransition(const std::string& key) const {
  auto it = transitions_.find(key);
  return it == transitions_.end() ? nullptr : &it->second;
}

api::RunFacts ControlPlane::runFacts() const {
  api::RunFacts f;
  f.started_unix = started_unix_;
  f.uptime_s = double(monoMsNow() - started_mono_ms_) / 1000.0;
  f.config_sha256 = config_sha256_;
  f.metrics_listen = metrics_.listening() ? cfg_.metrics.listen : "";
  f.stats = stats_;
  f.health_ok = health_ok_;
  f.health_failed = health_failed_;
  f.busy_ratio = busy_ratio_;
  f.flow_capacity = flow_capacity_;
  f.new_flows_per_s = flows_per_s_;
  f.backend_rates = backend_rates_;
  return f;
}

uint32_t ControlPlane::workerClockMs() const { return dataplane::nowMs(); }

std::vector<api::FlowAnswer> ControlPlane::askFlowTables(bool v6, const void* key, size_t key_len) const {
  std::vector<api::FlowAnswer> out(queries_.size());
  std::vector<bool> asked(queries_.size());
  // A worker with an earlier question still unanswered (stopped or stuck) is not asked again.
  for (size_t i = 0; i < queries_.size(); i++) asked[i] = dataplane::postFlowQuery(*queries_[i], v6, key, key_len);
  const uint64_t deadline = monoMsNow() + api::kFlowQueryWaitMs;
  for (;;) {
    bool pending = false;
    for (size_t i = 0; i < queries_.size(); i++) {
      if (!asked[i] || out[i].answered) continue;
      dataplane::FlowQueryAnswer a;
      if (dataplane::takeFlowAnswer(*queries_[i], a)) out[i] = {true, a.hit, a.value, a.room, a.room_embryonic, a.snat_hit, a.snat_addr, a.snat_port};
      else pending = true;
    }
    if (!pending || monoMsNow() >= deadline) break;
    usleep(20);  // workers poll continuously: an answer takes one loop (microseconds)
  }
  return out;
}

}  // namespace l4lb::control
