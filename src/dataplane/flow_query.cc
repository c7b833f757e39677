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
  out = {q.hit, q.value, q.room, q.room_embryonic};
  return true;
}

}  // namespace l4lb::dataplane
