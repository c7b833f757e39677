// explain tcp|udp SRC:PORT DST:PORT: which backend a flow goes to now, and why. The command
// parses the flow, finds its VIP and asks every worker's flow table (FlowQuery); the decision
// is the data plane's own (dataplane::decideFlow, src/dataplane/decide.h), run on those answers.
#include <arpa/inet.h>

#include <set>

#include "control/api/handlers.h"
#include "dataplane/decide.h"
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
    case dataplane::FlowState::UdpNew: return "udp_new";
    case dataplane::FlowState::TcpReset: return "reset";
  }
  return "?";
}

// What the data plane does with the next packet of a flow to VIP `v` (index `vi`) with hash
// `sig` from source address `src`, at `now_ms` on the workers' clock, given what the workers'
// flow tables hold for it (`answers`): dataplane::decideFlow, the function the workers run per
// packet, over the same facts, so explain cannot disagree with forwarding. Round robin's next
// backend depends on the worker's cursor, which explain does not have: it lists the candidates.
// Fills the reply's outcome, candidates/slot/table_size, new_flow_backend, flow_entry,
// flow_table, backend, backend_state and reason.
void explainDecision(const Snapshot& s, const SnapVip& v, uint32_t vi, hash_sig_t sig, const uint8_t* src, Family f,
                     bool tcp, const std::vector<FlowAnswer>& answers, uint32_t now_ms, json& j) {
  // The workers' facts: the first that holds an entry (RSS decides which one sees the flow), and
  // whether a new flow would be tracked. Without an entry, explain cannot know which worker RSS
  // gives the flow: it is untracked only when every answering table is full, and the full ones
  // are named (a new flow that lands on one of them is untracked).
  std::vector<std::string> silent, full;
  int hit_worker = -1;
  uint64_t raw = 0;
  bool any_room = false, any_room_embryonic = false, answered = false;
  for (size_t i = 0; i < answers.size(); i++) {
    if (!answers[i].answered) {
      silent.push_back(std::to_string(i));
      continue;
    }
    answered = true;
    if (answers[i].room) any_room = true;
    else full.push_back(std::to_string(i));
    if (answers[i].room_embryonic) any_room_embryonic = true;
    if (answers[i].hit && hit_worker < 0) hit_worker = int(i), raw = answers[i].value;
  }
  const bool room = any_room || !answered;
  const bool room_embryonic = any_room_embryonic || !answered;
  // The next packet explain asks about: a TCP ACK (a confirmed entry when new), or a UDP packet
  // (embryonic when new, under admission). The token bucket is the worker's: not limited here.
  const dataplane::FlowFacts facts{&v, vi, sig, f, tcp, uint8_t(tcp ? dataplane::kTcpAck : 0)};
  auto admit = [room, room_embryonic](bool embryonic) {
    // No room for either class: the table is full (untracked); for embryonic only: the quota.
    if (embryonic && !room_embryonic)
      return room ? dataplane::StoreResult::EmbryonicFull : dataplane::StoreResult::TableFull;
    if (embryonic) return dataplane::StoreResult::Stored;
    return room ? dataplane::StoreResult::Stored : dataplane::StoreResult::TableFull;
  };
  auto source = [src] { return src; };
  const dataplane::FlowDecision d =
      dataplane::decideFlow(s, facts, hit_worker >= 0, raw, now_ms, {}, admit, source);
  // What a new flow of the same 5-tuple would get (shown next to a kept entry).
  const dataplane::FlowDecision fresh = dataplane::decideFlow(s, facts, false, 0, now_ms, {}, admit, source);
  j["outcome"] = dataplane::toString(d.outcome);
  if (d.outcome == dataplane::FlowOutcome::Hit || d.store)
    j["entry_class"] = dataplane::isEmbryonic(d.value.state) ? "embryonic" : "confirmed";
  else
    j["entry_class"] = nullptr;  // not tracked

  std::string fresh_why;
  if (fresh.outcome == dataplane::FlowOutcome::NoBackend) {
    fresh_why = "no usable backend: dropped as no_backend";
  } else if (fresh.outcome == dataplane::FlowOutcome::Untracked && dataplane::isRoundRobin(v)) {
    fresh_why = "flow table full: untracked, by the Maglev slot (round robin needs state) (flow_table_full)";
  } else if (fresh.outcome == dataplane::FlowOutcome::EmbryonicFull && dataplane::isRoundRobin(v)) {
    fresh_why = "embryonic quota full: untracked, by the Maglev slot (round robin needs state) (flow_embryonic_full)";
  } else if (dataplane::isRoundRobin(v)) {
    json cands = json::array();
    std::set<uint32_t> seen;
    for (uint32_t id : v.rr)
      if (seen.insert(id).second)
        if (const SnapBackend* b = s.backend(id)) cands.push_back(backendJson(b));
    j["candidates"] = cands;
    fresh_why = "round robin: a new flow takes the next backend of the worker's cursor";
  } else {
    const uint64_t slot = dataplane::statelessSlot(v, sig, src, f);
    j["slot"] = slot;
    j["table_size"] = v.maglev.size();
    fresh_why = std::string(v.scheduler == Scheduler::SourceHash ? "source hash" : "Maglev") + " slot " +
                std::to_string(slot) + " of " + std::to_string(v.maglev.size());
    if (fresh.outcome == dataplane::FlowOutcome::Untracked) fresh_why += ", untracked: flow table full (flow_table_full)";
    if (fresh.outcome == dataplane::FlowOutcome::EmbryonicFull)
      fresh_why += ", untracked: embryonic quota full (flow_embryonic_full)";
  }
  const SnapBackend* fresh_backend = s.backend(fresh.backend);
  j["new_flow_backend"] = backendJson(fresh_backend);

  std::string table_why;
  if (answers.empty()) {
    table_why = "flow tables not inspected (no workers)";
  } else {
    if (hit_worker >= 0) {
      const dataplane::FlowValue fv = dataplane::FlowValue::unpack(raw);
      const uint32_t idle = now_ms - fv.last_seen_ms;
      const SnapBackend* eb = s.backend(fv.backend_id);
      j["flow_entry"] = {{"worker", hit_worker},
                         {"backend", backendJson(eb)},
                         {"backend_id", fv.backend_id},
                         {"state", flowStateName(fv.state)},
                         {"idle_ms", idle},
                         {"expired", d.entry == dataplane::EntryVerdict::Expired},
                         {"backend_usable", dataplane::usableForExisting(eb, vi)}};
      j["flow_table"] = "hit on worker " + std::to_string(hit_worker) + " (" + flowStateName(fv.state) + ", idle " +
                        std::to_string(idle / 1000) + "." + std::to_string(idle % 1000 / 100) + " s)";
    } else {
      j["flow_table"] = "miss on " + std::to_string(answers.size() - silent.size()) + " of " +
                        std::to_string(answers.size()) + " workers";
    }
    switch (d.entry) {
      case dataplane::EntryVerdict::Live:
        table_why = "flow-table hit on worker " + std::to_string(hit_worker) + ": an existing flow keeps its backend";
        break;
      case dataplane::EntryVerdict::Expired:
        j["flow_table"] = j["flow_table"].get<std::string>() + ", expired";
        table_why = "its flow-table entry has expired: the next packet starts a new flow";
        break;
      case dataplane::EntryVerdict::Unusable:
        j["flow_table"] = j["flow_table"].get<std::string>() + ", backend no longer usable";
        table_why = "its flow-table entry's backend left the pool or failed: the next packet is re-hashed (flow_rehash)";
        break;
      case dataplane::EntryVerdict::None:
        table_why = room ? "no flow-table entry: a new flow" : "no flow-table entry, and the flow table is full";
        break;
    }
    if (room && !full.empty() && d.entry == dataplane::EntryVerdict::None) {
      std::string w;
      for (const auto& x : full) w += (w.empty() ? "" : ",") + x;
      j["flow_table"] = j["flow_table"].get<std::string>() + "; worker " + w +
                        "'s table is full: a new flow RSS gives it is untracked";
    }
    if (!silent.empty()) {
      std::string w;
      for (const auto& x : silent) w += (w.empty() ? "" : ",") + x;
      j["flow_table"] = j["flow_table"].get<std::string>() + "; worker " + w + " did not answer within " +
                        std::to_string(kFlowQueryWaitMs) + " ms";
    }
  }

  const SnapBackend* chosen = s.backend(d.backend);
  j["backend"] = backendJson(chosen);
  if (chosen) j["backend_state"] = std::string(toString(chosen->state));
  if (d.outcome == dataplane::FlowOutcome::Hit) {
    j["reason"] = table_why + "; a new flow would get " +
                  (fresh_backend ? backendJson(fresh_backend).get<std::string>() + " (" + fresh_why + ")" : fresh_why);
  } else {
    j["reason"] = table_why + "; " + fresh_why;
  }
}

// Full NAT: the source pair (address:port) the flow leaves from toward its backend, from the
// worker whose index holds its session (null when no worker does: a new flow takes the next
// free pair of its worker), and whether the backend gets a PROXY v2 header first.
json fullNatJson(const Snapshot& s, const SnapVip& v, const std::vector<FlowAnswer>& answers) {
  json j{{"proxy_v2", v.proxy_v2}, {"source", nullptr}, {"worker", nullptr}};
  for (size_t i = 0; i < answers.size(); i++) {
    const FlowAnswer& a = answers[i];
    if (!a.answered || !a.snat_hit || a.snat_addr >= s.snat_addrs.size()) continue;
    j["source"] = endpoint(s.snat_addrs[a.snat_addr].addr, a.snat_port);
    j["worker"] = i;
    break;
  }
  return j;
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
  const std::vector<FlowAnswer> answers = f == Family::V4 ? view.askFlowTables(false, &k4, sizeof(k4))
                                                          : view.askFlowTables(true, &k6, sizeof(k6));
  explainDecision(*s, *v, vi, sig, src->first.bytes.data(), f, proto == uint8_t(Proto::Tcp), answers,
                  view.workerClockMs(), j);
  if (v->mode == FwdMode::FullNat) j["fullnat"] = fullNatJson(*s, *v, answers);
  return j;
}

}  // namespace l4lb::control::api
