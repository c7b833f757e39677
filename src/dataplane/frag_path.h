// The fragment path (frag_path.cc): IP fragments of a VIP's TCP/UDP flows. A first fragment is
// scheduled as its 5-tuple and its decision recorded in the worker's FragTable; later fragments
// follow the decision, or are held until it exists. Fragments of one datagram are handled by one
// owner worker (fragOwner), handed over on the owner's ring. What it may drop, and why, is
// counted under the frag_* drop reasons.
#pragma once

#include <cstdint>

#include <rte_mbuf.h>

#include "dataplane/parser.h"
#include "dataplane/worker.h"
#include "l4lb/snapshot.h"

namespace l4lb::dataplane {

// A fragment (parsed: pi.frag is First or Later) received on Snapshot::ports[ingress], or taken
// from this worker's hand-off ring (`from_ring`). Cold: processBurst calls it after the burst's
// other packets.
[[gnu::cold, gnu::noinline]] void handleFragment(WorkerState& w, const Snapshot& s, rte_mbuf* m, const PacketInfo& pi,
                                                 uint16_t ingress, uint32_t now_ms, TxBatch& tx, bool from_ring);

}  // namespace l4lb::dataplane
