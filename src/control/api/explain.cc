// explain tcp|udp SRC:PORT DST:PORT: which backend a flow goes to now, and why. The command
// parses the flow, finds its VIP and asks every worker's flow table (FlowQuery); the decision
// itself (flow-table answers + the scheduler's stateless choice -> backend and reason) is
// explainDecision(), kept apart so it can be replaced by the data plane's own decision function.
#include <arpa/inet.h>

#include <set>

#include "control/api/handlers.h"
#include "dataplane/lookup.h"

namespace l4lb::control::api {

namespace {

using nlohmann::json;

// A snapshot backend as ADDR:PORT, or null when there is none.
json backendJson(const SnapBackend* b) { return b ? json(endpoint(b->addr, ntohs(b->port_be))) : json(nullptr); }

const char* flowStateName(dataplane::FlowState s) {
  switch (s) {
    case dataplane::FlowState::TcpSyn: return "syn";
    case dataplane::FlowState::TcpEstablished: return "established";
    case dataplane::FlowState::TcpClosing: return "closing";
    case dataplane::FlowState::Udp: return "udp";
  }
  return "?";
}

// The flow decision for a packet of a flow to VIP `v` (index `vi`) with hash `sig` from source
// address `src`, at `now_ms` on the workers' clock: what a new flow gets (the scheduler over the published tables), what the flow
// has (the workers' flow-table `answers`), hence which backend and why. Fills the reply's
// candidates/slot/table_size, new_flow_backend, flow_entry, flow_table, backend,
// backend_state and reason.
void explainDecision(const Snapshot& s, const SnapVip& v, uint32_t vi, hash_sig_t sig, const uint8_t* src, Family f,
                     const std::vector<FlowAnswer>& answers, uint32_t now_ms, json& j) {
  // What a new flow gets now: the scheduler over the published tables.
  std::string fresh_why;
  const SnapBackend* fresh = nullptr;
  if (v.scheduler == Scheduler::RoundRobin || v.scheduler == Scheduler::WeightedRoundRobin) {
    json cands = json::array();
    std::set<uint32_t> seen;
    for (uint32_t id : v.rr)
      if (seen.insert(id).second)
        if (const SnapBackend* b = s.backend(id)) cands.push_back(backendJson(b));
    j["candidates"] = cands;
    fresh_why = v.rr.empty() ? "no usable backend: dropped as no_backend"
                             : "round robin: a new flow takes the next backend of the worker's cursor";
  } else {
    fresh = s.backend(dataplane::statelessBackend(v, sig, src, f));
    if (fresh == nullptr) {
      fresh_why = "no usable backend: dropped as no_backend";
    } else {
      const uint64_t slot = dataplane::statelessSlot(v, sig, src, f);
      j["slot"] = slot;
      j["table_size"] = v.maglev.size();
      fresh_why = std::string(v.scheduler == Scheduler::SourceHash ? "source hash" : "Maglev") + " slot " +
                  std::to_string(slot) + " of " + std::to_string(v.maglev.size());
    }
  }
  j["new_flow_backend"] = backendJson(fresh);

  // What the flow has: each worker answers for its own table (RSS decides which one holds it).
  const SnapBackend* kept = nullptr;
  std::string table_why;
  if (!answers.empty()) {
    std::vector<std::string> silent;
    int hit_worker = -1;
    dataplane::FlowValue fv;
    for (size_t i = 0; i < answers.size(); i++) {
      if (!answers[i].answered) silent.push_back(std::to_string(i));
      else if (answers[i].hit && hit_worker < 0) hit_worker = int(i), fv = dataplane::FlowValue::unpack(answers[i].value);
    }
    if (hit_worker >= 0) {
      const uint32_t now = now_ms;
      const uint32_t idle = now - fv.last_seen_ms;
      const bool expired = dataplane::isExpired(fv, now, s.timeouts);
      const SnapBackend* eb = s.backend(fv.backend_id);
      const bool usable = dataplane::usableForExisting(eb, vi);
      j["flow_entry"] = {{"worker", hit_worker},
                         {"backend", backendJson(eb)},
                         {"backend_id", fv.backend_id},
                         {"state", flowStateName(fv.state)},
                         {"idle_ms", idle},
                         {"expired", expired},
                         {"backend_usable", usable}};
      std::string entry = "hit on worker " + std::to_string(hit_worker) + " (" + flowStateName(fv.state) + ", idle " +
                          std::to_string(idle / 1000) + "." + std::to_string(idle % 1000 / 100) + " s)";
      if (expired) {
        j["flow_table"] = entry + ", expired";
        table_why = "its flow-table entry has expired: the next packet starts a new flow";
      } else if (!usable) {
        j["flow_table"] = entry + ", backend no longer usable";
        table_why = "its flow-table entry's backend left the pool or failed: the next packet is re-hashed (flow_rehash)";
      } else {
        j["flow_table"] = entry;
        kept = eb;
        table_why = "flow-table hit on worker " + std::to_string(hit_worker) + ": an existing flow keeps its backend";
      }
    } else {
      j["flow_table"] = "miss on " + std::to_string(answers.size() - silent.size()) + " of " +
                        std::to_string(answers.size()) + " workers";
      table_why = "no flow-table entry: a new flow";
    }
    if (!silent.empty()) {
      std::string w;
      for (const auto& x : silent) w += (w.empty() ? "" : ",") + x;
      j["flow_table"] = j["flow_table"].get<std::string>() + "; worker " + w + " did not answer within " +
                        std::to_string(kFlowQueryWaitMs) + " ms";
    }
  } else {
    table_why = "flow tables not inspected (no workers)";
  }

  const SnapBackend* chosen = kept ? kept : fresh;
  j["backend"] = backendJson(chosen);
  if (chosen) j["backend_state"] = std::string(toString(chosen->state));
  if (kept) {
    j["reason"] = table_why + "; a new flow would get " +
                  (fresh ? backendJson(fresh).get<std::string>() + " (" + fresh_why + ")" : fresh_why);
  } else {
    j["reason"] = table_why + "; " + fresh_why;
  }
}

}  // namespace

json cmdExplain(OperatorView& view, const Args& args) {
  uint8_t proto;
  if (args[0] == "tcp") proto = uint8_t(Proto::Tcp);
  else if (args[0] == "udp") proto = uint8_t(Proto::Udp);
  else throw ApiError{"bad protocol '" + args[0] + "': tcp or udp"};
  auto src = parseListenAddr(args[1]), dst = parseListenAddr(args[2]);
  if (!src) throw ApiError{"bad source '" + args[1] + "': expected ADDR:PORT or [ADDR6]:PORT"};
  if (!dst) throw ApiError{"bad destination '" + args[2] + "': expected ADDR:PORT or [ADDR6]:PORT"};
  if (src->first.family != dst->first.family) throw ApiError{"source and destination are different address families"};
  const Snapshot* s = view.snapshot();
  if (s == nullptr) throw ApiError{"no snapshot published yet"};
  const Family f = dst->first.family;
  const uint16_t sport_be = htons(src->second), dport_be = htons(dst->second);
  json j{{"flow", args[0] + " " + args[1] + " -> " + args[2]}, {"flow_table", "not inspected"}, {"flow_entry", nullptr}};
  uint32_t vi;
  const SnapVip* v = dataplane::findVip(*s, dst->first.bytes.data(), f, dport_be, proto, vi);
  if (v == nullptr) {
    j["vip"] = nullptr;
    j["backend"] = nullptr;
    j["reason"] = "destination is no VIP: counted as no_vip (or handed to the kernel on a port with an exception path)";
    return j;
  }
  j["vip"] = v->name;
  j["scheduler"] = std::string(toString(v->scheduler));
  hash_sig_t sig;
  dataplane::FlowKey4 k4{};
  dataplane::FlowKey6 k6{};
  if (f == Family::V4) {
    sig = dataplane::makeFlowKey(k4, src->first.bytes.data(), dst->first.bytes.data(), sport_be, dport_be, proto);
  } else {
    sig = dataplane::makeFlowKey(k6, src->first.bytes.data(), dst->first.bytes.data(), sport_be, dport_be, proto);
  }
  j["hash"] = sig;
  const std::vector<FlowAnswer> answers = f == Family::V4 ? view.askFlowTables(false, &k4, sizeof(k4), sig)
                                                          : view.askFlowTables(true, &k6, sizeof(k6), sig);
  explainDecision(*s, *v, vi, sig, src->first.bytes.data(), f, answers, view.workerClockMs(), j);
  return j;
}

}  // namespace l4lb::control::api
