// A small configuration for the control-side unit tests of reload and the change plan: one port
// "lan" (198.18.30.1/24) and one TCP VIP "web" (198.18.20.100:80) with two backends
// (198.18.30.11, .12) that take the VIP's health check.
#pragma once

#include "control/config.h"
#include "packet_builder.h"

namespace l4lb::test {

inline control::Config oneVipTwoBackends(control::HealthType health = control::HealthCheckConfig{}.type) {
  control::Config c;
  c.eal.worker_cores = {1};
  control::PortConfig p;
  p.name = "lan";
  p.device = "net_null0";
  p.ipv4 = *Prefix::parse("198.18.30.1/24");
  c.ports.push_back(p);
  control::VipConfig v;
  v.name = "web";
  v.address = ipAddr("198.18.20.100");
  v.port = 80;
  v.health.type = health;
  for (const char* a : {"198.18.30.11", "198.18.30.12"}) {
    control::BackendConfig b;
    b.address = ipAddr(a);
    b.health = v.health;
    v.backends.push_back(b);
  }
  c.vips.push_back(v);
  return c;
}

}  // namespace l4lb::test
