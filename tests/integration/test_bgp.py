"""VIP announcement through a real BIRD 2 (docs/SCALE-OUT.md "BGP").

Two network namespaces joined by a veth: "balancer" runs the BIRD that l4lb drives (it includes
l4lb's bgp.include_file and exports the l4lb_vips4/6 protocols over BGP), "router" runs a BIRD
that peers with it (one IPv4 and one IPv6 session) and only imports. Neither BIRD has a kernel
protocol: nothing reaches any kernel table, and the default namespace is never touched. l4lb
itself runs in the default namespace on net_pcap ports; it reaches BIRD's control socket
through the file system.

What is checked is what the ROUTER learns over BGP, so the whole chain (include file, configure,
static protocol, BGP export) is exercised:
- l4lb started before BIRD: BIRD unreachable is shown, retried, and the VIPs appear once BIRD runs;
- drain-balancer withdraws both VIPs at the router, undrain-balancer brings them back;
- a VIP whose only backend is drained (not usable) is withdrawn alone, and comes back;
- SIGTERM: the routes disappear at the router well before the process exits, and the process
  exits only after bgp.drain_time;
- negative control: SIGKILL (no clean stop) leaves the routes at the router, so the withdrawal
  above is l4lb's doing and not BIRD noticing anything.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest
import urllib.request

import l4lb_harness as h
from test_ctl import ctl, ctl_json, free_port, scrape

VIP4, VIP6 = "198.18.42.100", "2001:db8:42::100"
BE4, BE6 = "198.18.2.11", "2001:db8:2::11"
DRAIN_TIME = 3.0
PID = os.getpid()
NS_B, NS_R = f"l4lb-it-bgpb{PID}", f"l4lb-it-bgpr{PID}"
VETH_B, VETH_R = f"l4bgb{PID % 100000}", f"l4bgr{PID % 100000}"


def sh(*args, check=True):
    r = subprocess.run(list(args), capture_output=True, text=True, timeout=30)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(args)}: exit {r.returncode}: {r.stdout}{r.stderr}")
    return r.stdout


BALANCER_BIRD = """
router id 198.18.40.11;
protocol device {{ }}
include "{include}";
protocol bgp router4 {{
  local 198.18.40.11 as 65011;
  neighbor 198.18.40.1 as 65000;
  connect delay time 1; connect retry time 1; error wait time 1, 2;
  ipv4 {{ import none; export where proto = "l4lb_vips4"; }};
}}
protocol bgp router6 {{
  local 2001:db8:40::11 as 65011;
  neighbor 2001:db8:40::1 as 65000;
  connect delay time 1; connect retry time 1; error wait time 1, 2;
  ipv6 {{ import none; export where proto = "l4lb_vips6"; }};
}}
"""

ROUTER_BIRD = """
router id 198.18.40.1;
protocol device { }
protocol bgp lb4 {
  local 198.18.40.1 as 65000;
  neighbor 198.18.40.11 as 65011;
  connect delay time 1; connect retry time 1; error wait time 1, 2;
  ipv4 { import all; export none; };
}
protocol bgp lb6 {
  local 2001:db8:40::1 as 65000;
  neighbor 2001:db8:40::11 as 65011;
  connect delay time 1; connect retry time 1; error wait time 1, 2;
  ipv6 { import all; export none; };
}
"""


def wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)



def since_seconds(t):
    """BIRD's "since" column (HH:MM:SS.mmm) as seconds of the day."""
    h, m, sec = t.split(":")
    return int(h) * 3600 + int(m) * 60 + float(sec)

class Bird:
    def __init__(self, ns, tmp, name, text):
        self.ns = ns
        self.conf = os.path.join(tmp, f"{name}.conf")
        self.sock = os.path.join(tmp, f"{name}.ctl")
        self.pidfile = os.path.join(tmp, f"{name}.pid")
        with open(self.conf, "w") as f:
            f.write(text)
        self.pid = None

    def start(self):
        sh("ip", "netns", "exec", self.ns, "bird", "-c", self.conf, "-s", self.sock, "-P", self.pidfile)

        # The daemonized BIRD may write its pid file a moment after the parent returns.
        def pid():
            try:
                with open(self.pidfile) as f:
                    return int(f.read().strip())
            except (OSError, ValueError):
                return None
        self.pid = wait_for(pid, 5, f"{self.pidfile}")
        h._record("birdpid", self.pid)

    def stop(self):
        if self.pid is None:
            return
        try:
            os.kill(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        for _ in range(100):
            if not os.path.exists(f"/proc/{self.pid}"):
                break
            time.sleep(0.05)
        else:
            os.kill(self.pid, signal.SIGKILL)
        self.pid = None

    def routes(self):
        """The prefixes in BIRD's tables (all protocols)."""
        out = sh("birdc", "-s", self.sock, "show", "route", check=False)
        return {line.split()[0] for line in out.splitlines() if line[:1].isdigit() and "/" in line.split()[0]}


class BgpDaemon(h.DaemonProcess):
    """l4lb on net_pcap ports (no traffic) with [bgp] pointing at the balancer BIRD."""

    def __init__(self, tmp, include, bird_sock, drain_time=DRAIN_TIME, web6_check="", tables="", netns=None):
        """`web6_check`: lines inside web6's backend (a [vips.backends.health_check] table);
        `tables`: further top-level tables, before [bgp]; `netns`: run l4lb in that namespace
        (its health checks then leave by that namespace's routes only)."""
        self.tmp = tmp
        self.prefix = f"l4lb_it_{PID}_bgp{next(h._run_ids)}"
        self.sock = os.path.join(tmp, f"{self.prefix}.sock")
        self.metrics_port = free_port()
        ports = [h.Port("client", "02:00:00:00:00:01", ipv4="198.18.0.1/24", ipv6="2001:db8::1/64", rx=[]),
                 h.Port("server", "02:00:00:00:00:02", ipv4="198.18.2.1/24", ipv6="2001:db8:2::1/64", rx=[])]
        for p in ports:
            h.write_pcap(os.path.join(tmp, f"{p.name}.in.pcap"), [])
        body = h.config_text("bgp_daemon.toml", VIP4=VIP4, BE4=BE4, VIP6=VIP6, BE6=BE6, sock=self.sock,
                             metrics_port=self.metrics_port, bird_sock=bird_sock, include=include,
                             drain_time=drain_time, web6_check=web6_check, tables=tables)
        self.cfg = os.path.join(tmp, f"{self.prefix}.toml")
        self.text = h.make_config(ports, body, self.prefix, tmp)
        self.write()
        self.err_path = os.path.join(tmp, f"{self.prefix}.log")
        self.launch(wrap=["ip", "netns", "exec", netns] if netns else [])  # ip execs l4lb: the same pid

    def write(self, extra_bgp=""):
        """The config file, with `extra_bgp` lines appended to [bgp] (the last table)."""
        with open(self.cfg, "w") as f:
            f.write(self.text + extra_bgp)


@unittest.skipUnless(shutil.which("bird") and shutil.which("birdc"), "bird2 is not installed")
class BgpTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="l4lb_it_")
        h._record("tmpdir", cls.tmp)
        os.chmod(cls.tmp, 0o755)
        cls.include = os.path.join(cls.tmp, "bird-vips.conf")
        for ns in (NS_B, NS_R):
            h._record("netns", ns)
        try:
            sh("ip", "netns", "add", NS_B)
            sh("ip", "netns", "add", NS_R)
            sh("ip", "link", "add", VETH_B, "netns", NS_B, "type", "veth", "peer", "name", VETH_R, "netns", NS_R)
            for ns, dev, a4, a6 in ((NS_B, VETH_B, "198.18.40.11/24", "2001:db8:40::11/64"),
                                    (NS_R, VETH_R, "198.18.40.1/24", "2001:db8:40::1/64")):
                sh("ip", "-n", ns, "addr", "add", a4, "dev", dev)
                sh("ip", "-n", ns, "addr", "add", a6, "dev", dev, "nodad")
                sh("ip", "-n", ns, "link", "set", dev, "up")
                sh("ip", "-n", ns, "link", "set", "lo", "up")
            cls.bird = Bird(NS_B, cls.tmp, "balancer", BALANCER_BIRD.format(include=cls.include))
            cls.router = Bird(NS_R, cls.tmp, "router", ROUTER_BIRD)
        except Exception:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        for b in ("bird", "router"):
            if hasattr(cls, b):
                getattr(cls, b).stop()
        for ns in (NS_B, NS_R):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def router_sessions(self):
        """{protocol: (state, since, info)} of the router's BGP protocols."""
        out = sh("birdc", "-s", self.router.sock, "show", "protocols")
        rows = {}
        for line in out.splitlines():
            f = line.split()
            if len(f) >= 6 and f[1] == "BGP":
                rows[f[0]] = (f[3], f[4], " ".join(f[5:]))
        self.assertEqual(set(rows), {"lb4", "lb6"}, out)
        self.assertTrue(all(v[2].startswith("Established") for v in rows.values()), out)
        return rows

    def at_router(self):
        return self.router.routes() & {f"{VIP4}/32", f"{VIP6}/128"}

    def test_1_announce_drain_withdraw_stop(self):
        # l4lb first: BIRD is not running, so the include file exists before BIRD reads it.
        d = BgpDaemon(self.tmp, self.include, self.bird.sock)
        try:
            c = wait_for(lambda: (lambda j: j if j["bgp"]["bird_errors"] > 0 else None)(ctl_json(d, "cluster")), 10,
                         "a BIRD error in cluster")
            self.assertEqual(c["name"], "lb-it")
            self.assertFalse(c["bgp"]["bird_reachable"])
            self.assertIn(self.bird.sock, c["bgp"]["last_error"])
            self.assertEqual([(a["vip"], a["prefix"], a["announced"], a["wanted"]) for a in c["announcements"]],
                             [("web", f"{VIP4}/32", False, True), ("web6", f"{VIP6}/128", False, True)])
            with open(self.include) as f:
                text = f.read()
            self.assertIn(f"route {VIP4}/32 blackhole;", text)
            self.assertIn(f"route {VIP6}/128 blackhole;", text)
            rc, out, _ = ctl(d, "cluster")
            self.assertEqual(rc, 0)
            self.assertIn("NOT reachable", out)

            # BIRD comes up: it reads the file itself, and l4lb's next retry (back-off) confirms it.
            self.bird.start()
            self.router.start()
            wait_for(lambda: self.at_router() == {f"{VIP4}/32", f"{VIP6}/128"}, 20, "both VIPs at the router")
            self.assertEqual(self.bird.routes(), {f"{VIP4}/32", f"{VIP6}/128"})
            c = wait_for(lambda: (lambda j: j if j["bgp"]["in_sync"] and len(j["bgp"]["protocols"]) == 2
                                  and all(p["session_up"] for p in j["bgp"]["protocols"]) else None)(ctl_json(d, "cluster")),
                         20, "cluster: in sync, both sessions up")
            self.assertTrue(c["bgp"]["bird_reachable"])
            self.assertEqual(sorted(p["name"] for p in c["bgp"]["protocols"]), ["router4", "router6"])
            self.assertEqual([a["announced"] for a in c["announcements"]], [True, True])
            self.assertEqual(c["announcements"][0]["reason"], "forwarding, 1 healthy backend")
            self.assertIsNone(c["sync"])
            self.assertFalse(c["balancer_drained"])
            rc, out, _ = ctl(d, "cluster")
            self.assertEqual(rc, 0)
            self.assertIn("balancer:  lb-it\n", out)
            self.assertRegex(out, r"router4\s+up\s+\S+\s+Established")
            self.assertRegex(out, rf"web6\s+{VIP6}/128\s+yes\s+forwarding")
            _, _, metrics = scrape(d.metrics_port)
            self.assertIn('l4lb_vip_announced{vip="web"} 1', metrics)
            self.assertIn('l4lb_vip_announced{vip="web6"} 1', metrics)
            self.assertIn("l4lb_balancer_drained 0", metrics)
            self.assertIn('l4lb_bgp_session_up{protocol="router4"} 1', metrics)
            self.assertRegex(metrics, r"l4lb_bird_errors_total [1-9]")

            # drain-balancer: both withdrawn at the router; undrain: both back. BIRD is only
            # reconfigured: the BGP sessions stay up throughout (their "since" does not move).
            sessions_before = self.router_sessions()
            t0 = time.monotonic()
            r = ctl_json(d, "drain-balancer")
            self.assertTrue(r["balancer_drained"])
            self.assertTrue(r["in_sync"])
            wait_for(lambda: not self.at_router(), 5, "drain-balancer: VIPs gone at the router")
            print(f"\n  drain-balancer -> withdrawn at the router in {time.monotonic() - t0:.2f} s", end="")
            self.assertEqual(self.bird.routes(), set())
            c = ctl_json(d, "cluster")
            self.assertTrue(c["balancer_drained"])
            self.assertEqual(c["announcements"][0]["reason"], "withdrawn: balancer drained (l4lbctl drain-balancer)")
            self.assertIn("DRAINED", ctl(d, "cluster")[1])
            self.assertIn("l4lb_balancer_drained 1", scrape(d.metrics_port)[2])
            self.assertIn('l4lb_vip_announced{vip="web"} 0', scrape(d.metrics_port)[2])
            r = ctl_json(d, "drain-balancer")
            self.assertFalse(r["changed"])
            ctl_json(d, "undrain-balancer")
            wait_for(lambda: self.at_router() == {f"{VIP4}/32", f"{VIP6}/128"}, 5, "undrain-balancer: VIPs back")
            # Same sessions: state and info equal, and the same "since" (BIRD prints it to the ms
            # and it jitters by 1 ms between two reads: 17:40:57.999 then 17:40:58.000). A
            # session that went down and came back would be at least a connect delay (1 s) later.
            sessions_after = self.router_sessions()
            self.assertEqual(set(sessions_after), set(sessions_before))
            for name, (state, since, info) in sessions_after.items():
                state0, since0, info0 = sessions_before[name]
                self.assertEqual((state, info), (state0, info0), name)
                self.assertLess(abs(since_seconds(since) - since_seconds(since0)), 0.5, (name, since0, since))

            # web6's only backend drained: web6 alone is withdrawn; undrain brings it back.
            ctl_json(d, "drain", f"web6/{BE6}")
            wait_for(lambda: self.at_router() == {f"{VIP4}/32"}, 5, "web6 withdrawn, web kept")
            c = ctl_json(d, "cluster")
            self.assertEqual(c["announcements"][1]["reason"], "withdrawn: no healthy backend (bgp.withdraw_when_down)")
            ctl_json(d, "undrain", f"web6/{BE6}")
            wait_for(lambda: self.at_router() == {f"{VIP4}/32", f"{VIP6}/128"}, 5, "web6 back")

            # A reload that narrows bgp.announce withdraws web6; the next one brings it back.
            d.write('announce = ["web"]\n')
            ctl_json(d, "reload")
            wait_for(lambda: self.at_router() == {f"{VIP4}/32"}, 5, "reload: web6 no longer announced")
            self.assertEqual(ctl_json(d, "cluster")["announcements"][1]["reason"], "not in bgp.announce")
            d.write()
            ctl_json(d, "reload")
            wait_for(lambda: self.at_router() == {f"{VIP4}/32", f"{VIP6}/128"}, 5, "reload: web6 back")

                        # Clean stop: withdrawn at once, the process keeps running for drain_time.
            t0 = time.monotonic()
            d.proc.send_signal(signal.SIGTERM)
            wait_for(lambda: not self.at_router(), 5, "SIGTERM: VIPs gone at the router")
            t_withdrawn = time.monotonic() - t0
            self.assertIsNone(d.proc.poll(), "l4lb exited before drain_time")
            c = ctl_json(d, "cluster")  # still serving the API while draining
            self.assertEqual(c["announcements"][0]["reason"], "withdrawn: l4lb is stopping (bgp.drain_time)")
            wait_for(lambda: "bgp.drain_time over: stopping" in d.log() or d.proc.poll() is not None,
                     DRAIN_TIME + 10, "the end of drain_time")
            t_over = time.monotonic() - t0
            d.proc.wait(10)
            t_exit = time.monotonic() - t0
            print(f"\n  SIGTERM -> withdrawn at the router in {t_withdrawn:.2f} s, drain over after {t_over:.2f} s, "
                  f"exit after {t_exit:.2f} s (drain_time {DRAIN_TIME} s)", end="")
            self.assertEqual(d.proc.returncode, 0, d.log())
            self.assertLess(t_withdrawn, 1.5)
            # The control loop ends the drain on time; what follows (workers, ports, EAL) is the
            # ordinary shutdown, whose length depends on the machine's load.
            self.assertGreaterEqual(t_over, DRAIN_TIME)
            self.assertLess(t_over, DRAIN_TIME + 1.5)
            self.assertIn("VIPs withdrawn, forwarding for bgp.drain_time 3000 ms", d.log())
            self.assertIn("bgp.drain_time over: stopping", d.log())
            with open(self.include) as f:
                self.assertNotIn("route ", f.read())
        finally:
            d.stop()

    def test_2_sigkill_leaves_routes(self):
        """Negative control: without a clean stop nothing withdraws the VIPs (BIRD's own
        session stays up), so test_1's withdrawal on SIGTERM is l4lb's doing."""
        if self.bird.pid is None:
            self.bird.start()
            self.router.start()
        d = BgpDaemon(self.tmp, self.include, self.bird.sock)
        try:
            wait_for(lambda: self.at_router() == {f"{VIP4}/32", f"{VIP6}/128"}, 20, "both VIPs at the router")
            os.killpg(d.proc.pid, signal.SIGKILL)
            d.proc.wait(5)
            time.sleep(DRAIN_TIME + 1)
            self.assertEqual(self.at_router(), {f"{VIP4}/32", f"{VIP6}/128"})
        finally:
            d.stop()

    # The wiring of the cluster's safety rules in the daemon (their decisions are unit-tested in
    # announcer_test.cc): what the include file BIRD reads says, from start-up on. These daemons
    # run in the balancer namespace, whose only routes are its veth's: a backend outside them is
    # unreachable, so its health check fails at once, and no probe leaves the namespace.

    BOTH = {f"{VIP4}/32", f"{VIP6}/128"}

    def include_routes(self):
        try:
            with open(self.include) as f:
                return set(re.findall(r"^\s*route (\S+) blackhole;", f.read(), re.M))
        except FileNotFoundError:
            return set()

    def sync_table(self, announce_interval):
        key = os.path.join(self.tmp, "sync.key")
        with open(os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            f.write(bytes(range(32)).hex())
        return (f'\n[sync]\nlisten = "127.0.0.1:{free_port()}"\npeers = ["127.0.0.1:{free_port()}"]\n'
                f"key_file = {h.toml_str(key)}\nannounce_interval = {announce_interval}\n")

    def watch_start(self, want, bound, **daemon):
        """Starts a daemon (no stale include file: a SIGKILLed one may have left routes) and polls
        its include file and `cluster` reasons until the routes are `want`. Returns the daemon,
        the seconds from its "started" line to the routes, and every (reasons, routes) seen."""
        if os.path.exists(self.include):
            os.unlink(self.include)
        d = BgpDaemon(self.tmp, self.include, self.bird.sock, netns=NS_B, **daemon)
        t0 = time.monotonic()  # BgpDaemon returned: its log has "started:" (forwarding begins)
        seen = []
        try:
            while True:
                reasons = tuple(a["reason"] for a in ctl_json(d, "cluster")["announcements"])
                routes = self.include_routes()
                seen.append((reasons, routes))
                if routes == want:
                    return d, time.monotonic() - t0, seen
                if time.monotonic() - t0 > bound:
                    raise AssertionError(f"no routes {want} after {bound} s: {seen[-1]}\n{d.log()}")
                time.sleep(0.05)
        except BaseException:
            d.stop()
            raise

    def test_3_sync_warm_up_holds_the_announcement(self):
        """With [sync], a starting balancer announces nothing for announce_interval + 1 s: it
        learns its peers' flows first, so flows ECMP hands it keep their backends."""
        hold = 2 + 1  # announce_interval = 2 s, + 1 s
        d, took, seen = self.watch_start(self.BOTH, hold + 5, tables=self.sync_table(2))
        try:
            print(f"\n  [sync] on: routes in the include file {took:.2f} s after start (hold {hold} s)", end="")
            reasons, routes = seen[0]
            self.assertEqual(routes, set(), seen[0])
            for r in reasons:
                self.assertRegex(r, r"^withdrawn: learning the peers' flows first \(sync warm-up, \d+ ms left\)$")
            self.assertIn("bgp: announcing after the flow sync warm-up (3000 ms)", d.log())
            self.assertTrue(all(not routes for reasons, routes in seen if "sync warm-up" in reasons[0]), seen)
            self.assertGreaterEqual(took, hold - 0.5)
            self.assertLess(took, hold + 3)
            self.assertEqual(ctl_json(d, "cluster")["announcements"][0]["reason"], "forwarding, 1 healthy backend")
        finally:
            d.stop()

    def test_4_no_warm_up_without_sync(self):
        """Negative control: the same start without [sync] announces at once, so test_3's hold
        is the sync warm-up's doing."""
        d, took, seen = self.watch_start(self.BOTH, 5)
        try:
            print(f"\n  [sync] off: routes in the include file {took:.2f} s after start", end="")
            self.assertLess(took, 1.0)
            self.assertFalse(any("sync warm-up" in r for reasons, _ in seen for r in reasons), seen)
        finally:
            d.stop()

    WEB6_DOWN = """[vips.backends.health_check]
type = "tcp"
port = 80
interval_ms = 100
timeout_ms = 100
rise = 1
fall = 1
"""

    def test_5_no_healthy_backend_withdraws(self):
        """A health check that fails takes web6's only backend down: web6 is withdrawn, web
        stays; with withdraw_when_down = false (negative control) both stay announced."""
        d, took, seen = self.watch_start({f"{VIP4}/32"}, 10, web6_check=self.WEB6_DOWN)
        try:
            b = ctl_json(d, "backends", "web6")["backends"][0]
            self.assertEqual(b["state"], "unhealthy", b)
            self.assertEqual(ctl_json(d, "cluster")["announcements"][1]["reason"],
                             "withdrawn: no healthy backend (bgp.withdraw_when_down)")
            time.sleep(0.5)  # still so: not a moment between two updates
            self.assertEqual(self.include_routes(), {f"{VIP4}/32"})
        finally:
            d.stop()
        d, took, seen = self.watch_start(self.BOTH, 10, web6_check=self.WEB6_DOWN, drain_time="0\nwithdraw_when_down = false")
        try:
            b = ctl_json(d, "backends", "web6")["backends"][0]
            self.assertEqual(b["state"], "unhealthy", b)
            self.assertEqual(ctl_json(d, "cluster")["announcements"][1]["reason"],
                             "forwarding (no healthy backend; withdraw_when_down = false)")
        finally:
            d.stop()


if __name__ == "__main__":
    unittest.main()
