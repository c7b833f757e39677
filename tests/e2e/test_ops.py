"""The operator interface end to end: l4lbctl and the metrics endpoint against l4lb
on net_af_xdp ports in the lab, with real clients and servers.

  drain   a backend gets no new connections while a long transfer to it completes byte for byte
  undrain it gets new connections again
  weight  shares follow the weight set at run time
  status  reports drain and weight as drift from the config file, and none once undone
  explain names the backend each open connection really uses (the worker's flow-table entry),
          also for connections a weight change would send elsewhere were they new
  metrics scraped and parsed (prometheus_client) during traffic

The daemon's socket is in the lab's state directory (Unix sockets are reached by path from
any network namespace); metrics listen on the balancer namespace's loopback and are fetched
from inside it. Per-backend counters (WorkerState::backend_ctrs) are asserted: zeros fail.
"""

import json
import os
import re
import subprocess
import threading
import time
import unittest

from prometheus_client.parser import text_string_to_metric_families

from e2e_common import BUILD_DIR, BalancerConfig, assert_transfers_complete, client, new_lab, start_balancer, sh

HEALTH = {"type": "http", "interval_ms": 500, "timeout_ms": 400, "rise": 2, "fall": 2,
          "max_latency_ms": 300, "jitter_pct": 10}
METRICS_PORT = 9190


def ctl(sock, *args):
    p = subprocess.run([os.path.join(BUILD_DIR, "l4lbctl"), "-s", sock] + list(args), capture_output=True,
                       text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


class Ops(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.lab = new_lab("nat")
        cls.sock = os.path.join(cls.lab.state_dir, "l4lb.sock")
        sh("ip", "link", "set", "lo", "up", ns=cls.lab.ns_lb)
        cls.text = BalancerConfig(health=HEALTH, udp=False, weights=(1, 1, 1)).toml(cls.lab) + (
            f'\n[control]\nsocket = "{cls.sock}"\n\n[metrics]\nlisten = "127.0.0.1:{METRICS_PORT}"\n')
        cls.lb = start_balancer(cls.lab, cls.text, 3)
        cls.b = {f"b{i + 1}": a for i, a in enumerate(cls.lab.backend4)}

    @classmethod
    def tearDownClass(cls):
        try:
            cls.lb.stop()
        finally:
            cls.lab.down()

    def json(self, *args):
        rc, out, err = ctl(self.sock, "--json", *args)
        self.assertEqual(rc, 0, f"l4lbctl {args}: {out}{err}")
        return json.loads(out)

    def scrape(self):
        code = f"import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:{METRICS_PORT}/metrics', timeout=5).read().decode())"
        out = sh("ip", "netns", "exec", self.lab.ns_lb, "/usr/bin/python3", "-c", code, capture=True)
        fams = {f.name: f for f in text_string_to_metric_families(out)}
        return fams

    @staticmethod
    def samples(fams, fam, suffix=""):
        return {tuple(sorted(s.labels.items())): s.value for s in fams[fam].samples if s.name == fam + suffix}

    def test_1_status_and_metrics_during_traffic(self):
        s = self.json("status")
        self.assertEqual((s["workers"], s["drift"], s["metrics"]), (1, [], f"127.0.0.1:{METRICS_PORT}"))
        result = {}
        th = threading.Thread(target=lambda: result.update(client(self.lab, "stream", self.lab.vip4, 80, 4, 50)))
        th.start()
        time.sleep(1.0)
        first = self.scrape()
        time.sleep(1.5)
        second = self.scrape()
        th.join()
        errors = [r for r in result["requests"] if r["error"]]
        self.assertEqual(errors, [])
        self.assertGreater(len(result["requests"]), 150)
        vip = f"{self.lab.vip4}:80/tcp"
        up = self.samples(second, "l4lb_backend_up")
        self.assertEqual(up, {(("backend", f"{a}:0"), ("vip", vip)): 1.0 for a in self.b.values()})
        # Real health checks ran: the histogram counted them.
        hc = self.samples(second, "l4lb_health_check_duration_seconds", "_count")
        self.assertGreater(hc[(("result", "ok"),)], hc_first := self.samples(first, "l4lb_health_check_duration_seconds", "_count")[(("result", "ok"),)])
        self.assertGreater(hc_first, 0)
        entries = self.samples(second, "l4lb_flow_table_entries")
        self.assertGreater(entries[(("family", "ipv4"), ("worker", "0"))], 0)
        rx1 = self.samples(first, "l4lb_events", "_total")[(("event", "rx_packets"),)]
        rx2 = self.samples(second, "l4lb_events", "_total")[(("event", "rx_packets"),)]
        self.assertGreater(rx2, rx1)
        p1, p2 = self.samples(first, "l4lb_packets", "_total"), self.samples(second, "l4lb_packets", "_total")
        print(f"  metrics: rx_packets {rx1:.0f} -> {rx2:.0f}; per backend {sorted(p1.values())} -> {sorted(p2.values())}")
        # Per-backend packets rise for every backend during traffic.
        self.assertEqual(set(p2), set(up))
        for k in p2:
            self.assertGreater(p2[k], p1[k], k)

    def test_2_drain_keeps_the_transfer_and_undrain_restores(self):
        size = 4 << 20
        for i in range(3):
            self.lab.set_knob(i, "blob", size)
            self.lab.set_knob(i, "rate", 1 << 20)
        result = {}
        # 16 transfers over 3 equal backends: all miss b2 with probability (2/3)^16 = 0.15 %.
        th = threading.Thread(target=lambda: result.update(client(self.lab, "blob", self.lab.vip4, 80, 16, timeout=60)))
        th.start()
        try:
            time.sleep(0.7)
            pos = self.lb.log_size()
            rc, out, err = ctl(self.sock, "drain", self.b["b2"])
            self.assertEqual((rc, out), (0, f"drained {self.b['b2']}:0 in {self.lab.vip4}:80/tcp\n"), err)
            self.lb.wait_log(re.escape(f"backend {self.b['b2']} of VIP {self.lab.vip4}:80/tcp: healthy -> draining (drained by l4lbctl)"), pos)
            r = client(self.lab, "conns", self.lab.vip4, 80, 300, 16)
            self.assertEqual(r["fail"], 0, r)
            self.assertNotIn("b2", r["backends"])
            drift = self.json("status")["drift"]
            self.assertEqual(drift, [{"vip": f"{self.lab.vip4}:80/tcp", "backend": f"{self.b['b2']}:0",
                                      "what": "drained", "file": "not drained", "running": "drained"}])
            rc, out, _ = ctl(self.sock, "status")
            self.assertIn("drift (changed by l4lbctl, not in the config file):", out)
            b2 = [b for b in self.json("backends")["backends"] if b["address"] == self.b["b2"]][0]
            self.assertEqual(b2["state"], "draining")
        finally:
            th.join()
        on_b2 = [t for t in result["transfers"] if t.get("backend") == "b2"]
        print(f"  drain: {len(on_b2)} transfers on b2 when drained")
        assert_transfers_complete(self, result, size, on_b2)
        for i in range(3):
            self.lab.set_knob(i, "blob", None)
            self.lab.set_knob(i, "rate", None)

        rc, out, err = ctl(self.sock, "undrain", self.b["b2"])
        self.assertEqual(rc, 0, err)
        r = client(self.lab, "conns", self.lab.vip4, 80, 300, 16)
        self.assertEqual(r["fail"], 0, r)
        print(f"  undrain: {r['backends']}")
        self.assertGreater(r["backends"].get("b2", 0), 300 / 3 * 0.6)
        self.assertEqual(self.json("status")["drift"], [])

    def test_3_weight_changes_shares(self):
        rc, out, err = ctl(self.sock, "weight", self.b["b1"], "4")
        self.assertEqual((rc, out), (0, f"weight {self.b['b1']}:0 in {self.lab.vip4}:80/tcp (1 -> 4)\n"), err)
        try:
            self.assertEqual(self.json("status")["drift"],
                             [{"vip": f"{self.lab.vip4}:80/tcp", "backend": f"{self.b['b1']}:0", "what": "weight",
                               "file": 1, "running": 4}])
            n = 600
            r = client(self.lab, "conns", self.lab.vip4, 80, n, 16)
            self.assertEqual(r["fail"], 0, r)
            share = r["backends"].get("b1", 0) / n
            print(f"  weight 4:1:1: {r['backends']} (b1 share {share:.2f}, expected 0.67)")
            self.assertAlmostEqual(share, 4 / 6, delta=0.08)
        finally:
            rc, out, err = ctl(self.sock, "weight", self.b["b1"], "1")
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.json("status")["drift"], [])
        r = client(self.lab, "conns", self.lab.vip4, 80, 600, 16)
        self.assertAlmostEqual(r["backends"].get("b1", 0) / 600, 1 / 3, delta=0.08)

    def test_4_explain_reads_the_flow_tables(self):
        n = 16
        ports_file = os.path.join(self.lab.state_dir, "held.json")
        if os.path.exists(ports_file):
            os.unlink(ports_file)
        result = {}
        th = threading.Thread(target=lambda: result.update(
            client(self.lab, "hold", self.lab.vip4, 80, n, 5.0, ports_file)))
        th.start()
        moved = 0
        try:
            deadline = time.monotonic() + 4
            while not os.path.exists(ports_file) and time.monotonic() < deadline:
                time.sleep(0.05)
            with open(ports_file) as f:
                held = json.load(f)
            self.assertEqual(len(held), n)
            # Tilt the Maglev table: many open connections now sit on slots that belong to b1.
            rc, out, err = ctl(self.sock, "weight", self.b["b1"], "6")
            self.assertEqual(rc, 0, err)
            explained = []
            for addr, sport in held:
                r = self.json("explain", "tcp", f"{addr}:{sport}", f"{self.lab.vip4}:80")
                e = r["flow_entry"]
                self.assertIsNotNone(e, r)
                self.assertEqual((e["worker"], e["expired"], e["backend_usable"]), (0, False, True), r)
                self.assertEqual(r["backend"], e["backend"], r)
                self.assertTrue(r["flow_table"].startswith("hit on worker 0 (established"), r)
                if r["new_flow_backend"] != r["backend"]:
                    moved += 1
                    self.assertIn("an existing flow keeps its backend; a new flow would get "
                                  f"{r['new_flow_backend']} (Maglev slot", r["reason"])
                explained.append(r["backend"])
            rc, out, err = ctl(self.sock, "explain", "tcp", f"{held[0][0]}:{held[0][1]}", f"{self.lab.vip4}:80")
            self.assertEqual(rc, 0, err)
            self.assertRegex(out, r"flow table: hit on worker 0 \(established, idle \d+\.\d s\)")
            # A 5-tuple nobody opened: no entry anywhere, the Maglev choice.
            r = self.json("explain", "tcp", f"{held[0][0]}:1", f"{self.lab.vip4}:80")
            self.assertEqual((r["flow_table"], r["flow_entry"]), ("miss on 1 of 1 workers", None))
            self.assertEqual(r["backend"], r["new_flow_backend"])
        finally:
            th.join()
            rc, out, err = ctl(self.sock, "weight", self.b["b1"], "1")
        self.assertEqual(rc, 0, err)
        # What explain said is what the connections got, before and after the weight change:
        # each kept one backend for its whole life, without an error.
        conns = result["connections"]
        self.assertEqual([c["errors"] for c in conns], [[]] * n)
        got = [f"{self.b[c['seq'][0][0]]}:0" for c in conns]
        self.assertEqual([len(c["seq"]) for c in conns], [1] * n, conns)
        self.assertEqual(explained, got)
        print(f"  explain: {n} open connections, {moved} of them on a backend a new flow would not get")
        self.assertGreater(moved, 0, "the weight change moved no open flow's slot: the test proves nothing")


if __name__ == "__main__":
    unittest.main()
