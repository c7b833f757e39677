// explain over the in-memory view: which backend and why for a new flow (Maglev slot, round-robin
// candidates), for a flow-table hit (kept, expired, backend no longer usable), silent workers,
// l4lbctl's text, and the refusals.
#include <arpa/inet.h>

#include "ctl/render.h"
#include "dataplane/lookup.h"
#include "fake_view.h"

namespace l4lb::control::api::test {
namespace {

using nlohmann::json;
using l4lb::test::ipAddr;

// The data plane's own hash of tcp 198.18.0.50:40000 -> 198.18.0.10:80, and its Maglev slot.
struct Flow {
  dataplane::FlowKey4 key{};
  hash_sig_t sig = 0;
  uint32_t slot = 0;
};
Flow webFlow(const Snapshot& s) {
  Flow f;
  const IpAddr src = ipAddr("198.18.0.50"), dst = ipAddr("198.18.0.10");
  f.sig = dataplane::makeFlowKey(f.key, src.bytes.data(), dst.bytes.data(), htons(40000), htons(80), uint8_t(Proto::Tcp));
  f.slot = dataplane::statelessSlot(s.vips[0], f.sig, src.bytes.data(), Family::V4);
  return f;
}

std::string addrOf(const Snapshot& s, uint32_t id) { return s.backend(id)->addr.str() + ":0"; }

TEST(ApiExplain, NewFlowOnMaglevMissesOnEveryWorker) {
  FakeView v(kToml, 2);
  v.answers = {{true, false, 0}, {true, false, 0}};
  const Flow f = webFlow(*v.snap);
  const std::string fresh = addrOf(*v.snap, v.snap->vips[0].maglev[f.slot]);
  json r = call(v, "explain", {"tcp", "198.18.0.50:40000", "198.18.0.10:80"});
  EXPECT_EQ(r, (json{{"ok", true},
                     {"flow", "tcp 198.18.0.50:40000 -> 198.18.0.10:80"},
                     {"vip", "web"},
                     {"scheduler", "maglev"},
                     {"hash", f.sig},
                     {"slot", f.slot},
                     {"table_size", 7},
                     {"new_flow_backend", fresh},
                     {"flow_table", "miss on 2 of 2 workers"},
                     {"flow_entry", nullptr},
                     {"backend", fresh},
                     {"backend_state", "healthy"},
                     {"outcome", "new"},
                     {"entry_class", "confirmed"},  // explain's packet is an ACK: a mid-flow pickup
                     {"reason", "no flow-table entry: a new flow; Maglev slot " + std::to_string(f.slot) + " of 7"}}));
  // The workers were asked for the data plane's key.
  ASSERT_EQ(v.asked.size(), 1u);
  EXPECT_FALSE(v.asked[0].v6);
  EXPECT_EQ(v.asked[0].key, std::vector<uint8_t>(reinterpret_cast<const uint8_t*>(&f.key),
                                                 reinterpret_cast<const uint8_t*>(&f.key) + sizeof(f.key)));
  char hash[16];
  std::snprintf(hash, sizeof(hash), "0x%08x", f.sig);
  EXPECT_EQ(ctl::renderReply("explain", r, 0),
            "flow:       tcp 198.18.0.50:40000 -> 198.18.0.10:80\n"
            "vip:        web\n"
            "scheduler:  maglev\n"
            "hash:       " + std::string(hash) + "\n"
            "slot:       " + std::to_string(f.slot) + " of 7\n"
            "backend:    " + fresh + "\n"
            "why:        no flow-table entry: a new flow; Maglev slot " + std::to_string(f.slot) + " of 7\n"
            "flow table: miss on 2 of 2 workers\n");
}

TEST(ApiExplain, FlowTableHitKeepsItsBackend) {
  FakeView v(kToml, 2);
  const Flow f = webFlow(*v.snap);
  const uint32_t fresh_id = v.snap->vips[0].maglev[f.slot];
  const uint32_t kept_id = fresh_id == v.idOf(0, 0) ? v.idOf(0, 1) : v.idOf(0, 0);  // the other one
  dataplane::FlowValue fv{kept_id, dataplane::FlowState::TcpEstablished, v.clock_ms - 2500};
  v.answers = {{true, false, 0}, {true, true, fv.pack()}};
  json r = call(v, "explain", {"tcp", "198.18.0.50:40000", "198.18.0.10:80"});
  const std::string kept = addrOf(*v.snap, kept_id), fresh = addrOf(*v.snap, fresh_id);
  EXPECT_EQ(r["flow_entry"], (json{{"worker", 1}, {"backend", kept}, {"backend_id", kept_id}, {"state", "established"},
                                   {"idle_ms", 2500}, {"expired", false}, {"backend_usable", true}}));
  EXPECT_EQ(r["flow_table"], "hit on worker 1 (established, idle 2.5 s)");
  EXPECT_EQ(r["outcome"], "hit");
  EXPECT_EQ(r["backend"], kept);
  EXPECT_EQ(r["new_flow_backend"], fresh);
  EXPECT_EQ(r["reason"], "flow-table hit on worker 1: an existing flow keeps its backend; a new flow would get " + fresh +
                             " (Maglev slot " + std::to_string(f.slot) + " of 7)");
  const std::string text = ctl::renderReply("explain", r, 0);
  EXPECT_NE(text.find("backend:    " + kept + "\nnew flow:   " + fresh + "\n"), std::string::npos) << text;
}

TEST(ApiExplain, ExpiredEntryOrUnusableBackendIsANewFlow) {
  FakeView v(kToml, 1);
  const Flow f = webFlow(*v.snap);
  const uint32_t fresh_id = v.snap->vips[0].maglev[f.slot];
  const std::string fresh = addrOf(*v.snap, fresh_id);
  // SYN state times out after 10 s.
  dataplane::FlowValue fv{fresh_id, dataplane::FlowState::TcpSyn, v.clock_ms - 10001};
  v.answers = {{true, true, fv.pack()}};
  json r = call(v, "explain", {"tcp", "198.18.0.50:40000", "198.18.0.10:80"});
  EXPECT_EQ(r["flow_table"], "hit on worker 0 (syn, idle 10.0 s), expired");
  EXPECT_EQ(r["flow_entry"]["expired"], true);
  EXPECT_EQ(r["outcome"], "expired");
  EXPECT_EQ(r["backend"], fresh);
  EXPECT_EQ(r["reason"], "its flow-table entry has expired: the next packet starts a new flow; Maglev slot " +
                             std::to_string(f.slot) + " of 7");
  // The entry's backend failed its checks: re-hashed.
  const uint32_t other = fresh_id == v.idOf(0, 0) ? v.idOf(0, 1) : v.idOf(0, 0);
  const size_t other_index = other == v.idOf(0, 0) ? 0 : 1;
  v.dyn.backends[backendIdentity(v.cfg.vips[0], v.cfg.vips[0].backends[other_index])].down = true;
  ASSERT_TRUE(v.rebuild("test"));
  fv = {other, dataplane::FlowState::TcpEstablished, v.clock_ms - 100};
  v.answers = {{true, true, fv.pack()}};
  r = call(v, "explain", {"tcp", "198.18.0.50:40000", "198.18.0.10:80"});
  EXPECT_EQ(r["flow_table"], "hit on worker 0 (established, idle 0.1 s), backend no longer usable");
  EXPECT_EQ(r["flow_entry"]["backend_usable"], false);
  EXPECT_EQ(r["outcome"], "rehash");
  // With one backend down the whole table points at the other one.
  EXPECT_EQ(r["backend"], fresh);
  EXPECT_EQ(r["reason"],
            "its flow-table entry's backend left the pool or failed: the next packet is re-hashed (flow_rehash); "
            "Maglev slot " + std::to_string(f.slot) + " of 7");
}

TEST(ApiExplain, FullTableIsUntrackedOnTheMaglevSlot) {
  FakeView v(kToml, 2);
  const Flow f = webFlow(*v.snap);
  const std::string fresh = addrOf(*v.snap, v.snap->vips[0].maglev[f.slot]);
  // Worker 1's table is full: which worker RSS gives the flow is unknown here, so a new flow,
  // with worker 1 named.
  v.answers = {{true, false, 0, true}, {true, false, 0, false}};
  json r = call(v, "explain", {"tcp", "198.18.0.50:40000", "198.18.0.10:80"});
  EXPECT_EQ(r["outcome"], "new");
  EXPECT_EQ(r["flow_table"], "miss on 2 of 2 workers; worker 1's table is full: a new flow RSS gives it is untracked");
  // Every table full: untracked.
  v.answers = {{true, false, 0, false, false}, {true, false, 0, false, false}};
  r = call(v, "explain", {"tcp", "198.18.0.50:40000", "198.18.0.10:80"});
  EXPECT_EQ(r["outcome"], "untracked");
  EXPECT_EQ(r["backend"], fresh);
  EXPECT_EQ(r["reason"], "no flow-table entry, and the flow table is full; Maglev slot " + std::to_string(f.slot) +
                             " of 7, untracked: flow table full (flow_table_full)");
  // A live entry needs no room: still a hit.
  dataplane::FlowValue fv{v.idOf(0, 0), dataplane::FlowState::TcpEstablished, v.clock_ms - 10};
  v.answers = {{true, true, fv.pack(), false}};
  r = call(v, "explain", {"tcp", "198.18.0.50:40000", "198.18.0.10:80"});
  EXPECT_EQ(r["outcome"], "hit");
  EXPECT_EQ(r["backend"], addrOf(*v.snap, v.idOf(0, 0)));
  // Round robin with a full table falls back to its Maglev slot, which explain can name.
  v.answers = {{true, false, 0, false, false}};
  r = call(v, "explain", {"udp", "198.18.0.50:5000", "198.18.0.20:53"});
  EXPECT_EQ(r["outcome"], "untracked");
  EXPECT_EQ(r["backend"], "198.18.0.21:0");
  EXPECT_EQ(r["new_flow_backend"], "198.18.0.21:0");
}

TEST(ApiExplain, SilentWorkerAndNoWorkers) {
  FakeView v(kToml, 3);
  v.answers = {{true, false, 0}, {false, false, 0}, {false, false, 0}};
  json r = call(v, "explain", {"tcp", "198.18.0.50:40000", "198.18.0.10:80"});
  EXPECT_EQ(r["flow_table"], "miss on 1 of 3 workers; worker 1,2 did not answer within 100 ms");
  v.answers.clear();
  r = call(v, "explain", {"tcp", "198.18.0.50:40000", "198.18.0.10:80"});
  EXPECT_EQ(r["flow_table"], "not inspected");
  EXPECT_EQ(r["reason"].get<std::string>().rfind("flow tables not inspected (no workers); Maglev slot ", 0), 0u) << r;
}

TEST(ApiExplain, RoundRobinListsCandidates) {
  FakeView v;
  v.answers = {{true, false, 0}};
  json r = call(v, "explain", {"udp", "198.18.0.50:5000", "198.18.0.20:53"});
  EXPECT_EQ(r["vip"], "dns");
  EXPECT_EQ(r["scheduler"], "round_robin");
  EXPECT_EQ(r["candidates"], json::array({"198.18.0.21:0"}));
  EXPECT_EQ(r["new_flow_backend"], nullptr);
  EXPECT_EQ(r["backend"], nullptr);
  EXPECT_FALSE(r.contains("slot"));
  EXPECT_FALSE(r.contains("backend_state"));
  EXPECT_EQ(r["reason"], "no flow-table entry: a new flow; round robin: a new flow takes the next backend of the worker's cursor");
  const std::string text = ctl::renderReply("explain", r, 0);
  EXPECT_NE(text.find("backend:    -\ncandidates: [\"198.18.0.21:0\"]\n"), std::string::npos) << text;
}

// Full NAT: the source pair of the worker that holds the session, and the PROXY v2 header.
TEST(ApiExplain, FullNatShowsTheSourcePairAndProxyV2) {
  FakeView v(kFullNatToml, 3);
  FlowAnswer held{true, false, 0};
  held.snat_hit = true;
  held.snat_addr = 1;  // 198.18.0.3
  held.snat_port = 2004;
  v.answers = {{true, false, 0}, held, {false}};
  json r = call(v, "explain", {"tcp", "198.18.0.50:40000", "198.18.0.30:443"});
  ASSERT_EQ(r["ok"], true) << r;
  EXPECT_EQ(r["vip"], "app");
  EXPECT_EQ(r["backend"], "198.18.0.31:8443");
  EXPECT_EQ(r["fullnat"], (json{{"proxy_v2", true}, {"source", "198.18.0.3:2004"}, {"worker", 1}}));
  const std::string text = ctl::renderReply("explain", r, 0);
  EXPECT_NE(text.find("\nsnat:       198.18.0.3:2004 (worker 1)\nproxy v2:   on\n"), std::string::npos) << text;
  // No worker holds a session: no pair yet.
  v.answers = {{true, false, 0}, {true, false, 0}, {true, false, 0}};
  r = call(v, "explain", {"tcp", "198.18.0.50:40000", "198.18.0.30:443"});
  EXPECT_EQ(r["fullnat"], (json{{"proxy_v2", true}, {"source", nullptr}, {"worker", nullptr}}));
  EXPECT_NE(ctl::renderReply("explain", r, 0)
                .find("\nsnat:       none yet (a new flow takes its worker's next free pair)\nproxy v2:   on\n"),
            std::string::npos);
  // Another mode: no fullnat section at all.
  r = call(v, "explain", {"tcp", "198.18.0.50:40000", "198.18.0.10:80"});
  EXPECT_FALSE(r.contains("fullnat"));
  EXPECT_EQ(ctl::renderReply("explain", r, 0).find("snat:"), std::string::npos);
}

TEST(ApiExplain, NoVip) {
  FakeView v;
  EXPECT_EQ(call(v, "explain", {"tcp", "198.18.0.50:1", "198.18.0.10:81"}),
            (json{{"ok", true},
                  {"flow", "tcp 198.18.0.50:1 -> 198.18.0.10:81"},
                  {"flow_table", "not inspected"},
                  {"flow_entry", nullptr},
                  {"vip", nullptr},
                  {"backend", nullptr},
                  {"reason", "destination is no VIP: counted as no_vip (or handed to the kernel on a port with an "
                             "exception path)"}}));
  EXPECT_TRUE(v.asked.empty());
}

TEST(ApiExplain, BadArgumentsAreRefused) {
  FakeView v;
  struct Case {
    std::vector<std::string> args;
    const char* error;
  } cases[] = {
      {{"icmp", "1.2.3.4:1", "198.18.0.10:80"}, "bad protocol 'icmp': tcp or udp"},
      {{"tcp", "1.2.3.4", "198.18.0.10:80"}, "bad source '1.2.3.4': expected ADDR:PORT or [ADDR6]:PORT"},
      {{"tcp", "1.2.3.4:1", "198.18.0.10"}, "bad destination '198.18.0.10': expected ADDR:PORT or [ADDR6]:PORT"},
      {{"tcp", "1.2.3.4:1", "[2001:db8::1]:80"}, "source and destination are different address families"},
  };
  for (const Case& c : cases) EXPECT_EQ(call(v, "explain", c.args), (json{{"ok", false}, {"error", c.error}})) << c.error;
  v.snap.reset();
  EXPECT_EQ(call(v, "explain", {"tcp", "1.2.3.4:1", "198.18.0.10:80"})["error"], "no snapshot published yet");
}

}  // namespace
}  // namespace l4lb::control::api::test
