// The worker's and the control thread's sides of the flow-query mailbox (flow_query.h).
#include "dataplane/flow_query.h"

#include <cstring>

#include "dataplane/worker.h"

namespace l4lb::dataplane {

void answerFlowQuery(WorkerState& w, const Snapshot* s, uint32_t now_ms) {
  FlowQuery& q = w.query;
  const uint32_t req = q.request.load(std::memory_order_acquire);
  const FlowTable& ft = q.v6 ? *w.flows6 : *w.flows4;
  uint64_t v = 0;
  const hash_sig_t idx = FlowTable::indexHash(q.key, q.v6 ? sizeof(FlowKey6) : sizeof(FlowKey4));
  q.hit = ft.lookup(q.key, idx, v);
  q.value = v;
  if (s != nullptr) {
    const AdmitParams ap{s->admission.enabled, s->admission.embryonicLimit(ft.capacity()), now_ms, &s->timeouts};
    auto fits = [](StoreResult r) { return r == StoreResult::Stored || r == StoreResult::Displaced; };
    q.room = fits(ft.canStore(q.key, idx, false, ap));
    q.room_embryonic = fits(ft.canStore(q.key, idx, true, ap));
  } else {
    q.room = ft.size() < ft.capacity();
    q.room_embryonic = q.room && ft.embryonic() < FlowAdmission{}.embryonicLimit(ft.capacity());
  }
  // Full NAT: the client's side of a session is in the worker's own index (fullnat_state.h),
  // keyed as the flow table is; its value names the source pair.
  q.snat_hit = false;
  if (w.fullnat != nullptr) {
    uint64_t raw = 0;
    if (w.fullnat->index(q.v6).lookup(q.key, idx, raw)) {
      const SnatPair p = w.fullnat->unpackPair(FlowValue::unpack(raw).backend_id);
      q.snat_hit = true;
      q.snat_addr = p.addr;
      q.snat_port = p.port;
    }
  }
  q.answer.store(req, std::memory_order_release);
}

bool postFlowQuery(FlowQuery& q, bool v6, const void* key, size_t key_len) {
  const uint32_t req = q.request.load(std::memory_order_relaxed);  // only this thread writes it
  if (q.answer.load(std::memory_order_acquire) != req || key_len > sizeof(q.key)) return false;
  q.v6 = v6;
  std::memset(q.key, 0, sizeof(q.key));
  std::memcpy(q.key, key, key_len);
  q.request.store(req + 1, std::memory_order_release);
  return true;
}

bool takeFlowAnswer(const FlowQuery& q, FlowQueryAnswer& out) {
  if (q.answer.load(std::memory_order_acquire) != q.request.load(std::memory_order_relaxed)) return false;
  out = {q.hit, q.value, q.room, q.room_embryonic, q.snat_hit, q.snat_addr, q.snat_port};
  return true;
}

}  // namespace l4lb::dataplane
