// A killed l4lb (SIGKILL, crash) leaves its XDP program attached to its AF_XDP ports: only a
// clean stop detaches it, and the net_af_xdp PMD refuses to attach over any program ("XDP
// program already attached"), so a restart after a crash would fail. Before the PMD attaches,
// reclaimStaleXdp() removes such a leftover, and only when it is certainly ours and abandoned.
// Thread ownership: the main thread, before EAL init.
#pragma once

#include <string>

namespace l4lb::control {

// Looks at every XDP program attached to `ifname` (generic, native and offloaded modes):
// - l4lb's (program name L4LB_XDP_PROG_NAME with an l4lb_addrs map) and held open by no process:
//   detached (only if still the same program: XDP_FLAGS_REPLACE), with a warning naming the
//   interface and the program id;
// - l4lb's but held open by a live process (another l4lb on this port): left alone, false;
// - any other program: left alone, false with `err` naming it ("interface X has a foreign XDP
//   program attached: id N, name M; l4lb does not remove other programs: ...").
// True when the interface has no XDP program left. An interface that does not exist is left to
// the PMD to report (true).
bool reclaimStaleXdp(const std::string& ifname, std::string& err);

}  // namespace l4lb::control
