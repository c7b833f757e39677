#!/usr/bin/env bash
# Installs every Debian package l4lb's build, tests and benchmarks need. Idempotent: packages
# already present are skipped without touching the network.
set -euo pipefail

PKGS=(
  build-essential meson ninja-build pkg-config
  libdpdk-dev dpdk            # DPDK 22.11: EAL, ethdev, hash, RCU, PMDs (af_xdp, pcap, ring, tap), testpmd
  libbpf-dev libelf-dev        # XDP program loading (AF_XDP deployments)
  clang                        # compiles the XDP program (clang -target bpf)
  libtomlplusplus-dev          # config parser
  nlohmann-json3-dev           # JSON for stats / control API
  libsystemd-dev               # sd_notify: readiness, reload and watchdog under systemd
  libnl-3-dev libnl-route-3-dev  # rtnetlink: neighbour resolution, kernel interface addresses
  libgtest-dev googletest      # unit tests
  clang-14 libclang-rt-14-dev  # fuzz targets: libFuzzer and the sanitizer runtimes for clang (tests/fuzz)
  python3-scapy                # independent packet decoder for integration tests
  python3-prometheus-client    # parses the /metrics exposition in tests (text_string_to_metric_families)
  iproute2 ethtool iputils-ping curl  # test namespaces and veths, lab clients
  systemd                      # systemd-analyze verifies the l4lb.service unit (tests)
  chromium                     # headless browser: the status page test renders the page (tests)
  scdoc                        # man pages (docs/man/*.scd -> roff, built by meson)
  debhelper dpkg-dev fakeroot  # the Debian package (scripts/build-deb.sh)
  lintian                      # checks the package (tests)
  groff man-db                 # renders and checks the man pages (tests)
  tmux                         # runs l4lbctl top on a real terminal and captures its screen (tests)
  hping3                       # the spoofed SYN flood of the e2e flood test (tests/e2e/test_flood.py)
  bird2                        # BGP: each balancer's routing daemon announces its VIPs (scale-out lab, tests)
  valgrind                     # callgrind: the instructions-per-packet regression gate (perf/gate.py)
  libsodium-dev                # flow sync between balancers: keyed MAC of every datagram (crypto_auth)
  nginx                        # full-NAT lab backends: `listen ... proxy_protocol` (scripts/lib/lab_nginx.py)
  nftables                     # e2e: per-segment drops and loss in a backend's namespace (tests/e2e/test_fullnat.py)
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PKGS[@]} packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
# bird2's package starts a system-wide BIRD in the default namespace; l4lb's lab and tests run
# their own BIRD per namespace, and this machine's routes are not ours to touch.
if [[ " ${missing[*]} " == *" bird2 "* ]] && command -v systemctl >/dev/null; then
  systemctl disable --now bird.service >/dev/null 2>&1 || true
fi
# Likewise nginx's package starts a system-wide nginx on port 80; the lab runs one per backend
# namespace with its own prefix.
if [[ " ${missing[*]} " == *" nginx "* ]] && command -v systemctl >/dev/null; then
  systemctl disable --now nginx.service >/dev/null 2>&1 || true
fi
