// An in-memory OperatorView for the operator commands' unit tests: a Config loaded from TOML, a
// Snapshot built by SnapshotBuilder on stand-in port ids, WorkerStates whose counters a test
// fills by hand, and recorded rebuilds/reloads. No EAL, no ports, no sockets.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "control/api/handlers.h"
#include "control/api/view.h"
#include "dataplane/worker.h"
#include "packet_builder.h"
#include "test_configs.h"

namespace l4lb::control::api::test {

// Two VIPs on one port: "web" (Maglev, table 7, two backends, weights 1 and 2) and "dns"
// (UDP round robin, one backend).
inline const std::string kToml = ::l4lb::test::configText("api_two_vips.toml");

// FakeView's two VIPs and a full-NAT one with two source addresses (Snapshot::snat_addrs 0, 1).
inline const std::string kFullNatToml = kToml +
                                 "[[vips]]\nname = \"app\"\naddress = \"198.18.0.30\"\nport = 443\n"
                                 "forwarding = \"fullnat\"\nsnat_addresses = [\"198.18.0.2\", \"198.18.0.3\"]\n"
                                 "snat_ports = \"2000-2999\"\nproxy_protocol = \"v2\"\n"
                                 "[[vips.backends]]\naddress = \"198.18.0.31\"\nport = 8443\n"
                                 "mac = \"02:00:00:00:00:31\"\n";

class FakeView : public OperatorView {
 public:
  explicit FakeView(const std::string& toml = kToml, size_t nworkers = 1) {
    ConfigResult r = loadConfigString(toml, "t.toml");
    if (!r.ok()) throw std::runtime_error(r.error.str());
    cfg = *r.config;
    path = "/nonexistent/l4lb.toml";
    for (size_t i = 0; i < cfg.ports.size(); i++)
      rt.push_back({uint16_t(i), l4lb::test::macAddr("02:00:00:00:00:0" + std::to_string(i + 1))});
    BuildResult built = b.build(cfg, rt, &dyn);
    if (!built) throw std::runtime_error(built.joined());
    snap = std::move(built.snapshot);
    for (size_t i = 0; i < nworkers; i++) {
      owned.push_back(std::make_unique<dataplane::WorkerState>());
      ws.push_back(owned.back().get());
    }
    facts.started_unix = 1700000000;
    facts.uptime_s = 12.5;
    facts.busy_ratio.assign(nworkers, 0.25);
    facts.flow_capacity = 1024;
    facts.new_flows_per_s = 3.5;
  }

  uint32_t idOf(size_t vip, size_t backend) const {
    return b.idOf(backendIdentity(cfg.vips[vip], cfg.vips[vip].backends[backend]));
  }
  dataplane::WorkerState& worker(size_t i) { return *owned[i]; }

  // OperatorView
  const Config& config() const override { return cfg; }
  const std::string& configPath() const override { return path; }
  const DynamicState& dynamicState() const override { return dyn; }
  DynamicState& dynamicState() override { return dyn; }
  const Snapshot* snapshot() const override { return snap.get(); }
  const SnapshotBuilder& builder() const override { return b; }
  const std::vector<PortRuntime>& portRuntime() const override { return rt; }
  const HealthChecker::Status* healthStatus(const std::string& key) const override {
    auto it = health.find(key);
    return it == health.end() ? nullptr : &it->second;
  }
  const Transition* lastTransition(const std::string& key) const override {
    auto it = transitions.find(key);
    return it == transitions.end() ? nullptr : &it->second;
  }
  const std::vector<const dataplane::WorkerState*>& workers() const override { return ws; }
  RunFacts runFacts() const override { return facts; }
  std::vector<FlowAnswer> askFlowTables(bool v6, const void* key, size_t key_len) const override {
    asked.push_back({v6, std::vector<uint8_t>(static_cast<const uint8_t*>(key), static_cast<const uint8_t*>(key) + key_len)});
    return answers;
  }
  uint32_t workerClockMs() const override { return clock_ms; }
  bool rebuild(const std::string& why) override {
    rebuilds.push_back(why);
    std::unique_ptr<Snapshot> s = b.build(cfg, rt, &dyn).snapshot;
    if (!s) return false;
    snap = std::move(s);
    return true;
  }
  ReloadOutcome reload() override {
    reloads++;
    return reload_outcome;
  }

  Config cfg;
  std::string path;
  DynamicState dyn;
  SnapshotBuilder b;
  std::unique_ptr<Snapshot> snap;
  std::vector<PortRuntime> rt;
  std::map<std::string, HealthChecker::Status> health;
  std::map<std::string, Transition> transitions;
  std::vector<std::unique_ptr<dataplane::WorkerState>> owned;
  std::vector<const dataplane::WorkerState*> ws;
  RunFacts facts;
  std::vector<FlowAnswer> answers;
  uint32_t clock_ms = 100000;
  struct Asked {
    bool v6;
    std::vector<uint8_t> key;
  };
  mutable std::vector<Asked> asked;
  std::vector<std::string> rebuilds;
  int reloads = 0;
  ReloadOutcome reload_outcome;
};

// Sends {"cmd": cmd, "args": args} through handleRequest and parses the reply.
inline nlohmann::json call(OperatorView& v, const std::string& cmd, const std::vector<std::string>& args = {}) {
  return nlohmann::json::parse(handleRequest(v, nlohmann::json{{"cmd", cmd}, {"args", args}}.dump()));
}

}  // namespace l4lb::control::api::test
