"""A restart after a crash on an AF_XDP port with exception_path "xdp": a SIGKILLed l4lb leaves
its XDP program attached (only a clean stop detaches it) and DPDK's net_af_xdp PMD refuses to
attach over any program, so the new l4lb detaches the leftover when it is l4lb's and abandoned
(control/xdp_reclaim.cc), with a warning; a foreign program is never removed: l4lb refuses to
start, naming it. l4lb runs on a veth between two fresh network namespaces; the peer pings the
VIP (answered by l4lb through DPDK: the program redirects VIP traffic to the AF_XDP socket).
Needs root and clang; about 15 s.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from l4lb_harness import BUILD_DIR, _record  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
PY = "/usr/bin/python3"
PEER = os.path.join(HERE, "xdp_peer.py")
OWN4, PEER4, VIP4, BACKEND4 = "198.18.202.1", "198.18.202.2", "198.18.202.10", "198.18.202.20"

# A program that is not l4lb's (named "foreign_xdp", no l4lb maps); compiled in the test.
FOREIGN_C = r"""
struct xdp_md;
__attribute__((section("xdp"), used)) int foreign_xdp(struct xdp_md *ctx) { return 2; /* XDP_PASS */ }
char LICENSE[] __attribute__((section("license"), used)) = "GPL";
"""


def sh(*args, check=True, timeout=30):
    r = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(args)}: exit {r.returncode}: {r.stderr.strip()}")
    return r


class XdpRestartTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        tag = f"{os.getpid() % 100000}"
        cls.ns_b, cls.ns_p = f"l4xr{tag}b", f"l4xr{tag}p"
        cls.veth_b, cls.veth_p = f"xr{tag}b", f"xr{tag}p"
        cls.prefix = f"l4lb_xr{tag}"
        cls.tmp = tempfile.mkdtemp(prefix="l4lb_xr")
        _record("tmp", cls.tmp)
        cls.sock = os.path.join(cls.tmp, "ctl.sock")
        cls.procs = []
        try:
            for ns in (cls.ns_b, cls.ns_p):
                _record("netns", ns)
                sh("ip", "netns", "add", ns)
                sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
            sh("ip", "link", "add", cls.veth_b, "netns", cls.ns_b, "type", "veth", "peer", "name", cls.veth_p,
               "netns", cls.ns_p)
            # One queue each way: the PMD binds queue 0 only.
            for ns, dev, addr in ((cls.ns_b, cls.veth_b, OWN4), (cls.ns_p, cls.veth_p, PEER4)):
                sh("ip", "netns", "exec", ns, "ip", "addr", "add", f"{addr}/24", "dev", dev)
                sh("ip", "netns", "exec", ns, "ip", "link", "set", dev, "up")
            cls.cfg = os.path.join(cls.tmp, "l4lb.toml")
            with open(cls.cfg, "w") as f:
                f.write(f'''[eal]
main_core = 0
worker_cores = [1]
hugepages = false
memory_mb = 256
file_prefix = "{cls.prefix}"

[[ports]]
name = "seg"
device = "net_af_xdp0,iface={cls.veth_b}"
exception_path = "xdp"
ipv4 = "{OWN4}/24"

[control]
socket = "{cls.sock}"

[[vips]]
name = "web"
address = "{VIP4}"
port = 80
protocol = "tcp"
forwarding = "dsr"
[[vips.backends]]
address = "{BACKEND4}"
''')
        except BaseException:
            cls._cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        cls._cleanup()

    @classmethod
    def _cleanup(cls):
        for p in cls.procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        for ns in (cls.ns_b, cls.ns_p):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        shutil.rmtree(cls.tmp, ignore_errors=True)
        shutil.rmtree(f"/var/run/dpdk/{cls.prefix}", ignore_errors=True)

    def tearDown(self):
        """Each test starts from a bare interface: its daemons stopped, no program attached."""
        for p in self.procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        sh("ip", "netns", "exec", self.ns_b, "ip", "link", "set", "dev", self.veth_b, "xdp", "off", check=False)

    # -- helpers --------------------------------------------------------------------------------
    def xdp(self):
        """The interface's "xdp" entry of `ip -j link show` (None: no program attached)."""
        out = sh("ip", "netns", "exec", self.ns_b, "ip", "-j", "-d", "link", "show", "dev", self.veth_b).stdout
        return json.loads(out)[0].get("xdp")

    def start(self, expect_started=True, timeout=20, env=None):
        """Starts l4lb; returns (process, its log path). Waits for "started" or its exit."""
        log = os.path.join(self.tmp, f"l4lb{len(self.procs)}.log")
        with open(log, "wb") as f:
            p = subprocess.Popen(["ip", "netns", "exec", self.ns_b, os.path.join(BUILD_DIR, "l4lb"), "-c", self.cfg],
                                 stdout=f, stderr=f, stdin=subprocess.DEVNULL, start_new_session=True,
                                 env=dict(os.environ, **env) if env else None)
        _record("pid", p.pid)
        self.procs.append(p)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            text = self.read(log)
            if "l4lb info: started" in text or p.poll() is not None:
                break
            time.sleep(0.05)
        text = self.read(log)
        if expect_started:
            self.assertIsNone(p.poll(), f"l4lb exited with {p.returncode}:\n{text[-3000:]}")
            self.assertIn("l4lb info: started", text, text[-3000:])
        return p, log

    @staticmethod
    def read(path):
        with open(path, errors="replace") as f:
            return f.read()

    def kill(self, p):
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()

    def ping_vip(self):
        r = sh("ip", "netns", "exec", self.ns_p, PY, PEER, "ping", VIP4, "5", "1.0")
        return json.loads(r.stdout)

    def status(self):
        r = sh(os.path.join(BUILD_DIR, "l4lbctl"), "-s", self.sock, "--json", "status")
        return json.loads(r.stdout)

    # -- tests ----------------------------------------------------------------------------------
    def crash(self):
        """Starts l4lb, checks it answers, SIGKILLs it; returns the id of the program it left."""
        p, _ = self.start()
        self.assertGreater(self.ping_vip()["replies"], 0, "l4lb answers the VIP")
        left = self.xdp()
        self.assertIsNotNone(left, "l4lb's program is attached while it runs")
        self.assertEqual(left["prog"]["name"], "l4lb_xdp")
        self.kill(p)
        # The crash leaves it attached: what the restart has to deal with.
        still = self.xdp()
        self.assertIsNotNone(still, "SIGKILL leaves the program attached")
        self.assertEqual(still["prog"]["id"], left["prog"]["id"])
        return left["prog"]["id"]

    def test_1_restart_after_sigkill_reclaims_our_program(self):
        # Negative control: without the reclaim, the PMD refuses and l4lb does not start. (Its
        # error path then closes the port, and the PMD's close detaches whatever program is on
        # the interface: hence a second crash below.)
        self.crash()
        pn, logn = self.start(expect_started=False, env={"L4LB_TEST_HOOKS": "1", "L4LB_TEST_NO_XDP_RECLAIM": "1"})
        pn.wait(timeout=20)
        textn = self.read(logn)
        self.assertNotEqual(pn.returncode, 0, textn[-3000:])
        self.assertIn("XDP program already attached", textn)
        self.assertNotIn("l4lb info: started", textn)

        old_id = self.crash()
        p2, log = self.start()
        text = self.read(log)
        self.assertRegex(text, rf"interface {self.veth_b}: detached l4lb's stale XDP program id {old_id}\b")
        self.assertTrue(self.status()["ok"])
        self.assertGreater(self.ping_vip()["replies"], 0, "the restarted l4lb answers the VIP")
        now = self.xdp()
        self.assertIsNotNone(now)
        self.assertNotEqual(now["prog"]["id"], old_id, "the new l4lb's own program")
        # A second l4lb on the same port while this one lives: its program is in use, not stale.
        p3, log3 = self.start(expect_started=False)
        p3.wait(timeout=20)
        self.assertNotEqual(p3.returncode, 0)
        self.assertRegex(self.read(log3), rf"interface {self.veth_b} has l4lb's XDP program id {now['prog']['id']} "
                                          r"attached and in use by pid \d+ \(")
        self.assertEqual(self.xdp()["prog"]["id"], now["prog"]["id"], "the live l4lb's program stays")
        self.assertGreater(self.ping_vip()["replies"], 0, "the live l4lb still answers")
        # A clean stop detaches it (nothing to reclaim for the next test).
        os.killpg(p2.pid, signal.SIGTERM)
        p2.wait(timeout=20)
        self.assertIsNone(self.xdp())

    def test_2_foreign_program_is_left_alone(self):
        if shutil.which("clang") is None:
            self.skipTest("no clang")
        src, obj = os.path.join(self.tmp, "foreign.c"), os.path.join(self.tmp, "foreign.o")
        with open(src, "w") as f:
            f.write(FOREIGN_C)
        sh("clang", "-O2", "-target", "bpf", "-c", src, "-o", obj)
        sh("ip", "netns", "exec", self.ns_b, "ip", "link", "set", "dev", self.veth_b, "xdpdrv", "obj", obj, "sec", "xdp")
        try:
            before = self.xdp()
            self.assertIsNotNone(before)
            fid = before["prog"]["id"]
            p, log = self.start(expect_started=False)
            p.wait(timeout=20)
            text = self.read(log)
            self.assertNotEqual(p.returncode, 0, text[-3000:])
            self.assertIn(f"port seg: interface {self.veth_b} has a foreign XDP program attached: id {fid}, "
                          f'name "foreign_xdp"; l4lb does not remove other programs', text)
            self.assertEqual(self.xdp()["prog"]["id"], fid, "the foreign program is still attached")
        finally:
            sh("ip", "netns", "exec", self.ns_b, "ip", "link", "set", "dev", self.veth_b, "xdp", "off", check=False)


if __name__ == "__main__":
    unittest.main()
