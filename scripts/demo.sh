#!/usr/bin/env bash
# l4lb's main job on an embedded default: installs dependencies, builds, then balances 3000 TCP
# flows (3 packets each) sent to one VIP over three backends weighted 1:2:3, on DPDK net_pcap
# ports (no NIC needed), and prints each backend's share next to its weight, for DSR and for
# IPIP. Exits non-zero if any share is more than 2 percentage points off its weight.
# (The network-namespace lab with real clients and servers comes with the lab issue.)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh >/dev/null
if [ ! -f build/build.ninja ]; then meson setup build >/dev/null; fi
ninja -C build l4lb >/dev/null
exec /usr/bin/python3 scripts/lib/demo_pcap.py build/l4lb
