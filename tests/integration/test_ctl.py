"""l4lbctl and the metrics endpoint against a running daemon on net_pcap ports.

One daemon runs for the whole class: 50 TCP SYNs (one per client port) arrive on port
"client" for a DSR Maglev VIP with three on-link backends; they are forwarded before the
tests start. Every command is run in both forms (--json parsed and checked; the plain table
checked for its key fields) with its exit code (0 done, 1 refused, 2 usage, 3 no daemon).
explain is checked against what the data plane did: for each SYN, the backend explain names
must be the one whose MAC the forwarded frame carries. The metrics endpoint is scraped over
HTTP and parsed with prometheus_client's text parser.

The per-backend and per-port counters (WorkerState::backend_ctrs/port_ctrs, filled by the data
plane) are asserted exactly: zeros there are a failure, never a skip.
"""

import hashlib
import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
import unittest
import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families
from scapy.all import Ether, IP, TCP

import l4lb_harness as h

CLIENT_MAC, SERVER_MAC, GW_MAC = "02:00:00:00:00:01", "02:00:00:00:00:02", "02:00:00:00:00:fe"
VIP = "198.18.0.10"
BACKENDS = [("198.18.2.11", "02:00:00:00:01:11"), ("198.18.2.12", "02:00:00:00:01:12"),
            ("198.18.2.13", "02:00:00:00:01:13")]
CLIENT = "198.19.7.7"
NFLOWS = 50
TABLE = 251  # prime, small: diff's slot counts are easy to reason about


def ctl_path():
    return os.path.join(h.BUILD_DIR, "l4lbctl")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def vip_toml(backends, table=TABLE, name="web"):
    out = f"""
[[neighbours]]
address = "198.18.0.254"
mac = "{GW_MAC}"

[[vips]]
name = {h.toml_str(name)}
address = "{VIP}"
port = 80
protocol = "tcp"
forwarding = "dsr"
maglev_table_size = {table}
"""
    for a, m in backends:
        out += f'\n[[vips.backends]]\naddress = "{a}"\nmac = "{m}"\n'
    return out


class Daemon(h.DaemonProcess):
    """A long-running l4lb on net_pcap ports with its control socket and metrics listener."""

    def __init__(self, frames, backends=BACKENDS, env=None, err_path=None, endless=False, vip_name="web", body=None):
        # endless: the client port replays `frames` forever (net_pcap infinite_rx=1) and the
        # server port drops what it sends instead of writing a pcap (it would grow by MB/s).
        self.prefix = f"l4lb_it_{os.getpid()}_ctl{next(h._run_ids)}"
        self.tmp = tempfile.mkdtemp(prefix="l4lb_it_")
        os.chmod(self.tmp, 0o755)  # so the socket's own mode decides who may connect
        h._record("tmpdir", self.tmp)
        self.sock = os.path.join(self.tmp, "run", "l4lb.sock")
        self.metrics_port = free_port()
        self.ports = [h.Port("client", CLIENT_MAC, ipv4="198.18.0.1/24", gateway4="198.18.0.254", rx=frames,
                             devargs="infinite_rx=1" if endless else ""),
                      h.Port("server", SERVER_MAC, ipv4="198.18.2.1/24", rx=[], tx=not endless)]
        self.vip_name = vip_name
        self.cfg = os.path.join(self.tmp, "l4lb.toml")
        self.write(body if body is not None else vip_toml(backends, name=vip_name))
        h.write_pcap(os.path.join(self.tmp, "client.in.pcap"), frames)
        h.write_pcap(os.path.join(self.tmp, "server.in.pcap"), [])
        self.err_path = err_path or os.path.join(self.tmp, "stderr.txt")
        self.launch(env)

    def config_text(self, body):
        # SYN entries live 10 min: explain finds the 50 flows however long the suite takes.
        text = h.make_config(self.ports, body, self.prefix, self.tmp, flow_extra="tcp_syn_timeout = 600")
        return text + f'\n[control]\nsocket = "{self.sock}"\nmode = "0600"\n\n[metrics]\nlisten = "127.0.0.1:{self.metrics_port}"\n\n[log]\nlevel = "info"\n'

    def write(self, body, path=None):
        with open(path or self.cfg, "w") as f:
            f.write(self.config_text(body))
        return path or self.cfg

    def remove(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def finish(self):
        """Stops the daemon, removes its files, and fails unless it exited 0."""
        rc = self.stop()
        log = self.log()
        self.remove()
        if rc != 0:
            raise AssertionError(f"l4lb exited with {rc}:\n{log}")


def syn(i):
    return Ether(src=GW_MAC, dst=CLIENT_MAC) / IP(src=CLIENT, dst=VIP) / TCP(sport=20000 + i, dport=80, flags="S", seq=i)


def ctl(d_or_sock, *args, user=None, timeout=30):
    sock = d_or_sock if isinstance(d_or_sock, str) else d_or_sock.sock
    cmd = [ctl_path(), "-s", sock] + list(args)
    if user:
        cmd = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups"] + cmd  # numeric ids
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def ctl_json(d, *args, expect_rc=0):
    rc, out, err = ctl(d, "--json", *args)
    if rc != expect_rc:
        raise AssertionError(f"l4lbctl {' '.join(args)}: exit {rc} (want {expect_rc}): {out}{err}")
    return json.loads(out)


def scrape(port, path="/metrics"):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
        return r.status, r.headers.get("Content-Type"), r.read().decode()


class CtlTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = Daemon([syn(i) for i in range(NFLOWS)])
        # The pcap input is read once: wait until all SYNs went out on port "server".
        cls.frames = h.wait_for_pcap(os.path.join(cls.d.tmp, "server.out.pcap"), NFLOWS)

    @classmethod
    def tearDownClass(cls):
        cls.d.finish()

    def backends(self):
        return {b["backend"]: b for b in ctl_json(self.d, "backends")["backends"]}

    # ---- status / vips / backends ----

    def test_status(self):
        s = ctl_json(self.d, "status")
        self.assertEqual(s["version"], "0.1.0")
        self.assertEqual(s["workers"], 1)
        self.assertEqual(s["vips"], 1)
        self.assertEqual([p["name"] for p in s["ports"]], ["client", "server"])
        self.assertEqual(s["ports"][0]["mac"], CLIENT_MAC)
        self.assertEqual(s["config"]["path"], self.d.cfg)
        with open(self.d.cfg, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        self.assertEqual(s["config"]["sha256"], digest)
        self.assertFalse(s["config"]["changed_on_disk"])
        self.assertEqual(s["drift"], [])
        self.assertEqual(s["pid"], self.d.proc.pid)
        self.assertGreater(s["uptime_s"], 0)
        rc, out, err = ctl(self.d, "status")
        self.assertEqual(rc, 0, err)
        self.assertIn("l4lb 0.1.0", out)
        self.assertIn(f"pid {self.d.proc.pid}", out)
        self.assertIn(f"sha256 {digest}", out)
        self.assertIn("drift: none", out)
        self.assertRegex(out, r"client\s+\d+\s+" + CLIENT_MAC)

    def test_vips(self):
        v = ctl_json(self.d, "vips")["vips"]
        self.assertEqual(len(v), 1)
        self.assertEqual((v[0]["name"], v[0]["address"], v[0]["port"], v[0]["protocol"], v[0]["scheduler"],
                          v[0]["forwarding"], v[0]["backends"], v[0]["healthy"], v[0]["maglev_table_size"]),
                         ("web", VIP, 80, "tcp", "maglev", "dsr", 3, 3, TABLE))
        rc, out, _ = ctl(self.d, "vips")
        self.assertEqual(rc, 0)
        self.assertRegex(out, rf"web\s+{VIP}\s+80\s+tcp\s+maglev\s+dsr\s+3/3")

    def test_backends(self):
        b = self.backends()
        self.assertEqual(sorted(b), [f"{a}:0" for a, _ in BACKENDS])
        for x in b.values():
            self.assertEqual((x["state"], x["weight"], x["file_weight"], x["vip"]), ("healthy", 1, 1, "web"))
            self.assertEqual(x["health"]["state"], "not checked")
            self.assertIsNone(x["last_transition"])
        self.assertEqual(len(ctl_json(self.d, "backends", "web")["backends"]), 3)
        rc, out, err = ctl(self.d, "backends", "nosuch")
        self.assertEqual(rc, 1)
        self.assertIn("no VIP named 'nosuch'", err)
        rc, out, _ = ctl(self.d, "backends")
        self.assertEqual(rc, 0)
        for a, _ in BACKENDS:
            self.assertRegex(out, rf"web\s+{a}:0\s+healthy\s+1\s+not checked")

    # ---- stats ----

    def test_stats(self):
        s = ctl_json(self.d, "stats")
        self.assertEqual(len(s["workers"]), 1)
        w = s["workers"][0]
        self.assertEqual(w["counters"]["rx_packets"], NFLOWS)
        self.assertEqual(w["counters"]["flow_new"], NFLOWS)
        self.assertEqual(w["flows4"], NFLOWS)  # SYN entries live 10 s (tcp_syn_timeout)
        self.assertEqual(w["flows6"], 0)
        self.assertEqual((w["embryonic"], w["confirmed"]), (NFLOWS, 0))  # SYNs only: embryonic
        self.assertEqual(w["capacity"], 4096)
        self.assertAlmostEqual(w["occupancy"], NFLOWS / (2 * 4096))
        self.assertEqual(set(s["drops"]), set(h.DROP_NAMES))
        self.assertIn("icmp_error_no_flow", h.DROP_NAMES)
        self.assertEqual(sum(s["drops"].values()), 0)
        self.assertEqual([p["port"] for p in s["ports"]], ["client", "server"])
        self.assertEqual([v["vip"] for v in s["vips"]], ["web"])
        self.assertEqual(s["snat"], [])  # full NAT's pools: no fullnat VIP here
        rc, out, _ = ctl(self.d, "stats")
        self.assertEqual(rc, 0)
        self.assertRegex(out, rf"\n  0\s+{NFLOWS}\s+{NFLOWS}\s+0\s+{NFLOWS}\s+0\s")
        self.assertIn("drops:\n  none", out)
        self.assertIn("new flows/s:", out)
        self.assertNotIn("snat ports:", out)
        # Per-backend and per-port counters: each SYN counted for the backend whose MAC it left with.
        per_backend = {b["backend"]: b["packets"] for b in s["backends"]}
        by_mac = {m: f"{a}:0" for a, m in BACKENDS}
        want = {f"{a}:0": 0 for a, _ in BACKENDS}
        for f in self.frames:
            want[by_mac[Ether(f).dst]] += 1
        self.assertEqual(per_backend, want)
        self.assertEqual(sum(b["flows_new"] for b in s["backends"]), NFLOWS)
        self.assertEqual(s["vips"][0]["packets"], NFLOWS)
        self.assertEqual(s["ports"][0]["rx_packets"], NFLOWS)
        self.assertEqual(s["ports"][1]["tx_packets"], NFLOWS)

    # ---- explain: what the data plane did for each SYN ----

    def test_explain_matches_forwarding(self):
        self.assertEqual(len(self.frames), NFLOWS)
        by_mac = {m: f"{a}:0" for a, m in BACKENDS}
        seen = set()
        for f in self.frames:
            e = Ether(f)
            sport = e[TCP].sport
            r = ctl_json(self.d, "explain", "tcp", f"{CLIENT}:{sport}", f"{VIP}:80")
            self.assertEqual(r["vip"], "web")
            self.assertEqual(r["scheduler"], "maglev")
            self.assertEqual(r["table_size"], TABLE)
            # The worker's entry for this SYN, and the Maglev choice, agree with the frame sent.
            self.assertTrue(r["flow_table"].startswith("hit on worker 0 (syn, idle"), r)
            self.assertEqual(r["flow_entry"]["backend"], by_mac[e.dst], f"sport {sport}")
            self.assertEqual(r["backend"], by_mac[e.dst], f"sport {sport}")
            self.assertEqual(r["new_flow_backend"], by_mac[e.dst], f"sport {sport}")
            seen.add(r["backend"])
        self.assertEqual(len(seen), 3)  # 50 flows over 3 equal backends: all used
        rc, out, _ = ctl(self.d, "explain", "tcp", f"{CLIENT}:20000", f"{VIP}:80")
        self.assertEqual(rc, 0)
        self.assertRegex(out, r"backend:\s+198\.18\.2\.1[123]:0")
        self.assertRegex(out, rf"slot:\s+\d+ of {TABLE}")
        self.assertRegex(out, r"flow table: hit on worker 0 \(syn, idle \d+\.\d s\)")
        # A flow the data plane never saw: a miss, and the Maglev choice.
        r = ctl_json(self.d, "explain", "tcp", f"{CLIENT}:21000", f"{VIP}:80")
        self.assertEqual((r["flow_table"], r["flow_entry"]), ("miss on 1 of 1 workers", None))
        self.assertEqual(r["backend"], r["new_flow_backend"])
        self.assertIn("no flow-table entry: a new flow; Maglev slot", r["reason"])

    def test_explain_after_weight_change_names_the_entry(self):
        # A weight change moves Maglev slots; the flows already in the table keep their backend,
        # and explain must say so (the data plane forwards by the entry, not by the slot).
        by_mac = {m: f"{a}:0" for a, m in BACKENDS}
        target = BACKENDS[0][0]
        rc, _, err = ctl(self.d, "weight", target, "8")
        self.assertEqual(rc, 0, err)
        moved = 0
        try:
            for f in self.frames:
                e = Ether(f)
                r = ctl_json(self.d, "explain", "tcp", f"{CLIENT}:{e[TCP].sport}", f"{VIP}:80")
                self.assertEqual(r["backend"], by_mac[e.dst], r)
                self.assertEqual(r["flow_entry"]["backend"], by_mac[e.dst], r)
                if r["new_flow_backend"] != r["backend"]:
                    moved += 1
                    self.assertEqual(r["new_flow_backend"], f"{target}:0", r)
                    self.assertIn("an existing flow keeps its backend; a new flow would get", r["reason"])
                    rc, out, _ = ctl(self.d, "explain", "tcp", f"{CLIENT}:{e[TCP].sport}", f"{VIP}:80")
                    self.assertIn(f"new flow:   {target}:0", out)
        finally:
            rc, _, err = ctl(self.d, "weight", target, "1")
        self.assertEqual(rc, 0, err)
        # 50 flows at 1:1:1, then 8:1:1: about 2/3 of the flows not on the target move slot.
        self.assertGreater(moved, 5)

    def test_explain_errors(self):
        r = ctl_json(self.d, "explain", "tcp", f"{CLIENT}:1000", "198.18.0.99:80")
        self.assertIsNone(r["vip"])
        self.assertIn("no_vip", r["reason"])
        r = ctl_json(self.d, "explain", "udp", f"{CLIENT}:1000", f"{VIP}:80")  # VIP is tcp only
        self.assertIsNone(r["vip"])
        for args, msg in ((("sctp", "1.2.3.4:1", f"{VIP}:80"), "bad protocol"),
                          (("tcp", "nonsense", f"{VIP}:80"), "bad source"),
                          (("tcp", f"{CLIENT}:1", "[2001:db8::1]:80"), "different address families")):
            rc, _, err = ctl(self.d, "explain", *args)
            self.assertEqual(rc, 1, args)
            self.assertIn(msg, err)
        rc, _, err = ctl(self.d, "explain", "tcp")
        self.assertEqual(rc, 2)
        self.assertIn("wrong number of arguments", err)

    # ---- drain / undrain / weight and drift ----

    def test_drain_undrain(self):
        target = BACKENDS[0][0]
        r = ctl_json(self.d, "drain", target)
        self.assertEqual(r["changed"], [{"vip": "web", "backend": f"{target}:0"}])
        try:
            self.assertEqual(self.backends()[f"{target}:0"]["state"], "draining")
            self.assertTrue(self.backends()[f"{target}:0"]["drained_by_command"])
            t = self.backends()[f"{target}:0"]["last_transition"]
            self.assertEqual((t["from"], t["to"], t["why"]), ("healthy", "draining", "drained by l4lbctl"))
            drift = ctl_json(self.d, "status")["drift"]
            self.assertEqual(drift, [{"vip": "web", "backend": f"{target}:0", "what": "drained",
                                      "file": "not drained", "running": "drained"}])
            rc, out, _ = ctl(self.d, "status")
            self.assertRegex(out, rf"web\s+{target}:0\s+drained\s+not drained\s+drained")
            self.assertEqual(ctl_json(self.d, "vips")["vips"][0]["healthy"], 2)
            # No new flow goes to it: every source port explains to another backend.
            for sport in range(30000, 30100):
                r = ctl_json(self.d, "explain", "tcp", f"{CLIENT}:{sport}", f"{VIP}:80")
                self.assertNotEqual(r["backend"], f"{target}:0")
            self.assertEqual(ctl_json(self.d, "drain", target)["changed"], [])  # idempotent
            rc, out, _ = ctl(self.d, "drain", target)
            self.assertEqual((rc, out), (0, "no change\n"))
        finally:
            rc, out, err = ctl(self.d, "undrain", target)
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, f"undrained {target}:0 in web\n")
        self.assertEqual(self.backends()[f"{target}:0"]["state"], "healthy")
        self.assertEqual(ctl_json(self.d, "status")["drift"], [])
        self.assertIn(f"drained by l4lbctl", self.d.log())

    def test_drain_errors(self):
        for args, msg in ((("drain", "198.18.9.9"), "no backend 198.18.9.9"),
                          (("drain", "garbage"), "bad backend"),
                          (("drain", "nosuch/198.18.2.11"), "no VIP named 'nosuch'"),
                          (("undrain", "198.18.2.11:81"), "no backend 198.18.2.11:81")):
            rc, out, err = ctl(self.d, *args)
            self.assertEqual(rc, 1, args)
            self.assertIn(msg, err)
            j = ctl_json(self.d, *args, expect_rc=1)
            self.assertFalse(j["ok"])
            self.assertIn(msg, j["error"])

    def test_weight(self):
        target = BACKENDS[1][0]
        r = ctl_json(self.d, "weight", f"web/{target}:0", "5")
        self.assertEqual(r["changed"], [{"vip": "web", "backend": f"{target}:0", "from": 1, "to": 5}])
        try:
            b = self.backends()[f"{target}:0"]
            self.assertEqual((b["weight"], b["file_weight"], b["state"]), (5, 1, "healthy"))
            self.assertEqual(ctl_json(self.d, "status")["drift"],
                             [{"vip": "web", "backend": f"{target}:0", "what": "weight", "file": 1, "running": 5}])
            rc, out, _ = ctl(self.d, "backends")
            self.assertRegex(out, rf"{target}:0\s+healthy\s+5 \(file 1\)")
            # Maglev shares follow the weights (5:1:1 of 1000 flows: about 714 for the target).
            hits = sum(ctl_json(self.d, "explain", "tcp", f"{CLIENT}:{p}", f"{VIP}:80")["backend"] == f"{target}:0"
                       for p in range(40000, 40300))
            self.assertGreater(hits, 300 * 5 / 7 - 45)
            self.assertLess(hits, 300 * 5 / 7 + 45)
        finally:
            rc, out, err = ctl(self.d, "weight", target, "1")
        self.assertEqual((rc, out), (0, f"weight {target}:0 in web (5 -> 1)\n"), err)
        self.assertEqual(ctl_json(self.d, "status")["drift"], [])
        for n in ("70000", "-1", "x", ""):
            rc, _, err = ctl(self.d, "weight", target, n)
            self.assertEqual(rc, 1, n)
            self.assertIn("must be 0..65535", err)

    # ---- reload / diff ----

    def test_reload_and_diff(self):
        original = open(self.d.cfg).read()
        four = BACKENDS + [("198.18.2.14", "02:00:00:00:01:14")]
        other = self.d.write(vip_toml(four), os.path.join(self.d.tmp, "four.toml"))
        r = ctl_json(self.d, "diff", other)
        self.assertEqual(r["restart_required"], [])
        self.assertEqual(len(r["vips"]), 1)
        v = r["vips"][0]
        self.assertEqual((v["vip"], v["change"], v["backends_added"], v["backends_removed"], v["slots_total"]),
                         ("web", "changed", ["198.18.2.14:0"], [], TABLE))
        # Maglev's minimal disruption: adding a 4th equal backend moves about a quarter of the slots
        # (NSDI'16 §3.4), all of them to the new one.
        self.assertGreater(v["moved_share"], 0.18)
        self.assertLess(v["moved_share"], 0.32)
        self.assertAlmostEqual(v["moved_share"], v["slots_moved"] / TABLE)
        rc, out, _ = ctl(self.d, "diff", other)
        self.assertEqual(rc, 0)
        self.assertRegex(out, r"web\s+changed\s+198\.18\.2\.14:0\s+-\s+-\s+[\d.]+% \(\d+/251\)")
        # Same file: nothing changes.
        v = ctl_json(self.d, "diff", self.d.cfg)["vips"][0]
        self.assertEqual((v["change"], v["slots_moved"]), ("unchanged", 0))
        # A table size change needs no restart but reshuffles everything.
        v = ctl_json(self.d, "diff", self.d.write(vip_toml(BACKENDS, table=257), other))["vips"][0]
        self.assertEqual((v["moved_share"], v["slots_total"]), (1.0, 257))
        # Invalid files: exit 1 with the loader's messages.
        with open(other, "w") as f:
            f.write(original.replace('protocol = "tcp"', 'protocol = "sctp"'))
        rc, _, err = ctl(self.d, "diff", other)
        self.assertEqual(rc, 1)
        self.assertIn("is not a valid configuration", err)
        self.assertIn("vips[0].protocol", err)
        rc, _, err = ctl(self.d, "diff", os.path.join(self.d.tmp, "missing.toml"))
        self.assertEqual(rc, 1)
        self.assertIn("No such file", err)

        before = ctl_json(self.d, "status")["reloads"]
        try:
            self.d.write(vip_toml(four))
            self.assertTrue(ctl_json(self.d, "status")["config"]["changed_on_disk"])
            r = ctl_json(self.d, "reload")
            self.assertTrue(r["ok"])
            self.assertEqual(r["messages"], ["reload applied: vips +0 -0 ~0, backends +1 -0 ~0"])
            self.assertEqual(len(self.backends()), 4)
            self.assertFalse(ctl_json(self.d, "status")["config"]["changed_on_disk"])
            # A broken file is refused with its messages; the four backends keep running.
            with open(self.d.cfg, "w") as f:
                f.write(original.replace('protocol = "tcp"', 'protocol = "sctp"'))
            rc, out, err = ctl(self.d, "reload")
            self.assertEqual(rc, 1)
            self.assertIn("reload failed: the running configuration is unchanged", err)
            self.assertIn("vips[0].protocol", err)
            self.assertEqual(len(self.backends()), 4)
            # Changing the control socket needs a restart: refused.
            with open(self.d.cfg, "w") as f:
                f.write(original.replace(self.d.sock, self.d.sock + "2"))
            j = ctl_json(self.d, "reload", expect_rc=1)
            self.assertIn(f"reload refused: {self.d.cfg}: control.socket: needs a restart", j["messages"])
        finally:
            with open(self.d.cfg, "w") as f:
                f.write(original)
            rc, out, err = ctl(self.d, "reload")
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, "reload applied: vips +0 -0 ~0, backends +0 -1 ~0\n")
        after = ctl_json(self.d, "status")["reloads"]
        self.assertEqual((after["ok"] - before["ok"], after["failed"] - before["failed"]), (2, 2))

    # ---- metrics ----

    def test_metrics(self):
        status, ctype, body = scrape(self.d.metrics_port)
        self.assertEqual(status, 200)
        self.assertEqual(ctype, "text/plain; version=0.0.4; charset=utf-8")
        fams = {f.name: f for f in text_string_to_metric_families(body)}
        types = {n: f.type for n, f in fams.items()}
        for name, typ in (("l4lb_packets", "counter"), ("l4lb_bytes", "counter"), ("l4lb_backend_up", "gauge"),
                          ("l4lb_drops", "counter"), ("l4lb_flow_table_entries", "gauge"),
                          ("l4lb_worker_busy_ratio", "gauge"), ("l4lb_health_check_duration_seconds", "histogram"),
                          ("l4lb_config_reloads", "counter")):
            self.assertEqual(types.get(name), typ, name)
        self.assertIn("# HELP l4lb_packets_total ", body)
        self.assertNotIn("l4lb_snat_ports", fams)  # only with fullnat VIPs

        def samples(fam, suffix=""):
            return {tuple(sorted(s.labels.items())): s.value for s in fams[fam].samples if s.name == fam + suffix}
        up = samples("l4lb_backend_up")
        self.assertEqual(up, {(("backend", f"{a}:0"), ("vip", "web")): 1.0 for a, _ in BACKENDS})
        self.assertEqual(set(samples("l4lb_packets", "_total")), set(up))
        drops = samples("l4lb_drops", "_total")
        self.assertEqual(len(drops), len(h.DROP_NAMES))  # one series per reason in counters.h
        self.assertEqual(sum(drops.values()), 0)
        # Entries by admission class: the SYN-only flows are embryonic.
        self.assertEqual(samples("l4lb_flow_entries"), {(("class", "embryonic"),): float(NFLOWS),
                                                        (("class", "confirmed"),): 0.0})
        ft = samples("l4lb_flow_table_entries")
        self.assertEqual(ft, {(("family", "ipv4"), ("worker", "0")): float(NFLOWS),
                              (("family", "ipv6"), ("worker", "0")): 0.0})
        self.assertEqual(set(samples("l4lb_config_reloads", "_total")), {(("result", "ok"),), (("result", "failed"),)})
        self.assertIn((("worker", "0"),), samples("l4lb_worker_busy_ratio"))
        self.assertEqual(samples("l4lb_health_check_duration_seconds", "_count"),
                         {(("result", "ok"),): 0.0, (("result", "failed"),): 0.0})
        with self.assertRaises(urllib.error.HTTPError) as cm:
            scrape(self.d.metrics_port, "/other")
        self.assertEqual(cm.exception.code, 404)
        # Per-backend packets: every SYN counted once, for the backend it went to.
        packets = samples("l4lb_packets", "_total")
        self.assertEqual(sum(packets.values()), NFLOWS)

    def test_metrics_slow_client_does_not_block(self):
        # A client that connects and sends nothing must not stop the control loop.
        s = socket.create_connection(("127.0.0.1", self.d.metrics_port))
        u = socket.socket(socket.AF_UNIX)
        u.connect(self.d.sock)
        try:
            t0 = time.monotonic()
            self.assertEqual(ctl_json(self.d, "status")["workers"], 1)
            self.assertEqual(scrape(self.d.metrics_port)[0], 200)
            self.assertLess(time.monotonic() - t0, 2.0)
        finally:
            s.close()
            u.close()
        rc, out, err = ctl(self.d, "--json", "status")
        self.assertEqual(rc, 0)

    # ---- access and errors ----

    def test_socket_mode_and_access(self):
        st = os.stat(self.d.sock)
        self.assertTrue(stat.S_ISSOCK(st.st_mode))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
        self.assertEqual(st.st_uid, 0)
        rc, out, err = ctl(self.d, "status", user=65534)  # nobody:nogroup
        self.assertEqual(rc, 3)
        self.assertIn(f"cannot connect to {self.d.sock}: permission denied", err)

    def test_errors(self):
        wrong = os.path.join(self.d.tmp, "nosuch.sock")
        rc, out, err = ctl(wrong, "status")
        self.assertEqual((rc, out), (3, ""))
        self.assertIn(f"cannot connect to {wrong}: no such socket (l4lb is not running", err)
        stale = os.path.join(self.d.tmp, "stale.sock")
        s = socket.socket(socket.AF_UNIX)
        s.bind(stale)
        s.close()
        rc, _, err = ctl(stale, "status")
        self.assertEqual(rc, 3)
        self.assertIn("connection refused (l4lb is not running", err)
        rc, _, err = ctl(self.d, "frobnicate")
        self.assertEqual(rc, 2)
        self.assertIn("unknown command 'frobnicate'", err)
        rc, _, err = ctl(self.d)
        self.assertEqual(rc, 2)
        # A malformed request straight on the socket: an error reply, and the daemon goes on.
        u = socket.socket(socket.AF_UNIX)
        u.connect(self.d.sock)
        u.sendall(b"not json\n")
        reply = json.loads(u.makefile().read())
        u.close()
        self.assertEqual(reply, {"ok": False, "error": "bad request: expected {\"cmd\": \"...\", \"args\": [...]}"})
        self.assertEqual(ctl_json(self.d, "vips")["ok"], True)

    def test_messages_that_name_the_mistake(self):
        # -s naming a file that is not a socket says so (not "stale socket file").
        regular = os.path.join(self.d.tmp, "l4lb.toml")
        rc, out, err = ctl(regular, "status")
        self.assertEqual((rc, out), (3, ""))
        self.assertIn(f"cannot connect to {regular}: not a socket (a regular file; -s wants the daemon's control "
                      "socket, [control] socket in l4lb.toml)", err)
        # An option a command does not take is an unknown option, not a wrong argument count.
        rc, out, err = ctl(self.d, "status", "-x")
        self.assertEqual((rc, out), (2, ""))
        self.assertTrue(err.startswith("l4lbctl: status: unknown option '-x'\nusage: l4lbctl"), err)
        rc, _, err = ctl(self.d, "weight", "web")
        self.assertEqual(rc, 2)
        self.assertIn("l4lbctl: weight: wrong number of arguments (usage: l4lbctl weight BACKEND N)", err)

    def test_json_errors_are_json_on_stdout(self):
        """With --json every error is {"error": ..., "code": N} on stdout, whatever failed."""
        cases = [
            (["frobnicate"], 2, "unknown command 'frobnicate'"),
            (["status", "-x"], 2, "status: unknown option '-x'"),
            (["weight", "web"], 2, "weight: wrong number of arguments (usage: l4lbctl weight BACKEND N)"),
            (["drain", "198.18.9.9"], 1, None),
            (["-s", os.path.join(self.d.tmp, "nosuch.sock"), "status"], 3, None),
            (["-s", os.path.join(self.d.tmp, "l4lb.toml"), "vips"], 3, None),
            (["diff", os.path.join(self.d.tmp, "missing.toml")], 1, None),
        ]
        for args, code, msg in cases:
            p = subprocess.run([ctl_path(), "-s", self.d.sock, "--json"] + args, stdin=subprocess.DEVNULL,
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(p.returncode, code, args)
            j = json.loads(p.stdout)  # one JSON document, nothing else
            self.assertEqual(j["code"], code, args)
            self.assertIsInstance(j["error"], str, args)
            self.assertTrue(j["error"], args)
            if msg:
                self.assertEqual(j["error"], msg, args)
            self.assertIn(j["error"], p.stderr, args)  # and the same words for a person

    def test_list(self):
        r = ctl_json(self.d, "list")
        self.assertEqual([v["name"] for v in r["vips"]], ["web"])
        v = r["vips"][0]
        self.assertEqual((v["address"], v["protocol"], v["scheduler"], v["forwarding"]),
                         (f"{VIP}:80", "tcp", "maglev", "dsr"))
        by_backend = {b["backend"]: b for b in v["backends"]}
        self.assertEqual(sorted(by_backend), sorted(f"{a}:0" for a, _ in BACKENDS))
        # The same flows and states `backends` reports, nested under their VIP.
        for name, b in self.backends().items():
            self.assertEqual((by_backend[name]["state"], by_backend[name]["weight"], by_backend[name]["active_flows"]),
                             (b["state"], b["weight"], b["active_flows"]), name)
            self.assertGreaterEqual(by_backend[name]["packets_per_s"], 0)
        self.assertEqual(v["active_flows"], sum(b["active_flows"] for b in v["backends"]))
        self.assertEqual(v["active_flows"], NFLOWS)
        rc, out, _ = ctl(self.d, "list")
        self.assertEqual(rc, 0)
        lines = out.splitlines()
        self.assertRegex(lines[0], r"^VIP / BACKEND\s+STATE\s+WEIGHT\s+ACTIVE_FLOWS\s+PACKETS/S\s+NEW_FLOWS/S$")
        self.assertRegex(lines[1], rf"^tcp {VIP}:80 web\s+maglev dsr\s+{NFLOWS}\s")
        self.assertEqual(len(lines), 2 + len(BACKENDS))
        for line in lines[2:]:
            self.assertRegex(line, r"^  -> 198\.18\.2\.1[123]:0\s+healthy\s+1\s+\d+\s+[\d.]+\s+[\d.]+$")
        self.assertEqual(ctl(self.d, "list", "nope")[0], 1)

    def test_memory_estimate_against_the_eal_heap(self):
        """The start-up log's heap figure (what the EAL handed out once everything started) is
        within 10 % of the estimate --check-config prints for the same file."""
        m = re.search(r"memory: EAL heap in use (\d+) MiB; estimated about (\d+) MiB", self.d.log())
        self.assertIsNotNone(m, self.d.log())
        heap, estimate = int(m.group(1)), int(m.group(2))
        print(f"\n    EAL heap {heap} MiB, estimate {estimate} MiB")
        self.assertLess(abs(estimate - heap), 0.1 * heap, (heap, estimate))

    def test_config_round_trip(self):
        """running config -> file -> --check-config -> the same configuration and snapshot."""
        rc, text, err = ctl(self.d, "config")
        self.assertEqual(rc, 0, err)
        with open(self.d.cfg) as f:
            self.assertEqual(text, f.read())  # what was loaded, byte for byte
        path = os.path.join(self.d.tmp, "running.toml")
        with open(path, "w") as f:
            f.write(text)
        rc, out, err = h.run_cli(["--check-config", path])
        self.assertEqual((rc, err), (0, ""))
        self.assertTrue(out.startswith(f"{path}: OK (2 ports, 1 VIPs, 3 backends, 1 workers)\n"), out)
        # The hash the daemon reports for its configuration is this text's.
        status = ctl_json(self.d, "status")
        self.assertEqual(hashlib.sha256(text.encode()).hexdigest(), status["config"]["sha256"])
        self.assertEqual(ctl_json(self.d, "config")["sha256"], status["config"]["sha256"])
        # Built again, it gives the running snapshot: no VIP changes, no Maglev slot moves.
        d = ctl_json(self.d, "diff", path)
        self.assertEqual(d["restart_required"], [])
        self.assertEqual([(v["vip"], v["change"], v["slots_moved"]) for v in d["vips"]], [("web", "unchanged", 0)])
        # Once the file on disk changes, config still prints the running configuration.
        original = open(self.d.cfg).read()
        try:
            self.d.write(vip_toml(BACKENDS[:2]))
            self.assertEqual(ctl(self.d, "config")[1], text)
        finally:
            with open(self.d.cfg, "w") as f:
                f.write(original)


class DaemonDownTest(unittest.TestCase):
    def test_socket_removed_on_exit(self):
        d = Daemon([])
        try:
            self.assertEqual(ctl_json(d, "status")["workers"], 1)
            self.assertEqual(d.stop(), 0)
            self.assertFalse(os.path.exists(d.sock))
            rc, out, err = ctl(d, "status")
            self.assertEqual(rc, 3)
            self.assertIn("no such socket (l4lb is not running", err)
            with self.assertRaises(urllib.error.URLError):
                scrape(d.metrics_port)
        finally:
            d.stop()
            d.remove()

    def test_second_daemon_leaves_the_socket_alone(self):
        d = Daemon([])
        try:
            # Same socket path: the second daemon must not steal it; it runs without an API.
            prefix = d.prefix + "b"
            text = open(d.cfg).read().replace(d.prefix, prefix).replace(str(d.metrics_port), str(free_port()))
            text = text.replace(f"{d.tmp}/client.out", f"{d.tmp}/client2.out").replace(f"{d.tmp}/server.out", f"{d.tmp}/server2.out")
            cfg2 = os.path.join(d.tmp, "second.toml")
            with open(cfg2, "w") as f:
                f.write(text)
            err2 = os.path.join(d.tmp, "second.err")
            with open(err2, "wb") as f:
                p = subprocess.Popen([h.l4lb_binary(), "-c", cfg2], stdin=subprocess.DEVNULL, stdout=f, stderr=f,
                                     start_new_session=True)
            h._record("pid", p.pid)
            try:
                deadline = time.monotonic() + h.STARTUP_TIMEOUT_S
                while "l4lb info: started:" not in open(err2).read():
                    self.assertIsNone(p.poll(), open(err2).read())
                    self.assertLess(time.monotonic(), deadline)
                    time.sleep(0.02)
                self.assertIn(f"l4lb error: control socket {d.sock}: another process is listening "
                              "(is l4lb already running?); the control API is disabled", open(err2).read())
                self.assertEqual(ctl_json(d, "status")["pid"], d.proc.pid)
            finally:
                h._stop(p)
                h._cleanup_runtime_dir(prefix)
            self.assertEqual(p.returncode, 0)
            self.assertEqual(ctl_json(d, "status")["pid"], d.proc.pid)  # still there after the second exits
        finally:
            d.stop()
            d.remove()


if __name__ == "__main__":
    unittest.main()
