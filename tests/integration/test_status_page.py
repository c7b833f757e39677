"""The status page at / on the metrics listener, in a real browser (headless Chromium, Debian's):
l4lb forwards continuous known traffic on net_pcap ports (the client port replays 50 SYNs in a
loop), and the page, as Chromium renders it (its DOM after parsing), must show the VIP and every
backend with non-zero packet rates; after `l4lbctl drain` the backend's state on the page is
"draining". The VIP's name is `<script>alert(1)</script>`: the page must show it as text (no
script element in the DOM). A screenshot is saved as an artifact (path printed).
"""

import html.parser
import os
import shutil
import subprocess
import tempfile
import time
import unittest

import l4lb_harness as h
import test_ctl

EVIL = "<script>alert(1)</script>"
ARTIFACTS = os.environ.get("L4LB_ARTIFACTS", os.path.join(h.BUILD_DIR, "test-artifacts"))


def chromium():
    exe = shutil.which("chromium")
    if exe is None and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", "chromium"],
                       capture_output=True, env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
        exe = shutil.which("chromium")
    return exe


def browser(args, profile):
    # As root Chromium needs --no-sandbox; its own profile directory keeps runs independent.
    cmd = [chromium(), "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
           f"--user-data-dir={profile}"] + args
    p = subprocess.run(cmd, capture_output=True, timeout=90, stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


class Dom(html.parser.HTMLParser):
    """The rendered DOM's backend rows (data-backend -> cell texts), headings and script tags."""

    def __init__(self):
        super().__init__()
        self.rows, self.h2, self.scripts = {}, [], 0
        self._row = self._cell = None
        self._in_h2 = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "script":
            self.scripts += 1
        if tag == "tr" and "data-backend" in a:
            self._row = a["data-backend"]
            self.rows[self._row] = []
        if tag == "td" and self._row is not None:
            self._cell = ""
        if tag == "h2":
            self._in_h2, self._text = True, ""

    def handle_endtag(self, tag):
        if tag == "td" and self._row is not None and self._cell is not None:
            self.rows[self._row].append(self._cell)
            self._cell = None
        if tag == "tr":
            self._row = None
        if tag == "h2":
            self.h2.append(self._text)
            self._in_h2 = False

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data
        if self._in_h2:
            self._text += data


class StatusPageTest(unittest.TestCase):
    def test_page_in_a_browser(self):
        self.assertIsNotNone(chromium(), "chromium is missing (apt-get install chromium)")
        d = test_ctl.Daemon([test_ctl.syn(i) for i in range(50)], endless=True, vip_name=EVIL)
        profile = tempfile.mkdtemp(prefix="l4lb_it_chromium_")
        h._record("tmpdir", profile)
        url = f"http://127.0.0.1:{d.metrics_port}/"
        try:
            time.sleep(2.5)  # two control ticks: rates over a full second of traffic
            rc, out, err = browser(["--dump-dom", url], profile)
            self.assertEqual(rc, 0, err)
            dom = Dom()
            dom.feed(out)
            self.assertIn(EVIL, dom.h2, "the VIP's name must be shown as text")
            self.assertEqual(dom.scripts, 0, "a <script> element came through")
            backends = [f"{a}:0" for a, _ in test_ctl.BACKENDS]
            self.assertEqual(sorted(dom.rows), sorted(backends))
            for b, cells in dom.rows.items():
                # backend, state, health, weight, packets/s, bytes/s, new flows/s, packets, active
                self.assertEqual(len(cells), 9, cells)
                self.assertEqual(cells[1], "healthy", cells)
                self.assertNotEqual(cells[4].strip(), "0", f"{b}: no packet rate on the page: {cells}")
                self.assertGreater(int(cells[7]), 0, cells)

            # Drain one backend: the page shows it.
            rc, o, e = test_ctl.ctl(d, "drain", backends[0])
            self.assertEqual(rc, 0, o + e)
            time.sleep(0.5)
            rc, out, err = browser(["--dump-dom", url], profile)
            self.assertEqual(rc, 0, err)
            dom = Dom()
            dom.feed(out)
            self.assertEqual(sorted(dom.rows), sorted(backends), out)
            self.assertEqual(dom.rows[backends[0]][1], "draining")
            self.assertEqual(dom.rows[backends[1]][1], "healthy")

            os.makedirs(ARTIFACTS, exist_ok=True)
            shot = os.path.join(ARTIFACTS, "status_page.png")
            if os.path.exists(shot):
                os.unlink(shot)
            rc, _, err = browser([f"--screenshot={shot}", "--window-size=1280,1000", "--hide-scrollbars", url],
                                 profile)
            self.assertEqual(rc, 0, err)
            self.assertGreater(os.path.getsize(shot), 10_000)
            print(f"status page screenshot: {shot}")
        finally:
            shutil.rmtree(profile, ignore_errors=True)
            d.finish()


if __name__ == "__main__":
    unittest.main()
