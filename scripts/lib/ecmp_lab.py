"""The ECMP lab: N balancers behind a router that spreads flows over them by ECMP.

  client (P-c) --veth-- router (P-r, BIRD) --veth-- switch (P-sw, bridge) -- balancers P-lb1..N
                                                                        \\-- backends  P-b1..M

Addresses (only 198.18.0.0/15 and 2001:db8::/32; see also
docs/SCALE-OUT.md, "The lab: N balancers behind an ECMP router"):
  segment 198.18.40.0/24, 2001:db8:40::/64: router .1, balancer i .(10+i), backend j .(20+j)
  client net 198.18.41.0/24, 2001:db8:41::/64: router .1, client .10
  VIPs 198.18.42.100, 2001:db8:42::100 (the service) and 198.18.42.101, 2001:db8:42::101 (served by
  the last backend alone: tests fail all of its backends and watch the route go)

Each balancer namespace holds one veth on the segment: l4lb drives it with net_af_xdp and our
XDP program (exception_path = "xdp") passes everything that is not VIP traffic to the
namespace's kernel, where the balancer's BIRD holds a BGP session to the router (and l4lb's
health checks and flow sync run). Backends hold the VIPs on loopback (DSR, as in the dsr lab)
and reply to the client through the router. The router's BIRD installs each VIP as one kernel
route with a next hop per announcing balancer (`merge paths on`), hashed on the 5-tuple
(fib_multipath_hash_policy = 1).

Announcements: with `announce = "static"` each balancer's BIRD announces the VIPs itself (a
static protocol in the file its bird.conf includes); with "l4lb" that file starts empty and
l4lb writes it ([bgp] include_file) and reconfigures BIRD.
"""
import json
import os
import secrets

from balancer_config import BalancerConfig, Vip
from lab_bird import Bird, balancer_conf, router_conf, static_vips_conf
from lab_common import RUN_DIR, Balancer, NetnsLab, sh

SYNC_PORT = 7400


class EcmpLab(NetnsLab):
    topology = "ecmp"

    def __init__(self, prefix="l4lb", balancers=3, ipv6=False, backends=5, announce="static"):
        if not (1 <= balancers <= 9):
            raise ValueError("balancers: 1..9")
        if announce not in ("static", "l4lb"):
            raise ValueError("announce: static or l4lb")
        super().__init__(prefix, ipv6, backends)
        p = prefix
        self.nb, self.announce = balancers, announce
        self.exception = "xdp"
        self.ns_client, self.ns_router, self.ns_sw = f"{p}-c", f"{p}-r", f"{p}-sw"
        self.ns_lbs = [f"{p}-lb{i}" for i in range(1, balancers + 1)]
        self.lb_ifs = [f"{p}l{i}" for i in range(1, balancers + 1)]
        self.router4, self.router6 = "198.18.40.1", "2001:db8:40::1"
        self.rc4, self.rc6 = "198.18.41.1", "2001:db8:41::1"
        self.client4, self.client6 = "198.18.41.10", "2001:db8:41::10"
        self.vip4, self.vip6 = "198.18.42.100", "2001:db8:42::100"
        self.ann4, self.ann6 = "198.18.42.101", "2001:db8:42::101"
        self.lb4 = [f"198.18.40.{10 + i}" for i in range(1, balancers + 1)]
        self.lb6 = [f"2001:db8:40::{10 + i}" for i in range(1, balancers + 1)]
        self.backend4 = [f"198.18.40.{20 + i}" for i in range(1, backends + 1)]
        self.backend6 = [f"2001:db8:40::{20 + i}" for i in range(1, backends + 1)]
        self.router_bird = Bird(self.ns_router, self.path("router-bird.conf"), self.path("router-bird.ctl"),
                                self.path("router-bird.log"))
        self.birds = [Bird(ns, self.path(f"lb{i + 1}-bird.conf"), self.path(f"lb{i + 1}-bird.ctl"),
                           self.path(f"lb{i + 1}-bird.log")) for i, ns in enumerate(self.ns_lbs)]

    def namespaces(self):
        return [self.ns_client, self.ns_router, self.ns_sw] + self.ns_lbs + self.ns_backends

    def include_file(self, i):
        """Balancer i's (0-based) VIP announcements, included by its bird.conf."""
        return self.path(f"lb{i + 1}-vips.conf")

    # -- up ----------------------------------------------------------------------------------
    def up(self):
        if self.is_up():
            return self
        NetnsLab.down_prefix(self.prefix)
        os.makedirs(self.state_dir, exist_ok=True)
        p = self.prefix
        try:
            self._namespaces_and_switch()
            # The router: the segment and the client net; forwards, hashes ECMP on L4.
            self._veth(f"{p}r0", self.ns_router, f"{p}sr", self.ns_sw)
            self._bridge(f"{p}sr")
            self._addr(self.ns_router, f"{p}r0", self.router4, 24, self.router6)
            self._veth(f"{p}rc", self.ns_router, f"{p}c0", self.ns_client)
            self._addr(self.ns_router, f"{p}rc", self.rc4, 24, self.rc6)
            self._addr(self.ns_client, f"{p}c0", self.client4, 24, self.client6)
            for k in ("net.ipv4.ip_forward=1", "net.ipv4.fib_multipath_hash_policy=1",
                      "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0"):
                sh("sysctl", "-qw", k, ns=self.ns_router)
            if self.ipv6:
                for k in ("net.ipv6.conf.all.forwarding=1", "net.ipv6.fib_multipath_hash_policy=1"):
                    sh("sysctl", "-qw", k, ns=self.ns_router)
            self._route(self.ns_client, ("198.18.40.0/24", "198.18.42.0/24"), self.rc4,
                        ("2001:db8:40::/64", "2001:db8:42::/64"), self.rc6)
            # Balancers: one port each on the segment; its kernel side holds the address.
            for i, ns in enumerate(self.ns_lbs):
                self._veth(self.lb_ifs[i], ns, f"{p}sl{i + 1}", self.ns_sw)
                self._bridge(f"{p}sl{i + 1}")
                self._addr(ns, self.lb_ifs[i], self.lb4[i], 24, self.lb6[i])
                self._route(ns, ("198.18.41.0/24",), self.router4, ("2001:db8:41::/64",), self.router6)
            # Backends: VIPs on loopback, never announced by ARP; replies via the router.
            for i, ns in enumerate(self.ns_backends):
                ifname = f"{p}b{i + 1}"
                self._veth(ifname, ns, f"{p}s{i + 1}", self.ns_sw)
                self._bridge(f"{p}s{i + 1}")
                self._addr(ns, ifname, self.backend4[i], 24, self.backend6[i])
                for vip in (self.vip4, self.ann4):
                    sh("ip", "addr", "add", f"{vip}/32", "dev", "lo", ns=ns)
                if self.ipv6:
                    for vip in (self.vip6, self.ann6):
                        sh("ip", "addr", "add", f"{vip}/128", "dev", "lo", ns=ns)
                self._route(ns, ("198.18.41.0/24",), self.router4, ("2001:db8:41::/64",), self.router6)
                for k, v in (("arp_ignore", "1"), ("arp_announce", "2")):
                    sh("sysctl", "-qw", f"net.ipv4.conf.all.{k}={v}", ns=ns)
                    sh("sysctl", "-qw", f"net.ipv4.conf.{ifname}.{k}={v}", ns=ns)
                self.start_server(i)
            self._write_birds()
            self.router_bird.start()
            for i in range(self.nb):
                self.birds[i].start()
            with open(self.path("lab.json"), "w") as f:
                json.dump(self.describe(), f, indent=2)
            self.wait_servers()
        except Exception:
            NetnsLab.down_prefix(self.prefix)
            raise
        return self

    def _route(self, ns, nets4, via4, nets6, via6):
        for net in nets4:
            sh("ip", "route", "add", net, "via", via4, ns=ns)
        if self.ipv6:
            for net in nets6:
                sh("ip", "-6", "route", "add", net, "via", via6, ns=ns)

    def _write_birds(self):
        sessions = []
        for i in range(self.nb):
            sessions.append((f"lb{i + 1}", self.router4, self.lb4[i]))
            if self.ipv6:
                sessions.append((f"lb{i + 1}_6", self.router6, self.lb6[i]))
        with open(self.router_bird.conf, "w") as f:
            f.write(router_conf(self.router4, sessions, "198.18.42.0/24", "2001:db8:42::/64"))
        for i in range(self.nb):
            s = [("router4", self.lb4[i], self.router4)] + ([("router6", self.lb6[i], self.router6)] if self.ipv6 else [])
            with open(self.birds[i].conf, "w") as f:
                f.write(balancer_conf(self.lb4[i], self.include_file(i), s))
            self.write_static_announcement(i, self.announce == "static")

    def write_static_announcement(self, i, on):
        """Balancer i's include file: the VIPs as static routes (on), or nothing (l4lb writes it)."""
        text = static_vips_conf(self.vip4, self.vip6 if self.ipv6 else None) if on else "# written by l4lb\n"
        tmp = self.include_file(i) + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, self.include_file(i))

    # -- balancer control ---------------------------------------------------------------------
    def start_bird(self, i):
        return self.birds[i].start()

    def kill_bird(self, i):
        """SIGKILL balancer i's BIRD (a crash: its kernel closes the BGP connection)."""
        self.birds[i].kill()

    def bird_pids(self, i):
        """Pids of BIRD processes in balancer i's namespace (also after a restart of the lab
        tool: found by namespace, not by our handle)."""
        out = []
        for pid in sh("ip", "netns", "pids", self.ns_lbs[i], capture=True, check=False).split():
            try:
                with open(f"/proc/{pid}/comm") as f:
                    if f.read().strip() == "bird":
                        out.append(int(pid))
            except OSError:
                pass
        return out

    # -- what the router sees -----------------------------------------------------------------
    def nexthops(self, vip):
        """The router's kernel next hops for `vip` (a set of balancer addresses; empty: no route)."""
        v6 = ":" in vip
        out = sh("ip", "-6" if v6 else "-4", "-j", "route", "show", "exact", f"{vip}/{128 if v6 else 32}",
                 ns=self.ns_router, capture=True, check=False)
        hops = set()
        for r in json.loads(out or "[]"):
            if "gateway" in r:
                hops.add(r["gateway"])
            for nh in r.get("nexthops", []):
                if "gateway" in nh:
                    hops.add(nh["gateway"])
        return hops

    def router_routes(self, vip):
        """`birdc show route for VIP all` at the router (text)."""
        return self.router_bird.birdc(f"show route for {vip} all", check=False)[1]

    def router_sessions(self):
        return self.router_bird.established()

    # -- description and balancer configs ------------------------------------------------------
    def describe(self):
        return {"prefix": self.prefix, "topology": "ecmp", "ipv6": self.ipv6, "balancers": self.nb,
                "announce": self.announce, "namespaces": self.namespaces(),
                "vip4": self.vip4, "vip6": self.vip6 if self.ipv6 else None, "client4": self.client4,
                "client6": self.client6 if self.ipv6 else None, "balancers4": self.lb4,
                "balancers6": self.lb6 if self.ipv6 else [], "backends4": self.backend4,
                "backends6": self.backend6 if self.ipv6 else [], "state_dir": self.state_dir,
                "router_bird": self.router_bird.sock, "balancer_birds": [b.sock for b in self.birds]}

    def sync_key(self):
        """The cluster's shared sync key file (0600, 64 hex characters), made once per lab."""
        path = self.path("sync.key")
        os.makedirs(self.state_dir, exist_ok=True)
        if not os.path.exists(path):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32) + "\n")
        return path

    def file_prefix(self, i):
        return f"l4lb_lab_{self.prefix}_lb{i + 1}"

    def control_socket(self, i):
        return self.path(f"lb{i + 1}.sock")

    # The lab's side of BalancerConfig (scripts/lib/balancer_config.py): one net_af_xdp port on
    # the segment, DSR, the VIPs (web :80, echo :7, dns udp :5353, both families) on backends
    # b1..b3 (BalancerConfig.backends) plus its extra_backends, and the announcement VIP (ann :80)
    # on the last backend alone. [sync] has every other balancer as a peer; [bgp] the lab's
    # BIRD. The balancers' workers share one core: with idle_backoff they sleep when idle
    # (busy-polling, each would get a third of it).
    def config_defaults(self):
        return {"backends": 3, "forwarding": "dsr", "memory_mb": 256, "sync": True, "extra_sections": "",
                "health": {"type": "tcp", "interval_ms": 300, "timeout_ms": 250, "rise": 2, "fall": 2}}

    def config_comment(self, i):
        return f'# Generated by scripts/lib/ecmp_lab.py for lab "{self.prefix}" (ecmp), balancer lb{i + 1}.'

    def config_file_prefix(self, i):
        return self.file_prefix(i)

    def config_ports(self, i):
        seg = {"name": "seg", "device": f"net_af_xdp0,iface={self.lb_ifs[i]}", "exception_path": "xdp",
               "ipv4": f"{self.lb4[i]}/24", "gateway4": self.router4}
        if self.ipv6:
            seg.update(ipv6=f"{self.lb6[i]}/64", gateway6=self.router6)
        return [seg]

    def balancer_name(self, i):
        return f"lb{i + 1}"

    def sync_section(self, i):
        if self.nb == 1:  # no peer to sync with
            return None
        return {"enabled": True, "listen": f"{self.lb4[i]}:{SYNC_PORT}",
                "peers": [f"{a}:{SYNC_PORT}" for k, a in enumerate(self.lb4) if k != i],
                "key_file": self.sync_key(), "announce_interval": 2}

    def bgp_defaults(self, i):
        keys = {"bird_socket": self.birds[i].sock, "include_file": self.include_file(i),
                "next_hop4": self.lb4[i], "withdraw_when_down": True, "drain_time": 2}
        if self.ipv6:
            keys["next_hop6"] = self.lb6[i]
        return keys

    def config_vips(self, cfg, i):
        udp_check = {"type": "udp", "interval_ms": 300, "timeout_ms": 250, "rise": 2, "fall": 2, "udp_payload": "hc"}
        services = [("web", 80, "tcp", cfg.health), ("echo", 7, "tcp", cfg.health)]
        if cfg.udp:
            services.append(("dns", 5353, "udp", udp_check))
        fams = [(4, self.vip4, self.ann4, self.backend4)] + ([(6, self.vip6, self.ann6, self.backend6)] if self.ipv6 else [])
        out = []
        for fam, vip, ann, addrs in fams:
            for name, port, proto, check in services:
                out.append(Vip(vip, port, proto, cfg.forwarding, check, cfg.backend_list(self, addrs, fam == 6),
                               name=f"{name}{fam}", scheduler=cfg.scheduler, on_all_down=cfg.on_all_down))
            out.append(Vip(ann, 80, "tcp", cfg.forwarding, cfg.health, [(addrs[self.n - 1], None)], name=f"ann{fam}",
                           maglev_table_size=None, compact=True))
        return out


def ecmp_main(a):
    """lab.py's actions for --topology ecmp (argparse namespace `a`)."""
    announce = "static" if a.static_announce else "l4lb"
    nb, ipv6, nbe = a.balancers, a.ipv6, a.backends or 5
    try:  # status and config of a lab that is up: its own shape
        with open(os.path.join(RUN_DIR, a.prefix, "lab.json")) as f:
            d = json.load(f)
        if a.action != "up":
            nb, ipv6, nbe, announce = d["balancers"], d["ipv6"], len(d["backends4"]), d["announce"]
    except (OSError, ValueError, KeyError):
        pass
    lab = EcmpLab(a.prefix, nb, ipv6, nbe, announce)
    cfg = BalancerConfig(bgp=None if announce == "static" else {}, sync=True, cluster=True, idle_backoff=True)
    if a.action == "down":
        lab.down()
        print(f"lab {a.prefix}: down")
    elif a.action == "config":
        for i in range(lab.nb):
            print(f"### lb{i + 1}\n" + cfg.toml(lab, i), end="")
    elif a.action == "up":
        lab.up()
        if a.start:
            for i in range(lab.nb):
                Balancer(lab, cfg.toml(lab, i), build_dir=a.build, ns=lab.ns_lbs[i], name=f"lb{i + 1}").start()
        print(json.dumps(lab.describe(), indent=2))
    else:
        if not lab.is_up():
            print(f"lab {a.prefix}: down")
            return 3
        print(json.dumps(lab.describe(), indent=2))
        print("router BGP sessions established:", " ".join(sorted(lab.router_sessions())) or "none")
        for vip in [lab.vip4, lab.ann4] + ([lab.vip6, lab.ann6] if lab.ipv6 else []):
            print(f"router route {vip}: next hops {' '.join(sorted(lab.nexthops(vip))) or 'none'}")
    return 0
