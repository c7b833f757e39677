// The full-NAT keys of a VIP (config_vips.cc) and the source-address list over all VIPs
// (snat_pools.cc): what is accepted, what is refused and with which message, and that a reload
// that changes the list needs a restart (reload.cc).
#include <gtest/gtest.h>

#include <string>

#include "control/config.h"
#include "control/reload.h"
#include "control/snat_pools.h"
#include "config_text.h"

namespace l4lb::control {
namespace {

const std::string& kPrelude = test::kConfigPrelude;
std::string errorsOf(const std::string& doc) { return test::configErrorsOf(doc); }

Config load(const std::string& doc) {
  ConfigResult r = loadConfigString(doc, "t.toml");
  EXPECT_TRUE(r.ok()) << r.error.str();
  return r.config ? *r.config : Config{};
}

std::string vip(const std::string& keys, const std::string& backend = "198.18.2.11") {
  return kPrelude + "[[vips]]\naddress = \"198.18.1.10\"\nport = 80\nforwarding = \"fullnat\"\n" + keys +
         "[[vips.backends]]\naddress = \"" + backend + "\"\n";
}

TEST(ConfigFullNat, KeysAndDefaults) {
  Config c = load(vip("snat_addresses = [\"198.18.2.2\", \"2001:db8:2::2\"]\nsnat_ports = \"2000-2999\"\n"
                      "snat_quiet_time = 2.5\nproxy_protocol = \"v2\"\n"));
  ASSERT_EQ(c.vips.size(), 1u);
  const VipConfig& v = c.vips[0];
  EXPECT_EQ(v.forwarding, FwdMode::FullNat);
  ASSERT_EQ(v.snat_addresses.size(), 2u);
  EXPECT_EQ(v.snat_addresses[1].str(), "2001:db8:2::2");
  EXPECT_EQ(v.snat_port_lo, 2000);
  EXPECT_EQ(v.snat_port_hi, 2999);
  EXPECT_EQ(v.snat_quiet_ms, 2500u);
  EXPECT_TRUE(v.proxy_v2);
  // The backends' health checks send a PROXY v2 LOCAL header first (health/socket_check.h).
  ASSERT_EQ(v.backends.size(), 1u);
  EXPECT_TRUE(v.backends[0].health.proxy_v2_local);
  Config d = load(vip("snat_addresses = [\"198.18.2.2\"]\n"));
  EXPECT_EQ(d.vips[0].snat_port_lo, 1024);
  EXPECT_EQ(d.vips[0].snat_port_hi, 65535);
  EXPECT_EQ(d.vips[0].snat_quiet_ms, 60'000u);
  EXPECT_FALSE(d.vips[0].proxy_v2);
  EXPECT_FALSE(d.vips[0].backends[0].health.proxy_v2_local);
}

TEST(ConfigFullNat, SourceAddressesAreRequired) {
  EXPECT_EQ(errorsOf(vip("")),
            "t.toml:6:1: vips[0].snat_addresses: is required with forwarding fullnat: the source addresses this "
            "balancer owns on the backends' side");
  EXPECT_EQ(errorsOf(vip("snat_addresses = []\n")),
            "t.toml:10:18: vips[0].snat_addresses: must be a non-empty array of addresses");
}

TEST(ConfigFullNat, RangeMustHoldAPort) {
  EXPECT_EQ(errorsOf(vip("snat_addresses = [\"198.18.2.2\"]\nsnat_ports = \"3000-2999\"\n")),
            "t.toml:11:14: vips[0].snat_ports: is an empty range: 3000 > 2999");
  EXPECT_EQ(errorsOf(vip("snat_addresses = [\"198.18.2.2\"]\nsnat_ports = \"0-99999\"\n")),
            "t.toml:11:14: vips[0].snat_ports: must be a range \"lo-hi\" of ports 1..65535 (got \"0-99999\")");
}

TEST(ConfigFullNat, ProxyProtocolNeedsTcp) {
  std::string doc = kPrelude +
                    "[[vips]]\naddress = \"198.18.1.10\"\nport = 53\nprotocol = \"udp\"\nforwarding = \"fullnat\"\n"
                    "snat_addresses = [\"198.18.2.2\"]\nproxy_protocol = \"v2\"\n"
                    "[[vips.backends]]\naddress = \"198.18.2.11\"\n";
  EXPECT_EQ(errorsOf(doc),
            "t.toml:12:18: vips[0].proxy_protocol: v2 needs protocol tcp: the header is the first bytes of a TCP "
            "stream");
}

TEST(ConfigFullNat, KeysNeedFullNat) {
  std::string doc = kPrelude +
                    "[[vips]]\naddress = \"198.18.1.10\"\nforwarding = \"nat\"\n"
                    "snat_addresses = [\"198.18.2.2\"]\nproxy_protocol = \"v2\"\n"
                    "[[vips.backends]]\naddress = \"198.18.2.11\"\n";
  EXPECT_EQ(errorsOf(doc),
            "t.toml:9:18: vips[0].snat_addresses: only allowed with forwarding fullnat\n"
            "t.toml:10:18: vips[0].proxy_protocol: only allowed with forwarding fullnat");
}

TEST(ConfigFullNat, ASourceAddressIsTheBalancersAlone) {
  EXPECT_EQ(errorsOf(vip("snat_addresses = [\"198.18.1.10\"]\n")),
            "t.toml:10:18: vips[0].snat_addresses: 198.18.1.10 is the VIP's own address");
  EXPECT_EQ(errorsOf(vip("snat_addresses = [\"198.18.2.11\"]\n")),
            "t.toml:10:18: vips[0].snat_addresses: 198.18.2.11 is also a backend");
  EXPECT_EQ(errorsOf(vip("snat_addresses = [\"2001:db8:2::2\"]\n")),
            "t.toml:10:18: vips[0].snat_addresses: needs an IPv4 address: the VIP has backends of that family");
}

// Full NAT translates the family (fullnat/family_xlate.h): an IPv4 VIP takes IPv6 backends and
// an IPv6 VIP IPv4 ones, or both at once; the pool needs an address of each backend's family.
TEST(ConfigFullNat, BackendsOfTheOtherFamily) {
  Config c = load(vip("snat_addresses = [\"2001:db8:2::2\"]\n", "2001:db8:2::11"));
  ASSERT_EQ(c.vips.size(), 1u);
  EXPECT_EQ(c.vips[0].backends[0].address.str(), "2001:db8:2::11");
  std::string six = kPrelude +
                    "[[vips]]\naddress = \"2001:db8:1::10\"\nport = 80\nforwarding = \"fullnat\"\n"
                    "snat_addresses = [\"198.18.2.2\", \"2001:db8:2::2\"]\n"
                    "[[vips.backends]]\naddress = \"198.18.2.11\"\n[[vips.backends]]\naddress = \"2001:db8:2::11\"\n";
  Config d = load(six);
  ASSERT_EQ(d.vips.size(), 1u);
  EXPECT_EQ(d.vips[0].backends.size(), 2u);
  // Without the IPv4 source address the IPv4 backend has no pool.
  six.replace(six.find("\"198.18.2.2\", "), 14, "");
  EXPECT_EQ(errorsOf(six),
            "t.toml:10:18: vips[0].snat_addresses: needs an IPv4 address: the VIP has backends of that family");
  // NAT still refuses it: it rewrites addresses within one family.
  std::string nat = vip("", "2001:db8:2::11");
  nat.replace(nat.find("\"fullnat\""), 9, "\"nat\"");
  EXPECT_EQ(errorsOf(nat), "t.toml:11:11: vips[0].backends[0].address: IPv6 backend for an IPv4 VIP needs "
                           "forwarding ipip, gue or fullnat");
}

TEST(ConfigFullNat, SeveralWorkers) {
  // A reply reaches the worker that holds its session: by RSS steering, else the hand-off ring.
  std::string doc = vip("snat_addresses = [\"198.18.2.2\"]\n");
  doc.replace(doc.find("worker_cores = [1]"), 18, "worker_cores = [1, 2]");
  Config c = load(doc);
  EXPECT_EQ(c.eal.worker_cores.size(), 2u);
  EXPECT_EQ(c.vips[0].forwarding, FwdMode::FullNat);
}

TEST(SnatPools, OneListOverTheVipsAndItsConflicts) {
  Config c = load(vip("snat_addresses = [\"198.18.2.2\"]\n"));
  VipConfig second = c.vips[0];
  second.address = *IpAddr::parse("198.18.1.11");
  c.vips.push_back(second);  // the same source address, the same range: shared
  SnatPools p = snatPools(c);
  EXPECT_TRUE(p.errors.empty());
  ASSERT_EQ(p.addrs.size(), 1u);
  EXPECT_EQ(p.v4[0], std::vector<uint32_t>{0});
  EXPECT_EQ(p.v4[1], std::vector<uint32_t>{0});
  c.vips[1].snat_port_hi = 5000;  // the same address with another range
  p = snatPools(c);
  ASSERT_EQ(p.errors.size(), 1u);
  EXPECT_NE(p.errors[0].find("another fullnat VIP with other snat_ports"), std::string::npos) << p.errors[0];
  c.vips[1].snat_port_hi = c.vips[0].snat_port_hi;
  c.vips[1].snat_addresses = {*IpAddr::parse("198.18.1.10")};  // the first VIP's address
  p = snatPools(c);
  ASSERT_EQ(p.errors.size(), 1u);
  EXPECT_NE(p.errors[0].find("is the address of vips[0]"), std::string::npos) << p.errors[0];
}

TEST(SnatPools, ChangingTheSourceAddressesNeedsARestart) {
  Config a = load(vip("snat_addresses = [\"198.18.2.2\"]\n"));
  Config b = a;
  EXPECT_TRUE(restartRequired(a, b).empty());
  b.vips[0].snat_port_lo = 5000;
  auto msgs = restartRequired(a, b);
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_NE(msgs[0].find("full-NAT source addresses changed: needs a restart"), std::string::npos) << msgs[0];
}


sync::PortRss rssPort(uint8_t key_byte, uint16_t queues, size_t reta_size) {
  sync::PortRss p;
  p.rx_queues = queues;
  p.rss = true;
  p.key.assign(40, key_byte);
  p.hash_types = 0xffff;
  for (size_t i = 0; i < reta_size; i++) p.reta.push_back(uint16_t(i % queues));
  return p;
}

TEST(SnatRss, SteeredPortsAndEachWorkersEntries) {
  sync::PortRss single = rssPort(0x6d, 1, 128), unread = rssPort(0x6d, 4, 128), other_key = rssPort(0x5a, 4, 128),
                odd_reta = rssPort(0x6d, 4, 96);
  single.rss = false;
  unread.rss = false;
  const std::vector<sync::PortRss> ports{rssPort(0x6d, 4, 128), single, unread, other_key, odd_reta, rssPort(0x6d, 4, 512)};
  const dataplane::SnatRss r = snatRss(ports, 1, 2);
  EXPECT_EQ(r.key, ports[0].key);
  EXPECT_EQ(r.buckets, 512u);  // the largest steered RETA
  ASSERT_EQ(r.ports.size(), ports.size());
  // Worker 1 of 2 polls queues 1 and 3: the odd entries, the 128-entry RETA repeated 4 times.
  ASSERT_EQ(r.ports[0].mine.size(), 256u);
  for (uint16_t b : r.ports[0].mine) EXPECT_EQ(b % 2, 1) << b;
  EXPECT_EQ(r.ports[0].hash_types, 0xffffu);
  for (size_t i : {1, 2, 3, 4}) EXPECT_TRUE(r.ports[i].mine.empty()) << "port " << i;
  EXPECT_EQ(r.ports[5].mine.size(), 256u);
  // Three workers over four queues: worker 0 polls queues 0 and 3.
  const dataplane::SnatRss r3 = snatRss({rssPort(0x6d, 4, 128)}, 0, 3);
  ASSERT_EQ(r3.ports[0].mine.size(), 64u);
  for (uint16_t b : r3.ports[0].mine) EXPECT_TRUE(b % 4 == 0 || b % 4 == 3) << b;
  // One worker, or no steerable port: no steering.
  EXPECT_TRUE(snatRss(ports, 0, 1).key.empty());
  const dataplane::SnatRss none = snatRss({single, unread}, 0, 2);
  EXPECT_TRUE(none.key.empty());
  EXPECT_EQ(none.buckets, 1u);
}

}  // namespace
}  // namespace l4lb::control
