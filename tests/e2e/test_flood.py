"""A spoofed SYN flood in the lab, end to end.

An attacker namespace (P-a, behind the client namespace, which routes it to the balancer like a
client) floods the VIP with SYNs from spoofed sources in 198.19.0.0/16 (hping3, a few processes,
one source address each, the source port incrementing per packet: tens of thousands of distinct
5-tuples), enough to keep l4lb's small flow table (FLOW_CAPACITY) full. The backends' SYN-ACKs to
the spoofed sources come back through the balancer and die in the client namespace (a blackhole
route), as they would on the internet.

While it floods:
  - long-lived transfers, started before the flood and running through it, are checked byte
    for byte (SHA-256) at the end;
  - legitimate new connections open throughout the flood (HELD_RATE per second), each kept
    HELD_S seconds with three requests whose replies are checked; many of them are open at the
    moment a fourth backend is added (config reload) and the Maglev table changes under them;
  - mid-flood, backend b4 joins the VIP.

With flood admission (the default), the flood holds at most the embryonic quota of the table,
every legitimate connection's second packet confirms it, and >= 99 % of the new connections
succeed. Negative control: the same scenario with admission disabled (L4LB_TEST_HOOKS=1
L4LB_TEST_NO_ADMISSION=1) fills the table with the flood's SYNs, the legitimate connections run
without state, and those Maglev moves to b4 are reset: the test asserts that harm, so it can fail.
The figures (connections, flood packets, flow-table counters) are printed for the closing note.
"""
import hashlib
import json
import os
import re
import subprocess
import threading
import time
import unittest

from e2e_common import BUILD_DIR, Balancer, BalancerConfig, client, new_lab, sh

HEALTH = {"type": "http", "interval_ms": 500, "timeout_ms": 400, "rise": 2, "fall": 2,
          "max_latency_ms": 300, "jitter_pct": 10}
FLOW_CAPACITY = 4096        # small, so the flood fills it (the minimum is 1024)
EMBRYONIC_SHARE = 0.25      # [flow_table] embryonic_share: the flood may hold 1024 entries
FLOODERS = 4                # hping3 processes, one spoofed source address each
FLOOD_INTERVAL = "u250"     # per process: at most 4000 SYNs/s (hping3 -i)
FLOOD_S = 16                # each hping3 runs under `timeout`: it stops by itself
TRANSFERS = 6               # long-lived transfers: BLOB bytes at BLOB_RATE, through the flood
BLOB, BLOB_RATE = 3 << 20, 160 << 10   # ~19 s each
HELD_RATE, HELD_S = 40, 3.0             # legitimate new connections during the flood
LEGIT_S = FLOOD_S - 3 - HELD_S - 2      # they open from 2 s into the flood and end before it does
SUCCESS_MIN = 0.99          # with admission: at least this share of the new connections succeed
HARM_MIN = 0.03             # without: at least this share of them fail (the negative control;
                            # about 1/4 of those open when b4 joins, ~9 % of all, are moved and reset)


def ctl(sock, *args):
    p = subprocess.run([os.path.join(BUILD_DIR, "l4lbctl"), "-s", sock] + list(args), capture_output=True,
                       text=True, timeout=30)
    return p.returncode, p.stdout, p.stderr


def expected_sha(size):
    return hashlib.sha256(bytes((i * 7 + 3) & 0xFF for i in range(65536)) * (size // 65536)).hexdigest()


def add_attacker(lab):
    """The attacker namespace P-a, a veth to the client namespace, which forwards its packets to
    the balancer; replies to the spoofed 198.19.0.0/16 are blackholed there. Named after the lab's
    prefix, so lab.down() removes it (and any process in it) with the rest."""
    ns, a_if, c_if = f"{lab.prefix}-a", f"{lab.prefix}a0", f"{lab.prefix}ca"
    sh("ip", "netns", "add", ns)
    sh("ip", "link", "set", "lo", "up", ns=ns)
    sh("ip", "link", "add", a_if, "netns", ns, "type", "veth", "peer", c_if, "netns", lab.ns_client)
    sh("ip", "addr", "add", "198.18.22.2/24", "dev", a_if, ns=ns)
    sh("ip", "addr", "add", "198.18.22.1/24", "dev", c_if, ns=lab.ns_client)
    sh("ip", "link", "set", a_if, "up", ns=ns)
    sh("ip", "link", "set", c_if, "up", ns=lab.ns_client)
    sh("ip", "route", "add", "198.18.20.0/24", "via", "198.18.22.1", ns=ns)
    for k, v in (("net.ipv4.ip_forward", "1"), ("net.ipv4.conf.all.rp_filter", "0"),
                 (f"net.ipv4.conf.{c_if}.rp_filter", "0")):
        sh("sysctl", "-qw", f"{k}={v}", ns=lab.ns_client)
    sh("ip", "route", "add", "blackhole", "198.19.0.0/16", ns=lab.ns_client)
    return ns


class Flooder:
    """FLOODERS hping3 processes in the attacker namespace, each with its own spoofed source
    198.19.<k>.<run> and an incrementing source port from 1024: FLOOD_S seconds under `timeout -s INT`
    (hping3 prints its statistics on SIGINT)."""

    def __init__(self, ns, vip, run):
        self.procs = []
        for k in range(FLOODERS):
            cmd = ["ip", "netns", "exec", ns, "timeout", "-s", "INT", str(FLOOD_S), "hping3", "-q", "-S",
                   "-p", "80", "-a", f"198.19.{k + 1}.{run}", "-s", "1024", "-i", FLOOD_INTERVAL, vip]
            self.procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                               start_new_session=True))
        self.t0 = time.time()

    def wait(self):
        """Waits for every process (bounded: FLOOD_S + 10 s); returns the packets they sent."""
        sent = 0
        for p in self.procs:
            out, _ = p.communicate(timeout=FLOOD_S + 10)
            m = re.search(r"(\d+) packets transmitted", out)
            if not m:
                raise AssertionError(f"hping3 printed no statistics: {out[-500:]}")
            sent += int(m.group(1))
        return sent

    def kill(self):
        for p in self.procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, 9)
                except OSError:
                    pass
                p.wait()


class Flood(unittest.TestCase):
    runs = iter(range(1, 250))

    @classmethod
    def setUpClass(cls):
        cls.lab = new_lab("nat", backends=4)
        try:
            cls.attacker = add_attacker(cls.lab)
        except Exception:
            cls.lab.down()
            raise
        cls.sock = os.path.join(cls.lab.state_dir, "l4lb.sock")
        cls.expect = expected_sha(BLOB)

    @classmethod
    def tearDownClass(cls):
        cls.lab.down()  # the attacker namespace too (same prefix)

    def config(self, count):
        text = BalancerConfig(health=HEALTH, udp=False, weights=(1, 1, 1, 1), backends=count,
                              flow_capacity=FLOW_CAPACITY).toml(self.lab)
        self.assertIn("[flow_table]\n", text)
        text = text.replace("[flow_table]\n", f"[flow_table]\nembryonic_share = {EMBRYONIC_SHARE}\n", 1)
        return text + f'\n[control]\nsocket = "{self.sock}"\n'

    def stats(self):
        rc, out, err = ctl(self.sock, "--json", "stats")
        self.assertEqual(rc, 0, err)
        return json.loads(out)

    def scenario(self, admission):
        """Runs the whole scenario against a fresh daemon; returns its figures."""
        lab = self.lab
        env = {} if admission else {"L4LB_TEST_HOOKS": "1", "L4LB_TEST_NO_ADMISSION": "1"}
        lb = Balancer(lab, self.config(3))
        for i in range(4):
            lab.set_knob(i, "blob", BLOB)
            lab.set_knob(i, "rate", BLOB_RATE)
        flood = None
        blobs, held = {}, {}
        threads = []
        try:
            lb.start(healthy_backends=3, env=env)
            if not admission:
                lb.wait_log(r"test hook: flood admission disabled")
            base = self.stats()
            th = threading.Thread(target=lambda: blobs.update(
                client(lab, "blob", lab.vip4, 80, TRANSFERS, timeout=FLOOD_S + 40)))
            th.start()
            threads.append(th)
            time.sleep(1.0)
            flood = Flooder(self.attacker, lab.vip4, next(self.runs))
            time.sleep(2.0)  # the flood fills the table
            full = self.stats()
            th = threading.Thread(target=lambda: held.update(
                client(lab, "held", lab.vip4, 80, float(LEGIT_S), HELD_RATE, HELD_S, timeout=LEGIT_S + 30)))
            th.start()
            threads.append(th)
            time.sleep(LEGIT_S / 2)
            peak = self.stats()  # the flood's hold on the table, just before b4 joins
            pos = lb.reload(self.config(4))
            lb.wait_log(r"reload applied", pos)
            # b4 joins the Maglev table once its health check is up: that is the moment.
            _, seen = lb.wait_log(re.escape(f"backend {lab.backend4[3]} of VIP {lab.vip4}:80/tcp: ") + r"\S+ -> healthy",
                                  pos, timeout=5)
            t_add = time.time() - (time.monotonic() - seen)
            for t in threads:
                t.join(timeout=FLOOD_S + 60)
            sent = flood.wait()
            end = self.stats()
        finally:
            if flood:
                flood.kill()  # hping3 stops by itself; this is for a test that failed early
            for t in threads:
                t.join(timeout=FLOOD_S + 60)
            for i in range(4):
                lab.set_knob(i, "blob", None)
                lab.set_knob(i, "rate", None)
            try:
                final = lb.stop()
            finally:
                lb.kill()
        conns = held["connections"]
        spanning = [c for c in conns if c["open"] < t_add < c["close"]]
        failed = [c for c in conns if c["error"]]
        return {"transfers": blobs["transfers"], "conns": conns, "spanning": spanning, "failed": failed,
                "on_b4": sum(1 for c in conns if c["backend"] == "b4"), "sent": sent,
                "stats": {"base": base, "full": full, "peak": peak, "end": end}, "final": final,
                "flood_t0": flood.t0, "t_add": t_add}

    def report(self, name, r):
        conns, failed, spanning = r["conns"], r["failed"], r["spanning"]
        sp_failed = [c for c in spanning if c["error"]]
        print(f"  {name}: {len(conns) - len(failed)}/{len(conns)} new connections during the flood succeeded "
              f"({len(sp_failed)}/{len(spanning)} failed of those open when b4 joined; {r['on_b4']} on b4); "
              f"{sum(1 for t in r['transfers'] if t.get('sha256') == self.expect)}/{len(r['transfers'])} "
              f"transfers with the right SHA-256")
        errs = {}
        for c in failed:
            e = c["error"].split(":")[0]
            errs[e] = errs.get(e, 0) + 1
        if errs:
            print(f"  {name}: failures by kind {errs}; first: {failed[0]}")
        t0 = r["flood_t0"]
        print(f"  {name}: hping3 sent {r['sent']} spoofed SYNs ({FLOODERS} x {FLOOD_S} s, -i {FLOOD_INTERVAL}, "
              f"{r['sent'] / FLOOD_S:.0f}/s); new connections opened {conns[0]['open'] - t0:.1f} .. "
              f"{conns[-1]['open'] - t0:.1f} s into the flood, b4 joined at {r['t_add'] - t0:.1f} s")
        for k in ("full", "peak", "end"):
            print(f"  {name}: l4lbctl stats ({k}): {flow_figures(r['stats'][k])}")
        print(f"  {name}: final stats file: {flow_figures(r['final'])}")

    def test_1_admission_keeps_new_and_established_flows(self):
        r = self.scenario(admission=True)
        self.report("admission", r)
        for t in r["transfers"]:
            self.assertNotIn("error", t, t)
            self.assertEqual((t["size"], t["sha256"]), (BLOB, self.expect), t)
        conns = r["conns"]
        self.assertGreaterEqual((len(conns) - len(r["failed"])) / len(conns), SUCCESS_MIN, r["failed"][:5])
        self.sanity(r, admission=True)

    def test_2_negative_control_without_admission_flows_are_harmed(self):
        r = self.scenario(admission=False)
        self.report("no admission", r)
        self.sanity(r, admission=False)
        # The harm: new connections the flood left without state, moved to b4 and reset.
        self.assertGreaterEqual(len(r["failed"]) / len(r["conns"]), HARM_MIN,
                                "admission disabled, yet the flood did not harm legitimate connections")

    def sanity(self, r, admission):
        """The scenario really happened: the flood reached l4lb and filled the table (without
        admission) or the embryonic quota (with it), many connections were open when b4 joined,
        and b4 got new ones."""
        self.assertGreater(r["sent"], 20000)
        self.assertGreater(counter(r["final"], "rx_packets"), r["sent"] * 0.9)
        t0, t1 = r["flood_t0"], r["flood_t0"] + FLOOD_S
        for c in r["conns"]:  # all of them during the flood
            self.assertTrue(t0 < c["open"] and (c["error"] or c["close"] < t1), c)
        self.assertTrue(t0 < r["t_add"] < t1)
        self.assertGreater(len(r["spanning"]), HELD_RATE * HELD_S * 0.7)
        self.assertGreater(r["on_b4"], 0)
        peak = r["stats"]["peak"]["workers"]
        if admission:
            # The flood holds the whole embryonic quota, never more; the rest is the legitimate
            # flows' (confirmed).
            quota = int(FLOW_CAPACITY * EMBRYONIC_SHARE)
            embryonic = sum(w["embryonic"] for w in peak)
            self.assertLessEqual(embryonic, quota)
            self.assertGreaterEqual(embryonic, quota * 0.95)  # read while the flood refills it
            self.assertLess(sum(w["flows4"] for w in peak), FLOW_CAPACITY)
            self.assertGreater(counter(r["final"], "flow_embryonic_full"), 0)
        else:
            self.assertEqual(sum(w["flows4"] for w in peak), FLOW_CAPACITY)
            self.assertGreater(counter(r["final"], "flow_table_full"), r["sent"] / 2)


def counter(stats, name):
    """A counter from the stats file ("total") or an l4lbctl stats --json reply (summed over
    "workers")."""
    parts = [stats["total"]] if "total" in stats else stats.get("workers", [])
    n = 0
    for p in parts:
        for where in (p.get("counters", {}), p.get("drops", {})):
            if isinstance(where.get(name), (int, float)):
                n += where[name]
    return n


FLOW_COUNTERS = ("rx_packets", "flow_new", "flow_hit", "flow_table_full", "flow_embryonic_full",
                 "flow_embryonic_displaced", "flow_rate_stateless", "flow_rehash", "flow_expired")


def flow_figures(stats):
    """The flow-table figures of a stats reply: counters, and per worker its entries (and by
    class, where the daemon reports them)."""
    out = {k: counter(stats, k) for k in FLOW_COUNTERS}
    for i, w in enumerate(stats.get("workers", [])):
        out[f"worker{w.get('worker', i)}"] = {k: v for k, v in w.items()
                                                 if k.startswith(("flows", "embryonic", "confirmed", "occupancy"))} or None
    return {k: v for k, v in out.items() if v is not None}


if __name__ == "__main__":
    unittest.main()
