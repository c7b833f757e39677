#!/usr/bin/env bash
# Builds the Debian package (binary only) from this tree and leaves the results in one place.
#   scripts/build-deb.sh [OUT_DIR]        (default: build-deb/ at the top of the tree)
#
# The build runs in a copy, OUT_DIR/src/l4lb-VERSION, not in place: dpkg-buildpackage writes
# debian/l4lb/, debian/.debhelper/, obj-*/ and debian/files into the tree it builds and puts the
# .deb next to it, in the tree's parent directory, which is not ours to write. The copy is what
# `git ls-files` lists (tracked files plus untracked ones that are not ignored), so uncommitted
# edits are built and build directories are not copied; outside a git checkout, everything but
# build*/ is copied. The copy is made afresh on every run at the same path, so ccache (used when
# installed) hits on a rebuild, and removed after a successful build.
#
# Ends by printing the paths of the .deb, .changes and .buildinfo in OUT_DIR, in that order, one a
# line after "build-deb: built". Exit status: 0 built, 1 failed (dpkg-buildpackage's output
# above), 2 usage.
# Parallelism: JOBS (default 2). Run it as `nice -n 10 scripts/build-deb.sh` on a shared machine.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
case ${1:-} in
  -h|--help) sed -n '2,17s/^# \{0,1\}//p' "$0"; exit 0 ;;
  -*) echo "build-deb.sh: unknown option '$1'" >&2; exit 2 ;;
esac
[ $# -le 1 ] || { echo "build-deb.sh: one OUT_DIR only" >&2; exit 2; }
out=${1:-$here/build-deb}
jobs=${JOBS:-2}

for tool in dpkg-buildpackage dh meson scdoc; do
  command -v "$tool" >/dev/null || { echo "build-deb.sh: $tool is missing (scripts/install-deps.sh)" >&2; exit 1; }
done

version=$(sed -n "s/^ *version *: *'\([^']*\)'.*/\1/p" "$here/meson.build" | head -1)
debversion=$(dpkg-parsechangelog -l "$here/debian/changelog" -S Version)
if [ "${debversion%-*}" != "$version" ]; then
  echo "build-deb.sh: debian/changelog says $debversion, meson.build says $version: add a changelog entry (dch -v $version-1)" >&2
  exit 1
fi

mkdir -p "$out"
out=$(cd "$out" && pwd)
src=$out/src/l4lb-$version
rm -rf "$src" "$out"/src/l4lb_* "$out"/l4lb_* "$out"/l4lb-dbgsym_*
mkdir -p "$src"
# OUT_DIR inside the tree and not ignored by git: leave it out of the copy.
rel_out=${out#"$here"/}
if git -C "$here" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  (cd "$here" && git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do
     [ -e "$f" ] && [ "${f#"$rel_out"/}" = "$f" ] && printf '%s\0' "$f"; done | tar --null -T - -cf -) |
    tar -xf - -C "$src"
else
  (cd "$here" && tar --exclude='./build*' -cf - .) | tar -xf - -C "$src"
fi

if command -v ccache >/dev/null; then
  # debhelper (compat 13) points HOME into the build tree, which would give ccache a fresh,
  # empty cache every run: name the user's own cache directory.
  CCACHE_DIR=$(ccache -k cache_dir)
  export CC="ccache gcc" CXX="ccache g++" CCACHE_DIR
fi
export DEB_BUILD_OPTIONS="parallel=$jobs nocheck${DEB_BUILD_OPTIONS:+ $DEB_BUILD_OPTIONS}"
echo "build-deb: dpkg-buildpackage -us -uc -b in $src"
(cd "$src" && dpkg-buildpackage -us -uc -b)

# The debug symbols package (l4lb-dbgsym_*.deb, listed in the .changes) moves along.
mv "$out"/src/l4lb_* "$out"/src/l4lb-dbgsym_* "$out"/ 2>/dev/null || mv "$out"/src/l4lb_* "$out"/
# The copy goes once the package is built (it stays after a failure, to look at): the binary
# prefers the XDP object of its build tree when that path exists (control/xdp_map.cc,
# defaultXdpProgram), and an installed package must use its own, /usr/lib/<multiarch>/l4lb/.
rm -rf "$src"
echo "build-deb: built"
for ext in deb changes buildinfo; do ls -1 "$out"/l4lb_*."$ext"; done
