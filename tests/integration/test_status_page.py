"""The status page at / on the metrics listener, in a real browser (headless Chromium, Debian's):
l4lb forwards continuous known traffic on net_pcap ports (the client port replays 50 SYNs in a
loop), and the page, as Chromium renders it (its DOM after parsing), must show the VIP and every
backend with non-zero packet rates and a drawn sparkline, the VIP's two sparklines, the
non-zero drops first (5 SYNs to no VIP are replayed too) and every reason in a <details>; after
`l4lbctl drain` the backend's state on the page is "draining" and the change is listed with its
reason. The VIP's name is `<script>alert(1)</script>`: the page must show it as text (no
script element in the DOM). A screenshot is saved as an artifact (path printed). A second
daemon with 1,000 backends (four VIPs of 250) serves a page under 200 KB (size printed).
"""

import html.parser
import os
import shutil
import subprocess
import tempfile
import time
import unittest
import urllib.request

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
    """The rendered DOM: backend rows (first cell -> cell texts, and whether the row has an SVG
    path with a non-empty d), headings, script tags, the VIPs' sparkline paths, the rows of the
    drops table, of the <details> with every reason, and of the state changes."""

    def __init__(self):
        super().__init__()
        self.rows, self.row_paths, self.h2, self.scripts = {}, {}, [], 0
        self.vip_paths, self.drops, self.all_drops, self.transitions = [], [], [], []
        self._table = self._cells = self._cell = None
        self._in_h2 = self._in_vip_history = self._in_details = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "script":
            self.scripts += 1
        if tag == "table":
            self._table = "b" if a.get("class") == "b" else a.get("id") or ("all-drops" if self._in_details else None)
        if tag == "details":
            self._in_details = True
        if tag == "tr":
            self._cells = []
        if tag == "td" and self._cells is not None:
            self._cell = ""
        if tag == "span" and a.get("class") == "vip-history":
            self._in_vip_history = True
        if tag == "path" and a.get("d"):
            if self._in_vip_history:
                self.vip_paths.append(a["d"])
            elif self._table == "b" and self._cells:
                self.row_paths[self._cells[0]] = True
        if tag == "h2":
            self._in_h2, self._text = True, ""

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self._cells.append(self._cell.strip())
            self._cell = None
        if tag == "tr" and self._cells:
            target = {"b": None, "drops": self.drops, "all-drops": self.all_drops,
                      "transitions": self.transitions}.get(self._table, [])
            if self._table == "b":
                self.rows[self._cells[0]] = self._cells
            elif target is not None:
                target.append(self._cells)
        if tag == "tr":
            self._cells = None
        if tag == "table":
            self._table = None
        if tag == "details":
            self._in_details = False
        if tag == "span":
            self._in_vip_history = False
        if tag == "h2":
            self.h2.append(self._text)
            self._in_h2 = False

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data
        if self._in_h2:
            self._text += data


def stray(i):
    """A SYN to an address no VIP has: dropped as no_vip."""
    return (test_ctl.Ether(src=test_ctl.GW_MAC, dst=test_ctl.CLIENT_MAC) / test_ctl.IP(src=test_ctl.CLIENT, dst="198.18.0.99")
            / test_ctl.TCP(sport=30000 + i, dport=80, flags="S"))


def thousand_backends():
    """Four VIPs of 250 backends each (the server port's /24 holds 253 addresses)."""
    out = f'\n[[neighbours]]\naddress = "198.18.0.254"\nmac = "{test_ctl.GW_MAC}"\n'
    for v in range(4):
        out += (f'\n[[vips]]\nname = "pool{v}"\naddress = "198.18.0.{20 + v}"\nport = 80\nprotocol = "tcp"\n'
                f'forwarding = "dsr"\nmaglev_table_size = 251\n')
        for b in range(250):
            out += f'[[vips.backends]]\naddress = "198.18.2.{2 + b}"\nmac = "02:00:00:00:0{v}:{b % 256:02x}"\n'
    return out


class StatusPageTest(unittest.TestCase):
    def test_page_in_a_browser(self):
        self.assertIsNotNone(chromium(), "chromium is missing (apt-get install chromium)")
        d = test_ctl.Daemon([test_ctl.syn(i) for i in range(50)] + [stray(i) for i in range(5)], endless=True,
                            vip_name=EVIL)
        profile = tempfile.mkdtemp(prefix="l4lb_it_chromium_")
        h._record("tmpdir", profile)
        url = f"http://127.0.0.1:{d.metrics_port}/"
        try:
            time.sleep(3.5)  # three control ticks: rates over full seconds of traffic, a history to draw
            rc, out, err = browser(["--dump-dom", url], profile)
            self.assertEqual(rc, 0, err)
            dom = Dom()
            dom.feed(out)
            self.assertIn(EVIL, dom.h2, "the VIP's name must be shown as text")
            self.assertEqual(dom.scripts, 0, "a <script> element came through")
            backends = [f"{a}:0" for a, _ in test_ctl.BACKENDS]
            self.assertEqual(sorted(dom.rows), sorted(backends))
            for b, cells in dom.rows.items():
                # backend, state, health, weight, packets/s, bytes/s, new flows/s, packets, active, history
                self.assertEqual(len(cells), 10, cells)
                self.assertEqual(cells[1], "healthy", cells)
                self.assertNotEqual(cells[4].strip(), "0", f"{b}: no packet rate on the page: {cells}")
                self.assertNotEqual(cells[7].strip(), "0", cells)
                # A sparkline with a drawn path for every backend that carried traffic.
                self.assertTrue(dom.row_paths.get(b), f"{b}: no sparkline path")
            # The VIP's sparklines: packets/s and new flows/s, both drawn.
            self.assertEqual(len(dom.vip_paths), 2, dom.vip_paths)
            for p in dom.vip_paths:
                self.assertRegex(p, r"^M0 \d+l")
            # Drops: only non-zero reasons in the table, the stray SYNs' no_vip among them, largest
            # first; every reason (zeros too) in the <details>.
            self.assertTrue(dom.drops, "no drop listed")
            counts = [int(c[1]) for c in dom.drops]
            self.assertTrue(all(n > 0 for n in counts), dom.drops)
            self.assertEqual(counts, sorted(counts, reverse=True))
            self.assertIn("no_vip", [c[0] for c in dom.drops])
            reasons = test_ctl.ctl_json(d, "stats")["drops"]
            self.assertEqual(sorted(c[0] for c in dom.all_drops), sorted(reasons))
            self.assertIn("0", [c[1] for c in dom.all_drops])

            # Drain one backend: the page shows it, and the change with its reason.
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
            self.assertEqual(len(dom.transitions), 1, dom.transitions)
            t = dom.transitions[0]
            self.assertRegex(t[0], r"^\d\d:\d\d:\d\d$")
            self.assertEqual(t[1:5], [EVIL, backends[0], "healthy", "draining"])
            self.assertTrue(t[5], "no reason")

            os.makedirs(ARTIFACTS, exist_ok=True)
            shot = os.path.join(ARTIFACTS, "status_page.png")
            if os.path.exists(shot):
                os.unlink(shot)
            rc, _, err = browser([f"--screenshot={shot}", "--window-size=1280,1400", "--hide-scrollbars", url],
                                 profile)
            self.assertEqual(rc, 0, err)
            self.assertGreater(os.path.getsize(shot), 10_000)
            print(f"status page screenshot: {shot}")
        finally:
            shutil.rmtree(profile, ignore_errors=True)
            d.finish()

    def test_size_with_a_thousand_backends(self):
        d = test_ctl.Daemon([test_ctl.syn(i) for i in range(50)], body=thousand_backends())
        try:
            time.sleep(2.5)
            with urllib.request.urlopen(f"http://127.0.0.1:{d.metrics_port}/", timeout=10) as r:
                page = r.read()
            rows = page.count(b"<tr><td>198.18.2.")
            self.assertEqual(rows, 1000)
            print(f"status page with {rows} backends: {len(page)} bytes")
            self.assertLess(len(page), 200 * 1024)
        finally:
            d.finish()


if __name__ == "__main__":
    unittest.main()
