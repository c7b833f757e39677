#include "ring_ports.h"

#include <rte_eth_ring.h>
#include <rte_ethdev.h>

#include "bench_common.h"

namespace l4lb::perf {

rte_ring* makeRing(const std::string& name, uint32_t size) {
  rte_ring* r = rte_ring_create(name.c_str(), size, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ | RING_F_EXACT_SZ);
  if (r == nullptr) die("ring " + name + " (" + std::to_string(size) + " slots)");
  return r;
}

RingPort makeRingPort(const std::string& name, std::vector<rte_ring*> rx, std::vector<rte_ring*> tx,
                      rte_mempool* pool) {
  RingPort p;
  p.rx = std::move(rx);
  p.tx = std::move(tx);
  const int id = rte_eth_from_rings(name.c_str(), p.rx.data(), unsigned(p.rx.size()), p.tx.data(),
                                    unsigned(p.tx.size()), SOCKET_ID_ANY);
  if (id < 0) die("rte_eth_from_rings " + name);
  p.port_id = uint16_t(id);
  rte_eth_conf conf{};
  if (rte_eth_dev_configure(p.port_id, uint16_t(p.rx.size()), uint16_t(p.tx.size()), &conf) != 0)
    die("configure " + name);
  for (uint16_t q = 0; q < p.rx.size(); q++)
    if (rte_eth_rx_queue_setup(p.port_id, q, 1024, SOCKET_ID_ANY, nullptr, pool) != 0) die("rx queue " + name);
  for (uint16_t q = 0; q < p.tx.size(); q++)
    if (rte_eth_tx_queue_setup(p.port_id, q, 1024, SOCKET_ID_ANY, nullptr) != 0) die("tx queue " + name);
  if (rte_eth_dev_start(p.port_id) != 0) die("start " + name);
  return p;
}

void closeRingPort(const RingPort& p) {
  rte_eth_dev_stop(p.port_id);
  rte_eth_dev_close(p.port_id);
}

}  // namespace l4lb::perf
