#!/usr/bin/env bash
# The l4lb lab: network namespaces, veths, a bridge and real backend servers (see
# scripts/lib/lab.py for the topologies and addresses).
#   scripts/lab.sh up|down|status|config [--topology dsr|nat|fullnat] [--ipv6] [--prefix NAME] [--backends N]
#       fullnat: private backends (no route beyond their segment, no VIP) running nginx with
#       `listen 8080 proxy_protocol` (and 8081 without) and a server-speaks-first PROXY v2 server
#       on 8082; `config --topology fullnat` prints the balancer's config (forwarding = "fullnat",
#       PROXY v2 on the TCP VIP)
#   scripts/lab.sh up --topology ecmp --balancers N [--ipv6] [--prefix NAME] [--start [--build DIR]]
#                     [--static-announce]
#       a router namespace with BIRD (ECMP), N balancer namespaces each with its own BIRD, DSR
#       backends, a client behind the router (scripts/lib/ecmp_lab.py); --start also runs l4lb
#       in every balancer (its [bgp] makes its BIRD announce the VIPs); --static-announce: each
#       BIRD announces the VIPs itself, without l4lb; `config` prints each balancer's l4lb config
# Idempotent; `down` removes everything of its prefix, even after a crash.
set -euo pipefail
exec /usr/bin/python3 "$(dirname "$0")/lib/lab.py" "$@"
