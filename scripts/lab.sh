#!/usr/bin/env bash
# The l4lb lab: network namespaces, veths, a bridge and real backend servers (see
# scripts/lib/lab.py for the topologies and addresses).
#   scripts/lab.sh up|down|status|config [--topology dsr|nat] [--ipv6] [--prefix NAME] [--backends N]
# Idempotent; `down` removes everything of its prefix, even after a crash.
set -euo pipefail
exec /usr/bin/python3 "$(dirname "$0")/lib/lab.py" "$@"
