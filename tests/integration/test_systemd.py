"""systemd's notification protocol, against a real datagram socket set as NOTIFY_SOCKET (what
systemd itself reads), with l4lb running on net_pcap ports:

- READY=1 (with STATUS=) is the first message, sent only once the daemon logged that its workers
  run (the first snapshot is published before);
- SIGHUP: RELOADING=1, then READY=1 with the status;
- WATCHDOG_USEC set: WATCHDOG=1 about once a second; when worker 0 is made to stall (the
  test-only hook: L4LB_TEST_HOOKS=1 and SIGUSR2), the pings stop, and they resume once it runs;
- SIGINT: STOPPING=1.
The watchdog check can fail both ways: pings must come while the workers run and must stop
while one is stuck.
"""

import os
import re
import shutil
import signal
import socket
import tempfile
import threading
import time
import unittest

import l4lb_harness as h
import test_ctl


class Listener:
    """Collects (time, message, daemon log at that moment) from a bound SOCK_DGRAM socket."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.2)
        self.msgs = []
        self.log_of = None
        self.done = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.done:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            self.msgs.append((time.monotonic(), data.decode(), self.log_of() if self.log_of else ""))

    def since(self, t0, prefix=""):
        return [m for (t, m, _) in self.msgs if t >= t0 and m.startswith(prefix)]

    def close(self):
        self.done = True
        self.thread.join(2)
        self.sock.close()


class NotifyTest(unittest.TestCase):
    def test_ready_reload_watchdog_stopping(self):
        tmp = tempfile.mkdtemp(prefix="l4lb_it_notify_")
        h._record("tmpdir", tmp)
        path = os.path.join(tmp, "notify.sock")
        lst = Listener(path)
        d = None
        try:
            env = dict(os.environ, NOTIFY_SOCKET=path, WATCHDOG_USEC="2000000", L4LB_TEST_HOOKS="1")
            # The daemon's log is read when each message arrives, to order READY against it.
            err_path = os.path.join(tmp, "stderr.txt")

            def log_now():
                with open(err_path, "rb") as f:
                    return f.read().decode(errors="replace")
            lst.log_of = log_now
            d = test_ctl.Daemon([test_ctl.syn(i) for i in range(10)], env=env, err_path=err_path)
            deadline = time.monotonic() + 10
            while not lst.since(0, "READY=1") and time.monotonic() < deadline:
                time.sleep(0.05)
            first = [m for m in lst.msgs if not m[1].startswith("WATCHDOG")]
            self.assertTrue(first, "no READY=1 within 10 s")
            _, msg, log_then = first[0]
            self.assertRegex(msg, r"^READY=1\nSTATUS=1 VIPs, \d/3 backends healthy, 1 workers$")
            # Sent after the workers run: the "started:" line was already in the log.
            self.assertIn("l4lb info: started:", log_then)

            # Watchdog: pings while the worker loops.
            t0 = time.monotonic()
            time.sleep(3.2)
            self.assertGreaterEqual(len(lst.since(t0, "WATCHDOG=1")), 2, lst.msgs)

            # Worker 0 stalls: the pings stop (after at most one already under way).
            os.kill(d.proc.pid, signal.SIGUSR2)
            time.sleep(1.5)
            t1 = time.monotonic()
            time.sleep(3.5)
            self.assertEqual(lst.since(t1, "WATCHDOG=1"), [], "pinged while worker 0 was stuck")
            self.assertIn("test hook (SIGUSR2): worker 0 stalled", d.log())
            # Released: the pings resume.
            os.kill(d.proc.pid, signal.SIGUSR2)
            t2 = time.monotonic()
            time.sleep(3.2)
            self.assertGreaterEqual(len(lst.since(t2, "WATCHDOG=1")), 1)

            # Reload: RELOADING=1, then READY=1 with the status.
            t3 = time.monotonic()
            os.kill(d.proc.pid, signal.SIGHUP)
            deadline = time.monotonic() + 10
            while len([m for m in lst.since(t3) if not m.startswith("WATCHDOG")]) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            got = [m for m in lst.since(t3) if not m.startswith("WATCHDOG")]
            self.assertEqual(got[0], "RELOADING=1\nSTATUS=reloading")
            self.assertRegex(got[1], r"^READY=1\nSTATUS=1 VIPs, \d/3 backends healthy, 1 workers$")
            self.assertIn("reload applied", d.log())

            t4 = time.monotonic()
            self.assertEqual(d.stop(), 0, d.log())
            time.sleep(0.3)
            self.assertIn("STOPPING=1\nSTATUS=stopping", lst.since(t4))
        finally:
            if d is not None:
                d.stop()
                d.remove()
            lst.close()
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
