// EAL start-up and port bring-up (DPDK ethdev): the only place that turns config into EAL
// arguments and device queues. DPDK errors become "what: why" strings here, at the call site.
#pragma once

#include <string>
#include <vector>

#include <rte_mempool.h>

#include "control/config.h"
#include "control/snapshot_builder.h"

namespace l4lb::control {

// EAL argv for `cfg` (without argv[0]): cores, memory, file prefix, one --vdev per virtual
// device ("net_*" devargs) or -a per PCI device, then extra_args.
std::vector<std::string> buildEalArgs(const Config& cfg);

// rte_eal_init with buildEalArgs; false with `err` on failure.
bool initEal(const Config& cfg, std::string& err);

struct Ports {
  rte_mempool* pool = nullptr;
  // Outer-header fragments of tunnelled packets (dataplane/outer_frag.h): headers, references.
  rte_mempool* frag_direct = nullptr;
  rte_mempool* frag_indirect = nullptr;
  std::vector<PortRuntime> runtime;      // per configured port
  std::vector<uint16_t> rx_queues;       // per configured port
};

// Finds, configures (RX queues as configured, one TX queue per worker, RSS when the device has
// it), and starts every port. On failure, nothing is left started.
bool setupPorts(const Config& cfg, unsigned workers, Ports& out, std::string& err);

void stopPorts(Ports& p);

// Frees the mbuf pools (after stopPorts: the drivers hold mbufs until then).
void freePools(Ports& p);

// exception_path = tap: starts port i's tap (created by the EAL from buildEalArgs) with the
// port's MAC, MTU and addresses on its kernel interface; sets out.runtime.back().tap_port_id.
bool startTap(const PortConfig& pc, size_t i, const MacAddr& mac, unsigned workers, Ports& out, std::string& err);

}  // namespace l4lb::control
