"""Scale-out end to end: three balancers behind an ECMP router in the lab
(scripts/lib/ecmp_lab.py), each l4lb with its own BIRD, flow sync between them.

  1. A balancer dies under load: 200 long-lived TCP connections (100 IPv4, 100 IPv6) exchange
     data every 100 ms, every byte checked, plus UDP flows; within one second the survivors
     get a new backend (reload) and drain one, and one balancer is killed (SIGKILL, l4lb and
     its BIRD). Traffic goes on for 20 s. With sync: no connection reset or stalled, every
     byte verified, the router's route loses the dead balancer (its kernel next hops and
     `birdc show route`), the survivors' flow_peer_hit > 0 (flows really moved and were found
     in state a peer sent), and no UDP flow changed backend.
  2. Negative control: the same without [sync]. The moved flows meet a Maglev table that
     changed under them and are reset: the test asserts resets > 0, so test 1 can fail.
  3. Graceful drain: `l4lbctl drain-balancer` on one balancer; the router drops it within the
     drain time, it receives no more packets, and stopping it then resets nothing.
  4. Announcement: a VIP whose every backend fails is withdrawn at the router and announced
     again when one recovers.

One lab for the module; the balancers are restarted between tests. Figures are printed for the
closing note. Everything is bounded in time (the module: about two minutes).
"""
import json
import os
import subprocess
import time
import unittest

from e2e_common import BUILD_DIR, REPO_ROOT, _record, client, sh
from ecmp_cluster import Cluster, Traffic, scale_out_scenario, summarize
from ecmp_lab import EcmpLab

HEALTH = {"type": "tcp", "interval_ms": 300, "timeout_ms": 250, "rise": 2, "fall": 2}
CONNS_PER_FAMILY = 100      # 200 connections
UDP_PER_FAMILY = 10
AFTER_S = 20.0              # traffic after the faults
VICTIM, ADD, DRAIN = 0, 3, 1  # lb1 dies; b4 joins the survivors; b2 is drained on them
DRAIN_TIME = 2              # [bgp] drain_time in the lab's configs (EcmpLab.bgp_defaults)


class ScaleOut(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        prefix = f"s{os.getpid() % 100000}"
        _record("lab", prefix)
        lab = EcmpLab(prefix, balancers=3, ipv6=True, backends=5, announce="l4lb")
        cls.lab = lab.up()
        cls.cluster = None

    @classmethod
    def tearDownClass(cls):
        try:
            if cls.cluster:
                cls.cluster.stop_all()
        finally:
            cls.lab.down()

    def fresh(self, sync):
        """Every balancer (re)started from its base config: the pool b1..b3, nothing drained."""
        if self.cluster:
            self.cluster.stop_all()
        type(self).cluster = Cluster(self.lab, BUILD_DIR, sync=sync, bgp=True, health=HEALTH)
        self.cluster.start_all()
        return self.cluster

    def report(self, name, s):
        # Sync records: what each survivor's workers announced (new confirmed flows and the
        # sweep's re-announcements) and received from peers (inserted or refreshed), per second
        # over the whole scenario.
        t = max(s.get("elapsed_s", 0), 1e-3)
        surv = ", ".join(f"{k}: peer hits {v['flow_peer_hit']}, new {v['flow_new']}, sync records out "
                         f"{v.get('sync_announced', 0) / t:.0f}/s in "
                         f"{(v.get('sync_in_inserted', 0) + v.get('sync_in_refreshed', 0)) / t:.0f}/s"
                         for k, v in s["survivors"].items())
        print(f"  {name}: {s['connections']} connections, {s['reset']} reset, {s['stalled']} stalled, "
              f"{s['mismatch']} mismatched, {s['other']} other; {s['bytes_verified']}/{s['bytes_sent']} bytes "
              f"verified; longest exchange {s['max_exchange_s']:.3f} s; UDP {s['udp_replies']} replies, "
              f"{s['udp_lost']} lost, {s['udp_backend_changes']} backend changes; faults in "
              f"{s['fault_window_s']:.2f} s (kill at {s['kill_at_s']:.2f} s); router withdrew lb{VICTIM + 1} after "
              + ", ".join(f"{v:.3f} s ({k})" for k, v in s["withdrawn_s"].items())
              + f"; {s['victim_flows']} flows were on it; {surv}")

    def check_router_withdrew(self, victim):
        lab = self.lab
        for vip, addr in ((lab.vip4, lab.lb4[victim]), (lab.vip6, lab.lb6[victim])):
            routes = lab.router_routes(vip)
            self.assertIn(vip, routes)
            self.assertNotIn(f"via {addr} ", routes, f"router still has lb{victim + 1}'s route:\n{routes}")
            self.assertNotIn(addr, lab.nexthops(vip))

    def test_0_ecmp_spreads_flows_over_every_balancer(self):
        """The lab itself: every balancer's route at the router (start_all waits for it) and the
        client's new flows spread over all three by the router's L4 hash."""
        c = self.fresh(sync=True)
        lab = self.lab
        before = [c.counters(i)["flow_new"] for i in range(lab.nb)]
        for vip in (lab.vip4, lab.vip6):
            r = client(lab, "conns", vip, 80, 300, 8, timeout=60)
            self.assertEqual(r["fail"], 0, r)
        got = [c.counters(i)["flow_new"] - before[i] for i in range(lab.nb)]
        print("  ECMP: 600 new connections: " + ", ".join(f"lb{i + 1} {n}" for i, n in enumerate(got)))
        self.assertTrue(600 <= sum(got) <= 620, got)  # a retransmitted SYN may count twice
        for n in got:  # 1/3 each; binomial sd of a share over 600 draws is 0.019
            self.assertTrue(0.2 <= n / sum(got) <= 0.47, got)

    def test_1_balancer_dies_with_sync_no_connection_lost(self):
        c = self.fresh(sync=True)
        s = scale_out_scenario(c, VICTIM, ADD, DRAIN, CONNS_PER_FAMILY, UDP_PER_FAMILY, after=AFTER_S)
        res = s.pop("result")
        self.report("with sync", s)
        bad = [r for r in res["tcp"] if r["error"]]
        self.assertEqual(bad, [], f"{len(bad)} connections failed: {bad[:5]}")
        self.assertEqual(s["connections"], 2 * CONNS_PER_FAMILY)
        self.assertEqual(s["bytes_verified"], s["bytes_sent"])
        # Exchanges went on all the time: none waited out a stall, each made most of its rounds.
        self.assertGreater(s["min_exchanges"], 0.5 * (AFTER_S + 4) / res["interval"])
        self.assertLessEqual(s["fault_window_s"], 1.0)
        self.check_router_withdrew(VICTIM)
        self.assertGreater(s["victim_flows"], 0)
        for name, v in s["survivors"].items():
            self.assertGreater(v["flow_peer_hit"], 0, f"{name}: no flow found in a peer's state: {s['survivors']}")
        self.assertEqual(s["udp_backend_changes"], 0, [r for r in res["udp"] if r["changes"]])

    def test_2_without_sync_connections_are_reset(self):
        """Negative control: no [sync]; 5 s of traffic after the faults is enough to see it."""
        c = self.fresh(sync=False)
        s = scale_out_scenario(c, VICTIM, ADD, DRAIN, CONNS_PER_FAMILY, UDP_PER_FAMILY, after=5.0)
        s.pop("result")
        self.report("without sync", s)
        self.check_router_withdrew(VICTIM)
        self.assertGreater(s["reset"], 0, "no connection was reset without sync: the scenario does not test sync")
        self.assertEqual(sum(v["flow_peer_hit"] for v in s["survivors"].values()), 0)

    def test_3_graceful_drain_moves_traffic_without_resets(self):
        c = self.fresh(sync=True)
        lab, victim = self.lab, 2
        tr = Traffic(lab, CONNS_PER_FAMILY, 2.0 + DRAIN_TIME + 3.0 + 2.0, UDP_PER_FAMILY)
        try:
            tr.wait_ready()
            time.sleep(2.0)
            t0 = time.monotonic()
            c.ctl(victim, "drain-balancer")
            gone = {vip: c.wait_nexthops(vip, [0, 1], timeout=DRAIN_TIME + 3) - t0 for vip in c.vips()}
            time.sleep(max(0.0, t0 + DRAIN_TIME - time.monotonic()))
            rx0 = c.counters(victim)["rx_packets"]
            time.sleep(1.0)
            rx1 = c.counters(victim)["rx_packets"]
            cluster_view = json.loads(c.ctl(victim, "cluster", "--json"))
            stats = c.stop(victim)
            res = tr.result()
        finally:
            tr.kill()
        s = summarize(res)
        print(f"  graceful drain of lb{victim + 1}: router next hops gone after "
              + ", ".join(f"{v:.2f} s ({k})" for k, v in gone.items())
              + f"; packets to it {DRAIN_TIME} s after the drain: {rx1 - rx0} in 1 s; {s['reset']} reset, "
              f"{s['stalled']} stalled of {s['connections']}")
        self.assertTrue(cluster_view.get("balancer_drained"), cluster_view)
        self.assertIsNotNone(stats)
        for t in gone.values():
            self.assertLessEqual(t, DRAIN_TIME)
        self.assertEqual(rx1 - rx0, 0)
        self.assertEqual(s["failed"], 0, [r for r in res["tcp"] if r["error"]][:5])
        self.assertEqual(s["bytes_verified"], s["bytes_sent"])

    def test_4_vip_without_backends_is_withdrawn_and_announced_again(self):
        c = self.fresh(sync=True)
        lab = self.lab
        anns = [lab.ann4, lab.ann6]
        everyone = range(lab.nb)
        for vip in anns:
            c.wait_nexthops(vip, everyone, timeout=10)
        t0 = time.monotonic()
        lab.stop_server(lab.n - 1)  # the only backend of the ann VIPs
        down = {vip: c.wait_nexthops(vip, [], timeout=10) - t0 for vip in anns}
        for vip in (lab.vip4, lab.vip6):  # the other VIPs stay
            self.assertEqual(len(lab.nexthops(vip)), lab.nb)
        self.assertNotIn("unicast", lab.router_routes(lab.ann4))
        t1 = time.monotonic()
        lab.start_server(lab.n - 1)
        up = {vip: c.wait_nexthops(vip, everyone, timeout=15) - t1 for vip in anns}
        print("  announcement: withdrawn after " + ", ".join(f"{v:.2f} s ({k})" for k, v in down.items())
              + "; announced again after " + ", ".join(f"{v:.2f} s ({k})" for k, v in up.items()))
        # Health: fall 2 x 300 ms + timeout; then l4lb's BIRD reconfigure and one BGP update.
        for t in down.values():
            self.assertLessEqual(t, 5.0)
        view = json.loads(c.ctl(0, "cluster", "--json"))
        self.assertTrue(any(a.get("announced") for a in view.get("announcements", [])), view)


if __name__ == "__main__":
    unittest.main()


def running(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class LabDown(unittest.TestCase):
    def test_down_removes_everything_after_a_crash(self):
        """`scripts/lab.sh up --topology ecmp --start` leaves the lab running (l4lb and BIRDs in
        their namespaces, the router's BIRD); with its state file gone as after a crash,
        `scripts/lab.sh down` still removes every process, namespace and EAL directory."""
        prefix = f"d{os.getpid() % 100000}"
        _record("lab", prefix)
        lab_sh = os.path.join(REPO_ROOT, "scripts", "lab.sh")
        try:
            r = subprocess.run([lab_sh, "up", "--topology", "ecmp", "--balancers", "1", "--backends", "1",
                                "--prefix", prefix, "--start", "--build", BUILD_DIR],
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stderr)
            nss = [n for n in sh("ip", "netns", "list", capture=True).split() if n.startswith(prefix + "-")]
            self.assertEqual(len(nss), 5, nss)  # client, router, switch, lb1, b1
            pids = [int(p) for ns in nss for p in sh("ip", "netns", "pids", ns, capture=True).split()]
            comms = sorted(open(f"/proc/{p}/comm").read().strip() for p in pids)
            self.assertEqual([x for x in comms if x != "python3"], ["bird", "bird", "l4lb"], comms)
            self.assertTrue(os.path.isdir(f"/var/run/dpdk/l4lb_lab_{prefix}_lb1"))
            os.unlink(f"/run/l4lb-lab/{prefix}/lab.json")
        finally:
            r = subprocess.run([lab_sh, "down", "--prefix", prefix], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual([n for n in sh("ip", "netns", "list", capture=True).split() if n.startswith(prefix + "-")], [])
        for p in pids:  # gone, or a zombie its new parent (pid 1 here) has not reaped yet
            self.assertFalse(running(p), f"pid {p} still runs")
        self.assertFalse(os.path.exists(f"/var/run/dpdk/l4lb_lab_{prefix}_lb1"))
        self.assertFalse(os.path.exists(f"/run/l4lb-lab/{prefix}"))
