"""The man pages: l4lb(8), l4lbctl(8), l4lb.toml(5), built by meson from docs/man/*.scd.

Each page, as the build produced it (BUILD_DIR/<page>), must render with `man -l` and pass
`groff -ww -z` under both -man and -mandoc with nothing on stderr (every groff warning on).
l4lb.toml(5) must name every configuration key by its full dotted path: the keys come from
schema_keys(), the loader's own list (`l4lb --config-keys config/l4lb.toml`: every key its
schema asks for); config/l4lb.toml (checked here to pass `l4lb --check-config`) may show no key
outside it. The man page is
searched in its rendered text (hyphenation off, wide lines, so no key is split).
l4lb(8) must name every option of `l4lb --help`, l4lbctl(8) every command of `l4lbctl --help`.
"""

import os
import re
import subprocess
import tomllib
import unittest

from l4lb_harness import BUILD_DIR, REPO_ROOT

PAGES = ["l4lb.8", "l4lbctl.8", "l4lb.toml.5"]
CONFIG = os.path.join(REPO_ROOT, "config", "l4lb.toml")
# A commented-out assignment in the example ("# xdp_program = ...", "# udp_expect = ..."): a key
# the loader accepts that the example leaves at its default. Prose comments never look like this.
COMMENTED_KEY = re.compile(r"^(\s*)#\s*([a-z][a-z0-9_]*\s*=\s*\S.*)$")


def run(args, env=None, timeout=60):
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env)


def toml_paths(doc, prefix=""):
    """Every table, array-of-tables and key path of a parsed TOML document, dotted, without
    indices: {"eal", "eal.worker_cores", "vips", "vips.health_check", "vips.backends.via", ...}.
    Arrays of plain values (worker_cores, http_expect) are keys, not tables."""
    out = set()
    for k, v in doc.items():
        path = f"{prefix}{k}"
        out.add(path)
        if isinstance(v, dict):
            out |= toml_paths(v, path + ".")
        elif isinstance(v, list) and v and all(isinstance(e, dict) for e in v):
            for e in v:
                out |= toml_paths(e, path + ".")
    return out


def schema_keys(path=CONFIG):
    """Every configuration key the loader accepts, as dotted paths of leaf keys
    ("eal.worker_cores", "vips.health_check.interval_ms", "vips.backends.health_check.port").

    Source: the loader itself. `l4lb --config-keys FILE` lists every key its schema asks for
    while reading FILE (asked, present or not), for each table FILE has; config/l4lb.toml has
    every table (a backend health_check override included), so this is the whole schema."""
    r = run([os.path.join(BUILD_DIR, "l4lb"), "--config-keys", path])
    if r.returncode != 0:
        raise AssertionError(f"l4lb --config-keys {path}: {r.stderr}")
    return set(r.stdout.split())


def example_keys(path=CONFIG):
    """The keys config/l4lb.toml sets or shows commented out (tomllib): each must be one the
    loader knows, so the reference example never documents a key that does not exist."""
    with open(path) as f:
        lines = f.read().splitlines()
    text = "\n".join(COMMENTED_KEY.sub(r"\1\2", line) for line in lines) + "\n"
    doc = tomllib.loads(text)
    paths = toml_paths(doc)
    return {p for p in paths if not any(q.startswith(p + ".") for q in paths)}


def rendered(page_path):
    """The page as text: groff, no hyphenation, 1000-column lines, overstrike off."""
    r = run(["groff", "-man", "-Tutf8", "-rHY=0", "-rLL=1000n", "-P-cbou", page_path])
    if r.returncode != 0:
        raise AssertionError(f"groff {page_path}: {r.stderr}")
    return r.stdout


class ManPagesTest(unittest.TestCase):
    def page(self, name):
        p = os.path.join(BUILD_DIR, name)
        self.assertTrue(os.path.isfile(p), f"{p} not built (meson: docs/man/{name}.scd)")
        return p

    def test_pages_render_without_warnings(self):
        env = dict(os.environ, LC_ALL="C.UTF-8", MANWIDTH="80")
        for name in PAGES:
            p = self.page(name)
            with self.subTest(page=name):
                r = run(["man", "--warnings", "-l", p], env=env)
                self.assertEqual((r.returncode, r.stderr), (0, ""), name)
                title = name.rsplit(".", 1)
                self.assertTrue(r.stdout.startswith(f"{title[0]}({title[1]})"), r.stdout[:80])
                self.assertIn("NAME", r.stdout)
                for macros in ("-man", "-mandoc"):
                    r = run(["groff", "-ww", "-z", macros, p])
                    self.assertEqual((r.returncode, r.stderr), (0, ""), f"{name} {macros}")

    def test_warnings_are_caught(self):
        # The check can fail: a page with an unknown macro and a non-ASCII byte warns.
        bad = os.path.join(BUILD_DIR, "l4lb_it_bad.8")
        try:
            with open(self.page("l4lb.8")) as f:
                text = f.read()
            with open(bad, "w") as f:
                f.write(text.replace(".SH NAME", ".SH NAME\n.XYZZY\n\u00d7"))
            r = run(["groff", "-ww", "-z", "-man", bad])
            self.assertIn("warning", r.stderr)
        finally:
            os.unlink(bad)

    def test_reference_config_is_valid(self):
        r = run([os.path.join(BUILD_DIR, "l4lb"), "--check-config", CONFIG])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.splitlines()[0], f"{CONFIG}: OK (2 ports, 3 VIPs, 6 backends, 2 workers)")
        self.assertEqual(r.stderr, "")

    def test_schema_keys(self):
        keys = schema_keys()
        # Spot checks of each kind: plain key, array-of-tables key, nested table key, a key
        # that appears only commented out, a backend's override.
        for k in ("eal.worker_cores", "flow_table.capacity", "ports.xdp_program", "neighbours.mac",
                  "vips.gue_port", "vips.health_check.udp_expect", "vips.backends.via",
                  "vips.backends.health_check.http_expect", "control.mode", "log.level"):
            self.assertIn(k, keys)
        for table in ("eal", "ports", "vips", "vips.health_check", "vips.backends"):
            self.assertNotIn(table, keys)
        # Every backend health-check override, not only the two the example sets.
        for k in ("vips.backends.health_check.udp_payload", "vips.backends.health_check.jitter_pct"):
            self.assertIn(k, keys)
        self.assertLessEqual(example_keys(), keys, "config/l4lb.toml shows a key the loader does not know")
        # Its header promises every key: set, or shown commented out (a backend's health_check
        # override has the VIP's keys; the example shows them once, under the VIP).
        shown = {k.replace("vips.backends.health_check.", "vips.health_check.") for k in example_keys()}
        missing = {k for k in keys if k.replace("vips.backends.health_check.", "vips.health_check.") not in shown}
        self.assertEqual(sorted(missing), [], "keys config/l4lb.toml does not show")
        print(f"\n    {len(keys)} keys from l4lb --config-keys")

    def test_every_key_in_l4lb_toml_5(self):
        text = rendered(self.page("l4lb.toml.5"))
        missing = sorted(k for k in schema_keys() if not re.search(r"(?<![\w.])" + re.escape(k) + r"(?![\w])", text))
        self.assertEqual(missing, [])
        # The same search reports a key that is not there.
        self.assertFalse(re.search(r"(?<![\w.])vips\.health_check\.no_such_key(?![\w])", text))

    def test_every_option_in_l4lb_8(self):
        text = rendered(self.page("l4lb.8"))
        r = run([os.path.join(BUILD_DIR, "l4lb"), "--help"])
        opts = set(re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)", r.stdout))
        self.assertGreaterEqual(opts, {"-c", "--stats-file", "--check-config", "--version"})
        for o in sorted(opts | {"-h", "--help", "--config"}):
            self.assertRegex(text, r"(?<![\w-])" + re.escape(o) + r"(?![\w-])", o)
        for sig in ("SIGHUP", "SIGINT", "SIGTERM"):
            self.assertIn(sig, text)
        self.assertIn("EXIT STATUS", text)

    def test_every_command_in_l4lbctl_8(self):
        text = rendered(self.page("l4lbctl.8"))
        r = run([os.path.join(BUILD_DIR, "l4lbctl"), "--help"])
        cmds = re.findall(r"^  ([a-z][a-z-]*)\b", r.stdout, re.M)
        self.assertEqual(cmds, ["status", "vips", "backends", "list", "stats", "drain", "undrain", "weight",
                                "reload", "explain", "diff", "config", "cluster", "drain-balancer",
                                "undrain-balancer", "top"])
        for c in cmds:
            # Each command heads its own entry: at the start of a line, its arguments after it.
            self.assertRegex(text, rf"(?m)^ +{c}( |$)", c)
        for o in ("--json", "--socket", "-s"):
            self.assertIn(o, text)
        for code in ("0", "1", "2", "3"):
            self.assertRegex(text, rf"(?m)^ +{code}$", f"exit status {code}")


if __name__ == "__main__":
    unittest.main()
