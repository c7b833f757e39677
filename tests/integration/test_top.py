"""l4lbctl top and the bash completion against a running daemon with endless traffic.

One daemon (test_ctl.Daemon) runs for the module: its client port replays 50 TCP SYNs for
the DSR VIP "web" and 10 for an address no VIP has (dropped: no_vip) forever (net_pcap infinite_rx=1; the server port drops what it sends), so
the rates top computes over a one-second sample are non-zero. `l4lbctl top` runs on a real
terminal (tmux, its own server socket) and its screen is captured; --once and --once --json
are checked for their exact structure; the completion function from
dist/bash-completion/l4lbctl is called in bash with COMP_WORDS/COMP_CWORD set and its COMPREPLY
compared exactly. The endless replay keeps the worker core (core 1, as every daemon run) busy:
the daemon is stopped as soon as the class ends.
"""

import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

import l4lb_harness as h
import test_ctl as c

COMPLETION = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "dist", "bash-completion", "l4lbctl")
BACKEND_NAMES = [f"{a}:0" for a, _ in c.BACKENDS]
ROW = re.compile(r"^web\s+(198\.18\.2\.\d+:0)\s+(\S+)\s+(not checked|\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\d+)\s*$")


NSTRAY = 10  # SYNs to an address no VIP has: a non-zero drop rate


def stray(i):
    return (c.Ether(src=c.GW_MAC, dst=c.CLIENT_MAC) / c.IP(src=c.CLIENT, dst="198.18.0.99") /
            c.TCP(sport=30000 + i, dport=80, flags="S"))


def short_rate(cell):
    """The inverse of ctl::shortRate: "12.5k" -> 12500."""
    mult = {"k": 1e3, "M": 1e6, "G": 1e9}
    return float(cell[:-1]) * mult[cell[-1]] if cell[-1] in mult else float(cell)


def have_tmux():
    return subprocess.run(["sh", "-c", "command -v tmux"], capture_output=True).returncode == 0


class TopTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = c.Daemon([c.syn(i) for i in range(c.NFLOWS)] + [stray(i) for i in range(NSTRAY)], endless=True)
        # Which backends the 50 flows went to (Maglev): those must show non-zero packets/s.
        deadline = time.monotonic() + 20
        while True:
            bs = c.ctl_json(cls.d, "backends")["backends"]
            if sum(b["active_flows"] for b in bs) >= c.NFLOWS or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        cls.busy = sorted(b["backend"] for b in bs if b["packets"] > 0)

    @classmethod
    def tearDownClass(cls):
        cls.d.finish()

    def test_traffic_reaches_backends(self):
        # The precondition of every rate check below: the flows hit at least two backends.
        self.assertGreaterEqual(len(self.busy), 2, self.busy)

    # ---- on a terminal ----

    def test_tmux_screen(self):
        if not have_tmux():
            self.fail("tmux is missing (scripts/install-deps.sh installs it)")
        # Our own tmux server (its socket in the daemon's temp directory, removed with it):
        # nobody else's sessions, no configuration file.
        tmux = ["tmux", "-S", os.path.join(self.d.tmp, "tmux.sock"), "-f", "/dev/null"]
        try:
            subprocess.run(tmux + ["new-session", "-d", "-s", "top", "-x", "160", "-y", "50",
                                   f"{c.ctl_path()} -s {self.d.sock} top"], check=True, timeout=10)
            time.sleep(2.5)
            screen = subprocess.run(tmux + ["capture-pane", "-p", "-t", "top"], capture_output=True, text=True,
                                    check=True, timeout=10).stdout
            print("\n    screen:\n" + "\n".join("    " + x for x in screen.rstrip().splitlines()))
            lines = screen.rstrip().splitlines()  # the pane's rows below the frame are empty
            # Cleared and redrawn: exactly one frame on the screen, from its first line.
            self.assertRegex(lines[0], r"^l4lb top: rates over [01]\.\d\ds$", screen)
            self.assertEqual(lines[-1], "q or Ctrl-C quits", screen)
            self.assertEqual(screen.count("l4lb top:"), 1, screen)
            self.assertRegex(lines[1], r"^VIP\s+PKTS/S\s+BYTES/S\s+NEW_FLOWS/S\s+ACTIVE_FLOWS$")
            m = re.match(r"^web\s+(\S+)\s+(\S+)\s+(\S+)\s+(\d+)$", lines[2])
            self.assertIsNotNone(m, screen)
            self.assertGreater(short_rate(m.group(1)), 0, screen)
            self.assertEqual(int(m.group(4)), c.NFLOWS, screen)
            rows = {r.group(1): r for r in map(ROW.match, lines) if r}
            self.assertEqual(sorted(rows), BACKEND_NAMES, screen)
            for name, r in rows.items():
                self.assertEqual(r.group(2), "healthy", screen)
                self.assertEqual(r.group(3), "not checked", screen)
                if name in self.busy:
                    self.assertGreater(short_rate(r.group(4)), 0, f"{name}:\n{screen}")
                    self.assertGreater(short_rate(r.group(5)), 0, f"{name}:\n{screen}")
                else:
                    self.assertEqual(r.group(4), "0", screen)
            self.assertRegex(screen, r"(?m)^WORKER\s+BUSY\s+RX_PKTS/S\s+TX_PKTS/S$")
            self.assertRegex(screen, r"(?m)^0\s+\d+\.\d%\s+\S+\s+\S+$")
            self.assertRegex(screen, r"(?m)^DROP_REASON\s+PKTS/S$")
            m = re.search(r"(?m)^(\S+)\s+(\S+)$", screen[screen.index("DROP_REASON"):].split("\n", 1)[1])
            self.assertEqual(m.group(1), "no_vip", screen)
            self.assertGreater(short_rate(m.group(2)), 0, screen)
            # 'q' quits: the pane's command ends and with it the session.
            subprocess.run(tmux + ["send-keys", "-t", "top", "q"], check=True, timeout=10)
            deadline = time.monotonic() + 5
            while subprocess.run(tmux + ["has-session", "-t", "top"], capture_output=True).returncode == 0:
                self.assertLess(time.monotonic(), deadline, "l4lbctl top did not quit on 'q'")
                time.sleep(0.1)
        finally:
            subprocess.run(tmux + ["kill-server"], capture_output=True, timeout=10)

    # ---- not on a terminal ----

    def test_once_plain(self):
        t0 = time.monotonic()
        rc, out, err = c.ctl(self.d, "top", "--once")
        took = time.monotonic() - t0
        self.assertEqual(rc, 0, err)
        self.assertGreaterEqual(took, 1.0)
        self.assertNotIn("\x1b", out)  # no screen clearing into a pipe
        self.assertEqual(out.count("l4lb top:"), 1, out)
        lines = out.splitlines()
        self.assertRegex(lines[0], r"^l4lb top: rates over 1\.\d\ds$")
        self.assertNotIn("quits", out)
        rows = {r.group(1): r for r in map(ROW.match, lines) if r}
        self.assertEqual(sorted(rows), BACKEND_NAMES, out)
        for name in self.busy:
            self.assertGreater(short_rate(rows[name].group(4)), 0, out)
        self.assertRegex(out, r"(?m)^DROP_REASON\s+PKTS/S\nno_vip\s+\d+\.\d[kMG]?$")

    def test_once_json(self):
        rc, out, err = c.ctl(self.d, "--json", "top", "--once")
        self.assertEqual(rc, 0, err)
        j = json.loads(out)
        self.assertEqual(set(j), {"interval_s", "vips", "backends", "workers", "drops_per_s"})
        self.assertGreaterEqual(j["interval_s"], 1.0)
        self.assertLess(j["interval_s"], 2.0)
        rate_keys = {"packets_per_s", "bytes_per_s", "flows_new_per_s", "active_flows"}
        self.assertEqual(len(j["vips"]), 1)
        v = j["vips"][0]
        self.assertEqual(set(v), {"vip"} | rate_keys)
        self.assertEqual(v["vip"], "web")
        self.assertGreater(v["packets_per_s"], 0)
        self.assertEqual(v["active_flows"], c.NFLOWS)
        # Every replayed SYN is the same size (54 bytes as written, no padding in the pcap).
        self.assertEqual(len(bytes(c.syn(0))), 54)
        self.assertAlmostEqual(v["bytes_per_s"] / v["packets_per_s"], 54.0, places=6)
        self.assertEqual(v["flows_new_per_s"], 0)  # the same 50 flows, replayed
        self.assertEqual([b["backend"] for b in j["backends"]], BACKEND_NAMES)
        for b in j["backends"]:
            self.assertEqual(set(b), {"vip", "backend", "state", "health"} | rate_keys)
            self.assertEqual((b["vip"], b["state"], b["health"]), ("web", "healthy", "not checked"))
            if b["backend"] in self.busy:
                self.assertGreater(b["packets_per_s"], 0, b)
            else:
                self.assertEqual(b["packets_per_s"], 0, b)
        # The VIP's rate is its backends' (both from the same two samples).
        self.assertAlmostEqual(sum(b["packets_per_s"] for b in j["backends"]) / v["packets_per_s"], 1.0, places=9)
        self.assertEqual(len(j["workers"]), 1)
        w = j["workers"][0]
        self.assertEqual(set(w), {"worker", "busy_ratio", "rx_packets_per_s", "tx_packets_per_s"})
        self.assertEqual(w["worker"], 0)
        self.assertGreater(w["busy_ratio"], 0)
        self.assertLessEqual(w["busy_ratio"], 1)
        # The replay is NFLOWS SYNs for web and NSTRAY for no VIP. The worker's, the backends' and
        # the drop counters are read a moment apart within one stats reply (at ~20 Mpps), so the
        # ratios hold to within 1%.
        self.assertLess(abs(w["rx_packets_per_s"] / v["packets_per_s"] - (c.NFLOWS + NSTRAY) / c.NFLOWS), 0.01, (w, v))
        self.assertGreater(w["tx_packets_per_s"], 0)
        self.assertEqual(set(j["drops_per_s"]), {"no_vip"})  # only non-zero reasons
        self.assertLess(abs(j["drops_per_s"]["no_vip"] / v["packets_per_s"] - NSTRAY / c.NFLOWS), 0.01, j)

    def test_json_lines_until_sigint(self):
        p = subprocess.Popen([c.ctl_path(), "-s", self.d.sock, "--json", "top", "--interval", "0.5"],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(1.8)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=10)
        self.assertEqual(p.returncode, 0, err)
        lines = out.decode().splitlines()
        self.assertIn(len(lines), (2, 3), out)
        for line in lines:
            j = json.loads(line)
            self.assertLess(abs(j["interval_s"] - 0.5), 0.4)
            self.assertGreater(j["vips"][0]["packets_per_s"], 0)

    def test_exit_codes(self):
        rc, out, err = c.ctl(os.path.join(self.d.tmp, "nonexistent.sock"), "top", "--once")
        self.assertEqual(rc, 3, out + err)
        self.assertIn("cannot connect to", err)
        for args in (["--interval", "0"], ["--interval", "x"], ["--bogus"]):
            rc, out, err = c.ctl(self.d, "top", *args)
            self.assertEqual(rc, 2, f"{args}: {out}{err}")

    # ---- completion ----

    def complete(self, *words, sock=True):
        """COMPREPLY of _l4lbctl with the cursor on the last of `words` (after l4lbctl [-s SOCK])."""
        line = [c.ctl_path()] + (["-s", self.d.sock] if sock else []) + list(words)
        script = ('source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); '
                  '_l4lbctl; printf "%s\\n" "${COMPREPLY[@]}"')
        p = subprocess.run(["bash", "--norc", "--noprofile", "-c", script, "bash", COMPLETION] + line,
                           capture_output=True, text=True, timeout=20)
        self.assertEqual((p.returncode, p.stderr), (0, ""), line)
        return [x for x in p.stdout.split("\n") if x]

    def test_commands_listed_by_l4lbctl(self):
        p = subprocess.run([c.ctl_path(), "--commands"], capture_output=True, text=True, timeout=10)
        self.assertEqual(p.returncode, 0)
        want = ["status", "vips", "backends", "list", "stats", "drain", "undrain", "weight", "reload", "explain",
                "diff", "config", "cluster", "drain-balancer", "undrain-balancer", "top"]
        self.assertEqual(p.stdout.splitlines(), want)
        self.assertEqual(self.complete("", sock=False), want)
        self.assertEqual(self.complete(""), want)
        self.assertEqual(self.complete("d"), ["drain", "diff", "drain-balancer"])
        self.assertEqual(self.complete("c"), ["config", "cluster"])
        self.assertEqual(self.complete("--j", sock=False), ["--json"])

    def test_vips_after_backends(self):
        self.assertEqual(self.complete("backends", ""), ["web"])
        self.assertEqual(self.complete("backends", "w"), ["web"])
        self.assertEqual(self.complete("backends", "x"), [])
        # No daemon on that socket: quietly nothing (the -s on the line is the one asked).
        missing = os.path.join(self.d.tmp, "nonexistent.sock")
        self.assertEqual(self.complete("-s", missing, "backends", "", sock=False), [])
        p = subprocess.run([c.ctl_path(), "-s", missing, "--complete", "vips"], capture_output=True, text=True, timeout=10)
        self.assertEqual((p.returncode, p.stdout, p.stderr), (0, "", ""))

    def test_backends_after_drain_undrain_weight(self):
        want = BACKEND_NAMES + [f"web/{b}" for b in BACKEND_NAMES]
        for cmd in ("drain", "undrain", "weight"):
            self.assertEqual(self.complete(cmd, ""), want, cmd)
        self.assertEqual(self.complete("--socket", self.d.sock, "drain", "198.18.2.12", sock=False), ["198.18.2.12:0"])
        # bash splits 198.18.2.12:0 at ':' (COMP_WORDBREAKS): the reply is what follows it.
        self.assertEqual(self.complete("drain", "198.18.2.12", ":"), ["0"])
        self.assertEqual(self.complete("drain", "web/198.18.2.1"), [f"web/{b}" for b in BACKEND_NAMES])
        self.assertEqual(self.complete("weight", "198.18.2.11:0", ""), [])  # N is not completed
        self.assertEqual(self.complete("drain", "198.18.2.11:0", ""), [])

    def test_explain_and_diff(self):
        self.assertEqual(self.complete("explain", ""), ["tcp", "udp"])
        self.assertEqual(self.complete("explain", "u"), ["udp"])
        self.assertEqual(self.complete("explain", "tcp", ""), [])
        with tempfile.TemporaryDirectory(prefix="l4lb_it_top_") as d:
            for n in ("new.toml", "notes.txt"):
                open(os.path.join(d, n), "w").close()
            self.assertEqual(self.complete("diff", os.path.join(d, "ne")), [os.path.join(d, "new.toml")])
            self.assertEqual(sorted(self.complete("diff", os.path.join(d, "n"))),
                             [os.path.join(d, "new.toml"), os.path.join(d, "notes.txt")])

    def test_top_options(self):
        self.assertEqual(self.complete("top", "--"), ["--once", "--interval", "--json"])


if __name__ == "__main__":
    unittest.main()


class CompletionTimeoutTest(unittest.TestCase):
    """Completion asks the daemon for names at every <Tab>: against a daemon that never answers it
    must give up within a second, quietly (no output, exit 0), in l4lbctl and in the bash function.
    Two ways of never answering: a listener that accepts and never replies, and one that never
    accepts, its backlog full (connect itself then blocks)."""

    def hung(self, accept):
        tmp = tempfile.mkdtemp(prefix="l4lb_it_hung_")
        self.addCleanup(lambda: subprocess.run(["rm", "-rf", tmp]))
        path = os.path.join(tmp, "hung.sock")
        srv = socket.socket(socket.AF_UNIX)
        srv.bind(path)
        srv.listen(0)
        self.addCleanup(srv.close)
        held = []
        self.addCleanup(lambda: [s.close() for s in held])
        if accept:
            stop = threading.Event()
            self.addCleanup(stop.set)

            def serve():  # accept, read the request, never reply
                srv.settimeout(0.1)
                while not stop.is_set():
                    try:
                        conn, _ = srv.accept()
                        held.append(conn)
                    except OSError:
                        pass
            threading.Thread(target=serve, daemon=True).start()
        else:
            # Fill the backlog: a further connect blocks (Linux allows backlog + 1 pending).
            for _ in range(4):
                s = socket.socket(socket.AF_UNIX)
                s.setblocking(False)
                try:
                    s.connect(path)
                except (BlockingIOError, OSError):
                    s.close()
                    break
                held.append(s)
        return path

    def timed(self, args):
        t0 = time.monotonic()
        p = subprocess.run(args, capture_output=True, text=True, timeout=30)
        return time.monotonic() - t0, p

    def test_gives_up_within_a_second(self):
        for accept in (True, False):
            sock = self.hung(accept)
            for what in ("vips", "backends"):
                took, p = self.timed([c.ctl_path(), "-s", sock, "--complete", what])
                self.assertEqual((p.returncode, p.stdout, p.stderr), (0, "", ""), (accept, what))
                self.assertLess(took, 1.0, (accept, what))
            script = ('source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); '
                      '_l4lbctl; printf "%s\\n" "${COMPREPLY[@]}"')
            took, p = self.timed(["bash", "--norc", "--noprofile", "-c", script, "bash", COMPLETION,
                                  c.ctl_path(), "-s", sock, "drain", ""])
            self.assertEqual((p.returncode, p.stdout.strip(), p.stderr), (0, "", ""), accept)
            self.assertLess(took, 1.0, accept)
            # The negative control: an ordinary command waits far longer on the same daemon.
            with self.assertRaises(subprocess.TimeoutExpired):
                subprocess.run([c.ctl_path(), "-s", sock, "vips"], capture_output=True, timeout=2)
