// A flow as the balancers of one cluster share it (flow sync, docs/SCALE-OUT.md "Flow sync").
// Between the threads of one balancer it travels over rte_ring element rings (fixed size, trivially copyable, no
// allocation):
//   worker --WorkerState sync ring "out"--> sync sender   (a flow it created, or re-announces)
//   sync receiver --"in"--> the worker that owns the flow (inserted so the worker finds it
//                                                          before Maglev)
// Between balancers, the sender encodes it into authenticated UDP datagrams
// (src/control/sync/sync_codec.h); nothing here is a wire format.
//
// The backend travels as its identity (address, port), never as an id: ids are local to one
// balancer's snapshots, identities are the same on every balancer with the same config.
#pragma once

#include <cstdint>
#include <type_traits>

namespace l4lb {

struct SyncFlow {
  uint8_t v6 = 0;            // 1: IPv6 addresses (16 bytes); 0: IPv4 (first 4 bytes, rest 0)
  uint8_t proto = 0;         // IPPROTO_TCP or IPPROTO_UDP
  uint8_t state = 0;         // dataplane::FlowState, as the sender's entry holds it
  uint8_t backend_v6 = 0;    // the backend's family (differs from v6 only for tunnel modes)
  uint16_t sport_be = 0;     // client port, network order
  uint16_t dport_be = 0;     // VIP port, network order
  uint16_t backend_port_be = 0;  // the backend's configured port, network order (0: any)
  uint16_t reserved = 0;
  uint8_t src[16] = {};      // client address, network order
  uint8_t dst[16] = {};      // VIP address, network order
  uint8_t backend[16] = {};  // backend address, network order
  uint32_t idle_ms = 0;      // ms since the sender last saw a packet of the flow (0: just now)
  uint32_t reserved2[2] = {};  // explicit: no hidden padding before generation (records compare bytewise)
  uint64_t generation = 0;   // the sender's snapshot generation when it chose the backend
};
static_assert(std::is_trivially_copyable_v<SyncFlow>);
static_assert(std::has_unique_object_representations_v<SyncFlow>, "no padding");
static_assert(sizeof(SyncFlow) == 80 && sizeof(SyncFlow) % 4 == 0, "rte_ring element size: a multiple of 4");

}  // namespace l4lb
