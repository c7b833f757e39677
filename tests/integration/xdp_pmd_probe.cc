// Test tool for tests/integration/test_xdp.py: DPDK's net_af_xdp PMD with l4lb's XDP program
// (devarg xdp_prog=) on a veth, XdpAddrMap on the same interface, and an RX loop that classifies
// what reaches DPDK. Not a product binary.
//
//   xdp_pmd_probe --iface IF --obj OBJ --prefix PFX [--addr ADDR=vip|own|nat]...
//
// Prints one JSON line per event on stdout: {"event":"ready",...} once the port runs and the
// map is synced; then, for each "stats" line on stdin, {"event":"stats",...} with what DPDK
// received so far (keyed "ip4:DST", "ip6:DST", "arp:TARGET", "ns:TARGET", "other") and the
// XDP program's counters; "quit" (or EOF, SIGINT, SIGTERM) stops and closes the port and prints
// {"event":"closed",...}. Exit status 0, or 1 with {"event":"error","error":...}.
#include <poll.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "control/xdp_map.h"

namespace {

using l4lb::IpAddr;
using l4lb::control::XdpAddr;
using l4lb::control::XdpAddrMap;

volatile std::sig_atomic_t g_stop = 0;

std::string jsonStr(const std::string& s) {
  std::string o = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\';
    if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", c);
      o += buf;
      continue;
    }
    o += c;
  }
  return o + "\"";
}

template <typename M>
std::string jsonMap(const M& m) {
  std::string o = "{";
  for (const auto& [k, v] : m) {
    if (o.size() > 1) o += ",";
    o += jsonStr(k) + ":" + std::to_string(v);
  }
  return o + "}";
}

int fail(const std::string& what) {
  std::printf("{\"event\":\"error\",\"error\":%s}\n", jsonStr(what).c_str());
  std::fflush(stdout);
  return 1;
}

uint16_t be16(const uint8_t* p) { return uint16_t(p[0] << 8 | p[1]); }

// What a frame is, by the same fields the XDP program reads (one VLAN tag skipped).
std::string classify(const uint8_t* p, uint32_t len) {
  if (len < 14) return "other";
  uint32_t off = 12;
  uint16_t type = be16(p + off);
  if ((type == 0x8100 || type == 0x88a8) && len >= 18) {
    off += 4;
    type = be16(p + off);
  }
  off += 2;
  uint32_t v4;
  if (type == 0x0806 && len >= off + 28) {
    std::memcpy(&v4, p + off + 24, 4);
    return "arp:" + IpAddr::v4(v4).str();
  }
  if (type == 0x0800 && len >= off + 20) {
    std::memcpy(&v4, p + off + 16, 4);
    return "ip4:" + IpAddr::v4(v4).str();
  }
  if (type == 0x86dd && len >= off + 40) {
    if (p[off + 6] == 58 && len >= off + 40 + 24 && p[off + 40] == 135) {
      return "ns:" + IpAddr::v6(p + off + 40 + 8).str();
    }
    return "ip6:" + IpAddr::v6(p + off + 24).str();
  }
  return "other";
}

}  // namespace

int main(int argc, char** argv) {
  std::string iface, obj, prefix;
  std::vector<XdpAddr> addrs;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--iface")
      iface = v;
    else if (k == "--obj")
      obj = v;
    else if (k == "--prefix")
      prefix = v;
    else if (k == "--addr") {
      auto eq = v.find('=');
      auto a = IpAddr::parse(v.substr(0, eq));
      std::string kind = eq == std::string::npos ? "" : v.substr(eq + 1);
      uint32_t flags = 0;
      if (kind == "vip") flags = l4lb::control::kXdpVip;
      if (kind == "own") flags = l4lb::control::kXdpOwn;
      if (kind == "nat") flags = l4lb::control::kXdpNatBackend;
      if (!a || flags == 0) return fail("--addr " + v + ": expected ADDR=vip|own|nat");
      addrs.push_back({*a, flags});
    } else {
      return fail("unknown argument " + k);
    }
  }
  if (iface.empty() || obj.empty() || prefix.empty()) return fail("need --iface, --obj, --prefix");

  // Before the PMD attaches anything.
  std::string before;
  if (XdpAddrMap::open(iface, before)) before = "(opened)";

  std::string vdev = "net_af_xdp0,iface=" + iface + ",xdp_prog=" + obj;
  std::vector<std::string> args = {"xdp_pmd_probe", "-l",          "0",
                                   "--no-huge",     "-m",          "256",
                                   "--no-pci",      "--no-shconf", "--file-prefix",
                                   prefix,          "--log-level", "*:warning",
                                   "--vdev",        vdev};
  std::vector<char*> av;
  for (auto& a : args) av.push_back(a.data());
  if (rte_eal_init(int(av.size()), av.data()) < 0)
    return fail(std::string("EAL: ") + rte_strerror(rte_errno));
  std::signal(SIGINT, [](int) { g_stop = 1; });
  std::signal(SIGTERM, [](int) { g_stop = 1; });

  int rc = 0;
  uint16_t port = 0;
  rte_mempool* pool = nullptr;
  std::map<std::string, uint64_t> rx;
  uint64_t rx_total = 0;
  std::unique_ptr<XdpAddrMap> map;
  std::string err;
  auto statsLine = [&](const char* event) {
    std::printf("{\"event\":\"%s\",\"rx_total\":%llu,\"rx\":%s,\"xdp\":%s}\n", event,
                static_cast<unsigned long long>(rx_total), jsonMap(rx).c_str(),
                map ? jsonMap(map->stats()).c_str() : "{}");
    std::fflush(stdout);
  };

  rte_eth_conf conf{};
  // The PMD's UMEM holds the fill ring (2 x 2048) plus RX/TX in flight: 8192 mbufs is ample.
  pool = rte_pktmbuf_pool_create("probe", 8191, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
                                 int(rte_socket_id()));
  if (rte_eth_dev_count_avail() != 1) {
    rc =
        fail("expected one port (net_af_xdp0), found " + std::to_string(rte_eth_dev_count_avail()));
  } else if (!pool) {
    rc = fail(std::string("mempool: ") + rte_strerror(rte_errno));
  } else if (int r = rte_eth_dev_configure(port, 1, 1, &conf); r < 0) {
    rc = fail(std::string("configure: ") + rte_strerror(-r));
  } else if (int r1 =
                 rte_eth_rx_queue_setup(port, 0, 1024, rte_eth_dev_socket_id(port), nullptr, pool);
             r1 < 0) {
    rc = fail(std::string("rx queue (loading ") + obj + "): " + rte_strerror(-r1));
  } else if (int r2 = rte_eth_tx_queue_setup(port, 0, 1024, rte_eth_dev_socket_id(port), nullptr);
             r2 < 0) {
    rc = fail(std::string("tx queue: ") + rte_strerror(-r2));
  } else if (int r3 = rte_eth_dev_start(port); r3 < 0) {
    rc = fail(std::string("start: ") + rte_strerror(-r3));
  } else if (!(map = XdpAddrMap::open(iface, err))) {
    rc = fail("XdpAddrMap::open: " + err);
  } else if (!map->sync(addrs, err)) {
    rc = fail("sync: " + err);
  }
  if (rc == 0) {
    std::printf("{\"event\":\"ready\",\"before\":%s,\"addrs\":%zu}\n", jsonStr(before).c_str(),
                map->dump().size());
    std::fflush(stdout);
    std::string line;
    while (!g_stop) {
      rte_mbuf* bufs[32];
      uint16_t n = rte_eth_rx_burst(port, 0, bufs, 32);
      for (uint16_t i = 0; i < n; i++) {
        rx[classify(rte_pktmbuf_mtod(bufs[i], const uint8_t*), rte_pktmbuf_data_len(bufs[i]))]++;
        rx_total++;
      }
      if (n) rte_pktmbuf_free_bulk(bufs, n);
      if (n) continue;
      // Idle: wait up to 1 ms for a command instead of spinning (the test machine is shared;
      // the socket's ring holds what arrives meanwhile).
      pollfd pfd{0, POLLIN, 0};
      if (poll(&pfd, 1, 1) <= 0) continue;
      char c;
      ssize_t got = read(0, &c, 1);
      if (got <= 0) break;  // EOF: the test is gone
      if (c != '\n') {
        line += c;
        continue;
      }
      if (line == "stats")
        statsLine("stats");
      else if (line == "quit")
        break;
      line.clear();
    }
    statsLine("final");
  }
  map.reset();
  rte_eth_dev_stop(port);
  rte_eth_dev_close(port);
  std::string after;
  if (XdpAddrMap::open(iface, after)) after = "(opened)";
  if (rc == 0) {
    std::printf("{\"event\":\"closed\",\"after\":%s}\n", jsonStr(after).c_str());
    std::fflush(stdout);
  }
  rte_mempool_free(pool);
  rte_eal_cleanup();
  return rc;
}
