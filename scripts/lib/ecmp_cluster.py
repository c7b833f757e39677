"""N l4lb balancers in the ECMP lab (scripts/lib/ecmp_lab.py), driven together: start, SIGKILL
(l4lb and its BIRD, as a crashed box), reload, drain; what the router sees; and the scale-out
scenario shared by tests/e2e/test_scaleout.py and scripts/demo.sh --scale-out:

  long-lived TCP connections (echo, every byte checked) and UDP flows through the VIPs, then
  within one second: the survivors get a new backend (reload) and drain one of the pool, and one
  balancer is killed; traffic goes on for `after` seconds.

The config changes come first and the kill last (all within FAULT_WINDOW): the flows the kill
moves then meet survivors whose Maglev table already differs from the one that placed them, so
only flow state (sync) keeps them on their backend. Killed first, the moved flows would reach
the survivors before the change and be pinned by their own new entries, and the scenario would
not test sync at all.
"""
import json
import os
import re
import signal
import subprocess
import threading
import time

from balancer_config import BalancerConfig
from lab_common import CLIENT, Balancer

ECHO_PORT, UDP_PORT = 7, 5353
FAULT_WINDOW = 1.0


class Cluster:
    def __init__(self, lab, build_dir, sync=True, bgp=True, pool=3, health=None):
        """`bgp`: l4lb announces the VIPs through its BIRD ([bgp]); False: the lab's static
        announcement (the lab must be up with announce="static")."""
        self.lab, self.build, self.sync, self.bgp, self.pool, self.health = lab, build_dir, sync, bgp, pool, health
        self.extra = [[] for _ in range(lab.nb)]
        self.lbs = [None] * lab.nb

    # -- configs and processes ------------------------------------------------------------------
    def config(self, i):
        return BalancerConfig(backends=self.pool, extra_backends=self.extra[i], sync=self.sync,
                              bgp={} if self.bgp else None, health=self.health, cluster=True,
                              idle_backoff=True).toml(self.lab, i)

    def healthy_count(self, i):
        """Backend checks balancer i must see up before it serves: every VIP's backends."""
        return len(re.findall(r"\[\[vips\.backends\]\]", self.config(i)))

    def start(self, i, timeout=30.0):
        """Balancer i (0-based): l4lb and its BIRD; waits for every backend up. With [bgp], BIRD
        first, with an empty include file (a file left by a killed l4lb would announce the VIPs
        before this one forwards), and l4lb fills it; with the static announcement, l4lb first."""
        bird = self.lab.birds[i]
        if self.bgp and not bird.alive():
            self.lab.write_static_announcement(i, False)
            bird.start()
        self.lbs[i] = Balancer(self.lab, self.config(i), build_dir=self.build, ns=self.lab.ns_lbs[i], name=f"lb{i + 1}")
        self.lbs[i].start(healthy_backends=self.healthy_count(i), timeout=timeout)
        if not self.bgp and not bird.alive():
            self.lab.write_static_announcement(i, True)
            bird.start()
        return self.lbs[i]

    def start_all(self, timeout=30.0):
        """Starts every balancer; returns once the router routes every VIP to all of them."""
        for i in range(self.lab.nb):
            self.start(i, timeout)
        for vip in self.vips():
            self.wait_nexthops(vip, range(self.lab.nb), timeout=timeout)

    def kill(self, i):
        """SIGKILL l4lb and BIRD of balancer i, back to back."""
        lb, bird = self.lbs[i], self.lab.birds[i]
        pids = [p.pid for p in (lb.proc if lb else None, bird.proc) if p is not None and p.poll() is None]
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        if lb:
            lb.kill()  # reaps, removes its EAL runtime directory
        bird.kill()
        self.lbs[i] = None

    def stop(self, i):
        """SIGINT (a clean stop: with [bgp], withdraw and drain first); returns the stats."""
        lb, self.lbs[i] = self.lbs[i], None
        return lb.stop() if lb else None

    def stop_all(self):
        """Stops every l4lb (killed if it does not stop) and BIRD; the lab stays."""
        for i in range(self.lab.nb):
            lb, self.lbs[i] = self.lbs[i], None
            if lb is not None:
                try:
                    lb.stop()
                except AssertionError:
                    pass
                finally:
                    lb.kill()
            self.lab.birds[i].kill()

    def alive(self):
        return [i for i, lb in enumerate(self.lbs) if lb is not None]

    def reload(self, i):
        """Writes balancer i's config (self.extra) and sends SIGHUP; returns the log offset."""
        return self.lbs[i].reload(self.config(i))

    def wait_reloaded(self, i, pos, timeout=10.0):
        m, _ = self.lbs[i].wait_log(r"reload (applied|rejected|refused)", pos, timeout=timeout)
        if m.group(1) != "applied":
            raise AssertionError(f"lb{i + 1}: reload {m.group(1)}: {self.lbs[i].log()[pos:][-2000:]}")

    def ctl(self, i, *args, check=True):
        p = subprocess.run([os.path.join(self.build, "l4lbctl"), "-s", self.lab.control_socket(i)] + list(map(str, args)),
                           capture_output=True, text=True, timeout=30)
        if check and p.returncode != 0:
            raise AssertionError(f"lb{i + 1}: l4lbctl {' '.join(map(str, args))}: exit {p.returncode}: {p.stdout}{p.stderr}")
        return p.stdout

    def counters(self, i):
        """Balancer i's worker counters (and drops), summed over its workers."""
        d = json.loads(self.ctl(i, "stats", "--json"))
        out = {}
        for w in d["workers"]:
            for group in ("counters", "drops"):
                for k, v in w.get(group, {}).items():
                    out[k] = out.get(k, 0) + v
        return out

    def drain(self, i, backend):
        self.ctl(i, "drain", backend)

    # -- the router ------------------------------------------------------------------------------
    def wait_nexthops(self, vip, want, timeout=15.0):
        """Waits until the router's kernel route for `vip` has exactly the balancers `want`
        (indexes) as next hops; returns the monotonic time it was seen (polled every 10 ms)."""
        want = {self.lab.lb6[i] if ":" in vip else self.lab.lb4[i] for i in want}
        end = time.monotonic() + timeout
        while True:
            have = self.lab.nexthops(vip)
            if have == want:
                return time.monotonic()
            if time.monotonic() > end:
                raise AssertionError(f"router route {vip}: next hops {sorted(have)}, expected {sorted(want)}\n"
                                     f"{self.lab.router_routes(vip)}")
            time.sleep(0.01)

    def vips(self):
        return [self.lab.vip4] + ([self.lab.vip6] if self.lab.ipv6 else [])


# -- traffic ----------------------------------------------------------------------------------------

class Traffic:
    """lab_client.py longlived in the client namespace, in the background."""

    def __init__(self, lab, n_per_vip, seconds, udp_per_vip=10):
        self.lab = lab
        self.ready = os.path.join(lab.state_dir, f"ready.{time.monotonic_ns()}")
        vips = ",".join([lab.vip4] + ([lab.vip6] if lab.ipv6 else []))
        self.cmd = ["ip", "netns", "exec", lab.ns_client, "timeout", str(int(seconds + 60)), "/usr/bin/python3", CLIENT,
                    "longlived", vips, str(ECHO_PORT), str(n_per_vip), str(seconds), self.ready, str(UDP_PORT),
                    str(udp_per_vip)]
        self.out, self.err = None, None
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.th = threading.Thread(target=self._collect)
        self.th.start()

    def _collect(self):
        self.out, self.err = self.proc.communicate()

    def wait_ready(self, timeout=30.0):
        end = time.monotonic() + timeout
        while not os.path.exists(self.ready):
            if self.proc.poll() is not None or time.monotonic() > end:
                self.th.join(5)
                raise AssertionError(f"traffic did not start: {self.err}")
            time.sleep(0.02)
        with open(self.ready) as f:
            return json.load(f)

    def result(self, timeout=120.0):
        self.th.join(timeout)
        if self.th.is_alive():
            self.kill()
            raise AssertionError("traffic did not end")
        if self.proc.returncode != 0:
            raise AssertionError(f"traffic client exited {self.proc.returncode}: {self.err[-2000:]}")
        return json.loads(self.out)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.th.join(5)


def summarize(res, t_fault=None):
    """Counts from a longlived result: TCP connections by outcome, bytes, UDP."""
    tcp, udp = res["tcp"], res["udp"]
    errs = {}
    for r in tcp:
        if r["error"]:
            errs[r["error"]] = errs.get(r["error"], 0) + 1
    return {
        "connections": len(tcp),
        "reset": errs.get("reset", 0) + errs.get("closed", 0),
        "stalled": errs.get("stall", 0),
        "mismatch": errs.get("mismatch", 0),
        "other": errs.get("other", 0),
        "failed": sum(errs.values()),
        "bytes_sent": sum(r["sent"] for r in tcp),
        "bytes_verified": sum(r["verified"] for r in tcp),
        "unverified_ok": sum(1 for r in tcp if not r["error"] and r["verified"] != r["sent"]),
        "max_exchange_s": max((r["max_s"] for r in tcp), default=0.0),
        "min_exchanges": min((r["exchanges"] for r in tcp), default=0),
        "udp_flows": len(udp),
        "udp_replies": sum(r["replies"] for r in udp),
        "udp_lost": sum(r["lost"] for r in udp),
        "udp_backend_changes": sum(r["changes"] for r in udp),
        "errors_after_fault": sum(1 for r in tcp if r["error"] and t_fault and r["error_t"] >= t_fault),
    }


def scale_out_scenario(cluster, victim=0, add=3, drain=1, n_per_vip=100, udp_per_vip=10, warm=3.0, after=20.0,
                       log=print):
    """Runs the scenario on a started cluster: traffic, warm-up, the faults (survivors: add
    backend `add`, drain backend `drain`; balancer `victim` killed), `after` seconds more.
    Returns a dict: the traffic summary, fault timings, the router's withdrawal, survivors'
    counters before and after."""
    lab = cluster.lab
    survivors = [i for i in cluster.alive() if i != victim]
    before = {i: cluster.counters(i) for i in cluster.alive()}
    t_before = time.monotonic()
    tr = Traffic(lab, n_per_vip, warm + FAULT_WINDOW + after, udp_per_vip)
    try:
        ready = tr.wait_ready()
        if any(x is None for x in ready["tcp"]):
            raise AssertionError(f"{sum(1 for x in ready['tcp'] if x is None)} connections did not open")
        time.sleep(warm)
        on_victim = cluster.counters(victim)
        # The faults, within FAULT_WINDOW: config changes on the survivors, then the kill.
        t0 = time.monotonic()
        t_fault = time.time()
        for i in survivors:
            cluster.extra[i] = sorted(set(cluster.extra[i]) | {add})
        pos = {i: cluster.reload(i) for i in survivors}
        failed = []

        def drain_one(i, b):
            try:
                cluster.drain(i, b)
            except Exception as e:  # raised below, in this thread
                failed.append(e)
        drains = [threading.Thread(target=drain_one, args=(i, b)) for i in survivors
                  for b in [lab.backend4[drain]] + ([lab.backend6[drain]] if lab.ipv6 else [])]
        for th in drains:
            th.start()
        # Bounded generously: the caller asserts the window (fault_window_s), and a slow
        # machine should fail that, not a timeout here.
        for th in drains:
            th.join(10)
        if failed or any(th.is_alive() for th in drains):
            raise AssertionError(f"drain failed or took over 10 s: {failed}")
        for i in survivors:
            cluster.wait_reloaded(i, pos[i], timeout=10)
        t_changed = time.monotonic() - t0
        t_kill = time.monotonic()
        cluster.kill(victim)
        t_kill_done = time.monotonic()
        withdrawn = {vip: cluster.wait_nexthops(vip, survivors, timeout=10) - t_kill for vip in cluster.vips()}
        res = tr.result()
    finally:
        tr.kill()
    after_c = {i: cluster.counters(i) for i in survivors}
    elapsed = time.monotonic() - t_before
    s = summarize(res, t_fault)
    s.update({
        "config_changes_s": round(t_changed, 3), "kill_at_s": round(t_kill - t0, 3),
        "fault_window_s": round(t_kill_done - t0, 3),
        "withdrawn_s": {vip: round(v, 3) for vip, v in withdrawn.items()},
        "victim_flows": on_victim.get("flow_new", 0) - before[victim].get("flow_new", 0),
        "survivors": {f"lb{i + 1}": {k: after_c[i].get(k, 0) - before[i].get(k, 0)
                                     for k in ("flow_new", "flow_hit", "flow_peer_hit", "sync_in_inserted",
                                               "sync_in_refreshed", "sync_announced", "rx_packets")}
                      for i in survivors},
        "elapsed_s": round(elapsed, 3),
        "result": res,
    })
    return s
