"""The Debian package: built from this tree by scripts/build-deb.sh, checked by lintian, and
taken through its life cycle on this machine with dpkg.

setUpClass builds it (`nice -n 10 scripts/build-deb.sh`, dpkg-buildpackage -us -uc -b in a copy
under build-deb/; a failed build fails every test, nothing is skipped). Then:

- contents: the .deb's file list (dpkg-deb -c) holds the binaries, the unit in
  /lib/systemd/system, the XDP object in /usr/lib/<multiarch>/l4lb, the scripts, the example
  configuration (and DEBIAN/conffiles names it), the man pages, the dashboard and the docs; the
  control fields are ours (version from meson.build, dependencies from dh_shlibdeps);
- lintian on the .deb, .changes and .buildinfo prints no E: line (warnings are justified in
  debian/l4lb.lintian-overrides);
- life cycle: dpkg -i; files in place; `l4lb --check-config /etc/l4lb/l4lb.toml` exits 0; man -w
  finds the three pages; the unit is neither enabled nor started; the conffile is edited and the
  same .deb installed again (an upgrade): the edit is kept, and no .dpkg-dist appears; dpkg -r:
  binaries, unit and man pages gone, /etc/l4lb/l4lb.toml kept (with the edit); dpkg -P: /etc/l4lb
  gone, dpkg knows nothing of l4lb.

The package is purged in tearDownClass whatever happened. If l4lb is installed before the test
starts (not by this test), it refuses to run rather than replace it.
"""

import os
import re
import shutil
import subprocess
import time
import unittest

from l4lb_harness import REPO_ROOT

OUT = os.path.join(REPO_ROOT, "build-deb")
CONF = "/etc/l4lb/l4lb.toml"
STAGING = "/etc/l4lb/staging.toml"
EDIT = "\n# l4lb_it_package: an operator's edit, kept across upgrades\n"


def run(args, timeout=120, env=None):
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env)


def meson_version():
    with open(os.path.join(REPO_ROOT, "meson.build")) as f:
        return re.search(r"version\s*:\s*'([^']+)'", f.read()).group(1)


def dpkg_status(pkg="l4lb"):
    r = run(["dpkg-query", "-W", "-f=${db:Status-Abbrev}", pkg])
    return r.stdout.strip() if r.returncode == 0 else ""


class PackageTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.installed_by_us = False
        status = dpkg_status()
        if status and not status.startswith("un") and not status.startswith("pn"):
            raise AssertionError(f"l4lb is already installed here (dpkg status '{status}'): this test "
                                 "installs and purges its own build; remove it first (dpkg -P l4lb)")
        t0 = time.monotonic()
        r = run(["nice", "-n", "10", os.path.join(REPO_ROOT, "scripts", "build-deb.sh"), OUT], timeout=1800)
        cls.build_s = time.monotonic() - t0
        if r.returncode != 0:
            raise AssertionError(f"scripts/build-deb.sh failed (exit {r.returncode}):\n"
                                 f"{r.stdout[-6000:]}\n{r.stderr[-6000:]}")
        lines = r.stdout.splitlines()
        listed = lines[lines.index("build-deb: built") + 1:]
        cls.version = meson_version() + "-1"
        arch = run(["dpkg", "--print-architecture"]).stdout.strip()
        cls.deb = os.path.join(OUT, f"l4lb_{cls.version}_{arch}.deb")
        cls.changes = os.path.join(OUT, f"l4lb_{cls.version}_{arch}.changes")
        cls.buildinfo = os.path.join(OUT, f"l4lb_{cls.version}_{arch}.buildinfo")
        if listed != [cls.deb, cls.changes, cls.buildinfo]:
            raise AssertionError(f"build-deb.sh listed {listed}, expected {[cls.deb, cls.changes, cls.buildinfo]}")
        cls.multiarch = run(["dpkg-architecture", "-qDEB_HOST_MULTIARCH"]).stdout.strip()
        print(f"\n    package built in {cls.build_s:.0f} s: {cls.deb}")

    @classmethod
    def tearDownClass(cls):
        if dpkg_status() not in ("", "un", "pn"):
            subprocess.run(["dpkg", "-P", "l4lb"], capture_output=True)
        # The test's own file in /etc/l4lb, should a broken postrm have left it (the test then
        # failed already); the directory only if that leaves it empty.
        if os.path.exists(STAGING):
            os.unlink(STAGING)
            try:
                os.rmdir("/etc/l4lb")
            except OSError:
                pass

    # ---- the .deb itself ----

    def files_in_deb(self):
        r = run(["dpkg-deb", "-c", self.deb])
        self.assertEqual(r.returncode, 0, r.stderr)
        out = {}
        for line in r.stdout.splitlines():
            perms, path = line.split()[0], line.split(None, 5)[5]
            path = path.split(" -> ")[0]
            out[path[1:].rstrip("/") or "/"] = perms
        return out

    def expected_files(self):
        return {
            "/usr/bin/l4lb": "-rwxr-xr-x",
            "/usr/bin/l4lbctl": "-rwxr-xr-x",
            "/usr/sbin/l4lb-setup-hugepages": "-rwxr-xr-x",
            "/usr/sbin/l4lb-bind-nic": "-rwxr-xr-x",
            "/lib/systemd/system/l4lb.service": "-rw-r--r--",
            f"/usr/lib/{self.multiarch}/l4lb/l4lb_xdp.o": "-rw-r--r--",
            CONF: "-rw-r--r--",
            "/usr/share/man/man8/l4lb.8.gz": "-rw-r--r--",
            "/usr/share/man/man8/l4lbctl.8.gz": "-rw-r--r--",
            "/usr/share/man/man5/l4lb.toml.5.gz": "-rw-r--r--",
            "/usr/share/l4lb/grafana/l4lb.json": "-rw-r--r--",
            "/usr/share/bash-completion/completions/l4lbctl": "-rw-r--r--",
            "/usr/share/doc/l4lb/OPERATIONS.md": "-rw-r--r--",
            "/usr/share/doc/l4lb/README.md": "-rw-r--r--",  # -X.md: see debian/rules
            "/usr/share/doc/l4lb/README.Debian": "-rw-r--r--",
            "/usr/share/doc/l4lb/copyright": "-rw-r--r--",
            "/usr/share/doc/l4lb/changelog.Debian.gz": "-rw-r--r--",
        }

    def test_deb_contents(self):
        files = self.files_in_deb()
        regular = {p: m for p, m in files.items() if m.startswith("-")}
        # Exactly these files: nothing forgotten, nothing stray (no lintian overrides file is
        # counted: dh_lintian installs it under /usr/share/lintian/overrides).
        extra = {p for p in regular if p not in self.expected_files() and not p.startswith("/usr/share/lintian/overrides/")}
        self.assertEqual(extra, set())
        for path, mode in self.expected_files().items():
            self.assertEqual(regular.get(path), mode, path)
        r = run(["dpkg-deb", "-f", self.deb, "Package", "Version", "Architecture", "Maintainer", "Depends"])
        fields = dict(line.split(": ", 1) for line in r.stdout.splitlines())
        self.assertEqual(fields["Package"], "l4lb")
        self.assertEqual(fields["Version"], self.version)
        self.assertEqual(fields["Maintainer"], "l4lb maintainers <maintainers@l4lb.invalid>")
        deps = [d.strip().split()[0] for d in fields["Depends"].split(",")]
        # dh_shlibdeps found the shared libraries the binaries link (DPDK, toml++, libnl, libbpf,
        # libstdc++, libc), plus the mempool driver named in debian/control.
        for lib in ("libc6", "libstdc++6", "libtomlplusplus3", "libnl-route-3-200", "libbpf1",
                    "librte-eal23", "librte-ethdev23", "librte-mempool-ring23"):
            self.assertIn(lib, deps)
        r = run(["dpkg-deb", "-I", self.deb, "conffiles"])
        self.assertEqual(r.stdout.split(), [CONF])
        # Maintainer scripts: `remove` stops a running balancer (prerm), so apt never leaves a
        # daemon running from deleted files; nothing enables it, and an upgrade neither stops
        # nor restarts it (no preinst stop, no restart in postinst).
        prerm = run(["dpkg-deb", "-I", self.deb, "prerm"]).stdout
        self.assertRegex(prerm, r'\[ "\$1" = remove \].*; then\n\s*deb-systemd-invoke stop \'l4lb\.service\'')
        postinst = run(["dpkg-deb", "-I", self.deb, "postinst"]).stdout
        # Enabled only again if the operator had enabled it (debhelper's was-enabled), never anew;
        # "start" is a no-op for a disabled unit (deb-systemd-invoke) and for a running one.
        self.assertEqual(postinst.count("deb-systemd-helper enable"), 1, postinst)
        self.assertRegex(postinst, r"was-enabled 'l4lb\.service'; then\n(\s*#.*\n)*\s*deb-systemd-helper enable")
        self.assertNotIn("deb-systemd-invoke restart", postinst)
        preinst = run(["dpkg-deb", "-I", self.deb, "preinst"])
        self.assertNotIn("deb-systemd-invoke stop", preinst.stdout)

    def test_lintian(self):
        r = run(["lintian", "--tag-display-limit", "0", "--display-info", self.changes], timeout=600)
        out = (r.stdout + r.stderr).splitlines()
        print("\n    lintian: " + ("\n    lintian: ".join(out) if out else "(nothing)"))
        self.assertEqual([x for x in out if x.startswith("E:")], [])
        self.assertIn(r.returncode, (0, 2), r.stderr)  # 2: only warnings/info were printed
        # .changes covers the .deb and .buildinfo; run the .buildinfo on its own too.
        r = run(["lintian", self.buildinfo], timeout=300)
        self.assertEqual([x for x in (r.stdout + r.stderr).splitlines() if x.startswith("E:")], [])

    # ---- install, upgrade, remove, purge ----

    def dpkg(self, *args):
        r = run(["dpkg"] + list(args), timeout=300, env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
        self.assertEqual(r.returncode, 0, f"dpkg {' '.join(args)}:\n{r.stdout}\n{r.stderr}")
        return r

    def test_life_cycle(self):
        binaries = ["/usr/bin/l4lb", "/usr/bin/l4lbctl", "/usr/sbin/l4lb-setup-hugepages",
                    "/usr/sbin/l4lb-bind-nic", "/lib/systemd/system/l4lb.service",
                    f"/usr/lib/{self.multiarch}/l4lb/l4lb_xdp.o", "/usr/share/man/man8/l4lb.8.gz",
                    "/usr/share/man/man5/l4lb.toml.5.gz", "/usr/share/man/man8/l4lbctl.8.gz",
                    "/usr/share/l4lb/grafana/l4lb.json"]
        # Install.
        self.dpkg("-i", self.deb)
        self.assertEqual(dpkg_status(), "ii")
        for p in binaries + [CONF]:
            self.assertTrue(os.path.isfile(p), p)
        with open(os.path.join(REPO_ROOT, "config", "l4lb.toml")) as a, open(CONF) as b:
            self.assertEqual(a.read(), b.read())
        r = run(["/usr/bin/l4lb", "--check-config", CONF])
        self.assertEqual((r.returncode, r.stdout.splitlines()[0], r.stderr),
                         (0, f"{CONF}: OK (2 ports, 3 VIPs, 6 backends, 2 workers)", ""))
        r = run(["/usr/bin/l4lb", "--version"])
        self.assertEqual(r.stdout, f"l4lb {meson_version()}\n")
        r = run(["/usr/bin/l4lbctl", "-s", "/nonexistent/l4lb.sock", "status"])
        self.assertEqual(r.returncode, 3, r.stderr)
        # The packaged daemon loads the installed XDP object only, never a path of the build tree
        # it was built in (-Dxdp_from_build_tree=false).
        # (The build ran in build-deb/src/l4lb-*/obj-<multiarch>/; before the fix its XDP path
        # was compiled in.)
        with open("/usr/bin/l4lb", "rb") as f:
            exe = f.read()
        for fragment in (b"/build-deb/", b"obj-x86_64-linux-gnu"):
            self.assertTrue(fragment not in exe, f"/usr/bin/l4lb names its build tree ({fragment!r})")
        for args, want in ((["l4lb"], "/usr/share/man/man8/l4lb.8.gz"),
                           (["5", "l4lb.toml"], "/usr/share/man/man5/l4lb.toml.5.gz"),
                           (["l4lbctl"], "/usr/share/man/man8/l4lbctl.8.gz")):
            r = run(["man", "-w"] + args)
            self.assertEqual((r.returncode, r.stdout), (0, want + "\n"), args)
        with open("/lib/systemd/system/l4lb.service") as f:
            unit = f.read().splitlines()
        self.assertIn(f"ExecStart=/usr/bin/l4lb -c {CONF}", unit)
        self.assertIn(f"ExecStartPre=/usr/bin/l4lb --check-config {CONF}", unit)
        self.assertIn("Documentation=file:///usr/share/doc/l4lb/OPERATIONS.md", unit)
        self.assertTrue(os.path.isfile("/usr/share/doc/l4lb/OPERATIONS.md"))
        # Not enabled: no WantedBy link.
        self.assertFalse(os.path.lexists("/etc/systemd/system/multi-user.target.wants/l4lb.service"))

        # Upgrade (the same version again): the operator's edit of the conffile stays.
        with open(CONF, "a") as f:
            f.write(EDIT)
        with open(CONF) as f:
            edited = f.read()
        self.dpkg("-i", self.deb)
        self.assertEqual(dpkg_status(), "ii")
        with open(CONF) as f:
            self.assertEqual(f.read(), edited)
        self.assertEqual([x for x in os.listdir("/etc/l4lb") if x != "l4lb.toml"], [])
        r = run(["/usr/bin/l4lb", "--check-config", CONF])
        self.assertEqual(r.returncode, 0, r.stderr)

        # Remove: programs gone, configuration kept (status rc: config-files).
        self.dpkg("-r", "l4lb")
        self.assertEqual(dpkg_status(), "rc")
        for p in binaries:
            self.assertFalse(os.path.exists(p), p)
        with open(CONF) as f:
            self.assertEqual(f.read(), edited)

        # Purge: /etc/l4lb gone, also with a file of the operator's next to the conffile (not a
        # name like l4lb.toml.bak or l4lb.toml~: dpkg removes those editor backups itself).
        with open(STAGING, "w") as f:
            f.write(edited)
        self.dpkg("-P", "l4lb")
        self.assertFalse(os.path.exists("/etc/l4lb"))
        self.assertIn(dpkg_status(), ("", "un", "pn"))


if __name__ == "__main__":
    unittest.main()
