#!/usr/bin/env bash
# l4lb's main job on an embedded default (the first command in README.md,
# "Two commands on a fresh machine"): installs the Debian packages, builds, reserves hugepages,
# brings up the lab (scripts/lab.sh: client, balancer and three backend namespaces with real
# HTTP servers), runs l4lb on net_af_xdp ports with config/lab.toml, sends real HTTP requests
# and prints each backend's share next to its weight, kills a backend under load and shows its
# health transition while requests keep succeeding, brings it back, and tears everything down.
# Non-zero exit if any step did not happen.
#   scripts/demo.sh          the lab demo (about a minute)
#   scripts/demo.sh --pcap   the offline one: net_pcap files, DSR and IPIP decoded by scapy
#   scripts/demo.sh --scale-out   three balancers behind an ECMP router (BIRD); one is killed
#                            under long-lived connections while a backend is added: prints
#                            "connections reset: N", non-zero exit if N > 0 (about 30 s)
#   scripts/demo.sh --fullnat     full NAT with PROXY v2: private backends (no route to the
#                            clients, no VIP) running nginx with `listen 8080 proxy_protocol`;
#                            1000 requests, then counts in nginx's logs those that arrived with
#                            the client's real address: "requests with the client's address:
#                            N of N", non-zero exit if any did not (about 15 s)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh >/dev/null
if [ ! -f build/build.ninja ]; then meson setup build >/dev/null; fi
ninja -C build l4lb >/dev/null
ninja -C build src/dataplane/xdp/l4lb_xdp.o >/dev/null 2>&1 || ninja -C build >/dev/null
if [ "${1:-}" = "--scale-out" ]; then
  ninja -C build l4lbctl >/dev/null
  exec /usr/bin/python3 scripts/lib/demo_scaleout.py build
fi
if [ "${1:-}" = "--fullnat" ]; then
  exec /usr/bin/python3 scripts/lib/demo_fullnat.py build
fi
if [ "${1:-}" = "--pcap" ]; then
  exec /usr/bin/python3 scripts/lib/demo_pcap.py build/l4lb
fi
exec /usr/bin/python3 scripts/lib/demo_lab.py build
