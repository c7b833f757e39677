#!/usr/bin/python3
"""The l4lb lab: network namespaces joined by veths, with real servers, for the demo and tests.

Topologies (addresses only from 198.18.0.0/15 and 2001:db8::/32):

  nat  client (P-c) --veth-- [wan] balancer (P-lb) [lan] --veth-- switch (P-sw, bridge) -- backends (P-b1..)
       wan 198.18.20.0/24 (lb .1, client .10), VIP 198.18.20.100; lan 198.18.30.0/24 (lb .1,
       backend i at .10+i, default route via the balancer). IPv6: 2001:db8:20::/64, 2001:db8:30::/64.
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

Usage: lab.py up|down|status|config [--prefix P] [--topology nat|dsr|ecmp] [--ipv6] [--backends N]
              [--balancers N] [--static-announce] [--start [--build DIR]]
Names derive from the prefix (at most 6 characters), so labs with different prefixes coexist;
`down` removes every namespace and process of a prefix even without state (after a crash).
"""
import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
RUN_DIR = "/run/l4lb-lab"


def sh(*cmd, check=True, ns=None, capture=False):
    if ns:
        cmd = ("ip", "netns", "exec", ns) + cmd
    r = subprocess.run(cmd, capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit {r.returncode}: {r.stderr.strip()}")
    return r.stdout if capture else r.returncode


class Lab:
    def __init__(self, prefix="l4lb", topology="nat", ipv6=False, backends=3, exception="xdp"):
        if not (1 <= len(prefix) <= 6) or not prefix.replace("-", "").isalnum():
            raise ValueError("prefix: 1..6 letters or digits")
        if topology not in ("nat", "dsr"):
            raise ValueError("topology: nat or dsr")
        if not (1 <= backends <= 9):
            raise ValueError("backends: 1..9")
        if exception not in ("xdp", "tap"):
            raise ValueError("exception: xdp or tap")
        self.prefix, self.topology, self.ipv6, self.n = prefix, topology, ipv6, backends
        # xdp: the balancer's own addresses live on its veths (our XDP program passes the
        # kernel's traffic up). tap: the PMD's default program takes everything, so the
        # addresses go on the tap interfaces l4lb creates, and the veths carry none.
        self.exception = exception
        p = prefix
        self.ns_client, self.ns_lb, self.ns_sw = f"{p}-c", f"{p}-lb", f"{p}-sw"
        self.ns_backends = [f"{p}-b{i}" for i in range(1, backends + 1)]
        self.state_dir = os.path.join(RUN_DIR, prefix)
        if topology == "nat":
            self.wan_if, self.lan_if = f"{p}lw", f"{p}l0"
            self.lb_wan4, self.client4, self.vip4 = "198.18.20.1", "198.18.20.10", "198.18.20.100"
            self.lb_lan4 = "198.18.30.1"
            self.lb_wan6, self.client6, self.vip6 = "2001:db8:20::1", "2001:db8:20::10", "2001:db8:20::100"
            self.lb_lan6 = "2001:db8:30::1"
            self.backend4 = [f"198.18.30.{10 + i}" for i in range(1, backends + 1)]
            self.backend6 = [f"2001:db8:30::{10 + i}" for i in range(1, backends + 1)]
        else:
            self.wan_if, self.lan_if = None, f"{p}l0"
            self.lb_lan4, self.client4, self.vip4 = "198.18.10.1", "198.18.10.10", "198.18.10.100"
            self.lb_lan6, self.client6, self.vip6 = "2001:db8:10::1", "2001:db8:10::10", "2001:db8:10::100"
            self.backend4 = [f"198.18.10.{10 + i}" for i in range(1, backends + 1)]
            self.backend6 = [f"2001:db8:10::{10 + i}" for i in range(1, backends + 1)]

    # -- helpers -----------------------------------------------------------------------------
    def _veth(self, a, ns_a, b, ns_b):
        sh("ip", "link", "add", a, "netns", ns_a, "type", "veth", "peer", b, "netns", ns_b)
        for name, ns in ((a, ns_a), (b, ns_b)):
            sh("ip", "link", "set", name, "up", ns=ns)
            sh("ethtool", "-K", name, "tx", "off", ns=ns, check=False)

    def _addr(self, ns, ifname, v4, plen4, v6=None, plen6=64):
        sh("ip", "addr", "add", f"{v4}/{plen4}", "dev", ifname, ns=ns)
        if self.ipv6 and v6:
            sh("ip", "addr", "add", f"{v6}/{plen6}", "dev", ifname, "nodad", ns=ns)

    def _namespaces_and_switch(self):
        """Every namespace of the lab (loopback up; no DAD with IPv6) and the switch's bridge."""
        for ns in self.namespaces():
            sh("ip", "netns", "add", ns)
            sh("ip", "link", "set", "lo", "up", ns=ns)
            if self.ipv6:
                sh("sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0", ns=ns)
                sh("sysctl", "-qw", "net.ipv6.conf.default.accept_dad=0", ns=ns)
        sh("ip", "link", "add", "br0", "type", "bridge", ns=self.ns_sw)
        sh("ip", "link", "set", "br0", "up", ns=self.ns_sw)

    def _bridge(self, port):
        sh("ip", "link", "set", port, "master", "br0", ns=self.ns_sw)

    def namespaces(self):
        return [self.ns_client, self.ns_lb, self.ns_sw] + self.ns_backends

    # -- up / down ---------------------------------------------------------------------------
    def up(self):
        if self.is_up():
            return self
        Lab.down_prefix(self.prefix)  # a half-made lab from a crash
        os.makedirs(self.state_dir, exist_ok=True)
        p = self.prefix
        try:
            self._namespaces_and_switch()
            # The balancer's lan (or only) port, on the switch.
            self._veth(self.lan_if, self.ns_lb, f"{p}sl", self.ns_sw)
            self._bridge(f"{p}sl")
            if self.exception == "xdp":
                self._addr(self.ns_lb, self.lan_if, self.lb_lan4, 24, self.lb_lan6)
            if self.topology == "nat":
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
            Lab.down_prefix(self.prefix)
            raise
        return self

    def start_server(self, i):
        name = f"b{i + 1}"
        log = open(os.path.join(self.state_dir, f"{name}.log"), "ab")
        proc = subprocess.Popen(["ip", "netns", "exec", self.ns_backends[i], "/usr/bin/python3",
                                 os.path.join(HERE, "lab_server.py"), name, self.state_dir],
                                stdout=log, stderr=log, start_new_session=True)
        with open(os.path.join(self.state_dir, f"{name}.pid"), "w") as f:
            f.write(str(proc.pid))

    def stop_server(self, i):
        """Kills backend i's server (the test's "backend died")."""
        for pid in sh("ip", "netns", "pids", self.ns_backends[i], capture=True, check=False).split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except OSError:
                pass

    def wait_servers(self, timeout=10.0):
        end = time.monotonic() + timeout
        for i, ns in enumerate(self.ns_backends):
            while sh("ip", "netns", "exec", ns, "/usr/bin/python3", "-c",
                     "import socket; socket.create_connection(('127.0.0.1', 80), 1).close()", check=False) != 0:
                if time.monotonic() > end:
                    raise RuntimeError(f"backend b{i + 1} server did not start")
                time.sleep(0.1)

    def set_knob(self, i, kind, value):
        """Backend i's HTTP status / delay (see lab_server.py); None removes the knob."""
        path = os.path.join(self.state_dir, f"b{i + 1}.{kind}")
        if value is None:
            if os.path.exists(path):
                os.unlink(path)
        else:
            with open(path, "w") as f:
                f.write(str(value))

    def is_up(self):
        have = set(sh("ip", "netns", "list", capture=True).split())
        return all(ns in have for ns in self.namespaces()) and os.path.exists(os.path.join(self.state_dir, "lab.json"))

    @staticmethod
    def down_prefix(prefix):
        have = [l.split()[0] for l in sh("ip", "netns", "list", capture=True).splitlines() if l.strip()]
        mine = [ns for ns in have if ns.startswith(prefix + "-")]
        for ns in mine:  # processes first (servers, a balancer), then the namespace
            for pid in sh("ip", "netns", "pids", ns, capture=True, check=False).split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except OSError:
                    pass
        for ns in mine:
            sh("ip", "netns", "del", ns, check=False)
        # The EAL runtime directories of the lab's balancers (ecmp: one per balancer).
        if os.path.isdir("/var/run/dpdk"):
            for f in os.listdir("/var/run/dpdk"):
                if f == f"l4lb_lab_{prefix}" or re.fullmatch(rf"l4lb_lab_{re.escape(prefix)}_lb\d+", f):
                    subprocess.run(["rm", "-rf", os.path.join("/var/run/dpdk", f)])
        d = os.path.join(RUN_DIR, prefix)
        if os.path.isdir(d):
            for f in os.listdir(d):
                os.unlink(os.path.join(d, f))
            os.rmdir(d)

    def down(self):
        Lab.down_prefix(self.prefix)

    # -- description and balancer config -----------------------------------------------------
    def extra_clients(self, n, v6=False):
        """n client source addresses (a /24 or /64 on the client's loopback: any address in it
        is local there, so a socket can bind to it)."""
        return [f"2001:db8:21::{i + 2:x}" if v6 else f"198.18.21.{i + 2}" for i in range(n)]

    def describe(self):
        return {"prefix": self.prefix, "topology": self.topology, "ipv6": self.ipv6, "exception": self.exception,
                "namespaces": self.namespaces(), "vip4": self.vip4, "vip6": self.vip6 if self.ipv6 else None,
                "client4": self.client4, "backends4": self.backend4,
                "backends6": self.backend6 if self.ipv6 else [], "state_dir": self.state_dir}

    def lb_mac(self, ifname):
        out = sh("ip", "-j", "link", "show", ifname, ns=self.ns_lb, capture=True)
        return json.loads(out)[0]["address"]

    def config(self, weights=(1, 2, 3), scheduler="maglev", health=None, mode=None, udp=True,
               file_prefix=None, extra_vip="", flow_capacity=65536, on_all_down="drop", extra_backends=(),
               hugepages=False, count=None):
        """A balancer config for this lab. `health`: dict of [vips.health_check] keys (None: http
        GET / every 500 ms). `mode`: forwarding (default nat or dsr by topology)."""
        mode = mode or self.topology
        weights = list(weights) + [1] * (self.n - len(weights))
        if health is None:
            health = {"type": "http", "interval_ms": 500, "timeout_ms": 400, "rise": 2, "fall": 2,
                      "max_latency_ms": 300, "http_path": "/"}

        def tv(v):
            return f'"{v}"' if isinstance(v, str) else str(v).lower() if isinstance(v, bool) else str(v)

        hc = "\n".join(f"{k} = {tv(v)}" for k, v in health.items())
        out = [f'''# Generated by scripts/lib/lab.py for lab "{self.prefix}" ({self.topology}).
[eal]
main_core = 0
worker_cores = [1]
{"hugepages = true" + chr(10) + "in_memory = true" if hugepages else "hugepages = false"}
memory_mb = 512
file_prefix = "{file_prefix or 'l4lb_lab_' + self.prefix}"

[flow_table]
capacity = {flow_capacity}
tcp_established_timeout = 60
''']
        if self.topology == "nat":
            out.append(f'''[[ports]]
name = "wan"
device = "net_af_xdp0,iface={self.wan_if}"
exception_path = "{self.exception}"
ipv4 = "{self.lb_wan4}/24"
gateway4 = "{self.client4}"
''' + (f'ipv6 = "{self.lb_wan6}/64"\ngateway6 = "{self.client6}"\n' if self.ipv6 else ""))
        out.append(f'''[[ports]]
name = "lan"
device = "net_af_xdp1,iface={self.lan_if}"
exception_path = "{self.exception}"
ipv4 = "{self.lb_lan4}/24"
''' + (f'ipv6 = "{self.lb_lan6}/64"\n' if self.ipv6 else ""))
        n = count or self.n  # the first `count` backends of the lab
        vips = [(self.vip4, self.backend4[:n])] + ([(self.vip6, self.backend6[:n])] if self.ipv6 else [])
        for vip, backends in vips:
            protos = [("tcp", 80)] + ([("udp", 5353)] if udp else [])
            for proto, port in protos:
                out.append(f'''[[vips]]
address = "{vip}"
port = {port}
protocol = "{proto}"
scheduler = "{scheduler}"
forwarding = "{mode}"
maglev_table_size = 65537
on_all_down = "{on_all_down}"
''')
                if proto == "tcp":
                    out.append("[vips.health_check]\n" + hc + "\n")
                else:
                    out.append('[vips.health_check]\ntype = "udp"\ninterval_ms = 500\ntimeout_ms = 400\n'
                               'rise = 2\nfall = 2\nudp_payload = "hc"\n')
                for i, b in enumerate(backends):
                    out.append(f'[[vips.backends]]\naddress = "{b}"\nweight = {weights[i]}\n')
                for b in extra_backends:  # addresses with no server (tests)
                    if (":" in b) == (":" in vip):
                        out.append(f'[[vips.backends]]\naddress = "{b}"\nweight = 1\n')
        out.append(extra_vip)
        return "\n".join(out)


# -- running l4lb and clients in the lab ---------------------------------------------------------

REPO_ROOT = os.path.dirname(os.path.dirname(HERE))
CLIENT = os.path.join(REPO_ROOT, "tests", "e2e", "lab_client.py")


def _record(kind, value):
    """Tells tests/integration/run.sh what to clean up if the test process dies."""
    path = os.environ.get("L4LB_IT_CLEANUP_FILE")
    if path:
        with open(path, "a") as f:
            f.write(f"{kind} {value}\n")


def client(lab, *args, timeout=120):
    """Runs tests/e2e/lab_client.py in the client namespace; returns its JSON."""
    out = sh("timeout", str(timeout), "/usr/bin/python3", CLIENT, *map(str, args), ns=lab.ns_client, capture=True)
    return json.loads(out)


class Balancer:
    """l4lb running in the lab's balancer namespace. Log lines are read from its stderr file."""

    def __init__(self, lab, config_text, build_dir=None, ns=None, name=None):
        """`ns`, `name`: the namespace and the file names' stem of one of several balancers
        (ecmp lab); default the lab's only balancer namespace, l4lb.toml, stats.json, l4lb.log."""
        self.lab = lab
        self.ns = ns or lab.ns_lb
        self.dir = lab.state_dir
        self.cfg = os.path.join(self.dir, f"{name or 'l4lb'}.toml")
        self.stats_path = os.path.join(self.dir, f"{name}.stats.json" if name else "stats.json")
        self.log_path = os.path.join(self.dir, f"{name or 'l4lb'}.log")
        self.write_config(config_text)
        m = re.search(r'file_prefix = "([^"]+)"', config_text)
        self.file_prefix = m.group(1) if m else None
        self.proc = None
        self.binary = os.path.join(build_dir or os.environ.get("L4LB_BUILD_DIR", os.path.join(REPO_ROOT, "build")), "l4lb")

    def write_config(self, text):
        tmp = self.cfg + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, self.cfg)

    def start(self, healthy_backends=None, timeout=30.0, env=None):
        """Starts l4lb; waits for "started" and, if given, for that many backends to come up.
        `env`: more environment variables for the daemon (test hooks)."""
        if self.file_prefix:
            _record("prefix", self.file_prefix)
        log = open(self.log_path, "ab")
        pos = log.tell()  # a second daemon in the same lab appends: wait for its own lines
        self.proc = subprocess.Popen(["ip", "netns", "exec", self.ns, self.binary,
                                      "-c", self.cfg, "--stats-file", self.stats_path],
                                     stdout=log, stderr=log, start_new_session=True,
                                     env=dict(os.environ, **env) if env else None)
        _record("pid", self.proc.pid)
        self.wait_log(r"l4lb info: started", pos, timeout=timeout)
        if healthy_backends:
            end = time.monotonic() + timeout
            while len(re.findall(r"health \S+: unknown -> up", self.log()[pos:])) < healthy_backends:
                if time.monotonic() > end:
                    raise AssertionError(f"backends did not come up; log:\n{self.log()[-4000:]}")
                self.check_alive()
                time.sleep(0.05)
        return self

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def check_alive(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"l4lb exited with {self.proc.returncode}; log:\n{self.log()[-4000:]}")

    def wait_log(self, pattern, start=0, timeout=10.0):
        """Waits for `pattern` in the log after offset `start`; returns (match, monotonic time
        at which it was seen; polled every 10 ms)."""
        end = time.monotonic() + timeout
        rx = re.compile(pattern)
        while True:
            m = rx.search(self.log(), start)
            if m:
                return m, time.monotonic()
            self.check_alive()
            if time.monotonic() > end:
                raise AssertionError(f"timed out waiting for /{pattern}/; log tail:\n{self.log()[-3000:]}")
            time.sleep(0.01)

    def log_size(self):
        return len(self.log())

    def reload(self, text=None):
        if text is not None:
            self.write_config(text)
        pos = self.log_size()
        os.kill(self.proc.pid, signal.SIGHUP)  # `ip netns exec` execs l4lb: same pid
        return pos

    def stop(self):
        """SIGINT, exit 0 expected; returns the stats file."""
        if self.proc is None:
            return None
        self.proc.send_signal(signal.SIGINT)
        try:
            rc = self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("l4lb did not stop on SIGINT")
        finally:
            self.proc = None
            if self.file_prefix:
                subprocess.run(["rm", "-rf", f"/var/run/dpdk/{self.file_prefix}"])
        if rc != 0:
            raise AssertionError(f"l4lb exited {rc}; log:\n{self.log()[-3000:]}")
        with open(self.stats_path) as f:
            return json.load(f)

    def kill(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None
        if self.file_prefix:
            subprocess.run(["rm", "-rf", f"/var/run/dpdk/{self.file_prefix}"])


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
    ap.add_argument("--topology", default="nat", choices=["nat", "dsr", "ecmp"])
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
        from ecmp_lab import ecmp_main
        return ecmp_main(a)
    lab = Lab(a.prefix, a.topology, a.ipv6, a.backends or 3, a.exception)
    if a.action == "up":
        lab.up()
        print(json.dumps(lab.describe(), indent=2))
    elif a.action == "down":
        lab.down()
        print(f"lab {a.prefix}: down")
    elif a.action == "config":
        print(lab.config(hugepages=True, file_prefix="l4lb_lab"), end="")
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
