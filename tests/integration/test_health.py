"""Health checks against real servers in network namespaces, run by tests/tools/health_driver
(HealthChecker with real sockets and the real clock).

Two namespaces joined by a veth: the driver runs in the client one and binds every check to its
address (HealthTarget::source); the servers run in the server one. For each check type (TCP,
HTTP whose status changes, UDP echo, an HTTP server that turns slow) the test waits for Up,
breaks the server, measures the time until the driver reports Down and asserts it is within
fall*interval + timeout + 0.5 s; then restores the server and asserts Up within
rise*interval*(1 + jitter) + 0.5 s. The measured times are printed.

The scale run checks 1000 addresses (a /22 routed to the server namespace's loopback as local
addresses: one listener answers them all) at a 1 s interval for 5 s, and asserts every target
was checked the expected number of times and no check started more than LATE_BOUND_MS after it
was due (see there); it prints p50/p99/max lateness.

Addresses: 198.18.200.0/24 on the veth, 198.19.0.0/22 for the scale run (RFC 2544 range).
Namespaces, veth and every process are removed in tearDownModule, and recorded for run.sh's
cleanup in case this process is killed first.

This file is also its own server: `test_health.py --serve KIND ADDR PORT CONTROL_FILE`.
"""

import json
import os
import queue
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD_DIR = os.environ.get("L4LB_BUILD_DIR", os.path.join(REPO_ROOT, "build"))
DRIVER = os.path.join(BUILD_DIR, "tests", "health_driver")
PY = "/usr/bin/python3"
HERE = os.path.abspath(__file__)

TAG = f"{os.getpid()}{random.randrange(1000):03d}"
NS_CLIENT = f"l4lbhc-c-{TAG}"
NS_SERVER = f"l4lbhc-s-{TAG}"
VETH_C = f"hc{TAG}c"[:15]
VETH_S = f"hc{TAG}s"[:15]
CLIENT_IP = "198.18.200.1"
SERVER_IP = "198.18.200.2"
SCALE_NET = "198.19.0.0/22"

# One set of check parameters for the four per-type tests.
INTERVAL_MS, TIMEOUT_MS, RISE, FALL, JITTER = 500, 300, 2, 3, 10
MARGIN_S = 0.5
DOWN_BOUND_S = (FALL * INTERVAL_MS + TIMEOUT_MS) / 1000 + MARGIN_S
UP_BOUND_S = RISE * INTERVAL_MS * (1 + JITTER / 100) / 1000 + MARGIN_S

# Scale run.
SCALE_TARGETS, SCALE_INTERVAL_MS, SCALE_JITTER, SCALE_DURATION_MS = 1000, 1000, 10, 5000
# A check may start this much after it was due. It is the jitter the operator already accepts
# (interval * jitter_pct = 100 ms): a check that late still falls inside the window its interval
# was drawn from. The checker itself adds at most ~1 ms (timeoutMs() rounds up to whole ms, and
# ~20 us of work per check); the rest of the budget is for a shared, busy 2-core host.
LATE_BOUND_MS = SCALE_INTERVAL_MS * SCALE_JITTER / 100


# ---------------------------------------------------------------------------------------------
# servers (run as `test_health.py --serve ...` inside the server namespace)
# ---------------------------------------------------------------------------------------------

def _read_control(path, default):
    try:
        with open(path) as f:
            return f.read().split()
    except OSError:
        return default


def serve(kind, addr, port, control):
    import socket
    port = int(port)
    if kind in ("tcp", "many"):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((addr, port))
        s.listen(4096)
        print("ready", flush=True)
        while True:
            c, _ = s.accept()
            c.close()
    elif kind == "udp":
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((addr, port))
        print("ready", flush=True)
        while True:
            data, peer = s.recvfrom(2048)
            if _read_control(control, ["on"])[0] == "on":
                s.sendto(data, peer)
    elif kind == "http":
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                # CONTROL_FILE: "STATUS DELAY_SECONDS"
                status, delay = _read_control(control, ["200", "0"])
                time.sleep(float(delay))
                self.send_response(int(status))
                self.send_header("Content-Length", "0")
                self.send_header("Connection", "close")
                self.end_headers()

            def log_message(self, *a):
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        srv = ThreadingHTTPServer((addr, port), Handler)
        print("ready", flush=True)
        srv.serve_forever()
    else:
        raise SystemExit(f"unknown server kind {kind}")


# ---------------------------------------------------------------------------------------------
# namespaces and processes
# ---------------------------------------------------------------------------------------------

def _record(kind, value):
    """Tells run.sh what to remove if this process dies before tearDownModule."""
    path = os.environ.get("L4LB_IT_CLEANUP_FILE")
    if path:
        with open(path, "a") as f:
            f.write(f"{kind} {value}\n")


def sh(*args, check=True):
    p = subprocess.run(list(args), capture_output=True, text=True)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(args)}: exit {p.returncode}: {p.stderr.strip()}")
    return p


def in_ns(ns, *args, check=True):
    return sh("ip", "netns", "exec", ns, *args, check=check)


_procs = []
_namespaces = []
_tmp = None


def start_proc(ns, args, ready_line=None):
    p = subprocess.Popen(["ip", "netns", "exec", ns] + args, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=True)
    _procs.append(p)
    _record("hcproc", p.pid)
    if ready_line is not None:
        line = p.stdout.readline()
        if line.strip() != ready_line:
            stop_proc(p)
            raise AssertionError(f"{args}: expected {ready_line!r}, got {line!r}: {p.stderr.read()}")
    return p


def stop_proc(p, sig=signal.SIGTERM):
    """Stops one process we started (by its pid; `ip netns exec` execs, so it is the server
    or driver itself)."""
    if p.poll() is None:
        p.send_signal(sig)
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)
    for f in (p.stdout, p.stderr):
        if f:
            f.close()
    if p in _procs:
        _procs.remove(p)


def setUpModule():
    global _tmp
    if os.geteuid() != 0:
        raise unittest.SkipTest("needs root for network namespaces")
    if not os.access(DRIVER, os.X_OK):
        raise AssertionError(f"{DRIVER} is missing (ninja -C {BUILD_DIR} tests/health_driver)")
    _tmp = tempfile.mkdtemp(prefix="l4lb_it_health_")
    _record("tmpdir", _tmp)
    try:
        for ns in (NS_CLIENT, NS_SERVER):
            sh("ip", "netns", "add", ns)
            _namespaces.append(ns)
            _record("netns", ns)
            in_ns(ns, "ip", "link", "set", "lo", "up")
        sh("ip", "link", "add", VETH_C, "netns", NS_CLIENT, "type", "veth", "peer", "name", VETH_S,
           "netns", NS_SERVER)
        in_ns(NS_CLIENT, "ip", "addr", "add", f"{CLIENT_IP}/24", "dev", VETH_C)
        in_ns(NS_CLIENT, "ip", "link", "set", VETH_C, "up")
        in_ns(NS_CLIENT, "ip", "route", "add", SCALE_NET, "via", SERVER_IP)
        in_ns(NS_SERVER, "ip", "addr", "add", f"{SERVER_IP}/24", "dev", VETH_S)
        in_ns(NS_SERVER, "ip", "link", "set", VETH_S, "up")
        # Every address of the /22 is local to the server namespace ("AnyIP"): one listener on
        # 0.0.0.0 answers 1000 distinct backends.
        in_ns(NS_SERVER, "ip", "route", "add", "local", SCALE_NET, "dev", "lo")
        # Wait until both ends report carrier (LOWER_UP); IPv4 needs no DAD, so then it works.
        for _ in range(100):
            if all("LOWER_UP" in sh("ip", "-n", ns, "-o", "link", "show", "dev", dev).stdout
                   for ns, dev in ((NS_CLIENT, VETH_C), (NS_SERVER, VETH_S))):
                break
            time.sleep(0.05)
    except BaseException:
        tearDownModule()
        raise


def tearDownModule():
    for p in list(_procs):
        stop_proc(p, signal.SIGKILL)
    # Deleting the namespaces removes the veth pair with them.
    for ns in list(_namespaces):
        sh("ip", "netns", "del", ns, check=False)
        _namespaces.remove(ns)
    if _tmp:
        shutil.rmtree(_tmp, ignore_errors=True)


class Driver:
    """health_driver in the client namespace; its JSON lines are collected by a thread."""

    def __init__(self, targets, extra=()):
        path = os.path.join(_tmp, f"targets_{time.monotonic_ns()}.json")
        with open(path, "w") as f:
            json.dump(targets, f)
        self.proc = start_proc(NS_CLIENT, [DRIVER, "--targets", path] + list(extra))
        self.lines = queue.Queue()
        self.all = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            ev = json.loads(line)
            self.all.append(ev)
            self.lines.put(ev)
        self.lines.put(None)

    def next_transition(self, key, timeout):
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no transition for {key} within {timeout:.1f} s; "
                                     f"seen: {[e for e in self.all if e['event'] == 'transition']}")
            try:
                ev = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            if ev is None:
                raise AssertionError(f"driver exited: {self.proc.stderr.read()}")
            if ev["event"] == "transition" and ev["key"] == key:
                return ev

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.reader.join(5)  # reads to EOF before the pipes are closed
        stop_proc(self.proc)


def target(key, type_, port, **kw):
    t = {"key": key, "addr": SERVER_IP, "port": port, "source": CLIENT_IP, "type": type_,
         "interval_ms": INTERVAL_MS, "timeout_ms": TIMEOUT_MS, "rise": RISE, "fall": FALL,
         "jitter_pct": JITTER}
    t.update(kw)
    return t


def server(kind, port, control=""):
    return start_proc(NS_SERVER, [PY, HERE, "--serve", kind, SERVER_IP if kind != "many" else "0.0.0.0",
                                  str(port), control], ready_line="ready")


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


class BreakAndRestore(unittest.TestCase):
    """Up, broken, Down in time, restored, Up in time: for each check type."""

    def cycle(self, key, tgt, break_, restore, down_reason, up_reason, down_bound=DOWN_BOUND_S):
        d = Driver([tgt])
        try:
            up = d.next_transition(key, 3)
            self.assertEqual((up["from"], up["to"], up["reason"]), ("unknown", "up", up_reason))
            time.sleep(0.3)  # a few checks while healthy
            t_break = time.monotonic()
            break_()
            down = d.next_transition(key, down_bound + 2)
            down_s = down["at_ms"] / 1000 - t_break
            t_restore = time.monotonic()
            restore_ready = restore()
            if restore_ready:
                t_restore = restore_ready
            up2 = d.next_transition(key, UP_BOUND_S + 2)
            up_s = up2["at_ms"] / 1000 - t_restore
            print(f"\n  {key}: down after {down_s * 1000:.0f} ms ({down['reason']}; bound "
                  f"{down_bound * 1000:.0f} ms), up after {up_s * 1000:.0f} ms ({up2['reason']}; "
                  f"bound {UP_BOUND_S * 1000:.0f} ms)", end="")
            self.assertEqual((down["from"], down["to"]), ("up", "down"))
            if isinstance(down_reason, re.Pattern):
                self.assertRegex(down["reason"], down_reason)
            else:
                self.assertEqual(down["reason"], down_reason)
            self.assertEqual((up2["from"], up2["to"], up2["reason"]), ("down", "up", up_reason))
            self.assertGreater(down_s, 0)
            self.assertLessEqual(down_s, down_bound)
            self.assertGreater(up_s, 0)
            self.assertLessEqual(up_s, UP_BOUND_S)
            return down
        finally:
            d.stop()

    def test_tcp_listener_killed_and_restarted(self):
        port = 8001
        srv = [server("tcp", port)]

        def break_():
            stop_proc(srv[0])

        def restore():
            srv[0] = server("tcp", port)
            return time.monotonic()  # listening from here on

        self.cycle("tcp", target("tcp", "tcp", port), break_, restore, "connection refused",
                   "connected")
        stop_proc(srv[0])

    def test_http_status_changes(self):
        port, ctl = 8002, os.path.join(_tmp, "http_status")
        write(ctl, "200 0")
        srv = server("http", port, ctl)
        self.cycle("http", target("http", "http", port, http_path="/healthz"),
                   lambda: write(ctl, "503 0"), lambda: write(ctl, "200 0"), "status 503",
                   "status 200")
        stop_proc(srv)

    def test_udp_echo_stops_answering(self):
        port, ctl = 8003, os.path.join(_tmp, "udp_on")
        write(ctl, "on")
        srv = server("udp", port, ctl)
        self.cycle("udp", target("udp", "udp", port, udp_payload="ping", udp_expect="ping"),
                   lambda: write(ctl, "off"), lambda: write(ctl, "on"),
                   f"timeout after {TIMEOUT_MS} ms", "reply received")
        stop_proc(srv)

    def test_http_turns_slow(self):
        # max_latency 200 ms; the server starts answering after 400 ms (timeout 450 ms).
        port, ctl = 8004, os.path.join(_tmp, "http_slow")
        write(ctl, "200 0")
        srv = server("http", port, ctl)
        timeout = 450
        down = self.cycle("slow", target("slow", "http", port, timeout_ms=timeout, max_latency_ms=200),
                          lambda: write(ctl, "200 0.4"), lambda: write(ctl, "200 0"),
                          re.compile(r"^latency \d+ ms > 200 ms$"), "status 200",
                          down_bound=(FALL * INTERVAL_MS + timeout) / 1000 + MARGIN_S)
        measured = int(re.match(r"latency (\d+)", down["reason"]).group(1))
        self.assertGreaterEqual(measured, 400)
        self.assertLess(measured, timeout)
        stop_proc(srv)


class Scale(unittest.TestCase):
    def test_1000_targets_at_1s_are_checked_on_time(self):
        port = 8100
        srv = server("many", port)
        targets = []
        for i in range(SCALE_TARGETS):
            n = i + 1  # 198.19.0.1 ... 198.19.3.232
            targets.append({"key": f"b{i}", "addr": f"198.19.{n // 256}.{n % 256}", "port": port,
                            "source": CLIENT_IP, "type": "tcp", "interval_ms": SCALE_INTERVAL_MS,
                            "timeout_ms": 500, "rise": 1, "fall": 1, "jitter_pct": SCALE_JITTER})
        # Long enough for every check due before SCALE_DURATION_MS to finish (timeout 500 ms).
        d = Driver(targets, ["--checks", "--duration-ms", str(SCALE_DURATION_MS + 700)])
        try:
            d.proc.wait(SCALE_DURATION_MS / 1000 + 15)
            d.reader.join(10)
        finally:
            d.stop()
            stop_proc(srv)
        self.assertEqual(d.proc.returncode, 0)
        start = next(e for e in d.all if e["event"] == "start")
        t0_us = start["set_us"]
        checks = [e for e in d.all if e["event"] == "check"]
        status = {e["key"]: e for e in d.all if e["event"] == "status"}
        self.assertEqual(len(status), SCALE_TARGETS)

        by_key = {}
        for c in checks:
            by_key.setdefault(c["key"], []).append(c)
        late_ms = sorted((c["start_us"] - c["due_us"]) / 1000 for c in checks)
        p50, p99 = late_ms[len(late_ms) // 2], late_ms[int(len(late_ms) * 0.99)]
        counts = {}
        failed = [c for c in checks if not c["ok"]]
        print(f"\n  {len(checks)} checks of {SCALE_TARGETS} targets in {SCALE_DURATION_MS} ms; "
              f"lateness p50 {p50:.2f} ms, p99 {p99:.2f} ms, max {late_ms[-1]:.2f} ms "
              f"(bound {LATE_BOUND_MS:.0f} ms); {len(failed)} failed", end="")
        self.assertEqual(failed[:5], [])
        for i in range(SCALE_TARGETS):
            key = f"b{i}"
            cs = sorted(by_key.get(key, []), key=lambda c: c["due_us"])
            dues = [c["due_us"] for c in cs if c["due_us"] < t0_us + SCALE_DURATION_MS * 1000]
            counts[key] = len(dues)
            # First check within interval * jitter of setTargets (which reads the clock a few
            # us after set_us), then gaps of interval * (1 +- jitter).
            self.assertGreaterEqual(dues[0], t0_us, key)
            self.assertLessEqual(dues[0], t0_us + SCALE_INTERVAL_MS * SCALE_JITTER * 10 + 1000, key)
            gaps = [b - a for a, b in zip(dues, dues[1:])]
            lo = SCALE_INTERVAL_MS * (100 - SCALE_JITTER) * 10
            hi = SCALE_INTERVAL_MS * (100 + SCALE_JITTER) * 10
            self.assertTrue(all(lo <= g <= hi for g in gaps), (key, gaps))
            self.assertEqual(status[key]["state"], "up", key)
        # First due in [0, 100] ms, then gaps in [900, 1100] ms: within 5000 ms that is at least
        # 5 checks (100 + 4 * 1100 < 5000) and at most 6 (5 * 900 < 5000 < 6 * 900).
        bad = {k: n for k, n in counts.items() if not 5 <= n <= 6}
        self.assertEqual(bad, {})
        self.assertLessEqual(late_ms[-1], LATE_BOUND_MS)


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--serve":
        signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
        serve(*sys.argv[2:])
    else:
        unittest.main()
