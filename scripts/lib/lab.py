#!/usr/bin/python3
"""The l4lb lab: network namespaces joined by veths, with real servers, for the demo and tests.

Topologies (addresses only from 198.18.0.0/15 and 2001:db8::/32):

  nat  client (P-c) --veth-- [wan] balancer (P-lb) [lan] --veth-- switch (P-sw, bridge) -- backends (P-b1..)
       wan 198.18.20.0/24 (lb .1, client .10), VIP 198.18.20.100; lan 198.18.30.0/24 (lb .1,
       backend i at .10+i, default route via the balancer). IPv6: 2001:db8:20::/64, 2001:db8:30::/64.
  fullnat  the nat addresses, but the backends are private: no route beyond their own segment
       (198.18.30.0/24, 2001:db8:30::/64), no VIP, no sysctl. The balancer reaches them from its
       source (SNAT) addresses on that segment, SNAT4 = 198.18.30.2.. and SNAT6 = 2001:db8:30::2..,
       which only l4lb answers ARP/ND for. Each backend also runs nginx (scripts/lib/lab_nginx.py:
       :8080 with proxy_protocol, :8081 without) and a server-speaks-first PROXY v2 server
       (scripts/lib/proxy_banner.py, :8082).
  dsr  one L2 segment (P-sw bridge): balancer .1, client .10, backend i .10+i in 198.18.10.0/24,
       VIP 198.18.10.100 held by every backend on its loopback with ARP for it suppressed, so
       backends answer the client directly. IPv6: 2001:db8:10::/64.
  ecmp client (P-c) -- router (P-r, BIRD) -- segment (P-sw) -- N balancers (P-lb1..) with their
       own BIRD, and backends (DSR): the router spreads flows over the balancers by ECMP
       (scripts/lib/ecmp_lab.py has the addresses).

The balancer's ports are net_af_xdp on its veths with exception_path = "xdp": our XDP program
sends VIP traffic to DPDK and everything else (ARP for its own address, health-check replies)
to the balancer namespace's kernel. Every backend runs scripts/lib/lab_server.py (HTTP :80,
UDP echo :5353). TX checksum offload is off on every veth (AF_XDP takes frames as they are:
a partial checksum would reach the backend unfinished).

Usage: lab.py up|down|status|config [--prefix P] [--topology nat|fullnat|dsr|ecmp] [--ipv6] [--backends N]
              [--balancers N] [--static-announce] [--start [--build DIR]]
Names derive from the prefix (at most 6 characters), so labs with different prefixes coexist;
`down` removes every namespace and process of a prefix even without state (after a crash).
"""
import argparse
import json
import os
import subprocess
import sys
import time

from balancer_config import BalancerConfig, Vip
from ecmp_lab import ecmp_main
from lab_common import HERE, REPO_ROOT, RUN_DIR, NetnsLab, sh
import lab_nginx


class Lab(NetnsLab):
    def __init__(self, prefix="l4lb", topology="nat", ipv6=False, backends=3, exception="xdp"):
        if topology not in ("nat", "fullnat", "dsr"):
            raise ValueError("topology: nat, fullnat or dsr")
        if exception not in ("xdp", "tap"):
            raise ValueError("exception: xdp or tap")
        super().__init__(prefix, ipv6, backends)
        self.topology = topology
        # xdp: the balancer's own addresses live on its veths (our XDP program passes the
        # kernel's traffic up). tap: the PMD's default program takes everything, so the
        # addresses go on the tap interfaces l4lb creates, and the veths carry none.
        self.exception = exception
        p = prefix
        self.ns_client, self.ns_lb, self.ns_sw = f"{p}-c", f"{p}-lb", f"{p}-sw"
        if topology in ("nat", "fullnat"):
            self.wan_if, self.lan_if = f"{p}lw", f"{p}l0"
            self.lb_wan4, self.client4, self.vip4 = "198.18.20.1", "198.18.20.10", "198.18.20.100"
            self.lb_lan4 = "198.18.30.1"
            self.lb_wan6, self.client6, self.vip6 = "2001:db8:20::1", "2001:db8:20::10", "2001:db8:20::100"
            self.lb_lan6 = "2001:db8:30::1"
            self.backend4 = [f"198.18.30.{10 + i}" for i in range(1, backends + 1)]
            self.backend6 = [f"2001:db8:30::{10 + i}" for i in range(1, backends + 1)]
            # fullnat: the balancer's source addresses on the backends' segment (never configured
            # in a namespace: l4lb answers ARP/ND for them). The first of each family is the lab
            # config's; tests give more VIPs their own.
            self.snat4 = [f"198.18.30.{2 + i}" for i in range(8)]
            self.snat6 = [f"2001:db8:30::{2 + i:x}" for i in range(8)]
        else:
            self.wan_if, self.lan_if = None, f"{p}l0"
            self.lb_lan4, self.client4, self.vip4 = "198.18.10.1", "198.18.10.10", "198.18.10.100"
            self.lb_lan6, self.client6, self.vip6 = "2001:db8:10::1", "2001:db8:10::10", "2001:db8:10::100"
            self.backend4 = [f"198.18.10.{10 + i}" for i in range(1, backends + 1)]
            self.backend6 = [f"2001:db8:10::{10 + i}" for i in range(1, backends + 1)]

    def namespaces(self):
        return [self.ns_client, self.ns_lb, self.ns_sw] + self.ns_backends

    # -- up / down ---------------------------------------------------------------------------
    def up(self):
        if self.is_up():
            return self
        NetnsLab.down_prefix(self.prefix)  # a half-made lab from a crash
        os.makedirs(self.state_dir, exist_ok=True)
        p = self.prefix
        try:
            self._namespaces_and_switch()
            # The balancer's lan (or only) port, on the switch.
            self._veth(self.lan_if, self.ns_lb, f"{p}sl", self.ns_sw)
            self._bridge(f"{p}sl")
            if self.exception == "xdp":
                self._addr(self.ns_lb, self.lan_if, self.lb_lan4, 24, self.lb_lan6)
            if self.topology in ("nat", "fullnat"):
                self._veth(f"{p}c0", self.ns_client, self.wan_if, self.ns_lb)
                if self.exception == "xdp":
                    self._addr(self.ns_lb, self.wan_if, self.lb_wan4, 24, self.lb_wan6)
                self._addr(self.ns_client, f"{p}c0", self.client4, 24, self.client6)
            else:
                self._veth(f"{p}c0", self.ns_client, f"{p}sc", self.ns_sw)
                self._bridge(f"{p}sc")
                self._addr(self.ns_client, f"{p}c0", self.client4, 24, self.client6)
            # More client addresses (198.18.21.0/24, 2001:db8:21::/64) for many-client tests: on
            # the client's loopback, reached through the client as the balancer's gateway (NAT)
            # or the backends' route (DSR).
            sh("ip", "addr", "add", "198.18.21.1/24", "dev", "lo", ns=self.ns_client)
            if self.topology == "fullnat":
                lab_nginx.write_blob(self.state_dir)
            if self.ipv6:
                sh("ip", "-6", "route", "add", "local", "2001:db8:21::/64", "dev", "lo", ns=self.ns_client)
                sh("sysctl", "-qw", "net.ipv6.ip_nonlocal_bind=1", ns=self.ns_client)
            for i, ns in enumerate(self.ns_backends):
                ifname = f"{p}b{i + 1}"
                self._veth(ifname, ns, f"{p}s{i + 1}", self.ns_sw)
                self._bridge(f"{p}s{i + 1}")
                self._addr(ns, ifname, self.backend4[i], 24, self.backend6[i])
                if self.topology == "nat":
                    sh("ip", "route", "add", "default", "via", self.lb_lan4, ns=ns)
                    if self.ipv6:
                        sh("ip", "-6", "route", "add", "default", "via", self.lb_lan6, ns=ns)
                elif self.topology == "fullnat":
                    # Private: only the connected prefixes, nothing else to configure.
                    lab_nginx.start_nginx(sh, self.state_dir, ns, f"b{i + 1}")
                    self.start_banner(i)
                else:
                    # DSR (as IPVS -g): the VIP on loopback, never announced by ARP on the segment.
                    sh("ip", "addr", "add", f"{self.vip4}/32", "dev", "lo", ns=ns)
                    if self.ipv6:
                        sh("ip", "addr", "add", f"{self.vip6}/128", "dev", "lo", ns=ns)
                    sh("ip", "route", "add", "198.18.21.0/24", "via", self.client4, ns=ns)
                    if self.ipv6:
                        sh("ip", "-6", "route", "add", "2001:db8:21::/64", "via", self.client6, ns=ns)
                    for k, v in (("arp_ignore", "1"), ("arp_announce", "2")):
                        sh("sysctl", "-qw", f"net.ipv4.conf.all.{k}={v}", ns=ns)
                        sh("sysctl", "-qw", f"net.ipv4.conf.{ifname}.{k}={v}", ns=ns)
                self.start_server(i)
            with open(os.path.join(self.state_dir, "lab.json"), "w") as f:
                json.dump(self.describe(), f, indent=2)
            self.wait_servers()
        except Exception:
            NetnsLab.down_prefix(self.prefix)
            raise
        return self

    def start_banner(self, i):
        """Backend i's server-speaks-first PROXY v2 server (scripts/lib/proxy_banner.py, :8082)."""
        name = f"b{i + 1}"
        log = open(os.path.join(self.state_dir, f"{name}.banner.err"), "ab")
        subprocess.Popen(["ip", "netns", "exec", self.ns_backends[i], "/usr/bin/python3",
                          os.path.join(HERE, "proxy_banner.py"), name, self.state_dir],
                         stdout=log, stderr=log, start_new_session=True)

    def wait_servers(self, timeout=10.0):
        super().wait_servers(timeout)
        if self.topology != "fullnat":
            return
        end = time.monotonic() + timeout
        for i, ns in enumerate(self.ns_backends):
            for port in (lab_nginx.PP_PORT, lab_nginx.PLAIN_PORT, 8082):
                while sh("/usr/bin/python3", "-c", "import socket; "
                         f"socket.create_connection(({self.backend4[i]!r}, {port}), 1).close()", ns=ns, check=False) != 0:
                    if time.monotonic() > end:
                        raise RuntimeError(f"backend b{i + 1}: nothing listens on :{port}")
                    time.sleep(0.1)

    # -- description and balancer config -----------------------------------------------------
    def extra_clients(self, n, v6=False):
        """n client source addresses (a /24 or /64 on the client's loopback: any address in it
        is local there, so a socket can bind to it)."""
        return [f"2001:db8:21::{i + 2:x}" if v6 else f"198.18.21.{i + 2}" for i in range(n)]

    def describe(self):
        return {"prefix": self.prefix, "topology": self.topology, "ipv6": self.ipv6, "exception": self.exception,
                "namespaces": self.namespaces(), "vip4": self.vip4, "vip6": self.vip6 if self.ipv6 else None,
                "client4": self.client4, "backends4": self.backend4,
                "backends6": self.backend6 if self.ipv6 else [], "state_dir": self.state_dir,
                **({"snat4": self.snat4[0], "snat6": self.snat6[0] if self.ipv6 else None}
                   if self.topology == "fullnat" else {})}

    def lb_mac(self, ifname):
        out = sh("ip", "-j", "link", "show", ifname, ns=self.ns_lb, capture=True)
        return json.loads(out)[0]["address"]

    # The lab's side of BalancerConfig (scripts/lib/balancer_config.py).
    def config_defaults(self):
        # fullnat: a TCP check (connect, then close): an HTTP check would be one more request in
        # nginx's logs, which the tests count.
        health = ({"type": "tcp", "interval_ms": 500, "timeout_ms": 400, "rise": 2, "fall": 2}
                  if self.topology == "fullnat" else
                  {"type": "http", "interval_ms": 500, "timeout_ms": 400, "rise": 2, "fall": 2,
                   "max_latency_ms": 300, "http_path": "/"})
        return {"backends": self.n, "weights": (1, 2, 3), "forwarding": self.topology, "scheduler": "maglev",
                "on_all_down": "drop", "memory_mb": 512, "sync": False, "extra_vips": "", "health": health}

    def config_comment(self, i):
        return f'# Generated by scripts/lib/lab.py for lab "{self.prefix}" ({self.topology}).'

    def config_file_prefix(self, i):
        return "l4lb_lab_" + self.prefix

    def config_ports(self, i):
        ports = []
        if self.topology in ("nat", "fullnat"):
            wan = {"name": "wan", "device": f"net_af_xdp0,iface={self.wan_if}", "exception_path": self.exception,
                   "ipv4": f"{self.lb_wan4}/24", "gateway4": self.client4}
            if self.ipv6:
                wan.update(ipv6=f"{self.lb_wan6}/64", gateway6=self.client6)
            ports.append(wan)
        lan = {"name": "lan", "device": f"net_af_xdp1,iface={self.lan_if}", "exception_path": self.exception,
               "ipv4": f"{self.lb_lan4}/24"}
        if self.ipv6:
            lan["ipv6"] = f"{self.lb_lan6}/64"
        return ports + [lan]

    def control_socket(self, i):
        return None

    def balancer_name(self, i):
        return "lb1"

    def sync_section(self, i):
        return None  # one balancer: no peer

    def bgp_defaults(self, i):
        return {}

    def fullnat_keys(self, v6, k=0, proxy_protocol=None, **more):
        """Vip keyword arguments of a fullnat VIP whose backends are of family `v6`: its source
        address (the k-th of the lab's), "10000-60999" and `proxy_protocol`; `more` overrides."""
        keys = {"snat_addresses": [self.snat6[k] if v6 else self.snat4[k]], "snat_ports": "10000-60999",
                "proxy_protocol": proxy_protocol}
        keys.update(more)
        return keys

    def config_vips(self, cfg, i):
        """The TCP service (:80, cfg.health) and, with cfg.udp, the UDP echo (:5353) on each VIP.
        fullnat: :80 goes to nginx's PROXY v2 listener (:8080) with proxy_protocol = "v2", each
        family's VIPs from the lab's first source address of that family."""
        udp_check = {"type": "udp", "interval_ms": 500, "timeout_ms": 400, "rise": 2, "fall": 2, "udp_payload": "hc"}
        fams = [(self.vip4, self.backend4, False)] + ([(self.vip6, self.backend6, True)] if self.ipv6 else [])
        out = []
        for vip, addrs, v6 in fams:
            for proto, port, check in [("tcp", 80, cfg.health)] + ([("udp", 5353, udp_check)] if cfg.udp else []):
                kw = {}
                if cfg.forwarding == "fullnat":
                    kw = self.fullnat_keys(v6, proxy_protocol="v2" if proto == "tcp" else None)
                    if proto == "tcp":
                        kw["backend_port"] = lab_nginx.PP_PORT
                out.append(Vip(vip, port, proto, cfg.forwarding, check, cfg.backend_list(self, addrs, v6),
                               scheduler=cfg.scheduler, on_all_down=cfg.on_all_down, **kw))
        return out


def _topology(prefix):
    """The topology of the lab `prefix` that is up (from its lab.json), or None."""
    try:
        with open(os.path.join(RUN_DIR, prefix, "lab.json")) as f:
            return json.load(f).get("topology")
    except (OSError, ValueError):
        return None


def main():
    ap = argparse.ArgumentParser(description="l4lb lab of network namespaces")
    ap.add_argument("action", choices=["up", "down", "status", "config"])
    ap.add_argument("--prefix", default="l4lb")
    ap.add_argument("--topology", default="nat", choices=["nat", "fullnat", "dsr", "ecmp"])
    ap.add_argument("--ipv6", action="store_true")
    ap.add_argument("--backends", type=int, default=None, help="default 3 (ecmp: 5)")
    ap.add_argument("--exception", default="xdp", choices=["xdp", "tap"])
    ap.add_argument("--balancers", type=int, default=3, help="ecmp: how many balancers")
    ap.add_argument("--static-announce", action="store_true",
                    help="ecmp: each balancer's BIRD announces the VIPs itself (no [bgp] in l4lb)")
    ap.add_argument("--start", action="store_true", help="ecmp: also start l4lb in every balancer")
    ap.add_argument("--build", default=os.path.join(REPO_ROOT, "build"), help="ecmp --start: the build directory")
    a = ap.parse_args()
    if a.topology == "ecmp" or (a.action in ("down", "status") and _topology(a.prefix) == "ecmp"):
        return ecmp_main(a)
    lab = Lab(a.prefix, a.topology, a.ipv6, a.backends or 3, a.exception)
    if a.action == "up":
        lab.up()
        print(json.dumps(lab.describe(), indent=2))
    elif a.action == "down":
        lab.down()
        print(f"lab {a.prefix}: down")
    elif a.action == "config":
        print(BalancerConfig(hugepages=True, file_prefix="l4lb_lab").toml(lab), end="")
    else:
        path = os.path.join(RUN_DIR, a.prefix, "lab.json")
        if os.path.exists(path):
            print(open(path).read())
            have = set(sh("ip", "netns", "list", capture=True).split())
            for ns in json.load(open(path))["namespaces"]:
                print(f"{ns}: {'present' if ns in have else 'MISSING'}")
        else:
            print(f"lab {a.prefix}: down")
            return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
