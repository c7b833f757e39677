"""l4lb's XDP program under DPDK's real net_af_xdp PMD, on a veth between two fresh network
namespaces: the PMD loads the program (xdp_prog=), XdpAddrMap::open finds its maps through the
interface, the kernel keeps answering for the port's own address (ICMP, TCP) while DPDK owns the
queue, VIP traffic and ARP / ND for VIPs reach DPDK and not the kernel, and the program's verdict
counters agree with what DPDK received. The DPDK side is tests/xdp_pmd_probe (xdp_pmd_probe.cc),
the peer side xdp_peer.py. Needs root; about 10 s.
"""

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from l4lb_harness import BUILD_DIR, _record  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
PY = "/usr/bin/python3"
PEER = os.path.join(HERE, "xdp_peer.py")

OWN4, PEER4, VIP4, VIP4_ARP = "198.18.200.1", "198.18.200.2", "198.18.200.10", "198.18.200.11"
OWN6, PEER6, VIP6 = "2001:db8:200::1", "2001:db8:200::2", "2001:db8:200::10"
TCP_PORT = 2222


def sh(*args, check=True, timeout=30):
    r = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(args)}: exit {r.returncode}: {r.stderr.strip()}")
    return r


def snmp(ns, table, field):
    """A counter of the namespace's IP stack (/proc/net/snmp and snmp6 are per namespace)."""
    if table == "Icmp6":
        for line in sh("ip", "netns", "exec", ns, "cat", "/proc/net/snmp6").stdout.splitlines():
            k, v = line.split()
            if k == f"Icmp6{field}":
                return int(v)
        raise AssertionError(f"no Icmp6{field}")
    lines = [ln.split() for ln in sh("ip", "netns", "exec", ns, "cat", "/proc/net/snmp").stdout.splitlines()
             if ln.startswith(table + ":")]
    return int(dict(zip(lines[0][1:], lines[1][1:]))[field])


def delta(after, before):
    return {k: after.get(k, 0) - before.get(k, 0) for k in set(after) | set(before)
            if after.get(k, 0) != before.get(k, 0)}


@unittest.skipUnless(os.geteuid() == 0, "network namespaces and AF_XDP need root")
class XdpPmdTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.probe_bin = os.path.join(BUILD_DIR, "tests", "xdp_pmd_probe")
        cls.obj = os.path.join(BUILD_DIR, "src", "dataplane", "xdp", "l4lb_xdp.o")
        for p in (cls.probe_bin, cls.obj):
            if not os.path.exists(p):
                raise unittest.SkipTest(f"{p} is not built")
        pid = os.getpid()
        cls.ns_b, cls.ns_p = f"l4lb-it-xb-{pid}", f"l4lb-it-xp-{pid}"
        cls.veth_b, cls.veth_p = f"lxb{pid}", f"lxp{pid}"
        cls.prefix = f"l4lb_it_xdp_{pid}"
        cls.proc = None
        cls.closed = None
        try:
            cls._lab()
            cls._start_probe()
        except BaseException:
            cls._cleanup()
            raise

    @classmethod
    def _lab(cls):
        b, p = cls.ns_b, cls.ns_p
        for ns in (b, p):
            _record("netns", ns)
            sh("ip", "netns", "add", ns)
        sh("ip", "link", "add", cls.veth_b, "netns", b, "type", "veth", "peer", "name", cls.veth_p, "netns", p)
        nb = ["ip", "netns", "exec", b]
        np = ["ip", "netns", "exec", p]
        sh(*nb, "ip", "addr", "add", f"{OWN4}/24", "dev", cls.veth_b)
        # The VIPs are kernel addresses too: if the program passed their traffic, the kernel would
        # answer, and the test would see replies.
        sh(*nb, "ip", "addr", "add", f"{VIP4}/32", "dev", cls.veth_b)
        sh(*nb, "ip", "addr", "add", f"{OWN6}/64", "dev", cls.veth_b, "nodad")
        sh(*nb, "ip", "addr", "add", f"{VIP6}/128", "dev", cls.veth_b, "nodad")
        sh(*np, "ip", "addr", "add", f"{PEER4}/24", "dev", cls.veth_p)
        sh(*np, "ip", "addr", "add", f"{PEER6}/64", "dev", cls.veth_p, "nodad")
        for ns, dev in ((b, cls.veth_b), (p, cls.veth_p)):
            sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
            sh("ip", "netns", "exec", ns, "ip", "link", "set", dev, "up")
        # Once XDP is attached, the balancer's veth receives frames as XDP buffers: the checksum
        # the sender left to offload would never be filled in, so TCP needs it done in software.
        sh(*np, "ethtool", "-K", cls.veth_p, "tx", "off")
        # VIP4 resolved statically, so its pings are pure IP; VIP4_ARP and VIP6 are left to
        # ARP / ND, which the program must send to DPDK (which does not answer them here).
        mac = sh(*nb, "cat", f"/sys/class/net/{cls.veth_b}/address").stdout.strip()
        sh(*np, "ip", "neigh", "replace", VIP4, "lladdr", mac, "dev", cls.veth_p, "nud", "permanent")
        cls.mac = mac

    @classmethod
    def _start_probe(cls):
        _record("prefix", cls.prefix)
        cmd = ["ip", "netns", "exec", cls.ns_b, cls.probe_bin, "--iface", cls.veth_b, "--obj", cls.obj,
               "--prefix", cls.prefix, "--addr", f"{OWN4}=own", "--addr", f"{OWN6}=own",
               "--addr", f"{VIP4}=vip", "--addr", f"{VIP4_ARP}=vip", "--addr", f"{VIP6}=vip"]
        cls.stderr = open(os.path.join("/tmp", f"{cls.prefix}.stderr"), "w+")
        cls.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=cls.stderr,
                                    text=True, start_new_session=True)
        _record("pid", cls.proc.pid)
        cls.lines = queue.Queue()
        threading.Thread(target=cls._reader, daemon=True).start()
        cls.ready = cls._event("ready", timeout=30)

    @classmethod
    def _reader(cls):
        for line in cls.proc.stdout:
            cls.lines.put(line)
        cls.lines.put(None)

    @classmethod
    def _event(cls, name, timeout=10):
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = cls.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"xdp_pmd_probe: no '{name}' event within {timeout} s") from None
            if line is None:
                cls.stderr.seek(0)
                raise AssertionError(f"xdp_pmd_probe exited (status {cls.proc.wait()}) before '{name}': "
                                     f"{cls.stderr.read()[-2000:]}")
            try:
                ev = json.loads(line)
            except ValueError:
                continue  # DPDK's own log lines
            if ev.get("event") == "error":
                raise AssertionError(f"xdp_pmd_probe: {ev['error']}")
            if ev.get("event") == name:
                return ev

    @classmethod
    def _stats(cls):
        cls.proc.stdin.write("stats\n")
        cls.proc.stdin.flush()
        return cls._event("stats")

    @classmethod
    def _cleanup(cls):
        if cls.proc is not None and cls.proc.poll() is None:
            try:
                cls.proc.stdin.write("quit\n")
                cls.proc.stdin.flush()
                cls.closed = cls._event("closed", timeout=15)
            except (AssertionError, BrokenPipeError, OSError):
                pass
            try:
                cls.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(cls.proc.pid, signal.SIGKILL)
                cls.proc.wait(5)
        if cls.proc is not None:
            _record("reaped", cls.proc.pid)
        for ns in (cls.ns_b, cls.ns_p):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        shutil.rmtree(f"/var/run/dpdk/{cls.prefix}", ignore_errors=True)
        if getattr(cls, "stderr", None):
            cls.stderr.close()
            os.unlink(cls.stderr.name)

    @classmethod
    def tearDownClass(cls):
        cls._cleanup()

    def peer(self, *args):
        r = sh("ip", "netns", "exec", self.ns_p, PY, PEER, *map(str, args))
        return json.loads(r.stdout.strip().splitlines()[-1])

    def test_1_open_finds_the_pmds_program(self):
        # Before the PMD attached it there was nothing; after, open() found both maps and sync()
        # filled the address map.
        self.assertEqual(self.ready["before"], f"no XDP program on {self.veth_b}")
        self.assertEqual(self.ready["addrs"], 5)

    def test_2_own_address_is_the_kernels(self):
        s0 = self._stats()
        echos4, echos6 = snmp(self.ns_b, "Icmp", "InEchos"), snmp(self.ns_b, "Icmp6", "InEchos")
        self.assertEqual(self.peer("ping", OWN4, 4, 1.0), {"sent": 4, "replies": 4})
        self.assertEqual(self.peer("ping", OWN6, 3, 1.0), {"sent": 3, "replies": 3})
        s1 = self._stats()
        self.assertEqual(snmp(self.ns_b, "Icmp", "InEchos") - echos4, 4)
        self.assertEqual(snmp(self.ns_b, "Icmp6", "InEchos") - echos6, 3)
        self.assertEqual(delta(s1["xdp"], s0["xdp"]).get("pass_own"), 7)
        d = delta(s1["xdp"], s0["xdp"])
        self.assertFalse({k for k in d if k.startswith("redirect")}, d)
        self.assertEqual(delta(s1["rx"], s0["rx"]), {})

    def test_3_tcp_to_own_address(self):
        server = subprocess.Popen(["ip", "netns", "exec", self.ns_b, PY, PEER, "serve", OWN4, str(TCP_PORT)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            self.assertEqual(server.stdout.readline().strip(), "listening")
            s0 = self._stats()
            self.assertEqual(self.peer("tcp", OWN4, TCP_PORT),
                             {"echoed": True, "got": "hello through the kernel path\n"})
            self.assertEqual(server.wait(10), 0)
            s1 = self._stats()
        finally:
            if server.poll() is None:
                server.kill()
                server.wait()
        d = delta(s1["xdp"], s0["xdp"])
        self.assertGreaterEqual(d.get("pass_own", 0), 4)  # SYN, ACK, data, FIN at least
        self.assertFalse({k for k in d if k.startswith("redirect")}, d)
        self.assertEqual(delta(s1["rx"], s0["rx"]), {})

    def test_4_vip_traffic_reaches_dpdk_not_the_kernel(self):
        s0 = self._stats()
        echos = snmp(self.ns_b, "Icmp", "InEchos")
        self.assertEqual(self.peer("ping", VIP4, 5, 0.5), {"sent": 5, "replies": 0})
        time.sleep(0.2)  # the probe polls every 1 ms when idle
        s1 = self._stats()
        self.assertEqual(snmp(self.ns_b, "Icmp", "InEchos"), echos)
        self.assertEqual(delta(s1["rx"], s0["rx"]), {f"ip4:{VIP4}": 5})
        # The peer's own background traffic (IPv6 MLD reports, ...) may add pass_other / pass_nd.
        d = delta(s1["xdp"], s0["xdp"])
        self.assertEqual({k: v for k, v in d.items() if k.startswith("redirect") or k == "pass_own"},
                         {"redirect_vip": 5})

    def test_5_arp_and_nd_for_vips_reach_dpdk(self):
        s0 = self._stats()
        # Unresolved: the peer's kernel sends ARP requests / neighbour solicitations, never the
        # echo requests themselves.
        self.assertEqual(self.peer("ping", VIP4_ARP, 1, 1.5), {"sent": 1, "replies": 0})
        self.assertEqual(self.peer("ping", VIP6, 1, 1.5), {"sent": 1, "replies": 0})
        time.sleep(0.2)
        s1 = self._stats()
        rx = delta(s1["rx"], s0["rx"])
        xdp = delta(s1["xdp"], s0["xdp"])
        self.assertGreaterEqual(rx.get(f"arp:{VIP4_ARP}", 0), 1, rx)
        self.assertGreaterEqual(rx.get(f"ns:{VIP6}", 0), 1, rx)
        self.assertEqual(set(rx), {f"arp:{VIP4_ARP}", f"ns:{VIP6}"}, rx)
        self.assertEqual(xdp.get("redirect_arp_vip"), rx[f"arp:{VIP4_ARP}"], xdp)
        self.assertEqual(xdp.get("redirect_nd_vip"), rx[f"ns:{VIP6}"], xdp)
        self.assertNotIn("redirect_vip", xdp)
        self.assertNotIn("redirect_no_xsk", xdp)

    def test_6_every_redirect_found_the_socket(self):
        s = self._stats()
        self.assertEqual(s["xdp"]["redirect_no_xsk"], 0)
        redirected = sum(v for k, v in s["xdp"].items() if k.startswith("redirect_") and k != "redirect_no_xsk")
        self.assertEqual(s["rx_total"], redirected)

    def test_7_close_detaches_the_program(self):
        cls = type(self)
        cls._cleanup_probe_only()
        self.assertIsNotNone(cls.closed)
        self.assertEqual(cls.closed["after"], f"no XDP program on {self.veth_b}")

    @classmethod
    def _cleanup_probe_only(cls):
        cls.proc.stdin.write("quit\n")
        cls.proc.stdin.flush()
        cls.closed = cls._event("closed", timeout=15)
        cls.proc.wait(10)


if __name__ == "__main__":
    unittest.main()
