#include "control/ports.h"

#include "control/memory_estimate.h"
#include "control/neighbours.h"
#include "control/xdp_map.h"

#include <algorithm>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>

namespace l4lb::control {

namespace {

std::string dpdkErr(const std::string& what, int ret) {
  return what + ": " + rte_strerror(ret < 0 ? -ret : ret);
}

bool isVdev(const std::string& dev) { return dev.rfind("net_", 0) == 0; }

std::string devName(const std::string& dev) { return dev.substr(0, dev.find(',')); }

// The tap vdev that is port i's kernel side (exception_path = tap).
std::string tapName(size_t i) { return "net_tap_l4lb" + std::to_string(i); }

// Configures queues and MTU and starts one port; on failure the port is left stopped.
bool startPort(uint16_t pid, uint16_t rxq, uint16_t txq, uint16_t mtu, rte_mempool* pool, const std::string& what,
               std::string& err) {
  rte_eth_dev_info info;
  int ret = rte_eth_dev_info_get(pid, &info);
  if (ret != 0) {
    err = dpdkErr(what + ": dev_info_get", ret);
    return false;
  }
  if (rxq > info.max_rx_queues || txq > info.max_tx_queues) {
    err = what + ": needs " + std::to_string(rxq) + " RX / " + std::to_string(txq) + " TX queues, device has " +
          std::to_string(info.max_rx_queues) + " / " + std::to_string(info.max_tx_queues);
    return false;
  }
  rte_eth_conf conf{};
  if (rxq > 1 && info.flow_type_rss_offloads != 0) {
    conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
    conf.rx_adv_conf.rss_conf.rss_hf = (RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP) & info.flow_type_rss_offloads;
  }
  // Outer fragments of tunnelled packets are two-segment frames (dataplane/outer_frag.h).
  if (info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_MULTI_SEGS) conf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_MULTI_SEGS;
  if ((ret = rte_eth_dev_configure(pid, rxq, txq, &conf)) != 0) {
    err = dpdkErr(what + ": configure", ret);
    return false;
  }
  if ((ret = rte_eth_dev_set_mtu(pid, mtu)) != 0 && ret != -ENOTSUP) {
    err = dpdkErr(what + ": set MTU " + std::to_string(mtu), ret);
    return false;
  }
  uint16_t nrx = kRxDesc, ntx = kTxDesc;
  rte_eth_dev_adjust_nb_rx_tx_desc(pid, &nrx, &ntx);
  for (uint16_t q = 0; q < rxq; q++) {
    if ((ret = rte_eth_rx_queue_setup(pid, q, nrx, rte_eth_dev_socket_id(pid), nullptr, pool)) != 0) {
      err = dpdkErr(what + ": RX queue " + std::to_string(q), ret);
      return false;
    }
  }
  for (uint16_t q = 0; q < txq; q++) {
    if ((ret = rte_eth_tx_queue_setup(pid, q, ntx, rte_eth_dev_socket_id(pid), nullptr)) != 0) {
      err = dpdkErr(what + ": TX queue " + std::to_string(q), ret);
      return false;
    }
  }
  if ((ret = rte_eth_dev_start(pid)) != 0) {
    err = dpdkErr(what + ": start", ret);
    return false;
  }
  return true;
}
}  // namespace

std::vector<std::string> buildEalArgs(const Config& cfg) {
  std::vector<std::string> a;
  std::string cores = std::to_string(cfg.eal.main_core);
  for (uint32_t c : cfg.eal.worker_cores) cores += "," + std::to_string(c);
  if (cfg.eal.lcores.empty())
    a.insert(a.end(), {"-l", cores, "--main-lcore", std::to_string(cfg.eal.main_core)});
  else  // the map names the lcores (main_core and worker_cores must be among them: EAL checks)
    a.insert(a.end(), {"--lcores", cfg.eal.lcores, "--main-lcore", std::to_string(cfg.eal.main_core)});
  if (!cfg.eal.hugepages) a.push_back("--no-huge");
  if (cfg.eal.memory_mb) a.insert(a.end(), {"-m", std::to_string(cfg.eal.memory_mb)});
  if (cfg.eal.in_memory) a.push_back("--in-memory");
  a.insert(a.end(), {"--file-prefix", cfg.eal.file_prefix});
  bool any_pci = false;
  for (size_t i = 0; i < cfg.ports.size(); i++) {
    const PortConfig& p = cfg.ports[i];
    if (p.exception_path == ExceptionPath::Tap)
      a.insert(a.end(), {"--vdev", tapName(i) + ",iface=" + p.kernel_iface});
    if (p.exception_path == ExceptionPath::Xdp && p.device.find("xdp_prog=") == std::string::npos) {
      a.insert(a.end(), {"--vdev", p.device + ",xdp_prog=" + (p.xdp_program.empty() ? defaultXdpProgram() : p.xdp_program)});
    } else if (isVdev(p.device)) {
      a.insert(a.end(), {"--vdev", p.device});
    } else {
      a.insert(a.end(), {"-a", p.device});
      any_pci = true;
    }
  }
  if (!any_pci) a.push_back("--no-pci");  // do not probe (and grab) NICs we were not given
  for (const auto& e : cfg.eal.extra_args) a.push_back(e);
  return a;
}

bool initEal(const Config& cfg, std::string& err) {
  std::vector<std::string> args = buildEalArgs(cfg);
  args.insert(args.begin(), "l4lb");
  std::vector<char*> argv;
  for (auto& s : args) argv.push_back(s.data());
  argv.push_back(nullptr);
  if (rte_eal_init(int(args.size()), argv.data()) < 0) {
    std::string line;
    for (size_t i = 1; i < args.size(); i++) line += (i > 1 ? " " : "") + args[i];
    err = "EAL init (" + line + "): " + rte_strerror(rte_errno);
    if (cfg.eal.hugepages && (rte_errno == EACCES || rte_errno == ENOMEM))
      err += " (no usable hugepages? reserve them with scripts/setup-hugepages.sh, installed as "
             "l4lb-setup-hugepages, or set eal.hugepages = false for a small lab)";
    return false;
  }
  return true;
}

bool setupPorts(const Config& cfg, unsigned workers, Ports& out, std::string& err) {
  // Sized in memory_estimate.cc, which the config check adds up.
  const PoolSizes sizes = poolSizes(cfg, workers);
  out.pool = rte_pktmbuf_pool_create("l4lb_mbufs", sizes.mbufs, kPoolCache, 0, sizes.data_room, int(rte_socket_id()));
  if (out.pool == nullptr) {
    err = "mbuf pool (" + std::to_string(sizes.mbufs) + " mbufs): " + rte_strerror(rte_errno) +
          " (too little hugepage memory? see scripts/setup-hugepages.sh)";
    return false;
  }
  out.frag_direct = rte_pktmbuf_pool_create("l4lb_frag_direct", sizes.frag_mbufs, kPoolCache, 0,
                                            uint16_t(RTE_PKTMBUF_HEADROOM + 64), int(rte_socket_id()));
  out.frag_indirect = rte_pktmbuf_pool_create("l4lb_frag_indirect", sizes.frag_mbufs, kPoolCache, 0, 0,
                                              int(rte_socket_id()));
  if (out.frag_direct == nullptr || out.frag_indirect == nullptr) {
    err = "outer fragment mbuf pools (2 x " + std::to_string(sizes.frag_mbufs) + " mbufs): " + rte_strerror(rte_errno);
    freePools(out);
    return false;
  }
  for (size_t i = 0; i < cfg.ports.size(); i++) {
    const PortConfig& pc = cfg.ports[i];
    const std::string what = "ports[" + std::to_string(i) + "] (" + pc.name + ", " + pc.device + ")";
    uint16_t pid;
    if (rte_eth_dev_get_port_by_name(devName(pc.device).c_str(), &pid) != 0) {
      err = what + ": device not found (is it bound to a DPDK driver, or is the vdev name right?)";
      stopPorts(out);
      return false;
    }
    uint16_t rxq = pc.queues ? pc.queues : uint16_t(workers);
    if (!startPort(pid, rxq, uint16_t(workers), pc.mtu, out.pool, what, err)) {
      rte_eth_dev_close(pid);
      stopPorts(out);
      return false;
    }
    PortRuntime r;
    r.port_id = pid;
    rte_ether_addr mac;
    if (rte_eth_macaddr_get(pid, &mac) == 0) std::copy(mac.addr_bytes, mac.addr_bytes + 6, r.mac.bytes.begin());
    if (pc.mac) {
      rte_ether_addr m;
      std::copy(pc.mac->bytes.begin(), pc.mac->bytes.end(), m.addr_bytes);
      rte_eth_dev_default_mac_addr_set(pid, &m);  // best effort: the snapshot uses pc.mac anyway
      r.mac = *pc.mac;
    }
    out.runtime.push_back(r);
    out.rx_queues.push_back(rxq);
    if (pc.exception_path == ExceptionPath::Tap && !startTap(pc, i, r.mac, workers, out, err)) {
      stopPorts(out);
      return false;
    }
  }
  return true;
}

bool startTap(const PortConfig& pc, size_t i, const MacAddr& mac, unsigned workers, Ports& out, std::string& err) {
  const std::string what = "ports[" + std::to_string(i) + "] (" + pc.name + ") kernel interface " + pc.kernel_iface;
  uint16_t tid;
  if (rte_eth_dev_get_port_by_name(tapName(i).c_str(), &tid) != 0) {
    err = what + ": tap device " + tapName(i) + " not found";
    return false;
  }
  // One RX queue (the kernel's few packets), one TX queue per worker; the same MAC as the port
  // so the kernel's ARP/ND answers name the address the wire knows.
  if (!startPort(tid, 1, uint16_t(workers), pc.mtu, out.pool, what, err)) {
    rte_eth_dev_close(tid);
    return false;
  }
  out.runtime.back().tap_port_id = tid;
  rte_ether_addr m;
  std::copy(mac.bytes.begin(), mac.bytes.end(), m.addr_bytes);
  int ret = rte_eth_dev_default_mac_addr_set(tid, &m);
  if (ret != 0) {
    err = dpdkErr(what + ": set MAC " + mac.str(), ret);
    return false;
  }
  std::vector<Prefix> addrs;
  if (pc.ipv4) addrs.push_back(*pc.ipv4);
  if (pc.ipv6) addrs.push_back(*pc.ipv6);
  return configureKernelInterface(pc.kernel_iface, addrs, pc.mtu, err);
}

void freePools(Ports& p) {
  if (p.frag_direct) rte_mempool_free(p.frag_direct);
  if (p.frag_indirect) rte_mempool_free(p.frag_indirect);
  if (p.pool) rte_mempool_free(p.pool);
  p.frag_direct = p.frag_indirect = p.pool = nullptr;
}

void stopPorts(Ports& p) {
  for (const auto& r : p.runtime) {
    rte_eth_dev_stop(r.port_id);
    rte_eth_dev_close(r.port_id);
    if (r.tap_port_id >= 0) {
      rte_eth_dev_stop(uint16_t(r.tap_port_id));
      rte_eth_dev_close(uint16_t(r.tap_port_id));  // removes the kernel interface
    }
  }
  p.runtime.clear();
  p.rx_queues.clear();
}

}  // namespace l4lb::control
