// The flow-query mailbox: one flow-table question from the control thread (l4lbctl explain)
// to one worker, answered between bursts. Contract: one question at a time per worker; the
// worker's flow table is only ever read by the worker itself (it is the single writer and the
// table has no reader-writer concurrency), so the control thread never touches the table.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include <rte_common.h>

#include "dataplane/flow.h"
#include "l4lb/snapshot.h"

namespace l4lb::dataplane {

struct WorkerState;

// The question and its answer. Protocol: the control thread writes v6/key only while
// answer == request, then increments request (release); the worker, seeing request != answer
// (acquire), looks the key up, writes hit/value and stores answer = request (release). One that
// is never answered (a stopped worker) blocks further questions to that worker instead of racing
// with it.
struct alignas(RTE_CACHE_LINE_SIZE) FlowQuery {
  std::atomic<uint32_t> request{0};
  std::atomic<uint32_t> answer{0};
  bool v6 = false;
  alignas(8) uint8_t key[sizeof(FlowKey6)] = {};
  bool hit = false;
  uint64_t value = 0;  // FlowValue::pack() of the entry when hit
  bool room = false;   // the table could take a new confirmed key (a new flow would be tracked)
  bool room_embryonic = false;  // ... and a new embryonic key (SYN, first UDP packet)
  // Full NAT (WorkerState::fullnat): the key's session in the worker's index, and its pair.
  bool snat_hit = false;
  uint32_t snat_addr = 0;  // Snapshot::snat_addrs index
  uint16_t snat_port = 0;  // host order
};

// A worker's answer to a FlowQuery: the facts decideFlow takes from the flow table.
struct FlowQueryAnswer {
  bool hit = false;
  uint64_t value = 0;
  bool room = false;
  bool room_embryonic = false;
  bool snat_hit = false;
  uint32_t snat_addr = 0;
  uint16_t snat_port = 0;
};

// Serves a pending FlowQuery (workerMain calls it when request != answer) by the admission
// rules of `s` at `now_ms` (FlowTable::canStore); without a snapshot, by the default rules with
// no displacement considered.
void answerFlowQuery(WorkerState& w, const Snapshot* s = nullptr, uint32_t now_ms = 0);

// The control thread's side of the protocol. postFlowQuery leaves a question (false, leaving the
// slot alone, while an earlier one is unanswered); takeFlowAnswer is true once the worker has
// answered the last question, with its answer in `out`.
bool postFlowQuery(FlowQuery& q, bool v6, const void* key, size_t key_len);
bool takeFlowAnswer(const FlowQuery& q, FlowQueryAnswer& out);

}  // namespace l4lb::dataplane
